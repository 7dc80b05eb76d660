// make_corpus writes the seed corpora (corpus.h) for libFuzzer:
//   make_corpus <output directory> [fuzzer name...]
// makes <output directory>/<name>/<seed> for every fuzz target (or the ones named), replacing
// what those directories held. Prints one line per target: its name and seed count.
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "tools/fuzz/corpus.h"
#include "tools/fuzz/tmp_file.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <output directory> [fuzzer name...]\n", argv[0]);
    return 2;
  }
  namespace fs = std::filesystem;
  const fs::path root = argv[1];
  std::vector<std::string> names(argv + 2, argv + argc);
  if (names.empty()) names = edgelink::fuzz::FuzzerNames();
  for (const std::string& name : names) {
    const std::vector<edgelink::fuzz::Seed> seeds = edgelink::fuzz::SeedsFor(name);
    if (seeds.empty()) {
      std::fprintf(stderr, "make_corpus: no fuzz target named \"%s\"\n", name.c_str());
      return 2;
    }
    const fs::path dir = root / name;
    std::error_code error;
    fs::remove_all(dir, error);
    fs::create_directories(dir, error);
    if (error) {
      std::fprintf(stderr, "make_corpus: %s: %s\n", dir.c_str(), error.message().c_str());
      return 1;
    }
    for (const edgelink::fuzz::Seed& seed : seeds) {
      edgelink::fuzz::WriteScratchFile((dir / seed.name).string(), seed.bytes.data(),
                                       seed.bytes.size());
    }
    std::printf("%s %zu\n", name.c_str(), seeds.size());
  }
  std::error_code ignored;
  fs::remove_all(edgelink::fuzz::ScratchDirectory(), ignored);
  return 0;
}

// A main() for the fuzz targets when they are built without libFuzzer (gcc, no --config=fuzz):
// runs LLVMFuzzerTestOneInput once on each file named on the command line (directories: each
// file in them), so a crash found by the fuzzer can be replayed under any build:
//   bazel run //tools/fuzz:relay_fuzzer -- /path/to/crash-1234
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

int RunFile(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return 1;
  }
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(file)),
                                   std::istreambuf_iterator<char>());
  std::fprintf(stderr, "running %s (%zu bytes)\n", path.c_str(), bytes.size());
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int failures = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path path = argv[i];
    if (std::filesystem::is_directory(path)) {
      for (const auto& entry : std::filesystem::directory_iterator(path)) {
        if (entry.is_regular_file()) failures += RunFile(entry.path());
      }
    } else {
      failures += RunFile(path);
    }
  }
  std::fprintf(stderr, "done: %d input(s) could not be read\n", failures);
  return failures == 0 ? 0 : 1;
}

// The seed corpora of the fuzz targets, made by the real encoders and the real protocol cores
// (so they need regenerating, never hand-editing, when a format changes). make_corpus writes them
// to disk for libFuzzer; fuzz_regression_test feeds them to the entry points directly.
#ifndef EDGELINK_TOOLS_FUZZ_CORPUS_H_
#define EDGELINK_TOOLS_FUZZ_CORPUS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace edgelink::fuzz {

struct Seed {
  std::string name;  // A file name: letters, digits, '_' and '-'.
  std::vector<uint8_t> bytes;
};

// The fuzz targets by short name; the binary of `name` is //tools/fuzz:<name>_fuzzer.
const std::vector<std::string>& FuzzerNames();

// SeedsFor returns the seed corpus of one target (empty for an unknown name). Deterministic.
// The access-list seeds are files the real AccessList wrote, under $TMPDIR.
std::vector<Seed> SeedsFor(absl::string_view fuzzer);

}  // namespace edgelink::fuzz

#endif  // EDGELINK_TOOLS_FUZZ_CORPUS_H_

// fuzz_regression_test: every seed (corpus.h) and every saved crash (tools/fuzz/regressions/
// <fuzzer>/<file>) run once through its fuzz target's entry point, built without libFuzzer, so the
// normal `bazel test //...` (gcc, and gcc ASan+UBSan in tools/test.sh) keeps them passing.
//
// Each input is its own test, <fuzzer>_seeds.<seed> or <fuzzer>_regressions.<file>. An input
// that crashes the code under test kills the test binary; the last "[ RUN ]" line names it.
// Inputs listed in kKnownFailures are skipped with the bug they show, until it is fixed.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/crypto/nonce_ledger.h"
#include "gtest/gtest.h"
#include "tools/fuzz/corpus.h"

#define EDGELINK_DECLARE_ENTRY(name) \
  extern "C" int EdgelinkFuzz_##name(const uint8_t* data, size_t size);
EDGELINK_DECLARE_ENTRY(attach_packet)
EDGELINK_DECLARE_ENTRY(attach_client)
EDGELINK_DECLARE_ENTRY(wire_parsers)
EDGELINK_DECLARE_ENTRY(peer_channel)
EDGELINK_DECLARE_ENTRY(rpc_frame)
EDGELINK_DECLARE_ENTRY(relay)
EDGELINK_DECLARE_ENTRY(dns_query)
EDGELINK_DECLARE_ENTRY(device_config)
EDGELINK_DECLARE_ENTRY(access_list)

namespace edgelink::fuzz {
namespace {

using Entry = int (*)(const uint8_t* data, size_t size);

struct Target {
  const char* name;
  Entry entry;
};

constexpr Target kTargets[] = {
    {"attach_packet", EdgelinkFuzz_attach_packet}, {"attach_client", EdgelinkFuzz_attach_client},
    {"wire_parsers", EdgelinkFuzz_wire_parsers},   {"peer_channel", EdgelinkFuzz_peer_channel},
    {"rpc_frame", EdgelinkFuzz_rpc_frame},         {"relay", EdgelinkFuzz_relay},
    {"dns_query", EdgelinkFuzz_dns_query},         {"device_config", EdgelinkFuzz_device_config},
    {"access_list", EdgelinkFuzz_access_list},
};

// Saved crashes that still crash the code under test: skipped (with this message) so the suite
// stays green while the bug is open. Delete the entry when the bug is fixed; the input then runs.
struct KnownFailure {
  const char* fuzzer;
  const char* file;  // Under tools/fuzz/regressions/<fuzzer>/.
  const char* bug;
};
// None open: the last (a signed overflow on a PROOF's timestamp in AttachServer::HandleProof) was
// fixed; its input stays in regressions/attach_packet/ and runs.
const std::vector<KnownFailure> kKnownFailures = {};

const KnownFailure* FindKnownFailure(const std::string& fuzzer, const std::string& file) {
  for (const KnownFailure& known : kKnownFailures) {
    if (fuzzer == known.fuzzer && file == known.file) return &known;
  }
  return nullptr;
}

// gtest names: letters, digits and '_'.
std::string TestName(const std::string& text) {
  std::string out = text;
  for (char& c : out) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return out;
}

std::vector<uint8_t> ReadFile(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(file)),
                              std::istreambuf_iterator<char>());
}

std::filesystem::path RegressionsDir() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (srcdir == nullptr || workspace == nullptr) return "tools/fuzz/regressions";
  return std::filesystem::path(srcdir) / workspace / "tools/fuzz/regressions";
}

class InputTest : public ::testing::Test {
 public:
  InputTest(Entry entry, std::vector<uint8_t> input, const KnownFailure* known)
      : entry_(entry), input_(std::move(input)), known_(known) {}
  void TestBody() override {
    if (known_ != nullptr) GTEST_SKIP() << "known failure, not run: " << known_->bug;
    crypto::NonceLedgerReset();  // Each input is a world of its own, with the same fixed keys.
    EXPECT_EQ(entry_(input_.data(), input_.size()), 0);
  }

 private:
  Entry entry_;
  std::vector<uint8_t> input_;
  const KnownFailure* known_;
};

void Register(const std::string& suite, const std::string& name, Entry entry,
              std::vector<uint8_t> input, const KnownFailure* known = nullptr) {
  ::testing::RegisterTest(suite.c_str(), TestName(name).c_str(), nullptr, nullptr, __FILE__,
                          __LINE__, [=]() -> ::testing::Test* {
                            return new InputTest(entry, input, known);
                          });
}

void RegisterAll() {
  std::set<std::string> names;
  for (const Target& target : kTargets) {
    names.insert(target.name);
    const std::vector<Seed> seeds = SeedsFor(target.name);
    // A target without seeds would be fuzzed from nothing: a broken generator.
    ::testing::RegisterTest("Corpus", TestName(target.name).c_str(), nullptr, nullptr, __FILE__,
                            __LINE__, [n = seeds.size()]() -> ::testing::Test* {
                              struct HasSeeds : ::testing::Test {
                                explicit HasSeeds(size_t n) : n(n) {}
                                void TestBody() override { EXPECT_GT(n, 0u); }
                                size_t n;
                              };
                              return new HasSeeds(n);
                            });
    for (const Seed& seed : seeds) {
      Register(absl::StrCat(target.name, "_seeds"), seed.name, target.entry, seed.bytes);
    }
    const std::filesystem::path dir = RegressionsDir() / target.name;
    if (!std::filesystem::is_directory(dir)) continue;
    std::set<std::string> files;  // Sorted, so the order does not depend on the file system.
    for (const auto& file : std::filesystem::directory_iterator(dir)) {
      if (file.is_regular_file()) files.insert(file.path().filename().string());
    }
    for (const std::string& file : files) {
      Register(absl::StrCat(target.name, "_regressions"), file, target.entry,
               ReadFile(dir / file), FindKnownFailure(target.name, file));
    }
  }
  // Every regressions/<dir> names a fuzz target (a typo would silently run nothing).
  if (std::filesystem::is_directory(RegressionsDir())) {
    for (const auto& dir : std::filesystem::directory_iterator(RegressionsDir())) {
      if (!dir.is_directory()) continue;
      const std::string name = dir.path().filename().string();
      const bool known = names.count(name) != 0;
      ::testing::RegisterTest("RegressionDirs", TestName(name).c_str(), nullptr, nullptr,
                              __FILE__, __LINE__, [known, name]() -> ::testing::Test* {
                                struct NamesTarget : ::testing::Test {
                                  NamesTarget(bool known, std::string name)
                                      : known(known), name(std::move(name)) {}
                                  void TestBody() override {
                                    EXPECT_TRUE(known) << "regressions/" << name
                                                       << " is not a fuzz target";
                                  }
                                  bool known;
                                  std::string name;
                                };
                                return new NamesTarget(known, name);
                              });
    }
  }
}

}  // namespace
}  // namespace edgelink::fuzz

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  edgelink::fuzz::RegisterAll();
  return RUN_ALL_TESTS();
}

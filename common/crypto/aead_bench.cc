// aead_bench: AES-128-GCM seal+open through our Aead against the same EVP calls made directly, in
// one run, at 64, 1200 (a datagram) and 16384 bytes. Ends with
//   BENCH aead backend=<b> ... ratio=<Aead 16 KiB throughput / raw EVP 16 KiB throughput>
#include <openssl/evp.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/crypto/aead.h"
#include "common/crypto/evp_ptr.h"
#include "common/crypto/secret_bytes.h"

namespace edgelink::crypto {
namespace {

#ifdef OPENSSL_IS_BORINGSSL
constexpr char kBackend[] = "boringssl";
#else
constexpr char kBackend[] = "openssl";
#endif

constexpr int kSizes[] = {64, 1200, 16384};
const std::vector<uint8_t> kKey(16, 0x42);
const std::vector<uint8_t> kAad(16, 0x07);  // About a packet header's worth.

void BM_Aead(benchmark::State& state) {
  std::unique_ptr<Aead> aead = *Aead::New(SecretBytes::CopyFrom(kKey));
  std::vector<uint8_t> plaintext(state.range(0), 0x11), sealed(plaintext.size() + Aead::kTagSize),
      opened(plaintext.size());
  uint8_t nonce[Aead::kNonceSize] = {};
  for (auto _ : state) {
    ++nonce[0];
    size_t n = *aead->Seal(nonce, kAad, plaintext, absl::MakeSpan(sealed));
    size_t m = *aead->Open(nonce, kAad, absl::MakeConstSpan(sealed).first(n), absl::MakeSpan(opened));
    benchmark::DoNotOptimize(m);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

// The same work with no wrapper: keyed contexts reused, only the nonce set per record.
void BM_RawEvp(benchmark::State& state) {
  internal::CipherCtxPtr enc(EVP_CIPHER_CTX_new()), dec(EVP_CIPHER_CTX_new());
  EVP_EncryptInit_ex(enc.get(), EVP_aes_128_gcm(), nullptr, kKey.data(), nullptr);
  EVP_DecryptInit_ex(dec.get(), EVP_aes_128_gcm(), nullptr, kKey.data(), nullptr);
  const int size = state.range(0);
  std::vector<uint8_t> plaintext(size, 0x11), sealed(size + 16), opened(size);
  uint8_t nonce[12] = {};
  int n = 0;
  for (auto _ : state) {
    ++nonce[0];
    EVP_EncryptInit_ex(enc.get(), nullptr, nullptr, nullptr, nonce);
    EVP_EncryptUpdate(enc.get(), nullptr, &n, kAad.data(), kAad.size());
    EVP_EncryptUpdate(enc.get(), sealed.data(), &n, plaintext.data(), size);
    EVP_EncryptFinal_ex(enc.get(), sealed.data() + size, &n);
    EVP_CIPHER_CTX_ctrl(enc.get(), EVP_CTRL_GCM_GET_TAG, 16, sealed.data() + size);
    EVP_DecryptInit_ex(dec.get(), nullptr, nullptr, nullptr, nonce);
    EVP_DecryptUpdate(dec.get(), nullptr, &n, kAad.data(), kAad.size());
    EVP_DecryptUpdate(dec.get(), opened.data(), &n, sealed.data(), size);
    EVP_CIPHER_CTX_ctrl(dec.get(), EVP_CTRL_GCM_SET_TAG, 16, sealed.data() + size);
    int ok = EVP_DecryptFinal_ex(dec.get(), opened.data() + n, &n);
    benchmark::DoNotOptimize(ok);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

BENCHMARK(BM_Aead)->Arg(64)->Arg(1200)->Arg(16384);
BENCHMARK(BM_RawEvp)->Arg(64)->Arg(1200)->Arg(16384);

// Prints the usual table and remembers each run's throughput for the BENCH line.
class RecordingReporter : public benchmark::ConsoleReporter {
 public:
  RecordingReporter() : ConsoleReporter(OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      auto it = run.counters.find("bytes_per_second");
      if (it != run.counters.end()) mib_per_s_[run.benchmark_name()] = it->second / (1 << 20);
    }
    ConsoleReporter::ReportRuns(runs);
  }
  double MibPerS(const std::string& name) const {
    auto it = mib_per_s_.find(name);
    return it == mib_per_s_.end() ? 0 : it->second;
  }

 private:
  std::map<std::string, double> mib_per_s_;
};

}  // namespace
}  // namespace edgelink::crypto

int main(int argc, char** argv) {
  using edgelink::crypto::kBackend;
  using edgelink::crypto::kSizes;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  edgelink::crypto::RecordingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);

  std::string line = std::string("BENCH aead backend=") + kBackend;
  char field[96];
  for (int size : kSizes) {
    std::snprintf(field, sizeof(field), " mib_s_%d=%.0f raw_mib_s_%d=%.0f", size,
                  reporter.MibPerS("BM_Aead/" + std::to_string(size)), size,
                  reporter.MibPerS("BM_RawEvp/" + std::to_string(size)));
    line += field;
  }
  const double raw = reporter.MibPerS("BM_RawEvp/16384");
  std::snprintf(field, sizeof(field), " ratio=%.3f",
                raw > 0 ? reporter.MibPerS("BM_Aead/16384") / raw : 0.0);
  std::printf("%s%s\n", line.c_str(), field);
  return 0;
}

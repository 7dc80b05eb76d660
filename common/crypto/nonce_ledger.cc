#include "common/crypto/nonce_ledger.h"

#ifdef EDGELINK_NONCE_LEDGER
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#endif

namespace edgelink::crypto {

#ifdef EDGELINK_NONCE_LEDGER
namespace {

// key id (8 bytes, big-endian) || nonce (12 bytes).
using Entry = std::array<uint8_t, 20>;

struct Ledger {
  // std::mutex rather than absl::Mutex: Debian's Abseil is not built for TSan.
  std::mutex mu;
  absl::flat_hash_set<Entry> seals;
};

std::atomic<int> exemptions{0};

Ledger& TheLedger() {
  static Ledger* ledger = new Ledger;  // Never destroyed: seals may happen during exit.
  return *ledger;
}

}  // namespace

bool NonceLedgerEnabled() { return true; }

uint64_t NonceLedgerKeyId(absl::Span<const uint8_t> key) {
  const uint64_t id = absl::HashOf(
      absl::string_view(reinterpret_cast<const char*>(key.data()), key.size()));
  return id == 0 ? 1 : id;
}

NonceLedgerExemption::NonceLedgerExemption() { exemptions.fetch_add(1); }
NonceLedgerExemption::~NonceLedgerExemption() { exemptions.fetch_sub(1); }

void NonceLedgerRecord(uint64_t key_id, absl::Span<const uint8_t> nonce) {
  if (exemptions.load() > 0) return;
  Entry entry{};
  for (int i = 0; i < 8; ++i) entry[i] = static_cast<uint8_t>(key_id >> (56 - 8 * i));
  for (size_t i = 0; i < nonce.size() && i < 12; ++i) entry[8 + i] = nonce[i];
  Ledger& ledger = TheLedger();
  std::lock_guard<std::mutex> lock(ledger.mu);
  if (ledger.seals.insert(entry).second) return;
  char hex[2 * 12 + 1] = {};
  for (size_t i = 0; i < 12; ++i) std::snprintf(hex + 2 * i, 3, "%02x", entry[8 + i]);
  std::fprintf(stderr,
               "nonce ledger: key %016llx sealed under nonce %s twice (%zu seals recorded); "
               "aborting\n",
               static_cast<unsigned long long>(key_id), hex, ledger.seals.size());
  std::fflush(stderr);
  std::abort();
}

void NonceLedgerReset() {
  Ledger& ledger = TheLedger();
  std::lock_guard<std::mutex> lock(ledger.mu);
  ledger.seals = {};
}

size_t NonceLedgerSize() {
  Ledger& ledger = TheLedger();
  std::lock_guard<std::mutex> lock(ledger.mu);
  return ledger.seals.size();
}

#else

NonceLedgerExemption::NonceLedgerExemption() = default;
NonceLedgerExemption::~NonceLedgerExemption() = default;
bool NonceLedgerEnabled() { return false; }
uint64_t NonceLedgerKeyId(absl::Span<const uint8_t>) { return 0; }
void NonceLedgerRecord(uint64_t, absl::Span<const uint8_t>) {}
void NonceLedgerReset() {}
size_t NonceLedgerSize() { return 0; }

#endif

}  // namespace edgelink::crypto

// The nonce ledger: a test-build proof of the rule that one AES-GCM key never seals under one
// nonce twice (docs/PROTOCOL.md, "Key schedule"). Built with `--config=nonce_ledger` (which defines
// EDGELINK_NONCE_LEDGER), every Aead::Seal records (key id, nonce) in one process-wide set and the
// process aborts, naming both, on a repeat. In every other build these functions do nothing.
//
// A key id is a 64-bit hash of the key under a per-process random seed (absl::Hash), so the ledger
// holds no key material. Two different keys meet under one id with probability about
// n^2 / 2^64 for n keys, and would then also need the same nonce to be reported.
#ifndef EDGELINK_COMMON_CRYPTO_NONCE_LEDGER_H_
#define EDGELINK_COMMON_CRYPTO_NONCE_LEDGER_H_

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"

namespace edgelink::crypto {

// True in a build with the ledger.
bool NonceLedgerEnabled();

// NonceLedgerKeyId names `key` in the ledger (0 when the ledger is off).
uint64_t NonceLedgerKeyId(absl::Span<const uint8_t> key);

// NonceLedgerRecord notes one seal; aborts the process if `key_id` sealed under `nonce` before.
// Thread-safe.
void NonceLedgerRecord(uint64_t key_id, absl::Span<const uint8_t> nonce);

// NonceLedgerReset forgets every record. A new simulated world (each test case, each Simulator)
// starts one: worlds replay the same seeded randomness and fixed test keys by design, while every
// real process starts with an empty ledger anyway.
void NonceLedgerReset();

// How many seals the ledger holds.
size_t NonceLedgerSize();

// While a NonceLedgerExemption lives, seals are not recorded (process-wide). Only for tests that
// seal a fixed vector more than once on purpose (known-answer and determinism checks); never in
// code that seals traffic.
class NonceLedgerExemption {
 public:
  NonceLedgerExemption();
  ~NonceLedgerExemption();
  NonceLedgerExemption(const NonceLedgerExemption&) = delete;
  NonceLedgerExemption& operator=(const NonceLedgerExemption&) = delete;
};

}  // namespace edgelink::crypto

#endif  // EDGELINK_COMMON_CRYPTO_NONCE_LEDGER_H_

// Fuzzes device::AccessList::Open on an access-list file holding the input (written under
// $TMPDIR): the file is the device's own, but it survives power cuts, flash wear and whoever had
// the SD card, so Open must take any bytes.
//
// Invariants checked on a list that opened: at most kMaxAccessListEntries entries, each with a
// valid fingerprint and name and listed once, RoleOf agreeing with the entry, and a closed pairing
// only with an owner on the list (Open promises a corrupt file is an error, never a list that
// would reopen pairing or lock everyone out).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "common/crypto/secret_bytes.h"
#include "device/access/access_list.h"
#include "tools/fuzz/fuzz_input.h"
#include "tools/fuzz/tmp_file.h"

namespace edgelink::fuzz {
namespace {

constexpr char kName[] = "access_list_fuzzer";

void Fuzz(const uint8_t* data, size_t size) {
  static const std::string* path = new std::string(ScratchDirectory() + "/access");
  static const crypto::SecretBytes* secret = new crypto::SecretBytes(crypto::SecretBytes::CopyFrom(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>("BQ6R-T6CL-673M-ZLT8"), 19)));
  WriteScratchFile(*path, data, size);
  absl::StatusOr<std::unique_ptr<device::AccessList>> list =
      device::AccessList::Open(*path, *secret);
  if (!list.ok()) return;
  const std::vector<device::AccessList::Entry> entries = (*list)->List();
  EDGELINK_FUZZ_CHECK(kName, entries.size() <= device::kMaxAccessListEntries);
  absl::flat_hash_set<std::string> seen;
  bool has_owner = false;
  for (const device::AccessList::Entry& entry : entries) {
    EDGELINK_FUZZ_CHECK(kName, device::ValidateFingerprint(entry.fingerprint).ok());
    EDGELINK_FUZZ_CHECK(kName, device::ValidateEntryName(entry.name).ok());
    EDGELINK_FUZZ_CHECK(kName, seen.insert(entry.fingerprint).second);
    EDGELINK_FUZZ_CHECK(kName, (*list)->RoleOf(entry.fingerprint) == entry.role);
    has_owner |= entry.role == device::Role::kOwner;
  }
  EDGELINK_FUZZ_CHECK(kName, (*list)->pairing_open() || has_owner);
  EDGELINK_FUZZ_CHECK(kName, (*list)->failed_pairing_attempts() >= 0);
}

}  // namespace
}  // namespace edgelink::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  edgelink::fuzz::Fuzz(data, size);
  return 0;
}

// Command-line plumbing shared by the Edgelink binaries.
#ifndef EDGELINK_COMMON_TOOL_FLAGS_H_
#define EDGELINK_COMMON_TOOL_FLAGS_H_

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/net/endpoint.h"

namespace edgelink::tool {

// NormalizeFlagName turns "--device-id=x" into "--device_id=x" (Abseil flag names use '_'; users
// type '-'). Arguments that are not flags, and values, are left alone.
std::string NormalizeFlagName(absl::string_view arg);

// ParseFlags normalizes flag names and parses them with Abseil, which exits with a one-line error
// on an unknown flag or a bad value. Returns the positional arguments, argv[0] first.
std::vector<char*> ParseFlags(int argc, char** argv);

// InitLogging sends glog output to stderr only (no log files behind the user's back).
void InitLogging(const char* argv0);

// ParseEndpointFlag reads ADDR:PORT from a string flag; the error names the flag.
absl::StatusOr<net::Endpoint> ParseEndpointFlag(absl::string_view name,
                                                const absl::Flag<std::string>& flag);

}  // namespace edgelink::tool

#endif  // EDGELINK_COMMON_TOOL_FLAGS_H_

#include "common/tool/flags.h"

#include <algorithm>

#include "absl/flags/parse.h"
#include "absl/flags/usage_config.h"
#include "common/tool/version.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace edgelink::tool {

std::string NormalizeFlagName(absl::string_view arg) {
  std::string out(arg);
  if (out.size() < 3 || out[0] != '-' || out[1] != '-') return out;
  const size_t end = std::min(out.find('='), out.size());
  std::replace(out.begin() + 2, out.begin() + end, '-', '_');
  return out;
}

std::vector<char*> ParseFlags(int argc, char** argv) {
  absl::FlagsUsageConfig usage;
  usage.version_string = [] { return std::string("edgelink " EDGELINK_VERSION "\n"); };
  absl::SetFlagsUsageConfig(usage);
  // The normalized strings must outlive absl's parsing and the returned pointers.
  static std::vector<std::string>* normalized = new std::vector<std::string>();
  std::vector<char*> args;
  normalized->reserve(argc);
  for (int i = 0; i < argc; ++i) normalized->push_back(NormalizeFlagName(argv[i]));
  for (std::string& arg : *normalized) args.push_back(arg.data());
  return absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
}

void InitLogging(const char* argv0) {
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv0);
}

absl::StatusOr<net::Endpoint> ParseEndpointFlag(absl::string_view name,
                                                const absl::Flag<std::string>& flag) {
  absl::StatusOr<net::Endpoint> endpoint = net::Endpoint::Parse(absl::GetFlag(flag));
  if (!endpoint.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, ": ", endpoint.status().message()));
  }
  return endpoint;
}

}  // namespace edgelink::tool

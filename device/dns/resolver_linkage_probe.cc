// Links only //device/dns:resolver; resolver_linkage_test reads its dynamic dependencies.
#include <optional>

#include "device/dns/resolver.h"

int main() {
  // An IP literal: no lookup, no network.
  return edgelink::device::ResolveHost("192.0.2.1", 1, std::nullopt).ok() ? 0 : 1;
}

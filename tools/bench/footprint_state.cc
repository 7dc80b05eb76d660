// footprint_state: the RAM the device core holds for one attached device, measured, not estimated.
//
// The device's AttachClient (BoringSSL build, as on a device) attaches to the real basestation
// core in the same process over virtual time, keeps its session alive and answers requests. Every
// heap block allocated while device code runs is counted: this program replaces malloc and friends
// (so operator new, std containers and BoringSSL's OPENSSL_malloc are all seen) and forwards to
// glibc. Blocks are counted at malloc_usable_size, what the allocator really hands out. The
// basestation's own allocations are not counted. Under ASan or TSan, which own malloc, the
// sanitizer's allocation hooks count instead, at the requested sizes (the figures then differ a
// little; the benchmark's numbers come from the plain build).
//
// Prints one line: STATE sizeof=... after_new=... attached=... cache_full=... peer_session=...
//   sizeof       sizeof(AttachClient), included in every figure below (it lives on the heap)
//   after_new    AttachClient::New, before Start
//   attached     attached and idle, after keep-alive rounds
//   cache_full   attached, after answering enough connect and device requests to fill the
//                retransmission cache (the steady state's upper bound)
//   peer_session one client session on the peer channel (PeerConnection after Start), per client
#include <malloc.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "basestation/core/attach_server.h"
#include "common/channel/peer_connection.h"
#include "common/crypto/random.h"
#include "common/crypto/secret_bytes.h"
#include "common/net/endpoint.h"
#include "common/wire/packet.h"
#include "device/core/attach_client.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define EDGELINK_FOOTPRINT_SANITIZER_HOOKS 1
// In the sanitizer runtimes (libasan, libtsan); gcc 12 ships no header declaring it.
extern "C" int __sanitizer_install_malloc_and_free_hooks(
    void (*malloc_hook)(const volatile void* ptr, size_t size),
    void (*free_hook)(const volatile void* ptr));
#else
extern "C" {
void* __libc_malloc(size_t size);
void __libc_free(void* ptr);
void* __libc_calloc(size_t n, size_t size);
void* __libc_realloc(void* ptr, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
}
#endif

namespace {

// Live counted blocks. A flat table searched linearly: the device holds a few dozen blocks, and
// nothing here may allocate.
struct Block {
  void* ptr;
  size_t size;
};
constexpr size_t kMaxBlocks = 1 << 14;
Block g_blocks[kMaxBlocks];
size_t g_block_count = 0;
size_t g_live_bytes = 0;
bool g_counting = false;
bool g_overflow = false;

void Record(void* ptr, size_t size) {
  if (!g_counting || ptr == nullptr) return;
  if (g_block_count == kMaxBlocks) {
    g_overflow = true;
    return;
  }
  g_blocks[g_block_count++] = {ptr, size};
  g_live_bytes += size;
}

void Record(void* ptr) {
  if (g_counting && ptr != nullptr) Record(ptr, malloc_usable_size(ptr));
}

void Forget(void* ptr) {
  if (ptr == nullptr) return;
  for (size_t i = g_block_count; i-- > 0;) {
    if (g_blocks[i].ptr != ptr) continue;
    g_live_bytes -= g_blocks[i].size;
    g_blocks[i] = g_blocks[--g_block_count];
    return;
  }
}

// Counts what device code allocates while it is in scope (and forgets it whenever freed).
class Counting {
 public:
  Counting() { g_counting = true; }
  ~Counting() { g_counting = false; }
};

}  // namespace

#ifdef EDGELINK_FOOTPRINT_SANITIZER_HOOKS
namespace {
void OnMalloc(const volatile void* ptr, size_t size) { Record(const_cast<void*>(ptr), size); }
void OnFree(const volatile void* ptr) { Forget(const_cast<void*>(ptr)); }
}  // namespace
#else
extern "C" {
void* malloc(size_t size) {
  void* p = __libc_malloc(size);
  Record(p);
  return p;
}
void free(void* ptr) {
  Forget(ptr);
  __libc_free(ptr);
}
void* calloc(size_t n, size_t size) {
  void* p = __libc_calloc(n, size);
  Record(p);
  return p;
}
void* realloc(void* ptr, size_t size) {
  Forget(ptr);
  void* p = __libc_realloc(ptr, size);
  Record(p);
  return p;
}
void* memalign(size_t alignment, size_t size) {
  void* p = __libc_memalign(alignment, size);
  Record(p);
  return p;
}
void* aligned_alloc(size_t alignment, size_t size) { return memalign(alignment, size); }
int posix_memalign(void** out, size_t alignment, size_t size) {
  void* p = memalign(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
void* valloc(size_t size) { return memalign(4096, size); }
void* pvalloc(size_t size) { return memalign(4096, (size + 4095) & ~size_t{4095}); }
}
#endif

namespace edgelink {
namespace {

constexpr char kDeviceId[] = "cam-1";

class OneDevice : public basestation::DeviceDirectory {
 public:
  explicit OneDevice(const crypto::SecretBytes& secret) : secret_(secret.Clone()) {}
  absl::StatusOr<basestation::DeviceCredentials> FindDevice(absl::string_view id) override {
    if (id != kDeviceId) return absl::NotFoundError("unknown device");
    return basestation::DeviceCredentials{secret_.Clone(), false};
  }

 private:
  crypto::SecretBytes secret_;
};

// Accepts every connect with two host candidates; answers device requests with a short payload,
// as a real handler answering users.list would.
class Handler : public device::RequestHandler {
 public:
  wire::ConnectResponse OnConnectRequest(const wire::ConnectRequest& request,
                                         const wire::Nonce&, absl::Time) override {
    wire::ConnectResponse response;
    response.request_id = request.request_id;
    response.verdict = wire::ConnectVerdict::kAccepted;
    response.device_candidates = {
        {wire::Candidate::Kind::kHost, *net::Endpoint::Parse("192.168.1.20:40000")},
        {wire::Candidate::Kind::kHost, *net::Endpoint::Parse("[fd00::20]:40000")}};
    return response;
  }
  wire::DeviceResponse OnDeviceRequest(const wire::DeviceRequest& request, absl::Time) override {
    wire::DeviceResponse response;
    response.request_id = request.request_id;
    response.code = 0;
    response.payload.assign(64, 0x5a);
    return response;
  }
};

int Fail(const char* what) {
  std::fprintf(stderr, "footprint_state: %s\n", what);
  return 1;
}

int Main() {
#ifdef EDGELINK_FOOTPRINT_SANITIZER_HOOKS
  if (__sanitizer_install_malloc_and_free_hooks(&OnMalloc, &OnFree) == 0) {
    return Fail("cannot install the sanitizer's allocation hooks");
  }
#endif
  crypto::SystemRandom random;
  absl::StatusOr<crypto::SecretBytes> secret = crypto::RandomSecret(32);
  absl::StatusOr<crypto::SecretBytes> server_key = crypto::RandomSecret(32);
  if (!secret.ok() || !server_key.ok()) return Fail("no randomness");
  OneDevice directory(*secret);
  absl::StatusOr<std::unique_ptr<basestation::AttachServer>> server =
      basestation::AttachServer::New({}, *server_key, &directory, &random);
  if (!server.ok()) return Fail("cannot make the attach server");

  const net::Endpoint device_address = *net::Endpoint::Parse("198.51.100.7:41000");
  const net::Endpoint server_address = *net::Endpoint::Parse("203.0.113.10:7000");
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  Handler handler;

  // Each counted phase's transient buffers (datagrams in flight) are freed by Pump, outside the
  // counting scope, before a figure is read.
  std::unique_ptr<device::AttachClient> client;
  auto pump = [&] {
    for (int round = 0; round < 16; ++round) {
      std::vector<net::Datagram> up;
      {
        Counting c;
        up = client->TakeOutgoing();
      }
      for (const net::Datagram& d : up) (*server)->OnPacket(device_address, d.bytes, now);
      std::vector<net::Datagram> down = (*server)->TakeOutgoing();
      if (up.empty() && down.empty()) return;
      for (const net::Datagram& d : down) {
        Counting c;
        client->OnPacket(server_address, d.bytes, now);
      }
    }
  };

  const size_t base = g_live_bytes;
  {
    // Options are built inside the scope: what they allocate moves into the client.
    Counting c;
    device::AttachClientOptions options;
    options.device_id = kDeviceId;
    options.secret = secret->Clone();
    options.server = server_address;
    options.handler = &handler;
    absl::StatusOr<std::unique_ptr<device::AttachClient>> made =
        device::AttachClient::New(std::move(options), &random);
    if (!made.ok()) return Fail("cannot make the attach client");
    client = *std::move(made);
  }
  const size_t after_new = g_live_bytes - base;

  {
    Counting c;
    client->Start(now);
  }
  pump();
  if (client->state() != device::AttachClient::State::kAttached) return Fail("did not attach");
  for (int i = 0; i < 5; ++i) {
    now = client->next_timeout();
    {
      Counting c;
      client->OnTimeout(now);
    }
    pump();
  }
  if (client->state() != device::AttachClient::State::kAttached) return Fail("lost the session");
  const size_t attached = g_live_bytes - base;

  for (uint64_t i = 1; i <= 8; ++i) {
    if (i % 2 == 1) {
      wire::ConnectRequest request;
      request.request_id = i;
      request.session_id.fill(static_cast<uint8_t>(i));
      request.valid_ms = 5000;
      request.session_key = crypto::SecretArray<wire::kSessionKeySize>::CopyFrom(
          std::vector<uint8_t>(wire::kSessionKeySize, static_cast<uint8_t>(i)));
      request.client_name = "phone";
      request.client_candidates = {
          {wire::Candidate::Kind::kServerReflexive, *net::Endpoint::Parse("192.0.2.1:5000")}};
      if (!(*server)->SendConnectRequest(kDeviceId, request).ok()) return Fail("connect request");
    } else {
      wire::DeviceRequest request;
      request.request_id = i;
      request.caller_name = "phone";
      request.method = "users.list";
      if (!(*server)->SendDeviceRequest(kDeviceId, request).ok()) return Fail("device request");
    }
    pump();
  }
  if ((*server)->TakeReplies().size() != 8) return Fail("requests were not all answered");
  const size_t cache_full = g_live_bytes - base;

  // One client session on the peer channel, as the daemon opens for each accepted connect.
  const size_t before_peer = g_live_bytes;
  std::unique_ptr<channel::PeerConnection> peer;
  {
    Counting c;
    channel::PeerConnectionOptions options;
    options.side = channel::Side::kDevice;
    absl::StatusOr<crypto::SecretBytes> key = crypto::RandomSecret(wire::kSessionKeySize);
    if (!key.ok()) return Fail("no randomness");
    options.session_key = *std::move(key);
    options.remote_candidates = {
        {wire::Candidate::Kind::kHost, *net::Endpoint::Parse("192.168.1.30:50000")},
        {wire::Candidate::Kind::kServerReflexive, *net::Endpoint::Parse("192.0.2.1:5000")}};
    options.relay = *net::Endpoint::Parse("203.0.113.10:7001");
    options.relay_ticket.assign(channel::kRelayTicketSize, 0x11);
    absl::StatusOr<std::unique_ptr<channel::PeerConnection>> made =
        channel::PeerConnection::New(std::move(options), &random);
    if (!made.ok()) return Fail("cannot make a peer connection");
    peer = *std::move(made);
    peer->Start(now);
  }
  { std::vector<net::Datagram> sent = peer->TakeOutgoing(); }
  const size_t peer_session = g_live_bytes - before_peer;

  if (g_overflow) return Fail("block table overflow");
  std::printf("STATE sizeof=%zu after_new=%zu attached=%zu cache_full=%zu peer_session=%zu\n",
              sizeof(device::AttachClient), after_new, attached, cache_full, peer_session);
  return 0;
}

}  // namespace
}  // namespace edgelink

int main() { return edgelink::Main(); }

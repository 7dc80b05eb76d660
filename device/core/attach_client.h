// AttachClient: the device side of attach (docs/PROTOCOL.md), sans-I/O. It is fed packets, the
// current time and timer expiries, and answers with datagrams to send and its next deadline. No
// socket, thread or clock inside; the POSIX daemon and the simulator drive the same code.
#ifndef EDGELINK_DEVICE_CORE_ATTACH_CLIENT_H_
#define EDGELINK_DEVICE_CORE_ATTACH_CLIENT_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/crypto/aead.h"
#include "common/crypto/random.h"
#include "common/crypto/secret_bytes.h"
#include "common/net/datagram.h"
#include "common/net/endpoint.h"
#include "common/wire/attach_crypto.h"
#include "common/wire/packet.h"
#include "common/wire/replay_window.h"

namespace edgelink::device {

// Answers what clients ask of the device through the basestation. Called inline from
// AttachClient::OnPacket; must not block. Each request reaches the handler once: a retransmitted
// one (same id) is answered with the first answer for as long as the basestation may still send
// it, across re-attaches, so a counter the handler keeps (pairing attempts) counts each request
// once and a session is never opened twice.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // The basestation brokers a session with a client: accept or deny, and say where the device
  // can be reached. `device_nonce` is fresh randomness the attach client drew for this request
  // and sends back in the answer: the session's channel keys must mix it in.
  virtual wire::ConnectResponse OnConnectRequest(const wire::ConnectRequest& request,
                                                 const wire::Nonce& device_nonce,
                                                 absl::Time now) = 0;
  virtual wire::DeviceResponse OnDeviceRequest(const wire::DeviceRequest& request,
                                               absl::Time now) = 0;
};

struct AttachClientOptions {
  std::string device_id;
  crypto::SecretBytes secret;
  net::Endpoint server;
  // Retransmission and re-attach back-off: first delay, doubling up to max, each +-20% jitter.
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(60);
  // After a DETACH saying the device was revoked, wait this long between attempts.
  absl::Duration revoked_backoff = absl::Minutes(10);
  // Keep-alives without any answer before the session is considered lost.
  int max_missed_keepalives = 3;
  // Not owned; null denies every connect and answers requests with UNIMPLEMENTED.
  RequestHandler* handler = nullptr;
  // Called on every state change with a short human-readable reason (never a secret).
  std::function<void(absl::string_view state, absl::string_view reason)> on_state_change;
};

struct AttachClientCounters {
  uint64_t packets_sent = 0;
  uint64_t packets_received = 0;
  uint64_t dropped_malformed = 0;
  uint64_t dropped_unexpected = 0;  // Wrong source, wrong state, wrong connection id.
  uint64_t dropped_unauthenticated = 0;
  uint64_t dropped_replay = 0;  // Records seen before; connect requests for a session handled.
  uint64_t attaches = 0;
  uint64_t resets = 0;
};

// Not thread-safe: owned by one event loop.
class AttachClient {
 public:
  enum class State {
    kStopped,   // Master switch off, or not started: sends nothing, arms no timer.
    kHello,     // HELLO sent, waiting for CHALLENGE.
    kProof,     // PROOF sent, waiting for ATTACHED.
    kAttached,  // Keep-alives flowing.
    kBackoff,   // Waiting to try again.
  };

  // New checks the options: kInvalidArgument for a bad device id, a secret under 16 bytes or an
  // unset server address. `random` must outlive the client.
  static absl::StatusOr<std::unique_ptr<AttachClient>> New(AttachClientOptions options,
                                                           crypto::RandomSource* random);

  // Start begins attaching (no-op unless stopped). Stop drops the session and goes silent at once:
  // no packet, no timer, until the next Start.
  void Start(absl::Time now);
  void Stop();
  // Detach tells the basestation the device is going away (DETACH shutdown), so it shows offline
  // at once, then stops. For a clean shutdown; the master switch uses Stop, which sends nothing.
  void Detach();
  // SetServer points the client at a new basestation address (after re-resolving its name); an
  // attached session is kept only if the address is unchanged.
  void SetServer(const net::Endpoint& server, absl::Time now);

  void OnPacket(const net::Endpoint& from, absl::Span<const uint8_t> packet, absl::Time now);
  // OnTimeout runs what is due at `now`; call it when next_timeout() has passed.
  void OnTimeout(absl::Time now);
  // The next time OnTimeout must be called; InfiniteFuture when stopped.
  absl::Time next_timeout() const { return deadline_; }
  // Datagrams produced since the last call, in order.
  std::vector<net::Datagram> TakeOutgoing();

  State state() const { return state_; }
  static absl::string_view StateName(State state);
  // The device's public address as the basestation last saw it (unset until attached).
  const net::Endpoint& reflexive() const { return reflexive_; }
  uint64_t connection_id() const { return connection_id_; }
  absl::Duration keepalive_interval() const { return keepalive_interval_; }
  const AttachClientCounters& counters() const { return counters_; }

 private:
  AttachClient(AttachClientOptions options, crypto::RandomSource* random,
               std::unique_ptr<crypto::Aead> aead);

  void SetState(State state, absl::string_view reason);
  void SendHello(absl::Time now);
  void SendSealed(wire::PacketType type, absl::Span<const uint8_t> payload);
  void Send(std::vector<uint8_t> bytes);
  void ScheduleRetry(absl::Time now, absl::string_view reason);
  void Reattach(absl::Time now, absl::string_view reason);
  absl::Duration Jitter(absl::Duration base);

  void HandleChallenge(absl::Span<const uint8_t> body, absl::Time now);
  void HandleSealed(const wire::Header& header, absl::Span<const uint8_t> packet, absl::Time now);
  void HandleReset(const wire::Header& header, absl::Span<const uint8_t> body, absl::Time now);
  // Answers a CONNECT_REQUEST or DEVICE_REQUEST (decrypted `payload`); false if malformed.
  bool HandleRequest(wire::PacketType type, absl::Span<const uint8_t> payload, absl::Time now);
  // A request answered before: sends that answer again (true), or drops a connect request for a
  // session already handled under another id (true, counted). False for a new request.
  bool AnsweredBefore(wire::PacketType answer_type, uint64_t request_id,
                      const wire::SessionId* session_id, absl::Time now);
  void RememberAnswer(wire::PacketType answer_type, uint64_t request_id,
                      const wire::SessionId* session_id, absl::Duration lifetime,
                      std::vector<uint8_t> answer, absl::Time now);

  AttachClientOptions options_;
  crypto::RandomSource* random_;
  std::unique_ptr<crypto::Aead> aead_;  // Scratch, re-keyed per record.
  State state_ = State::kStopped;
  absl::Time deadline_ = absl::InfiniteFuture();
  static constexpr int kMaxRetransmits = 3;
  int failures_ = 0;      // Consecutive failed attempts, for back-off.
  int retransmits_ = 0;   // Of the current handshake packet.
  std::vector<net::Datagram> outgoing_;

  // Handshake in progress.
  wire::Nonce device_nonce_{};
  std::vector<uint8_t> last_handshake_packet_;  // Retransmitted as is on timeout.
  std::optional<wire::AttachKeys> handshake_keys_;

  // Established session (or, with DETACH on connection 0, the answer to our PROOF).
  std::optional<wire::SessionKeys> keys_;
  uint64_t connection_id_ = 0;
  uint64_t tx_packet_number_ = 0;
  wire::ReplayWindow replay_;
  wire::ResetToken reset_token_{};
  absl::Duration keepalive_interval_ = absl::ZeroDuration();
  int missed_keepalives_ = 0;
  bool heard_since_keepalive_ = true;
  net::Endpoint reflexive_;

  // Requests answered, kept while the basestation may still resend them (a connect request's
  // valid_ms within [kMinAnswerLifetime, kMaxAnswerLifetime]; a device request
  // kMaxAnswerLifetime) and across re-attaches. When all kMaxAnswers are live, the one expiring
  // first gives way.
  struct Answer {
    wire::PacketType type = wire::PacketType::kConnectResponse;
    uint64_t request_id = 0;
    wire::SessionId session_id{};  // Connect requests only.
    absl::Time expires;
    std::vector<uint8_t> payload;
  };
  static constexpr size_t kMaxAnswers = 32;
  static constexpr absl::Duration kMinAnswerLifetime = absl::Seconds(5);
  static constexpr absl::Duration kMaxAnswerLifetime = absl::Seconds(60);
  std::vector<Answer> answers_;

  AttachClientCounters counters_;
};

}  // namespace edgelink::device

#endif  // EDGELINK_DEVICE_CORE_ATTACH_CLIENT_H_

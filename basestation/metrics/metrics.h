// Counters, gauges and a registry that renders them in the Prometheus text exposition format
// 0.0.4. No I/O, no threads: sans-I/O cores take a Counter& or Gauge& and bump it; an HTTP
// binding (http_server.h) renders the Registry on its own thread.
//
// Thread-safety: Counter, Gauge and the counters of a CounterFamily are relaxed atomics, safe to
// update from any thread while another renders. A Registry is internally locked: registration
// and RenderPrometheusText may run concurrently, though the intended use is to register
// everything at startup and render afterwards.
#ifndef EDGELINK_BASESTATION_METRICS_METRICS_H_
#define EDGELINK_BASESTATION_METRICS_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace edgelink::metrics {

// Counter is a monotonic uint64 (it wraps at 2^64). Increment and value are relaxed atomic
// operations: a few nanoseconds on the hot path, no ordering with other memory.
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// Gauge is an int64 that goes up and down. Set, Add and value are relaxed atomic operations.
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(int64_t value) { value_.store(value, std::memory_order_relaxed); }
  // Add adds `delta`, which may be negative.
  void Add(int64_t delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// CounterFamily is one counter metric with one label, whose values are fixed when the Registry
// creates it (e.g. reason="malformed", reason="replay"). Nothing is created on the hot path: look
// each Counter up once at setup and keep the reference. Lookups are thread-safe (the set of
// counters never changes); the counters are as thread-safe as any Counter.
class CounterFamily {
 public:
  CounterFamily(const CounterFamily&) = delete;
  CounterFamily& operator=(const CounterFamily&) = delete;

  // Get returns the counter for `label_value`. An undeclared value is a programming error: Get
  // prints it to stderr and aborts. Use Find for values that come from outside.
  Counter& Get(absl::string_view label_value);
  // Find returns the counter for `label_value`, or nullptr if it was not declared.
  Counter* Find(absl::string_view label_value);

  const std::string& label_name() const { return label_name_; }

 private:
  friend class Registry;

  CounterFamily(std::string label_name, const std::vector<std::string>& label_values);

  const std::string label_name_;
  // Keyed by label value; std::map nodes never move, so references stay valid, and iteration
  // gives the rendering order.
  std::map<std::string, Counter, std::less<>> counters_;
};

// Registry owns named metrics, each with HELP text and a TYPE, and renders them. Metrics live as
// long as the Registry; the pointers it returns stay valid until then.
//
// Registration fails, without registering anything, with
//   - kInvalidArgument: a name not matching [a-zA-Z_:][a-zA-Z0-9_:]*, empty help text, help or a
//     label value that is not UTF-8, a label name not matching [a-zA-Z_][a-zA-Z0-9_]* or starting
//     with "__" (reserved by Prometheus), no label values or a repeated one, a null callback;
//   - kAlreadyExists: the name is already registered.
// Metric names are constants in the code, so callers normally propagate the error from startup
// (ASSIGN_OR_RETURN) rather than handle it.
class Registry {
 public:
  // CallbackGaugeFn computes a gauge's value at render time. See AddCallbackGauge.
  using CallbackGaugeFn = std::function<int64_t()>;

  Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  ~Registry();

  absl::StatusOr<Counter*> AddCounter(absl::string_view name, absl::string_view help);
  absl::StatusOr<Gauge*> AddGauge(absl::string_view name, absl::string_view help);
  // AddCounterFamily registers a counter with one label, `label_name`, and one child per entry of
  // `label_values` (any UTF-8; escaped when rendered).
  absl::StatusOr<CounterFamily*> AddCounterFamily(absl::string_view name, absl::string_view help,
                                                  absl::string_view label_name,
                                                  const std::vector<std::string>& label_values);
  // AddCallbackGauge registers a gauge whose value is `fn()`, called once per render, on the
  // rendering thread (the HTTP server's), with the Registry's lock held. So `fn` must be safe to
  // call from that thread concurrently with the owner's own work (read atomics or take the
  // owner's lock), must not call into this Registry (it would deadlock), should be quick, and must
  // stay callable, with everything it captures alive, for as long as the Registry may render
  // (stop the HTTP server before destroying what it captures).
  absl::Status AddCallbackGauge(absl::string_view name, absl::string_view help, CallbackGaugeFn fn);

  // RenderPrometheusText renders every metric in text format 0.0.4: for each metric, sorted by
  // name, "# HELP", "# TYPE", then its samples (a family's sorted by label value), every line
  // ending in '\n'. An empty registry renders "". Thread-safe.
  std::string RenderPrometheusText() const;

 private:
  struct Entry;

  // Register adds `entry` under `name` (already validated) unless the name is taken.
  absl::Status Register(absl::string_view name, std::unique_ptr<Entry> entry)
      ABSL_LOCKS_EXCLUDED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> entries_ ABSL_GUARDED_BY(mu_);
};

// Exposed for tests and for other renderers of the same format.
namespace internal {
// IsValidMetricName: [a-zA-Z_:][a-zA-Z0-9_:]*.
bool IsValidMetricName(absl::string_view name);
// IsValidLabelName: [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__".
bool IsValidLabelName(absl::string_view name);
// IsValidUtf8: well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool IsValidUtf8(absl::string_view text);
// EscapeHelp escapes '\' and newline, as a HELP line requires.
std::string EscapeHelp(absl::string_view help);
// EscapeLabelValue escapes '\', '"' and newline, as a quoted label value requires.
std::string EscapeLabelValue(absl::string_view value);
}  // namespace internal

}  // namespace edgelink::metrics

#endif  // EDGELINK_BASESTATION_METRICS_METRICS_H_

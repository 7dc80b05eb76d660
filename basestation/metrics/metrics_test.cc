#include "basestation/metrics/metrics.h"

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::metrics {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::testing::HasSubstr;

TEST(MetricsTest, RendersSmallRegistryExactly) {
  Registry registry;
  ASSERT_OK_AND_ASSIGN(Counter * attaches,
                       registry.AddCounter("edgelink_attach_total", "Attach attempts."));
  ASSERT_OK_AND_ASSIGN(Gauge * sessions, registry.AddGauge("edgelink_sessions", "Open sessions."));
  ASSERT_OK_AND_ASSIGN(
      CounterFamily * dropped,
      registry.AddCounterFamily("edgelink_packets_dropped_total", "Packets dropped, by reason.",
                                "reason", {"replay", "malformed", "unknown_device"}));
  ASSERT_THAT(registry.AddCallbackGauge("edgelink_devices_attached", "Devices attached.",
                                        [] { return int64_t{7}; }),
              IsOk());
  attaches->Increment(3);
  sessions->Set(5);
  sessions->Add(-7);
  dropped->Get("malformed").Increment();
  dropped->Get("replay").Increment(41);
  dropped->Get("replay").Increment();

  // Sorted by metric name, then by label value; registration order does not matter.
  EXPECT_EQ(registry.RenderPrometheusText(),
            "# HELP edgelink_attach_total Attach attempts.\n"
            "# TYPE edgelink_attach_total counter\n"
            "edgelink_attach_total 3\n"
            "# HELP edgelink_devices_attached Devices attached.\n"
            "# TYPE edgelink_devices_attached gauge\n"
            "edgelink_devices_attached 7\n"
            "# HELP edgelink_packets_dropped_total Packets dropped, by reason.\n"
            "# TYPE edgelink_packets_dropped_total counter\n"
            "edgelink_packets_dropped_total{reason=\"malformed\"} 1\n"
            "edgelink_packets_dropped_total{reason=\"replay\"} 42\n"
            "edgelink_packets_dropped_total{reason=\"unknown_device\"} 0\n"
            "# HELP edgelink_sessions Open sessions.\n"
            "# TYPE edgelink_sessions gauge\n"
            "edgelink_sessions -2\n");
}

TEST(MetricsTest, EmptyRegistryRendersNothing) {
  Registry registry;
  EXPECT_EQ(registry.RenderPrometheusText(), "");
}

TEST(MetricsTest, RendersExtremeValues) {
  Registry registry;
  ASSERT_OK_AND_ASSIGN(Counter * big, registry.AddCounter("big_total", "Big."));
  ASSERT_OK_AND_ASSIGN(Gauge * low, registry.AddGauge("low", "Low."));
  big->Increment(UINT64_MAX);
  low->Set(INT64_MIN);
  const std::string text = registry.RenderPrometheusText();
  EXPECT_THAT(text, HasSubstr("\nbig_total 18446744073709551615\n"));
  EXPECT_THAT(text, HasSubstr("\nlow -9223372036854775808\n"));
}

TEST(MetricsTest, EscapesLabelValuesAndHelpText) {
  Registry registry;
  ASSERT_OK_AND_ASSIGN(
      CounterFamily * family,
      registry.AddCounterFamily("odd_total", "Help with \\ a backslash,\na newline and \"quotes\".",
                                "value", {"quote\"d", "back\\slash", "new\nline", "plain"}));
  family->Get("quote\"d").Increment(1);
  family->Get("back\\slash").Increment(2);
  family->Get("new\nline").Increment(3);
  // HELP escapes backslash and newline but not quotes; label values escape all three.
  EXPECT_EQ(registry.RenderPrometheusText(),
            "# HELP odd_total Help with \\\\ a backslash,\\na newline and \"quotes\".\n"
            "# TYPE odd_total counter\n"
            "odd_total{value=\"back\\\\slash\"} 2\n"
            "odd_total{value=\"new\\nline\"} 3\n"
            "odd_total{value=\"plain\"} 0\n"
            "odd_total{value=\"quote\\\"d\"} 1\n");
}

TEST(MetricsTest, EscapeFunctionsLeaveOtherBytesAlone) {
  EXPECT_EQ(internal::EscapeLabelValue("a\"b\\c\nd\te\xc3\xa9"), "a\\\"b\\\\c\\nd\te\xc3\xa9");
  EXPECT_EQ(internal::EscapeHelp("a\"b\\c\nd"), "a\"b\\\\c\\nd");
}

TEST(MetricsTest, ValidatesMetricNames) {
  for (const char* good : {"a", "_", ":", "edgelink_x:y_total", "A9", "_9:"}) {
    EXPECT_TRUE(internal::IsValidMetricName(good)) << good;
  }
  for (const char* bad : {"", "9a", "a-b", "a b", "a.b", "\xc3\xa9", "a{b}", "a\n"}) {
    EXPECT_FALSE(internal::IsValidMetricName(bad)) << bad;
  }
  Registry registry;
  EXPECT_THAT(registry.AddCounter("bad-name", "Help."),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad-name")));
  EXPECT_THAT(registry.AddGauge("1st", "Help."), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(registry.AddCallbackGauge("a b", "Help.", [] { return int64_t{0}; }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(registry.AddCounterFamily("x.y", "Help.", "reason", {"a"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(registry.RenderPrometheusText(), "");
}

TEST(MetricsTest, ValidatesLabelNames) {
  for (const char* good : {"reason", "_r", "R2_d2"}) {
    EXPECT_TRUE(internal::IsValidLabelName(good)) << good;
  }
  for (const char* bad : {"", "__reserved", "a:b", "9a", "a-b"}) {
    EXPECT_FALSE(internal::IsValidLabelName(bad)) << bad;
  }
  Registry registry;
  EXPECT_THAT(registry.AddCounterFamily("x_total", "Help.", "__name__", {"a"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(registry.AddCounterFamily("x_total", "Help.", "a:b", {"a"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MetricsTest, RejectsBadHelpLabelValuesAndCallbacks) {
  Registry registry;
  EXPECT_THAT(registry.AddCounter("x_total", ""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(registry.AddCounter("x_total", "bad \xff utf8"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(registry.AddCounterFamily("x_total", "Help.", "reason", {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(registry.AddCounterFamily("x_total", "Help.", "reason", {"a", "b", "a"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("repeated")));
  EXPECT_THAT(registry.AddCounterFamily("x_total", "Help.", "reason", {"ok", "\xc0\xaf"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("UTF-8")));
  EXPECT_THAT(registry.AddCallbackGauge("x", "Help.", nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // None of the failures registered anything, so the name is still free.
  EXPECT_THAT(registry.AddCounter("x_total", "Help."), IsOk());
}

TEST(MetricsTest, ValidatesUtf8) {
  for (const char* good : {"", "ascii", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                           "\xf4\x8f\xbf\xbf"}) {
    EXPECT_TRUE(internal::IsValidUtf8(good)) << good;
  }
  for (const char* bad : {"\x80", "\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
                          "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80", "\xe2\x82", "\xc3\x28"}) {
    EXPECT_FALSE(internal::IsValidUtf8(bad)) << bad;
  }
}

TEST(MetricsTest, RejectsDuplicateNamesAcrossTypes) {
  Registry registry;
  ASSERT_OK_AND_ASSIGN(Counter * first, registry.AddCounter("taken", "First."));
  EXPECT_THAT(registry.AddCounter("taken", "Again."), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(registry.AddGauge("taken", "Again."), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(registry.AddCounterFamily("taken", "Again.", "l", {"v"}),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(registry.AddCallbackGauge("taken", "Again.", [] { return int64_t{1}; }),
              StatusIs(absl::StatusCode::kAlreadyExists));
  first->Increment();
  EXPECT_EQ(registry.RenderPrometheusText(),
            "# HELP taken First.\n# TYPE taken counter\ntaken 1\n");
}

TEST(MetricsTest, FamilyFindsOnlyDeclaredValues) {
  Registry registry;
  ASSERT_OK_AND_ASSIGN(CounterFamily * family,
                       registry.AddCounterFamily("f_total", "F.", "reason", {"a", "b"}));
  EXPECT_EQ(family->label_name(), "reason");
  ASSERT_NE(family->Find("a"), nullptr);
  EXPECT_EQ(family->Find("a"), &family->Get("a"));
  EXPECT_NE(family->Find("a"), family->Find("b"));
  EXPECT_EQ(family->Find("c"), nullptr);
  EXPECT_EQ(family->Find(""), nullptr);
}

TEST(MetricsDeathTest, FamilyGetOfUndeclaredValueAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Registry registry;
  ASSERT_OK_AND_ASSIGN(CounterFamily * family,
                       registry.AddCounterFamily("f_total", "F.", "reason", {"a"}));
  EXPECT_DEATH(family->Get("nope"), "reason=\"nope\" was not declared");
}

TEST(MetricsTest, CallbackGaugeIsEvaluatedAtEachRender) {
  Registry registry;
  std::atomic<int64_t> attached{3};
  int calls = 0;
  ASSERT_THAT(registry.AddCallbackGauge("attached", "Attached devices.",
                                        [&] {
                                          ++calls;
                                          return attached.load();
                                        }),
              IsOk());
  EXPECT_EQ(calls, 0);  // Registration does not evaluate it.
  EXPECT_EQ(registry.RenderPrometheusText(),
            "# HELP attached Attached devices.\n# TYPE attached gauge\nattached 3\n");
  attached = -12;
  EXPECT_THAT(registry.RenderPrometheusText(), HasSubstr("\nattached -12\n"));
  EXPECT_EQ(calls, 2);
}

TEST(MetricsTest, ConcurrentUpdatesSumCorrectlyWhileRendering) {
  Registry registry;
  ASSERT_OK_AND_ASSIGN(Counter * counter, registry.AddCounter("c_total", "C."));
  ASSERT_OK_AND_ASSIGN(Gauge * gauge, registry.AddGauge("g", "G."));
  ASSERT_OK_AND_ASSIGN(CounterFamily * family,
                       registry.AddCounterFamily("f_total", "F.", "reason", {"a", "b"}));
  constexpr int kThreads = 8;
  constexpr int kIterations = 20000;

  std::atomic<bool> done{false};
  int renders = 0;
  std::thread renderer([&] {
    // Renders and registers concurrently with the updates; the totals seen only grow.
    uint64_t last_seen = 0;
    do {
      const std::string text = registry.RenderPrometheusText();
      const size_t at = text.find("\nc_total ");
      ASSERT_NE(at, std::string::npos);
      const uint64_t seen = std::stoull(text.substr(at + 9));
      EXPECT_GE(seen, last_seen);
      last_seen = seen;
      ++renders;
    } while (!done.load());
    EXPECT_THAT(registry.AddCounter("late_total", "Registered while serving."), IsOk());
  });

  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      Counter& mine = family->Get(t % 2 == 0 ? "a" : "b");
      for (int i = 0; i < kIterations; ++i) {
        counter->Increment();
        mine.Increment(2);
        gauge->Add(t % 2 == 0 ? 1 : -1);
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  done = true;
  renderer.join();

  EXPECT_GT(renders, 0);
  EXPECT_EQ(counter->value(), uint64_t{kThreads} * kIterations);
  EXPECT_EQ(family->Get("a").value(), uint64_t{kThreads / 2} * kIterations * 2);
  EXPECT_EQ(family->Get("b").value(), uint64_t{kThreads / 2} * kIterations * 2);
  EXPECT_EQ(gauge->value(), 0);
  const std::string text = registry.RenderPrometheusText();
  EXPECT_THAT(text, HasSubstr("\nc_total 160000\n"));
  EXPECT_THAT(text, HasSubstr("\nf_total{reason=\"a\"} 160000\n"));
  EXPECT_THAT(text, HasSubstr("\ng 0\n"));
  EXPECT_THAT(text, HasSubstr("\nlate_total 0\n"));
}

TEST(MetricsTest, StandaloneMetricsNeedNoRegistry) {
  // A sans-I/O core can own or be handed plain metrics; registering them is the binary's job.
  Counter counter;
  Gauge gauge;
  counter.Increment();
  counter.Increment(9);
  gauge.Set(4);
  gauge.Add(-1);
  EXPECT_EQ(counter.value(), 10u);
  EXPECT_EQ(gauge.value(), 3);
}

}  // namespace
}  // namespace edgelink::metrics

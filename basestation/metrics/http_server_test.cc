#include "basestation/metrics/http_server.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "basestation/metrics/metrics.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"

namespace edgelink::metrics {
namespace {

using ::edgelink::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kLoopback[] = "127.0.0.1";

std::unique_ptr<httplib::Client> MakeClient(int port) {
  auto client = std::make_unique<httplib::Client>(kLoopback, port);
  // A hung server fails the test instead of blocking it.
  client->set_connection_timeout(5);
  client->set_read_timeout(5);
  client->set_write_timeout(5);
  return client;
}

// Fetch GETs `path` and returns the response; fails the test on a transport error.
httplib::Response Fetch(int port, const std::string& path) {
  httplib::Result result = MakeClient(port)->Get(path.c_str());
  EXPECT_TRUE(result) << "GET " << path << " failed, httplib error "
                      << static_cast<int>(result.error());
  return result ? *result : httplib::Response();
}

// ScrapedValue reads the value of the sample line starting with `series` from a scrape.
uint64_t ScrapedValue(const std::string& text, const std::string& series) {
  const size_t at = text.find("\n" + series + " ");
  EXPECT_NE(at, std::string::npos) << series << " not in:\n" << text;
  if (at == std::string::npos) return 0;
  const size_t begin = at + series.size() + 2;
  uint64_t value = 0;
  EXPECT_TRUE(absl::SimpleAtoi(text.substr(begin, text.find('\n', begin) - begin), &value));
  return value;
}

class MetricsHttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto counter = registry_.AddCounter("edgelink_test_requests_total", "Requests seen.");
    ASSERT_TRUE(counter.ok()) << counter.status();
    counter_ = *counter;
    auto dropped = registry_.AddCounterFamily("edgelink_test_dropped_total", "Dropped, by reason.",
                                              "reason", {"malformed", "replay"});
    ASSERT_TRUE(dropped.ok()) << dropped.status();
    dropped_ = *dropped;
  }

  Registry registry_;
  Counter* counter_ = nullptr;
  CounterFamily* dropped_ = nullptr;
};

TEST_F(MetricsHttpServerTest, ServesMetricsInTextFormat) {
  counter_->Increment(4);
  dropped_->Get("replay").Increment();
  ASSERT_OK_AND_ASSIGN(auto server, MetricsHttpServer::Start(kLoopback, 0, &registry_));
  EXPECT_GT(server->port(), 0);

  httplib::Response response = Fetch(server->port(), "/metrics");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(response.body,
            "# HELP edgelink_test_dropped_total Dropped, by reason.\n"
            "# TYPE edgelink_test_dropped_total counter\n"
            "edgelink_test_dropped_total{reason=\"malformed\"} 0\n"
            "edgelink_test_dropped_total{reason=\"replay\"} 1\n"
            "# HELP edgelink_test_requests_total Requests seen.\n"
            "# TYPE edgelink_test_requests_total counter\n"
            "edgelink_test_requests_total 4\n");

  httplib::Result head = MakeClient(server->port())->Head("/metrics");
  ASSERT_TRUE(head) << static_cast<int>(head.error());
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->body, "");
}

TEST_F(MetricsHttpServerTest, HealthzSaysOk) {
  ASSERT_OK_AND_ASSIGN(auto server, MetricsHttpServer::Start(kLoopback, 0, &registry_));
  httplib::Response response = Fetch(server->port(), "/healthz");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "ok");
}

TEST_F(MetricsHttpServerTest, UnknownPathsAre404) {
  ASSERT_OK_AND_ASSIGN(auto server, MetricsHttpServer::Start(kLoopback, 0, &registry_));
  for (const char* path : {"/", "/nope", "/metricsx", "/metrics/x", "/healthz/", "/METRICS"}) {
    EXPECT_EQ(Fetch(server->port(), path).status, 404) << path;
  }
}

TEST_F(MetricsHttpServerTest, ScrapeShowsCounterIncrementedBetweenScrapes) {
  ASSERT_OK_AND_ASSIGN(auto server, MetricsHttpServer::Start(kLoopback, 0, &registry_));
  const std::string first = Fetch(server->port(), "/metrics").body;
  EXPECT_EQ(ScrapedValue(first, "edgelink_test_requests_total"), 0u);
  EXPECT_EQ(ScrapedValue(first, "edgelink_test_dropped_total{reason=\"malformed\"}"), 0u);

  counter_->Increment(17);
  dropped_->Get("malformed").Increment(2);
  const std::string second = Fetch(server->port(), "/metrics").body;
  EXPECT_EQ(ScrapedValue(second, "edgelink_test_requests_total"), 17u);
  EXPECT_EQ(ScrapedValue(second, "edgelink_test_dropped_total{reason=\"malformed\"}"), 2u);
}

TEST_F(MetricsHttpServerTest, CompressesWhenAsked) {
  ASSERT_OK_AND_ASSIGN(auto server, MetricsHttpServer::Start(kLoopback, 0, &registry_));
  auto client = MakeClient(server->port());
  client->set_decompress(false);
  httplib::Result result = client->Get("/metrics", {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(result) << static_cast<int>(result.error());
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->get_header_value("Content-Encoding"), "gzip");
  ASSERT_GE(result->body.size(), 2u);
  EXPECT_EQ(result->body.substr(0, 2), "\x1f\x8b");  // gzip magic
}

TEST_F(MetricsHttpServerTest, StopClosesThePortAndRestartServesAgain) {
  ASSERT_OK_AND_ASSIGN(auto server, MetricsHttpServer::Start(kLoopback, 0, &registry_));
  const int port = server->port();
  counter_->Increment();
  EXPECT_EQ(ScrapedValue(Fetch(port, "/metrics").body, "edgelink_test_requests_total"), 1u);

  server->Stop();
  server->Stop();  // Idempotent.
  httplib::Result refused = MakeClient(port)->Get("/metrics");
  EXPECT_FALSE(refused);
  EXPECT_EQ(refused.error(), httplib::Error::Connection);

  // The same port binds again at once (SO_REUSEADDR) and serves the same registry.
  counter_->Increment();
  ASSERT_OK_AND_ASSIGN(auto restarted, MetricsHttpServer::Start(kLoopback, port, &registry_));
  EXPECT_EQ(restarted->port(), port);
  EXPECT_EQ(ScrapedValue(Fetch(port, "/metrics").body, "edgelink_test_requests_total"), 2u);
  restarted.reset();  // The destructor stops too.
  EXPECT_FALSE(MakeClient(port)->Get("/healthz"));
}

TEST_F(MetricsHttpServerTest, StopsRightAfterStart) {
  // Stop before the accept loop has started must not hang (httplib's own stop() would).
  for (int i = 0; i < 50; ++i) {
    ASSERT_OK_AND_ASSIGN(auto server, MetricsHttpServer::Start(kLoopback, 0, &registry_));
    server->Stop();
  }
}

TEST_F(MetricsHttpServerTest, SecondServerOnABusyPortIsUnavailable) {
  ASSERT_OK_AND_ASSIGN(auto server, MetricsHttpServer::Start(kLoopback, 0, &registry_));
  EXPECT_THAT(MetricsHttpServer::Start(kLoopback, server->port(), &registry_),
              StatusIs(absl::StatusCode::kUnavailable));
  // The first server is unaffected.
  EXPECT_EQ(Fetch(server->port(), "/healthz").body, "ok");
}

TEST_F(MetricsHttpServerTest, RejectsBadArguments) {
  EXPECT_THAT(MetricsHttpServer::Start(kLoopback, 0, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(MetricsHttpServer::Start(kLoopback, -1, &registry_),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(MetricsHttpServer::Start(kLoopback, 65536, &registry_),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(MetricsHttpServer::Start("192.0.2.1", 0, &registry_),  // Not a local address.
              StatusIs(absl::StatusCode::kUnavailable));
  auto text = [] { return std::string("x"); };
  for (const char* path : {"", "devices", "/a b", "/a?b", "/(.*)", "/metrics", "/healthz"}) {
    EXPECT_THAT(MetricsHttpServer::Start(kLoopback, 0, &registry_, {{path, text}}),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << path;
  }
  EXPECT_THAT(MetricsHttpServer::Start(kLoopback, 0, &registry_, {{"/a", text}, {"/a", text}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("twice")));
  EXPECT_THAT(MetricsHttpServer::Start(kLoopback, 0, &registry_, {{"/a", nullptr}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(MetricsHttpServerTest, ServesExtraTextEndpoints) {
  std::atomic<int> devices{2};
  ASSERT_OK_AND_ASSIGN(
      auto server,
      MetricsHttpServer::Start(
          kLoopback, 0, &registry_,
          {{"/devices", [&] { return std::to_string(devices.load()) + " devices\n"; }},
           {"/v1.0/info", [] { return std::string("info"); }}}));
  httplib::Response response = Fetch(server->port(), "/devices");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "2 devices\n");
  EXPECT_EQ(response.get_header_value("Content-Type"), "text/plain; charset=utf-8");
  devices = 3;
  EXPECT_EQ(Fetch(server->port(), "/devices").body, "3 devices\n");
  EXPECT_EQ(Fetch(server->port(), "/v1.0/info").body, "info");
  // '.' in a path is literal, not a regex wildcard.
  EXPECT_EQ(Fetch(server->port(), "/v1x0/info").status, 404);
  EXPECT_EQ(Fetch(server->port(), "/metrics").status, 200);
}

TEST_F(MetricsHttpServerTest, ConcurrentScrapesWhileTheEventLoopCounts) {
  ASSERT_OK_AND_ASSIGN(auto server, MetricsHttpServer::Start(kLoopback, 0, &registry_));
  constexpr int kScrapers = 3;
  constexpr int kMinScrapes = 30;
  constexpr uint64_t kMinIncrements = 100000;
  std::atomic<int> scrapes{0};
  std::atomic<bool> done{false};
  uint64_t total = 0;

  // Stands in for the basestation's event loop: counts until the scrapers have overlapped it.
  std::thread event_loop([&] {
    uint64_t n = 0;
    do {
      counter_->Increment();
      if (n % 3 == 0) dropped_->Get("replay").Increment();
      ++n;
    } while (n < kMinIncrements || scrapes.load() < kMinScrapes);
    total = n;
    done = true;
  });
  std::vector<uint64_t> last_seen(kScrapers, 0);
  std::vector<std::thread> scrapers;
  for (int s = 0; s < kScrapers; ++s) {
    scrapers.emplace_back([&, s] {
      auto client = MakeClient(server->port());
      do {
        httplib::Result result = client->Get("/metrics");
        ASSERT_TRUE(result) << static_cast<int>(result.error());
        ASSERT_EQ(result->status, 200);
        const uint64_t seen = ScrapedValue(result->body, "edgelink_test_requests_total");
        EXPECT_GE(seen, last_seen[s]);  // A counter never goes back.
        last_seen[s] = seen;
        ++scrapes;
      } while (!done.load());
    });
  }
  event_loop.join();
  for (std::thread& scraper : scrapers) scraper.join();

  EXPECT_GE(scrapes.load(), kMinScrapes);
  for (uint64_t seen : last_seen) EXPECT_LE(seen, total);
  const std::string final_scrape = Fetch(server->port(), "/metrics").body;
  EXPECT_EQ(ScrapedValue(final_scrape, "edgelink_test_requests_total"), total);
  EXPECT_EQ(ScrapedValue(final_scrape, "edgelink_test_dropped_total{reason=\"replay\"}"),
            (total + 2) / 3);
}

}  // namespace
}  // namespace edgelink::metrics

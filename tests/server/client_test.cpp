// The C++ reward client: scores equal to in-process scoring, retries with backoff, and a
// clear error (never made-up rewards) when the server cannot answer.
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <thread>

#include <catch2/catch.hpp>

#include "rewards/server/client.h"
#include "tests/server/server_test_util.h"

namespace rl::rewards::server {
namespace {

using namespace rl::rewards::server::testing;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::string UrlOf(uint16_t port) { return "http://127.0.0.1:" + std::to_string(port); }

ClientOptions OptionsFor(uint16_t port) {
  ClientOptions options;
  options.urls = {UrlOf(port)};
  options.initial_backoff_s = 0.05;
  options.max_backoff_s = 0.2;
  return options;
}

struct Samples {
  std::vector<std::string> completions, golds;
  std::vector<rewards::Sample> samples;
  explicit Samples(int n) {
    for (int i = 0; i < n; ++i) {
      completions.push_back(R1Completion(std::to_string(i % 5)));
      golds.push_back(std::to_string(i % 3));
    }
    for (int i = 0; i < n; ++i) {
      rewards::Sample s;
      s.completion = completions[i];
      if (i % 11 != 10) s.gold = golds[i];  // some without gold: unscorable
      samples.push_back(s);
    }
  }
};

// The server counts a request once its answer is written, which may be just after the
// client has read it.
bool Eventually(const std::function<bool()>& condition) {
  const auto deadline = Clock::now() + milliseconds(2000);
  while (!condition() && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(1));
  return condition();
}

// Finds a loopback port nobody listens on (a server is started there and stopped).
uint16_t FreePort() {
  auto server = StartServer(TestConfig());
  const uint16_t port = server->port();
  server->Shutdown();
  server->Wait();
  return port;
}

TEST_CASE("client: scores equal in-process scoring, in chunks", "[server][client]") {
  auto server = StartServer(TestConfig());
  ClientOptions options = OptionsFor(server->port());
  options.max_items_per_request = 7;
  RewardClient client(options);
  Samples data(50);
  const std::vector<rewards::RewardResult> scores = client.Score(data.samples);
  REQUIRE(scores.size() == 50);
  const auto reward = MakeReward(kR1Spec);
  for (size_t i = 0; i < scores.size(); ++i) {
    const rewards::RewardResult expected = reward->Score(data.samples[i]);
    CHECK(scores[i].total == expected.total);
    CHECK(scores[i].status == expected.status);
    REQUIRE(scores[i].components.size() == 2);
    CHECK(scores[i].components[0].rule == "format.think_answer");
    CHECK(scores[i].components[1].rule == "accuracy.math");
    // Everything the wire form carries (the details of unscored rules included) arrived.
    CHECK(rewards::ToJson(scores[i]) == rewards::ToJson(expected));
  }
  CHECK(Eventually([&] { return server->metrics().requests_with_code(200) == 8; }));  // ceil(50 / 7)
  CHECK(client.Health()["default_reward"] == "r1");
  CHECK(client.Score({}).empty());
}

TEST_CASE("client: named reward and bearer token", "[server][client]") {
  ServerConfig config = TestConfig();
  config.auth_token = "tok";
  auto server = StartServer(config);
  Samples data(3);
  ClientOptions options = OptionsFor(server->port());
  options.reward = "format";
  options.auth_token = "tok";
  const auto scores = RewardClient(options).Score(data.samples);
  CHECK(scores[0].total == 0.5);
  CHECK_FALSE(scores[0].answer_check.has_value());

  options.auth_token = "";
  RewardClient no_token(options);
  const auto start = Clock::now();
  try {
    no_token.Score(data.samples);
    FAIL("expected RewardClientError");
  } catch (const RewardClientError& e) {
    CHECK(e.status() == 401);
    CHECK_THAT(e.what(), Catch::Contains("after 1 attempt ") && Catch::Contains("bearer token"));
  }
  CHECK(Clock::now() - start < milliseconds(1000));  // a 4xx is not retried
}

TEST_CASE("client: a rejected request fails at once with the server's message", "[server][client]") {
  auto server = StartServer(TestConfig());
  ClientOptions options = OptionsFor(server->port());
  options.reward = "nope";
  RewardClient client(options);
  Samples data(2);
  try {
    client.Score(data.samples);
    FAIL("expected RewardClientError");
  } catch (const RewardClientError& e) {
    CHECK(e.status() == 400);
    CHECK_THAT(e.what(), Catch::Contains("unknown reward 'nope'") && Catch::Contains("no rewards were produced"));
  }
  CHECK(client.stats().attempts == 1);  // not retried
  CHECK(Eventually([&] { return server->metrics().requests_total() == 1; }));
}

TEST_CASE("client: no server: retries with backoff, then a clear error", "[server][client][retry]") {
  ClientOptions options = OptionsFor(FreePort());
  options.max_attempts = 4;
  options.initial_backoff_s = 0.05;
  options.backoff_multiplier = 2;
  RewardClient client(options);
  Samples data(2);
  const auto start = Clock::now();
  try {
    client.Score(data.samples);
    FAIL("expected RewardClientError");
  } catch (const RewardClientError& e) {
    CHECK(e.status() == 0);
    CHECK_THAT(e.what(), Catch::Contains("failed after 4 attempts") && Catch::Contains("cannot connect"));
  }
  CHECK(client.stats().attempts == 4);
  CHECK(client.stats().connections == 0);
  // Equal jitter waits at least half of each backoff: (0.05 + 0.1 + 0.2) / 2 s.
  CHECK(Clock::now() - start >= milliseconds(170));
}

TEST_CASE("client: retries until the server comes up", "[server][client][retry]") {
  const uint16_t port = FreePort();
  ClientOptions options = OptionsFor(port);
  options.max_attempts = 30;
  options.initial_backoff_s = 0.05;
  options.max_backoff_s = 0.1;
  RewardClient client(options);
  Samples data(4);
  auto scores = std::async(std::launch::async, [&] { return client.Score(data.samples); });
  // The server comes up only once the client has failed to reach it twice.
  REQUIRE(Eventually([&] { return client.stats().attempts >= 2; }));
  ServerConfig config = TestConfig();
  config.port = port;
  auto server = StartServer(config);
  const auto result = scores.get();
  REQUIRE(result.size() == 4);
  CHECK(result[0].status == rewards::ScoreStatus::kOk);
  CHECK(client.stats().attempts >= 3);   // failed, failed, ..., then the answer
  CHECK(client.stats().connections == 1);
}

TEST_CASE("client: a stale keep-alive connection is replaced transparently", "[server][client]") {
  ServerConfig short_idle = TestConfig();
  short_idle.idle_timeout_ms = 100;  // so that shutting it down need not wait for our idle connection
  auto first = StartServer(short_idle);
  const uint16_t port = first->port();
  ClientOptions options = OptionsFor(port);
  options.max_attempts = 1;  // the reconnect is not a retry
  RewardClient client(options);
  Samples data(2);
  CHECK(client.Score(data.samples).size() == 2);
  // The server goes away (closing the pooled connection) and another takes its port.
  first->Shutdown();
  first->Wait();
  ServerConfig config = short_idle;  // its shutdown at the end need not wait for us either
  config.port = port;
  auto second = StartServer(config);
  CHECK(client.Score(data.samples).size() == 2);
  const ClientStats stats = client.stats();
  CHECK(stats.requests == 2);
  CHECK(stats.attempts == 2);
  CHECK(stats.connections == 2);
  CHECK(stats.reconnects == 1);
}

// One client of two servers, `a` first.
ClientOptions OptionsFor(const Server& a, const Server& b) {
  ClientOptions options = OptionsFor(a.port());
  options.urls.push_back(UrlOf(b.port()));
  return options;
}

// `threads` threads that each score every sample of `data`, one Score call per sample; each
// returns how many of its results equal in-process scoring (a call that throws fails it).
std::vector<std::future<size_t>> ScoreOnThreads(RewardClient& client, const Samples& data, int threads) {
  std::shared_ptr<const rewards::Reward> reward = MakeReward(kR1Spec);
  std::vector<std::future<size_t>> futures;
  for (int t = 0; t < threads; ++t) {
    futures.push_back(std::async(std::launch::async, [&client, &data, reward] {
      size_t same = 0;
      for (const rewards::Sample& sample : data.samples) {
        const auto scores = client.Score(std::span<const rewards::Sample>(&sample, 1));
        same += scores.size() == 1 && rewards::ToJson(scores[0]) == rewards::ToJson(reward->Score(sample)) ? 1 : 0;
      }
      return same;
    }));
  }
  return futures;
}

TEST_CASE("client: one thread's requests alternate over two servers", "[server][client][servers]") {
  auto a = StartServer(TestConfig());
  auto b = StartServer(TestConfig());
  RewardClient client(OptionsFor(*a, *b));
  Samples data(10);
  const auto reward = MakeReward(kR1Spec);
  for (const rewards::Sample& sample : data.samples) {
    const auto scores = client.Score(std::span<const rewards::Sample>(&sample, 1));
    REQUIRE(scores.size() == 1);
    CHECK(rewards::ToJson(scores[0]) == rewards::ToJson(reward->Score(sample)));
  }
  CHECK(client.stats().answered == std::vector<int64_t>{5, 5});
  CHECK(client.stats().attempts == 10);
}

TEST_CASE("client: concurrent requests spread over two servers", "[server][client][servers]") {
  auto a = StartServer(TestConfig());
  auto b = StartServer(TestConfig());
  RewardClient client(OptionsFor(*a, *b));
  Samples data(40);
  for (auto& t : ScoreOnThreads(client, data, 4)) CHECK(t.get() == 40);
  const ClientStats stats = client.stats();
  CHECK(stats.answered[0] + stats.answered[1] == 160);
  CHECK(stats.answered[0] > 0);
  CHECK(stats.answered[1] > 0);
  CHECK(stats.marked_down == 0);
}

TEST_CASE("client: a server that dies mid-run is passed over, nothing is lost", "[server][client][servers]") {
  ServerConfig short_idle = TestConfig();
  short_idle.idle_timeout_ms = 100;  // so that its shutdown need not wait for our idle connection
  auto a = StartServer(short_idle);
  auto b = StartServer(TestConfig());
  ClientOptions options = OptionsFor(*a, *b);
  options.down_s = 60;  // longer than the test: once down, a stays out of the rotation
  RewardClient client(options);
  Samples data(10);
  const auto reward = MakeReward(kR1Spec);
  auto score = [&](size_t i) {
    const auto scores = client.Score(std::span<const rewards::Sample>(&data.samples[i], 1));
    REQUIRE(scores.size() == 1);
    CHECK(rewards::ToJson(scores[0]) == rewards::ToJson(reward->Score(data.samples[i])));
  };
  for (size_t i = 0; i < 4; ++i) score(i);
  CHECK(client.stats().answered == std::vector<int64_t>{2, 2});
  a->Shutdown();
  a->Wait();
  for (size_t i = 4; i < 10; ++i) score(i);
  const ClientStats stats = client.stats();
  CHECK(stats.answered == std::vector<int64_t>{2, 8});
  CHECK(stats.marked_down == 1);  // found down once, then skipped
  CHECK(stats.attempts == 11);    // the one failed attempt at a, sent on to b at once
}

TEST_CASE("client: concurrent requests survive a server killed under them", "[server][client][servers]") {
  ServerConfig short_idle = TestConfig();
  short_idle.idle_timeout_ms = 100;
  auto a = StartServer(short_idle);
  auto b = StartServer(TestConfig());
  RewardClient client(OptionsFor(*a, *b));
  Samples data(30);
  std::vector<std::future<size_t>> threads = ScoreOnThreads(client, data, 4);
  REQUIRE(Eventually([&] { return client.stats().answered[0] >= 10; }));
  a->Shutdown();
  a->Wait();
  for (auto& t : threads) CHECK(t.get() == 30);  // every call answered, none threw
  CHECK(client.stats().answered[0] + client.stats().answered[1] == 120);
}

TEST_CASE("client: when no server answers, the error names each", "[server][client][servers][retry]") {
  const uint16_t port = FreePort();
  uint16_t other = FreePort();
  while (other == port) other = FreePort();
  ClientOptions options = OptionsFor(port);
  options.urls.push_back(UrlOf(other));
  options.max_attempts = 2;
  RewardClient client(options);
  Samples data(1);
  try {
    client.Score(data.samples);
    FAIL("expected RewardClientError");
  } catch (const RewardClientError& e) {
    CHECK(e.status() == 0);
    CHECK_THAT(e.what(), Catch::StartsWith("reward servers " + options.urls[0] + ", " + options.urls[1]) &&
                             Catch::Contains("failed after 4 attempts") && Catch::Contains("none answered (") &&
                             Catch::Contains(options.urls[1] + ": cannot connect") &&
                             Catch::Contains("no rewards were produced"));
  }
  CHECK(client.stats().attempts == 4);  // max_attempts at each
}

// A scripted HTTP peer: answers 503 (Retry-After: 0) `busy` times, then a fixed body.
class ScriptedPeer {
 public:
  ScriptedPeer(int busy, std::string final_body)
      : acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
        busy_(busy), final_body_(std::move(final_body)) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedPeer() { thread_.join(); }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int requests() const { return requests_; }

 private:
  void Serve() {
    for (int answered = 0; answered <= busy_;) {
      tcp::socket socket(ioc_);
      acceptor_.accept(socket);
      beast::flat_buffer buffer;
      beast::error_code ec;
      while (answered <= busy_) {
        http::request<http::string_body> req;
        http::read(socket, buffer, req, ec);
        if (ec) break;
        ++requests_;
        http::response<http::string_body> res{answered < busy_ ? http::status::service_unavailable
                                                                : http::status::ok, 11};
        res.set(http::field::content_type, "application/json");
        if (answered < busy_) res.set(http::field::retry_after, "0");
        res.body() = answered < busy_ ? R"({"error": "overloaded"})" : final_body_;
        res.prepare_payload();
        http::write(socket, res, ec);
        ++answered;
        if (ec) break;
      }
    }
  }

  net::io_context ioc_;
  tcp::acceptor acceptor_;
  int busy_;
  std::string final_body_;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

TEST_CASE("client: 503 is retried, then the answer is used", "[server][client][retry]") {
  ScriptedPeer peer(2, R"({"reward": "r1", "results": [{"reward": 1.5, "status": "ok", "verdict": "correct",
                           "extracted": "4", "components": {"b.rule": 1, "a.rule": 0.5}}]})");
  RewardClient client(OptionsFor(peer.port()));
  Samples data(1);
  const auto scores = client.Score(data.samples);
  CHECK(peer.requests() == 3);
  REQUIRE(scores.size() == 1);
  CHECK(scores[0].total == 1.5);
  REQUIRE(scores[0].answer_check.has_value());
  CHECK(scores[0].answer_check->extracted == "4");
  REQUIRE(scores[0].components.size() == 2);
  CHECK(scores[0].components[0].rule == "b.rule");  // the server's order is kept
}

TEST_CASE("client: 503 on every attempt ends in a clear error", "[server][client][retry]") {
  ScriptedPeer peer(3, "{}");
  ClientOptions options = OptionsFor(peer.port());
  options.max_attempts = 3;
  Samples data(1);
  {
    RewardClient client(options);
    try {
      client.Score(data.samples);
      FAIL("expected RewardClientError");
    } catch (const RewardClientError& e) {
      CHECK(e.status() == 503);
      CHECK_THAT(e.what(), Catch::Contains("failed after 3 attempts") && Catch::Contains("HTTP 503: overloaded"));
    }
  }  // closes its connection
  // Let the peer finish its script.
  RewardClient(OptionsFor(peer.port())).Health();
}

TEST_CASE("client: a wrong number of results is an error, not a guess", "[server][client]") {
  ScriptedPeer peer(0, R"({"reward": "r1", "results": []})");
  RewardClient client(OptionsFor(peer.port()));
  Samples data(2);
  CHECK_THROWS_WITH(client.Score(data.samples), Catch::Contains("other than 2 results"));
}

TEST_CASE("client: a result not in the wire form is an error naming the key", "[server][client]") {
  ScriptedPeer peer(0, R"({"reward": "r1", "results": [{"reward": 1, "status": "fine", "components": {}}]})");
  RewardClient client(OptionsFor(peer.port()));
  Samples data(1);
  CHECK_THROWS_WITH(client.Score(data.samples),
                    Catch::Contains("malformed result") && Catch::Contains("status: expected one of ok"));
}

TEST_CASE("client: bad options are rejected", "[server][client]") {
  ClientOptions options;
  options.urls = {"https://example.org"};
  CHECK_THROWS_AS(RewardClient(options), RewardClientError);
  options.urls = {"http://127.0.0.1:notaport"};
  CHECK_THROWS_AS(RewardClient(options), RewardClientError);
  options.urls = {"http://[::1]:8000"};
  CHECK_NOTHROW(RewardClient(options));
  options.urls = {};
  CHECK_THROWS_WITH(RewardClient(options), Catch::Contains("no server url"));
  options.urls = {"http://[::1]:8000", "http://127.0.0.1:8000", "http://[::1]:8000"};
  CHECK_THROWS_WITH(RewardClient(options), Catch::Contains("'http://[::1]:8000' is given twice"));
  options.urls = {"http://[::1]:8000"};
  options.max_attempts = 0;
  CHECK_THROWS_AS(RewardClient(options), RewardClientError);
}

}  // namespace
}  // namespace rl::rewards::server

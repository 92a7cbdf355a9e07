// The reward server over real HTTP on an ephemeral loopback port.
#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/server/server_test_util.h"

namespace rl::rewards::server {
namespace {

using namespace rl::rewards::server::testing;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

json GetRewardBody(const std::vector<std::string>& answers, const std::string& gold) {
  json body = {{"query", json::array()}, {"prompts", json::array()}, {"labels", json::array()}};
  const std::string prompt = ChatPrompt("Compute.");
  for (const std::string& a : answers) {
    body["query"].push_back(prompt + R1Completion(a));
    body["prompts"].push_back(prompt);
    body["labels"].push_back(gold);
  }
  return body;
}

// A batch big enough to stay in flight for a while (tens of milliseconds at least).
json BigScoreBody(size_t n) {
  json items = json::array();
  for (size_t i = 0; i < n; ++i) {
    items.push_back({{"completion", "<think>" + std::string(300, 'a') + "</think><answer>\\frac{" +
                                        std::to_string(i % 97 + 1) + "}{7} + " + std::to_string(i % 13) +
                                        "x</answer>"},
                     {"answer", std::to_string(i % 97 + 1) + "/7 + " + std::to_string(i % 13) + "*x"}});
  }
  return {{"items", items}};
}

bool WaitFor(const std::function<bool()>& condition, milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return condition();
}

TEST_CASE("http: both APIs, health and metrics on one keep-alive connection", "[server][http]") {
  auto server = StartServer(TestConfig());
  Connection c(server->port());
  const auto r1 = c.Post("/get_reward", GetRewardBody({"4", "5"}, "4").dump());
  REQUIRE(r1.result() == http::status::ok);
  CHECK(r1.keep_alive());
  CHECK(ParseBody(r1)["rewards"] == json({2.0, 1.0}));
  const auto r2 = c.Post("/v1/score", json({{"items", {{{"completion", R1Completion("4")}, {"answer", "4"}}}}}).dump());
  REQUIRE(r2.result() == http::status::ok);
  CHECK(ParseBody(r2)["results"][0]["verdict"] == "correct");
  const auto health = c.Get("/health");
  CHECK(ParseBody(health)["status"] == "ok");
  const auto metrics = c.Get("/metrics");
  CHECK_THAT(metrics.body(), Catch::Contains("rl_server_requests_total{endpoint=\"/get_reward\",code=\"200\"} 1"));
  CHECK_THAT(metrics.body(), Catch::Contains("rl_server_items_total{endpoint=\"/get_reward\",code=\"200\"} 2"));
  CHECK_THAT(metrics.body(), Catch::Contains("rl_server_verdicts_total{verdict=\"correct\"} 2"));
  CHECK_THAT(metrics.body(), Catch::Contains("rl_server_verdicts_total{verdict=\"incorrect\"} 1"));
}

TEST_CASE("http: a large batch is scored by the workers, identical to in process", "[server][http]") {
  ServerConfig config = TestConfig();
  config.chunk_items = 5;
  auto server = StartServer(config);
  Connection c(server->port());
  const json body = BigScoreBody(500);
  const auto res = c.Post("/v1/score", body.dump());
  REQUIRE(res.result() == http::status::ok);
  const json results = ParseBody(res)["results"];
  REQUIRE(results.size() == 500);
  const auto reward = MakeReward(kR1Spec);
  for (size_t i = 0; i < 500; i += 7) {
    rewards::Sample s;
    const std::string completion = body["items"][i]["completion"];
    const std::string answer = body["items"][i]["answer"];
    s.completion = completion;
    s.gold = answer;
    const rewards::RewardResult expected = reward->Score(s);
    REQUIRE(expected.total);
    CHECK(results[i]["reward"].get<double>() == *expected.total);
  }
}

TEST_CASE("http: every error class answers JSON and the server keeps answering", "[server][http][errors]") {
  ServerConfig config = TestConfig();
  config.max_body_bytes = 4096;
  auto server = StartServer(config);
  Connection c(server->port());
  auto error_of = [](const http::response<http::string_body>& res) {
    return ParseBody(res)["error"].get<std::string>();
  };
  const auto bad = c.Post("/get_reward", R"({"query": [1]})");
  CHECK(bad.result() == http::status::bad_request);
  CHECK_THAT(error_of(bad), Catch::Contains("query[0]: expected a string"));
  CHECK(c.Post("/get_reward", "{not json").result() == http::status::bad_request);
  CHECK(c.Get("/nope").result() == http::status::not_found);
  CHECK(c.Get("/v1/score").result() == http::status::method_not_allowed);
  CHECK(c.Post("/v1/score", "{}", "text/plain").result() == http::status::unsupported_media_type);
  const auto unscorable = c.Post("/get_reward", GetRewardBody({"4"}, "").dump());
  CHECK(unscorable.result() == http::status::unprocessable_entity);
  CHECK_THAT(error_of(unscorable), Catch::Contains("missing_gold"));
  // The same connection still works after all of these.
  CHECK(c.Post("/get_reward", GetRewardBody({"4"}, "4").dump()).result() == http::status::ok);

  SECTION("413 from Content-Length, before reading the body") {
    Connection big(server->port());
    const auto res = big.Post("/v1/score", std::string(5000, ' '));
    CHECK(res.result() == http::status::payload_too_large);
    CHECK_THAT(error_of(res), Catch::Contains("max_body_bytes (4096 bytes)"));
    CHECK_FALSE(res.keep_alive());
  }
  SECTION("413 from a chunked body over the limit") {
    Connection chunked(server->port());
    std::string request =
        "POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 10; ++i) request += "3e8\r\n" + std::string(1000, ' ') + "\r\n";
    request += "0\r\n\r\n";
    chunked.WriteRaw(request);
    const auto res = chunked.Read();
    CHECK(res.result() == http::status::payload_too_large);
  }
  SECTION("malformed HTTP gets 400 and a closed connection") {
    Connection garbage(server->port());
    garbage.WriteRaw("THIS IS NOT HTTP\r\n\r\n");
    const auto [data, closed] = garbage.ReadUntilClosed(milliseconds(3000));
    CHECK_THAT(data, Catch::StartsWith("HTTP/1.1 400"));
    CHECK_THAT(data, Catch::Contains("\"error\""));
    CHECK(closed);
  }
  CHECK(Connection(server->port()).Get("/health").result() == http::status::ok);
}

TEST_CASE("http: pipelined requests are answered in order", "[server][http]") {
  auto server = StartServer(TestConfig());
  Connection c(server->port());
  std::string both;
  for (const char* answer : {"4", "5"}) {
    both += RawPost("/get_reward", GetRewardBody({answer}, "4").dump());
  }
  c.WriteRaw(both);
  CHECK(ParseBody(c.Read())["rewards"] == json({2.0}));
  CHECK(ParseBody(c.Read())["rewards"] == json({1.0}));
}

TEST_CASE("http: a client leaving mid-batch costs nothing but the batch", "[server][http]") {
  ServerConfig config = TestConfig();
  config.score_threads = 1;
  auto server = StartServer(config);
  {
    Connection gone(server->port());
    gone.WriteRaw(RawPost("/v1/score", BigScoreBody(5000).dump()));
    REQUIRE(WaitFor([&] { return server->metrics().items_in_flight.load() > 0; }, milliseconds(20000)));
  }  // closed while its batch is being scored
  CHECK(Connection(server->port()).Post("/get_reward", GetRewardBody({"4"}, "4").dump()).result() ==
        http::status::ok);
  CHECK(WaitFor([&] { return server->metrics().items_in_flight.load() == 0; }, milliseconds(20000)));
  CHECK(WaitFor([&] { return server->metrics().requests_in_flight.load() == 0; }, milliseconds(2000)));
}

TEST_CASE("http: bearer token", "[server][http][auth]") {
  ServerConfig config = TestConfig();
  config.auth_token = "tok";
  auto server = StartServer(config);
  Connection c(server->port());
  const std::string body = GetRewardBody({"4"}, "4").dump();
  CHECK(c.Post("/get_reward", body).result() == http::status::unauthorized);
  CHECK(c.Post("/get_reward", body, "application/json", "bad").result() == http::status::unauthorized);
  CHECK(c.Post("/get_reward", body, "application/json", "tok").result() == http::status::ok);
  CHECK(c.Get("/metrics").result() == http::status::unauthorized);
  CHECK(c.Get("/metrics", "tok").result() == http::status::ok);
  CHECK(c.Get("/health").result() == http::status::ok);
}

TEST_CASE("http: Expect: 100-continue", "[server][http]") {
  auto server = StartServer(TestConfig());
  Connection c(server->port());
  const std::string body = GetRewardBody({"4"}, "4").dump();
  c.WriteRaw("POST /get_reward HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Expect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n");
  const auto interim = c.Read();
  CHECK(interim.result() == http::status::continue_);
  c.WriteRaw(body);
  const auto res = c.Read();
  REQUIRE(res.result() == http::status::ok);
  CHECK(ParseBody(res)["rewards"] == json({2.0}));
}

TEST_CASE("http: clients that stall are timed out, others are served meanwhile", "[server][http][timeouts]") {
  ServerConfig config = TestConfig();
  config.idle_timeout_ms = 400;
  config.header_timeout_ms = 300;
  config.body_timeout_ms = 300;
  auto server = StartServer(config);
  Connection stall_header(server->port());
  stall_header.WriteRaw("POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: applic");
  Connection stall_body(server->port());
  stall_body.WriteRaw("POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Content-Length: 100\r\n\r\n{\"items\": [");
  Connection idle(server->port());
  // A healthy client is answered while three connections stall.
  CHECK(Connection(server->port()).Post("/get_reward", GetRewardBody({"4"}, "4").dump()).result() ==
        http::status::ok);
  // The server's timeouts (300-400 ms) close all three well within the wait; two get a 408.
  CHECK(stall_header.ReadUntilClosed(milliseconds(5000)).second);
  CHECK(stall_body.ReadUntilClosed(milliseconds(5000)).second);
  CHECK(idle.ReadUntilClosed(milliseconds(5000)).second);
  CHECK(WaitFor([&] { return server->metrics().requests_with_code(408) == 2; }, milliseconds(2000)));
}

TEST_CASE("http: 64 concurrent clients get exactly the in-process rewards", "[server][http][concurrency]") {
  ServerConfig config = TestConfig();
  config.io_threads = 2;
  auto server = StartServer(config);
  const auto reward = MakeReward(kR1Spec);
  const std::vector<std::string> answers = {"4", "5", "\\frac{8}{2}", "4.0", "2+2", "x", "\\sqrt{16}", "3"};
  std::atomic<int> mismatches{0}, failures{0}, requests{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 64; ++t) {
    clients.emplace_back([&, t] {
      try {
        Connection c(server->port());
        for (int k = 0; k < 12; ++k) {
          // Single items (what OpenRLHF sends) and small batches, different per client.
          std::vector<std::string> batch;
          const int n = (k % 3 == 0) ? 1 + (t + k) % 7 : 1;
          for (int i = 0; i < n; ++i) batch.push_back(answers[(t * 7 + k * 3 + i) % answers.size()]);
          const auto res = c.Post("/get_reward", GetRewardBody(batch, "4").dump());
          ++requests;
          if (res.result() != http::status::ok) {
            ++failures;
            continue;
          }
          const json out = ParseBody(res);
          for (int i = 0; i < n; ++i) {
            const std::string completion = R1Completion(batch[i]);
            rewards::Sample s;
            const std::string prompt = ChatPrompt("Compute.");
            s.prompt = prompt;
            s.completion = completion;
            s.gold = std::string_view("4");
            const auto expected = reward->Score(s);
            if (!expected.total || out["rewards"][i].get<double>() != *expected.total) ++mismatches;
          }
        }
      } catch (const std::exception&) {
        ++failures;
      }
    });
  }
  for (auto& t : clients) t.join();
  CHECK(requests == 64 * 12);
  CHECK(failures == 0);
  CHECK(mismatches == 0);
  // Counted down once each answer is written (possibly just after the client read it).
  CHECK(WaitFor([&] { return server->metrics().items_in_flight.load() == 0; }, milliseconds(2000)));
}

TEST_CASE("http: beyond max_inflight_items the answer is 503 with Retry-After", "[server][http][backpressure]") {
  ServerConfig config = TestConfig();
  config.max_inflight_items = 40000;
  config.score_threads = 1;
  auto server = StartServer(config);
  auto big = std::async(std::launch::async, [&] {
    Connection c(server->port());
    return c.Post("/v1/score", BigScoreBody(40000).dump());
  });
  REQUIRE(WaitFor([&] { return server->metrics().items_in_flight.load() > 0; }, milliseconds(20000)));
  // While the batch holds every slot, each small request is turned away.
  Connection small(server->port());
  const auto res = small.Post("/get_reward", GetRewardBody({"4"}, "4").dump());
  CHECK(res.result() == http::status::service_unavailable);
  CHECK(res[http::field::retry_after] == "1");
  CHECK_THAT(ParseBody(res)["error"].get<std::string>(), Catch::Contains("max_inflight_items"));
  const auto big_res = big.get();
  CHECK(big_res.result() == http::status::ok);
  CHECK(ParseBody(big_res)["results"].size() == 40000);
  // Once the batch is answered, small requests are admitted again.
  REQUIRE(WaitFor([&] { return server->metrics().items_in_flight.load() == 0; }, milliseconds(2000)));
  CHECK(small.Post("/get_reward", GetRewardBody({"4"}, "4").dump()).result() == http::status::ok);
}

TEST_CASE("http: shutdown stops accepting and finishes requests in flight", "[server][http][shutdown]") {
  ServerConfig config = TestConfig();
  config.score_threads = 1;
  auto server = StartServer(config);
  const uint16_t port = server->port();
  auto big = std::async(std::launch::async, [&] {
    Connection c(port);
    return c.Post("/v1/score", BigScoreBody(40000).dump());
  });
  REQUIRE(WaitFor([&] { return server->metrics().items_in_flight.load() > 0; }, milliseconds(20000)));
  server->Shutdown();
  // New connections are refused once the listener has closed.
  CHECK(WaitFor([&] {
    try {
      Connection c(port);
      return false;
    } catch (const std::exception&) {
      return true;
    }
  }, milliseconds(2000)));
  const auto res = big.get();
  REQUIRE(res.result() == http::status::ok);
  CHECK(ParseBody(res)["results"].size() == 40000);
  server->Wait();
  CHECK(server->metrics().requests_in_flight.load() == 0);
}

// A stopped server used to keep idle keep-alive sockets open until it was destroyed: a
// client's next request then waited for its own timeout (120 s in a client test).
TEST_CASE("http: idle keep-alive connections are closed when Wait returns", "[server][http][shutdown]") {
  auto server = StartServer(TestConfig());
  Connection idle(server->port());
  REQUIRE(idle.Get("/health").result() == http::status::ok);
  // A round trip on another connection: by its end the first one waits for its next request
  // (were Shutdown to come before, that session would close itself on seeing it).
  REQUIRE(Connection(server->port()).Get("/health").result() == http::status::ok);
  server->Shutdown();
  server->Wait();
  const auto [data, closed] = idle.ReadUntilClosed(milliseconds(30000));
  CHECK(closed);
  CHECK(data.empty());
}

TEST_CASE("http: a chunked trailer too large for Beast is answered 431, not a crash", "[server][http][errors]") {
  auto server = StartServer(TestConfig());
  Connection c(server->port());
  // Beast 1.74 throws std::length_error for a field value of 65,534 bytes or more.
  c.WriteRaw("GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Pad: " +
             std::string(65534, 'a') + "\r\n\r\n");
  const auto res = c.Read();
  CHECK(res.result() == http::status::request_header_fields_too_large);
  CHECK_THAT(ParseBody(res)["error"].get<std::string>(), Catch::Contains("trailer"));
  CHECK_FALSE(res.keep_alive());
  CHECK(Connection(server->port()).Get("/health").result() == http::status::ok);
  CHECK(server->metrics().uncaught_exceptions() == 0);
  // The 431 is counted once written, which the client may see first (CI's ASan run did).
  CHECK(WaitFor([&] { return server->metrics().requests_with_code(431) == 1; }, milliseconds(2000)));
  CHECK_THAT(Connection(server->port()).Get("/metrics").body(),
             Catch::Contains("rl_server_uncaught_exceptions_total 0") &&
                 Catch::Contains("rl_server_requests_total{endpoint=\"/health\",code=\"431\"} 1"));
}

// One item of a reward whose rule takes a while on a long completion (repetition.ngram over
// 4 MiB of distinct words: a third of a second or more), as a slow answer check would.
json SlowScoreBody() {
  std::string completion;
  for (int64_t i = 0; completion.size() < (4u << 20); ++i) {
    completion.append("w").append(std::to_string(i * 7919)).append(" ");
  }
  return {{"items", {{{"completion", completion}}}}, {"reward", "slow"}};
}

std::shared_ptr<const RewardRegistry> RegistryWithSlowReward() {
  std::string error;
  std::vector<NamedReward> named = {
      {"r1", "(in process)", MakeReward(kR1Spec)},
      {"slow", "(in process)", MakeReward("rules:\n  - {name: repetition.ngram, weight: 1}\n")}};
  std::shared_ptr<const RewardRegistry> registry = RewardRegistry::FromRewards(std::move(named), "r1", &error);
  INFO(error);
  REQUIRE(registry);
  return registry;
}

TEST_CASE("http: /health answers while every worker scores a slow single item", "[server][http][concurrency]") {
  ServerConfig config = TestConfig();
  config.io_threads = 1;
  config.score_threads = 1;
  auto server = StartServer(config, RegistryWithSlowReward());
  Connection slow(server->port());
  slow.WriteRaw(RawPost("/v1/score", SlowScoreBody().dump()));
  REQUIRE(WaitFor([&] { return server->metrics().items_in_flight.load() == 1; }, milliseconds(60000)));
  CHECK(Connection(server->port()).Get("/health").result() == http::status::ok);
  // Answered while the item was still being scored: not a byte of its answer has come (an
  // answer written first would already be here, loopback delivering as it is sent).
  CHECK(slow.Available() == 0);
  CHECK(server->metrics().items_in_flight.load() == 1);
  CHECK(slow.Read().result() == http::status::ok);
}

TEST_CASE("http: when the shutdown grace ends, a request still being scored is answered 503", "[server][http][shutdown]") {
  ServerConfig config = TestConfig();
  config.score_threads = 1;
  config.shutdown_grace_s = 0.1;
  auto server = StartServer(config);
  Connection c(server->port());
  c.WriteRaw(RawPost("/v1/score", BigScoreBody(40000).dump()));
  REQUIRE(WaitFor([&] { return server->metrics().items_in_flight.load() > 0; }, milliseconds(20000)));
  server->Shutdown();
  server->Wait();
  // Everything the client reads now was written before Wait returned.
  const auto [data, closed] = c.ReadUntilClosed(milliseconds(5000));
  CHECK_THAT(data, Catch::StartsWith("HTTP/1.1 503"));
  CHECK_THAT(data, Catch::Contains("shutdown grace"));
  CHECK(closed);
  CHECK(server->metrics().requests_with_code(200) == 0);
  CHECK(server->metrics().requests_in_flight.load() == 0);
  CHECK(server->metrics().items_in_flight.load() == 0);
}

TEST_CASE("http: start fails clearly on a bad address", "[server][http]") {
  ServerConfig config = TestConfig();
  config.host = "not an address";
  std::string error;
  CHECK_FALSE(Server::Start(config, MakeRegistry(), &error));
  CHECK_THAT(error, Catch::Contains("not an address"));
  auto first = StartServer(TestConfig());
  config.host = "127.0.0.1";
  config.port = first->port();
  error.clear();
  // Binding an address another server holds fails (SO_REUSEADDR does not allow two listeners).
  CHECK_FALSE(Server::Start(config, MakeRegistry(), &error));
  CHECK_THAT(error, Catch::Contains("cannot listen on 127.0.0.1:"));
}

}  // namespace
}  // namespace rl::rewards::server

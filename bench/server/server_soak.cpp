// Soak run of the reward server (a program, not a CTest test): minutes of mixed traffic from
// many keep-alive connections, then what came back by kind of request and status, and the
// server's memory over time.
//
//   build/bench/server/server_soak                        # 120 s against a server in process
//   build/bench/server/server_soak --seconds 600 --connections 128
//   build/bench/server/server_soak --url http://127.0.0.1:8000 --server-pid 4242
//
// The mix: good requests (/get_reward single items and batches, /v1/score, /health,
// /metrics), bad ones (malformed JSON and HTTP, wrong fields and numbers out of range,
// unknown paths and methods, oversized headers, trailers and bodies) and heavy ones (batches
// of 1024, answers that keep the verifier busy: sums of thousands of large powers). Run from the repository
// root, on loopback. It stops by itself after --seconds: requests then in flight are
// answered, or time out after --request-timeout-s.
//
// Every --sample-s it prints requests/s over the interval and the server's resident memory
// (VmRSS in /proc/<pid>/status; in process that is this program's, load generator included).
// At the end: requests/s overall; per kind, the requests by status (0: no answer), mean and
// max latency, and the answers a kind should not get; the server's own count of uncaught
// exceptions. Exit status 1 when any answer was unexpected.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bench/server/load.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using rl::bench::RawRequest;

// Statuses tallied one by one; any other goes to the last column.
constexpr std::array<int, 13> kStatuses = {0, 200, 400, 401, 404, 405, 408, 413, 415, 422, 431, 500, 503};

struct Kind {
  std::string name;
  int weight;                  // per mille of requests
  std::vector<int> expected;   // statuses this kind may get
  std::vector<RawRequest> requests;
};

// An answer that keeps the verifier busy: a sum of thousands of powers just under its bit budget.
std::string SlowAnswer() {
  std::string answer;
  for (int i = 0; i < 5000; ++i) answer += (i ? "+" : "") + std::string("3^{") + std::to_string(38000 + i % 3000) + "}";
  return answer;
}

std::vector<Kind> MakeKinds(const std::string& host, std::mt19937& rng) {
  using rl::bench::GetRequest;
  using rl::bench::GetRewardBody;
  using rl::bench::PostRequest;
  auto post = [&](std::string_view target, const std::string& body) { return PostRequest(target, body, host); };
  const std::string slow = json({{"items", {{{"completion", "<think>sum</think><answer>" + SlowAnswer() + "</answer>"},
                                             {"answer", "1"}}}}}).dump();
  json score_items = json::array();
  for (int i = 0; i < 8; ++i) {
    score_items.push_back({{"completion", "<think>7*6</think><answer>" + std::to_string(40 + i) + "</answer>"},
                           {"answer", "42"}, {"completion_tokens", 12}});
  }
  auto raw = [](std::vector<std::string> bytes) {
    std::vector<RawRequest> out;
    for (std::string& b : bytes) out.push_back({std::move(b)});
    return out;
  };
  std::vector<Kind> kinds = {
      {"good: /get_reward 1 item", 560, {200, 503}, {}},
      {"good: /get_reward 16 items", 120, {200, 503}, {}},
      {"good: /v1/score 8 items", 100, {200, 503}, raw({post("/v1/score", json({{"items", score_items}}).dump())})},
      {"good: /health, /metrics", 60, {200}, raw({GetRequest("/health", host), GetRequest("/metrics", host)})},
      {"heavy: /get_reward 1024 items", 3, {200, 503}, {}},
      {"heavy: slow math answer", 7, {200, 503}, raw({post("/v1/score", slow)})},
      {"bad: malformed JSON", 40, {400},
       raw({post("/get_reward", R"({"query": ["a")"), post("/v1/score", "{not json"), post("/v1/score", "")})},
      {"bad: wrong fields", 50, {400},
       raw({post("/get_reward", R"({"query": [1]})"), post("/get_reward", R"({"query": ["a"], "labels": [1e400]})"),
            post("/v1/score", R"({"items": [{"completion": "a", "completion_tokens": 9223372036854775808}]})"),
            post("/v1/score", R"({"items": [{"completion": 3}]})"), post("/get_reward", R"({"query": "a"})")})},
      {"bad: malformed HTTP", 20, {400},
       raw({"THIS IS NOT HTTP\r\n\r\n", "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            "POST /v1/score HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n"})},
      {"bad: unknown path, method, type", 30, {404, 405, 415},
       raw({GetRequest("/nope", host), GetRequest("/get_reward", host), post("/health", "{}"),
            "POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}"})},
      {"bad: oversized header, trailer, body", 10, {413, 431},
       raw({"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(40000, 'a') + "\r\n\r\n",
            "GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Pad: " +
                std::string(65534, 'a') + "\r\n\r\n",
            "POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000000\r\n\r\n"})},
  };
  for (int i = 0; i < 32; ++i) kinds[0].requests.push_back({post("/get_reward", GetRewardBody(1, rng))});
  for (int i = 0; i < 8; ++i) kinds[1].requests.push_back({post("/get_reward", GetRewardBody(16, rng))});
  for (int i = 0; i < 2; ++i) kinds[4].requests.push_back({post("/get_reward", GetRewardBody(1024, rng))});
  for (size_t k = 0; k < kinds.size(); ++k) {
    for (RawRequest& r : kinds[k].requests) r.kind = static_cast<int>(k);
  }
  return kinds;
}

// Picks a kind by weight and one of its requests, per connection; tallies every answer.
class SoakPlan : public rl::bench::LoadPlan {
 public:
  SoakPlan(std::vector<Kind> kinds, int connections)
      : kinds_(std::move(kinds)), tallies_(kinds_.size()) {
    for (int c = 0; c < connections; ++c) rngs_.emplace_back(1000 + c);
    for (const Kind& k : kinds_) total_weight_ += k.weight;
  }

  const RawRequest& Next(size_t connection) override {
    std::mt19937& rng = rngs_[connection];
    int pick = static_cast<int>(rng() % static_cast<unsigned>(total_weight_));
    size_t k = 0;
    while (pick >= kinds_[k].weight) pick -= kinds_[k++].weight;
    return kinds_[k].requests[rng() % kinds_[k].requests.size()];
  }

  void Record(size_t, const RawRequest& request, int status, double seconds) override {
    Tally& t = tallies_[request.kind];
    const auto it = std::find(kStatuses.begin(), kStatuses.end(), status);
    t.by_status[it - kStatuses.begin()].fetch_add(1, std::memory_order_relaxed);
    const auto us = static_cast<int64_t>(seconds * 1e6);
    t.sum_us.fetch_add(us, std::memory_order_relaxed);
    int64_t max = t.max_us.load(std::memory_order_relaxed);
    while (us > max && !t.max_us.compare_exchange_weak(max, us, std::memory_order_relaxed)) {
      // `max` now holds the latest maximum; try again while ours is larger.
    }
    answered_.fetch_add(1, std::memory_order_relaxed);
  }

  int64_t answered() const { return answered_.load(std::memory_order_relaxed); }

  // The table of the report; returns the number of unexpected answers.
  int64_t PrintReport() const {
    std::printf("\n%-38s %9s %9s %9s  %s\n", "kind", "requests", "mean ms", "max ms", "by status");
    int64_t unexpected = 0;
    for (size_t k = 0; k < kinds_.size(); ++k) {
      const Tally& t = tallies_[k];
      int64_t n = 0;
      std::string statuses, wrong;
      for (size_t s = 0; s <= kStatuses.size(); ++s) {
        const int64_t count = t.by_status[s].load();
        if (count == 0) continue;
        n += count;
        const std::string code = s < kStatuses.size() ? std::to_string(kStatuses[s]) : "other";
        statuses += code + ":" + std::to_string(count) + " ";
        const auto& ok = kinds_[k].expected;
        if (s == kStatuses.size() || std::find(ok.begin(), ok.end(), kStatuses[s]) == ok.end()) {
          unexpected += count;
          wrong += code + " ";
        }
      }
      std::printf("%-38s %9lld %9.2f %9.1f  %s%s\n", kinds_[k].name.c_str(), static_cast<long long>(n),
                  n ? t.sum_us.load() / 1e3 / n : 0.0, t.max_us.load() / 1e3, statuses.c_str(),
                  wrong.empty() ? "" : ("  UNEXPECTED: " + wrong).c_str());
    }
    return unexpected;
  }

 private:
  struct Tally {
    std::array<std::atomic<int64_t>, kStatuses.size() + 1> by_status{};
    std::atomic<int64_t> sum_us{0};
    std::atomic<int64_t> max_us{0};
  };

  std::vector<Kind> kinds_;
  int total_weight_ = 0;
  std::vector<std::mt19937> rngs_;
  std::vector<Tally> tallies_;
  std::atomic<int64_t> answered_{0};
};

// VmRSS of /proc/<pid>/status in MiB; -1 when it cannot be read.
double RssMiB(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024;
  }
  return -1;
}

// The server's rl_server_uncaught_exceptions_total, from GET /metrics; -1 when unavailable.
long long UncaughtExceptions(const tcp::endpoint& endpoint) {
  try {
    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(10));
    stream.connect(endpoint);
    http::write(stream, http::request<http::empty_body>{http::verb::get, "/metrics", 11});
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    constexpr std::string_view kSeries = "\nrl_server_uncaught_exceptions_total ";
    const size_t at = res.body().find(kSeries);
    return at == std::string::npos ? -1 : std::stoll(res.body().substr(at + kSeries.size()));
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Reward server soak: minutes of mixed good, bad and heavy requests"};
  rl::bench::TargetOptions target_options;
  std::string server_pid;
  double seconds = 120, sample_s = 10, request_timeout_s = 60;
  int connections = 64;
  rl::bench::AddTargetOptions(app, &target_options);
  app.add_option("--seconds", seconds, "how long to run");
  app.add_option("--server-pid", server_pid, "with --url: the server's pid, for its memory");
  app.add_option("--connections", connections, "keep-alive connections");
  app.add_option("--sample-s", sample_s, "seconds between progress lines");
  app.add_option("--request-timeout-s", request_timeout_s, "a request unanswered this long counts as status 0");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  rl::bench::Target target;
  std::string error;
  if (!rl::bench::OpenTarget(target_options, &target, &error)) {
    std::fprintf(stderr, "server_soak: %s\n", error.c_str());
    return 1;
  }
  const std::string& url = target_options.url;
  const std::string pid = url.empty() ? "self" : server_pid;
  std::mt19937 rng(7);
  SoakPlan plan(MakeKinds(target.endpoint.address().to_string(), rng), connections);
  std::printf("reward server soak: %s, %d connections, %.0f s, %u hardware threads\n",
              url.empty() ? "server in process (memory: this program's)" : url.c_str(), connections,
              seconds, std::thread::hardware_concurrency());

  net::io_context ioc;
  std::atomic<bool> stop{false};
  rl::bench::StartConnections(ioc, target.endpoint, connections, plan, stop,
                              std::chrono::milliseconds(static_cast<int64_t>(request_timeout_s * 1e3)));
  std::vector<std::thread> threads;
  for (int t = 0; t < target_options.client_threads; ++t) threads.emplace_back([&] { ioc.run(); });
  const Clock::time_point begin = Clock::now();
  for (int64_t last = 0; Clock::now() - begin < std::chrono::duration<double>(seconds);) {
    std::this_thread::sleep_for(std::chrono::duration<double>(std::min(sample_s, seconds)));
    const int64_t answered = plan.answered();
    std::printf("  t=%5.0f s  %8.0f req/s  rss %7.1f MiB\n",
                std::chrono::duration<double>(Clock::now() - begin).count(), (answered - last) / sample_s,
                pid.empty() ? -1.0 : RssMiB(pid));
    std::fflush(stdout);
    last = answered;
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();

  const int64_t unexpected = plan.PrintReport();
  std::printf("\n%lld requests in %.0f s: %.0f req/s; %lld unexpected answers; server: %lld uncaught "
              "exceptions\n", static_cast<long long>(plan.answered()), elapsed, plan.answered() / elapsed,
              static_cast<long long>(unexpected), UncaughtExceptions(target.endpoint));
  return unexpected == 0 ? 0 : 1;
}

// Load generator for the reward server: N keep-alive connections in a closed loop (each
// sends its next request when the previous answer arrives) for a bounded time, reporting
// requests/s, items/s and p50/p99 latency.
//
//   build/bench/server/server_bench                      # starts a server in process
//   build/bench/server/server_bench --url http://127.0.0.1:8000 --connections 64 --batch 1
//
// Requests are OpenRLHF /get_reward bodies (ChatML prompt + R1-style completion, gold label)
// of `--batch` items; the default reward is format.think_answer + accuracy.math
// (configs/rewards/r1.yaml). Run from the repository root. The load generator shares the
// machine with the server: on a small machine the figures are those of both together.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "bench/server/load.h"
#include "rewards/server/handlers.h"
#include "rewards/server/server.h"
#include "rewards/server/server_config.h"

namespace {

namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

// CPU seconds of this thread / this process: robust to other processes sharing the machine.
double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double ProcessCpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

// Per connection: its requests in turn, and its latencies while recording.
class BenchPlan : public rl::bench::LoadPlan {
 public:
  BenchPlan(std::vector<rl::bench::RawRequest> requests, int connections, const std::atomic<bool>& recording)
      : requests_(std::move(requests)), connections_(static_cast<size_t>(connections)), recording_(recording) {}

  // A few distinct bodies per connection, as many connections would send.
  const rl::bench::RawRequest& Next(size_t c) override {
    Connection& conn = connections_[c];
    const size_t per_connection = std::min<size_t>(requests_.size(), 4);
    return requests_[(c + conn.sent++ % per_connection) % requests_.size()];
  }

  void Record(size_t c, const rl::bench::RawRequest&, int status, double seconds) override {
    if (!recording_.load(std::memory_order_relaxed)) return;
    Connection& conn = connections_[c];
    if (status != 200) ++conn.errors;
    conn.latencies_us.push_back(seconds * 1e6);
  }

  struct Connection {
    size_t sent = 0;
    int64_t errors = 0;
    std::vector<double> latencies_us;  // of requests answered while recording
  };
  const std::vector<Connection>& connections() const { return connections_; }

 private:
  std::vector<rl::bench::RawRequest> requests_;
  std::vector<Connection> connections_;
  const std::atomic<bool>& recording_;
};

struct Result {
  double seconds = 0;
  double cpu_seconds = 0;  // of the whole process: load generator and in-process server
  int64_t requests = 0;
  int64_t errors = 0;
  double p50_ms = 0, p99_ms = 0;
};

Result RunScenario(const tcp::endpoint& endpoint, const std::string& target, int connections,
                   int batch, double warmup_s, double duration_s, int client_threads) {
  net::io_context ioc;
  std::atomic<bool> stop{false}, recording{false};
  std::mt19937 rng(1234 + batch);
  // A few distinct bodies (bounded memory for big batches).
  const int distinct = batch >= 64 ? 4 : 32;
  std::vector<rl::bench::RawRequest> requests;
  for (int i = 0; i < distinct; ++i) {
    requests.push_back({rl::bench::PostRequest(target, rl::bench::GetRewardBody(batch, rng),
                                               endpoint.address().to_string())});
  }
  BenchPlan plan(std::move(requests), connections, recording);
  rl::bench::StartConnections(ioc, endpoint, connections, plan, stop, std::chrono::milliseconds(0));
  std::vector<std::thread> threads;
  for (int t = 0; t < client_threads; ++t) threads.emplace_back([&] { ioc.run(); });
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup_s));
  recording = true;
  const auto begin = Clock::now();
  const double cpu_begin = ProcessCpuSeconds();
  std::this_thread::sleep_for(std::chrono::duration<double>(duration_s));
  recording = false;
  const double cpu_seconds = ProcessCpuSeconds() - cpu_begin;
  const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  stop = true;
  // Outstanding requests finish (each is answered), then the loop ends.
  for (auto& t : threads) t.join();

  Result r;
  r.seconds = seconds;
  r.cpu_seconds = cpu_seconds;
  std::vector<double> all;
  for (const BenchPlan::Connection& c : plan.connections()) {
    all.insert(all.end(), c.latencies_us.begin(), c.latencies_us.end());
    r.errors += c.errors;
  }
  r.requests = static_cast<int64_t>(all.size());
  if (!all.empty()) {
    std::sort(all.begin(), all.end());
    r.p50_ms = all[all.size() / 2] / 1e3;
    r.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)] / 1e3;
  }
  return r;
}

// The cost of one request without sockets: Route + Score + FinishJob, and Score alone.
void RunHandlerOnly(const rl::rewards::server::RewardRegistry& registry, int batch, double duration_s) {
  rl::rewards::server::ServerConfig config;
  rl::rewards::server::ServerMetrics metrics;
  const rl::rewards::server::HandlerContext context{config, registry, metrics};
  std::mt19937 rng(99);
  std::vector<rl::rewards::server::Request> requests;
  for (int i = 0; i < 32; ++i) {
    rl::rewards::server::Request req{http::verb::post, "/get_reward", 11};
    req.set(http::field::content_type, "application/json");
    req.body() = rl::bench::GetRewardBody(batch, rng);
    req.prepare_payload();
    requests.push_back(std::move(req));
  }
  // CPU microseconds per call of this thread (wall time would count other processes).
  auto per_call_us = [&](auto&& call) {
    int64_t calls = 0;
    const double begin = ThreadCpuSeconds();
    while (ThreadCpuSeconds() - begin < duration_s) call(calls++ % requests.size());
    return (ThreadCpuSeconds() - begin) * 1e6 / calls;
  };
  const double handle_us = per_call_us([&](size_t i) { rl::rewards::server::Handle(requests[i], context); });
  std::vector<std::unique_ptr<rl::rewards::server::ScoringJob>> jobs;
  for (const auto& req : requests) jobs.push_back(std::move(rl::rewards::server::Route(req, context).job));
  const double score_us = per_call_us([&](size_t i) { rl::rewards::server::ScoreItems(*jobs[i], 0, jobs[i]->size()); });
  const double route_us = per_call_us([&](size_t i) { rl::rewards::server::Route(requests[i], context); });
  std::printf("handler only, batch %d, CPU time: %.1f us/request (parse+validate %.1f, score %.1f, "
              "render %.1f), %.1f us/item scoring\n", batch, handle_us, route_us, score_us,
              handle_us - route_us - score_us, score_us / batch);
}

std::vector<int> ParseList(const std::string& text) {
  std::vector<int> out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t comma = text.find(',', pos);
    out.push_back(std::stoi(text.substr(pos, comma - pos)));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Reward server load generator (closed loop, keep-alive)"};
  rl::bench::TargetOptions target_options;
  std::string connections = "1,16,64,256", batches = "1,256";
  double duration_s = 3, warmup_s = 0.5;
  int repeats = 1;
  bool handler_only = false;
  rl::bench::AddTargetOptions(app, &target_options);
  app.add_option("--connections", connections, "comma-separated connection counts");
  app.add_option("--batch", batches, "comma-separated items per request");
  app.add_option("--duration-s", duration_s, "measured seconds per scenario");
  app.add_option("--warmup-s", warmup_s, "unmeasured seconds before each scenario");
  app.add_option("--repeats", repeats, "runs per scenario (the median is reported)");
  app.add_flag("--handler-only", handler_only, "time the request handler without sockets, then exit");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  if (handler_only) {
    rl::rewards::server::ServerConfig config;
    config.rewards = {{"r1", target_options.spec}};
    std::string error;
    auto registry = rl::rewards::server::RewardRegistry::FromConfig(config, &error);
    if (!registry) {
      std::fprintf(stderr, "server_bench: %s\n", error.c_str());
      return 1;
    }
    for (int batch : ParseList(batches)) RunHandlerOnly(*registry, batch, duration_s);
    return 0;
  }

  rl::bench::Target target;
  std::string error;
  if (!rl::bench::OpenTarget(target_options, &target, &error)) {
    std::fprintf(stderr, "server_bench: %s\n", error.c_str());
    return 1;
  }
  const tcp::endpoint& endpoint = target.endpoint;
  const rl::bench::TargetOptions& o = target_options;

  std::printf("reward server bench: /get_reward, %s, %u hardware threads, server %s "
              "(io %d, score %d), %d client thread(s), %.1f s per run, median of %d\n",
              o.spec.c_str(), std::thread::hardware_concurrency(), o.url.empty() ? "in process" : o.url.c_str(),
              o.io_threads, o.score_threads, o.client_threads, duration_s, repeats);
  std::printf("%6s %6s %12s %12s %9s %9s %7s %12s\n", "batch", "conns", "requests/s", "items/s", "p50 ms",
              "p99 ms", "errors", "cpu us/req");
  for (int batch : ParseList(batches)) {
    for (int conns : ParseList(connections)) {
      std::vector<Result> runs;
      for (int r = 0; r < repeats; ++r) {
        runs.push_back(RunScenario(endpoint, "/get_reward", conns, batch, warmup_s, duration_s, o.client_threads));
      }
      std::sort(runs.begin(), runs.end(), [](const Result& a, const Result& b) {
        return a.requests / a.seconds < b.requests / b.seconds;
      });
      const Result& m = runs[runs.size() / 2];
      const double rps = m.requests / m.seconds;
      std::printf("%6d %6d %12.0f %12.0f %9.3f %9.3f %7lld %12.1f\n", batch, conns, rps, rps * batch, m.p50_ms,
                  m.p99_ms, static_cast<long long>(m.errors), m.cpu_seconds * 1e6 / std::max<int64_t>(1, m.requests));
      std::fflush(stdout);
    }
  }
  return 0;
}

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
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "rewards/server/handlers.h"
#include "rewards/server/server.h"
#include "rewards/server/server_config.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

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

struct Problem {
  std::string question;
  std::string gold;
  std::string right;  // a correct answer as a model might write it
  std::string wrong;
};

const std::vector<Problem>& Problems() {
  static const std::vector<Problem> problems = {
      {"What is 3/4 + 1/8?", "\\frac{7}{8}", "\\frac{7}{8}", "\\frac{5}{8}"},
      {"A train travels 150 km in 2.5 hours. What is its average speed in km/h?", "60", "60", "65"},
      {"Compute 17 * 23.", "391", "391", "401"},
      {"What is 0.125 as a fraction in lowest terms?", "\\frac{1}{8}", "1/8", "1/6"},
      {"What is 2^{10} - 24?", "1000", "\\boxed{1000}", "\\boxed{1024}"},
      {"Simplify 12/16.", "3/4", "\\frac{3}{4}", "\\frac{4}{3}"},
      {"What is 7.5% of 240?", "18", "18", "16"},
      {"Evaluate 1 + 2 + ... + 20.", "210", "210", "200"},
  };
  return problems;
}

std::string ChatPrompt(const std::string& question) {
  return "<|im_start|>system\nYou are a helpful assistant. Think step by step inside "
         "<think></think> and give the final answer inside <answer></answer>.<|im_end|>\n"
         "<|im_start|>user\n" + question + "<|im_end|>\n<|im_start|>assistant\n";
}

// An R1-style completion of realistic length (~1 KB): reasoning, then the answer. One in
// ten breaks the format, four in ten are wrong.
std::string Completion(const Problem& p, std::mt19937& rng) {
  static const std::vector<std::string> steps = {
      "First, let me restate the problem in my own words to make sure I understand it. ",
      "I will write down the quantities that are given and what is asked. ",
      "Let me compute the intermediate value carefully, keeping exact fractions. ",
      "Now I check the arithmetic again: multiplying back gives the original number. ",
      "Another way to see this is to split the expression into two simpler parts. ",
      "Wait, I should double-check the units and whether the question asks for a fraction. ",
      "Putting the pieces together, the result follows directly. ",
  };
  std::string text = "<think>\n";
  const int n = 6 + static_cast<int>(rng() % 8);
  for (int i = 0; i < n; ++i) text += steps[rng() % steps.size()];
  const bool right = rng() % 10 < 6;
  const std::string& answer = right ? p.right : p.wrong;
  text += "So the answer is " + answer + ".\n</think>\n";
  if (rng() % 10 == 0) return text + "The answer is " + answer + ".<|im_end|>";
  return text + "<answer>\n" + answer + "\n</answer><|im_end|>";
}

std::string GetRewardBody(int items, std::mt19937& rng) {
  json body = {{"query", json::array()}, {"prompts", json::array()}, {"labels", json::array()}};
  for (int i = 0; i < items; ++i) {
    const Problem& p = Problems()[rng() % Problems().size()];
    const std::string prompt = ChatPrompt(p.question);
    body["query"].push_back(prompt + Completion(p, rng));
    body["prompts"].push_back(prompt);
    body["labels"].push_back(p.gold);
  }
  return body.dump();
}

// One keep-alive connection in a closed loop.
class Conn : public std::enable_shared_from_this<Conn> {
 public:
  Conn(net::io_context& ioc, std::vector<std::string> bodies, const std::string& target,
       const std::string& host, const std::atomic<bool>& stop)
      : socket_(ioc), bodies_(std::move(bodies)), stop_(stop) {
    for (const std::string& b : bodies_) {
      http::request<http::string_body> req{http::verb::post, target, 11};
      req.set(http::field::host, host);
      req.set(http::field::content_type, "application/json");
      req.body() = b;
      req.prepare_payload();
      requests_.push_back(std::move(req));
    }
  }

  void Start(const tcp::endpoint& endpoint) {
    socket_.connect(endpoint);
    socket_.set_option(tcp::no_delay(true));
    Send();
  }

  std::vector<double> latencies_us;  // of requests answered while recording
  int64_t errors = 0;
  std::atomic<bool>* recording = nullptr;

 private:
  void Send() {
    if (stop_) return;
    start_ = Clock::now();
    auto& req = requests_[next_++ % requests_.size()];
    http::async_write(socket_, req, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Fail(ec);
      self->response_ = {};
      http::async_read(self->socket_, self->buffer_, self->response_,
                       [self](beast::error_code ec2, size_t) { self->OnRead(ec2); });
    });
  }

  void OnRead(beast::error_code ec) {
    if (ec) return Fail(ec);
    if (recording->load(std::memory_order_relaxed)) {
      if (response_.result() != http::status::ok) ++errors;
      latencies_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start_).count());
    }
    Send();
  }

  void Fail(beast::error_code ec) {
    if (!stop_) {
      ++errors;
      spdlog::warn("connection failed: {}", ec.message());
    }
  }

  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::vector<std::string> bodies_;
  std::vector<http::request<http::string_body>> requests_;
  http::response<http::string_body> response_;
  const std::atomic<bool>& stop_;
  Clock::time_point start_;
  size_t next_ = 0;
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
  // A few distinct bodies per connection (bounded memory for big batches).
  const int distinct = batch >= 64 ? 4 : 32;
  std::vector<std::string> pool;
  for (int i = 0; i < distinct; ++i) pool.push_back(GetRewardBody(batch, rng));
  std::vector<std::shared_ptr<Conn>> conns;
  for (int c = 0; c < connections; ++c) {
    std::vector<std::string> bodies;
    for (int i = 0; i < std::min(distinct, 4); ++i) bodies.push_back(pool[(c + i) % pool.size()]);
    auto conn = std::make_shared<Conn>(ioc, std::move(bodies), target, endpoint.address().to_string(), stop);
    conn->recording = &recording;
    conns.push_back(conn);
  }
  for (auto& c : conns) c->Start(endpoint);
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
  for (auto& c : conns) {
    all.insert(all.end(), c->latencies_us.begin(), c->latencies_us.end());
    r.errors += c->errors;
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
void RunHandlerOnly(const rl::server::RewardRegistry& registry, int batch, double duration_s) {
  rl::server::ServerConfig config;
  rl::server::ServerMetrics metrics;
  const rl::server::HandlerContext context{config, registry, metrics};
  std::mt19937 rng(99);
  std::vector<rl::server::Request> requests;
  for (int i = 0; i < 32; ++i) {
    rl::server::Request req{http::verb::post, "/get_reward", 11};
    req.set(http::field::content_type, "application/json");
    req.body() = GetRewardBody(batch, rng);
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
  const double handle_us = per_call_us([&](size_t i) { rl::server::Handle(requests[i], context); });
  std::vector<std::unique_ptr<rl::server::ScoringJob>> jobs;
  for (const auto& req : requests) jobs.push_back(std::move(rl::server::Route(req, context).job));
  const double score_us = per_call_us([&](size_t i) { rl::server::ScoreItems(*jobs[i], 0, jobs[i]->size()); });
  const double route_us = per_call_us([&](size_t i) { rl::server::Route(requests[i], context); });
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
  std::string url, spec = "configs/rewards/r1.yaml", connections = "1,16,64,256", batches = "1,256";
  double duration_s = 3, warmup_s = 0.5;
  int io_threads = 2, score_threads = 2, client_threads = 1, repeats = 1;
  bool handler_only = false;
  app.add_option("--url", url, "benchmark a running server (http://host:port); default: start one in process");
  app.add_option("--reward-spec", spec, "reward spec of the in-process server");
  app.add_option("--connections", connections, "comma-separated connection counts");
  app.add_option("--batch", batches, "comma-separated items per request");
  app.add_option("--duration-s", duration_s, "measured seconds per scenario");
  app.add_option("--warmup-s", warmup_s, "unmeasured seconds before each scenario");
  app.add_option("--repeats", repeats, "runs per scenario (the median is reported)");
  app.add_option("--io-threads", io_threads, "in-process server: io threads");
  app.add_option("--score-threads", score_threads, "in-process server: scoring workers");
  app.add_option("--client-threads", client_threads, "load generator threads");
  app.add_flag("--handler-only", handler_only, "time the request handler without sockets, then exit");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  if (handler_only) {
    rl::server::ServerConfig config;
    config.rewards = {{"r1", spec}};
    std::string error;
    auto registry = rl::server::RewardRegistry::FromConfig(config, &error);
    if (!registry) {
      std::fprintf(stderr, "server_bench: %s\n", error.c_str());
      return 1;
    }
    for (int batch : ParseList(batches)) RunHandlerOnly(*registry, batch, duration_s);
    return 0;
  }

  std::unique_ptr<rl::server::Server> server;
  std::string host = "127.0.0.1";
  std::string port;
  if (url.empty()) {
    rl::server::ServerConfig config;
    config.port = 0;
    config.io_threads = io_threads;
    config.score_threads = score_threads;
    config.summary_interval_s = 0;
    config.rewards = {{"r1", spec}};
    std::string error;
    std::shared_ptr<const rl::server::RewardRegistry> registry =
        rl::server::RewardRegistry::FromConfig(config, &error);
    if (registry) server = rl::server::Server::Start(config, registry, &error);
    if (!server) {
      std::fprintf(stderr, "server_bench: %s\n", error.c_str());
      return 1;
    }
    port = std::to_string(server->port());
  } else {
    const std::string authority = url.substr(url.find("//") + 2);
    host = authority.substr(0, authority.rfind(':'));
    port = authority.substr(authority.rfind(':') + 1);
  }
  const tcp::endpoint endpoint(net::ip::make_address(host), static_cast<uint16_t>(std::stoi(port)));

  std::printf("reward server bench: /get_reward, %s, %u hardware threads, server %s "
              "(io %d, score %d), %d client thread(s), %.1f s per run, median of %d\n",
              spec.c_str(), std::thread::hardware_concurrency(), url.empty() ? "in process" : url.c_str(),
              io_threads, score_threads, client_threads, duration_s, repeats);
  std::printf("%6s %6s %12s %12s %9s %9s %7s %12s\n", "batch", "conns", "requests/s", "items/s", "p50 ms",
              "p99 ms", "errors", "cpu us/req");
  for (int batch : ParseList(batches)) {
    for (int conns : ParseList(connections)) {
      std::vector<Result> runs;
      for (int r = 0; r < repeats; ++r) {
        runs.push_back(RunScenario(endpoint, "/get_reward", conns, batch, warmup_s, duration_s, client_threads));
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

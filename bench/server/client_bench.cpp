// Scoring throughput of the trainer's reward client (rewards/server/client.h) against one and
// against two `rl serve` processes, side by side in one run, with the rule library in process
// as the reference:
//
//   build/bench/server/client_bench --rl build/cli/rl
//   build/bench/server/client_bench --rl build/cli/rl --threads 2,8 --calls 4000 --repeats 5
//
// The load is the trainer's: T threads (the rollout's callback threads, rewards.threads) each
// scoring single completions, one Score call per completion as it finishes. The samples are
// R1-style completions of about 1 KB (bench/server/load.h). The program starts the servers
// itself (`rl serve --port 0 --port-file ...` with the given reward spec and their default
// threads) and stops them at the end; the one-server client and the two-server client share
// the first server, and the rounds of each configuration alternate, so that a change in the
// machine's load falls on all of them. Run from the repository root. On a machine with few
// cores the servers, the client threads and the in-process reference share them: the figures
// are those of the whole machine.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <span>
#include <stdexcept>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/server/load.h"
#include "rewards/reward.h"
#include "rewards/server/client.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

// An `rl serve` child process on a free loopback port; stopped (SIGTERM, then waited for) when
// destroyed.
class ServeProcess {
 public:
  ServeProcess(const std::string& rl, const std::string& spec, const std::string& port_file) {
    std::remove(port_file.c_str());
    std::vector<std::string> args = {rl, "serve", "--host", "127.0.0.1", "--port", "0", "--port-file",
                                     port_file, "--rewards", "r1=" + spec, "--summary-interval-s", "0"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    const int error = posix_spawn(&pid_, rl.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) throw std::runtime_error("cannot start " + rl + ": " + std::strerror(error));
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (port_ == 0 && Clock::now() < deadline) {
      std::ifstream(port_file) >> port_;
      if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (port_ == 0) throw std::runtime_error(rl + " serve wrote no port to " + port_file + " within 30 s");
  }
  ~ServeProcess() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = 0;
  int port_ = 0;
};

// Completions per second of `threads` threads scoring all `samples` one at a time with `score`.
double Throughput(const std::vector<rl::rewards::Sample>& samples, int threads,
                  const std::function<void(const rl::rewards::Sample&)>& score) {
  std::atomic<size_t> next{0};
  const auto start = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t i; (i = next++) < samples.size();) score(samples[i]);
    });
  }
  for (std::thread& t : pool) t.join();
  return static_cast<double>(samples.size()) / std::chrono::duration<double>(Clock::now() - start).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Throughput of the trainer's reward client against one and two `rl serve` processes"};
  std::string rl = "build/cli/rl", spec = "configs/rewards/r1.yaml";
  std::vector<int> thread_counts = {1, 2, 8};
  int calls = 2000, repeats = 5;
  app.add_option("--rl", rl, "the rl program")->check(CLI::ExistingFile);
  app.add_option("--spec", spec, "the reward spec the servers serve and the reference scores with")
      ->check(CLI::ExistingFile);
  app.add_option("--threads", thread_counts, "client threads (the trainer's rewards.threads)")->delimiter(',');
  app.add_option("--calls", calls, "completions scored per round")->check(CLI::PositiveNumber);
  app.add_option("--repeats", repeats, "rounds of each configuration (the median is shown)")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  std::string error;
  const auto reward = rl::rewards::Reward::FromYamlFile(spec, &error);
  if (!reward) {
    std::fprintf(stderr, "client_bench: %s\n", error.c_str());
    return 1;
  }
  std::mt19937 rng(3);
  const std::vector<rl::rewards::Sample> samples = rl::bench::RewardSamples(calls, rng);
  const std::string dir = "/tmp/client_bench." + std::to_string(getpid());
  ServeProcess a(rl, spec, dir + ".a"), b(rl, spec, dir + ".b");
  rl::rewards::server::ClientOptions one_options;
  one_options.urls = {a.url()};
  rl::rewards::server::ClientOptions two_options = one_options;
  two_options.urls.push_back(b.url());
  rl::rewards::server::RewardClient one(one_options), two(two_options);
  auto remote = [](rl::rewards::server::RewardClient& client) {
    return [&client](const rl::rewards::Sample& s) { client.Score(std::span<const rl::rewards::Sample>(&s, 1)); };
  };
  const std::function<void(const rl::rewards::Sample&)> configs[] = {
      [&](const rl::rewards::Sample& s) { reward->Score(s); }, remote(one), remote(two)};

  std::printf("reward client throughput: %d completions of ~1 KB per round, single-completion calls, "
              "median of %d rounds; %u hardware threads\n",
              calls, repeats, std::thread::hardware_concurrency());
  std::printf("%8s %14s %14s %14s %10s\n", "threads", "in process/s", "1 server/s", "2 servers/s", "2 / 1");
  for (int threads : thread_counts) {
    for (const auto& config : configs) Throughput(samples, threads, config);  // warm connections and caches
    std::vector<double> figures[3];
    for (int r = 0; r < repeats; ++r) {
      for (int c = 0; c < 3; ++c) figures[c].push_back(Throughput(samples, threads, configs[c]));
    }
    const double local = Median(figures[0]), single = Median(figures[1]), pair = Median(figures[2]);
    std::printf("%8d %14.0f %14.0f %14.0f %9.2fx\n", threads, local, single, pair, pair / single);
  }
  const auto stats = two.stats();
  std::printf("two-server client: %lld requests, answered %lld / %lld, %lld marked down\n",
              static_cast<long long>(stats.requests), static_cast<long long>(stats.answered[0]),
              static_cast<long long>(stats.answered[1]), static_cast<long long>(stats.marked_down));
  return 0;
}

#include "cli/torch/launch.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

namespace rl::cli {
namespace {

using Clock = std::chrono::steady_clock;

// The environment of rank `rank` of `nproc`: this process's, with the torchrun variables set
// to the launcher's store at 127.0.0.1:`port`.
std::vector<std::string> RankEnvironment(int rank, int nproc, int port) {
  const std::vector<std::pair<std::string, std::string>> set = {
      {"RANK", std::to_string(rank)},          {"LOCAL_RANK", std::to_string(rank)},
      {"WORLD_SIZE", std::to_string(nproc)},   {"LOCAL_WORLD_SIZE", std::to_string(nproc)},
      {"MASTER_ADDR", "127.0.0.1"},            {"MASTER_PORT", std::to_string(port)},
      {"TORCHELASTIC_USE_AGENT_STORE", "True"}};
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    if (std::none_of(set.begin(), set.end(), [&](const auto& v) { return v.first == name; })) env.push_back(entry);
  }
  for (const auto& [name, value] : set) env.push_back(name + "=" + value);
  return env;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Forks rank `rank` of `nproc`: this program with `args` and the torchrun variables. Everything
// the child needs is built before the fork: the launcher has threads (the store's), and a
// forked child of a threaded process may only make async-signal-safe calls before exec.
pid_t StartRank(int rank, int nproc, int port, const std::vector<std::string>& args) {
  std::vector<std::string> argv_text = {"rl"};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<std::string> env_text = RankEnvironment(rank, nproc, port);
  const std::vector<char*> argv = Pointers(argv_text), env = Pointers(env_text);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("--nproc: cannot start a rank (fork failed)");
  if (pid > 0) return pid;
  // The child: die with the launcher, even when it is killed outright.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(1);
  execve("/proc/self/exe", argv.data(), env.data());
  _exit(127);
}

int StatusOf(int wait_status) {
  return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

}  // namespace

int LaunchLocalRanks(int nproc, const std::vector<std::string>& args) {
  // The launcher serves the rendezvous store, as torchrun's agent does, on a port the system
  // picks and the store holds from the start: no other process can take it in between.
  c10d::TCPStoreOptions options;
  options.port = 0;
  options.isServer = true;
  options.waitWorkers = false;
  c10d::TCPStore store("127.0.0.1", options);
  std::vector<pid_t> ranks;
  for (int r = 0; r < nproc; ++r) ranks.push_back(StartRank(r, nproc, store.getPort(), args));
  int result = 0;
  size_t running = ranks.size();
  Clock::time_point kill_at = Clock::time_point::max();
  while (running > 0) {
    int wait_status = 0;
    const pid_t pid = waitpid(-1, &wait_status, WNOHANG);
    if (pid <= 0) {
      if (Clock::now() >= kill_at) {
        for (pid_t p : ranks) if (p > 0) kill(p, SIGKILL);
        kill_at = Clock::time_point::max();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    for (size_t r = 0; r < ranks.size(); ++r) {
      if (ranks[r] != pid) continue;
      ranks[r] = 0;
      --running;
      const int status = StatusOf(wait_status);
      if (status == 0 || result != 0) break;
      result = status;
      spdlog::error("rank {} of {} local ranks failed (status {}); stopping the other ranks", r, nproc, status);
      for (pid_t p : ranks) if (p > 0) kill(p, SIGTERM);
      kill_at = Clock::now() + std::chrono::seconds(10);
      break;
    }
  }
  return result;
}

}  // namespace rl::cli

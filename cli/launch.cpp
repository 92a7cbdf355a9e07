#include "cli/launch.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/ports.h"

namespace rl::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Forks rank `rank` of `nproc`: this program with `args` and the torchrun variables.
pid_t StartRank(int rank, int nproc, int port, const std::vector<std::string>& args) {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("--nproc: cannot start a rank (fork failed)");
  if (pid > 0) return pid;
  // The child: die with the launcher, even when it is killed outright.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(1);
  setenv("RANK", std::to_string(rank).c_str(), 1);
  setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
  setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  std::vector<std::string> argv_text = {"rl"};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  execv("/proc/self/exe", argv.data());
  _exit(127);
}

int StatusOf(int wait_status) {
  return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

}  // namespace

int LaunchLocalRanks(int nproc, const std::vector<std::string>& args) {
  const int port = common::FreeLoopbackPort();  // for rank 0's rendezvous store
  std::vector<pid_t> ranks;
  for (int r = 0; r < nproc; ++r) ranks.push_back(StartRank(r, nproc, port, args));
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

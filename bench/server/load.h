// bench/server/load.h: load generation shared by server_bench (throughput of one kind of
// request), server_soak (a long run of mixed good, bad and heavy requests) and client_bench
// (the trainer's client against one or more servers), and the server they load:
//
//   rl::bench::TargetOptions options;              // --url, --reward-spec, --io-threads, ...
//   rl::bench::AddTargetOptions(app, &options);    // on a CLI11 app
//   rl::bench::Target target;                      // a server in process, or at the URL
//   if (!rl::bench::OpenTarget(options, &target, &error)) ...
//
//   std::mt19937 rng(1);
//   std::string body = rl::bench::GetRewardBody(/*items=*/1, rng);
//   MyPlan plan;                                  // a LoadPlan: what to send, what came back
//   std::atomic<bool> stop{false};
//   boost::asio::io_context ioc;
//   rl::bench::StartConnections(ioc, target.endpoint, /*connections=*/64, plan, stop, timeout);
//   std::thread t([&] { ioc.run(); });            // returns once `stop` is set and the
//   ...; stop = true; t.join();                   // requests in flight are answered
//
// Each connection is kept alive and runs a closed loop: it sends its next request once the
// previous one is answered, and reopens itself when the server closes it (an answer with
// "Connection: close", or a failure; after a failure it waits 100 ms first).
//
// Thread safety: a connection calls its plan from the threads running `ioc`, never two calls
// for one connection at once; calls for different connections may be concurrent.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "rewards/reward.h"
#include "rewards/server/server.h"

namespace rl::bench {

// The server to load and the load generator's threads, as flags of both programs.
struct TargetOptions {
  std::string url;  // "http://127.0.0.1:8000" (an address, not a host name); empty: in process
  std::string spec = "configs/rewards/r1.yaml";  // in process: the reward, served as "r1"
  int io_threads = 2;                            // in process
  int score_threads = 2;                         // in process
  int client_threads = 1;                        // threads running the connections
};
void AddTargetOptions(CLI::App& app, TargetOptions* options);

struct Target {
  std::unique_ptr<rewards::server::Server> server;  // when started in process
  boost::asio::ip::tcp::endpoint endpoint;
};

// The server at options.url or, when it is empty, one started in process on an ephemeral
// loopback port. False with *error when the URL is malformed or the server cannot start.
bool OpenTarget(const TargetOptions& options, Target* target, std::string* error);

// An OpenRLHF /get_reward body of `items` samples: a ChatML prompt, an R1-style completion
// of realistic length (~1 KB, right six times in ten, the format broken once in ten) and the
// gold label.
std::string GetRewardBody(int items, std::mt19937& rng);

// `count` samples of the same kind (prompt, completion, gold), as the trainer's client sends
// them to /v1/score.
std::vector<rewards::Sample> RewardSamples(int count, std::mt19937& rng);

// Raw HTTP/1.1 requests (keep-alive) for `host`.
std::string PostRequest(std::string_view target, std::string_view json_body, std::string_view host);
std::string GetRequest(std::string_view target, std::string_view host);

// Raw request bytes (malformed ones included) and the plan's name for their kind.
struct RawRequest {
  std::string bytes;
  int kind = 0;
};

class LoadPlan {
 public:
  virtual ~LoadPlan() = default;
  // The next request of connection `connection` (0 .. connections - 1); must stay valid
  // until it is recorded.
  virtual const RawRequest& Next(size_t connection) = 0;
  // Its outcome: the answer's HTTP status, or 0 when none came (the connection failed or the
  // request timed out); `seconds` from sending (or reconnecting) to the answer.
  virtual void Record(size_t connection, const RawRequest& request, int status, double seconds) = 0;
};

// Starts `connections` connections on `ioc` (see above). A request unanswered after
// `request_timeout` is recorded with status 0; zero: no timeout.
void StartConnections(boost::asio::io_context& ioc, const boost::asio::ip::tcp::endpoint& endpoint,
                      int connections, LoadPlan& plan, const std::atomic<bool>& stop,
                      std::chrono::milliseconds request_timeout);

}  // namespace rl::bench

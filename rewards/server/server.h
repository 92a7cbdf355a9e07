// rewards/server/server.h: the standalone reward server behind `rl serve`.
//
//   rl::server::ServerConfig config;                       // 127.0.0.1:8000 by default
//   config.rewards = {{"r1", "configs/rewards/r1.yaml"}};
//   std::string error;
//   auto registry = rl::server::RewardRegistry::FromConfig(config, &error);
//   auto server = rl::server::Server::Start(config, std::move(registry), &error);
//   if (!server) { report(error); }
//   // ... POST http://127.0.0.1:<server->port()>/get_reward ...
//   server->Shutdown();   // or SIGINT/SIGTERM when config.handle_signals
//   server->Wait();
//
// Shape (Boost.Beast's async server): a listener accepts connections; each connection is a
// session on its own strand that reads a request (idle, header and body timeouts), routes it
// through the pure functions of handlers.h, and writes the answer (HTTP/1.1 keep-alive).
// Small requests are scored on the io thread; larger batches are split into chunks scored
// in parallel by a worker pool separate from the io threads, so scoring never blocks
// accepting or reading. Admission is bounded: beyond max_inflight_items the answer is 503
// with Retry-After. Shutdown stops accepting, lets every request already read finish
// (within shutdown_grace_s), then returns from Wait().
//
// Thread safety: Shutdown and the accessors may be called from any thread; Wait from one.
// Copying is disabled: a server owns sockets and threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "rewards/server/metrics.h"
#include "rewards/server/server_config.h"

namespace rl::server {

class Server {
 public:
  // Binds host:port and starts serving on config.io_threads threads. Null with *error
  // (naming the address and the reason) when the address cannot be bound. The config is
  // expected to be validated (ValidateServerConfig) and its token resolved.
  static std::unique_ptr<Server> Start(ServerConfig config,
                                       std::shared_ptr<const RewardRegistry> registry,
                                       std::string* error);
  // Shuts down gracefully and waits.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port (the ephemeral one when config.port was 0).
  uint16_t port() const;
  // Begins a graceful shutdown; returns at once. Idempotent.
  void Shutdown();
  // Blocks until the server has stopped (after Shutdown or a signal), then logs a summary.
  void Wait();

  const ServerMetrics& metrics() const;
  const ServerConfig& config() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rl::server

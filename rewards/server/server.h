// rewards/server/server.h: the standalone reward server behind `rl serve`.
//
//   rl::rewards::server::ServerConfig config;                       // 127.0.0.1:8000 by default
//   config.rewards = {{"r1", "configs/rewards/r1.yaml"}};
//   std::string error;
//   auto registry = rl::rewards::server::RewardRegistry::FromConfig(config, &error);
//   auto server = rl::rewards::server::Server::Start(config, std::move(registry), &error);
//   if (!server) { report(error); }
//   // ... POST http://127.0.0.1:<server->port()>/get_reward ...
//   server->Shutdown();   // or SIGINT/SIGTERM when config.handle_signals
//   server->Wait();
//
// Shape (Boost.Beast's async server): a listener accepts connections; each connection is a
// session on its own strand that reads a request (idle, header and body timeouts; the limits
// of request_reader.h), routes it through the pure functions of handlers.h, and writes the
// answer (HTTP/1.1 keep-alive). The io threads only read, validate and write: every request
// with items, a single item too, is scored by a worker pool separate from them (batches split
// into chunks scored in parallel), so a slow item never delays accepting, reading, /health
// or /metrics. Admission is bounded: beyond max_inflight_items the answer is 503 with
// Retry-After.
//
// Shutdown stops accepting and lets every request already read finish within
// shutdown_grace_s. When the grace is over, a request still being scored is answered 503 and
// every connection is closed; Wait() then returns once the workers have left the items they
// were scoring (each bounded by its rules' time budgets).
//
// An exception escaping a connection's handlers (a bug) ends that connection, answered 500
// or closed, never the process; it is logged and counted (rl_server_uncaught_exceptions_total).
//
// Errors: Start returns null with *error; a request's errors are its HTTP answer. Of
// rewards/server, only the client (client.h) throws.
//
// Thread safety: Shutdown and the accessors may be called from any thread; Wait from one.
// Copying is disabled: a server owns sockets and threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "rewards/server/metrics.h"
#include "rewards/server/server_config.h"

namespace rl::rewards::server {

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

}  // namespace rl::rewards::server

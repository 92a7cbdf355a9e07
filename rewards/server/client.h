// rewards/server/client.h: a C++ client of `rl serve` (POST /v1/score) for trainers that
// score over HTTP instead of in process.
//
//   rl::rewards::server::ClientOptions options;
//   options.url = "http://127.0.0.1:8000";        // where `rl serve` listens
//   options.reward = "r1";                         // a named reward; empty: the server's default
//   rl::rewards::server::RewardClient client(options);      // throws RewardClientError on a bad URL
//
//   std::vector<rl::rewards::Sample> samples = ...;   // the same samples Reward::Score takes
//   std::vector<rl::rewards::RewardResult> results = client.Score(samples);
//   // scores[i].reward is empty when sample i could not be scored; scores[i].status says why.
//
// Errors: connection errors, timeouts and answers 408/429/500/502/503/504 are retried up
// to max_attempts times with exponential backoff (initial_backoff_s, doubling, capped at
// max_backoff_s, with jitter; a 503's Retry-After is honoured). When the last attempt fails,
// or the server rejects the request (any other 4xx), Score throws RewardClientError naming
// the server, the endpoint, the attempts and the last error. It never returns made-up
// rewards: a request either yields the server's scores or throws.
//
// Thread safety: Score and Health may be called concurrently from any number of threads;
// each call uses its own keep-alive connection from a small pool. Copying is disabled
// because the client owns connections.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "rewards/reward.h"

namespace rl::rewards::server {

struct ClientOptions {
  std::string url = "http://127.0.0.1:8000";  // http://host:port of `rl serve`
  std::string reward;                         // named reward; empty: the server's default
  std::string auth_token;                     // bearer token; empty: none
  int max_attempts = 5;                       // attempts per request, the first included
  double initial_backoff_s = 0.1;
  double backoff_multiplier = 2;
  double max_backoff_s = 5;
  double connect_timeout_s = 5;
  double request_timeout_s = 120;             // writing a request and reading its answer
  size_t max_items_per_request = 4096;        // larger Score calls are sent in several requests
};

// Thrown when a request finally fails. `status` is the last HTTP status (0: no answer).
class RewardClientError : public std::runtime_error {
 public:
  RewardClientError(const std::string& message, int status)
      : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// What a client has done since it was made (for logs, and for tests that must see a retry or
// a reconnect happen rather than infer it from timing).
struct ClientStats {
  int64_t requests = 0;     // Score chunks and Health calls
  int64_t attempts = 0;     // exchanges tried; attempts - requests were retries
  int64_t connections = 0;  // connections opened
  int64_t reconnects = 0;   // pooled connections found stale and replaced within an attempt
};

class RewardClient {
 public:
  explicit RewardClient(ClientOptions options);
  ~RewardClient();
  RewardClient(const RewardClient&) = delete;
  RewardClient& operator=(const RewardClient&) = delete;

  // Scores samples with the configured reward; results[i] belongs to samples[i], read from the
  // server's answer with rewards::RewardResultFromJson (the wire form of reward.h; rule
  // weights are not carried: a component's weight is 1). Throws RewardClientError after the
  // final failure, or when the server answers something other than that form.
  std::vector<rewards::RewardResult> Score(std::span<const rewards::Sample> samples);
  // GET /health (status, version, rewards); throws RewardClientError on failure.
  nlohmann::json Health();

  const ClientOptions& options() const;
  ClientStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rl::rewards::server

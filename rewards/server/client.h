// rewards/server/client.h: a C++ client of `rl serve` (POST /v1/score) for trainers that
// score over HTTP instead of in process, against one server or several.
//
//   rl::rewards::server::ClientOptions options;
//   options.urls = {"http://127.0.0.1:8000", "http://127.0.0.1:8001"};  // where `rl serve`s listen
//   options.reward = "r1";                         // a named reward; empty: the server's default
//   rl::rewards::server::RewardClient client(options);      // throws RewardClientError on a bad URL
//
//   std::vector<rl::rewards::Sample> samples = ...;   // the same samples Reward::Score takes
//   std::vector<rl::rewards::RewardResult> results = client.Score(samples);
//   // scores[i].reward is empty when sample i could not be scored; scores[i].status says why.
//
// Several servers: each request goes to the server with the fewest requests of this client in
// flight (ties rotate, so that one thread's calls alternate). Concurrent calls spread; the
// chunks of one Score call go one after another.
//
// Errors: connection errors, timeouts and answers 408/429/500/502/503/504 mark the server down
// for down_s seconds (longer when a 503's Retry-After says so) and the request is sent at once to
// another server that is up. When none is up, it waits with exponential backoff
// (initial_backoff_s, doubling, capped at max_backoff_s, with jitter; at least the last
// Retry-After) and tries the server that comes back first. Each server gets at most
// max_attempts attempts per request; when all have had theirs, or a server rejects the request
// (any other 4xx: the request is at fault, not the server), Score throws RewardClientError
// naming the servers, the endpoint, the attempts and the last error of each. It never returns
// made-up rewards: a request either yields a server's scores or throws.
//
// Thread safety: Score and Health may be called concurrently from any number of threads;
// each call uses its own keep-alive connection from a small pool per server. Copying is
// disabled because the client owns connections.
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
  // http://host:port of each `rl serve`, at least one; the same server twice is an error.
  std::vector<std::string> urls = {"http://127.0.0.1:8000"};
  std::string reward;                         // named reward; empty: the server's default
  std::string auth_token;                     // bearer token; empty: none
  int max_attempts = 5;                       // attempts per request at each server, the first included
  double initial_backoff_s = 0.1;
  double backoff_multiplier = 2;
  double max_backoff_s = 5;
  double connect_timeout_s = 5;
  double request_timeout_s = 120;             // writing a request and reading its answer
  double down_s = 5;                          // a failed server is passed over this long
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
  int64_t marked_down = 0;  // failures that took a server out of the rotation for down_s
  std::vector<int64_t> answered;  // per server, in the order of options.urls: requests it answered
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

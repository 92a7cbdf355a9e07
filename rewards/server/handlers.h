// rewards/server/handlers.h: the reward server's request handling as plain functions of
// (request, configuration, rewards) — no sockets, so every answer is unit-testable:
//
//   rl::rewards::server::HandlerContext context{config, *registry, metrics};
//   rl::rewards::server::Response res = rl::rewards::server::Handle(request, context);   // scores in the caller
//
// The server splits the same work in three so that scoring runs off the io threads:
//   Routed r = Route(request, context);        // validate; either an answer or a ScoringJob
//   ScoreItems(*r.job, begin, end);            // any thread, any split of [0, job.size())
//   Response res = FinishJob(*r.job, context); // render the answer
//
// Endpoints:
//   POST /get_reward  OpenRLHF: {"query": [str], "prompts"?: [str],
//                     "labels"?: [str|number|null|[str|number]]}
//                     -> {"rewards": [float], "scores": [float], "extra_logs": {rule: [float]}}
//   POST /v1/score    {"items": [{"completion", "answer"?, "prompt"?, "completion_tokens"?}],
//                      (an answer: str|number|null, or [str|number] for several right answers)
//                      "reward"?: name} -> {"reward": name, "results": [{"reward", "status",
//                      "verdict", "extracted", "components": {rule: value}, "detail"?}]}
//   GET  /health      status, version, rewards and their rules and specs (never needs a token)
//   GET  /metrics     Prometheus text
// Both POST endpoints also take the reward's name as `?reward=<name>`.
//
// /get_reward, sample i: the completion is what follows prompts[i] when query[i] starts with
// it (after any pad tokens), else what follows the last assistant marker, else (no prompt
// given) the whole query. Trailing special tokens are dropped by the Reward. labels[i] is the
// gold ("" or null: none; a list: several acceptable answers, the best result counts, as
// rewards/any_gold.h says). rewards[i] is the Reward's total; scores[i] is 1 when the answer
// check said "correct", else 0 (a reward without an answer check: the total clamped to
// [0, 1]); extra_logs holds each rule's own value. A sample that cannot be scored (no
// total, or a prompt that cannot be found in its query) fails the request with 422 naming
// the samples, or scores 0 under get_reward.on_unscorable: zero.
//
// Errors are JSON {"error": "..."}, the message also in the status line's reason phrase, with 400 (naming the field and what was expected; a number
// the field cannot hold, beyond a double's range or a completion_tokens of 2^63 or more,
// too), 401, 404, 405, 413, 415 or 422; 500 only for a bug. Text a request echoes into an
// error (a path, a header, a reward name) is sent as valid UTF-8, invalid bytes replaced.
//
// Thread safety: all functions are reentrant; a ScoringJob may be scored by several threads
// at once on disjoint ranges.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <nlohmann/json.hpp>

#include "rewards/reward.h"
#include "rewards/server/metrics.h"
#include "rewards/server/server_config.h"

namespace rl::rewards::server {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

struct HandlerContext {
  const ServerConfig& config;
  const RewardRegistry& rewards;
  const ServerMetrics& metrics;  // read by /metrics
};

// A validated request whose items need scoring. Samples point into `body` and `owned`, which
// the job owns; results[i] is filled by ScoreItems.
struct ScoringJob {
  Endpoint endpoint = Endpoint::kOther;
  const NamedReward* reward = nullptr;
  unsigned http_version = 11;
  bool keep_alive = true;
  nlohmann::json body;
  std::deque<std::string> owned;        // gold answers given as numbers, as text
  std::vector<rewards::Sample> samples;
  // golds[i]: sample i's acceptable gold answers (empty: none); samples[i].gold is unused.
  std::vector<std::vector<std::string_view>> golds;
  // /get_reward: samples whose prompt could not be found in the query; not scored.
  std::vector<bool> unlocated;
  std::vector<rewards::RewardResult> results;

  size_t size() const { return samples.size(); }
};

struct Routed {
  std::optional<Response> response;  // answered without scoring
  std::unique_ptr<ScoringJob> job;   // or: score, then FinishJob
};

Routed Route(const Request& request, const HandlerContext& context);
// Scores samples [begin, end) of the job into job.results (sized by Route).
void ScoreItems(ScoringJob& job, size_t begin, size_t end);
Response FinishJob(const ScoringJob& job, const HandlerContext& context);
// Route, score every item in the calling thread, finish.
Response Handle(const Request& request, const HandlerContext& context);

// {"error": message} with the given status; keep_alive and version as the request had them.
Response ErrorResponse(boost::beast::http::status status, std::string_view message,
                       unsigned http_version, bool keep_alive);
// 503 with Retry-After: too many items in flight.
Response OverloadedResponse(const ServerConfig& config, int64_t items, unsigned http_version,
                            bool keep_alive);

// Splits an OpenRLHF query (prompt + completion, decoded with special tokens kept) into
// sample->prompt and sample->completion, views of `query`: the completion is what follows
// `prompt` when the query starts with it (after any of options.pad_tokens), else what follows
// the last options.assistant_marker, else, when no prompt is given, the whole query. false
// when a prompt is given and neither is found. The Python adapter for OpenRLHF's reward_func
// splits the same way (python/rl_rewards/openrlhf.py).
bool LocateCompletion(std::string_view query, std::string_view prompt,
                      const GetRewardOptions& options, rewards::Sample* sample);

// The endpoint a request target names ("/get_reward?reward=x" -> kGetReward).
Endpoint EndpointOf(std::string_view target);

}  // namespace rl::rewards::server

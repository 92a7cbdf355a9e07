// rewards/server/server_config.h: what `rl serve` is configured with, and the named rewards
// it serves.
//
//   rl::rewards::server::ServerConfig config;                 // defaults: 127.0.0.1:8000, ...
//   std::string error;
//   if (!rl::rewards::server::LoadServerConfigFile("configs/reward_server.yaml", &config, &error) ||
//       !rl::rewards::server::ValidateServerConfig(config, &error)) { report(error); }
//   auto registry = rl::rewards::server::RewardRegistry::FromConfig(config, &error);
//
// The schema, VisitServerConfig below, is the one place a setting is written down: the YAML
// keys, `rl serve`'s flags (cli/config_flags.h), --print-config and the range checks all come
// from it. Keys not given keep their defaults; unknown keys are an error naming the file, line
// and key, with the nearest valid one. Reward spec paths in a config file are relative to that
// file's folder.
//
// Errors are values: the functions below answer false with *error, a sentence naming the file,
// line and key (ConfigError's message, common/config_schema.h); none throws.
//
// Thread safety: a ServerConfig is a plain value; a RewardRegistry is immutable after
// construction and shared read-only by every server thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/config_schema.h"
#include "rewards/reward.h"

namespace rl::rewards::server {

// How /get_reward (OpenRLHF) turns its `query` strings into samples and answers.
struct GetRewardOptions {
  // Where the completion starts when `prompts[i]` is not a prefix of `query[i]`: just after
  // the last occurrence of this marker (ChatML's assistant turn by default).
  std::string assistant_marker = "<|im_start|>assistant\n";
  // Tokens that may precede the prompt in a query decoded with special tokens kept
  // (left padding); skipped before matching `prompts[i]` as a prefix.
  std::vector<std::string> pad_tokens = {"<|endoftext|>", "<|end_of_text|>", "<pad>",
                                         "<|finetune_right_pad_id|>", "</s>"};
  // OpenRLHF takes only numbers in `rewards`. kError: a request with an unscorable sample is
  // answered 422 naming the samples (OpenRLHF retries, then stops with the error). kZero:
  // such samples get reward 0 and score 0, and are counted in /metrics.
  enum class OnUnscorable { kError, kZero };
  OnUnscorable on_unscorable = OnUnscorable::kError;
};

struct ServerConfig {
  std::string host = "127.0.0.1";  // any other address only when asked for
  int port = 8000;                 // 0: an ephemeral port (see Server::port())
  int io_threads = 2;              // threads running sockets and HTTP parsing
  // Scoring workers, separate from io threads, so that a slow item never delays reading,
  // /health or /metrics; 0: all cores.
  int score_threads = 0;
  int chunk_items = 16;            // items a scoring worker takes at a time
  // name -> reward spec file, in configuration order; `default_reward` names the one used
  // when a request names none (the first one when empty).
  std::vector<std::pair<std::string, std::string>> rewards;
  std::string default_reward;

  int64_t max_body_bytes = 32 << 20;       // larger bodies: 413
  int64_t max_inflight_items = 65536;      // beyond it: 503 + Retry-After; a single
                                           // request with more items: 413
  int retry_after_s = 1;                   // the Retry-After of a 503
  int64_t idle_timeout_ms = 60000;         // keep-alive connection with no request
  int64_t header_timeout_ms = 10000;       // from the first byte to the end of headers
  int64_t body_timeout_ms = 60000;         // reading the body

  std::string auth_token_file;             // bearer token file; read at startup
  std::string auth_token_env = "RL_SERVE_TOKEN";  // else this environment variable, when set
  std::string auth_token;                  // resolved token (never from YAML); empty: no auth

  GetRewardOptions get_reward;

  double summary_interval_s = 60;          // an info log line with totals; 0: only at exit
  double shutdown_grace_s = 30;            // in-flight requests finish within this on SIGTERM;
                                           // then what is left is answered 503
  bool handle_signals = false;             // SIGINT/SIGTERM start a graceful shutdown

  // Served when `rewards` is empty, under its own name: a spec as YAML text rather than a
  // file. Not a setting: `rl serve` without --config or --rewards sets it to
  // configs/rewards/r1.yaml's text, built into the binary. Unset: `rewards` must be given.
  struct BuiltinReward {
    std::string name;
    std::string yaml;
    std::string source;  // what it is, for logs and errors: "built-in default r1 spec (...)"
  };
  std::optional<BuiltinReward> builtin_reward;
};

inline const common::Choices<GetRewardOptions::OnUnscorable> kOnUnscorableNames = {
    {"error", GetRewardOptions::OnUnscorable::kError}, {"zero", GetRewardOptions::OnUnscorable::kZero}};

// The schema (common/config_schema.h): every setting once, with its range and one line of help.
// auth_token, handle_signals and builtin_reward are not settings (resolved at startup; set by
// `rl serve`).
template <class V>
void VisitServerConfig(V& v, ServerConfig& c) {
  using common::AtLeast;
  using common::Between;
  v.Field("host", c.host, {}, "address to listen on");
  v.Field("port", c.port, Between(0, 65535), "port (0: any free port)");
  v.Field("io_threads", c.io_threads, Between(1, 256), "threads serving connections (Asio io_context)");
  v.Field("score_threads", c.score_threads, Between(0, 1024), "scoring workers (0: all cores)");
  v.Field("chunk_items", c.chunk_items, AtLeast(1), "items a scoring worker takes at a time");
  v.Field("rewards", c.rewards, {}, "named rewards: name=spec.yaml[,name=spec.yaml]");
  v.Field("default_reward", c.default_reward, {}, "reward used when a request names none");
  v.Field("max_body_bytes", c.max_body_bytes, AtLeast(1), "larger request bodies get 413");
  v.Field("max_inflight_items", c.max_inflight_items, AtLeast(1),
          "items being scored at once; beyond it 503 + Retry-After");
  v.Field("retry_after_s", c.retry_after_s, AtLeast(0), "Retry-After of a 503");
  v.Field("idle_timeout_ms", c.idle_timeout_ms, AtLeast(1), "keep-alive connections idle longer are closed");
  v.Field("header_timeout_ms", c.header_timeout_ms, AtLeast(1), "time to send the request headers");
  v.Field("body_timeout_ms", c.body_timeout_ms, AtLeast(1), "time to send the request body");
  v.Field("auth_token_file", c.auth_token_file, {}, "require the bearer token in this file");
  v.Field("auth_token_env", c.auth_token_env, {}, "else the token in this environment variable, when set");
  v.Section("get_reward", [&] {
    GetRewardOptions& g = c.get_reward;
    v.Field("assistant_marker", g.assistant_marker, {},
            "/get_reward: the completion follows the last occurrence of this marker");
    v.Field("pad_tokens", g.pad_tokens, {}, "/get_reward: padding that may precede the prompt");
    v.Choice("on_unscorable", g.on_unscorable, kOnUnscorableNames,
             "/get_reward with an unscorable sample: error (422) or zero");
  });
  v.Field("summary_interval_s", c.summary_interval_s, AtLeast(0), "seconds between summary log lines");
  v.Field("shutdown_grace_s", c.shutdown_grace_s, AtLeast(0), "time in-flight requests get on SIGTERM");
}

// Applies the keys of a YAML file (or text; `origin` names it in errors) onto *config.
bool LoadServerConfigFile(const std::string& path, ServerConfig* config, std::string* error);
bool LoadServerConfigText(std::string_view yaml, std::string_view origin,
                          std::string_view base_dir, ServerConfig* config, std::string* error);
// Checks the schema's ranges and what they cannot say (reward names, the default reward, empty
// markers; `rewards` may be empty only with a builtin_reward); false with *error naming the key
// and what was expected.
bool ValidateServerConfig(const ServerConfig& config, std::string* error);
// Fills config->auth_token from auth_token_file (whitespace trimmed) or else from the
// environment variable auth_token_env. An unreadable or empty token file is an error.
bool ResolveAuthToken(ServerConfig* config, std::string* error);
// The configuration as YAML (for `rl serve --print-config`); the token is never printed.
std::string ServerConfigToYaml(const ServerConfig& config);

struct NamedReward {
  std::string name;
  std::string source;  // spec file, or "(in process)"
  std::shared_ptr<const rewards::Reward> reward;
};

class RewardRegistry {
 public:
  // Loads every reward spec file of the config, or its builtin_reward when `rewards` is empty;
  // null with *error naming the file (or the built-in spec) on failure.
  static std::unique_ptr<RewardRegistry> FromConfig(const ServerConfig& config,
                                                    std::string* error);
  // For embedding and tests: rewards built in process. The first is the default unless
  // `default_name` names another; null with *error when names are empty or repeated.
  static std::unique_ptr<RewardRegistry> FromRewards(std::vector<NamedReward> rewards,
                                                     std::string_view default_name,
                                                     std::string* error);

  // The reward called `name`, or the default for an empty name; null when unknown.
  const NamedReward* Find(std::string_view name) const;
  const NamedReward& default_reward() const { return rewards_[default_index_]; }
  const std::vector<NamedReward>& rewards() const { return rewards_; }
  // "a, b, c": for "unknown reward" messages.
  std::string Names() const;

 private:
  RewardRegistry(std::vector<NamedReward> rewards, size_t default_index);
  std::vector<NamedReward> rewards_;
  size_t default_index_ = 0;
};

}  // namespace rl::rewards::server

#include "rewards/server/server_config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

namespace rl::server {
namespace {

// Reads one scalar key, or reports "<origin>:<line>: <key>: expected <what>".
template <typename T>
bool ReadScalar(const YAML::Node& node, std::string_view origin, std::string_view key,
                std::string_view what, T* out, std::string* error) {
  try {
    if (!node.IsScalar()) throw YAML::Exception(node.Mark(), "not a scalar");
    *out = node.as<T>();
    return true;
  } catch (const YAML::Exception&) {
    *error = fmt::format("{}:{}: {}: expected {}", origin, node.Mark().line + 1, key, what);
    return false;
  }
}

bool ReadStringList(const YAML::Node& node, std::string_view origin, std::string_view key,
                    std::vector<std::string>* out, std::string* error) {
  if (!node.IsSequence()) {
    *error = fmt::format("{}:{}: {}: expected a list of strings", origin, node.Mark().line + 1, key);
    return false;
  }
  out->clear();
  for (const YAML::Node& item : node) {
    std::string s;
    if (!ReadScalar(item, origin, key, "a list of strings", &s, error)) return false;
    out->push_back(std::move(s));
  }
  return true;
}

std::string ResolvePath(std::string_view base_dir, const std::string& path) {
  if (base_dir.empty() || std::filesystem::path(path).is_absolute()) return path;
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

bool LoadGetRewardOptions(const YAML::Node& node, std::string_view origin,
                          GetRewardOptions* options, std::string* error) {
  if (!node.IsMap()) {
    *error = fmt::format("{}:{}: get_reward: expected a mapping", origin, node.Mark().line + 1);
    return false;
  }
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& value = kv.second;
    const std::string path = "get_reward." + key;
    bool ok = true;
    if (key == "assistant_marker") {
      ok = ReadScalar(value, origin, path, "a string", &options->assistant_marker, error);
    } else if (key == "pad_tokens") {
      ok = ReadStringList(value, origin, path, &options->pad_tokens, error);
    } else if (key == "on_unscorable") {
      std::string s;
      ok = ReadScalar(value, origin, path, "error or zero", &s, error);
      if (ok && s == "error") {
        options->on_unscorable = GetRewardOptions::OnUnscorable::kError;
      } else if (ok && s == "zero") {
        options->on_unscorable = GetRewardOptions::OnUnscorable::kZero;
      } else if (ok) {
        *error = fmt::format("{}:{}: {}: expected error or zero, got '{}'", origin,
                             value.Mark().line + 1, path, s);
        ok = false;
      }
    } else {
      *error = fmt::format("{}:{}: unknown key '{}' (expected assistant_marker, pad_tokens, "
                           "on_unscorable)", origin, kv.first.Mark().line + 1, path);
      ok = false;
    }
    if (!ok) return false;
  }
  return true;
}

bool LoadRewardsMap(const YAML::Node& node, std::string_view origin, std::string_view base_dir,
                    ServerConfig* config, std::string* error) {
  if (!node.IsMap()) {
    *error = fmt::format("{}:{}: rewards: expected a mapping of name to reward spec file",
                         origin, node.Mark().line + 1);
    return false;
  }
  config->rewards.clear();
  for (const auto& kv : node) {
    const std::string name = kv.first.as<std::string>();
    std::string file;
    if (!ReadScalar(kv.second, origin, "rewards." + name, "a reward spec file", &file, error)) {
      return false;
    }
    config->rewards.emplace_back(name, ResolvePath(base_dir, file));
  }
  return true;
}

// One top-level key; returns false with *error on a bad value or an unknown key.
bool LoadTopLevelKey(const std::string& key, const YAML::Node& value, int line,
                     std::string_view origin, std::string_view base_dir, ServerConfig* c,
                     std::string* error) {
  if (key == "host") return ReadScalar(value, origin, key, "an address", &c->host, error);
  if (key == "port") return ReadScalar(value, origin, key, "a port number", &c->port, error);
  if (key == "io_threads") return ReadScalar(value, origin, key, "an integer", &c->io_threads, error);
  if (key == "score_threads") {
    return ReadScalar(value, origin, key, "an integer", &c->score_threads, error);
  }
  if (key == "chunk_items") return ReadScalar(value, origin, key, "an integer", &c->chunk_items, error);
  if (key == "rewards") return LoadRewardsMap(value, origin, base_dir, c, error);
  if (key == "default_reward") {
    return ReadScalar(value, origin, key, "a reward name", &c->default_reward, error);
  }
  if (key == "max_body_bytes") {
    return ReadScalar(value, origin, key, "a byte count", &c->max_body_bytes, error);
  }
  if (key == "max_inflight_items") {
    return ReadScalar(value, origin, key, "an item count", &c->max_inflight_items, error);
  }
  if (key == "retry_after_s") {
    return ReadScalar(value, origin, key, "seconds", &c->retry_after_s, error);
  }
  if (key == "idle_timeout_ms") {
    return ReadScalar(value, origin, key, "milliseconds", &c->idle_timeout_ms, error);
  }
  if (key == "header_timeout_ms") {
    return ReadScalar(value, origin, key, "milliseconds", &c->header_timeout_ms, error);
  }
  if (key == "body_timeout_ms") {
    return ReadScalar(value, origin, key, "milliseconds", &c->body_timeout_ms, error);
  }
  if (key == "auth_token_file") {
    if (!ReadScalar(value, origin, key, "a file name", &c->auth_token_file, error)) return false;
    if (!c->auth_token_file.empty()) c->auth_token_file = ResolvePath(base_dir, c->auth_token_file);
    return true;
  }
  if (key == "auth_token_env") {
    return ReadScalar(value, origin, key, "a variable name", &c->auth_token_env, error);
  }
  if (key == "get_reward") return LoadGetRewardOptions(value, origin, &c->get_reward, error);
  if (key == "summary_interval_s") {
    return ReadScalar(value, origin, key, "seconds", &c->summary_interval_s, error);
  }
  if (key == "shutdown_grace_s") {
    return ReadScalar(value, origin, key, "seconds", &c->shutdown_grace_s, error);
  }
  *error = fmt::format(
      "{}:{}: unknown key '{}' (expected host, port, io_threads, score_threads, "
      "chunk_items, rewards, default_reward, max_body_bytes, "
      "max_inflight_items, retry_after_s, idle_timeout_ms, header_timeout_ms, body_timeout_ms, "
      "auth_token_file, auth_token_env, get_reward, summary_interval_s, shutdown_grace_s)",
      origin, line, key);
  return false;
}

bool ValidRewardName(std::string_view name) {
  if (name.empty()) return false;
  for (char ch : name) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                    ch == '_' || ch == '-' || ch == '.';
    if (!ok) return false;
  }
  return true;
}

std::string Trim(std::string s) {
  const char* ws = " \t\r\n";
  const size_t begin = s.find_first_not_of(ws);
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(ws) - begin + 1);
}

}  // namespace

bool LoadServerConfigText(std::string_view yaml, std::string_view origin,
                          std::string_view base_dir, ServerConfig* config, std::string* error) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    *error = fmt::format("{}:{}: invalid YAML: {}", origin, e.mark.line + 1, e.msg);
    return false;
  }
  if (root.IsNull()) return true;
  if (!root.IsMap()) {
    *error = fmt::format("{}: expected a mapping of settings at the top level", origin);
    return false;
  }
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    if (!LoadTopLevelKey(key, kv.second, kv.first.Mark().line + 1, origin, base_dir, config,
                         error)) {
      return false;
    }
  }
  return true;
}

bool LoadServerConfigFile(const std::string& path, ServerConfig* config, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = fmt::format("{}: cannot open the server config", path);
    return false;
  }
  std::stringstream text;
  text << in.rdbuf();
  const std::string base_dir = std::filesystem::path(path).parent_path().string();
  return LoadServerConfigText(text.str(), path, base_dir, config, error);
}

bool ValidateServerConfig(const ServerConfig& c, std::string* error) {
  auto fail = [&](std::string message) {
    *error = std::move(message);
    return false;
  };
  if (c.host.empty()) return fail("host: expected an address such as 127.0.0.1");
  if (c.port < 0 || c.port > 65535) return fail(fmt::format("port: expected 0..65535, got {}", c.port));
  if (c.io_threads < 1 || c.io_threads > 256) {
    return fail(fmt::format("io_threads: expected 1..256, got {}", c.io_threads));
  }
  if (c.score_threads < 0 || c.score_threads > 1024) {
    return fail(fmt::format("score_threads: expected 0..1024 (0: all cores), got {}", c.score_threads));
  }
  if (c.chunk_items < 1) return fail("chunk_items: expected 1 or more");
  if (c.rewards.empty()) {
    return fail("rewards: no reward configured (a mapping of name to reward spec file, e.g. "
                "rewards: {r1: configs/rewards/r1.yaml}, or --rewards r1=configs/rewards/r1.yaml)");
  }
  for (size_t i = 0; i < c.rewards.size(); ++i) {
    const std::string& name = c.rewards[i].first;
    if (!ValidRewardName(name)) {
      return fail(fmt::format("rewards: name '{}': expected letters, digits, '_', '-', '.'", name));
    }
    for (size_t j = 0; j < i; ++j) {
      if (c.rewards[j].first == name) return fail(fmt::format("rewards: name '{}' given twice", name));
    }
  }
  if (!c.default_reward.empty()) {
    bool found = false;
    for (const auto& [name, path] : c.rewards) found = found || name == c.default_reward;
    if (!found) return fail(fmt::format("default_reward: '{}' is not one of the configured rewards",
                                        c.default_reward));
  }
  if (c.max_body_bytes < 1) return fail("max_body_bytes: expected a positive byte count");
  if (c.max_inflight_items < 1) return fail("max_inflight_items: expected 1 or more");
  if (c.retry_after_s < 0) return fail("retry_after_s: expected 0 or more seconds");
  if (c.idle_timeout_ms < 1 || c.header_timeout_ms < 1 || c.body_timeout_ms < 1) {
    return fail("idle_timeout_ms, header_timeout_ms, body_timeout_ms: expected positive milliseconds");
  }
  if (c.get_reward.assistant_marker.empty()) {
    return fail("get_reward.assistant_marker: expected a non-empty marker");
  }
  for (const std::string& t : c.get_reward.pad_tokens) {
    if (t.empty()) return fail("get_reward.pad_tokens: expected non-empty strings");
  }
  if (c.summary_interval_s < 0) return fail("summary_interval_s: expected 0 or more seconds");
  if (c.shutdown_grace_s < 0) return fail("shutdown_grace_s: expected 0 or more seconds");
  return true;
}

bool ResolveAuthToken(ServerConfig* config, std::string* error) {
  if (!config->auth_token_file.empty()) {
    std::ifstream in(config->auth_token_file, std::ios::binary);
    if (!in) {
      *error = fmt::format("auth_token_file: cannot read '{}'", config->auth_token_file);
      return false;
    }
    std::stringstream text;
    text << in.rdbuf();
    config->auth_token = Trim(text.str());
    if (config->auth_token.empty()) {
      *error = fmt::format("auth_token_file: '{}' is empty", config->auth_token_file);
      return false;
    }
    return true;
  }
  if (!config->auth_token_env.empty()) {
    // getenv at startup, before any server thread exists.
    if (const char* value = std::getenv(config->auth_token_env.c_str())) {
      config->auth_token = Trim(value);
    }
  }
  return true;
}

bool ParseRewardsFlag(std::string_view text,
                      std::vector<std::pair<std::string, std::string>>* rewards,
                      std::string* error) {
  rewards->clear();
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view entry = text.substr(0, comma);
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == entry.size()) {
      *error = fmt::format("--rewards: '{}': expected name=spec_file", entry);
      return false;
    }
    rewards->emplace_back(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  if (rewards->empty()) {
    *error = "--rewards: expected name=spec_file[,name=spec_file...]";
    return false;
  }
  return true;
}

std::string ServerConfigToYaml(const ServerConfig& c) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "host" << YAML::Value << c.host;
  out << YAML::Key << "port" << YAML::Value << c.port;
  out << YAML::Key << "io_threads" << YAML::Value << c.io_threads;
  out << YAML::Key << "score_threads" << YAML::Value << c.score_threads;
  out << YAML::Key << "chunk_items" << YAML::Value << c.chunk_items;
  out << YAML::Key << "rewards" << YAML::Value << YAML::BeginMap;
  for (const auto& [name, path] : c.rewards) out << YAML::Key << name << YAML::Value << path;
  out << YAML::EndMap;
  out << YAML::Key << "default_reward" << YAML::Value << c.default_reward;
  out << YAML::Key << "max_body_bytes" << YAML::Value << c.max_body_bytes;
  out << YAML::Key << "max_inflight_items" << YAML::Value << c.max_inflight_items;
  out << YAML::Key << "retry_after_s" << YAML::Value << c.retry_after_s;
  out << YAML::Key << "idle_timeout_ms" << YAML::Value << c.idle_timeout_ms;
  out << YAML::Key << "header_timeout_ms" << YAML::Value << c.header_timeout_ms;
  out << YAML::Key << "body_timeout_ms" << YAML::Value << c.body_timeout_ms;
  out << YAML::Key << "auth_token_file" << YAML::Value << c.auth_token_file;
  out << YAML::Key << "auth_token_env" << YAML::Value << c.auth_token_env;
  out << YAML::Key << "get_reward" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "assistant_marker" << YAML::Value << YAML::DoubleQuoted
      << c.get_reward.assistant_marker;
  out << YAML::Key << "pad_tokens" << YAML::Value << YAML::Flow << c.get_reward.pad_tokens;
  out << YAML::Key << "on_unscorable" << YAML::Value
      << (c.get_reward.on_unscorable == GetRewardOptions::OnUnscorable::kZero ? "zero" : "error");
  out << YAML::EndMap;
  out << YAML::Key << "summary_interval_s" << YAML::Value << c.summary_interval_s;
  out << YAML::Key << "shutdown_grace_s" << YAML::Value << c.shutdown_grace_s;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

// --- RewardRegistry ---------------------------------------------------------------------

RewardRegistry::RewardRegistry(std::vector<NamedReward> rewards, size_t default_index)
    : rewards_(std::move(rewards)), default_index_(default_index) {}

std::unique_ptr<RewardRegistry> RewardRegistry::FromConfig(const ServerConfig& config,
                                                           std::string* error) {
  std::vector<NamedReward> rewards;
  for (const auto& [name, path] : config.rewards) {
    std::string reward_error;
    std::unique_ptr<rewards::Reward> reward = rewards::Reward::FromYamlFile(path, &reward_error);
    if (!reward) {
      *error = fmt::format("reward '{}': {}", name, reward_error);
      return nullptr;
    }
    rewards.push_back({name, path, std::move(reward)});
  }
  return FromRewards(std::move(rewards), config.default_reward, error);
}

std::unique_ptr<RewardRegistry> RewardRegistry::FromRewards(std::vector<NamedReward> rewards,
                                                            std::string_view default_name,
                                                            std::string* error) {
  if (rewards.empty()) {
    *error = "rewards: no reward configured";
    return nullptr;
  }
  size_t default_index = 0;
  bool default_found = default_name.empty();
  for (size_t i = 0; i < rewards.size(); ++i) {
    if (!ValidRewardName(rewards[i].name) || !rewards[i].reward) {
      *error = fmt::format("rewards: entry {} needs a name of letters, digits, '_', '-', '.' "
                           "and a reward", i);
      return nullptr;
    }
    for (size_t j = 0; j < i; ++j) {
      if (rewards[j].name == rewards[i].name) {
        *error = fmt::format("rewards: name '{}' given twice", rewards[i].name);
        return nullptr;
      }
    }
    if (rewards[i].name == default_name) {
      default_index = i;
      default_found = true;
    }
  }
  if (!default_found) {
    *error = fmt::format("default_reward: '{}' is not one of the configured rewards", default_name);
    return nullptr;
  }
  return std::unique_ptr<RewardRegistry>(new RewardRegistry(std::move(rewards), default_index));
}

const NamedReward* RewardRegistry::Find(std::string_view name) const {
  if (name.empty()) return &rewards_[default_index_];
  for (const NamedReward& r : rewards_) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

std::string RewardRegistry::Names() const {
  std::string out;
  for (const NamedReward& r : rewards_) {
    if (!out.empty()) out += ", ";
    out += r.name;
  }
  return out;
}

}  // namespace rl::server

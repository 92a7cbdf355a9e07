#include "rewards/server/server_config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "common/config_yaml.h"

namespace rl::rewards::server {
namespace {

std::string ResolvePath(std::string_view base_dir, const std::string& path) {
  if (base_dir.empty() || path.empty() || std::filesystem::path(path).is_absolute()) return path;
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
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
  try {
    const YAML::Node root = common::ParseYamlConfig(std::string(yaml), std::string(origin));
    ServerConfig read = *config;
    common::YamlReader reader(root, std::string(origin));
    VisitServerConfig(reader, read);
    reader.CheckUnknownKeys();
    // Paths written in the file are relative to it; paths already in *config are not.
    if (root && root["rewards"]) {
      for (auto& [name, path] : read.rewards) path = ResolvePath(base_dir, path);
    }
    if (root && root["auth_token_file"]) read.auth_token_file = ResolvePath(base_dir, read.auth_token_file);
    *config = std::move(read);
    return true;
  } catch (const common::ConfigError& e) {
    *error = e.what();
    return false;
  }
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
  try {
    common::RangeChecker checker("");
    VisitServerConfig(checker, const_cast<ServerConfig&>(c));  // the checker only reads
  } catch (const common::ConfigError& e) {
    return fail(e.what());
  }
  if (c.host.empty()) return fail("host: expected an address such as 127.0.0.1");
  if (c.rewards.empty() && !c.builtin_reward) {
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
  if (!c.default_reward.empty() && c.rewards.empty()) {
    // With no rewards configured, the built-in one is the only reward served.
    if (c.default_reward != c.builtin_reward->name) {
      return fail(fmt::format("default_reward: '{}': expected '{}': no rewards are configured, so "
                              "the {} is the only one served", c.default_reward,
                              c.builtin_reward->name, c.builtin_reward->source));
    }
  } else if (!c.default_reward.empty()) {
    bool found = false;
    for (const auto& [name, path] : c.rewards) found = found || name == c.default_reward;
    if (!found) return fail(fmt::format("default_reward: '{}' is not one of the configured rewards",
                                        c.default_reward));
  }
  if (c.get_reward.assistant_marker.empty()) {
    return fail("get_reward.assistant_marker: expected a non-empty marker");
  }
  for (const std::string& t : c.get_reward.pad_tokens) {
    if (t.empty()) return fail("get_reward.pad_tokens: expected non-empty strings");
  }
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

std::string ServerConfigToYaml(const ServerConfig& c) {
  common::YamlWriter writer;
  VisitServerConfig(writer, const_cast<ServerConfig&>(c));  // the writer only reads
  return writer.Dump();
}

// --- RewardRegistry ---------------------------------------------------------------------

RewardRegistry::RewardRegistry(std::vector<NamedReward> rewards, size_t default_index)
    : rewards_(std::move(rewards)), default_index_(default_index) {}

std::unique_ptr<RewardRegistry> RewardRegistry::FromConfig(const ServerConfig& config,
                                                           std::string* error) {
  std::vector<NamedReward> rewards;
  if (config.rewards.empty() && config.builtin_reward) {
    const ServerConfig::BuiltinReward& builtin = *config.builtin_reward;
    std::string reward_error;
    std::unique_ptr<rewards::Reward> reward =
        rewards::Reward::FromYamlText(builtin.yaml, &reward_error, builtin.source);
    if (!reward) {
      *error = fmt::format("reward '{}': {}", builtin.name, reward_error);
      return nullptr;
    }
    rewards.push_back({builtin.name, builtin.source, std::move(reward)});
  }
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

}  // namespace rl::rewards::server

// The server config: YAML keys, validation with messages naming the field, tokens. (Its flags:
// tests/cli/config_flags_test.cpp.)
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "rewards/server/server_config.h"

namespace rl::rewards::server {
namespace {

bool Load(std::string_view yaml, ServerConfig* config, std::string* error) {
  return LoadServerConfigText(yaml, "server.yaml", "/etc/rl", config, error);
}

TEST_CASE("config: defaults are loopback and bounded", "[server][config]") {
  const ServerConfig c;
  CHECK(c.host == "127.0.0.1");
  CHECK(c.port == 8000);
  CHECK(c.max_body_bytes == 32 << 20);
  CHECK(c.get_reward.on_unscorable == GetRewardOptions::OnUnscorable::kError);
  CHECK(c.get_reward.assistant_marker == "<|im_start|>assistant\n");
  CHECK(c.auth_token_env == "RL_SERVE_TOKEN");
}

TEST_CASE("config: YAML keys", "[server][config]") {
  ServerConfig c;
  std::string error;
  REQUIRE(Load(R"(
port: 9000
io_threads: 3
rewards: {r1: rewards/r1.yaml, tags: /abs/tags.yaml}
default_reward: tags
max_inflight_items: 100
get_reward: {on_unscorable: zero, assistant_marker: "<|assistant|>", pad_tokens: ["<pad>"]}
)", &c, &error));
  CHECK(error.empty());
  CHECK(c.port == 9000);
  CHECK(c.io_threads == 3);
  CHECK(c.host == "127.0.0.1");  // untouched keys keep their defaults
  REQUIRE(c.rewards.size() == 2);
  CHECK(c.rewards[0] == std::pair<std::string, std::string>("r1", "/etc/rl/rewards/r1.yaml"));
  CHECK(c.rewards[1] == std::pair<std::string, std::string>("tags", "/abs/tags.yaml"));
  CHECK(c.default_reward == "tags");
  CHECK(c.max_inflight_items == 100);
  CHECK(c.get_reward.on_unscorable == GetRewardOptions::OnUnscorable::kZero);
  CHECK(c.get_reward.assistant_marker == "<|assistant|>");
  CHECK(c.get_reward.pad_tokens == std::vector<std::string>{"<pad>"});
  CHECK(ValidateServerConfig(c, &error));
}

TEST_CASE("config: errors name the file, line and key", "[server][config]") {
  ServerConfig c;
  std::string error;
  CHECK_FALSE(Load("port: 80\nprot: 90\n", &c, &error));
  CHECK_THAT(error, Catch::Contains("server.yaml:2: prot: unknown key; did you mean 'port'?"));
  CHECK_FALSE(Load("port: eighty\n", &c, &error));
  CHECK_THAT(error, Catch::Contains("server.yaml:1: port: expected an integer, got 'eighty'"));
  CHECK_FALSE(Load("get_reward: {on_unscorable: maybe}\n", &c, &error));
  CHECK_THAT(error, Catch::Contains("server.yaml:1: get_reward.on_unscorable: expected one of 'error', 'zero', got 'maybe'"));
  CHECK_FALSE(Load("get_reward: {typo: 1}\n", &c, &error));
  CHECK_THAT(error, Catch::Contains("get_reward.typo: unknown key"));
  CHECK_FALSE(Load("rewards: [a, b]\n", &c, &error));
  CHECK_THAT(error, Catch::Contains("server.yaml:1: rewards: expected a mapping of names to strings, got a list"));
  CHECK_FALSE(Load("port: [1\n", &c, &error));
  CHECK_THAT(error, Catch::Contains("server.yaml:2: not valid YAML"));
}

// Found by server_config_fuzz: a key that is a mapping or a list threw YAML's exception.
TEST_CASE("config: keys that are not strings are errors, not exceptions", "[server][config]") {
  ServerConfig c;
  std::string error;
  CHECK_FALSE(Load("? [a, b]\n: 1\n", &c, &error));
  CHECK_THAT(error, Catch::Contains("server.yaml:1: (top level): keys must be strings, got a list"));
  CHECK_FALSE(Load("rewards:\n  ? {a: 1}\n  : r1.yaml\n", &c, &error));
  CHECK_THAT(error, Catch::Contains("server.yaml:2: rewards: keys must be strings, got a mapping"));
  CHECK_FALSE(Load("get_reward: {[x]: 1}\n", &c, &error));
  CHECK_THAT(error, Catch::Contains("get_reward: keys must be strings, got a list"));
}

// Found by server_config_fuzz: a NUL byte in a comment was read, and the printed config did
// not print the same when read back.
TEST_CASE("config: bytes outside YAML's character set are errors", "[server][config]") {
  ServerConfig c;
  std::string error;
  CHECK_FALSE(Load(std::string("# a comment\nport: 1\n# take\0s\n", 29), &c, &error));
  CHECK_THAT(error, Catch::Contains("server.yaml:3: not valid YAML: byte 0x00 is a control character"));
  CHECK_FALSE(Load("rewards: {r1: a\rb}\n", &c, &error));  // the CI's fuzz smoke found this one
  CHECK_THAT(error, Catch::Contains("server.yaml:1: not valid YAML: byte 0x0D is a carriage return"));
  CHECK(Load("port: 1\r\nhost: x\r\n", &c, &error));
  CHECK_FALSE(Load("a: &a [*a]\n", &c, &error));
  CHECK_THAT(error, Catch::Contains("nested deeper than 64 levels"));
}

// Found by the 10-minute round of server_config_fuzz: escapes made a value that yaml-cpp
// writes back as bytes no reader takes (an unescaped carriage return; \N decoded to the lone
// byte 0x85), so `rl serve --print-config` printed a config that did not load.
TEST_CASE("config: values that could not be written back are errors", "[server][config]") {
  ServerConfig c;
  std::string error;
  CHECK_FALSE(Load("host: \"a\\rb\"\n", &c, &error));
  CHECK_THAT(error, Catch::Contains("server.yaml:1: a value holds a carriage return"));
  CHECK_FALSE(Load("port: 1\nget_reward: {assistant_marker: \"x\\N\"}\n", &c, &error));
  CHECK_THAT(error, Catch::Contains("server.yaml:2: a value holds bytes that are not UTF-8"));
  // Other escapes print back as they were.
  REQUIRE(Load("get_reward: {assistant_marker: \"x\\u0085\\e\"}\n", &c, &error));
  ServerConfig back;
  REQUIRE(Load(ServerConfigToYaml(c), &back, &error));
  CHECK(back.get_reward.assistant_marker == "x\u0085\x1b");
}

TEST_CASE("config: validation", "[server][config]") {
  ServerConfig c;
  std::string error;
  CHECK_FALSE(ValidateServerConfig(c, &error));
  CHECK_THAT(error, Catch::Contains("rewards: no reward configured"));
  c.rewards = {{"r1", "a.yaml"}};
  CHECK(ValidateServerConfig(c, &error));
  c.port = 70000;
  CHECK_FALSE(ValidateServerConfig(c, &error));
  CHECK_THAT(error, Catch::Contains("port: value 70000 out of range: expected between 0 and 65535"));
  c.port = 0;
  c.default_reward = "r2";
  CHECK_FALSE(ValidateServerConfig(c, &error));
  CHECK_THAT(error, Catch::Contains("default_reward: 'r2' is not one of the configured rewards"));
  c.default_reward = "";
  c.rewards.push_back({"r1", "b.yaml"});
  CHECK_FALSE(ValidateServerConfig(c, &error));
  CHECK_THAT(error, Catch::Contains("given twice"));
  c.rewards = {{"bad name", "a.yaml"}};
  CHECK_FALSE(ValidateServerConfig(c, &error));
  c.rewards = {{"r1", "a.yaml"}};
  c.io_threads = 0;
  CHECK_FALSE(ValidateServerConfig(c, &error));
  CHECK_THAT(error, Catch::Contains("io_threads"));
}

TEST_CASE("config: auth token from a file or the environment", "[server][config]") {
  const std::filesystem::path file = std::filesystem::temp_directory_path() / "rl_server_config_test_token";
  {
    std::ofstream(file) << "  tok3n \n";
  }
  ServerConfig c;
  std::string error;
  c.auth_token_file = file.string();
  REQUIRE(ResolveAuthToken(&c, &error));
  CHECK(c.auth_token == "tok3n");
  {
    std::ofstream(file) << "\n";
  }
  CHECK_FALSE(ResolveAuthToken(&c, &error));
  CHECK_THAT(error, Catch::Contains("is empty"));
  std::filesystem::remove(file);
  CHECK_FALSE(ResolveAuthToken(&c, &error));
  CHECK_THAT(error, Catch::Contains("cannot read"));

  ServerConfig from_env;
  from_env.auth_token_env = "RL_SERVER_CONFIG_TEST_TOKEN";
  ::setenv("RL_SERVER_CONFIG_TEST_TOKEN", "envtok", 1);
  REQUIRE(ResolveAuthToken(&from_env, &error));
  CHECK(from_env.auth_token == "envtok");
  ::unsetenv("RL_SERVER_CONFIG_TEST_TOKEN");
  ServerConfig none;
  none.auth_token_env = "RL_SERVER_CONFIG_TEST_TOKEN";
  REQUIRE(ResolveAuthToken(&none, &error));
  CHECK(none.auth_token.empty());
}

TEST_CASE("config: printed YAML loads back", "[server][config]") {
  ServerConfig c;
  c.rewards = {{"r1", "/x/r1.yaml"}};
  c.port = 1234;
  c.get_reward.on_unscorable = GetRewardOptions::OnUnscorable::kZero;
  ServerConfig back;
  std::string error;
  REQUIRE(LoadServerConfigText(ServerConfigToYaml(c), "printed", "", &back, &error));
  CHECK(back.port == 1234);
  CHECK(back.rewards == c.rewards);
  CHECK(back.get_reward.assistant_marker == c.get_reward.assistant_marker);
  CHECK(back.get_reward.pad_tokens == c.get_reward.pad_tokens);
  CHECK(back.get_reward.on_unscorable == GetRewardOptions::OnUnscorable::kZero);
  CHECK(ServerConfigToYaml(back) == ServerConfigToYaml(c));
}

}  // namespace
}  // namespace rl::rewards::server

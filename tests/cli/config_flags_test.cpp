// cli/config_flags.h with the reward server's schema: `rl serve`'s flags, parsed by CLI11 and
// applied through the schema's YAML reader, without a process.
#include <algorithm>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <yaml-cpp/yaml.h>

#include "cli/config_flags.h"
#include "rewards/server/server_config.h"

namespace rl::cli {
namespace {

using rewards::server::GetRewardOptions;
using rewards::server::ServerConfig;

constexpr auto kSchema = [](auto& visitor, ServerConfig& config) {
  rewards::server::VisitServerConfig(visitor, config);
};

// A command with the server's flags, parsed from `args` (without the program name).
struct Command {
  CLI::App app{"test"};
  ConfigFlags flags{&app, kSchema, ServerConfig{}};

  explicit Command(std::vector<std::string> args) {
    std::reverse(args.begin(), args.end());  // CLI11 takes them last first
    app.parse(args);
  }
};

TEST_CASE("config flags: one per setting, named after its key", "[cli][config]") {
  Command command({});
  // Every leaf key that --print-config prints is a flag: both come from VisitServerConfig.
  const YAML::Node printed = YAML::Load(rewards::server::ServerConfigToYaml(ServerConfig{}));
  size_t keys = 0;
  auto expect_flag = [&](const std::string& key) {
    std::string flag = "--" + key;
    for (char& ch : flag) ch = ch == '_' ? '-' : ch;
    INFO(flag);
    CHECK_NOTHROW(command.app.get_option(flag));
    ++keys;
  };
  for (const auto& item : printed) {
    if (item.second.IsMap() && item.first.Scalar() != "rewards") {
      for (const auto& inner : item.second) expect_flag(inner.first.Scalar());
    } else {
      expect_flag(item.first.Scalar());
    }
  }
  CHECK(keys == 20);
}

TEST_CASE("config flags: given flags win, the others leave the config alone", "[cli][config]") {
  ServerConfig config;
  std::string error;
  REQUIRE(rewards::server::LoadServerConfigText("port: 9000\nhost: 0.0.0.0\nrewards: {a: a.yaml}\n",
                                                "server.yaml", "", &config, &error));
  const std::string before = rewards::server::ServerConfigToYaml(config);
  Command none({});
  none.flags.Apply(kSchema, &config);
  CHECK(rewards::server::ServerConfigToYaml(config) == before);

  Command command({"--port", "9001", "--rewards", "r1=configs/rewards/r1.yaml,tags=t.yaml",
                   "--on-unscorable", "zero", "--pad-tokens", "<pad>,</s>", "--io-threads", "3",
                   "--summary-interval-s", "2.5"});
  command.flags.Apply(kSchema, &config);
  CHECK(config.port == 9001);
  CHECK(config.host == "0.0.0.0");  // from the file
  CHECK(config.rewards == common::StringPairs{{"r1", "configs/rewards/r1.yaml"}, {"tags", "t.yaml"}});
  CHECK(config.get_reward.on_unscorable == GetRewardOptions::OnUnscorable::kZero);
  CHECK(config.get_reward.pad_tokens == std::vector<std::string>{"<pad>", "</s>"});
  CHECK(config.io_threads == 3);
  CHECK(config.summary_interval_s == 2.5);
}

TEST_CASE("config flags: a bad value is the key's error, from the command line", "[cli][config]") {
  auto error_of = [](std::vector<std::string> args) {
    Command command(std::move(args));
    ServerConfig config;
    try {
      command.flags.Apply(kSchema, &config);
    } catch (const common::ConfigError& e) {
      CHECK(e.origin() == "command line");
      return e.path() + ": " + e.detail();
    }
    return std::string("(no error)");
  };
  CHECK(error_of({"--port", "70000"}) == "port: value 70000 out of range: expected between 0 and 65535");
  CHECK(error_of({"--io-threads", "x"}) == "io_threads: expected an integer, got 'x'");
  CHECK(error_of({"--rewards", "r1"}) == "--rewards: 'r1': expected name=value[,name=value...]");
  CHECK(error_of({"--rewards", "=x"}) == "--rewards: '=x': expected name=value[,name=value...]");
  CHECK_THROWS_AS(Command({"--on-unscorable", "maybe"}), CLI::ValidationError);
}

}  // namespace
}  // namespace rl::cli

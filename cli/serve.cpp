// `rl serve`: the standalone reward server (rewards/server/server.h).
//
//   rl serve --config configs/reward_server.yaml [--port 8001] [--rewards r1=spec.yaml] ...
//
// Every key of the config file is also a flag, derived from the one schema
// (VisitServerConfig, through cli/config_flags.h); flags win over the file. `--port 0` picks a
// free port, which `--port-file` writes once the server listens (for scripts and tests).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "cli/config_flags.h"
#include "rewards/server/server.h"
#include "rewards/server/server_config.h"

namespace rl::cli {
namespace {

using rewards::server::ServerConfig;

// The server's schema, as config_flags.h takes it.
constexpr auto kSchema = [](auto& visitor, ServerConfig& config) {
  rewards::server::VisitServerConfig(visitor, config);
};

struct ServeFlags {
  std::string config_file;
  std::string port_file;
  bool print_config = false;
  std::unique_ptr<ConfigFlags> settings;  // one flag per setting of the schema
};

// Writes atomically, so a reader never sees a partial port number.
bool WritePortFile(const std::string& path, uint16_t port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << port << "\n";
    if (!out) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

[[noreturn]] void Fail(const std::string& message) {
  spdlog::error("rl serve: {}", message);
  throw CLI::RuntimeError(1);
}

void RunServe(const ServeFlags& flags) {
  ServerConfig config;
  std::string error;
  if (!flags.config_file.empty() && !rewards::server::LoadServerConfigFile(flags.config_file, &config, &error)) {
    Fail(error);
  }
  try {
    flags.settings->Apply(kSchema, &config);
  } catch (const common::ConfigError& e) {
    Fail(e.what());
  }
  if (!rewards::server::ValidateServerConfig(config, &error)) Fail(error);
  if (flags.print_config) {
    std::fputs(rewards::server::ServerConfigToYaml(config).c_str(), stdout);
    return;
  }
  if (!rewards::server::ResolveAuthToken(&config, &error)) Fail(error);
  std::shared_ptr<const rewards::server::RewardRegistry> registry =
      rewards::server::RewardRegistry::FromConfig(config, &error);
  if (!registry) Fail(error);

  config.handle_signals = true;
  const bool auth = !config.auth_token.empty();
  auto srv = rewards::server::Server::Start(config, registry, &error);
  if (!srv) Fail(error);
  spdlog::info("rl serve: listening on http://{}:{} (rewards: {}; default {}; {} io threads; "
               "auth {})", config.host, srv->port(), registry->Names(),
               registry->default_reward().name, config.io_threads, auth ? "on" : "off");
  if (!flags.port_file.empty() && !WritePortFile(flags.port_file, srv->port())) {
    srv->Shutdown();
    srv->Wait();
    Fail("--port-file: cannot write '" + flags.port_file + "'");
  }
  srv->Wait();
}

}  // namespace

void AddServeCommand(CLI::App& app) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve rewards over HTTP (OpenRLHF /get_reward, /v1/score)");
  cmd->add_option("--config", flags->config_file, "server config YAML (configs/reward_server.yaml)")
      ->check(CLI::ExistingFile);
  flags->settings = std::make_unique<ConfigFlags>(cmd, kSchema, ServerConfig{});
  cmd->add_option("--port-file", flags->port_file, "write the bound port to this file once listening");
  cmd->add_flag("--print-config", flags->print_config, "print the effective config and exit");
  cmd->callback([flags] { RunServe(*flags); });
}

}  // namespace rl::cli

// `rl serve`: the standalone reward server (rewards/server/server.h).
//
//   rl serve --config configs/reward_server.yaml [--port 8001] [--rewards r1=spec.yaml] ...
//
// Every key of the config file is also a flag; flags win over the file. `--port 0` picks a
// free port, which `--port-file` writes once the server listens (for scripts and tests).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "rewards/server/server.h"
#include "rewards/server/server_config.h"
#include "cli/commands.h"

namespace rl::cli {
namespace {

struct ServeFlags {
  std::string config_file;
  std::string rewards;
  std::string port_file;
  std::string on_unscorable;
  bool print_config = false;
  server::ServerConfig values;  // flag values; applied only when the flag was given
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

void RunServe(const ServeFlags& flags, const CLI::App& cmd) {
  server::ServerConfig config;
  std::string error;
  if (!flags.config_file.empty() && !server::LoadServerConfigFile(flags.config_file, &config, &error)) {
    Fail(error);
  }
  const server::ServerConfig& v = flags.values;
  auto given = [&](const char* name) { return cmd.get_option(name)->count() > 0; };
  if (given("--host")) config.host = v.host;
  if (given("--port")) config.port = v.port;
  if (given("--io-threads")) config.io_threads = v.io_threads;
  if (given("--score-threads")) config.score_threads = v.score_threads;
  if (given("--chunk-items")) config.chunk_items = v.chunk_items;
  if (given("--default-reward")) config.default_reward = v.default_reward;
  if (given("--max-body-bytes")) config.max_body_bytes = v.max_body_bytes;
  if (given("--max-inflight-items")) config.max_inflight_items = v.max_inflight_items;
  if (given("--retry-after-s")) config.retry_after_s = v.retry_after_s;
  if (given("--idle-timeout-ms")) config.idle_timeout_ms = v.idle_timeout_ms;
  if (given("--header-timeout-ms")) config.header_timeout_ms = v.header_timeout_ms;
  if (given("--body-timeout-ms")) config.body_timeout_ms = v.body_timeout_ms;
  if (given("--auth-token-file")) config.auth_token_file = v.auth_token_file;
  if (given("--auth-token-env")) config.auth_token_env = v.auth_token_env;
  if (given("--assistant-marker")) config.get_reward.assistant_marker = v.get_reward.assistant_marker;
  if (given("--on-unscorable")) {
    config.get_reward.on_unscorable = flags.on_unscorable == "zero"
                                          ? server::GetRewardOptions::OnUnscorable::kZero
                                          : server::GetRewardOptions::OnUnscorable::kError;
  }
  if (given("--summary-interval-s")) config.summary_interval_s = v.summary_interval_s;
  if (given("--shutdown-grace-s")) config.shutdown_grace_s = v.shutdown_grace_s;
  if (given("--rewards") && !server::ParseRewardsFlag(flags.rewards, &config.rewards, &error)) {
    Fail(error);
  }
  if (!server::ValidateServerConfig(config, &error)) Fail(error);
  if (flags.print_config) {
    std::fputs(server::ServerConfigToYaml(config).c_str(), stdout);
    return;
  }
  if (!server::ResolveAuthToken(&config, &error)) Fail(error);
  std::shared_ptr<const server::RewardRegistry> registry =
      server::RewardRegistry::FromConfig(config, &error);
  if (!registry) Fail(error);

  config.handle_signals = true;
  const bool auth = !config.auth_token.empty();
  auto srv = server::Server::Start(config, registry, &error);
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
  server::ServerConfig& v = flags->values;
  CLI::App* cmd = app.add_subcommand("serve", "Serve rewards over HTTP (OpenRLHF /get_reward, /v1/score)");
  cmd->add_option("--config", flags->config_file, "server config YAML (configs/reward_server.yaml)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--host", v.host, "address to listen on (default 127.0.0.1)");
  cmd->add_option("--port", v.port, "port (default 8000; 0: any free port)");
  cmd->add_option("--io-threads,--threads", v.io_threads, "threads serving connections (Asio io_context)");
  cmd->add_option("--score-threads", v.score_threads, "scoring workers (0: all cores)");
  cmd->add_option("--chunk-items", v.chunk_items, "items a scoring worker takes at a time");
  cmd->add_option("--rewards", flags->rewards, "named rewards: name=spec.yaml[,name=spec.yaml]");
  cmd->add_option("--default-reward", v.default_reward, "reward used when a request names none");
  cmd->add_option("--max-body-bytes", v.max_body_bytes, "larger request bodies get 413");
  cmd->add_option("--max-inflight-items", v.max_inflight_items,
                  "items being scored at once; beyond it 503 + Retry-After");
  cmd->add_option("--retry-after-s", v.retry_after_s, "Retry-After of a 503");
  cmd->add_option("--idle-timeout-ms", v.idle_timeout_ms, "keep-alive connections idle longer are closed");
  cmd->add_option("--header-timeout-ms", v.header_timeout_ms, "time to send the request headers");
  cmd->add_option("--body-timeout-ms", v.body_timeout_ms, "time to send the request body");
  cmd->add_option("--auth-token-file", v.auth_token_file, "require this bearer token (file)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--auth-token-env", v.auth_token_env,
                  "else require the token in this environment variable (default RL_SERVE_TOKEN)");
  cmd->add_option("--assistant-marker", v.get_reward.assistant_marker,
                  "/get_reward: the completion follows the last occurrence of this marker");
  cmd->add_option("--on-unscorable", flags->on_unscorable,
                  "/get_reward with an unscorable sample: error (422) or zero")
      ->check(CLI::IsMember({"error", "zero"}));
  cmd->add_option("--summary-interval-s", v.summary_interval_s, "seconds between summary log lines");
  cmd->add_option("--shutdown-grace-s", v.shutdown_grace_s, "time in-flight requests get on SIGTERM");
  cmd->add_option("--port-file", flags->port_file, "write the bound port to this file once listening");
  cmd->add_flag("--print-config", flags->print_config, "print the effective config and exit");
  cmd->callback([flags, cmd] { RunServe(*flags, *cmd); });
}

}  // namespace rl::cli

// `rl train CONFIG.yaml [--print-config] [--resume] [--nproc N]`: SFT (optional) then GRPO, as the config
// describes (trainer/config.h); prints the held-out format rate and accuracy before and after.
// With --nproc N it starts N ranks on this machine (cli/launch.h); started by torchrun (or
// srun, or any launcher setting RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT), the processes
// train together (trainer/run.h says what is data-parallel).
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "cli/torch/launch.h"
#include "trainer/config.h"
#include "trainer/distributed.h"
#include "trainer/run.h"

namespace rl::cli {
namespace {

// The ranks this process trains with: when the torchrun variables are set (RANK, WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT; from torchrun, srun or any launcher), their group, joined within
// run.collective_timeout_s; else one process. Ranks other than 0 log warnings and errors only.
trainer::World JoinWorld(const trainer::TrainConfig& config) {
  const std::optional<trainer::WorldSpec> spec = trainer::WorldFromEnvironment();
  if (!spec) return trainer::World();
  if (spec->rank != 0) spdlog::set_level(spdlog::level::warn);
  spdlog::info("rank {} of {}: joining the ranks at {}:{}", spec->rank, spec->world_size, spec->master_addr,
               spec->master_port);
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::duration<double>(config.run.collective_timeout_s));
  return trainer::World::Join(*spec, timeout);
}

}  // namespace

void AddTrainCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("train", "Train a policy with SFT and GRPO from a YAML config");
  auto config_path = std::make_shared<std::string>();
  auto print_config = std::make_shared<bool>(false);
  auto resume = std::make_shared<bool>(false);
  auto nproc = std::make_shared<int>(1);
  cmd->add_option("config", *config_path, "the run's YAML config (e.g. configs/quickstart.yaml)")->required();
  cmd->add_flag("--print-config", *print_config, "print the effective configuration and exit");
  cmd->add_flag("--resume", *resume, "continue from the newest complete checkpoint in run.output_dir");
  cmd->add_option("--nproc", *nproc, "ranks (processes) on this machine that train together; exits with the "
                  "first failing rank's status")->check(CLI::Range(1, 1024));
  cmd->callback([=] {
    trainer::TrainConfig config;
    try {
      config = trainer::LoadTrainConfig(*config_path);
    } catch (const trainer::ConfigError& e) {
      spdlog::error("{}", e.what());
      throw CLI::RuntimeError(2);
    }
    if (*print_config) {
      std::cout << trainer::ToYaml(config);
      return;
    }
    if (*nproc > 1) {
      if (std::getenv("WORLD_SIZE") != nullptr) {
        spdlog::error("rl train: --nproc with WORLD_SIZE set: start the ranks with one launcher, not two");
        throw CLI::RuntimeError(2);
      }
      std::vector<std::string> args = {"train", *config_path};
      if (*resume) args.push_back("--resume");
      if (const int status = LaunchLocalRanks(*nproc, args); status != 0) throw CLI::RuntimeError(status);
      return;
    }
    try {
      trainer::RunOptions options{.resume = *resume, .world = JoinWorld(config)};
      const bool main_rank = options.world.is_main();
      trainer::RunSummary summary = trainer::RunTraining(config, options);
      if (main_rank) std::cout << "\n" << trainer::FormatEvalTable(summary) << std::flush;
    } catch (const std::exception& e) {
      spdlog::error("rl train: {}", e.what());
      spdlog::error("checkpoints written so far are complete; continue with `rl train {} --resume`", *config_path);
      throw CLI::RuntimeError(1);
    }
  });
}

}  // namespace rl::cli

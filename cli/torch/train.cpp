// `rl train CONFIG.yaml [--print-config] [--resume]`: SFT (optional) then GRPO, as the config
// describes (trainer/config.h); prints the held-out format rate and accuracy before and after.
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "trainer/config.h"
#include "trainer/run.h"

namespace rl::cli {

void AddTrainCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("train", "Train a policy with SFT and GRPO from a YAML config");
  auto config_path = std::make_shared<std::string>();
  auto print_config = std::make_shared<bool>(false);
  auto resume = std::make_shared<bool>(false);
  cmd->add_option("config", *config_path, "the run's YAML config (e.g. configs/quickstart.yaml)")->required();
  cmd->add_flag("--print-config", *print_config, "print the effective configuration and exit");
  cmd->add_flag("--resume", *resume, "continue from the newest complete checkpoint in run.output_dir");
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
    try {
      trainer::RunSummary summary = trainer::RunTraining(config, {.resume = *resume});
      std::cout << "\n" << trainer::FormatEvalTable(summary) << std::flush;
    } catch (const std::exception& e) {
      spdlog::error("rl train: {}", e.what());
      spdlog::error("checkpoints written so far are complete; continue with `rl train {} --resume`", *config_path);
      throw CLI::RuntimeError(1);
    }
  });
}

}  // namespace rl::cli

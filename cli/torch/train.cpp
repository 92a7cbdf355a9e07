// `rl train CONFIG.yaml [KEY=VALUE ...] [--print-config] [--resume [CHECKPOINT_DIR]] [--nproc N]`:
// SFT (optional) then GRPO, as the config with its overrides describes (trainer/config.h);
// prints the held-out format rate and accuracy before and after.
// With --nproc N it starts N ranks on this machine (cli/launch.h); started by torchrun (or
// srun, or any launcher setting RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT), the processes
// train together (trainer/run.h says what is data-parallel).
#include <chrono>
#include <cstdlib>
#include <filesystem>
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

// What `rl train` was given.
struct TrainArgs {
  std::string config_path;
  std::vector<std::string> overrides;  // "grpo.steps=3", in order
  bool print_config = false;
  CLI::Option* resume = nullptr;  // given: resume; its value: the checkpoint (empty: the newest)
  std::string resume_from;
  int nproc = 1;

  // `--resume KEY=VALUE` reads as the override it is (a directory of that name excepted): an
  // optional value takes the next argument, and overrides usually follow the config.
  void Normalize() {
    if (resume_from.find('=') == std::string::npos || std::filesystem::exists(resume_from)) return;
    overrides.insert(overrides.begin(), resume_from);
    resume_from.clear();
  }
  // The arguments of a rank (for --nproc) or of the command that resumes this run.
  std::vector<std::string> Args(bool resume_newest) const {
    std::vector<std::string> args = {"train", config_path};
    args.insert(args.end(), overrides.begin(), overrides.end());
    if (resume_newest) args.push_back("--resume");
    else if (resume->count() > 0) args.push_back("--resume" + (resume_from.empty() ? "" : "=" + resume_from));
    return args;
  }
};

trainer::TrainConfig LoadConfigOrExit(const TrainArgs& a) {
  try {
    return trainer::LoadTrainConfig(a.config_path, a.overrides);
  } catch (const trainer::ConfigError& e) {
    spdlog::error("{}", e.what());
    throw CLI::RuntimeError(2);
  }
}

void Train(TrainArgs& a) {
  a.Normalize();
  const trainer::TrainConfig config = LoadConfigOrExit(a);
  if (a.print_config) {
    std::cout << trainer::ToYaml(config);
    return;
  }
  if (a.nproc > 1) {
    if (std::getenv("WORLD_SIZE") != nullptr) {
      spdlog::error("rl train: --nproc with WORLD_SIZE set: start the ranks with one launcher, not two");
      throw CLI::RuntimeError(2);
    }
    if (const int status = LaunchLocalRanks(a.nproc, a.Args(false)); status != 0) throw CLI::RuntimeError(status);
    return;
  }
  try {
    trainer::RunOptions options{
        .resume = a.resume->count() > 0, .resume_from = a.resume_from, .world = JoinWorld(config)};
    const bool main_rank = options.world.is_main();
    trainer::RunSummary summary = trainer::RunTraining(config, options);
    if (main_rank) std::cout << "\n" << trainer::FormatEvalTable(summary) << std::flush;
  } catch (const std::exception& e) {
    spdlog::error("rl train: {}", e.what());
    std::string again = "rl";
    for (const std::string& arg : a.Args(true)) again += " " + arg;
    spdlog::error("checkpoints written so far are complete; continue with `{}`", again);
    throw CLI::RuntimeError(1);
  }
}

}  // namespace

void AddTrainCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("train", "Train a policy with SFT and GRPO from a YAML config");
  auto a = std::make_shared<TrainArgs>();
  cmd->add_option("config", a->config_path, "the run's YAML config (e.g. configs/quickstart.yaml)")->required();
  cmd->add_option("overrides", a->overrides, "settings over the config's, as dotted keys with YAML values: "
                  "grpo.steps=3 run.output_dir=/tmp/x rollout.stop_strings=[a,b]")->type_name("KEY=VALUE ...");
  cmd->add_flag("--print-config", a->print_config, "print the effective configuration (overrides applied) and exit");
  a->resume = cmd->add_option("--resume", a->resume_from, "continue a run: from CHECKPOINT_DIR, or without it "
                              "from the newest complete checkpoint in run.output_dir")
                  ->expected(0, 1)->type_name("[CHECKPOINT_DIR]");
  cmd->add_option("--nproc", a->nproc, "ranks (processes) on this machine that train together; exits with the "
                  "first failing rank's status")->check(CLI::Range(1, 1024));
  cmd->callback([a] { Train(*a); });
}

}  // namespace rl::cli

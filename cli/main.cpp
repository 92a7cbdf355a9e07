// `rl`: the launcher. One binary, one subcommand per user: `train` (the GRPO trainer),
// `serve` (the reward server), `score` (rules over a JSONL file), `generate` (sampling),
// `merge-lora` (an adapter into full weights), `plot` (a picture of a run).
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "common/blas_kernels.h"

int main(int argc, char** argv) {
  CLI::App app{"rl: rule-based reinforcement learning of language models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(RL_VERSION));
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.parse_complete_callback([&] {
    spdlog::set_level(spdlog::level::from_str(log_level));
#ifdef RL_WITH_TORCH
    // Before the command runs (CLI11 calls this first), and only for those that run LibTorch's
    // float32 products: a restart loads LibTorch again, 0.4-0.5 s here.
    for (const char* command : {"train", "generate", "merge-lora"}) {
      if (app.got_subcommand(command)) rl::common::RestartForBlasKernels(argv);
    }
#endif
  });

  // rl::cli::AddScoreCommand(app); ... (one line per implemented subcommand)
  rl::cli::AddScoreCommand(app);
  rl::cli::AddServeCommand(app);
  rl::cli::AddPlotCommand(app);
#ifdef RL_WITH_TORCH
  rl::cli::AddGenerateCommand(app);
  rl::cli::AddMergeLoraCommand(app);
  rl::cli::AddTrainCommand(app);
#endif

  CLI11_PARSE(app, argc, argv);
  return 0;
}

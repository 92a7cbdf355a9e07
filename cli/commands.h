// Subcommands of the `rl` launcher. Each Add*Command registers its subcommand, its flags and
// its callback on the application; the callback runs when the subcommand is chosen and
// returns the process exit code through CLI::RuntimeError on failure.
#pragma once

namespace CLI {
class App;
}

namespace rl::cli {

// Subcommands are added here as they are implemented, one line each:
void AddScoreCommand(CLI::App& app);     // rl score    (cli/score.cpp)
void AddPlotCommand(CLI::App& app);      // rl plot     (cli/plot.cpp)
void AddServeCommand(CLI::App& app);     // rl serve    (cli/serve.cpp)
#ifdef RL_WITH_TORCH
void AddGenerateCommand(CLI::App& app);  // rl generate (cli/torch/generate.cpp)
void AddMergeLoraCommand(CLI::App& app); // rl merge-lora (cli/torch/merge_lora.cpp)
void AddTrainCommand(CLI::App& app);     // rl train    (cli/torch/train.cpp)
#endif

}  // namespace rl::cli

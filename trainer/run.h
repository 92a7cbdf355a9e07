// trainer/run.h: a whole training run as `rl train` performs it.
//
//   TrainConfig config = LoadTrainConfig("configs/quickstart.yaml");
//   RunSummary summary = RunTraining(config, {.resume = false});
//   std::cout << FormatEvalTable(summary);
//
// The story of a run, in order:
//   1. data: JSONL (data.train_file) or the built-in task, and the held-out problems;
//   2. policy: a Hugging Face directory (model.path), or a tokenizer and a tiny Qwen2 trained
//      from scratch; with --resume, the newest complete checkpoint or the one named (or the
//      finished SFT stage);
//   3. SFT (sft.steps > 0): written to output_dir/sft, then evaluated on held-out problems;
//   4. GRPO (grpo.steps > 0): one line of metrics per step in output_dir/metrics.jsonl, a
//      progress line on the terminal, checkpoints every checkpoint.every steps;
//   5. the final policy in output_dir/final, evaluated; eval.json and the table.
// Everything the run writes is under run.output_dir.
//
// Several ranks (options.world, joined from the torchrun environment by `rl train`) train
// data-parallel, SFT (trainer/sft.h) and GRPO (trainer/grpo.h); rank 0 alone writes (metrics,
// checkpoints, the final policy) and evaluates, the others log warnings only. Every rank
// resumes from the same checkpoint, whatever the number of ranks that wrote it.
// Errors: exceptions with messages naming the config key, file or server at fault; a failure
// after a checkpoint leaves that checkpoint complete, so --resume continues from it.
#pragma once

#include <optional>
#include <string>

#include "trainer/config.h"
#include "trainer/distributed.h"
#include "trainer/evaluate.h"

namespace rl::trainer {

struct RunOptions {
  bool resume = false;  // continue from the newest complete checkpoint in run.output_dir
  std::string resume_from;  // with resume: this checkpoint directory instead (checked complete)
  World world;          // the ranks training together (trainer/distributed.h); default: one process
};

struct RunSummary {
  std::optional<EvalResult> before;  // the policy GRPO starts from (after SFT, if any)
  std::optional<EvalResult> after;   // the final policy
  int64_t grpo_steps = 0;
  double seconds = 0;
  std::string final_dir;
};

RunSummary RunTraining(const TrainConfig& config, const RunOptions& options);

// A small table: format rate and accuracy before and after GRPO, and the wall time.
std::string FormatEvalTable(const RunSummary& summary);

}  // namespace rl::trainer

// trainer/run_logs.h: what rank 0 writes about each GRPO step for people watching the run,
// as the run section of the config asks (trainer/config.h, RunSection):
//
//   output_dir/metrics.jsonl      every step: the step's metrics, one JSON object a line
//   output_dir/completions.jsonl  every run.log_completions_steps steps (0: never): one line per
//                                 completion (trainer/completion_log.h); with several ranks, rank
//                                 0's share of the groups (GrpoTrainer::completions)
//   output_dir/tensorboard/       with run.tensorboard: an event file with every numeric metric
//                                 of every step and the evaluations (trainer/tensorboard.h);
//                                 TensorBoard then hides what earlier files hold from the
//                                 steps this run logs on (a fresh run's: all of it)
//   the terminal                  every run.logging_steps steps and the last: the caller's
//                                 progress line, then run.num_completions_to_print completions
//
//   RunLogs logs(config.run, trainer.step());      // a resumed run drops the lines of later steps
//   logs.Evaluation(EvalMetrics(before), 0);        // TensorBoard's eval/ scalars
//   while (...) {
//     nlohmann::ordered_json m = trainer.Step();
//     logs.Step(m, trainer.completions());
//     if (logs.IsLoggingStep(step, last_step)) { spdlog::info(...); logs.PrintCompletions(trainer.completions()); }
//   }
//
// Every line and event is flushed before Step returns, so a killed run keeps every step it
// finished. Errors: std::runtime_error naming the file that cannot be opened or written.
// Thread safety: none; one object, on rank 0's training thread. LibTorch-free.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <span>

#include <nlohmann/json.hpp>

#include "trainer/completion_log.h"
#include "trainer/config.h"
#include "trainer/tensorboard.h"

namespace rl::trainer {

// The lines of the JSONL file `path` whose "step" is at most `step` are kept, the others
// dropped (a resumed run rewrites what follows its checkpoint). Nothing happens when the file
// does not exist.
void DropLinesAfterStep(const std::filesystem::path& path, int64_t step);

class RunLogs {
 public:
  // Opens the files under run.output_dir (which must exist) after the step the run starts
  // from: 0 for a fresh run, whose files start empty (its event file from step 0, the
  // evaluation before GRPO; a resumed run's from start_step + 1).
  RunLogs(const RunSection& run, int64_t start_step);

  RunLogs(const RunLogs&) = delete;
  RunLogs& operator=(const RunLogs&) = delete;

  // One finished step: `metrics` (a "step" key, TRL's names) and what was sampled in it.
  void Step(const nlohmann::ordered_json& metrics, std::span<const CompletionRecord> completions);
  // An evaluation of the policy after `step` steps ({"eval/accuracy": …, …}) to TensorBoard.
  void Evaluation(const nlohmann::ordered_json& eval, int64_t step);

  // Whether the terminal shows step `step` of `last_step`: every run.logging_steps, and the last.
  bool IsLoggingStep(int64_t step, int64_t last_step) const;
  // run.num_completions_to_print of `completions`, spread evenly over them, one spdlog line each.
  void PrintCompletions(std::span<const CompletionRecord> completions) const;

 private:
  RunSection run_;
  std::ofstream metrics_;
  std::ofstream completions_;
  std::optional<TensorBoardWriter> tensorboard_;
};

}  // namespace rl::trainer

// trainer/completion_log.h: the completions of a GRPO step as people read them —
// output_dir/completions.jsonl (one line per completion) and the terminal's short view.
//
//   for (const CompletionRecord& r : trainer.completions()) file << CompletionLine(r) << "\n";
//   spdlog::info("{}", CompletionSummary(trainer.completions()[0], 60, 200));
//
// A line of completions.jsonl:
//   {"step": 3, "prompt": "...", "completion": "...",
//    "rewards": {"format.think_answer": 1, "accuracy.math": null},   // per rule; null: unscorable
//    "reward": 1.0 | null, "advantage": 0.87 | null, "status": "ok",
//    "verdict": "correct" | null, "extracted": "3/4" | null,
//    "finish_reason": "stop" | "length", "length": 17,
//    "detail": "accuracy.math: ..."}                                  // only when status is not "ok"
// "rewards", "reward", "status", "verdict", "extracted" and "detail" are the reward's wire form
// (rewards/reward.h, ToJson); "advantage" is null for a group dynamic sampling left out of the
// batch. Invalid UTF-8 in a text (a completion cut inside a character) becomes U+FFFD.
// Pure functions; safe for concurrent use. LibTorch-free.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "rewards/reward.h"

namespace rl::trainer {

// One sampled completion of a GRPO step and what the rules and the algorithm made of it.
struct CompletionRecord {
  int64_t step = 0;                  // the GRPO step (1-based, as metrics.jsonl's "step")
  std::string prompt;                // as the policy saw it (templated)
  std::string completion;            // the generated text
  rewards::RewardResult result;      // the rules' scores
  std::optional<double> advantage;   // empty when its group did not join the batch
  std::string finish_reason;         // "stop" or "length" (rollout::ToString(FinishReason))
  int64_t length = 0;                // completion tokens
};

nlohmann::ordered_json ToJson(const CompletionRecord& record);

// ToJson as one line of completions.jsonl (no newline).
std::string CompletionLine(const CompletionRecord& record);

// One terminal line: reward, verdict, the prompt's last `prompt_chars` characters and the
// completion's first `completion_chars`, newlines shown as "⏎".
std::string CompletionSummary(const CompletionRecord& record, size_t prompt_chars, size_t completion_chars);

}  // namespace rl::trainer

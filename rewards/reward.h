// rewards/reward.h: rule-based rewards for RL of language models.
//
// A Reward is a weighted sum of named rules, compiled once from a spec and then shared,
// read-only, by every thread that scores:
//
//   std::string error;
//   auto reward = rl::rewards::Reward::FromYamlFile("configs/rewards/r1.yaml", &error);
//   if (!reward) { std::cerr << error << "\n"; return 1; }
//
//   rl::rewards::Sample s;
//   s.completion = "<think>2+2 is 4</think><answer>4</answer><|im_end|>";
//   s.gold = "4";
//   rl::rewards::RewardResult r = reward->Score(s);
//   if (r.status == rl::rewards::ScoreStatus::kOk) use(*r.total);
//
//   // Many samples, scored in parallel; results identical for any thread count.
//   std::vector<rl::rewards::RewardResult> rs = reward->ScoreBatch(samples, /*threads=*/0);
//
// A spec (YAML or JSON; every key but `rules` optional):
//
//   special_tokens: ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>"]  # trailing, stripped
//   tags: {think: think, answer: answer}   # tag names, used by every format rule
//   prefilled_think: auto                  # auto (prompt ends with <think>) | always | never
//   on_unscorable: skip                    # skip (total empty) | zero (the rule scores 0)
//   math: {precision: 6, time_budget_ms: 50}   # verifier options (rewards/math/verify.h)
//   rules:
//     - {name: format.think_answer, weight: 1}
//     - {name: accuracy.math, weight: 1, params: {correct: 1, incorrect: 0}}
//
// Unknown keys, wrong types and out-of-range values are errors that name the file, line and
// key path, e.g. "r1.yaml:7: key 'rules[1].weight': expected a number, got a string".
//
// Rules (names as written in a spec) and their params:
//   format.think_answer   1/0: ws <think>…</think> ws <answer>non-empty</answer> ws, one of each
//                         tag; newlines anywhere; nothing after </answer>. With a prefilled
//                         think the completion starts inside the thought.
//                         params: case_sensitive (true)
//   format.tags           0.25 per tag present exactly once and in order relative to the
//                         other such tags (R1-Onevision). params: case_sensitive (true)
//   format.tag_count      0.25 each for exactly one "<think>\n", "\n</think>\n",
//                         "\n<answer>\n", "\n</answer>" (open-r1; CRLF counts as \n)
//   format.boxed          1/0: a brace-balanced, non-empty \boxed{…} or \fbox{…} in the last
//                         answer block, or anywhere when there is no answer tag
//   length.soft_overlong  DAPO: 0 up to max_length - cache_length tokens, linear to -1 at
//                         max_length, -1 beyond. params: max_length, cache_length (required).
//                         Needs completion_tokens.
//   repetition.ngram      (1 - distinct/all word n-grams) * max_penalty (open-r1; words split
//                         at whitespace as Python's str.split(), Unicode spaces included, and
//                         lower-cased in ASCII only). params: ngram_size (3), max_penalty (-1,
//                         must be <= 0)
//   reasoning.steps       min(1, markers / target_steps) with the markers "Step N:", "N." at
//                         the start of any line, "\n-", "\n*", "First,", "Second,", "Next,",
//                         "Finally," (open-r1). params: target_steps (3)
//   accuracy.math         the answer is mathematically equivalent to the gold (needs gold).
//                         params: correct (1), incorrect (0)
//   length.cosine         cosine-scaled length reward keyed on correctness (open-r1).
//                         params: min_value_wrong, max_value_wrong, min_value_correct,
//                         max_value_correct, max_len, unit (tokens | chars)
//
// A rule that cannot score a sample (no gold answer, no token count, an unreadable gold, a
// budget hit) says so in its status. The composite then reports the sample as unscorable
// (total empty) or, when the spec says `on_unscorable: zero`, scores that rule 0 and still
// reports the status. A reward never silently becomes 0.
//
// Errors are values here and in rewards/math: a spec that cannot load gives a null Reward and
// "file:line: key 'path': what was expected"; Score and ScoreBatch never throw.
//
// Thread safety: a Reward is immutable after construction; Score and ScoreBatch may be called
// concurrently from any number of threads. Copying is disabled because rules own compiled
// regexes; share a Reward by reference or shared_ptr.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "rewards/math/verify.h"

namespace rl::rewards {

// One completion to score. Views must outlive the call.
struct Sample {
  std::string_view prompt;                  // the prompt as the policy saw it; may be empty
  std::string_view completion;              // the generated text, special tokens possibly kept
  std::optional<std::string_view> gold;     // the gold answer, when the task has one
  std::optional<int64_t> completion_tokens; // the completion's length in tokens, when known
};

enum class ScoreStatus {
  kOk,
  kMissingGold,        // the rule needs a gold answer and the sample has none
  kMissingTokenCount,  // the rule needs completion_tokens and the sample has none
  kInvalidGold,        // the gold answer could not be read
  kBudgetExceeded,     // the time or size budget ran out before a verdict
  kRuleError,          // the rule failed unexpectedly (a bug); the detail says how
};
// "ok", "missing_gold", "missing_token_count", "invalid_gold", "budget_exceeded",
// "rule_error".
std::string_view ToString(ScoreStatus status);

// One rule's contribution. `value` is the rule's own score (before weighting); it is
// meaningful only when status == kOk.
struct RuleScore {
  std::string rule;   // e.g. "format.think_answer"
  double weight = 1;
  double value = 0;
  ScoreStatus status = ScoreStatus::kOk;
  std::string detail; // why, when status != kOk (empty otherwise)
};

struct RewardResult {
  // Weighted sum of components. Empty when some rule could not score and the spec says
  // `on_unscorable: skip` (the default).
  std::optional<double> total;
  // kOk, or the status of the first rule (in spec order) that could not score.
  ScoreStatus status = ScoreStatus::kOk;
  std::vector<RuleScore> components;  // one per rule, in spec order
  // The answer check, when a rule of the reward needed it (accuracy.math, length.cosine).
  std::optional<math::CheckResult> answer_check;
};

// The wire form of a result: the one JSON shape that `rl serve` (/v1/score), `rl score`,
// `rl generate` and the reward client write and read.
//   {"reward": 1.5 | null, "status": "ok", "verdict": "correct" | null, "extracted": "4" | null,
//    "components": {"format.think_answer": 1, "accuracy.math": null},
//    "detail": "accuracy.math: …"}                     (only when status is not "ok")
// A component is null when its rule could not score; "detail" names the first such rule and
// why. Rule weights are not carried.
nlohmann::ordered_json ToJson(const RewardResult& result);
// The inverse of ToJson. A null component gets the result's status and detail, and weight 1.
// Empty, with *error naming the key and what was expected, when `j` is not of that shape.
std::optional<RewardResult> RewardResultFromJson(const nlohmann::ordered_json& j, std::string* error);

// What to do with a sample that a rule could not score.
enum class OnUnscorable { kSkip, kZero };

// Whether the completion starts inside an already-open <think> block.
enum class PrefilledThink {
  kAuto,    // yes when the prompt ends with the opening think tag (ignoring whitespace)
  kAlways,
  kNever,
};

class Reward {
 public:
  // Builds from a spec (JSON object with the same keys as the YAML files in
  // configs/rewards/). On failure returns null and sets *error to a message naming the field
  // and what was expected; `origin` (a file name) prefixes the message.
  static std::unique_ptr<Reward> FromJson(const nlohmann::json& spec, std::string* error,
                                          std::string_view origin = "reward spec");
  // Reads a YAML file; errors name the file, line and key.
  static std::unique_ptr<Reward> FromYamlFile(const std::string& path, std::string* error);
  // Parses YAML text (for specs embedded in other configs); `origin` names it in errors.
  static std::unique_ptr<Reward> FromYamlText(std::string_view yaml, std::string* error,
                                              std::string_view origin = "reward spec");

  ~Reward();
  Reward(const Reward&) = delete;
  Reward& operator=(const Reward&) = delete;

  // Scores one sample. Never throws; bounded in time by the rules' budgets.
  RewardResult Score(const Sample& sample) const;

  // Scores many samples with up to `threads` OpenMP threads (0: all cores). results[i]
  // belongs to samples[i] and does not depend on the thread count.
  std::vector<RewardResult> ScoreBatch(std::span<const Sample> samples, int threads = 0) const;

  // Rule names in spec order (the keys of per-rule metrics and OpenRLHF's extra_logs).
  const std::vector<std::string>& rule_names() const;
  // The spec as compiled, with defaults filled in (for /health and --print-config).
  const nlohmann::json& spec() const;
  // The completion as rules see it: trailing special tokens removed.
  std::string_view StripSpecialTokens(std::string_view completion) const;

 private:
  struct Impl;
  explicit Reward(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rl::rewards

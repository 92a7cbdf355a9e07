// rewards/math/verify.h: is a completion's final answer mathematically equal to the gold?
//
//   rl::math::Verifier verifier;                       // default options
//   rl::math::CheckResult r = verifier.Check("... so the answer is \\boxed{\\frac{3}{4}}", "0.75");
//   r.verdict == rl::math::Verdict::kCorrect;  r.extracted == "\\frac{3}{4}"
//
// Check extracts the final answer from a completion (the <answer> block, else the last
// \boxed{}, else an anchor phrase, else the last math environment or number), parses both
// sides into expression trees and decides equivalence: exact rationals when both are exact,
// rounding to `precision` places when one side is a decimal, random-point evaluation for
// symbolic expressions; sets, intervals, tuples, matrices, equations, percents and units.
//
// Bounds: every call stops within options.time_budget_ms, options.node_budget parse/eval
// nodes and options.bit_budget bits per exact integer, checked inside the work (no signals),
// and answers kBudgetExceeded when it runs out. Check never throws.
//
// Thread safety: a Verifier is immutable after construction; Check may be called from any
// number of threads at once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rl::math {

enum class Verdict {
  kCorrect,
  kIncorrect,
  kNoAnswer,           // nothing could be extracted from the completion
  kUnparseableAnswer,  // an answer was extracted but could not be read
  kInvalidGold,        // the gold answer could not be read: never a 0 or 1
  kBudgetExceeded,     // time, node or bit budget ran out before a decision
};
// "correct", "incorrect", "no_answer", "unparseable_answer", "invalid_gold", "budget_exceeded".
std::string_view ToString(Verdict verdict);

struct VerifierOptions {
  int precision = 6;               // decimal places compared when a side is a decimal
  double time_budget_ms = 50;      // wall-clock budget per Check
  int64_t node_budget = 200000;    // parse + evaluation nodes per Check
  int64_t bit_budget = 1 << 16;    // bits per exact integer; beyond it, magnitudes only
};

struct CheckResult {
  Verdict verdict = Verdict::kNoAnswer;
  std::string extracted;       // the answer text taken from the completion
  std::string pred_canonical;  // canonical form of the prediction (empty if unparsed)
  std::string gold_canonical;  // canonical form of the gold (empty if unparsed)
  std::string detail;          // why, for verdicts other than correct/incorrect
};

class Verifier {
 public:
  explicit Verifier(VerifierOptions options = {});
  // Extracts the final answer from `completion` and compares it with `gold`.
  CheckResult Check(std::string_view completion, std::string_view gold) const;
  const VerifierOptions& options() const { return options_; }

 private:
  VerifierOptions options_;
};

}  // namespace rl::math

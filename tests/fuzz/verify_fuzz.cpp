// The math verifier on arbitrary gold answers and completions.
// Input: selector byte (options variant) | gold | NUL | completion (the rest).
// Promises checked (rewards/math/verify.h): Check never throws, stays within its budgets
// (libFuzzer's -timeout catches a runaway), and answers a verdict of the enum.
#include <array>
#include <cstddef>
#include <cstdint>

#include "rewards/math/verify.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using rl::rewards::math::Extraction;
using rl::rewards::math::Verdict;
using rl::rewards::math::Verifier;
using rl::rewards::math::VerifierOptions;

// The defaults; every leniency switched the other way with the extraction order reversed;
// multiple choice.
std::array<Verifier, 3> MakeVerifiers() {
  VerifierOptions lenient;
  lenient.precision = 2;
  lenient.strict = false;
  lenient.interval_accepts_inequality = true;
  lenient.percent_accepts_bare_number = false;
  lenient.number_accepts_percent = true;
  lenient.extraction = {Extraction::kNumber, Extraction::kMathEnv, Extraction::kAnchor,
                        Extraction::kBoxed, Extraction::kAnswerTag};
  VerifierOptions choices;
  choices.choices = {"A", "B", "C", "D", "E"};
  choices.choices_ignore_case = true;
  return {Verifier(), Verifier(lenient), Verifier(choices)};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::array<Verifier, 3> verifiers = MakeVerifiers();
  rl::fuzz::FuzzInput input(data, size);
  const Verifier& verifier = verifiers[input.Byte() % verifiers.size()];
  const std::string_view gold = input.Next().value_or("");
  const std::string_view completion = input.Rest().value_or("");
  const rl::rewards::math::CheckResult result = verifier.Check(completion, gold);
  rl::fuzz::Require(result.verdict >= Verdict::kCorrect && result.verdict <= Verdict::kBudgetExceeded,
                    "Check answers one of the verdicts");
  return 0;
}

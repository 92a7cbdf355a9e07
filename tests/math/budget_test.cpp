// The verifier's bounds are deterministic: the node budget, charged in proportion to the work
// done, decides every verdict; the CPU-time budget is a backstop that should never decide.
// So these tests disable the backstop (time_budget_ms = 1e9) or compare verdicts with and
// without it: nothing here measures time.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "rewards/math/verify.h"
#include "tests/math/long_inputs.h"

namespace rl::rewards::math {
namespace {

using testing::Boxed;
using testing::Join;
using testing::Repeat;

constexpr double kNoBackstop = 1e9;  // ms: about eleven days

// The backstop of a loaded machine. Every hostile case takes a few ms natively; AddressSanitizer
// and ThreadSanitizer slow the work 3-10x, and under CI's parallel load one case came near 50
// ms there, so sanitized builds stand in for the same load with ten times the budget.
#if defined(__has_feature)
#define RL_HAS_FEATURE(x) __has_feature(x)
#else
#define RL_HAS_FEATURE(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || RL_HAS_FEATURE(address_sanitizer) || \
    RL_HAS_FEATURE(thread_sanitizer)
constexpr double kLoadedBackstopMs = 500;
#else
constexpr double kLoadedBackstopMs = 50;
#endif

VerifierOptions WithBackstop(double time_budget_ms) {
  VerifierOptions options;
  options.time_budget_ms = time_budget_ms;
  return options;
}

}  // namespace

TEST_CASE("a number with a huge exponent is a magnitude, not an exact integer", "[math][budget]") {
  Verifier verifier(WithBackstop(kNoBackstop));
  CheckResult r = verifier.Check(Boxed("8e99999"), "1");
  CHECK(r.verdict == Verdict::kIncorrect);
  CHECK(r.nodes < 2000);
  CHECK(verifier.Check(Boxed("1e-99999"), "1").verdict == Verdict::kIncorrect);
  CHECK(verifier.Check(Boxed("8e99999"), "8e99999").verdict == Verdict::kCorrect);
  // A hundred of them summed took over 11 s of exact arithmetic: now magnitudes are added.
  r = verifier.Check(Boxed(Join(100, "+", [](size_t) { return "8e99999"; })), "1");
  CHECK(r.verdict == Verdict::kIncorrect);
  CHECK(r.nodes < 50000);
}

TEST_CASE("scientific notation within the bit budget stays exact", "[math][budget]") {
  Verifier verifier(WithBackstop(kNoBackstop));
  CHECK(verifier.Check(Boxed("1.5e3"), "1500").verdict == Verdict::kCorrect);
  CHECK(verifier.Check(Boxed("1e-3"), "0.001").verdict == Verdict::kCorrect);
  CHECK(verifier.Check(Boxed("6.02\\times10^{23}"), "6.02e23").verdict == Verdict::kCorrect);
  CHECK(verifier.Check(Boxed("2.5e-7"), "\\frac{1}{4000000}").verdict == Verdict::kCorrect);
  // Exact, so no cancellation: 10^19000 is within the default bit budget.
  CHECK(verifier.Check(Boxed("1e300 + 1 - 1e300"), "1").verdict == Verdict::kCorrect);
  CHECK(verifier.Check(Boxed("1e19000 + 1 - 1e19000"), "1").verdict == Verdict::kCorrect);
  // Over a bit budget of 1024, 1e400 is a magnitude: compared as a decimal of one digit.
  VerifierOptions small_bits = WithBackstop(kNoBackstop);
  small_bits.bit_budget = 1024;
  CHECK(Verifier(small_bits).Check(Boxed("1e400"), "1e400+1").verdict == Verdict::kCorrect);
  CHECK(Verifier(small_bits).Check(Boxed("1e400"), "2e400").verdict == Verdict::kIncorrect);
}

TEST_CASE("big-number work is charged to the node budget by its size", "[math][budget]") {
  VerifierOptions options = WithBackstop(kNoBackstop);
  options.node_budget = 20000;
  Verifier small(options);
  // Within the bit budget, but computing them costs more than 20,000 nodes.
  for (const char* big :
       {"1e19000", "2^{20000}", "3^{20000} \\cdot 3^{20000}", "5000!", "\\binom{20000}{10000}"}) {
    INFO(big);
    CheckResult r = small.Check(Boxed(big), "1");
    CHECK(r.verdict == Verdict::kBudgetExceeded);
    CHECK(r.detail == "node budget exhausted");
    CHECK(r.nodes <= options.node_budget);
  }
  // The default budget affords them.
  Verifier full(WithBackstop(kNoBackstop));
  CHECK(full.Check(Boxed("1e19000"), "1").verdict == Verdict::kIncorrect);
  CHECK(full.Check(Boxed("2^{20000}"), "2^{20000}+0").verdict == Verdict::kCorrect);
  CHECK(full.Check(Boxed("5000!"), "5000 \\cdot 4999!").verdict == Verdict::kCorrect);
}

// Found by verify_fuzz (and a reward_fuzz timeout): a short numerator against a long
// denominator cost a remainder of Boost's, quadratic in the long side, that was charged as if
// linear; 1e-9000 times 100 short decimals took 160 ms for 40,000 nodes, so its verdict
// depended on the time backstop. Now the remainder is charged by what it costs.
TEST_CASE("a product against a long denominator is charged for its remainders", "[math][budget]") {
  const std::string answer = Boxed("1e-9000" + Join(100, "", [](size_t k) {
                                     return std::string("\\cdot 0.").append(27, char('3' + k % 5));
                                   }));
  CheckResult r = Verifier(WithBackstop(kNoBackstop)).Check(answer, "1");
  CHECK(r.verdict == Verdict::kBudgetExceeded);
  CHECK(r.detail == "node budget exhausted");
  // Both kept within the budget: a short product is still decided.
  CHECK(Verifier(WithBackstop(kNoBackstop)).Check(Boxed("1e-9000 \\cdot 0.5"), "5e-9001").verdict ==
        Verdict::kCorrect);
}

TEST_CASE("a 100 KB answer of 20,000 numbers gets the same verdict under any load",
          "[math][budget]") {
  std::string numbers = Join(20000, ",", [](size_t k) { return std::to_string(1000 + k % 9000); });
  REQUIRE(numbers.size() >= 99999);
  CheckResult loaded = Verifier(WithBackstop(kLoadedBackstopMs)).Check(Boxed(numbers), numbers);
  CheckResult idle = Verifier(WithBackstop(kNoBackstop)).Check(Boxed(numbers), numbers);
  CHECK(idle.verdict == Verdict::kBudgetExceeded);
  CHECK(idle.detail == "node budget exhausted");
  CHECK(loaded.verdict == idle.verdict);
  CHECK(loaded.detail == idle.detail);
  CHECK(loaded.nodes == idle.nodes);
}

TEST_CASE("hostile inputs are decided by the node budget, not the time backstop",
          "[math][budget]") {
  struct Case {
    const char* name;
    std::string completion, gold;
  };
  auto index = [](size_t k) { return "x_{" + std::to_string(k) + "}"; };
  std::vector<Case> cases = {
      {"a sum of 100 numbers with huge exponents",
       Boxed(Join(100, "+", [](size_t) { return "8e99999"; })), "1"},
      {"10,000 distinct symbols (once a quadratic search)", Boxed(Join(10000, "+", index)), "1"},
      {"a long box followed by 10,000 boxes (once a quadratic search)",
       Boxed(std::string(90000, 'x')) + Repeat("\\boxed{1}", 10000), "1"},
      {"10,000 sines, each re-checked with 50 digits",
       Boxed(Join(10000, "+", [](size_t k) { return "\\sin " + std::to_string(k % 90 + 1); })),
       Join(10000, "+", [](size_t k) { return "\\sin " + std::to_string(k % 90 + 1); }) + "+0"},
      {"big numbers spelt out for a structural comparison",
       Boxed("\\lfloor i \\rfloor" + Repeat("+1e19000", 20)),
       "\\lfloor i \\rfloor" + Repeat("+1e19000", 20) + "+0"},
      {"12,000 '# Answer' headings, each followed by another",
       Repeat("# Answer\n", 12000), "1"},
      {"20,000 numbers, then an 8 KB answer phrase",
       Join(20000, " ", [](size_t k) { return std::to_string(1000 + k % 9000); }) +
           "\nThe answer is: " + Join(1600, "+", [](size_t k) { return std::to_string(k); }),
       "1"},
      {"3000 touching intervals merged",
       Boxed(Join(3000, "\\cup ",
                  [](size_t k) {
                    std::string piece = "[";  // appended: GCC 12 warns falsely on a + chain
                    piece.append(std::to_string(k)).append(",").append(std::to_string(k + 1));
                    return piece + "]";
                  })),
       "[0,3000]"},
      {"a 4000-digit bare answer read in the gold's base 2",
       Boxed(Repeat("10", 2000)), "1011_2"},
      {"a 40-place decimal against a gold of 3000-digit parts",
       Boxed("0." + std::string(40, '3')), "\\frac{" + std::string(3000, '1') + "}{" +
           std::string(3001, '3') + "}"},
      {"2000 cases pieces against themselves reversed",
       Boxed("\\begin{cases}" +
             Join(2000, "\\\\",
                  [](size_t k) { return std::to_string(k) + " & x = " + std::to_string(k); }) +
             "\\end{cases}"),
       "\\begin{cases}" +
           Join(2000, "\\\\",
                [](size_t k) {
                  return std::to_string(1999 - k) + " & x = " + std::to_string(1999 - k);
                }) +
           "\\end{cases}"},
      {"a 10 KB limit", Boxed("\\lim_{x \\to 0}" + Repeat("(x+1)", 2000) + " = 1"), "1"},
      {"a 60x60 matrix squared",
       Boxed(Repeat(
           "\\begin{pmatrix}" +
               Join(60, "\\\\", [](size_t) { return Join(60, "&", [](size_t) { return "7"; }); }) +
               "\\end{pmatrix}",
           2)),
       "1"},
  };
  Verifier loaded(WithBackstop(kLoadedBackstopMs));
  Verifier idle(WithBackstop(kNoBackstop));
  for (const Case& c : cases) {
    INFO(c.name);
    CheckResult with_backstop = loaded.Check(c.completion, c.gold);
    CheckResult without = idle.Check(c.completion, c.gold);
    CHECK(without.detail != "time budget exhausted");
    CHECK(with_backstop.verdict == without.verdict);
    CHECK(with_backstop.detail == without.detail);
    CHECK(with_backstop.nodes == without.nodes);
  }
}

}  // namespace rl::rewards::math

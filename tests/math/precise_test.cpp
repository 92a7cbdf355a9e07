// The 50-digit re-check of apparent equalities (PreciselyEqual) at sample points where a
// symbol's value is real, so its imaginary part is a long double zero. Boost turned that zero
// into a malformed 50-digit float wherever long double classification is emulated (valgrind),
// and the hypot of the symbol's value then divided by a zero mantissa inside a noexcept Boost
// function: std::terminate. CMakeLists.txt runs this test under valgrind as well when it is
// installed, which is where it fails without the fix; natively it pins the verdicts.
#include <catch2/catch.hpp>

#include <string>

#include "rewards/math/verify.h"

namespace {

using rl::rewards::math::CheckResult;
using rl::rewards::math::Verdict;
using rl::rewards::math::Verifier;

struct Case {
  const char* pred;  // an answer, boxed before checking
  const char* gold;
  bool equal;
};

}  // namespace

TEST_CASE("symbolic answers re-checked with 50 digits at real sample points", "[math]") {
  // Golds and answers of realworld rows that aborted under valgrind, with near misses.
  const Case cases[] = {
      {"y = \\frac{e}{4}(x + 1)", "$y=\\frac{e}{4}x+\\frac{e}{4}$", true},
      {"y = \\frac{e}{4}(x + 2)", "$y=\\frac{e}{4}x+\\frac{e}{4}$", false},
      {"\\sqrt{\\frac{q}{s}} + 1", "$r=1+\\sqrt{\\frac{q}{s}}$", true},
      {"\\sqrt{\\frac{s}{q}} + 1", "$r=1+\\sqrt{\\frac{q}{s}}$", false},
      {"\\frac{d e f}{d e + e f + f d}", "$C=\\frac{def}{de+df+ef}$", true},
      {"a b^2 + ab + b", "$ab+ab^{2}+b$", true},
      {"a b^2 + ab - b", "$ab+ab^{2}+b$", false},
      {"y = 5 - 2x", "$y=-2x+5$", true},
      {"\\frac{1}{x}", "f(x)=\\frac{1}{x}", true},
      {"\\left\\lfloor \\frac{n}{2} \\right\\rfloor", "\\lfloor\\sqrt{n-1}\\rfloor", false},
  };
  Verifier verifier;
  for (const Case& c : cases) {
    std::string completion = std::string("so the result is \\boxed{") + c.pred + "}.";
    CheckResult r = verifier.Check(completion, c.gold);
    INFO("pred: " << c.pred << "  gold: " << c.gold << "  verdict: " << ToString(r.verdict)
                  << "  detail: " << r.detail);
    CHECK(r.verdict == (c.equal ? Verdict::kCorrect : Verdict::kIncorrect));
  }
}

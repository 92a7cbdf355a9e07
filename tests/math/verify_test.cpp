// Unit tests of rl::rewards::math::Verifier, one section per answer form, each with near misses.
#include <catch2/catch.hpp>

#include <string>

#include "rewards/math/verify.h"

namespace {

using rl::rewards::math::CheckResult;
using rl::rewards::math::Verdict;
using rl::rewards::math::Verifier;
using rl::rewards::math::VerifierOptions;

struct Case {
  const char* pred;  // an answer, boxed before checking
  const char* gold;
  bool equal;
};

void CheckCases(std::initializer_list<Case> cases, const VerifierOptions& options = {}) {
  Verifier verifier(options);
  for (const Case& c : cases) {
    std::string completion = std::string("so the result is \\boxed{") + c.pred + "}.";
    CheckResult r = verifier.Check(completion, c.gold);
    INFO("pred: " << c.pred << "  gold: " << c.gold << "  verdict: " << ToString(r.verdict)
                  << "  pred_canonical: " << r.pred_canonical
                  << "  gold_canonical: " << r.gold_canonical << "  detail: " << r.detail);
    CHECK(r.verdict == (c.equal ? Verdict::kCorrect : Verdict::kIncorrect));
  }
}

Verdict VerdictOf(std::string_view completion, std::string_view gold,
                  const VerifierOptions& options = {}) {
  return Verifier(options).Check(completion, gold).verdict;
}

}  // namespace

TEST_CASE("numbers: integers, decimals, separators, scientific notation", "[math]") {
  CheckCases({
      {"42", "42", true},
      {"-42", "42", false},
      {"7,425,000", "7425000", true},
      {"1\\,000", "1000", true},
      {"10{,}000", "10000", true},
      {"1.5\\times10^{3}", "1500", true},
      {"1.5e3", "1500", true},
      {"1.5e3", "150", false},
      {"0.5", "\\frac{1}{2}", true},
      {"0.33", "\\frac{1}{3}", false},
      {"0.333333", "\\frac{1}{3}", true},
      {"2.000", "2", true},
      {"\\$12.50", "12.5", true},
      {"−3", "-3", true},          // Unicode minus
      {"１２", "12", true},         // full-width digits
      {"1011_2", "11", true},
      {"204_5", "54", true},
      {"12", "24", false},          // off by a factor
  });
}

TEST_CASE("decimals are compared with magnitude awareness", "[math]") {
  CheckCases({
      {"1.5\\times10^{-9}", "1.6\\times10^{-9}", false},
      {"\\frac{1}{2004!}", "\\frac{1}{2006!}", false},
      {"\\frac{1}{2004!}", "\\frac{2005 \\cdot 2006}{2006!}", true},
      {"3.14159", "\\pi", true},        // truncated to its 5 places (rounded_decimal_digits)
      {"3.14158", "\\pi", false},
      {"3.141593", "\\pi", true},
  });
  VerifierOptions two;
  two.precision = 2;
  CheckCases({{"3.14", "\\pi", true}, {"0.33", "\\frac{1}{3}", true}}, two);
}

TEST_CASE("fractions, roots, mixed numbers, constants", "[math]") {
  CheckCases({
      {"\\frac{3}{4}", "0.75", true},
      {"\\dfrac{6}{8}", "\\frac34", true},
      {"\\tfrac12", "1/2", true},
      {"2\\frac{1}{2}", "\\frac{5}{2}", true},
      {"-2\\frac{1}{2}", "-\\frac{5}{2}", true},
      {"2\\frac{1}{2}", "1", false},
      {"2(\\frac{1}{2})", "1", true},  // a product, not a mixed number
      {"\\sqrt{12}", "2\\sqrt{3}", true},
      {"\\sqrt3", "\\sqrt{3}", true},
      {"\\sqrt[3]{8}", "2", true},
      {"-\\sqrt{12}", "2\\sqrt{3}", false},
      {"\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", true},
      {"\\frac{9}{4}\\pi", "\\frac94\\pi", true},
      {"2\\pi", "\\pi", false},
      {"e^{2}", "\\exp(2)", true},
      {"\\mathrm{e}", "e", true},
      {"i^2", "-1", true},
  });
}

TEST_CASE("functions: trig, logs, abs, floor, factorial, binomial", "[math]") {
  CheckCases({
      {"\\sin^2 x + \\cos^2 x", "1", true},
      {"\\sec^2(y)", "\\tan^2(y)+1", true},
      {"2 \\sin b \\cos a", "\\sin(a+b) - \\sin(a-b)", true},
      {"\\log_2 8", "3", true},
      {"\\ln(e^3)", "3", true},
      {"|-5|", "5", true},
      {"\\lfloor 3.7 \\rfloor", "3", true},
      {"\\lceil 3.2 \\rceil", "4", true},
      {"5!", "120", true},
      {"\\binom{5}{2}", "10", true},
      {"\\binom{5}{2}", "20", false},
      {"\\arctan(1)", "\\frac{\\pi}{4}", true},
  });
}

TEST_CASE("algebraic expressions by random-point evaluation", "[math]") {
  CheckCases({
      {"\\frac{x}{7}+\\frac{2}{7}", "\\frac{x+2}{7}", true},
      {"(x+1)^2", "x^2+2x+1", true},
      {"(x+1)^2", "x^2+x+1", false},
      {"x^2-1", "(x-1)(x+1)", true},
      {"2-2p", "2-2p", true},
      {"2+2p", "2-2p", false},
      {"\\frac{\\pi r}{h+r}", "\\frac{r\\pi}{r+h}", true},
      {"x+1", "x+2n+1", false},
      {"1-\\frac{1}{\\mathrm{e}}", "1+\\frac{1}{\\mathrm{e}}", false},  // Math-Verify false positive
  });
}

TEST_CASE("percent", "[math]") {
  CheckCases({
      {"10\\%", "10\\%", true},
      {"10 percent", "10\\%", true},
      {"0.1", "10\\%", true},
      {"10", "10\\%", true},  // percent_accepts_bare_number (default)
      {"20\\%", "10\\%", false},
      {"10\\%", "10", false},
  });
  VerifierOptions options;
  options.number_accepts_percent = true;
  options.percent_accepts_bare_number = false;
  CheckCases({{"10\\%", "10", true}, {"10", "10\\%", false}}, options);
}

TEST_CASE("units, degrees, currency and text", "[math]") {
  CheckCases({
      {"15\\text{ cm}^2", "15", true},
      {"125\\text{ miles}", "125", true},
      {"90^\\circ", "90", true},
      {"90^{\\circ}", "91", false},
      {"\\text{Evelyn}", "\\text{Evelyn}", true},
      {"\\text{odd}", "\\text{even}", false},
      {"\\text{(C)}", "\\text{C}", true},
      {"\\text{(B)}", "\\text{C}", false},
  });
}

TEST_CASE("tuples are ordered, sets unordered, and they differ", "[math]") {
  CheckCases({
      {"(1, 2)", "(1,2)", true},
      {"(2, 1)", "(1,2)", false},  // swapped tuple
      {"(1,4.5)", "(1,\\frac{9}{2})", true},
      {"\\{1,2\\}", "(1,2)", false},  // Math-Verify false positive
      {"\\{2,1\\}", "\\{1,2\\}", true},
      {"\\{1,2\\}", "\\{1,2,3\\}", false},  // missing solution
      {"\\{1,2,3\\}", "\\{1,2\\}", false},  // extra solution
      {"\\emptyset", "\\varnothing", true},
      {"(3,2,7)", "(p,q,r)=(3,2,7)", true},
      {"(3,7,2)", "(p,q,r)=(3,2,7)", false},
  });
}

TEST_CASE("solution lists, plus-minus, several boxed answers", "[math]") {
  CheckCases({
      {"-2, 1", "1, -2", true},
      {"-2, 1", "1, 2", false},
      {"3 \\pm 2\\sqrt{2}", "3+2\\sqrt{2}, 3-2\\sqrt{2}", true},
      {"3 + 2\\sqrt{2}", "3 \\pm 2\\sqrt{2}", false},
      {"\\{1\\pm\\sqrt{5},-2\\}", "\\{-2, 1+\\sqrt5, 1-\\sqrt5\\}", true},
      {"x = 1, x = 2", "1, 2", true},
      {"a_3 = 2, a_{37} = 19", "a_{37} = 19, a_3 = 2", true},
      {"a_3 = 19, a_{37} = 2", "a_{37} = 19, a_3 = 2", false},
  });
  CHECK(VerdictOf("\\boxed{1} and \\boxed{2}", "\\{1,2\\}") == Verdict::kCorrect);
  CHECK(VerdictOf("\\boxed{3} or \\boxed{4}", "3") == Verdict::kIncorrect);  // hedging
  CHECK(VerdictOf("\\boxed{3} or \\boxed{4}", "3, 4") == Verdict::kCorrect);  // both roots
  CHECK(VerdictOf("\\boxed{3} or \\boxed{5}", "3, 4") == Verdict::kIncorrect);
  CHECK(VerdictOf("\\boxed{3} or \\boxed{4}", "4") == Verdict::kIncorrect);
}

TEST_CASE("intervals and unions", "[math]") {
  CheckCases({
      {"[0,1)", "[0,1)", true},
      {"(0,1]", "[0,1)", false},  // wrong bracket
      {"[0,9)", "(0,9)", false},
      {"(-\\infty, 3)", "(-\\infty,3)", true},
      {"(1, +\\infty)", "(1,\\infty)", true},
      {"(1,2) \\cup (3,4)", "(3,4) \\cup (1,2)", true},
      {"(1,2) \\cup (3,4)", "(1,2) \\cup (3,5)", false},
      {"[-1, -\\tfrac12) \\cup (0, 1)", "[-1,-\\frac{1}{2}) \\cup (0,1)", true},
      {"(0.6,2.6667]", "(\\frac{3}{5},\\frac{8}{3}]", true},  // 8/3 rounded to 4 places
      {"(0.6,2.667]", "(\\frac{3}{5},\\frac{8}{3}]", false},  // 3 places: too loose
  });
}

TEST_CASE("inequalities and their intervals", "[math]") {
  CheckCases({
      {"x \\geq 5", "x >= 5", true},
      {"5 \\geq x", "x \\leq 5", true},
      {"-x > -1", "x < 1", true},
      {"x > -1", "x < 1", false},
      {"x \\leq 5", "x \\geq 5", false},
      {"x < 5", "x \\le 5", false},
      {"[-2, 7]", "-2 \\le x \\le 7", true},  // an inequality gold accepts the interval
      {"(-2, 7]", "-2 \\le x \\le 7", false},
      {"[5, \\infty)", "x \\ge 5", true},
      {"-2 \\le x \\le 7", "[-2, 7]", false},  // the reverse needs the option
      {"z \\in [-\\frac{3}{2}, -1] \\cup [1, \\frac{3}{2}]", "1 \\le |z| \\le \\frac{3}{2}", true},
      {"(-\\infty, -3] \\cup [3, \\infty)", "|x| \\ge 3", true},
      {"(-\\infty, -3) \\cup [3, \\infty)", "|x| \\ge 3", false},
      {"(-3, 3)", "|x| < 3", true},
      {"(-3, 3]", "|x| < 3", false},
  });
  VerifierOptions options;
  options.interval_accepts_inequality = true;
  CheckCases({{"-2 \\le x \\le 7", "[-2, 7]", true}, {"-2 < x \\le 7", "[-2, 7]", false}},
             options);
}

TEST_CASE("equations: assignments, multiples, chains", "[math]") {
  CheckCases({
      {"x = 11", "11", true},
      {"x = 5+5+1 = 11", "x = 11", true},
      {"x = 5+5+1 = 12", "x = 11", false},
      {"y=-\\frac{1}{2}x+\\frac{3}{4}", "2x+4y-3=0", true},
      {"y=2x+1", "2x-y+1=0", true},
      {"y=2x+2", "2x-y+1=0", false},
      {"-34x-45y+20z-100=0", "34x+45y-20z+100=0", true},
      {"x^2/16 + y^2/12 = 1/4", "x^2/4 + y^2/3 = 1", true},
      {"0", "3x-y+13=0", false},  // Math-Verify false positive: an equation is not 0
      {"3x-y+13=0", "0", false},
      {"k=1", "1", true},
      {"x \\approx 11", "11", true},
      {"11a+c", "7 = 11a+c", false},
  });
}

TEST_CASE("matrices and vectors", "[math]") {
  CheckCases({
      {"\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", true},
      {"\\begin{pmatrix}1 & 2 \\\\ 3 & 5\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", false},
      {"\\begin{pmatrix}1 & 3 \\\\ 2 & 4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", false},
      {"\\begin{pmatrix}1 \\\\ 2\\end{pmatrix} + \\begin{pmatrix}3 \\\\ 4\\end{pmatrix}",
       "\\begin{pmatrix}4\\\\6\\end{pmatrix}", true},
      {"2\\begin{pmatrix}1 \\\\ 2\\end{pmatrix}", "\\begin{pmatrix}2\\\\4\\end{pmatrix}", true},
      {"\\left[\\begin{array}{cc}1 & 2 \\\\3 & 4\\end{array}\\right]",
       "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", true},
  });
}

TEST_CASE("ratios and multiple choice", "[math]") {
  CheckCases({
      {"7:32", "S_{MBCN}:S=7:32", true},
      {"12:00", "12:00", true},
      {"1:00", "12:00", false},
      {"2:3", "4:6", true},
      {"2:3", "\\frac{2}{3}", true},
      {"\\frac{2}{3}", "2:3", true},
      {"3:2", "\\frac{2}{3}", false},
      {"C", "\\text{C}", true},
      {"D", "\\text{C}", false},
  });
  VerifierOptions choices;
  choices.choices = {"A", "B", "C", "D"};
  CHECK(VerdictOf("The answer is B.", "B", choices) == Verdict::kCorrect);
  CHECK(VerdictOf("A is wrong, so the answer is (C)", "C", choices) == Verdict::kCorrect);
  CHECK(VerdictOf("The answer is B.", "C", choices) == Verdict::kIncorrect);
  CHECK(VerdictOf("no idea", "C", choices) == Verdict::kNoAnswer);
}

TEST_CASE("extraction order: answer tag, boxed, anchors, math, numbers", "[math]") {
  CHECK(VerdictOf("<think>maybe \\boxed{3}</think><answer>\\boxed{4}</answer>", "4") ==
        Verdict::kCorrect);
  CHECK(VerdictOf("<think>x</think><answer>4</answer>", "4") == Verdict::kCorrect);
  CHECK(VerdictOf("First \\boxed{3}, then \\boxed{\\frac{1}{2}}", "0.5") == Verdict::kCorrect);
  CHECK(VerdictOf("We get 5 apples. The final answer is $7$.", "7") == Verdict::kCorrect);
  CHECK(VerdictOf("Answer: 12", "12") == Verdict::kCorrect);
  CHECK(VerdictOf("so we get $x = 3$ here", "3") == Verdict::kCorrect);
  CHECK(VerdictOf("there are **73** ways", "73") == Verdict::kCorrect);
  CHECK(VerdictOf("\\boxed{\\left( \\frac{1}{3} \\right)}", "1/3") == Verdict::kCorrect);
  CHECK(VerdictOf("\\boxed{1\\!000}", "1000") == Verdict::kCorrect);
  CHECK(VerdictOf("The total is 1,234 dollars", "1234") == Verdict::kCorrect);
  CHECK(VerdictOf("I do not know", "12") == Verdict::kNoAnswer);
  CHECK(VerdictOf("", "12") == Verdict::kNoAnswer);
  // An empty answer block answers nothing, whatever the thought computed.
  CHECK(VerdictOf("<think>30 / 6 = 5.</think><answer></answer>", "5") == Verdict::kNoAnswer);
  CHECK(VerdictOf("<think>\\boxed{5}</think><answer> </answer>", "5") == Verdict::kNoAnswer);
  VerifierOptions boxed_only;
  boxed_only.extraction = {rl::rewards::math::Extraction::kBoxed};
  CHECK(VerdictOf("the answer is 12", "12", boxed_only) == Verdict::kNoAnswer);
}

TEST_CASE("verdicts for unreadable input", "[math]") {
  CHECK(VerdictOf("\\boxed{3}", "\\frac{") == Verdict::kInvalidGold);
  CHECK(VerdictOf("\\boxed{3}", "\\foo{(}") == Verdict::kInvalidGold);
  CHECK(VerdictOf("\\boxed{)(}", "3") == Verdict::kUnparseableAnswer);
  CHECK(VerdictOf("\\boxed{\\frac{1}{0}}", "3") == Verdict::kIncorrect);
  CHECK(VerdictOf("\\boxed{3}", std::string("\xff\xfe", 2)) == Verdict::kInvalidGold);
  // Well-formed UTF-8 is the standard's: an encoded surrogate or a 3-byte overlong is not text.
  CHECK(VerdictOf("\\boxed{3}", "3\xED\xA0\x80") == Verdict::kInvalidGold);
  CHECK(VerdictOf("\\boxed{3\xE0\x80\xB3}", "3") == Verdict::kUnparseableAnswer);
  CHECK(VerdictOf("\\boxed{3\xC3\x97 2}", "6") != Verdict::kUnparseableAnswer);  // U+00D7
  CheckResult r = Verifier().Check("\\boxed{\\frac{6}{8}}", "0.75");
  CHECK(r.verdict == Verdict::kCorrect);
  CHECK(r.extracted == "\\frac{6}{8}");
  CHECK(r.pred_canonical == "(6*1/8)");
  CHECK(r.gold_canonical == "3/4");
}

TEST_CASE("verdict and extraction names", "[math]") {
  CHECK(ToString(Verdict::kCorrect) == "correct");
  CHECK(ToString(Verdict::kIncorrect) == "incorrect");
  CHECK(ToString(Verdict::kNoAnswer) == "no_answer");
  CHECK(ToString(Verdict::kUnparseableAnswer) == "unparseable_answer");
  CHECK(ToString(Verdict::kInvalidGold) == "invalid_gold");
  CHECK(ToString(Verdict::kBudgetExceeded) == "budget_exceeded");
  CHECK(ToString(rl::rewards::math::Extraction::kMathEnv) == "math_env");
}

TEST_CASE("an answer block written as a sentence", "[math]") {
  CHECK(VerdictOf("<think>...</think><answer>The answer is 5.</answer>", "5") == Verdict::kCorrect);
  CHECK(VerdictOf("<think>...</think><answer>She has 12 apples</answer>", "12") ==
        Verdict::kCorrect);
  CHECK(VerdictOf("<think>...</think><answer>so $x = \\frac{1}{2}$ here</answer>", "0.5") ==
        Verdict::kCorrect);
  CHECK(VerdictOf("<think>...</think><answer>x = 3</answer>", "3") == Verdict::kCorrect);
  CHECK(VerdictOf("<think>...</think><answer>Evelyn</answer>", "\\text{Evelyn}") ==
        Verdict::kCorrect);
  CHECK(VerdictOf("<think>...</think><answer>She has 13 apples</answer>", "12") ==
        Verdict::kIncorrect);
}

TEST_CASE("vectors written as tuples or one-column matrices", "[math]") {
  CheckCases({
      {"\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "(1,2)", true},
      {"(1, 2)", "\\begin{pmatrix} 1 & 2 \\end{pmatrix}", true},
      {"\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}", "(1,2)", false},
      {"\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "(1,2,3,4)", false},
  });
}

TEST_CASE("cancellation does not fool the numeric comparison", "[math]") {
  CheckCases({
      {"(10^{20}+x)-10^{20}", "x", true},
      {"(10^{20}+x)-10^{20}", "x+1", false},
      {"\\sqrt{10^{30}+x}-10^{15}", "\\frac{x}{\\sqrt{10^{30}+x}+10^{15}}", true},
      {"\\pi + 10^{-30}", "\\pi", false},
  });
}

TEST_CASE("names, Greek letters, subscripts, membership", "[math]") {
  CheckCases({
      {"\\alpha + 2\\beta", "2\\beta+\\alpha", true},
      {"\\alpha + 2\\beta", "2\\alpha+\\beta", false},
      {"x_1 = 2, x_2 = 3", "2, 3", true},
      {"a=2, b=3", "(2,3)", true},
      {"x \\in [1, 2]", "[1,2]", true},
      {"x \\in [1, 2]", "[1,2)", false},
      {"(C)", "C", true},
      {"\\{3\\}", "3", false},
      {"1 \\mp \\sqrt{2}", "1 \\pm \\sqrt 2", true},
      {"\\cot(\\pi/4)", "1", true},
      {"\\exp(\\ln 5)", "5", true},
      {"1.0\\times10^{-10}", "10^{-10}", true},
      {"0.6665", "\\frac{2}{3}", false},
      {"0.666667", "\\frac{2}{3}", true},
  });
  CHECK(VerdictOf("\\fbox{7}", "7") == Verdict::kCorrect);
  CHECK(VerdictOf("**Final Answer:** 18", "18") == Verdict::kCorrect);
}

TEST_CASE("sums and products", "[math]") {
  CheckCases({
      {"\\sum_{k=1}^{10} k^2", "385", true},
      {"\\sum_{k=1}^{10} k", "56", false},
      {"\\prod_{k=1}^{5} k", "5!", true},
      {"\\sum_{i=0}^{3} 2^i x", "15x", true},
      {"F_n = \\sum_{k=0}^{n-1} F_{n-k-1} F_k", "F_n = \\sum_{k=0}^{n-1} F_k F_{n-k-1}", true},
      {"F_n = \\sum_{k=0}^{n-2} F_k F_{n-k-2}", "F_n = \\sum_{k=0}^{n-1} F_k F_{n-k-1}", false},
  });
  CHECK(VerdictOf("\\boxed{\\sum_{k=1}^{10^{9}} k}", "1") == Verdict::kBudgetExceeded);
}

TEST_CASE("long solution lists", "[math]") {
  // These checks spend up to ~256k of the default 400k nodes (several ms natively); under
  // AddressSanitizer on CI's loaded 2-core machine one passed the 50 ms CPU backstop and was
  // kBudgetExceeded. What is tested is that the node budget suffices, so the backstop is off
  // (budget_test covers it) and the nodes are checked against the default budget instead.
  VerifierOptions no_backstop;
  no_backstop.time_budget_ms = 1e9;
  const Verifier verifier(no_backstop);
  auto verdict_of = [&](const std::string& completion, const std::string& gold) {
    CheckResult r = verifier.Check(completion, gold);
    CHECK(r.nodes < VerifierOptions().node_budget);
    return r.verdict;
  };
  std::string divisors, reversed;
  std::vector<int> d;
  for (int k = 1; k <= 5040; ++k) {
    if (5040 % k == 0) d.push_back(k);
  }
  for (size_t k = 0; k < d.size(); ++k) {
    if (k > 0) {
      divisors += ", ";
      reversed += ", ";
    }
    divisors += std::to_string(d[k]);
    reversed += std::to_string(d[d.size() - 1 - k]);
  }
  CHECK(verdict_of("\\boxed{" + reversed + "}", divisors) == Verdict::kCorrect);
  CHECK(verdict_of("\\boxed{" + reversed + ", 7}", divisors) == Verdict::kCorrect);  // duplicate
  CHECK(verdict_of("\\boxed{" + reversed + ", 11}", divisors) == Verdict::kIncorrect);
  std::string squares, squares_reversed;
  for (int k = 1; k <= 100; ++k) {
    if (k > 1) {
      squares += ", ";
      squares_reversed += ", ";
    }
    squares += "\\sqrt{" + std::to_string(k) + "}";
    squares_reversed += "\\sqrt{" + std::to_string(101 - k) + "}";
  }
  CHECK(verdict_of("\\boxed{" + squares_reversed + "}", squares) == Verdict::kCorrect);
}

TEST_CASE("degrees are numbers, and radians inside trigonometric functions", "[math]") {
  CheckCases({
      {"\\frac{\\sqrt{6}-\\sqrt{2}}{4}", "\\sin 15^\\circ", true},
      {"\\frac{1}{2}", "\\cos(60^{\\circ})", true},
      {"\\frac{1}{2}", "\\cos 60", false},
      {"30^\\circ", "30", true},
      {"\\frac{\\pi}{6}", "30^\\circ", false},
  });
  CHECK(VerdictOf("\\boxed{1 \\text{ and } 2}", "1,2") == Verdict::kCorrect);  // not 1.2
  CHECK(VerdictOf("\\boxed{1.22}", "1,22") == Verdict::kCorrect);  // a decimal comma
}

TEST_CASE("repeating decimals are exact", "[math]") {
  CheckCases({
      {"0.\\overline{3}", "\\frac13", true},
      {"0.1\\overline{6}", "\\frac16", true},
      {"1.\\overline{142857}", "\\frac{8}{7}", true},
      {"0.\\overline{3}", "0.3", false},
      {"0.\\overline{36}", "\\frac{4}{11}", true},
  });
}

TEST_CASE("multiple-choice golds with a value", "[math]") {
  CheckCases({
      {"B", "\\textbf{(B) }15", true},
      {"(B)", "\\textbf{(B) }15", true},
      {"15", "\\textbf{(B) }15", true},
      {"C", "\\textbf{(B) }15", false},
      {"16", "\\textbf{(B) }15", false},
  });
}

TEST_CASE("answer markers: PRM800K's '# Answer' line and GSM8K's '#### 42' line", "[math]") {
  CHECK(VerdictOf("We add them.\n\n# Answer\n\n\\frac{3}{2}", "\\frac32") == Verdict::kCorrect);
  CHECK(VerdictOf("We add them.\n\n# Answer\n\n\\frac{3}{2}", "2") == Verdict::kIncorrect);
  CHECK(VerdictOf("We add them.\n\n# Answer\n\n\\frac{2}{3}", "\\frac32") == Verdict::kIncorrect);
  CHECK(VerdictOf("So 3 + 4 = 7 apples.\n# Answer\n\n5 apples", "5") == Verdict::kCorrect);
  CHECK(VerdictOf("**Final Answer**\n\n$\\frac{1}{2}$", "0.5") == Verdict::kCorrect);
  CHECK(VerdictOf("# Answer\n\n", "3") == Verdict::kNoAnswer);
  CHECK(VerdictOf("# Answer\n# Answer\n", "3") == Verdict::kNoAnswer);  // a heading, not its answer
  CHECK(VerdictOf("She pays 3 * 14 = 42 dollars.\n#### 42", "42") == Verdict::kCorrect);
  CHECK(VerdictOf("She pays 3 * 14 = 42 dollars.\n#### 41", "42") == Verdict::kIncorrect);
  CHECK(VerdictOf("That is 1,234 in all.\n#### 1,234", "1234") == Verdict::kCorrect);
  CHECK(VerdictOf("That is 1,234 in all.\n#### 1,243", "1234") == Verdict::kIncorrect);
  // A markdown heading "#### Step 2" is not GSM8K's answer line.
  CHECK(VerdictOf("#### Step 2\nThe result is $5$.", "5") == Verdict::kCorrect);
  CheckResult r = Verifier().Check("Half of 84 is 42.\n#### 42", "42");
  CHECK(r.extracted == "42");
}

TEST_CASE("an anchor's whole phrase is read, never a digit out of a fraction", "[math]") {
  CHECK(VerdictOf("The answer is: \\frac{3}{2}.", "\\frac{3}{2}") == Verdict::kCorrect);
  CHECK(VerdictOf("The answer is: \\frac{3}{2}.", "2") == Verdict::kIncorrect);
  CHECK(VerdictOf("The answer is: \\frac{2}{3}.", "\\frac{3}{2}") == Verdict::kIncorrect);
  CHECK(VerdictOf("The answer is therefore \\frac{3}{2} cups.", "1.5") == Verdict::kCorrect);
  CHECK(VerdictOf("Final answer: 2\\sqrt{3}", "\\sqrt{12}") == Verdict::kCorrect);
  CHECK(VerdictOf("Final answer: 2\\sqrt{3}", "\\sqrt{3}") == Verdict::kIncorrect);
  CHECK(VerdictOf("The answer is 3x", "3x") == Verdict::kCorrect);
  CHECK(VerdictOf("The answer is 3x", "3") == Verdict::kIncorrect);
  // A plain number keeps its plain-text readings: units dropped, separators, mixed numbers.
  CHECK(VerdictOf("The answer is 5 cm.", "5") == Verdict::kCorrect);
  CHECK(VerdictOf("The answer is 1,000.99 dollars", "1000.99") == Verdict::kCorrect);
  CHECK(VerdictOf("The answer is 4 4/9", "\\frac{40}{9}") == Verdict::kCorrect);
  CHECK(VerdictOf("The answer is 4 4/9", "\\frac{16}{9}") == Verdict::kIncorrect);
  CHECK(VerdictOf("The answer is 5 percent", "5\\%") == Verdict::kCorrect);
  CHECK(VerdictOf("Answer: 12 (since 3*4=12)", "12") == Verdict::kCorrect);
  CHECK(VerdictOf("Answer: 13 (since 3*4=12)", "12") == Verdict::kIncorrect);
}

TEST_CASE("a box yields to a later answer marker only when that is the final statement",
          "[math]") {
  CHECK(VerdictOf("So \\boxed{5}.\n\nThe answer is 6.", "6") == Verdict::kCorrect);
  CHECK(VerdictOf("So \\boxed{5}.\n\nThe answer is 6.", "5") == Verdict::kIncorrect);
  CHECK(VerdictOf("So \\boxed{5}.\nThe final answer is 6. I hope it is correct.", "6") ==
        Verdict::kCorrect);
  // More working after the marker: the box stands.
  CHECK(VerdictOf("So \\boxed{5}.\n\nThe answer is 6. Let me check: 2+3=5.", "5") ==
        Verdict::kCorrect);
  CHECK(VerdictOf("So \\boxed{5}.\n\nThe answer is 6. Let me check: 2+3=5.", "6") ==
        Verdict::kIncorrect);
  CHECK(VerdictOf("So \\boxed{5}.\nIs the answer: 6? Check: 2 + 4 = 6.\nSo 5.", "5") ==
        Verdict::kCorrect);
  // A marker that names words, not math, does not displace the box.
  CHECK(VerdictOf("\\boxed{5}. So the answer is above.", "5") == Verdict::kCorrect);
  // A marker before the box never overrides it.
  CHECK(VerdictOf("The answer is 6? No: \\boxed{5}", "5") == Verdict::kCorrect);
}

TEST_CASE("a bracketed pair is never a number with a decimal comma", "[math]") {
  CHECK(VerdictOf("The answer is (-1,6).", "(-1,6)") == Verdict::kCorrect);
  CHECK(VerdictOf("The answer is (-1,6).", "-1.6") == Verdict::kIncorrect);
  CHECK(VerdictOf("The answer is (1,2)", "1.2") == Verdict::kIncorrect);
  CHECK(VerdictOf("The answer is (1, 2].", "(1,2]") == Verdict::kCorrect);
  CHECK(VerdictOf("The answer is (1, 2].", "[1,2]") == Verdict::kIncorrect);
  CHECK(VerdictOf("\\boxed{(-1,6)}", "(-1,6)") == Verdict::kCorrect);
  CHECK(VerdictOf("\\boxed{-1.6}", "(-1,6)") == Verdict::kIncorrect);
  CHECK(VerdictOf("\\boxed{(-1,6)}", "-1.6") == Verdict::kIncorrect);
  // The last plain number of a completion: the pair's parts, not -1.6.
  CHECK(VerdictOf("we get (-1,6)", "-1.6") == Verdict::kIncorrect);
  CHECK(VerdictOf("we get (1,2)", "1.2") == Verdict::kIncorrect);
  // Where the text is a number, the comma readings stay: thousands, a decimal comma.
  CHECK(VerdictOf("The total is 1,234 dollars", "1234") == Verdict::kCorrect);
  CHECK(VerdictOf("The answer is 1,22", "1.22") == Verdict::kCorrect);
  CHECK(VerdictOf("The answer is 1,6", "1,6") == Verdict::kCorrect);  // two numbers, as the gold
  CHECK(VerdictOf("The answer is 1,6", "1.6") == Verdict::kIncorrect);
}

TEST_CASE("identical repeated boxes are one answer", "[math]") {
  CHECK(VerdictOf("\\boxed{6}\n\\boxed{6}", "6") == Verdict::kCorrect);
  CHECK(VerdictOf("\\boxed{6}, \\boxed{6}", "6") == Verdict::kCorrect);
  CHECK(VerdictOf("\\boxed{6} or \\boxed{6}", "6") == Verdict::kCorrect);
  CHECK(VerdictOf("\\boxed{\\frac12} and \\boxed{\\frac{1}{2}}", "0.5") == Verdict::kCorrect);
  CHECK(VerdictOf("\\boxed{6}\n\\boxed{6}", "7") == Verdict::kIncorrect);
  CHECK(VerdictOf("\\boxed{6} and \\boxed{7}", "6") == Verdict::kIncorrect);  // two answers
  CHECK(Verifier().Check("\\boxed{6}\n\\boxed{6}", "6").extracted == "6");
}

TEST_CASE("plain-text final answers of chat models are read whole", "[math]") {
  CHECK(VerdictOf("**Final Answer:** 1+2i", "1+2i") == Verdict::kCorrect);
  CHECK(VerdictOf("**Final Answer:** 1+2i", "2") == Verdict::kIncorrect);
  CHECK(VerdictOf("**Final Answer:** 1-2i", "1+2i") == Verdict::kIncorrect);
  CHECK(VerdictOf("Answer: $x=3$ or $x=-3$", "\\pm 3") == Verdict::kCorrect);
  CHECK(VerdictOf("Answer: $x=3$ or $x=-3$", "3, -3") == Verdict::kCorrect);
  CHECK(VerdictOf("Answer: $x=3$ or $x=-3$", "3") == Verdict::kIncorrect);  // hedged
  CHECK(VerdictOf("Answer: $x=3$ or $x=-4$", "\\pm 3") == Verdict::kIncorrect);
  CHECK(VerdictOf("The answer is x = 3 or x = -3", "\\pm 3") == Verdict::kCorrect);
  CHECK(VerdictOf("**Answer:**\n\n$\\frac{7}{2}$", "3.5") == Verdict::kCorrect);
  CHECK(VerdictOf("**Answer:**\n\n$\\frac{7}{3}$", "3.5") == Verdict::kIncorrect);
}

TEST_CASE("adjacent or overlapping intervals merge", "[math]") {
  CheckCases({
      {"[-1,0]\\cup[0,1]", "[-1,1]", true},
      {"[-1,0)\\cup[0,1]", "[-1,1]", true},
      {"[-1,0)\\cup(0,1]", "[-1,1]", false},  // 0 is in neither
      {"(1,2)\\cup(2,3)", "(1,3)", false},
      {"[0,2]\\cup[1,3]", "[0,3]", true},
      {"[0,2]\\cup[1,3]", "[0,3)", false},
      {"[0,5]\\cup[1,3]", "[0,5]", true},
      {"[0,1)\\cup\\{1\\}", "[0,1]", true},
      {"(-\\infty,2]\\cup[1,\\infty)", "(-\\infty,\\infty)", true},
      {"[0,3]", "[0,1]\\cup[1,3]", true},
      {"[0,3]", "[0,1]\\cup(1,4]", false},
      {"[5,7]\\cup[7,\\infty)", "x \\ge 5", true},
      {"(5,7]\\cup[7,\\infty)", "x \\ge 5", false},
  });
}

TEST_CASE("a gold written in base b fixes the base of a bare prediction", "[math]") {
  CheckCases({
      {"1011", "1011_2", true},
      {"1011", "1011_{2}", true},
      {"1011_2", "1011_2", true},
      {"11", "1011_2", false},         // eleven in base 10 is not the base-2 numeral asked for
      {"1011_3", "1011_2", false},     // an explicit wrong base stays wrong
      {"1011_{10}", "1011_2", false},
      {"1010", "1011_2", false},       // near miss in the right base
      {"2012", "2012_3", true},
      {"2102", "2012_3", false},
      {"59", "2012_3", true},          // a digit >= 3: only a base-10 value, and 2012_3 is 59
      {"73", "73_8", true},
      {"59", "73_8", true},
      {"1011", "11", false},           // a base-10 gold fixes nothing
  });
}

TEST_CASE("decimals rounded or truncated to their own places", "[math]") {
  CheckCases({
      {"0.6667", "\\frac{2}{3}", true},   // rounded
      {"0.6666", "\\frac{2}{3}", true},   // truncated
      {"0.666666", "\\frac{2}{3}", true},
      {"-0.6667", "-\\frac{2}{3}", true},
      {"0.6668", "\\frac{2}{3}", false},  // neither
      {"0.6665", "\\frac{2}{3}", false},
      {"-0.6667", "\\frac{2}{3}", false}, // sign
      {"0.667", "\\frac{2}{3}", false},   // three significant digits: too loose by default
      {"0.67", "\\frac{2}{3}", false},
      {"33.3333", "\\frac{100}{3}", true},
      {"33.3334", "\\frac{100}{3}", false},
      {"33.33", "\\frac{100}{3}", false},  // two places: too loose by default
      {"1.333", "\\frac{4}{3}", false},
      {"0.0001", "\\frac{1}{7000}", false},  // four places but one significant digit
      {"0.0001428", "\\frac{1}{7000}", true},
      {"1.4142", "\\sqrt{2}", true},      // a gold without an exact value
      {"1.4143", "\\sqrt{2}", false},
      {"3.1416", "\\pi", true},
      {"3.1415", "\\pi", true},
      {"3.142", "\\pi", false},
      {"3.14", "\\pi", false},
      {"3.1417", "\\pi", false},
      {"0.1250", "\\frac{1}{8}", true},
      {"0.1251", "\\frac{1}{8}", false},
      {"6.667e-1", "\\frac{2}{3}", true},
      {"1.000", "\\frac{2}{3}", false},
  });
  VerifierOptions loose;
  loose.rounded_decimal_digits = 3;
  CheckCases({{"0.667", "\\frac{2}{3}", true}, {"0.668", "\\frac{2}{3}", false}}, loose);
  VerifierOptions off;
  off.rounded_decimal_digits = 0;
  CheckCases({{"0.6667", "\\frac{2}{3}", false}, {"0.666667", "\\frac{2}{3}", true}}, off);
}

TEST_CASE("the square root of a square is an absolute value", "[math]") {
  CheckCases({
      {"\\sqrt{x^2}", "|x|", true},
      {"|x|", "\\sqrt{x^2}", true},
      {"\\sqrt{x^2}", "x", false},
      {"x", "\\sqrt{x^2}", false},
      {"\\sqrt{(x-1)^2}", "|x-1|", true},
      {"\\sqrt{(x-1)^2}", "x-1", false},
      {"\\sqrt{x^4}", "x^2", true},
      {"\\sqrt{x^6}", "|x^3|", true},
      {"\\sqrt{x^6}", "x^3", false},
      {"\\sqrt{(-3)^2}", "3", true},
      {"\\sqrt{x^2+1}", "|x|+1", false},
  });
}

TEST_CASE("piecewise definitions in cases environments", "[math]") {
  const char* gold = "\\begin{cases} x^2 & x < 0 \\\\ 2x & x \\ge 0 \\end{cases}";
  CheckCases({
      {"\\begin{cases} x^2 & x < 0 \\\\ 2x & x \\ge 0 \\end{cases}", gold, true},
      {"\\begin{cases} 2x & x \\geq 0 \\\\ x \\cdot x & x < 0 \\end{cases}", gold, true},
      {"\\begin{cases} x^2, & \\text{if } x < 0, \\\\ 2x, & \\text{if } 0 \\le x \\end{cases}",
       gold, true},
      {"\\begin{cases} x^2 & x \\le 0 \\\\ 2x & x > 0 \\end{cases}", gold, false},  // boundary
      {"\\begin{cases} 2x & x < 0 \\\\ x^2 & x \\ge 0 \\end{cases}", gold, false},  // swapped
      {"\\begin{cases} x^2 & x < 0 \\end{cases}", gold, false},                     // a piece
      {"x^2, 2x", gold, false},
      {"\\begin{cases} 1 & x > 0 \\\\ 0 & \\text{otherwise} \\end{cases}",
       "\\begin{cases} 0 & \\text{otherwise} \\\\ 1 & x > 0 \\end{cases}", true},
      {"\\begin{cases} 1 & x > 0 \\\\ 0 & \\text{otherwise} \\end{cases}",
       "\\begin{cases} 1 & x > 0 \\\\ -1 & \\text{otherwise} \\end{cases}", false},
  });
}

TEST_CASE("limits and integrals count only with their value stated", "[math]") {
  // Evaluating \lim or \int takes a symbolic engine the verifier does not have: an answer
  // that states the value is judged by it; one that does not is not guessed at.
  CheckCases({
      {"\\lim_{x \\to 0} \\frac{\\sin x}{x} = 1", "1", true},
      {"\\lim_{x \\to 0} \\frac{\\sin x}{x} = 0", "1", false},
      {"\\int_0^1 x^2 \\, dx = \\frac{1}{3}", "\\frac13", true},
      {"\\int_0^1 (x^2 + 1) \\, dx = \\frac{4}{3}", "\\frac13", false},
      {"\\lim_{n \\to \\infty} \\left(1 + \\frac{1}{n}\\right)^n = e", "e", true},
  });
  Verifier verifier;
  CheckResult lone = verifier.Check("\\boxed{\\int_0^1 x \\, dx}", "\\frac12");
  CHECK(lone.verdict == Verdict::kUnparseableAnswer);
  CHECK(lone.detail.find("cannot decide") != std::string::npos);
  CheckResult scaled = verifier.Check("\\boxed{2\\int_0^1 x \\, dx = 1}", "1");
  CHECK(scaled.verdict == Verdict::kUnparseableAnswer);  // the name is only the left side
  CheckResult gold = verifier.Check("\\boxed{1}", "\\lim_{x \\to 0} \\frac{\\sin x}{x}");
  CHECK(gold.verdict == Verdict::kInvalidGold);  // never a 0 or 1
  CHECK(gold.detail.find("cannot decide") != std::string::npos);
  CHECK(VerdictOf("\\boxed{1}", "\\lim_{x \\to 0} \\frac{\\sin x}{x} = 1") == Verdict::kCorrect);
}

// The forms below were each seen misread in tests/math/realworld (real model outputs).

TEST_CASE("step functions are compared where their steps differ", "[math]") {
  // Constant between integers, two different floors agree at points close together:
  // \lfloor n/2 \rfloor and \lfloor\sqrt{n-1}\rfloor are both 0 for every n in [1, 2).
  CheckCases({
      {"\\left\\lfloor \\frac{n}{2} \\right\\rfloor", "\\lfloor\\sqrt{n-1}\\rfloor", false},
      {"\\left\\lfloor \\frac{n}{2} \\right\\rfloor", "\\lfloor n/2 \\rfloor", true},
      {"\\lfloor n/2 \\rfloor", "\\lfloor (n+1)/2 \\rfloor", false},
      {"\\lceil \\frac{n}{3} \\rceil", "\\lceil n/3 \\rceil", true},
      {"\\lceil \\frac{n}{3} \\rceil", "\\lceil n/4 \\rceil", false},
      {"\\lfloor 2x \\rfloor", "2\\lfloor x \\rfloor", false},
      {"n - \\lfloor n/2 \\rfloor", "\\lceil n/2 \\rceil", false},  // equal for integers only
  });
}

TEST_CASE("a list of numbers written in plain text is read whole", "[math]") {
  CHECK(VerdictOf("So the shortest path is [0, 3, 5].", "[0, 3, 5]") == Verdict::kCorrect);
  CHECK(VerdictOf("So the shortest path is [0, 5, 3].", "[0, 3, 5]") == Verdict::kIncorrect);
  CHECK(VerdictOf("So the shortest path is [0, 3, 5].", "5") == Verdict::kIncorrect);
  CHECK(VerdictOf("The path $0 \\to 5$ is best: [0, 5]", "[0, 5]") == Verdict::kCorrect);
  CHECK(VerdictOf("we get (-1, 6)", "(-1,6)") == Verdict::kCorrect);
  CHECK(VerdictOf("we get (-1, 6)", "6") == Verdict::kIncorrect);
  // Not a group of numbers: the last number alone, as before.
  CHECK(VerdictOf("so the answer is 6 (from step 2)", "6") == Verdict::kCorrect);
  CHECK(VerdictOf("it lies at the point (x, 2)", "2") == Verdict::kCorrect);
  CHECK(VerdictOf("the total is (12)", "12") == Verdict::kCorrect);
}

TEST_CASE("a function's value at a point states the value", "[math]") {
  CHECK(VerdictOf("Therefore, the answer is $p'(2) = 14$.", "14") == Verdict::kCorrect);
  CHECK(VerdictOf("Therefore, the answer is $p'(2) = 14$.", "15") == Verdict::kIncorrect);
  CHECK(VerdictOf("Therefore, the answer is $y(2.5) = 2$.", "2") == Verdict::kCorrect);
  CHECK(VerdictOf("Therefore, the answer is $f(3) = 14$.", "13") == Verdict::kIncorrect);
  // A product with a variable stays an equation: x(x+1) = 12 does not state 12.
  CHECK(VerdictOf("Therefore, the answer is $x(x+1) = 12$.", "12") == Verdict::kIncorrect);
  CHECK(VerdictOf("Therefore, the answer is $3(4) = 12$.", "12") == Verdict::kCorrect);  // a value
}

TEST_CASE("an answer on the line after 'the answer is:'", "[math]") {
  CHECK(VerdictOf("Therefore, the answer is:\n\n[1, 0, 1]", "[1, 0, 1]") == Verdict::kCorrect);
  CHECK(VerdictOf("Therefore, the answer is:\n\n[1, 0, 1]", "[1, 1, 0]") == Verdict::kIncorrect);
  CHECK(VerdictOf("The answer is:\n$x = 9$\n", "9") == Verdict::kCorrect);
  CHECK(VerdictOf("The answer is:\n$x = 9$\n", "8") == Verdict::kIncorrect);
  // More working on the next line is not the answer; the last number still is.
  CHECK(VerdictOf("The answer is:\nStep 1: add 2 and 3 to get 5.", "5") == Verdict::kCorrect);
  CHECK(Verifier().Check("The answer is:\nStep 1: add 2 and 3 to get 5.", "5").extracted == "5");
}

TEST_CASE("TeX's infix binomial {n \\choose k}", "[math]") {
  CheckCases({
      {"{5 \\choose 3} \\times {7 \\choose 2} = 210", "210", true},
      {"{5 \\choose 3} \\times {7 \\choose 2}", "211", false},
      {"{n \\choose 2}", "\\binom{n}{2}", true},
      {"{n \\choose 2}", "\\binom{n}{3}", false},
  });
}

TEST_CASE("an exponent of a unit is not the last number", "[math]") {
  CHECK(VerdictOf("so the acceleration at t = 5 min is -120 m/(min^2).", "-120") ==
        Verdict::kCorrect);
  CHECK(VerdictOf("so the acceleration at t = 5 min is -120 m/(min^2).", "2") ==
        Verdict::kIncorrect);
  CHECK(VerdictOf("so it falls at 9.8 m/s^2", "9.8") == Verdict::kCorrect);
  CHECK(VerdictOf("so it falls at 9.8 m/s^2", "2") == Verdict::kIncorrect);
}

TEST_CASE("a marker's phrase that describes before it states gives the stated value", "[math]") {
  const char* radius =
      "Therefore, the answer is the radius of the tightest curve at 40 m/s is 170 m.";
  CHECK(VerdictOf(radius, "170") == Verdict::kCorrect);
  CHECK(VerdictOf(radius, "40") == Verdict::kIncorrect);
  const char* output = "Therefore, the answer is: the output when A = 0 is Q = 5 units.";
  CHECK(VerdictOf(output, "5") == Verdict::kCorrect);
  CHECK(VerdictOf(output, "0") == Verdict::kIncorrect);
  // What follows the last "is" is words: the first number stays the answer.
  const char* count =
      "Therefore, the answer is that there are 20 values of x for which x^2 - 1 is divisible by 5.";
  CHECK(VerdictOf(count, "20") == Verdict::kCorrect);
  CHECK(VerdictOf(count, "5") == Verdict::kIncorrect);
  // A phrase that opens with math keeps it: "5, which is odd" is 5.
  CHECK(VerdictOf("The answer is 5, which is odd.", "5") == Verdict::kCorrect);
}

TEST_CASE("an ordering is answered by the names in its order", "[math]") {
  CheckCases({
      {"b, a, c", "b > a > c", true},
      {"a, b, c", "b > a > c", false},
      {"c, a, b", "c < a < b", true},
      {"c, a, b", "b > a > c", false},  // the reverse order
      {"b, a", "b > a > c", false},
  });
}

TEST_CASE("a plain integer reads as the grammar reads it", "[math]") {
  // Parse reads a text of at most 18 digits without the lexer and the grammar; "{42}" goes
  // through them. Both must give the same number, canonical form and verdicts.
  Verifier verifier;
  for (const char* digits :
       {"42", "007", "0", "000", "123456789012345678", "1234567890123456789"}) {
    INFO(digits);
    CheckResult plain = verifier.Check(std::string("so \\boxed{") + digits + "}", "7");
    CheckResult grouped = verifier.Check(std::string("so \\boxed{{") + digits + "}}", "7");
    CHECK(plain.pred_canonical == grouped.pred_canonical);
    CHECK(plain.verdict == grouped.verdict);
  }
  CheckCases({
      {"42", "42", true},
      {"042", "42", true},
      {"43", "42", false},  // near miss
      {"420", "42", false},
      {"0", "0.0", true},
      {"1", "0.999", false},
      {"123456789012345678", "123456789012345678", true},
      {"123456789012345679", "123456789012345678", false},
      {"1234567890123456789", "1234567890123456789", true},  // 19 digits: the grammar's path
  });
}

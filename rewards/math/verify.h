// rewards/math/verify.h: is a completion's final answer mathematically equal to the gold?
//
//   rl::rewards::math::Verifier verifier;                       // default options
//   rl::rewards::math::CheckResult r = verifier.Check("... so the answer is \\boxed{\\frac{3}{4}}", "0.75");
//   r.verdict == rl::rewards::math::Verdict::kCorrect;  r.extracted == "\\frac{3}{4}"
//
// Check extracts the final answer from a completion (the <answer> block, else the last
// \boxed{}, else an answer marker, else the last math environment or number; the order is
// VerifierOptions::extraction), parses both sides into expression trees and decides
// equivalence. Extraction, in detail:
//   - answer markers: "the answer is …", "Answer: …", "**Final Answer:** …", a heading line
//     "# Answer" (PRM800K) or "**Final Answer**" with the answer on the next line, and GSM8K's
//     "#### 42"; the last marker counts. The whole phrase after it, to the end of its
//     sentence, is read as one answer: "The answer is: \frac{3}{2}." is 3/2, "1+2i" is 1+2i,
//     "$x=3$ or $x=-3$" is both; only words end it ("\frac{3}{2} cups" is 3/2), and a phrase
//     that is one plain number keeps plain-text readings (1,000.99; 4 4/9; 5 percent). A
//     phrase that opens with words and states its value after a later "is" or "are" gives
//     that value ("the answer is the radius at 40 m/s is 170 m" is 170) when it opens with
//     math; "The answer is:" with nothing after it takes the next line that starts as math.
//   - a marker after the last \boxed{} overrides the box only when it is the final
//     statement: nothing follows its sentence but a short remark without digits or math
//     ("I hope it is correct."), and it names math, not words ("the answer is above").
//   - boxes joined by "and", "," or nothing are a list; the same box repeated is one answer
//     (\boxed{6} … \boxed{6} is 6); different boxes joined by "or" are a hedge (incorrect
//     unless the gold has several answers).
//   - plain numbers: a comma is a thousands separator (1,234) or a decimal comma (1,22; 0,5)
//     only in a number standing alone; in brackets it separates: "(-1,6)" is never -1.6. A
//     last number that closes a bracketed group of numbers gives the whole group ("the path
//     is [0, 3, 5]" is the tuple); a digit right after ^ is an exponent ("9.8 m/s^2" is 9.8).
// Equivalence:
//   - numbers: exact rationals (Boost.Multiprecision) when both sides are exact; when a side
//     is written as a decimal, equal within `precision` places and within the decimal's own
//     significant digits relative to the magnitude (1.5e-9 is not 1.6e-9); a decimal
//     prediction that is the gold rounded or truncated to its own places, with enough
//     places and digits, is also correct (0.6667 for 2/3; options.rounded_decimal_digits);
//   - base literals: a gold written in base b (1011_2, 1011_{2}) fixes the base, so a bare
//     prediction whose digits are base-b digits is read in base b (1011 is correct, 11 is
//     not); an explicit subscript keeps its own base (1011_3 and 1011_{10} are wrong);
//   - expressions with symbols or irrationals: values at three deterministic sample points
//     (complex long double, equalities confirmed with 50-digit complex arithmetic), and at
//     four more real points spread over [2.5, 42.5] when a floor or ceil appears (step
//     functions agree between nearby integers: \lfloor n/2 \rfloor and \lfloor\sqrt{n-1}\rfloor
//     do on all of [1, 2));
//   - structures: lists and \{sets\} unordered, tuples ordered, intervals bracket-sensitive,
//     unions in any order, matrices element-wise (A + B and products folded), \pm as two
//     answers, equations equal when one is a nonzero multiple of the other (y=2x+1 vs
//     2x-y+1=0), inequalities with positive multiples, an inequality gold accepting its
//     interval, adjacent or overlapping intervals merged ([-1,0] \cup [0,1] is [-1,1]),
//     "x = 5+5+1 = 11" as 11, a function's value at a point "p'(2) = 14" as 14 (a product
//     with a variable, x(x+1) = 12, stays an equation), an ordering "b > a > c" answered
//     by the names in its order "b, a, c", percents, units and text answers;
//   - \sqrt{u^2} is |u| (real variables): it equals |x|, not x; \sqrt{x^4} is x^2;
//   - \begin{cases} v & c \\ ... \end{cases}: the same pieces in any order, each value and
//     condition equivalent (x < 0 vs 0 > x; "if", "for" before a condition ignored; "otherwise"
//     as text); it never equals a plain list, and pieces split differently (x \le 0 vs x < 0
//     at a point where both values agree) are not recognised as the same function;
//   - \lim and definite \int are not evaluated (that takes a symbolic engine): an answer that
//     states the value ("\lim_{x \to 0} \frac{\sin x}{x} = 1") is judged by that value; one
//     that does not cannot be decided, and says so in `detail` ("cannot decide: \lim is not
//     evaluated"): kInvalidGold for a gold (never a 0 or 1), kUnparseableAnswer for a
//     prediction (no verdict kind of its own yet).
// What is read: LaTeX and plain text (\frac \dfrac \sqrt[n] \binom {n \choose k}, trig and log
// functions, |x|, floor/ceil, n!, \sum and \prod, ^\circ (radians inside trig functions),
// \%, \text{} units, \mathrm{e}, thousands separators 7,425,000 / 1\,000 / 10{,}000, 1.5e3,
// repeating decimals 0.\overline{3}, mixed numbers 2\frac12, base literals 1011_2,
// pmatrix/bmatrix/array, \cup \cap \emptyset \infty, relation chains, multiple-choice
// labels), after Unicode normalisation (minus signs, full-width digits, \left/\right, \!).
//
// Bounds: the verdict is determined by options.node_budget and options.bit_budget, never by
// the clock. Every piece of work is charged to the node budget, before it is done, in
// proportion to what it costs (a token or tree node, a pass over text by its length, an
// operation on big numbers by its operands' sizes, a 50-digit function evaluation by its
// price), and no exact integer grows past options.bit_budget bits (beyond it, 8e99999 or
// 2^{2^{20}} is only a magnitude, compared numerically); the check answers kBudgetExceeded
// when its nodes run out. So the same inputs and options always spend the same nodes
// (CheckResult::nodes) and get the same verdict, on any machine, under any load. The whole
// default node budget is a few milliseconds of CPU. options.time_budget_ms (CPU time of the
// calling thread, checked inside the work, no signals, counted from the 1024th charged step
// so that short checks never pay for reading the clock) is a safety net for work charged too
// little: on a normal machine it should never decide a verdict. Check never throws.
//
// Thread safety: a Verifier is immutable after construction; Check may be called from any
// number of threads at once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rl::rewards::math {

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

// Where the final answer is looked for in a completion, in the order of
// VerifierOptions::extraction; the first kind that finds something wins.
enum class Extraction {
  kAnswerTag,  // the last <answer>…</answer> block (a \boxed{} inside it is unwrapped)
  kBoxed,      // the last brace-matched \boxed{} / \fbox{} (adjacent boxes joined by "and", ",")
  kAnchor,     // "the answer is …", "Answer: …", "# Answer" line, "#### 42" (see above)
  kMathEnv,    // the last $…$, $$…$$, \(…\), \[…\]
  kNumber,     // the last plain number (with thousands separators, a fraction or a percent)
};
// "answer_tag", "boxed", "anchor", "math_env", "number".
std::string_view ToString(Extraction extraction);

// A reward spec's `math:` section sets these fields by the same names
// (rl::rewards::ParseVerifierOptions; extraction kinds by their ToString names).
struct VerifierOptions {
  int precision = 6;               // decimal places compared when a side is a decimal
  // A decimal prediction with k places that is the gold's value rounded (half away from
  // zero) or truncated to k places (0.6667 or 0.6666 for 2/3, 1.4142 for \sqrt{2}) is correct
  // when k and its significant digits are both at least this; 0 turns the rule off. Four
  // places and digits pin the value to 1 part in 10^3 at worst, so a wrong answer rarely
  // matches by chance, while the loose approximations that a question asking for an exact
  // value should not take stay wrong (0.67, 0.667 or 1.333 for a third; 3.14 for \pi; 0.0001
  // for 1/7000), as Math-Verify's precision-4 cases expect. A decimal within `precision`
  // places of the gold is correct whatever this is.
  int rounded_decimal_digits = 4;
  double time_budget_ms = 50;      // CPU-time backstop per Check (the calling thread's)
  int64_t node_budget = 400000;    // work per Check, in nodes of about 25 ns (see Bounds)
  int64_t bit_budget = 1 << 16;    // bits per exact integer; beyond it, magnitudes only
  // Extraction priority for the completion (the gold is always read leniently: a \boxed{}
  // or math environment in it is used when present, else the whole text).
  std::vector<Extraction> extraction = {Extraction::kAnswerTag, Extraction::kBoxed,
                                        Extraction::kAnchor, Extraction::kMathEnv,
                                        Extraction::kNumber};
  // true: free symbols must have the same names; false: one free symbol on each side may be
  // renamed (f(y) equals f(x)).
  bool strict = true;
  // A gold interval also accepts an equivalent inequality (x \in [-2,7] vs -2 \le x \le 7).
  // An inequality gold always accepts the equivalent interval.
  bool interval_accepts_inequality = false;
  // A gold percent 10\% accepts the bare number 10 (besides 10\%, "10 percent" and 0.1).
  bool percent_accepts_bare_number = true;
  // A gold plain number 10 accepts 10\%.
  bool number_accepts_percent = false;
  // Multiple-choice labels (e.g. {"A","B","C","D"}): when not empty, the completion's answer is
  // the choice named by an anchor ("the answer is B"), else the first standalone label.
  std::vector<std::string> choices;
  bool choices_ignore_case = false;  // also accept "b" for "B"
};

struct CheckResult {
  Verdict verdict = Verdict::kNoAnswer;
  std::string extracted;       // the answer text taken from the completion
  std::string pred_canonical;  // canonical form of the prediction (empty if unparsed)
  std::string gold_canonical;  // canonical form of the gold (empty if unparsed)
  std::string detail;          // why, for verdicts other than correct/incorrect
  int64_t nodes = 0;           // node budget spent: the same for the same inputs and options
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

}  // namespace rl::rewards::math

// rewards/math/internal.h: the pieces of the verifier (not a public header).
//
//   text.cpp     UTF-8 checks, Unicode/LaTeX normalisation, answer extraction
//   parse.cpp    lexer and recursive-descent parser into an arena expression tree
//   eval.cpp     exact rational evaluation and numeric evaluation at sample points
//   equiv.cpp    equivalence of answers: numbers, expressions, structures, relations
//   verify.cpp   Verifier::Check: the pipeline, budgets, verdicts
//
// Budget overruns and parse errors are internal exceptions caught in Verifier::Check.
#pragma once

#include <complex>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/multiprecision/cpp_int.hpp>

#include "rewards/math/verify.h"

namespace rl::math::internal {

using Rational = boost::multiprecision::cpp_rational;
using Integer = boost::multiprecision::cpp_int;
using Complex = std::complex<long double>;

// Thrown when a budget runs out; caught at the Check boundary.
struct BudgetError {
  const char* what;
};
// Thrown by the parser on malformed input; caught where parsing starts.
struct ParseError {
  std::string what;
};

// Per-call limits, checked inside every loop that can grow with the input.
class Budget {
 public:
  explicit Budget(const VerifierOptions& options);
  // Spends `nodes` units; throws BudgetError when the node budget or the deadline is past.
  void Spend(int64_t nodes = 1) {
    nodes_left_ -= nodes;
    if (nodes_left_ < 0) throw BudgetError{"node budget exhausted"};
    if (++ticks_ % 64 == 0) CheckClock();
  }
  void CheckClock() const;
  int64_t bit_budget() const { return bit_budget_; }
  // CPU time of the calling thread, in nanoseconds.
  static int64_t ThreadCpuNanos();

 private:
  int64_t deadline_ns_;
  int64_t nodes_left_;
  int64_t bit_budget_;
  uint32_t ticks_ = 0;
};

// ---------------------------------------------------------------- text.cpp

// What the extractor found. `hedged`: several different boxed answers joined by "or".
struct Extracted {
  std::string text;
  Extraction kind = Extraction::kBoxed;
  bool hedged = false;
};
bool IsValidUtf8(std::string_view s);
// The completion's final answer, in the options' priority order; nullopt when none.
std::optional<Extracted> ExtractAnswer(std::string_view completion, const VerifierOptions& options,
                                       Budget& budget);
// The gold answer, read leniently: boxed, else math environments, else the whole text.
std::string ExtractGold(std::string_view gold, Budget& budget);
// The choice label named by the completion (options.choices), or nullopt.
std::optional<std::string> ExtractChoice(std::string_view completion,
                                         const VerifierOptions& options);
// Unicode and spacing normalisation to ASCII LaTeX (minus signs, full-width digits, \left,
// \!, thin spaces between digit groups, ...). Input must be valid UTF-8.
std::string NormalizeMath(std::string_view s);
// Lower-cased, spacing- and \text-free form used to compare text answers.
std::string NormalizeText(std::string_view s);

// ---------------------------------------------------------------- parse.cpp

enum class Kind : uint8_t {
  kNumber,    // num: exact value; flags kDecimal when written with a decimal point, cols:
              // its significant digits
  kSymbol,    // name
  kConst,     // name: "pi", "e", "i", "inf"
  kAdd,       // kids summed
  kMul,       // kids multiplied
  kNeg,       // -kid
  kInv,       // 1/kid
  kPow,       // kid0 ^ kid1
  kFunc,      // name(kids...): sin cos tan sec csc cot asin acos atan sinh cosh tanh ln log
              // exp sqrt root abs floor ceil fact binom
  kPercent,   // kid0 percent
  kText,      // name: a text answer
  kTuple,     // ordered (a, b, ...)
  kSet,       // \{a, b\}
  kList,      // a, b, ... (bare, or joined by "and" / "or" / ";")
  kInterval,  // kid0, kid1; flags kLeftClosed / kRightClosed
  kUnion,     // kids
  kIntersect, // kids
  kMatrix,    // kids row-major; cols = columns
  kRelation,  // kids chained by ops[i] between kid i and i+1
  kPlusMinus, // kid0 ± kid1 (kid0 may be absent: a single kid means ±kid0)
  kRatio,     // kid0 : kid1
  kEmptySet,
  kSum,       // name: the bound variable; kids: lower, upper, body; flags kProduct for \prod
};

// Relation operators between chained operands.
enum class RelOp : uint8_t { kEq, kLt, kGt, kLe, kGe, kNe, kApprox, kIn };

constexpr uint8_t kDecimal = 1;
constexpr uint8_t kLeftClosed = 1;
constexpr uint8_t kRightClosed = 2;
constexpr uint8_t kProduct = 1;

struct Node {
  Kind kind;
  uint8_t flags = 0;
  int32_t cols = 0;
  int32_t num = -1;  // index into Tree::numbers
  std::string name = {};
  std::vector<int32_t> kids = {};
  std::vector<RelOp> ops = {};
};

// An expression tree in an arena: nodes refer to each other by index.
struct Tree {
  std::vector<Node> nodes;
  std::vector<Rational> numbers;
  int32_t root = -1;
  const Node& operator[](int32_t i) const { return nodes[i]; }
  int32_t Add(Node node) {
    nodes.push_back(std::move(node));
    return static_cast<int32_t>(nodes.size() - 1);
  }
  int32_t AddNumber(Rational value, uint8_t flags = 0);
};

// Parses a normalised answer into `tree`; throws ParseError (or BudgetError).
// `lenient`: the gold side (unknown commands become symbols, stray braces are tolerated).
void Parse(std::string_view text, bool lenient, Budget& budget, Tree* tree);
// A readable canonical rendering of a subtree.
std::string Render(const Tree& tree, int32_t node);

// ---------------------------------------------------------------- eval.cpp

// The exact rational value of a subtree when it has one (no symbols, no irrationals, within
// the bit budget); nullopt otherwise. Throws BudgetError.
std::optional<Rational> ExactValue(const Tree& tree, int32_t node, Budget& budget);
// Symbol values for numeric evaluation: derived from the symbol's name and the point index
// only, so both sides of a comparison see the same values and results are deterministic.
Complex SymbolValue(std::string_view name, int point);
constexpr int kPoints = 3;
// Numeric value at sample point `point` (symbols renamed through `rename` when given:
// pairs of from/to). NaN when undefined. `scale` receives the largest intermediate magnitude.
Complex NumericValue(const Tree& tree, int32_t node, int point, Budget& budget,
                     long double* scale, const std::vector<std::string>* rename = nullptr);
// Re-check of an apparent equality with 50-digit complex arithmetic (cancellation in long
// double can hide a difference or fake one). nullopt when a side is undefined at the point.
std::optional<bool> PreciselyEqual(const Tree& gold, int32_t g, const Tree& pred, int32_t p,
                                   int point, Budget& budget,
                                   const std::vector<std::string>* rename);
bool HasDecimal(const Tree& tree, int32_t node);
void CollectSymbols(const Tree& tree, int32_t node, std::vector<std::string>* names);

// ---------------------------------------------------------------- equiv.cpp

struct CompareContext {
  const VerifierOptions& options;
  Budget& budget;
  const Tree& gold;
  const Tree& pred;
  std::vector<std::string> rename;  // pred symbol -> gold symbol pairs (non-strict mode)
};
// Rewrites a parsed answer before comparison: matrix arithmetic folded into one matrix,
// \pm expanded into the list of both choices.
void Prepare(Tree* tree, Budget& budget);
// Whether the prediction's answer is equivalent to the gold's (roots of both trees).
bool Equivalent(CompareContext& context);

}  // namespace rl::math::internal

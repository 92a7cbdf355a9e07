// rewards/math/internal.h: the pieces of the verifier (not a public header).
//
//   lex.h         character classes and scans shared by text.cpp and parse.cpp
//   text.cpp      Unicode/LaTeX normalisation, answer extraction
//   parse.cpp     lexer and recursive-descent parser into an arena expression tree
//   rational.cpp  exact rationals and what their arithmetic costs
//   eval.cpp      exact rational evaluation and numeric evaluation at sample points
//   equiv.cpp     equivalence of answers: numbers, expressions, structures, relations
//   verify.cpp    Verifier::Check: the pipeline, budgets, verdicts
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

namespace rl::rewards::math::internal {

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

// Per-call limits. The node budget decides: every piece of work is charged in proportion to
// what it costs before it is done (a token or tree node, a pass over text by its length, a
// big-number operation by its operands' sizes), at about one node per 25 ns of CPU on a
// current x86 core, so the same inputs and options always spend the same nodes and stop at
// the same place. The CPU-time deadline is a backstop for work that is charged too little:
// the whole default node budget takes a few milliseconds (bench/math/budget_bench.cpp).
class Budget {
 public:
  explicit Budget(const VerifierOptions& options);
  // Spends `nodes` units; throws BudgetError, spending nothing, when they are more than is
  // left or the deadline is past.
  void Spend(int64_t nodes = 1) {
    if (nodes > nodes_left_) throw BudgetError{"node budget exhausted"};
    nodes_left_ -= nodes;
    // The thread's CPU clock is a system call in some virtual machines (1-2 us, a fifth of a
    // typical check): read it rarely, it is only the backstop; a check that ends within 1024
    // steps never reads it (CheckClock).
    if (++ticks_ % 1024 == 0) CheckClock();
  }
  // A pass over `bytes` bytes of text (scanning, copying, normalising).
  void SpendBytes(size_t bytes) { Spend(1 + static_cast<int64_t>(bytes / kBytesPerNode)); }
  // `bytes` of memory that the check creates (tokens, tree nodes, numbers, copies of text):
  // where page faults are slow (a busy virtual machine: 16 us for a fresh 4 KiB page) a byte
  // costs about 5 ns, twice over while a vector grows by doubling.
  void SpendMemory(size_t bytes) { Spend(MemoryCost(bytes)); }
  static int64_t MemoryCost(size_t bytes) {
    return 1 + static_cast<int64_t>(bytes / kMemoryBytesPerNode);
  }
  // The first call starts the time backstop's clock, later ones hold the deadline.
  void CheckClock();
  int64_t bit_budget() const { return bit_budget_; }
  int64_t spent() const { return node_budget_ - nodes_left_; }
  int64_t left() const { return nodes_left_; }
  // CPU time of the calling thread, in nanoseconds.
  static int64_t ThreadCpuNanos();

 private:
  static constexpr size_t kBytesPerNode = 32;
  static constexpr size_t kMemoryBytesPerNode = 4;
  int64_t time_budget_ns_;
  int64_t deadline_ns_ = -1;  // -1: the clock has not been read yet
  int64_t node_budget_;
  int64_t nodes_left_;
  int64_t bit_budget_;
  uint32_t ticks_ = 0;
};

// ---------------------------------------------------------------- rational.cpp

// Significant bits of |v| (0 for 0), without copying it.
int64_t Bits(const Integer& v);

// An exact rational in lowest terms with a positive denominator. Boost's cpp_rational
// normalises every result with a binary gcd that costs bits x limbs even against 1 (negating
// a 65536-bit integer took 18 ms); this type skips the gcds known to be 1 (integer sums and
// products, inverses, negation, powers) and reduces by a remainder first, so work on
// integers costs what integer arithmetic costs.
class Rational {
 public:
  Rational(int64_t v = 0) : num_(v), den_(1) {}  // NOLINT: 0 and 1 read as values
  Rational(Integer v) : num_(std::move(v)), den_(1) {}  // NOLINT
  // num / den in lowest terms; den must not be 0.
  static Rational Fraction(Integer num, Integer den);
  // num / den whose parts are already coprime, den > 0: no gcd is computed.
  static Rational Coprime(Integer num, Integer den);

  const Integer& num() const { return num_; }
  const Integer& den() const { return den_; }
  bool IsInteger() const { return den_ == 1; }
  int Sign() const { return num_.sign(); }
  int64_t Bits() const { return internal::Bits(num_) + internal::Bits(den_); }
  // The nearest value of a floating type (long double or a Boost.Multiprecision float):
  // +-inf or 0 beyond its range, at a cost that does not grow with the size.
  template <typename R>
  R To() const;
  // "3/4", "-2".
  std::string str() const;

  friend Rational operator-(const Rational& a);
  friend Rational operator+(const Rational& a, const Rational& b);
  friend Rational operator-(const Rational& a, const Rational& b) { return a + -b; }
  friend Rational operator*(const Rational& a, const Rational& b);
  friend Rational operator/(const Rational& a, const Rational& b);  // b must not be 0
  friend Rational abs(const Rational& a) { return a.Sign() < 0 ? -a : a; }
  friend bool operator==(const Rational& a, const Rational& b) {
    return a.num_ == b.num_ && a.den_ == b.den_;
  }
  friend int Compare(const Rational& a, const Rational& b);  // -1, 0, 1
  friend bool operator<(const Rational& a, const Rational& b) { return Compare(a, b) < 0; }
  friend bool operator>(const Rational& a, const Rational& b) { return Compare(a, b) > 0; }
  friend bool operator<=(const Rational& a, const Rational& b) { return Compare(a, b) <= 0; }
  friend bool operator>=(const Rational& a, const Rational& b) { return Compare(a, b) >= 0; }

 private:
  Integer num_, den_;
};
// base^exponent: powers of coprime parts stay coprime, so no gcd.
Rational Pow(const Rational& base, unsigned exponent);

// What exact work costs in budget nodes, from the sizes of its operands in 64-bit limbs:
// schoolbook products and remainders cost limbs x limbs, a gcd of two big numbers (Boost's
// binary gcd) about 35 ns per limb x limb.
int64_t ArithmeticCost(const Rational& a, const Rational& b);  // a + b, a * b, a / b
int64_t CompareCost(const Rational& a, const Rational& b);     // a < b, a == b
int64_t LinearCost(int64_t bits);            // a pass over an integer: a one-limb multiple
int64_t CopyCost(const Rational& a);         // a copy or a negation
int64_t PowerCost(int64_t result_bits);      // an integer power
int64_t RootCost(const Integer& a);          // an integer square root
int64_t ReadDigitsCost(size_t digits);       // a decimal literal read into an integer
int64_t WriteDigitsCost(const Rational& a);  // str()

// ---------------------------------------------------------------- text.cpp

// What the extractor found. `hedged`: several different boxed answers joined by "or".
struct Extracted {
  std::string text;
  Extraction kind = Extraction::kBoxed;
  bool hedged = false;
};
// The completion's final answer, in the options' priority order; nullopt when none.
std::optional<Extracted> ExtractAnswer(std::string_view completion, const VerifierOptions& options,
                                       Budget& budget);
// The gold answer, read leniently: boxed, else math environments, else the whole text.
std::string ExtractGold(std::string_view gold, Budget& budget);
// The choice label named by the completion (options.choices), or nullopt.
std::optional<std::string> ExtractChoice(std::string_view completion,
                                         const VerifierOptions& options, Budget& budget);
// Unicode and spacing normalisation to ASCII LaTeX (minus signs, full-width digits, \left,
// \!, thin spaces between digit groups, ...). Input must be valid UTF-8.
std::string NormalizeMath(std::string_view s, Budget& budget);
// Lower-cased, spacing- and \text-free form used to compare text answers.
std::string NormalizeText(std::string_view s);

// ---------------------------------------------------------------- parse.cpp

enum class Kind : uint8_t {
  kNumber,    // num: exact value; flags kDecimal when written with a decimal point (cols:
              // its significant digits, places: its decimal places), kBased when written
              // with a base subscript 1011_2 (cols: the base)
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
constexpr uint8_t kBased = 2;
constexpr uint8_t kLeftClosed = 1;
constexpr uint8_t kRightClosed = 2;
constexpr uint8_t kProduct = 1;

struct Node {
  Kind kind;
  uint8_t flags = 0;
  int16_t places = 0;  // fits in the padding after flags: a Node stays the same size
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
  // A new node, paid for by its memory.
  int32_t Add(Node node, Budget& budget) {
    budget.SpendMemory(sizeof(Node));
    nodes.push_back(std::move(node));
    return static_cast<int32_t>(nodes.size() - 1);
  }
  int32_t AddNumber(Rational value, Budget& budget, uint8_t flags = 0);
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
// Step functions (floor, ceil) are constant between integers, so two different ones agree at
// a few points in a narrow range (\lfloor n/2 \rfloor and \lfloor\sqrt{n-1}\rfloor at every n in
// [1, 2)): where one appears, this many more real points, spread over [2.5, 42.5], are compared.
constexpr int kStepPoints = 4;
// Numeric value at sample point `point` (symbols renamed through `rename` when given:
// pairs of from/to). NaN when undefined. `scale` receives the largest intermediate magnitude.
Complex NumericValue(const Tree& tree, int32_t node, int point, Budget& budget,
                     long double* scale, const std::vector<std::string>* rename = nullptr);
// Re-check of an apparent equality with 50-digit complex arithmetic (cancellation in long
// double can hide a difference or fake one). nullopt when a side is undefined at the point.
std::optional<bool> PreciselyEqual(const Tree& gold, int32_t g, const Tree& pred, int32_t p,
                                   int point, Budget& budget,
                                   const std::vector<std::string>* rename);
bool HasDecimal(const Tree& tree, int32_t node, Budget& budget);
bool HasSymbols(const Tree& tree, int32_t node, Budget& budget);
// Whether a floor or ceil appears under `node`.
bool HasStepFunction(const Tree& tree, int32_t node, Budget& budget);
// The free symbols' names under `node`, sorted, without repeats.
std::vector<std::string> Symbols(const Tree& tree, int32_t node, Budget& budget);

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

}  // namespace rl::rewards::math::internal

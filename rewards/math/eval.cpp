// Evaluation: exact rationals (rational.cpp; every operation charged to the node budget by
// its operands' sizes, every result bounded by the bit budget) and complex long-double values
// at deterministic sample points for everything else.
#include <algorithm>
#include <bit>
#include <cmath>
#include <ctime>
#include <functional>

#include <boost/math/constants/constants.hpp>
#include <boost/math/special_functions/fpclassify.hpp>
#include <boost/multiprecision/cpp_bin_float.hpp>
#include <boost/multiprecision/cpp_complex.hpp>
#include <limits>
#include <type_traits>

#include "rewards/math/internal.h"

namespace rl::rewards::math::internal {
namespace {

constexpr int kMaxEvalDepth = 400;
constexpr int64_t kMaxTerms = 100000;  // terms of one \sum or \prod

// Text factors are units ("125 miles", "15 cm^2"): they do not change a value.
bool IsUnitFactor(const Tree& tree, int32_t id) {
  const Node& n = tree[id];
  if (n.kind == Kind::kText) return true;
  return n.kind == Kind::kPow && tree[n.kids[0]].kind == Kind::kText;
}

// Every operation is charged to the node budget by its operands' sizes before it runs, and
// every result is held to the bit budget after.
class ExactEvaluator {
 public:
  explicit ExactEvaluator(const Tree& tree, Budget& budget) : tree_(tree), budget_(budget) {}

  std::optional<Rational> Eval(int32_t id, int depth) {
    if (depth > kMaxEvalDepth) throw BudgetError{"expression nested too deeply"};
    budget_.Spend(4);  // optionals and small Boost integers: up to 100 ns a node
    const Node& n = tree_[id];
    switch (n.kind) {
      case Kind::kNumber:
        budget_.Spend(CopyCost(tree_.numbers[n.num]));
        return tree_.numbers[n.num];
      case Kind::kSymbol:
      case Kind::kConst:  // a summation index may be named i or e
        for (auto it = bound_.rbegin(); it != bound_.rend(); ++it) {
          if (it->first == n.name) return it->second;
        }
        return std::nullopt;
      case Kind::kSum:
        return Sum(n, depth);
      case Kind::kAdd:
        return Fold(n, depth, Rational(0), std::plus<>());
      case Kind::kMul:
        return Fold(n, depth, Rational(1), std::multiplies<>());
      case Kind::kNeg: {
        auto v = Eval(n.kids[0], depth + 1);
        if (!v) return std::nullopt;
        budget_.Spend(CopyCost(*v));
        return -*v;
      }
      case Kind::kInv: {
        auto v = Eval(n.kids[0], depth + 1);
        if (!v || *v == 0) return std::nullopt;
        return Apply(Rational(1), *v, std::divides<>());
      }
      case Kind::kPercent: {
        auto v = Eval(n.kids[0], depth + 1);
        if (!v) return std::nullopt;
        return Apply(*v, Rational(100), std::divides<>());
      }
      case Kind::kPow:
        return Pow(n, depth);
      case Kind::kFunc:
        return Func(n, depth);
      default:
        return std::nullopt;
    }
  }

 private:
  // op(a, b), paid for before it runs; a result over the bit budget ends the check.
  template <typename Op>
  Rational Apply(const Rational& a, const Rational& b, Op op) {
    budget_.Spend(ArithmeticCost(a, b));
    Rational r = op(a, b);
    if (r.Bits() > budget_.bit_budget()) throw BudgetError{"exact value over the bit budget"};
    return r;
  }

  // The kids of a sum or product combined left to right (unit factors skipped in products).
  template <typename Op>
  std::optional<Rational> Fold(const Node& n, int depth, Rational acc, Op op) {
    bool any = false;
    for (int32_t k : n.kids) {
      if (n.kind == Kind::kMul && IsUnitFactor(tree_, k)) continue;
      auto v = Eval(k, depth + 1);
      if (!v) return std::nullopt;
      acc = any ? Apply(acc, *v, op) : std::move(*v);
      any = true;
    }
    if (!any) return n.kind == Kind::kAdd ? std::optional<Rational>(acc) : std::nullopt;
    return acc;
  }

  std::optional<Integer> ExactRoot(const Integer& v) {
    if (v < 0) return std::nullopt;
    budget_.Spend(RootCost(v));
    Integer r = boost::multiprecision::sqrt(v);
    if (r * r != v) return std::nullopt;
    return r;
  }

  std::optional<Rational> ExactRoot(const Rational& x) {
    auto num = ExactRoot(x.num());
    if (!num) return std::nullopt;
    auto den = ExactRoot(x.den());
    if (!den) return std::nullopt;
    return Rational::Coprime(std::move(*num), std::move(*den));  // roots of coprime parts
  }

  std::optional<Rational> Pow(const Node& n, int depth) {
    auto base = Eval(n.kids[0], depth + 1);
    if (!base) return std::nullopt;
    auto exponent = Eval(n.kids[1], depth + 1);
    if (!exponent) return std::nullopt;
    if (exponent->den() == 2) {  // x^{k/2}: exact only for perfect squares
      base = ExactRoot(*base);
      if (!base) return std::nullopt;
      exponent = Rational(exponent->num());
    }
    if (!exponent->IsInteger()) return std::nullopt;
    const Integer& e = exponent->num();
    if (*base == 0) {
      if (e <= 0) return std::nullopt;
      return Rational(0);
    }
    if (*base == 1 || e == 0) return Rational(1);
    if (*base == -1) return Rational(e % 2 == 0 ? 1 : -1);
    // Beyond the bit budget the value is left to the numeric path (magnitudes only).
    if (Bits(e) > 40) return std::nullopt;
    auto ue = static_cast<int64_t>(abs(e));
    if (base->Bits() > budget_.bit_budget() / ue) return std::nullopt;
    budget_.Spend(PowerCost(base->Bits() * ue));
    Rational r = internal::Pow(*base, static_cast<unsigned>(ue));
    if (e < 0) return Apply(Rational(1), r, std::divides<>());
    return r;
  }

  std::optional<Rational> Func(const Node& n, int depth) {
    std::vector<Rational> args;
    for (int32_t k : n.kids) {
      auto v = Eval(k, depth + 1);
      if (!v) return std::nullopt;
      args.push_back(std::move(*v));
    }
    const std::string& f = n.name;
    const Rational& x = args[0];
    if (f == "deg") return x;  // "90^\circ" is the answer 90
    if (f == "abs") return abs(x);
    if (f == "sqrt") return ExactRoot(x);
    if (f == "floor" || f == "ceil") return Rounded(x, f == "floor");
    if (f == "fact") return Factorial(x);
    if (f == "binom") return Binomial(x, args[1]);
    if (f == "exp" && x == 0) return Rational(1);
    if ((f == "sin" || f == "tan" || f == "asin" || f == "atan" || f == "sinh" || f == "tanh") &&
        x == 0) {
      return Rational(0);
    }
    if ((f == "cos" || f == "cosh") && x == 0) return Rational(1);
    if ((f == "ln" || f == "log") && x == 1) return Rational(0);
    return std::nullopt;
  }

  Rational Rounded(const Rational& x, bool floor) {
    budget_.Spend(ArithmeticCost(x, x));
    Integer q = x.num() / x.den();  // truncates toward zero
    if (!x.IsInteger()) {
      if (floor && x < 0) q -= 1;
      if (!floor && x > 0) q += 1;
    }
    return Rational(std::move(q));
  }

  std::optional<Rational> Sum(const Node& n, int depth) {
    auto lower = Eval(n.kids[0], depth + 1);
    auto upper = Eval(n.kids[1], depth + 1);
    if (!lower || !upper || !lower->IsInteger() || !upper->IsInteger()) return std::nullopt;
    if (*upper - *lower > kMaxTerms) throw BudgetError{"sum with too many terms"};
    bool product = n.flags & kProduct;
    Rational total = product ? 1 : 0;
    for (Rational k = *lower; k <= *upper; k = k + 1) {
      bound_.emplace_back(n.name, k);
      auto term = Eval(n.kids[2], depth + 1);
      bound_.pop_back();
      if (!term) return std::nullopt;
      total = product ? Apply(total, *term, std::multiplies<>())
                      : Apply(total, *term, std::plus<>());
    }
    return total;
  }

  std::optional<Rational> Factorial(const Rational& x) {
    if (!x.IsInteger() || x < 0) return std::nullopt;
    // log2(n!) < n log2 n: refuse before computing what would not fit.
    if (x > 1000000) throw BudgetError{"factorial over the bit budget"};
    int64_t n = static_cast<int64_t>(x.num());
    double bits = n < 2 ? 1 : n * std::log2(static_cast<double>(n));
    if (bits > static_cast<double>(budget_.bit_budget())) {
      throw BudgetError{"factorial over the bit budget"};
    }
    Integer r = 1;
    for (int64_t k = 2; k <= n; ++k) {
      budget_.Spend(LinearCost(Bits(r)));  // a one-limb multiple
      r *= k;
    }
    return Rational(std::move(r));
  }

  std::optional<Rational> Binomial(const Rational& nr, const Rational& kr) {
    if (!nr.IsInteger() || !kr.IsInteger() || nr < 0) return std::nullopt;
    if (kr < 0 || kr > nr) return Rational(0);
    if (nr > 1000000) throw BudgetError{"binomial over the bit budget"};
    int64_t n = static_cast<int64_t>(nr.num());
    int64_t k = static_cast<int64_t>(kr.num());
    k = std::min(k, n - k);
    Integer r = 1;
    for (int64_t j = 1; j <= k; ++j) {
      budget_.Spend(8 * LinearCost(Bits(r)));  // a one-limb multiple and a one-limb division
      r = r * (n - k + j) / j;
      if (Bits(r) > budget_.bit_budget()) throw BudgetError{"binomial over the bit budget"};
    }
    return Rational(std::move(r));
  }

  const Tree& tree_;
  Budget& budget_;
  std::vector<std::pair<std::string, Rational>> bound_;  // summation variables in scope
};

uint64_t Mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

long double Unit(uint64_t bits) { return static_cast<long double>(bits >> 11) / 9007199254740992.0L; }

using Precise = boost::multiprecision::cpp_complex_50;
using PreciseReal = boost::multiprecision::cpp_bin_float_50;

// Boost converts a long double after classifying it with boost::math::fpclassify, and under an
// x87 emulation that gets that wrong (valgrind reports zero and infinity as normal) a zero
// becomes a float with a zero mantissa and a normal exponent. Dividing by such a value (the
// hypot in abs does) throws from Boost's noexcept integer division: std::terminate, which no
// handler of ours can stop. Zeros and non-finite values are built here from plain comparisons,
// which every FPU and emulator gets right, so the precise evaluator only sees well-formed values.
PreciseReal ToPrecise(long double x) {
  if (x == 0) return std::signbit(x) ? -PreciseReal(0) : PreciseReal(0);
  if (x != x) return std::numeric_limits<PreciseReal>::quiet_NaN();
  if (std::fabs(x) > std::numeric_limits<long double>::max()) {
    return x > 0 ? std::numeric_limits<PreciseReal>::infinity()
                 : -std::numeric_limits<PreciseReal>::infinity();
  }
  return PreciseReal(x);
}

// Budget nodes per tree node (and per complex value, whose magnitude is a hypot), per square
// root or rounding, and per transcendental function or non-integer power, by precision: in
// long double a node is a few ns and a function up to 1 us (a power that overflows); at 50
// digits a node is up to 1 us, a hypot or a root 3 to 6 us and a function 10 to 40 us.
template <typename C>
struct NumericCost;
template <>
struct NumericCost<Complex> {
  static constexpr int64_t kNode = 1, kComplex = 0, kRoot = 2, kFunction = 40;
};
template <>
struct NumericCost<Precise> {
  static constexpr int64_t kNode = 40, kComplex = 100, kRoot = 250, kFunction = 1600;
};

// Numeric evaluation in complex type C (std::complex<long double>, or cpp_complex_50 for the
// precise re-check); R is its real type. Functions are found by argument-dependent lookup.
template <typename C, typename R>
class NumericEvaluator {
  using Cost = NumericCost<C>;

 public:
  NumericEvaluator(const Tree& tree, int point, Budget& budget,
                   const std::vector<std::string>* rename)
      : tree_(tree), point_(point), budget_(budget), rename_(rename) {}

  C Eval(int32_t id, int depth) {
    if (depth > kMaxEvalDepth) throw BudgetError{"expression nested too deeply"};
    budget_.Spend(Cost::kNode);
    C v = EvalNode(tree_[id], depth);
    if (imag(v) != 0) budget_.Spend(Cost::kComplex);
    R m = abs(v);
    if (boost::math::isfinite(m) && m > scale) scale = m;
    return v;
  }

  R scale = 0;

 private:
  static C NaN() { return C(std::numeric_limits<R>::quiet_NaN(), R(0)); }
  static C Real(const R& r) { return C(r, R(0)); }
  static R FromLongDouble(long double x) {
    if constexpr (std::is_same_v<R, long double>) return x;
    else return ToPrecise(x);
  }

  C EvalNode(const Node& n, int depth) {
    switch (n.kind) {
      case Kind::kNumber:
        return Real(tree_.numbers[n.num].template To<R>());
      case Kind::kSum:
        return Sum(n, depth);
      case Kind::kSymbol: {
        if (const C* bound = Bound(n.name)) return *bound;
        Complex v = SymbolValue(Renamed(n.name), point_);
        return C(FromLongDouble(v.real()), FromLongDouble(v.imag()));  // exact in both types
      }
      case Kind::kConst:
        if (const C* bound = Bound(n.name)) return *bound;  // a summation index named i or e
        if (n.name == "pi") return Real(boost::math::constants::pi<R>());
        if (n.name == "e") return Real(boost::math::constants::e<R>());
        if (n.name == "i") return C(R(0), R(1));
        return Real(std::numeric_limits<R>::infinity());
      case Kind::kAdd: {
        C sum = Real(0);
        for (int32_t k : n.kids) sum += Eval(k, depth + 1);
        return sum;
      }
      case Kind::kMul: {
        C product = Real(1);
        bool any = false;
        for (int32_t k : n.kids) {
          if (IsUnitFactor(tree_, k)) continue;
          product *= Eval(k, depth + 1);
          any = true;
        }
        return any ? product : NaN();
      }
      case Kind::kNeg:
        return -Eval(n.kids[0], depth + 1);
      case Kind::kInv: {
        C v = Eval(n.kids[0], depth + 1);
        if (v == Real(0)) return NaN();
        return Real(1) / v;
      }
      case Kind::kPercent:
        return Eval(n.kids[0], depth + 1) / Real(100);
      case Kind::kPow:
        return Power(Eval(n.kids[0], depth + 1), Eval(n.kids[1], depth + 1));
      case Kind::kFunc:
        return Func(n, depth);
      default:
        return NaN();
    }
  }

  C Power(const C& base, const C& exponent) {
    R re = real(exponent);
    // Integer exponents by repeated squaring keep negative bases real.
    if (imag(exponent) == 0 && abs(re) <= 64 && re == floor(re)) {
      budget_.Spend(4 * Cost::kNode);  // up to 12 products
      int e = static_cast<int>(static_cast<long double>(re));
      C result = Real(1), b = base;
      for (int k = std::abs(e); k > 0; k >>= 1) {
        if (k & 1) result *= b;
        b *= b;
      }
      if (e < 0) {
        if (result == Real(0)) return NaN();
        result = Real(1) / result;
      }
      return result;
    }
    if (base == Real(0)) return re > 0 ? Real(0) : NaN();
    budget_.Spend(Cost::kFunction);
    if (imag(base) == 0 && imag(exponent) == 0 && real(base) > 0) {
      return Real(pow(real(base), re));  // overflows to inf, not NaN
    }
    return pow(base, exponent);
  }

  C Func(const Node& n, int depth) {
    const std::string& f = n.name;
    if (f == "deg") {
      C x = Eval(n.kids[0], depth + 1);
      return trig_depth_ > 0 ? x * Real(boost::math::constants::pi<R>() / 180) : x;
    }
    // Inside trigonometric functions degrees are converted: \sin 30^\circ = 1/2.
    bool trig = f == "sin" || f == "cos" || f == "tan" || f == "sec" || f == "csc" || f == "cot";
    trig_depth_ += trig;
    C x = Eval(n.kids[0], depth + 1);
    trig_depth_ -= trig;
    bool cheap = f == "sqrt" || f == "abs" || f == "floor" || f == "ceil";
    budget_.Spend(cheap ? Cost::kRoot : Cost::kFunction);
    const C one = Real(1);
    if (f == "sqrt") return sqrt(x);
    if (f == "sin") return sin(x);
    if (f == "cos") return cos(x);
    if (f == "tan") return tan(x);
    if (f == "sec") return one / cos(x);
    if (f == "csc") return one / sin(x);
    if (f == "cot") return cos(x) / sin(x);
    if (f == "asin") return asin(x);
    if (f == "acos") return acos(x);
    if (f == "atan") return atan(x);
    if (f == "acot") return atan(one / x);
    if (f == "sinh") return sinh(x);
    if (f == "cosh") return cosh(x);
    if (f == "tanh") return tanh(x);
    if (f == "ln" || f == "log") return log(x);
    if (f == "log10") return log(x) / Real(log(R(10)));
    if (f == "exp") return exp(x);
    if (f == "abs") return Real(abs(x));
    bool is_real = imag(x) == 0;
    if (f == "floor") return is_real ? Real(floor(real(x))) : NaN();
    if (f == "ceil") return is_real ? Real(ceil(real(x))) : NaN();
    // Factorials and binomials of non-integers are rare: long double is enough for them.
    long double xr = static_cast<long double>(real(x));
    if (f == "fact" && is_real && xr > -1) return Real(FromLongDouble(std::tgamma(xr + 1)));
    if (f == "binom" && n.kids.size() == 2) {
      C k = Eval(n.kids[1], depth + 1);
      if (!is_real || imag(k) != 0) return NaN();
      long double kr = static_cast<long double>(real(k));
      return Real(FromLongDouble(
          std::exp(std::lgamma(xr + 1) - std::lgamma(kr + 1) - std::lgamma(xr - kr + 1))));
    }
    return NaN();
  }

  const C* Bound(const std::string& name) const {
    for (auto it = bound_.rbegin(); it != bound_.rend(); ++it) {
      if (it->first == name) return &it->second;
    }
    return nullptr;
  }

  // Bounds must be integers here; a sum up to a symbolic n has no value at a sample point.
  C Sum(const Node& n, int depth) {
    C lower = Eval(n.kids[0], depth + 1), upper = Eval(n.kids[1], depth + 1);
    R lo = real(lower), hi = real(upper);
    if (imag(lower) != 0 || imag(upper) != 0 || lo != floor(lo) || hi != floor(hi)) return NaN();
    if (!(hi - lo <= R(kMaxTerms))) throw BudgetError{"sum with too many terms"};
    bool product = n.flags & kProduct;
    C total = Real(product ? 1 : 0);
    for (R k = lo; k <= hi; k += 1) {
      bound_.emplace_back(n.name, Real(k));
      C term = Eval(n.kids[2], depth + 1);
      bound_.pop_back();
      if (product) total *= term;
      else total += term;
    }
    return total;
  }

  std::string_view Renamed(const std::string& name) const {
    if (rename_ != nullptr) {
      for (size_t k = 0; k + 1 < rename_->size(); k += 2) {
        if ((*rename_)[k] == name) return (*rename_)[k + 1];
      }
    }
    return name;
  }

  const Tree& tree_;
  int point_;
  Budget& budget_;
  const std::vector<std::string>* rename_;
  std::vector<std::pair<std::string, C>> bound_;  // summation variables in scope
  int trig_depth_ = 0;                             // > 0 inside sin, cos, ...
};

}  // namespace

// The time backstop is the calling thread's CPU time, so an oversubscribed thread pool does
// not bring it nearer; the verdict itself comes from the node budget.
Budget::Budget(const VerifierOptions& options)
    : time_budget_ns_(static_cast<int64_t>(options.time_budget_ms * 1e6)),
      node_budget_(options.node_budget),
      nodes_left_(options.node_budget),
      bit_budget_(options.bit_budget) {}

int64_t Budget::ThreadCpuNanos() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// The deadline counts from the first reading, 1024 steps in: the steps before it are charged
// work of a few microseconds, so the backstop still bounds a check's time, and the many checks
// that end sooner skip a clock read that costs as much as a fifth of them.
void Budget::CheckClock() {
  int64_t now = ThreadCpuNanos();
  if (deadline_ns_ < 0) {
    deadline_ns_ = now + time_budget_ns_;
    return;
  }
  if (now > deadline_ns_) throw BudgetError{"time budget exhausted"};
}

std::optional<Rational> ExactValue(const Tree& tree, int32_t node, Budget& budget) {
  ExactEvaluator evaluator(tree, budget);
  return evaluator.Eval(node, 0);
}

Complex SymbolValue(std::string_view name, int point) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the name, then the point index
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  uint64_t a = Mix(h ^ (static_cast<uint64_t>(point) * 0x2545F4914F6CDD1Dull));
  uint64_t b = Mix(a);
  if (point < 2) return Complex(0.35L + 2 * Unit(a), 0);
  if (point >= kPoints) return Complex(2.5L + 40 * Unit(a), 0);  // the step-function points
  return Complex(0.3L + Unit(a), 0.3L + Unit(b));
}

Complex NumericValue(const Tree& tree, int32_t node, int point, Budget& budget,
                     long double* scale, const std::vector<std::string>* rename) {
  NumericEvaluator<Complex, long double> evaluator(tree, point, budget, rename);
  Complex v = evaluator.Eval(node, 0);
  if (scale != nullptr) *scale = std::max(*scale, evaluator.scale);
  return v;
}

std::optional<bool> PreciselyEqual(const Tree& gold, int32_t g, const Tree& pred, int32_t p,
                                   int point, Budget& budget,
                                   const std::vector<std::string>* rename) {
  NumericEvaluator<Precise, PreciseReal> left(gold, point, budget, nullptr);
  NumericEvaluator<Precise, PreciseReal> right(pred, point, budget, rename);
  Precise a = left.Eval(g, 0), b = right.Eval(p, 0);
  PreciseReal fa = abs(a), fb = abs(b);
  if (!boost::math::isfinite(fa) || !boost::math::isfinite(fb)) return std::nullopt;
  // 50 digits evaluated; agreement to 35 of them relative to the largest intermediate.
  PreciseReal scale = std::max({left.scale, right.scale, PreciseReal(1e-300)});
  return abs(a - b) <= PreciseReal("1e-35") * scale;
}

bool HasDecimal(const Tree& tree, int32_t node, Budget& budget) {
  budget.Spend();
  const Node& n = tree[node];
  if (n.kind == Kind::kNumber) return (n.flags & kDecimal) != 0;
  for (int32_t k : n.kids) {
    if (HasDecimal(tree, k, budget)) return true;
  }
  return false;
}

bool HasSymbols(const Tree& tree, int32_t node, Budget& budget) {
  budget.Spend();
  const Node& n = tree[node];
  if (n.kind == Kind::kSymbol) return true;
  for (int32_t k : n.kids) {
    if (HasSymbols(tree, k, budget)) return true;
  }
  return false;
}

bool HasStepFunction(const Tree& tree, int32_t node, Budget& budget) {
  budget.Spend();
  const Node& n = tree[node];
  if (n.kind == Kind::kFunc && (n.name == "floor" || n.name == "ceil")) return true;
  for (int32_t k : n.kids) {
    if (HasStepFunction(tree, k, budget)) return true;
  }
  return false;
}

namespace {

void AppendSymbols(const Tree& tree, int32_t node, Budget& budget,
                   std::vector<std::string>* names) {
  budget.Spend();
  const Node& n = tree[node];
  if (n.kind == Kind::kSymbol) names->push_back(n.name);
  for (int32_t k : n.kids) AppendSymbols(tree, k, budget, names);
}

}  // namespace

std::vector<std::string> Symbols(const Tree& tree, int32_t node, Budget& budget) {
  std::vector<std::string> names;
  AppendSymbols(tree, node, budget, &names);
  budget.Spend(static_cast<int64_t>(names.size() * std::bit_width(names.size())));  // the sort
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace rl::rewards::math::internal

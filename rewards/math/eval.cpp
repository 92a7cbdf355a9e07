// Evaluation: exact rationals (Boost.Multiprecision, bounded by the bit budget) and complex
// long-double values at deterministic sample points for everything else.
#include <cmath>
#include <ctime>
#include <limits>

#include "rewards/math/internal.h"

namespace rl::math::internal {
namespace {

constexpr int kMaxEvalDepth = 400;

int64_t Bits(const Integer& v) { return v == 0 ? 0 : static_cast<int64_t>(msb(abs(v))) + 1; }
int64_t Bits(const Rational& r) { return Bits(numerator(r)) + Bits(denominator(r)); }

// Text factors are units ("125 miles", "15 cm^2"): they do not change a value.
bool IsUnitFactor(const Tree& tree, int32_t id) {
  const Node& n = tree[id];
  if (n.kind == Kind::kText) return true;
  return n.kind == Kind::kPow && tree[n.kids[0]].kind == Kind::kText;
}

std::optional<Integer> ExactRoot(const Integer& v, int64_t degree) {
  if (v < 0 || degree != 2) return std::nullopt;
  Integer r = boost::multiprecision::sqrt(v);
  if (r * r != v) return std::nullopt;
  return r;
}

class ExactEvaluator {
 public:
  explicit ExactEvaluator(const Tree& tree, Budget& budget) : tree_(tree), budget_(budget) {}

  std::optional<Rational> Eval(int32_t id, int depth) {
    if (depth > kMaxEvalDepth) throw BudgetError{"expression nested too deeply"};
    budget_.Spend();
    const Node& n = tree_[id];
    switch (n.kind) {
      case Kind::kNumber:
        return tree_.numbers[n.num];
      case Kind::kAdd: {
        Rational sum = 0;
        for (int32_t k : n.kids) {
          auto v = Eval(k, depth + 1);
          if (!v) return std::nullopt;
          sum += *v;
          Charge(sum);
        }
        return sum;
      }
      case Kind::kMul: {
        Rational product = 1;
        bool any = false;
        for (int32_t k : n.kids) {
          if (IsUnitFactor(tree_, k)) continue;
          auto v = Eval(k, depth + 1);
          if (!v) return std::nullopt;
          product *= *v;
          any = true;
          Charge(product);
        }
        if (!any) return std::nullopt;
        return product;
      }
      case Kind::kNeg: {
        auto v = Eval(n.kids[0], depth + 1);
        if (!v) return std::nullopt;
        return Rational(-*v);
      }
      case Kind::kInv: {
        auto v = Eval(n.kids[0], depth + 1);
        if (!v || *v == 0) return std::nullopt;
        return Rational(1 / *v);
      }
      case Kind::kPercent: {
        auto v = Eval(n.kids[0], depth + 1);
        if (!v) return std::nullopt;
        return Rational(*v / 100);
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
  void Charge(const Rational& r) {
    int64_t bits = Bits(r);
    if (bits > budget_.bit_budget()) throw BudgetError{"exact value over the bit budget"};
    budget_.Spend(bits / 256);
  }

  std::optional<Rational> Pow(const Node& n, int depth) {
    auto base = Eval(n.kids[0], depth + 1);
    if (!base) return std::nullopt;
    auto exponent = Eval(n.kids[1], depth + 1);
    if (!exponent) return std::nullopt;
    if (denominator(*exponent) == 2) {  // x^{k/2}: exact only for perfect squares
      auto num = ExactRoot(numerator(*base), 2);
      auto den = ExactRoot(denominator(*base), 2);
      if (!num || !den) return std::nullopt;
      base = Rational(*num, *den);
      exponent = Rational(numerator(*exponent));
    }
    if (denominator(*exponent) != 1) return std::nullopt;
    const Integer& e = numerator(*exponent);
    if (*base == 0) {
      if (e <= 0) return std::nullopt;
      return Rational(0);
    }
    if (*base == 1) return Rational(1);
    if (*base == -1) return Rational(e % 2 == 0 ? 1 : -1);
    // Beyond the bit budget the value is left to the numeric path (magnitudes only).
    if (Bits(e) > 40 || Bits(*base) * static_cast<int64_t>(abs(e)) > budget_.bit_budget()) {
      return std::nullopt;
    }
    unsigned ue = static_cast<unsigned>(abs(e));
    budget_.Spend(Bits(*base) * ue / 256);
    Rational r(boost::multiprecision::pow(numerator(*base), ue),
               boost::multiprecision::pow(denominator(*base), ue));
    if (e < 0) r = 1 / r;
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
    if (f == "abs") return Rational(abs(x));
    if (f == "sqrt") {
      auto num = ExactRoot(numerator(x), 2);
      auto den = ExactRoot(denominator(x), 2);
      if (!num || !den) return std::nullopt;
      return Rational(*num, *den);
    }
    if (f == "floor" || f == "ceil") {
      Integer q = numerator(x) / denominator(x);  // truncates toward zero
      if (Rational(q) != x) {
        if (f == "floor" && x < 0) q -= 1;
        if (f == "ceil" && x > 0) q += 1;
      }
      return Rational(q);
    }
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

  std::optional<Rational> Factorial(const Rational& x) {
    if (denominator(x) != 1 || x < 0) return std::nullopt;
    // log2(n!) < n log2 n: refuse before computing what would not fit.
    if (x > 1000000) throw BudgetError{"factorial over the bit budget"};
    int64_t n = static_cast<int64_t>(numerator(x));
    double bits = n < 2 ? 1 : n * std::log2(static_cast<double>(n));
    if (bits > static_cast<double>(budget_.bit_budget())) {
      throw BudgetError{"factorial over the bit budget"};
    }
    Integer r = 1;
    for (int64_t k = 2; k <= n; ++k) {
      r *= k;
      budget_.Spend();
    }
    return Rational(r);
  }

  std::optional<Rational> Binomial(const Rational& nr, const Rational& kr) {
    if (denominator(nr) != 1 || denominator(kr) != 1 || nr < 0) return std::nullopt;
    if (kr < 0 || kr > nr) return Rational(0);
    if (nr > 1000000) throw BudgetError{"binomial over the bit budget"};
    int64_t n = static_cast<int64_t>(numerator(nr));
    int64_t k = static_cast<int64_t>(numerator(kr));
    k = std::min(k, n - k);
    Integer r = 1;
    for (int64_t j = 1; j <= k; ++j) {
      r = r * (n - k + j) / j;
      budget_.Spend(1 + Bits(r) / 256);
      if (Bits(r) > budget_.bit_budget()) throw BudgetError{"binomial over the bit budget"};
    }
    return Rational(r);
  }

  const Tree& tree_;
  Budget& budget_;
};

uint64_t Mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

long double Unit(uint64_t bits) { return static_cast<long double>(bits >> 11) / 9007199254740992.0L; }

class NumericEvaluator {
 public:
  NumericEvaluator(const Tree& tree, int point, Budget& budget,
                   const std::vector<std::string>* rename)
      : tree_(tree), point_(point), budget_(budget), rename_(rename) {}

  Complex Eval(int32_t id, int depth) {
    if (depth > kMaxEvalDepth) throw BudgetError{"expression nested too deeply"};
    budget_.Spend();
    Complex v = EvalNode(tree_[id], depth);
    long double m = std::abs(v);
    if (std::isfinite(m) && m > scale) scale = m;
    return v;
  }

  long double scale = 0;

 private:
  Complex EvalNode(const Node& n, int depth) {
    constexpr long double kNaN = std::numeric_limits<long double>::quiet_NaN();
    switch (n.kind) {
      case Kind::kNumber:
        return Complex(tree_.numbers[n.num].convert_to<long double>(), 0);
      case Kind::kSymbol:
        return SymbolValue(Renamed(n.name), point_);
      case Kind::kConst:
        if (n.name == "pi") return Complex(3.141592653589793238462643383279502884L, 0);
        if (n.name == "e") return Complex(2.718281828459045235360287471352662498L, 0);
        if (n.name == "i") return Complex(0, 1);
        return Complex(std::numeric_limits<long double>::infinity(), 0);
      case Kind::kAdd: {
        Complex sum = 0;
        for (int32_t k : n.kids) sum += Eval(k, depth + 1);
        return sum;
      }
      case Kind::kMul: {
        Complex product = 1;
        bool any = false;
        for (int32_t k : n.kids) {
          if (IsUnitFactor(tree_, k)) continue;
          product *= Eval(k, depth + 1);
          any = true;
        }
        return any ? product : Complex(kNaN, 0);
      }
      case Kind::kNeg:
        return -Eval(n.kids[0], depth + 1);
      case Kind::kInv: {
        Complex v = Eval(n.kids[0], depth + 1);
        if (v == Complex(0, 0)) return Complex(kNaN, 0);
        return Complex(1, 0) / v;
      }
      case Kind::kPercent:
        return Eval(n.kids[0], depth + 1) / Complex(100, 0);
      case Kind::kPow:
        return Power(Eval(n.kids[0], depth + 1), Eval(n.kids[1], depth + 1));
      case Kind::kFunc:
        return Func(n, depth);
      default:
        return Complex(kNaN, 0);
    }
  }

  static Complex Power(Complex base, Complex exponent) {
    // Integer exponents by repeated squaring keep negative bases real and exact-ish.
    if (exponent.imag() == 0 && std::fabs(exponent.real()) <= 64 &&
        exponent.real() == std::floor(exponent.real())) {
      int e = static_cast<int>(exponent.real());
      Complex result = 1, b = base;
      for (int k = std::abs(e); k > 0; k >>= 1) {
        if (k & 1) result *= b;
        b *= b;
      }
      if (e < 0) {
        if (result == Complex(0, 0)) return Complex(std::numeric_limits<long double>::quiet_NaN(), 0);
        result = Complex(1, 0) / result;
      }
      return result;
    }
    if (base == Complex(0, 0)) return exponent.real() > 0 ? Complex(0, 0) : Complex(NAN, 0);
    if (base.imag() == 0 && exponent.imag() == 0 && base.real() > 0) {
      return Complex(std::pow(base.real(), exponent.real()), 0);  // overflows to inf, not NaN
    }
    return std::pow(base, exponent);
  }

  Complex Func(const Node& n, int depth) {
    Complex x = Eval(n.kids[0], depth + 1);
    const std::string& f = n.name;
    const Complex one(1, 0);
    if (f == "sqrt") return std::sqrt(x);
    if (f == "sin") return std::sin(x);
    if (f == "cos") return std::cos(x);
    if (f == "tan") return std::tan(x);
    if (f == "sec") return one / std::cos(x);
    if (f == "csc") return one / std::sin(x);
    if (f == "cot") return std::cos(x) / std::sin(x);
    if (f == "asin") return std::asin(x);
    if (f == "acos") return std::acos(x);
    if (f == "atan") return std::atan(x);
    if (f == "acot") return std::atan(one / x);
    if (f == "sinh") return std::sinh(x);
    if (f == "cosh") return std::cosh(x);
    if (f == "tanh") return std::tanh(x);
    if (f == "ln" || f == "log") return std::log(x);
    if (f == "log10") return std::log10(x);
    if (f == "exp") return std::exp(x);
    if (f == "abs") return Complex(std::abs(x), 0);
    if (f == "floor") return x.imag() == 0 ? Complex(std::floor(x.real()), 0) : Complex(NAN, 0);
    if (f == "ceil") return x.imag() == 0 ? Complex(std::ceil(x.real()), 0) : Complex(NAN, 0);
    if (f == "fact" && x.imag() == 0 && x.real() > -1) return Complex(std::tgamma(x.real() + 1), 0);
    if (f == "binom" && n.kids.size() == 2) {
      Complex k = Eval(n.kids[1], depth + 1);
      if (x.imag() != 0 || k.imag() != 0) return Complex(NAN, 0);
      long double r = std::exp(std::lgamma(x.real() + 1) - std::lgamma(k.real() + 1) -
                               std::lgamma(x.real() - k.real() + 1));
      return Complex(r, 0);
    }
    return Complex(NAN, 0);
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
};

}  // namespace

// The time budget is the calling thread's CPU time: a loaded machine or an oversubscribed
// thread pool slows a check down but does not change its verdict.
Budget::Budget(const VerifierOptions& options)
    : deadline_ns_(ThreadCpuNanos() + static_cast<int64_t>(options.time_budget_ms * 1e6)),
      nodes_left_(options.node_budget),
      bit_budget_(options.bit_budget) {}

int64_t Budget::ThreadCpuNanos() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void Budget::CheckClock() const {
  if (ThreadCpuNanos() > deadline_ns_) throw BudgetError{"time budget exhausted"};
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
  return Complex(0.3L + Unit(a), 0.3L + Unit(b));
}

Complex NumericValue(const Tree& tree, int32_t node, int point, Budget& budget,
                     long double* scale, const std::vector<std::string>* rename) {
  NumericEvaluator evaluator(tree, point, budget, rename);
  Complex v = evaluator.Eval(node, 0);
  if (scale != nullptr) *scale = std::max(*scale, evaluator.scale);
  return v;
}

bool HasDecimal(const Tree& tree, int32_t node) {
  const Node& n = tree[node];
  if (n.kind == Kind::kNumber) return (n.flags & kDecimal) != 0;
  for (int32_t k : n.kids) {
    if (HasDecimal(tree, k)) return true;
  }
  return false;
}

void CollectSymbols(const Tree& tree, int32_t node, std::vector<std::string>* names) {
  const Node& n = tree[node];
  if (n.kind == Kind::kSymbol) {
    if (std::find(names->begin(), names->end(), n.name) == names->end()) names->push_back(n.name);
    return;
  }
  for (int32_t k : n.kids) CollectSymbols(tree, k, names);
}

}  // namespace rl::math::internal

// Exact rationals in lowest terms, and what their arithmetic costs in budget nodes.
//
// The costs are measured, not derived (bench/math/budget_bench.cpp prints nanoseconds per
// node for the worst shapes): one node is about 25 ns of CPU. Boost's cpp_int multiplies
// schoolbook (about 0.3 ns per pair of 64-bit limbs), divides in a pass over the dividend per
// quotient limb, and its gcd is binary (about 35 ns per limb x limb of the larger operand), so
// a gcd of two big numbers is what makes rational arithmetic expensive; the operations here
// avoid it wherever it is known to be 1.
#include <algorithm>
#include <bit>
#include <boost/multiprecision/cpp_bin_float.hpp>
#include <cmath>
#include <numeric>
#include <string>

#include "rewards/math/internal.h"

namespace rl::rewards::math::internal {
namespace {

int64_t Limbs(int64_t bits) { return bits / 64 + 1; }
int64_t Limbs(const Rational& r) { return Limbs(r.Bits()); }

// gcd(|a|, |b|). Boost's binary gcd takes a step per bit of the larger operand, each a pass
// over it: against a small operand, the big one is first reduced by a remainder (a schoolbook
// division), which leaves the binary gcd two operands of the smaller size; ArithmeticCost
// charges both. (Without it, a 30-digit numerator against 10^9000 took milliseconds.)
Integer Gcd(const Integer& a, const Integer& b) {
  const Integer& big = Bits(a) >= Bits(b) ? a : b;
  const Integer& small = &big == &a ? b : a;
  if (small == 0) return abs(big);
  if (Bits(small) <= 64) {
    uint64_t s = static_cast<uint64_t>(abs(small));
    if (s == 1) return 1;
    return Integer(std::gcd(s, static_cast<uint64_t>(abs(big) % s)));
  }
  Integer rest = abs(big) % abs(small);
  if (rest == 0) return abs(small);
  return boost::multiprecision::gcd(abs(small), rest);
}

}  // namespace

int64_t Bits(const Integer& v) {
  const auto& backend = v.backend();
  size_t limbs = backend.size();
  boost::multiprecision::limb_type top = backend.limbs()[limbs - 1];
  constexpr int64_t kLimbBits = sizeof(top) * 8;
  return static_cast<int64_t>(limbs - 1) * kLimbBits + std::bit_width(top);
}

Rational Rational::Fraction(Integer num, Integer den) {
  if (den < 0) {
    num = -num;
    den = -den;
  }
  Integer g = Gcd(num, den);
  if (g != 1) {
    num /= g;
    den /= g;
  }
  return Coprime(std::move(num), std::move(den));
}

Rational Rational::Coprime(Integer num, Integer den) {
  Rational r;
  r.num_ = std::move(num);
  r.den_ = std::move(den);
  return r;
}

template <typename R>
R Rational::To() const {
  // Only the leading bits count: both parts are cut to 256 bits (more than a 50-digit float
  // holds), so a part beyond the range of R cannot turn the quotient into inf / inf.
  constexpr int64_t kKeep = 256;
  int64_t num_shift = std::max<int64_t>(0, internal::Bits(num_) - kKeep);
  int64_t den_shift = std::max<int64_t>(0, internal::Bits(den_) - kKeep);
  Integer n = abs(num_) >> num_shift;
  Integer d = den_ >> den_shift;
  using std::ldexp;
  R value = ldexp(n.template convert_to<R>() / d.template convert_to<R>(),
                  static_cast<int>(num_shift - den_shift));
  return num_ < 0 ? R(-value) : value;
}
template long double Rational::To<long double>() const;
template boost::multiprecision::cpp_bin_float_50
Rational::To<boost::multiprecision::cpp_bin_float_50>() const;

namespace {

// Most numbers a check writes are small: std::to_string skips Boost's general conversion.
std::string Digits(const Integer& v) {
  if (Bits(v) < 63) return std::to_string(v.convert_to<long long>());
  return v.str();
}

}  // namespace

std::string Rational::str() const {
  if (den_ == 1) return Digits(num_);
  return Digits(num_) + "/" + Digits(den_);
}

Rational operator-(const Rational& a) { return Rational::Coprime(-a.num_, a.den_); }

Rational operator+(const Rational& a, const Rational& b) {
  if (a.den_ == b.den_) {
    if (a.den_ == 1) return Rational(Integer(a.num_ + b.num_));
    return Rational::Fraction(a.num_ + b.num_, a.den_);
  }
  // a/b + c/d with g = gcd(b, d): the sum's only common factors with its denominator divide g.
  Integer g = Gcd(a.den_, b.den_);
  Integer b1 = a.den_ / g, d1 = b.den_ / g;
  Integer num = a.num_ * d1 + b.num_ * b1;
  Integer h = Gcd(num, g);
  return Rational::Coprime(num / h, b1 * (b.den_ / h));
}

Rational operator*(const Rational& a, const Rational& b) {
  if (a.den_ == 1 && b.den_ == 1) return Rational(Integer(a.num_ * b.num_));
  Integer g1 = Gcd(a.num_, b.den_), g2 = Gcd(b.num_, a.den_);
  return Rational::Coprime((a.num_ / g1) * (b.num_ / g2), (a.den_ / g2) * (b.den_ / g1));
}

Rational operator/(const Rational& a, const Rational& b) {
  Rational inverse =
      b.num_ < 0 ? Rational::Coprime(-b.den_, -b.num_) : Rational::Coprime(b.den_, b.num_);
  return a * inverse;
}

Rational Pow(const Rational& base, unsigned exponent) {
  return Rational::Coprime(boost::multiprecision::pow(base.num(), exponent),
                           boost::multiprecision::pow(base.den(), exponent));
}

int Compare(const Rational& a, const Rational& b) {
  if (a.Sign() != b.Sign()) return a.Sign() < b.Sign() ? -1 : 1;
  if (a.den_ == b.den_) return a.num_.compare(b.num_);
  return Integer(a.num_ * b.den_).compare(Integer(b.num_ * a.den_));
}

int64_t ArithmeticCost(const Rational& a, const Rational& b) {
  int64_t la = Limbs(a), lb = Limbs(b);
  // A pass over the operands (about 1.5 ns a limb), and a schoolbook product.
  int64_t integers = 1 + (la + lb) / 16 + la * lb / 64;
  if (a.IsInteger() && b.IsInteger()) return integers;
  // Two gcds: remainders first, then a binary gcd on what is left (up to the smaller size
  // squared). Boost's division passes over the whole dividend once per quotient limb: a
  // remainder of n limbs by m costs about n (n - m + 1) limb steps (1.4 ns each), which is what
  // a long denominator against a short numerator pays.
  int64_t big = std::max(la, lb), small = std::min(la, lb);
  return integers + la * lb / 16 + big * (big - small + 1) / 8 + 4 * small * small;
}

int64_t CompareCost(const Rational& a, const Rational& b) { return 1 + Limbs(a) * Limbs(b) / 64; }

int64_t LinearCost(int64_t bits) { return 1 + Limbs(bits) / 16; }

int64_t CopyCost(const Rational& a) { return LinearCost(a.Bits()); }

int64_t PowerCost(int64_t result_bits) {
  int64_t limbs = Limbs(result_bits);
  return 1 + limbs * limbs / 32;
}

int64_t RootCost(const Integer& a) {
  int64_t limbs = Limbs(Bits(a));
  return 1 + 2 * limbs * limbs;
}

int64_t ReadDigitsCost(size_t digits) {
  int64_t limbs = Limbs(static_cast<int64_t>(digits) * 10 / 3);
  return 1 + limbs * limbs / 64;
}

int64_t WriteDigitsCost(const Rational& a) {
  int64_t limbs = Limbs(a);
  return 1 + limbs * limbs / 4;
}

}  // namespace rl::rewards::math::internal

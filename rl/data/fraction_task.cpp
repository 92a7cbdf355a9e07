#include "rl/data/fraction_task.h"

#include <numeric>
#include <string>

#include "rl/data/sampler.h"

namespace rl::data {
namespace {

struct Problem {
  int64_t a, c, b;  // a/b + c/b
};

std::string Prompt(const Problem& p) {
  return "Compute " + std::to_string(p.a) + "/" + std::to_string(p.b) + " + " +
         std::to_string(p.c) + "/" + std::to_string(p.b) + ".";
}

std::string Fraction(int64_t p, int64_t q, bool latex) {
  if (latex) return "\\frac{" + std::to_string(p) + "}{" + std::to_string(q) + "}";
  return std::to_string(p) + "/" + std::to_string(q);
}

std::string Trace(const Problem& p, bool slip, bool latex) {
  const int64_t sum = p.a + p.c;
  std::string think = std::to_string(p.a) + " + " + std::to_string(p.c) + " = " + std::to_string(sum);
  if (slip) {
    think += ", " + std::to_string(p.b) + " + " + std::to_string(p.b) + " = " + std::to_string(2 * p.b) + ".";
    return "<think>" + think + "</think><answer>" + Fraction(sum, 2 * p.b, latex) + "</answer>";
  }
  think += ", the denominator stays " + std::to_string(p.b) + ".";
  return "<think>" + think + "</think><answer>" + Fraction(sum, p.b, latex) + "</answer>";
}

}  // namespace

std::string WriteRational(int64_t p, int64_t q, int form) {
  const int64_t g = std::gcd(p, q);
  p /= g;
  q /= g;
  if (q == 1) return std::to_string(p);
  if (form == 1) return Fraction(p, q, /*latex=*/true);
  if (form == 2) {
    int64_t rest = q;
    while (rest % 2 == 0) rest /= 2;
    while (rest % 5 == 0) rest /= 5;
    if (rest == 1) {  // terminates: scale to a power of ten
      int64_t scale = 1, digits = 0;
      while (scale % q != 0) scale *= 10, ++digits;
      const int64_t scaled = p * (scale / q);
      std::string frac = std::to_string(scaled % scale);
      frac.insert(0, static_cast<size_t>(digits) - frac.size(), '0');
      return std::to_string(scaled / scale) + "." + frac;
    }
  }
  return Fraction(p, q, /*latex=*/false);
}

FractionTask GenerateFractionTask(const FractionTaskOptions& o) {
  if (o.max_numerator < 1 || o.max_denominator < 2 || o.num_train < 1 || o.num_eval < 0 ||
      o.teacher_slip_rate < 0 || o.teacher_slip_rate > 1) {
    throw DataError("fraction task: options out of range (max_numerator >= 1, max_denominator >= 2, "
                    "num_train >= 1, num_eval >= 0, teacher_slip_rate in [0, 1])");
  }
  std::vector<Problem> problems;
  for (int64_t b = 2; b <= o.max_denominator; ++b) {
    for (int64_t a = 1; a <= o.max_numerator; ++a) {
      for (int64_t c = 1; c <= o.max_numerator; ++c) problems.push_back({a, c, b});
    }
  }
  const int64_t distinct = static_cast<int64_t>(problems.size());
  if (o.num_eval * 2 > distinct) {
    throw DataError("fraction task: num_eval = " + std::to_string(o.num_eval) +
                    " would hold out more than half of the " + std::to_string(distinct) +
                    " distinct problems; lower it or raise max_numerator / max_denominator");
  }
  common::SplitMix64 rng(o.seed);
  Shuffle(problems, rng);

  FractionTask task;
  for (int64_t i = 0; i < o.num_eval; ++i) {
    const Problem& p = problems[static_cast<size_t>(i)];
    const int form = static_cast<int>(rng.Below(3));
    task.eval.push_back({Prompt(p), WriteRational(p.a + p.c, p.b, form), Trace(p, false, false)});
  }
  const int64_t pool = distinct - o.num_eval;
  for (int64_t i = 0; i < o.num_train; ++i) {
    const Problem& p = problems[static_cast<size_t>(o.num_eval + i % pool)];
    const int form = static_cast<int>(rng.Below(3));
    const bool slip = rng.Uniform() < o.teacher_slip_rate;
    const bool latex = rng.Below(2) == 1;
    task.train.push_back({Prompt(p), WriteRational(p.a + p.c, p.b, form), Trace(p, slip, latex)});
  }
  Shuffle(task.train, rng);
  return task;
}

}  // namespace rl::data

// Verifier: the narrow first version (integers, fractions, decimals, \boxed extraction).
#include "rewards/math/verify.h"

#include <optional>
#include <string>

#include <boost/multiprecision/cpp_int.hpp>

namespace rl::math {
namespace {

using Rational = boost::multiprecision::cpp_rational;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '$')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '$' || s.back() == '.')) s.remove_suffix(1);
  return s;
}

std::optional<std::string_view> LastBoxed(std::string_view text) {
  size_t at = text.rfind("\\boxed{");
  if (at == std::string_view::npos) return std::nullopt;
  size_t start = at + 7;
  int depth = 1;
  for (size_t i = start; i < text.size(); ++i) {
    if (text[i] == '{') ++depth;
    if (text[i] == '}' && --depth == 0) return text.substr(start, i - start);
  }
  return std::nullopt;
}

std::optional<Rational> ParseNumber(std::string_view s) {
  s = Trim(s);
  bool negative = false;
  if (!s.empty() && s.front() == '-') {
    negative = true;
    s.remove_prefix(1);
  }
  if (s.size() > 1000 || s.empty()) return std::nullopt;
  Rational value = 0;
  size_t slash = s.find('/');
  if (slash != std::string_view::npos) {
    auto num = ParseNumber(s.substr(0, slash));
    auto den = ParseNumber(s.substr(slash + 1));
    if (!num || !den || *den == 0) return std::nullopt;
    value = *num / *den;
  } else {
    Rational scale = 1;
    bool point = false;
    for (char c : s) {
      if (c == '.' && !point) {
        point = true;
      } else if (c >= '0' && c <= '9') {
        value = value * 10 + (c - '0');
        if (point) scale *= 10;
      } else if (c != ',') {
        return std::nullopt;
      }
    }
    value /= scale;
  }
  return negative ? Rational(-value) : value;
}

}  // namespace

std::string_view ToString(Verdict verdict) {
  switch (verdict) {
    case Verdict::kCorrect: return "correct";
    case Verdict::kIncorrect: return "incorrect";
    case Verdict::kNoAnswer: return "no_answer";
    case Verdict::kUnparseableAnswer: return "unparseable_answer";
    case Verdict::kInvalidGold: return "invalid_gold";
    case Verdict::kBudgetExceeded: return "budget_exceeded";
  }
  return "unknown";
}

std::string_view ToString(Extraction extraction) {
  switch (extraction) {
    case Extraction::kAnswerTag: return "answer_tag";
    case Extraction::kBoxed: return "boxed";
    case Extraction::kAnchor: return "anchor";
    case Extraction::kMathEnv: return "math_env";
    case Extraction::kNumber: return "number";
  }
  return "unknown";
}

Verifier::Verifier(VerifierOptions options) : options_(std::move(options)) {}

CheckResult Verifier::Check(std::string_view completion, std::string_view gold) const {
  CheckResult result;
  std::optional<Rational> g = ParseNumber(LastBoxed(gold).value_or(gold));
  if (!g) {
    result.verdict = Verdict::kInvalidGold;
    result.detail = "gold is not a number";
    return result;
  }
  result.gold_canonical = g->str();
  std::optional<std::string_view> boxed = LastBoxed(completion);
  if (!boxed) return result;
  result.extracted = std::string(*boxed);
  std::optional<Rational> p = ParseNumber(*boxed);
  if (!p) {
    result.verdict = Verdict::kUnparseableAnswer;
    return result;
  }
  result.pred_canonical = p->str();
  result.verdict = *p == *g ? Verdict::kCorrect : Verdict::kIncorrect;
  return result;
}

}  // namespace rl::math

// accuracy.math and length.cosine: the rules built on the math verifier, and the spec's
// `math:` section. Both rules share one answer check per sample through SampleScratch.
#include <cmath>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "rewards/rule.h"

namespace rl::rewards {
namespace {

// Runs the verifier once per sample; later rules of the same Reward reuse the verdict.
const math::CheckResult& AnswerCheck(const RuleInput& input, SampleScratch& scratch,
                                     const math::Verifier& verifier) {
  if (!scratch.answer_check) {
    scratch.answer_check = verifier.Check(input.completion, *input.sample.gold);
  }
  return *scratch.answer_check;
}

// The verdicts that are not a statement about the completion: the sample is unscorable.
bool VerdictIsUnscorable(math::Verdict verdict, RuleOutcome* outcome, const std::string& why) {
  if (verdict == math::Verdict::kInvalidGold) {
    outcome->status = ScoreStatus::kInvalidGold;
  } else if (verdict == math::Verdict::kBudgetExceeded) {
    outcome->status = ScoreStatus::kBudgetExceeded;
  } else {
    return false;
  }
  outcome->detail = std::string(math::ToString(verdict)) + (why.empty() ? "" : ": " + why);
  return true;
}

RuleOutcome MissingGold() {
  RuleOutcome outcome;
  outcome.status = ScoreStatus::kMissingGold;
  outcome.detail = "the sample has no gold answer";
  return outcome;
}

// 1/0 by default; DAPO uses +1/-1. no_answer and unparseable_answer are incorrect answers.
class AccuracyMathRule final : public Rule {
 public:
  AccuracyMathRule(const math::Verifier& verifier, double correct, double incorrect)
      : verifier_(verifier), correct_(correct), incorrect_(incorrect) {}

  RuleOutcome Score(const RuleInput& input, SampleScratch& scratch) const override {
    if (!input.sample.gold) return MissingGold();
    const math::CheckResult& check = AnswerCheck(input, scratch, verifier_);
    RuleOutcome outcome;
    if (VerdictIsUnscorable(check.verdict, &outcome, check.detail)) return outcome;
    outcome.value = check.verdict == math::Verdict::kCorrect ? correct_ : incorrect_;
    return outcome;
  }

 private:
  const math::Verifier& verifier_;
  double correct_;
  double incorrect_;
};

// open-r1's cosine-scaled reward: with progress p = min(length / max_len, 1),
//   reward = lo + (hi - lo) * (1 + cos(pi * p)) / 2,
// where (lo, hi) = (min_value_correct, max_value_correct) for a correct answer and
// (max_value_wrong, min_value_wrong) for a wrong one: short correct answers earn the most,
// short wrong answers lose the most. open-r1 measures length in characters and lets the
// cosine wrap past max_len; we measure tokens by default and clamp at max_len.
// params: min_value_wrong (-1), max_value_wrong (-0.5), min_value_correct (0.5),
// max_value_correct (1), max_len (1000), unit: tokens (needs Sample::completion_tokens,
// else the status is missing_token_count) or chars (UTF-8 bytes of the completion).
class LengthCosineRule final : public Rule {
 public:
  struct Params {
    double min_value_wrong = -1.0;
    double max_value_wrong = -0.5;
    double min_value_correct = 0.5;
    double max_value_correct = 1.0;
    double max_len = 1000;
    bool count_tokens = true;  // false: UTF-8 bytes of the completion, as open-r1's len()
  };
  LengthCosineRule(const math::Verifier& verifier, Params params)
      : verifier_(verifier), params_(params) {}

  RuleOutcome Score(const RuleInput& input, SampleScratch& scratch) const override {
    if (!input.sample.gold) return MissingGold();
    RuleOutcome outcome;
    double length = 0;
    if (params_.count_tokens) {
      if (!input.sample.completion_tokens) {
        outcome.status = ScoreStatus::kMissingTokenCount;
        outcome.detail = "length.cosine counts tokens (params.unit: tokens) but the sample has "
                         "no completion_tokens; pass it or set unit: chars";
        return outcome;
      }
      length = static_cast<double>(*input.sample.completion_tokens);
    } else {
      length = static_cast<double>(input.completion.size());
    }
    const math::CheckResult& check = AnswerCheck(input, scratch, verifier_);
    if (VerdictIsUnscorable(check.verdict, &outcome, check.detail)) return outcome;
    bool correct = check.verdict == math::Verdict::kCorrect;
    double lo = correct ? params_.min_value_correct : params_.max_value_wrong;
    double hi = correct ? params_.max_value_correct : params_.min_value_wrong;
    double progress = std::min(length / params_.max_len, 1.0);
    outcome.value = lo + (hi - lo) * 0.5 * (1.0 + std::cos(progress * std::numbers::pi));
    return outcome;
  }

 private:
  const math::Verifier& verifier_;
  Params params_;
};

bool RequireVerifier(const RuleContext& context, std::string* error) {
  if (context.verifier != nullptr) return true;
  if (error != nullptr) *error = "internal: the rule context has no math verifier";
  return false;
}

}  // namespace

std::unique_ptr<Rule> MakeAccuracyMathRule(const nlohmann::json& params,
                                           const RuleContext& context, std::string* error) {
  if (!RequireVerifier(context, error)) return nullptr;
  RuleParams reader(params);
  double correct = reader.Number("correct", 1.0);
  double incorrect = reader.Number("incorrect", 0.0);
  if (!reader.Finish(error)) return nullptr;
  return std::make_unique<AccuracyMathRule>(*context.verifier, correct, incorrect);
}

std::unique_ptr<Rule> MakeLengthCosineRule(const nlohmann::json& params,
                                           const RuleContext& context, std::string* error) {
  if (!RequireVerifier(context, error)) return nullptr;
  RuleParams reader(params);
  LengthCosineRule::Params p;
  p.min_value_wrong = reader.Number("min_value_wrong", p.min_value_wrong);
  p.max_value_wrong = reader.Number("max_value_wrong", p.max_value_wrong);
  p.min_value_correct = reader.Number("min_value_correct", p.min_value_correct);
  p.max_value_correct = reader.Number("max_value_correct", p.max_value_correct);
  p.max_len = reader.Number("max_len", p.max_len);
  std::string unit = reader.String("unit", "tokens");
  if (p.max_len <= 0) reader.Fail("max_len", "expected a positive number");
  if (unit != "tokens" && unit != "chars") reader.Fail("unit", "expected tokens or chars");
  p.count_tokens = unit == "tokens";
  if (!reader.Finish(error)) return nullptr;
  return std::make_unique<LengthCosineRule>(*context.verifier, p);
}

namespace {

bool Fail(std::string* error, const std::string& message) {
  if (error != nullptr) *error = message;
  return false;
}

bool ReadExtraction(const nlohmann::json& value, std::vector<math::Extraction>* out,
                    std::string* error) {
  static constexpr math::Extraction kAll[] = {
      math::Extraction::kAnswerTag, math::Extraction::kBoxed, math::Extraction::kAnchor,
      math::Extraction::kMathEnv, math::Extraction::kNumber};
  std::string expected = "expected a list of answer_tag, boxed, anchor, math_env, number";
  if (!value.is_array() || value.empty()) return Fail(error, "math.extraction: " + expected);
  out->clear();
  for (const nlohmann::json& item : value) {
    bool found = false;
    for (math::Extraction kind : kAll) {
      if (item.is_string() && item.get<std::string>() == math::ToString(kind)) {
        out->push_back(kind);
        found = true;
      }
    }
    if (!found) {
      // Not dumped: a string may not be UTF-8, and dump() throws on that.
      std::string entry = JsonTypeName(item);
      if (item.is_string()) entry = "'" + item.get_ref<const std::string&>() + "'";
      return Fail(error, "math.extraction: unknown entry " + entry + "; " + expected);
    }
  }
  return true;
}

}  // namespace

bool ParseVerifierOptions(const nlohmann::json& math, math::VerifierOptions* options,
                          std::string* error) {
  if (math.is_null()) return true;
  if (!math.is_object()) return Fail(error, "math: expected a mapping");
  for (const auto& item : math.items()) {
    // Named references, not a structured binding: the lambdas below use them, and C++20
    // compilers before clang 16 cannot capture a binding.
    const std::string& key = item.key();
    const nlohmann::json& value = item.value();
    std::string where = "math." + key + ": ";
    auto integer = [&](int64_t lo, int64_t hi, int64_t* out) {
      if (!value.is_number_integer() || value.get<int64_t>() < lo || value.get<int64_t>() > hi) {
        return Fail(error, where + "expected an integer in [" + std::to_string(lo) + ", " +
                               std::to_string(hi) + "]");
      }
      *out = value.get<int64_t>();
      return true;
    };
    auto boolean = [&](bool* out) {
      if (!value.is_boolean()) return Fail(error, where + "expected true or false");
      *out = value.get<bool>();
      return true;
    };
    int64_t n = 0;
    bool ok = true;
    if (key == "precision") {
      ok = integer(0, 30, &n);
      options->precision = static_cast<int>(n);
    } else if (key == "time_budget_ms") {
      if (!value.is_number() || !(value.get<double>() > 0) || value.get<double>() > 600000) {
        return Fail(error, where + "expected a positive number of milliseconds");
      }
      options->time_budget_ms = value.get<double>();
    } else if (key == "node_budget") {
      ok = integer(100, int64_t{1} << 40, &options->node_budget);
    } else if (key == "bit_budget") {
      ok = integer(64, int64_t{1} << 24, &options->bit_budget);
    } else if (key == "extraction") {
      ok = ReadExtraction(value, &options->extraction, error);
    } else if (key == "strict") {
      ok = boolean(&options->strict);
    } else if (key == "interval_accepts_inequality") {
      ok = boolean(&options->interval_accepts_inequality);
    } else if (key == "percent_accepts_bare_number") {
      ok = boolean(&options->percent_accepts_bare_number);
    } else if (key == "number_accepts_percent") {
      ok = boolean(&options->number_accepts_percent);
    } else if (key == "choices_ignore_case") {
      ok = boolean(&options->choices_ignore_case);
    } else if (key == "choices") {
      if (!value.is_array()) return Fail(error, where + "expected a list of strings");
      options->choices.clear();
      for (const nlohmann::json& item : value) {
        if (!item.is_string() || item.get<std::string>().empty()) {
          return Fail(error, where + "expected a list of non-empty strings");
        }
        options->choices.push_back(item.get<std::string>());
      }
    } else {
      return Fail(error, "math." + key +
                             ": unknown key; expected one of precision, time_budget_ms, "
                             "node_budget, bit_budget, extraction, strict, "
                             "interval_accepts_inequality, percent_accepts_bare_number, "
                             "number_accepts_percent, choices, choices_ignore_case");
    }
    if (!ok) return false;
  }
  return true;
}

}  // namespace rl::rewards

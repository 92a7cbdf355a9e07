// accuracy.math and length.cosine: the rules built on the math verifier, and the spec's
// `math:` section. Both rules share one answer check per sample through SampleScratch.
#include <cmath>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "common/config_json.h"
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

bool RequireVerifier(const RuleContext& context, SpecError* error) {
  if (context.verifier != nullptr) return true;
  if (error != nullptr) *error = {"", "internal: the rule context has no math verifier"};
  return false;
}

}  // namespace

std::unique_ptr<Rule> MakeAccuracyMathRule(const nlohmann::json& params,
                                           const RuleContext& context, SpecError* error) {
  if (!RequireVerifier(context, error)) return nullptr;
  RuleParams reader(params);
  double correct = reader.Number("correct", 1.0);
  double incorrect = reader.Number("incorrect", 0.0);
  if (!reader.Finish(error)) return nullptr;
  return std::make_unique<AccuracyMathRule>(*context.verifier, correct, incorrect);
}

std::unique_ptr<Rule> MakeLengthCosineRule(const nlohmann::json& params,
                                           const RuleContext& context, SpecError* error) {
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

// The verifier's extraction kinds by their names (math::ToString).
const common::Choices<math::Extraction>& ExtractionNames() {
  static const common::Choices<math::Extraction> names = [] {
    common::Choices<math::Extraction> out;
    for (math::Extraction kind : {math::Extraction::kAnswerTag, math::Extraction::kBoxed,
                                  math::Extraction::kAnchor, math::Extraction::kMathEnv,
                                  math::Extraction::kNumber}) {
      out.emplace_back(math::ToString(kind).data(), kind);  // names are literals
    }
    return out;
  }();
  return names;
}

// The schema of a spec's `math:` section (common/config_schema.h).
template <class V>
void VisitVerifierOptions(V& v, math::VerifierOptions& o) {
  using common::AtLeast;
  using common::Between;
  v.Field("precision", o.precision, Between(0, 30));
  v.Field("rounded_decimal_digits", o.rounded_decimal_digits, Between(0, 30));
  v.Field("time_budget_ms", o.time_budget_ms, Between(0.001, 600000));
  v.Field("node_budget", o.node_budget, Between(100, double(int64_t{1} << 40)));
  v.Field("bit_budget", o.bit_budget, Between(64, double(int64_t{1} << 24)));
  v.ChoiceList("extraction", o.extraction, ExtractionNames());
  v.Field("strict", o.strict);
  v.Field("interval_accepts_inequality", o.interval_accepts_inequality);
  v.Field("percent_accepts_bare_number", o.percent_accepts_bare_number);
  v.Field("number_accepts_percent", o.number_accepts_percent);
  v.Field("choices", o.choices);
  v.Field("choices_ignore_case", o.choices_ignore_case);
}

}  // namespace

bool ParseVerifierOptions(const nlohmann::json& math, math::VerifierOptions* options,
                          SpecError* error) {
  math::VerifierOptions read = *options;
  try {
    common::JsonReader reader(math, "math");
    VisitVerifierOptions(reader, read);
    reader.CheckUnknownKeys();
  } catch (const common::ConfigError& e) {
    *error = {e.path(), e.detail()};
    return false;
  }
  for (const std::string& choice : read.choices) {
    if (choice.empty()) return *error = {"math.choices", "expected a list of non-empty strings"}, false;
  }
  *options = std::move(read);
  return true;
}

}  // namespace rl::rewards

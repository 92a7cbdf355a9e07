// The rule registry: every rule a spec can name, and its factory.
#include <array>
#include <span>
#include <string_view>

#include "rewards/rule.h"

namespace rl::rewards {
namespace {

struct RegisteredRule {
  std::string_view name;
  RuleFactory factory;
};

constexpr std::array kRegisteredRules = {
    RegisteredRule{"format.think_answer", &MakeFormatThinkAnswerRule},
    RegisteredRule{"format.tags", &MakeFormatTagsRule},
    RegisteredRule{"format.tag_count", &MakeFormatTagCountRule},
    RegisteredRule{"format.boxed", &MakeFormatBoxedRule},
    RegisteredRule{"length.soft_overlong", &MakeLengthSoftOverlongRule},
    RegisteredRule{"repetition.ngram", &MakeRepetitionNgramRule},
    RegisteredRule{"reasoning.steps", &MakeReasoningStepsRule},
    RegisteredRule{"accuracy.math", &MakeAccuracyMathRule},
    RegisteredRule{"length.cosine", &MakeLengthCosineRule},
};

}  // namespace

RuleFactory FindRuleFactory(std::string_view name) {
  for (const RegisteredRule& rule : kRegisteredRules) {
    if (rule.name == name) return rule.factory;
  }
  return nullptr;
}

std::span<const std::string_view> KnownRuleNames() {
  static constexpr auto kNames = [] {
    std::array<std::string_view, kRegisteredRules.size()> names{};
    for (size_t i = 0; i < names.size(); ++i) names[i] = kRegisteredRules[i].name;
    return names;
  }();
  return kNames;
}

}  // namespace rl::rewards

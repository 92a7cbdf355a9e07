// Reward specs in YAML (the whole input is the file), then scoring with what was accepted.
// Promises checked (rewards/reward.h): a bad spec is refused with a message naming the origin,
// never a crash or an exception; an accepted spec's compiled form (spec()) prints as JSON and
// is itself an accepted spec that compiles to the same thing; the reward scores a few samples
// without a rule failing as a bug (kRuleError).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "rewards/reward.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using rl::fuzz::Require;
using rl::rewards::Reward;
using rl::rewards::Sample;
using rl::rewards::ScoreStatus;

void ScoreSome(const Reward& reward) {
  Sample samples[3];
  samples[0].completion = "<think>\nStep 1: 2+2\n</think>\n<answer>\n\\boxed{4}\n</answer><|im_end|>";
  samples[0].gold = "4";
  samples[0].completion_tokens = 20;
  samples[1].prompt = "<|im_start|>assistant\n<think>";
  samples[1].completion = "so x = 1/2 </think> <answer>B</answer>";
  samples[1].gold = "\\frac{1}{2}";
  samples[1].completion_tokens = 5000;
  samples[2].completion = "no tags at all, the the the the";
  for (const Sample& sample : samples) {
    for (const auto& c : reward.Score(sample).components) {
      Require(c.status != ScoreStatus::kRuleError, "no rule fails unexpectedly (kRuleError)");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  std::string error;
  const std::unique_ptr<Reward> reward = Reward::FromYamlText(yaml, &error, "fuzz.yaml");
  if (reward == nullptr) {
    Require(error.rfind("fuzz.yaml", 0) == 0, "a refused spec's message starts with its origin");
    return 0;
  }
  std::string again_error;
  const std::unique_ptr<Reward> again = Reward::FromJson(reward->spec(), &again_error);
  Require(again != nullptr, "the compiled spec is an accepted spec");
  Require(again->spec() == reward->spec(), "the compiled spec compiles to itself");
  (void)reward->spec().dump();  // printed by /health and --print-config: must not throw
  ScoreSome(*reward);
  return 0;
}

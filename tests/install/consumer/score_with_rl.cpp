// Scores with the installed rule library, as rewards/reward.h's own example does; exits 0 only
// when the results are the expected ones.
#include <cstdio>
#include <vector>

#include <rewards/math/verify.h>
#include <rewards/reward.h>

int main() {
  std::string error;
  auto reward = rl::rewards::Reward::FromYamlText(
      "rules:\n  - {name: format.think_answer}\n  - {name: accuracy.math}\n", &error);
  if (!reward) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  std::vector<rl::rewards::Sample> samples(2);
  samples[0].completion = "<think>1/2 + 1/4</think><answer>\\frac{3}{4}</answer>";
  samples[0].gold = "0.75";
  samples[1].completion = "<think>1/2 + 1/4</think><answer>2/6</answer>";
  samples[1].gold = "0.75";
  const std::vector<rl::rewards::RewardResult> results = reward->ScoreBatch(samples, 2);
  const rl::rewards::math::Verifier verifier;
  const bool ok = results[0].total == 2.0 && results[1].total == 1.0 &&
                  verifier.Check("x = \\boxed{4}", "4").verdict == rl::rewards::math::Verdict::kCorrect;
  std::printf("score_with_rl: %s\n", ok ? "ok" : "WRONG RESULTS");
  return ok ? 0 : 1;
}

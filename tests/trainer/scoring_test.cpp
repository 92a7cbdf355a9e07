// Scoring a rollout as it runs: each completion scored once, its result stored by (prompt,
// sample), and ScoreWithReward handing the rules exactly what ToSample says.
#include <atomic>
#include <string>
#include <vector>

#include <torch/types.h>
#include <torch/utils.h>

#include "tests/rollout/tiny_policy.h"

#include "tests/support/catch_torch.h"

#include "rewards/reward.h"
#include "rollout/rollout.h"
#include "trainer/scoring.h"

namespace rr = rl::rollout;
using rl::rollout::testing::Policy;
using rl::rollout::testing::SharedPolicy;
using rl::rollout::testing::EngineOptions;
using rl::rollout::testing::ScatteredSampling;
using rl::trainer::Prompt;

namespace {

std::vector<Prompt> Prompts(const rl::text::Tokenizer& tokenizer) {
  std::vector<Prompt> prompts;
  for (std::string text : {"What is 1/2 + 1/4?", "the lazy dog", "Compute 7 * 8.", "<think>"})
    prompts.push_back({tokenizer.Encode(text), text, "3/4"});
  return prompts;
}

}  // namespace

TEST_CASE("each completion is scored once, its result stored by prompt and sample") {
  Policy& p = SharedPolicy();
  const std::vector<Prompt> prompts = Prompts(*p.tokenizer);
  rr::RolloutEngine engine(*p.model, *p.tokenizer, EngineOptions(/*G=*/3, /*micro=*/4, /*workers=*/2));
  std::atomic<int> calls{0};
  // A reward that encodes which completion it saw: 10 * prompt + sample.
  auto score = [&](const Prompt& prompt, const rr::Completion& c) {
    CHECK(&prompt == &prompts[static_cast<size_t>(c.prompt_index)]);
    ++calls;
    rl::rewards::RewardResult r;
    r.total = 10.0 * static_cast<double>(c.prompt_index) + static_cast<double>(c.sample_index);
    return r;
  };
  rl::trainer::ScoredRollout result = rl::trainer::RunAndScore(engine, prompts, ScatteredSampling(1), score);
  CHECK(calls == 12);
  REQUIRE(result.rewards.size() == prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    REQUIRE(result.rewards[i].size() == 3);
    for (int64_t j = 0; j < 3; ++j) {
      CHECK(*result.Find(static_cast<int64_t>(i), j)->total == 10.0 * static_cast<double>(i) + static_cast<double>(j));
    }
  }
  // Without a scorer nothing is scored.
  rl::trainer::ScoredRollout plain = rl::trainer::RunAndScore(engine, prompts, ScatteredSampling(1), {});
  CHECK(plain.rewards.empty());
  CHECK(plain.Find(0, 0) == nullptr);
  CHECK(plain.rollout.groups.size() == prompts.size());
}

TEST_CASE("ScoreWithReward passes prompt, text, gold and token count to the reward") {
  Policy& p = SharedPolicy();
  std::string error;
  auto reward = rl::rewards::Reward::FromYamlText(
      "rules:\n"
      "  - {name: format.think_answer, weight: 1}\n"
      "  - {name: accuracy.math, weight: 2}\n"
      "  - {name: length.soft_overlong, weight: 1, params: {max_length: 8, cache_length: 4}}\n",
      &error);
  REQUIRE(reward != nullptr);
  rr::RolloutEngine engine(*p.model, *p.tokenizer, EngineOptions(2, 8, 1));
  const std::vector<Prompt> prompts = Prompts(*p.tokenizer);
  rl::trainer::ScoredRollout result =
      rl::trainer::RunAndScore(engine, prompts, ScatteredSampling(5), rl::trainer::ScoreWithReward(*reward));
  for (const auto& group : result.rollout.groups) {
    for (const auto& c : group.completions) {
      const rl::rewards::RewardResult* scored = result.Find(group.prompt_index, c.sample_index);
      REQUIRE(scored != nullptr);
      // The same sample scored directly gives the same result.
      rl::rewards::Sample sample;
      sample.prompt = prompts[group.prompt_index].text;
      sample.completion = c.text;
      sample.gold = *prompts[group.prompt_index].gold;
      sample.completion_tokens = static_cast<int64_t>(c.token_ids.size());
      rl::rewards::RewardResult direct = reward->Score(sample);
      CHECK(scored->status == direct.status);
      CHECK(scored->total == direct.total);
      REQUIRE(scored->components.size() == 3);
      // The length rule only scores when the token count was handed over.
      CHECK(scored->components[2].status == rl::rewards::ScoreStatus::kOk);
    }
  }
}

TEST_CASE("a failing scorer aborts the rollout and its error comes back") {
  Policy& p = SharedPolicy();
  rr::RolloutEngine engine(*p.model, *p.tokenizer, EngineOptions(2, 2, 2));
  auto score = [](const Prompt&, const rr::Completion& c) -> rl::rewards::RewardResult {
    if (c.prompt_index == 1) throw std::runtime_error("reward server unreachable");
    return {};
  };
  CHECK_THROWS_WITH(rl::trainer::RunAndScore(engine, Prompts(*p.tokenizer), ScatteredSampling(1), score),
                    Catch::Contains("reward server unreachable"));
}

// The grouped rollout engine: G completions per prompt, scoring callbacks once per completion
// and overlapping generation, determinism across worker counts, errors.
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "tests/rollout/tiny_policy.h"

#include <catch2/catch.hpp>

#include "rewards/reward.h"
#include "rollout/rollout.h"

namespace rr = rl::rollout;
using rl::rollout::testing::TinyModel;
using rl::rollout::testing::TinyTokenizer;
using rl::rollout::testing::Policy;
using rl::rollout::testing::SharedPolicy;

namespace {

std::vector<rr::RolloutPrompt> Prompts(const rl::text::Tokenizer& tokenizer) {
  std::vector<rr::RolloutPrompt> prompts;
  for (std::string text : {"What is 1/2 + 1/4?", "the lazy dog", "Compute 7 * 8.", "<think>"})
    prompts.push_back({tokenizer.Encode(text), text, "3/4"});
  return prompts;
}

rr::RolloutOptions Options(int64_t group, int64_t micro_batch, int workers) {
  rr::RolloutOptions options;
  options.group_size = group;
  options.micro_batch_size = micro_batch;
  options.workers = workers;
  options.threads_per_worker = 1;
  options.scoring_threads = 2;
  return options;
}

rr::SamplingParams Sampling(uint64_t seed, int64_t max_new_tokens = 12) {
  rr::SamplingParams sampling;
  sampling.seed = seed;
  sampling.max_new_tokens = max_new_tokens;
  for (int64_t id = 0; id < 20; ++id) sampling.eos_ids.push_back(id);  // scattered lengths
  return sampling;
}

// A scorer whose reward encodes which completion it saw: 10 * prompt + sample.
rl::rewards::RewardResult IndexReward(const rr::Completion& c) {
  rl::rewards::RewardResult r;
  r.total = 10.0 * static_cast<double>(c.prompt_index) + static_cast<double>(c.sample_index);
  return r;
}

}  // namespace

TEST_CASE("G completions per prompt, grouped in order, each scored exactly once") {
  Policy& p = SharedPolicy();
  auto prompts = Prompts(*p.tokenizer);
  rr::RolloutEngine engine(*p.model, *p.tokenizer, Options(/*G=*/3, /*micro=*/4, /*workers=*/2));
  std::mutex mutex;
  std::multiset<std::pair<int64_t, int64_t>> scored;
  auto score = [&](const rr::RolloutPrompt& prompt, const rr::Completion& c) {
    CHECK(&prompt == &prompts[static_cast<size_t>(c.prompt_index)]);
    CHECK(c.token_ids.size() == c.logprobs.size());
    CHECK_FALSE(c.reward.has_value());
    std::lock_guard lock(mutex);
    scored.insert({c.prompt_index, c.sample_index});
    return IndexReward(c);
  };
  rr::RolloutResult result = engine.Run(prompts, Sampling(1), score);
  CHECK(scored.size() == 12);
  CHECK(std::set<std::pair<int64_t, int64_t>>(scored.begin(), scored.end()).size() == 12);
  REQUIRE(result.groups.size() == prompts.size());
  int64_t tokens = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const rr::RolloutGroup& group = result.groups[i];
    CHECK(group.prompt_index == static_cast<int64_t>(i));
    REQUIRE(group.completions.size() == 3);
    for (int64_t j = 0; j < 3; ++j) {
      const rr::Completion& c = group.completions[j];
      CHECK(c.prompt_index == static_cast<int64_t>(i));
      CHECK(c.sample_index == j);
      REQUIRE(c.reward.has_value());
      CHECK(*c.reward->total == 10.0 * static_cast<double>(i) + static_cast<double>(j));
      CHECK_FALSE(c.token_ids.empty());
      tokens += static_cast<int64_t>(c.token_ids.size());
    }
  }
  CHECK(result.stats.completions == 12);
  CHECK(result.stats.generated_tokens == tokens);
  CHECK(result.stats.micro_batch_finished_at.size() == 3);
  CHECK(result.stats.wall_seconds >= result.stats.generation_seconds);
}

TEST_CASE("results depend on the seed, not on workers, scheduling or repetition") {
  Policy& p = SharedPolicy();
  auto prompts = Prompts(*p.tokenizer);
  auto tokens_of = [&](const rr::RolloutResult& r) {
    std::vector<std::vector<int32_t>> out;
    for (const auto& g : r.groups)
      for (const auto& c : g.completions) out.push_back(c.token_ids);
    return out;
  };
  rr::RolloutEngine one(*p.model, *p.tokenizer, Options(4, 4, 1));
  rr::RolloutEngine three(*p.model, *p.tokenizer, Options(4, 4, 3));
  auto reference = tokens_of(one.Run(prompts, Sampling(7)));
  CHECK(tokens_of(one.Run(prompts, Sampling(7))) == reference);
  CHECK(tokens_of(three.Run(prompts, Sampling(7))) == reference);
  auto index_score = [](const rr::RolloutPrompt&, const rr::Completion& c) {
    return IndexReward(c);
  };
  CHECK(tokens_of(three.Run(prompts, Sampling(7), index_score)) == reference);
  CHECK(tokens_of(one.Run(prompts, Sampling(8))) != reference);
  // Each sequence draws from its own stream: other micro-batch sizes give the same samples.
  rr::RolloutEngine wide(*p.model, *p.tokenizer, Options(4, 16, 1));
  CHECK(tokens_of(wide.Run(prompts, Sampling(7))) == reference);
  // The G samples of a prompt differ from each other.
  std::set<std::vector<int32_t>> group0(reference.begin(), reference.begin() + 4);
  CHECK(group0.size() > 1);
}

TEST_CASE("scoring overlaps generation: the first score lands before the last batch ends") {
  Policy& p = SharedPolicy();
  auto prompts = Prompts(*p.tokenizer);
  // 4 prompts x G=4 in micro-batches of 2: eight batches, generated one after another.
  rr::RolloutEngine engine(*p.model, *p.tokenizer, Options(4, 2, 1));
  std::atomic<int> calls{0};
  auto score = [&](const rr::RolloutPrompt&, const rr::Completion& c) {
    ++calls;
    return IndexReward(c);
  };
  rr::RolloutResult result = engine.Run(prompts, Sampling(3, 24), score);
  CHECK(calls == 16);
  const rr::RolloutStats& stats = result.stats;
  REQUIRE(stats.first_scored_at.has_value());
  REQUIRE(stats.micro_batch_finished_at.size() == 8);
  CHECK(*stats.first_scored_at < stats.micro_batch_finished_at.back());
  CHECK(*stats.first_scored_at < stats.generation_seconds);
  CHECK(stats.scoring_seconds >= 0);
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
  rr::RolloutEngine engine(*p.model, *p.tokenizer, Options(2, 8, 1));
  auto prompts = Prompts(*p.tokenizer);
  rr::RolloutResult result = engine.Run(prompts, Sampling(5), rr::ScoreWithReward(*reward));
  for (const auto& group : result.groups) {
    for (const auto& c : group.completions) {
      REQUIRE(c.reward.has_value());
      // The same sample scored directly gives the same result.
      rl::rewards::Sample sample;
      sample.prompt = prompts[group.prompt_index].prompt_text;
      sample.completion = c.text;
      sample.gold = *prompts[group.prompt_index].gold;
      sample.completion_tokens = static_cast<int64_t>(c.token_ids.size());
      rl::rewards::RewardResult direct = reward->Score(sample);
      CHECK(c.reward->status == direct.status);
      CHECK(c.reward->total == direct.total);
      REQUIRE(c.reward->components.size() == 3);
      // The length rule only scores when the token count was handed over.
      CHECK(c.reward->components[2].status == rl::rewards::ScoreStatus::kOk);
    }
  }
}

TEST_CASE("a failing scorer aborts the rollout and its error comes back") {
  Policy& p = SharedPolicy();
  rr::RolloutEngine engine(*p.model, *p.tokenizer, Options(2, 2, 2));
  auto score = [](const rr::RolloutPrompt&, const rr::Completion& c) -> rl::rewards::RewardResult {
    if (c.prompt_index == 1) throw std::runtime_error("reward server unreachable");
    return IndexReward(c);
  };
  CHECK_THROWS_WITH(engine.Run(Prompts(*p.tokenizer), Sampling(1), score),
                    Catch::Contains("reward server unreachable"));
}

TEST_CASE("bad options and prompts are refused by name") {
  Policy& p = SharedPolicy();
  auto engine_with = [&](auto mutate) {
    rr::RolloutOptions options;
    mutate(options);
    return rr::RolloutEngine(*p.model, *p.tokenizer, options);
  };
  CHECK_THROWS_WITH(engine_with([](auto& o) { o.group_size = 0; }), Catch::Contains("group_size"));
  CHECK_THROWS_WITH(engine_with([](auto& o) { o.micro_batch_size = 0; }),
                    Catch::Contains("micro_batch_size"));
  CHECK_THROWS_WITH(engine_with([](auto& o) { o.workers = 0; }), Catch::Contains("workers"));
  CHECK_THROWS_WITH(engine_with([](auto& o) { o.threads_per_worker = -1; }),
                    Catch::Contains("threads_per_worker"));
  CHECK_THROWS_WITH(engine_with([](auto& o) { o.scoring_threads = 0; }),
                    Catch::Contains("scoring_threads"));
  rr::RolloutEngine engine(*p.model, *p.tokenizer, Options(2, 2, 1));
  std::vector<rr::RolloutPrompt> empty_prompt = {{{}, "", std::nullopt}};
  CHECK_THROWS_WITH(engine.Run(empty_prompt, Sampling(1)), Catch::Contains("prompt 0"));
  rr::SamplingParams bad = Sampling(1);
  bad.top_p = 0;
  CHECK_THROWS_WITH(engine.Run(Prompts(*p.tokenizer), bad), Catch::Contains("top_p"));
  CHECK(engine.Run({}, Sampling(1)).groups.empty());
}

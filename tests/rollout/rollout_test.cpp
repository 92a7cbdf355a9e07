// The grouped rollout engine: G completions per prompt, the callback once per completion and
// overlapping generation, determinism across worker counts, errors.
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/types.h>
#include <torch/utils.h>

#include "tests/rollout/tiny_policy.h"

#include "tests/support/catch_torch.h"

#include "rollout/rollout.h"

namespace rr = rl::rollout;
using rl::rollout::testing::TinyModel;
using rl::rollout::testing::TinyTokenizer;
using rl::rollout::testing::Policy;
using rl::rollout::testing::SharedPolicy;
using rl::rollout::testing::EngineOptions;
using rl::rollout::testing::ScatteredSampling;

namespace {

std::vector<std::vector<int32_t>> Prompts(const rl::text::Tokenizer& tokenizer) {
  std::vector<std::vector<int32_t>> prompts;
  for (std::string text : {"What is 1/2 + 1/4?", "the lazy dog", "Compute 7 * 8.", "<think>"})
    prompts.push_back(tokenizer.Encode(text));
  return prompts;
}

}  // namespace

TEST_CASE("G completions per prompt, grouped in order, each handed to the callback exactly once") {
  Policy& p = SharedPolicy();
  auto prompts = Prompts(*p.tokenizer);
  rr::RolloutEngine engine(*p.model, *p.tokenizer, EngineOptions(/*G=*/3, /*micro=*/4, /*workers=*/2));
  std::mutex mutex;
  std::multiset<std::pair<int64_t, int64_t>> called;
  std::map<std::pair<int64_t, int64_t>, std::vector<int32_t>> seen;  // what each call saw
  auto on_finished = [&](const rr::Completion& c) {
    CHECK(c.token_ids.size() == c.logprobs.size());
    std::lock_guard lock(mutex);
    called.insert({c.prompt_index, c.sample_index});
    seen[{c.prompt_index, c.sample_index}] = c.token_ids;
  };
  rr::RolloutResult result = engine.Run(prompts, ScatteredSampling(1), on_finished);
  CHECK(called.size() == 12);
  CHECK(std::set<std::pair<int64_t, int64_t>>(called.begin(), called.end()).size() == 12);
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
      CHECK(seen[{c.prompt_index, j}] == c.token_ids);  // the callback saw this very completion
      CHECK_FALSE(c.token_ids.empty());
      tokens += static_cast<int64_t>(c.token_ids.size());
    }
  }
  CHECK(result.stats.completions == 12);
  CHECK(result.stats.generated_tokens == tokens);
  CHECK(result.stats.micro_batch_finished_at.size() == 2);  // one continuous call per worker
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
  rr::RolloutEngine one(*p.model, *p.tokenizer, EngineOptions(4, 4, 1));
  rr::RolloutEngine three(*p.model, *p.tokenizer, EngineOptions(4, 4, 3));
  auto reference = tokens_of(one.Run(prompts, ScatteredSampling(7)));
  CHECK(tokens_of(one.Run(prompts, ScatteredSampling(7))) == reference);
  CHECK(tokens_of(three.Run(prompts, ScatteredSampling(7))) == reference);
  auto ignore = [](const rr::Completion&) {};
  CHECK(tokens_of(three.Run(prompts, ScatteredSampling(7), ignore)) == reference);
  CHECK(tokens_of(one.Run(prompts, ScatteredSampling(8))) != reference);
  // Each sequence draws from its own stream: other micro-batch sizes give the same samples.
  rr::RolloutEngine wide(*p.model, *p.tokenizer, EngineOptions(4, 16, 1));
  CHECK(tokens_of(wide.Run(prompts, ScatteredSampling(7))) == reference);
  // The G samples of a prompt differ from each other.
  std::set<std::vector<int32_t>> group0(reference.begin(), reference.begin() + 4);
  CHECK(group0.size() > 1);
}

TEST_CASE("callbacks overlap generation: the first returns before the last batch ends") {
  Policy& p = SharedPolicy();
  auto prompts = Prompts(*p.tokenizer);
  // 4 prompts x G=4, two decoding at once: one continuous call, or eight static micro-batches
  // generated one after another.
  for (bool continuous : {true, false}) {
    rr::RolloutOptions options = EngineOptions(4, 2, 1);
    options.continuous_batching = continuous;
    rr::RolloutEngine engine(*p.model, *p.tokenizer, options);
    std::atomic<int> calls{0};
    auto count = [&](const rr::Completion&) { ++calls; };
    rr::RolloutResult result = engine.Run(prompts, ScatteredSampling(3, 24), count);
    CHECK(calls == 16);
    const rr::RolloutStats& stats = result.stats;
    REQUIRE(stats.first_callback_done_at.has_value());
    REQUIRE(stats.micro_batch_finished_at.size() == (continuous ? 1 : 8));
    CHECK(*stats.first_callback_done_at < stats.micro_batch_finished_at.back());
    CHECK(*stats.first_callback_done_at < stats.generation_seconds);
    CHECK(stats.callback_seconds >= 0);
  }
}

TEST_CASE("continuous and static batching give the same completions, with any worker count") {
  Policy& p = SharedPolicy();
  auto prompts = Prompts(*p.tokenizer);
  auto completions_of = [&](bool continuous, int64_t micro, int workers) {
    rr::RolloutOptions options = EngineOptions(4, micro, workers);
    options.continuous_batching = continuous;
    std::vector<rr::Completion> out;
    for (auto& g : rr::RolloutEngine(*p.model, *p.tokenizer, options).Run(prompts, ScatteredSampling(13, 16)).groups)
      for (auto& c : g.completions) out.push_back(std::move(c));
    return out;
  };
  const std::vector<rr::Completion> reference = completions_of(false, 4, 1);
  std::set<size_t> lengths;
  for (const rr::Completion& c : reference) lengths.insert(c.token_ids.size());
  CHECK(lengths.size() >= 3);
  for (auto [micro, workers] : {std::pair<int64_t, int>{4, 1}, {3, 1}, {4, 2}}) {
    const std::vector<rr::Completion> continuous = completions_of(true, micro, workers);
    REQUIRE(continuous.size() == reference.size());
    for (size_t k = 0; k < reference.size(); ++k) {
      INFO("micro-batch " << micro << ", workers " << workers << ", completion " << k);
      CHECK(continuous[k].token_ids == reference[k].token_ids);
      CHECK(continuous[k].finish_reason == reference[k].finish_reason);
      for (size_t t = 0; t < reference[k].logprobs.size(); ++t)
        CHECK(continuous[k].logprobs[t] == Approx(reference[k].logprobs[t]).margin(1e-4));
    }
  }
}

TEST_CASE("a failing callback aborts the rollout and its error comes back") {
  Policy& p = SharedPolicy();
  rr::RolloutEngine engine(*p.model, *p.tokenizer, EngineOptions(2, 2, 2));
  auto fail = [](const rr::Completion& c) {
    if (c.prompt_index == 1) throw std::runtime_error("reward server unreachable");
  };
  CHECK_THROWS_WITH(engine.Run(Prompts(*p.tokenizer), ScatteredSampling(1), fail),
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
  CHECK_THROWS_WITH(engine_with([](auto& o) { o.callback_threads = 0; }),
                    Catch::Contains("callback_threads"));
  rr::RolloutEngine engine(*p.model, *p.tokenizer, EngineOptions(2, 2, 1));
  std::vector<std::vector<int32_t>> empty_prompt = {{}};
  CHECK_THROWS_WITH(engine.Run(empty_prompt, ScatteredSampling(1)), Catch::Contains("prompt 0"));
  rr::SamplingParams bad = ScatteredSampling(1);
  bad.top_p = 0;
  CHECK_THROWS_WITH(engine.Run(Prompts(*p.tokenizer), bad), Catch::Contains("top_p"));
  CHECK(engine.Run({}, ScatteredSampling(1)).groups.empty());
}

// Data parallelism over c10d (trainer/distributed.h): ranks joined on loopback as threads of
// this process, their collectives, a missing or hung rank ending in an error within the
// timeout, and SFT over two ranks updating the policy as one process does.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/types.h>
#include "tests/support/catch_torch.h"

#include "tests/support/ports.h"
#include "rl/data/dataset.h"
#include "trainer/config.h"
#include "trainer/distributed.h"
#include "trainer/evaluate.h"
#include "trainer/grpo.h"
#include "trainer/policy.h"
#include "trainer/scoring.h"
#include "trainer/sft.h"

using namespace rl::trainer;
using std::chrono::milliseconds;

namespace {

WorldSpec Spec(int rank, int size, int port) {
  WorldSpec spec;
  spec.rank = rank;
  spec.world_size = size;
  spec.local_rank = rank;
  spec.local_world_size = size;
  spec.master_addr = "127.0.0.1";
  spec.master_port = port;
  return spec;
}

// Runs body(world) on `size` ranks, one thread each, joined on a fresh port; returns what each
// rank's body returned, in rank order (rethrowing the first rank's exception).
template <class Body>
auto OnRanks(int size, Body body, milliseconds timeout = milliseconds(20000)) {
  const int port = rl::testing::FreeLoopbackPort();
  std::vector<std::future<decltype(body(std::declval<World&>()))>> ranks;
  for (int r = 0; r < size; ++r) {
    ranks.push_back(std::async(std::launch::async, [=] {
      World world = World::Join(Spec(r, size, port), timeout);
      return body(world);
    }));
  }
  std::vector<decltype(body(std::declval<World&>()))> results;
  for (auto& rank : ranks) results.push_back(rank.get());
  return results;
}

}  // namespace

TEST_CASE("one process: collectives are identities, the shard is everything", "[distributed]") {
  World world;
  CHECK(world.size() == 1);
  CHECK(world.is_main());
  CHECK(world.Shard(10) == std::pair<int64_t, int64_t>{0, 10});
  CHECK(world.Sum(2.5) == 2.5);
  torch::Tensor p = torch::ones({3}, torch::requires_grad());
  GradientSum sum(world, {p});
  CHECK(sum.buckets() == 0);
  sum.Arm();
  (p * 2).sum().backward();
  sum.Finish();
  CHECK(torch::equal(p.grad(), torch::full({3}, 2.0f)));
}

TEST_CASE("the torchrun environment, and its errors by variable", "[distributed]") {
  unsetenv("WORLD_SIZE");
  CHECK_FALSE(WorldFromEnvironment().has_value());
  setenv("WORLD_SIZE", "4", 1);
  setenv("RANK", "2", 1);
  setenv("MASTER_ADDR", "node-0", 1);
  setenv("MASTER_PORT", "29400", 1);
  unsetenv("LOCAL_RANK");
  unsetenv("LOCAL_WORLD_SIZE");
  std::optional<WorldSpec> spec = WorldFromEnvironment();
  REQUIRE(spec.has_value());
  CHECK(spec->rank == 2);
  CHECK(spec->world_size == 4);
  CHECK(spec->local_rank == 2);  // one machine unless told otherwise
  CHECK(spec->local_world_size == 4);
  CHECK(spec->master_addr == "node-0");
  CHECK(spec->master_port == 29400);
  CHECK_FALSE(spec->launcher_store);
  setenv("TORCHELASTIC_USE_AGENT_STORE", "True", 1);  // torchrun's agent serves the store
  CHECK(WorldFromEnvironment()->launcher_store);
  setenv("TORCHELASTIC_USE_AGENT_STORE", "true", 1);  // PyTorch compares with "True" exactly
  CHECK_FALSE(WorldFromEnvironment()->launcher_store);
  unsetenv("TORCHELASTIC_USE_AGENT_STORE");
  setenv("LOCAL_WORLD_SIZE", "2", 1);
  setenv("LOCAL_RANK", "1", 1);
  CHECK(WorldFromEnvironment()->local_rank == 1);
  setenv("RANK", "4", 1);
  CHECK_THROWS_WITH(WorldFromEnvironment(), "environment variable RANK: expected an integer from 0 to 3, got '4'");
  setenv("RANK", "1x", 1);
  CHECK_THROWS_WITH(WorldFromEnvironment(), Catch::Contains("RANK: expected an integer"));
  unsetenv("RANK");
  CHECK_THROWS_WITH(WorldFromEnvironment(), Catch::StartsWith("environment variable RANK is not set"));
  setenv("RANK", "1", 1);
  unsetenv("MASTER_ADDR");
  CHECK_THROWS_WITH(WorldFromEnvironment(), Catch::StartsWith("environment variable MASTER_ADDR is not set"));
  for (const char* name : {"WORLD_SIZE", "RANK", "MASTER_PORT", "LOCAL_RANK", "LOCAL_WORLD_SIZE"}) unsetenv(name);
}

TEST_CASE("two ranks: shards, sums and summed gradients", "[distributed]") {
  const auto results = OnRanks(2, [](World& world) {
    torch::Tensor a = torch::zeros({2, 2}, torch::requires_grad());
    torch::Tensor b = torch::zeros({3}, torch::requires_grad());
    const double r = world.rank();
    GradientSum sum(world, {a, b});
    (a * (r + 1)).sum().backward();  // b gets no gradient on either rank
    sum.Finish();                    // not armed: sums what .grad holds
    return std::vector<double>{world.Sum(r + 1), a.grad()[0][0].item<double>(), b.grad().abs().sum().item<double>(),
                               static_cast<double>(world.Shard(5).first), static_cast<double>(world.Shard(5).second)};
  });
  CHECK(results[0] == std::vector<double>{3, 3, 0, 0, 3});  // rank 0: rows [0, 3)
  CHECK(results[1] == std::vector<double>{3, 3, 0, 3, 5});  // rank 1: rows [3, 5)
}

namespace {

// A small network's parameters, the same on every call.
std::vector<torch::Tensor> Network() {
  return {(torch::arange(12, torch::kFloat32).view({3, 4}) / 10).requires_grad_(),
          torch::linspace(-1, 1, 8).view({4, 2}).requires_grad_(), torch::full({2}, 0.5f).requires_grad_(),
          torch::zeros({5}, torch::requires_grad())};  // the last is never used
}

torch::Tensor Loss(const std::vector<torch::Tensor>& p, float x) {
  return (torch::full({1, 3}, x).mm(p[0]).tanh().mm(p[1]) + p[2]).pow(2).sum();
}

}  // namespace

TEST_CASE("two ranks: gradients summed in buckets while backward runs, micro-batches and empty shares alike",
          "[distributed]") {
  // Update 1: rank 0 accumulates two micro-batches (x = 1, 2), rank 1 one (x = 3). Update 2:
  // rank 0 holds no rows (no backward at all), rank 1 one micro-batch (x = 4).
  const auto results = OnRanks(2, [](World& world) {
    std::vector<torch::Tensor> p = Network();
    GradientSum sum(world, p, /*bucket_bytes=*/16);  // a bucket per parameter or two
    std::vector<torch::Tensor> grads;
    if (world.rank() == 0) {
      Loss(p, 1).backward();
      sum.Arm();
      Loss(p, 2).backward();
    } else {
      sum.Arm();
      Loss(p, 3).backward();
    }
    sum.Finish();
    for (const auto& t : p) grads.push_back(t.grad().clone());
    for (auto& t : p) t.mutable_grad().zero_();
    if (world.rank() == 1) {
      sum.Arm();
      Loss(p, 4).backward();
    }
    sum.Finish();
    for (const auto& t : p) grads.push_back(t.grad().clone());
    return std::make_pair(sum.buckets(), grads);
  });
  // The same sums in one process, without the ranks.
  std::vector<torch::Tensor> p = Network();
  std::vector<torch::Tensor> expected;
  (Loss(p, 1) + Loss(p, 2) + Loss(p, 3)).backward();
  for (const auto& t : p) expected.push_back(t.grad().defined() ? t.grad().clone() : torch::zeros_like(t));
  for (auto& t : p) t.mutable_grad() = torch::Tensor();
  Loss(p, 4).backward();
  for (const auto& t : p) expected.push_back(t.grad().defined() ? t.grad().clone() : torch::zeros_like(t));
  for (const auto& [buckets, grads] : results) {
    CHECK(buckets >= 3);
    REQUIRE(grads.size() == expected.size());
    for (size_t i = 0; i < grads.size(); ++i) {
      INFO("gradient " << i);
      CHECK(torch::allclose(grads[i], expected[i], 1e-6, 1e-6));  // float32 sums in another order
    }
  }
  CHECK(torch::equal(results[0].second[0], results[1].second[0]));  // the same bits on every rank
}

TEST_CASE("a store the launcher serves: rank 0 joins it as a client, as the others do", "[distributed]") {
  c10d::TCPStoreOptions options;
  options.port = 0;  // the system picks
  options.isServer = true;
  options.waitWorkers = false;
  c10d::TCPStore store("127.0.0.1", options);
  std::vector<std::future<double>> ranks;
  for (int r = 0; r < 2; ++r) {
    ranks.push_back(std::async(std::launch::async, [&store, r] {
      WorldSpec spec = Spec(r, 2, store.getPort());
      spec.launcher_store = true;  // else rank 0 would try to serve on the port the store holds
      return World::Join(spec, milliseconds(20000)).Sum(r + 1);
    }));
  }
  for (auto& rank : ranks) CHECK(rank.get() == 3);
}

TEST_CASE("a rank that never joins ends the rendezvous in an error", "[distributed][timeout]") {
  const int port = rl::testing::FreeLoopbackPort();
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(World::Join(Spec(0, 2, port), milliseconds(1500)),
                    Catch::StartsWith("rank 0 of 2: joining the ranks at 127.0.0.1:" + std::to_string(port) + " failed"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));
}

TEST_CASE("a rank that stops taking part ends the others' collective in an error", "[distributed][timeout]") {
  const auto results = OnRanks(2, [](World& world) {
    world.Barrier();
    if (world.rank() == 1) {
      std::this_thread::sleep_for(milliseconds(10000));  // hung: no collective for longer than the timeout
      return std::string("idle");
    }
    try {
      world.Sum(1);
      return std::string("no error");
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
  }, milliseconds(4000));  // long enough for the rendezvous on a loaded machine, which shares the bound
  CHECK_THAT(results[0], Catch::StartsWith("rank 0: a sum across ranks failed"));
}

namespace {

TrainConfig SftConfig() {
  return ParseTrainConfig(R"(
run: {seed: 3, threads: 1}
model:
  tiny: {hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2,
         num_key_value_heads: 1, max_position_embeddings: 64}
tokenizer: {train_vocab_size: 280}
sft: {steps: 6, batch_size: 5, learning_rate: 1e-2, max_length: 48}
)",
                          "distributed-sft-test");
}

std::vector<rl::data::Example> SftExamples() {
  std::vector<rl::data::Example> examples;
  for (int i = 1; i <= 9; ++i) {
    const std::string a = std::to_string(i), b = std::to_string(i + 2);
    examples.push_back({"Compute 1/" + a + " + 1/" + b + ".", "", "<think>add</think><answer>" + a + b + "</answer>"});
  }
  return examples;
}

struct SftRun {
  std::vector<torch::Tensor> initial, weights;
  std::vector<double> losses;
};

// A tiny policy as every rank makes it (the same seeded initial weights). Made before any rank
// thread starts: initialisation draws from LibTorch's global generator, which threads share
// (ranks in processes of their own do not).
Policy TinySftPolicy() {
  std::vector<std::string> corpus;
  for (const auto& e : SftExamples()) corpus.push_back(e.prompt + e.response);
  return MakeTinyPolicy(SftConfig(), corpus);
}

SftRun RunTinySft(Policy& policy, const World& world) {
  const TrainConfig config = SftConfig();
  SftRun run;
  for (const torch::Tensor& p : policy.model->parameters()) run.initial.push_back(p.detach().clone());
  RunSft(policy, config, SftExamples(), [&](const nlohmann::json& line) { run.losses.push_back(line["loss"]); }, world);
  for (const torch::Tensor& p : policy.model->parameters()) run.weights.push_back(p.detach().clone());
  return run;
}

}  // namespace

TEST_CASE("SFT over two ranks updates the policy as one process does", "[distributed][sft]") {
  Policy one = TinySftPolicy();
  const SftRun single = RunTinySft(one, World());
  // Batches of 5 split 3 + 2: uneven shards, each padded to its own longest row.
  std::vector<Policy> policies;
  policies.push_back(TinySftPolicy());
  policies.push_back(TinySftPolicy());
  const std::vector<SftRun> ranks =
      OnRanks(2, [&](World& world) { return RunTinySft(policies[static_cast<size_t>(world.rank())], world); });
  REQUIRE(ranks[0].losses.size() == 6);
  CHECK(ranks[0].losses == ranks[1].losses);  // every rank reports the global figures
  for (size_t i = 0; i < single.losses.size(); ++i) CHECK(ranks[0].losses[i] == Approx(single.losses[i]).epsilon(1e-5));
  REQUIRE(ranks[0].weights.size() == single.weights.size());
  double moved = 0, apart = 0;
  for (size_t i = 0; i < single.weights.size(); ++i) {
    REQUIRE(torch::equal(ranks[0].initial[i], single.initial[i]));  // the same start
    moved = std::max(moved, (single.weights[i] - single.initial[i]).abs().max().item<double>());
    apart = std::max(apart, (ranks[0].weights[i] - single.weights[i]).abs().max().item<double>());
    // The ranks apply identical updates (the same summed gradients), so they agree exactly.
    CHECK(torch::equal(ranks[0].weights[i], ranks[1].weights[i]));
    // Against one process only the order of float additions differs (two partial sums of the
    // loss and gradients instead of one), amplified over 6 AdamW steps at lr 1e-2: float32
    // rounding, far below a step's change.
    CHECK(torch::allclose(ranks[0].weights[i], single.weights[i], /*rtol=*/1e-4, /*atol=*/1e-5));
  }
  INFO("largest change of a weight " << moved << ", largest difference from one process " << apart);
  CHECK(moved > 1e-2);  // SFT did move the weights: the agreement is not that of untouched copies
  CHECK(apart < moved * 1e-3);
}

TEST_CASE("evaluation over two ranks: each samples its share, every rank gets one process's figures",
          "[distributed][eval]") {
  TrainConfig config = SftConfig();
  config.eval.num_problems = 7;
  config.eval.num_samples = 2;  // 14 completions: 7 + 7, in batches of 3 of other rows than one process's
  config.eval.temperature = 1.0;
  config.eval.max_new_tokens = 12;
  config.rollout.batch_size = 3;
  const std::vector<rl::data::Example> problems = SftExamples();
  Policy one = TinySftPolicy();
  const EvalResult single = Evaluate(one, config, problems, World());
  std::vector<Policy> policies;
  policies.push_back(TinySftPolicy());
  policies.push_back(TinySftPolicy());
  const std::vector<EvalResult> ranks = OnRanks(
      2, [&](World& world) { return Evaluate(policies[static_cast<size_t>(world.rank())], config, problems, world); });
  REQUIRE(single.completions == 14);
  CHECK(single.mean_length > 1);  // sampled text, not empty completions
  for (const EvalResult& r : ranks) {
    CHECK(r.problems == single.problems);
    CHECK(r.completions == single.completions);
    CHECK(r.format_rate == single.format_rate);
    CHECK(r.accuracy == single.accuracy);
    CHECK(r.mean_length == single.mean_length);  // the same lengths: the same draws
  }
}

namespace {

// Two GRPO steps of a tiny policy: 4 prompts per step (two per rank), G = 3, two passes over
// each batch (old log-probs), batch-scaled advantages, and dynamic sampling's extra rounds.
TrainConfig GrpoConfig() {
  return ParseTrainConfig(R"(
run: {seed: 4, threads: 1}
model:
  tiny: {hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2,
         num_key_value_heads: 1, max_position_embeddings: 64}
tokenizer: {train_vocab_size: 280}
data: {shuffle: false}
rollout: {num_generations: 3, max_new_tokens: 6, batch_size: 4}
grpo: {steps: 2, prompts_per_step: 4, learning_rate: 1e-2, num_iterations: 2, loss_type: grpo,
       scale_rewards: batch, dynamic_sampling: true, dynamic_sampling_max_rounds: 3}
)",
                          "distributed-grpo-test");
}

std::vector<rl::data::Example> GrpoPrompts() {
  std::vector<rl::data::Example> prompts;
  for (int k = 1; k <= 10; ++k) prompts.push_back({"Compute " + std::to_string(k) + "/7 + 1/7.", "x", ""});
  return prompts;
}

Policy TinyGrpoPolicy() {
  std::vector<std::string> corpus;
  for (const auto& e : GrpoPrompts()) corpus.push_back(e.prompt + " <think>a b</think><answer>2/7</answer>");
  return MakeTinyPolicy(GrpoConfig(), corpus);
}

// Every completion scored, as "prompt | sample | text | reward". The reward is the sum of the
// completion's token ids mod 3, except for the prompts of even k, whose groups all score 1 (no
// signal): dynamic sampling needs extra rounds to fill its batch.
struct Recorder {
  std::mutex mutex;
  std::vector<std::string> scored;
  bool all_flat = false;  // every group scores 1 (no signal)

  ScoreFn Scorer() {
    return [this](const Prompt& prompt, const rl::rollout::Completion& c) {
      rl::rewards::RewardResult r;
      int64_t sum = 0;
      for (int32_t id : c.token_ids) sum += id;
      const bool flat = all_flat || std::stoi(prompt.text.substr(prompt.text.find(' ') + 1)) % 2 == 0;
      r.total = flat ? 1.0 : static_cast<double>(sum % 3);
      std::lock_guard<std::mutex> lock(mutex);
      scored.push_back(prompt.text + " | " + std::to_string(c.sample_index) + " | " + c.text + " | " +
                       std::to_string(*r.total));
      return r;
    };
  }
};

struct GrpoRun {
  std::vector<nlohmann::ordered_json> metrics;
  std::vector<torch::Tensor> weights;
};

GrpoRun RunTinyGrpo(Policy& policy, Recorder& recorder, const World& world) {
  const TrainConfig config = GrpoConfig();
  const std::vector<rl::data::Example> prompts = GrpoPrompts();
  GrpoTrainer trainer(config, policy, nullptr, prompts, recorder.Scorer(), world);
  GrpoRun run;
  while (trainer.step() < config.grpo.steps) run.metrics.push_back(trainer.Step());
  for (const torch::Tensor& p : policy.model->parameters()) run.weights.push_back(p.detach().clone());
  return run;
}

}  // namespace

TEST_CASE("GRPO over two ranks samples, scores and updates as one process does", "[distributed][grpo]") {
  Policy one = TinyGrpoPolicy();
  std::vector<torch::Tensor> initial;
  for (const torch::Tensor& p : one.model->parameters()) initial.push_back(p.detach().clone());
  Recorder single_scores;
  const GrpoRun single = RunTinyGrpo(one, single_scores, World());
  std::vector<Policy> policies;
  policies.push_back(TinyGrpoPolicy());
  policies.push_back(TinyGrpoPolicy());
  Recorder rank_scores;  // both ranks' completions together
  const std::vector<GrpoRun> ranks = OnRanks(2, [&](World& world) {
    return RunTinyGrpo(policies[static_cast<size_t>(world.rank())], rank_scores, world);
  });

  // The same completions with the same rewards, split between the ranks.
  std::sort(single_scores.scored.begin(), single_scores.scored.end());
  std::sort(rank_scores.scored.begin(), rank_scores.scored.end());
  CHECK(rank_scores.scored == single_scores.scored);
  CHECK(single_scores.scored.size() > 24);  // two steps of 4 prompts x 3, and extra rounds
  CHECK(single.metrics[0]["dynamic_sampling/rounds"].get<int64_t>() > 1);

  REQUIRE(ranks[0].metrics.size() == 2);
  for (size_t step = 0; step < 2; ++step) {
    const auto& m = single.metrics[step];
    for (const auto& rank : ranks) {
      const auto& r = rank.metrics[step];
      // Sampling and selection figures come from the same table: equal exactly.
      for (const char* key : {"reward", "reward_std", "reward_std_within_group", "frac_reward_zero_std",
                              "completions/mean_length", "completions/clipped_ratio",
                              "completions/min_terminated_length", "completions/max_terminated_length",
                              "dynamic_sampling/rounds", "dynamic_sampling/kept_groups", "num_tokens", "epoch"}) {
        INFO("step " << step << ", " << key);
        CHECK(r[key] == m[key]);
      }
      // Loss figures are sums of two partial sums: equal up to float rounding.
      for (const char* key : {"loss", "grad_norm", "entropy", "clip_ratio/region_mean"}) {
        INFO("step " << step << ", " << key);
        CHECK(r[key].get<double>() == Approx(m[key].get<double>()).epsilon(1e-4).margin(1e-6));
      }
    }
  }
  double moved = 0, apart = 0;
  for (size_t i = 0; i < single.weights.size(); ++i) {
    CHECK(torch::equal(ranks[0].weights[i], ranks[1].weights[i]));  // the same update on every rank
    apart = std::max(apart, (ranks[0].weights[i] - single.weights[i]).abs().max().item<double>());
    moved = std::max(moved, (single.weights[i] - initial[i]).abs().max().item<double>());
  }
  INFO("largest change of a weight " << moved << ", largest difference from one process " << apart);
  CHECK(moved > 1e-3);          // the steps did update the policy
  CHECK(apart < moved * 1e-3);  // float32 rounding of the split sums
}

TEST_CASE("GRPO over two ranks when one rank holds none of the kept groups", "[distributed][grpo]") {
  // Rank 1's groups never have signal, so dynamic sampling keeps rank 0's alone: rank 1 has no
  // rows to train on but takes part in every sum, and applies the same update.
  std::vector<Policy> policies;
  policies.push_back(TinyGrpoPolicy());
  policies.push_back(TinyGrpoPolicy());
  std::vector<torch::Tensor> initial;
  for (const torch::Tensor& p : policies[0].model->parameters()) initial.push_back(p.detach().clone());
  Recorder recorders[2];
  recorders[1].all_flat = true;
  const std::vector<GrpoRun> ranks = OnRanks(2, [&](World& world) {
    const auto r = static_cast<size_t>(world.rank());
    return RunTinyGrpo(policies[r], recorders[r], world);
  });
  REQUIRE(ranks[1].metrics.size() == 2);
  CHECK(ranks[1].metrics[0]["dynamic_sampling/kept_groups"].get<int64_t>() > 0);
  CHECK(ranks[1].metrics[0]["loss"] == ranks[0].metrics[0]["loss"]);
  double moved = 0;
  for (size_t i = 0; i < initial.size(); ++i) {
    CHECK(torch::equal(ranks[0].weights[i], ranks[1].weights[i]));
    moved = std::max(moved, (ranks[1].weights[i] - initial[i]).abs().max().item<double>());
  }
  CHECK(moved > 1e-3);  // rank 1 applied rank 0's gradients
}

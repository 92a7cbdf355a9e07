// GRPO steps of a tiny random model whose rewards are scripted by each prompt's gold answer,
// so that which groups have reward signal is known in advance: DAPO's dynamic sampling
// through the trainer's real sample → score → select → update path, and sampling from a bf16
// copy of the policy (rollout.dtype).
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>
#include <torch/utils.h>
#include "tests/support/catch_torch.h"

#include "rl/data/dataset.h"
#include "trainer/config.h"
#include "trainer/distributed.h"
#include "trainer/grpo.h"
#include "trainer/policy.h"
#include "trainer/scoring.h"

using namespace rl::trainer;

namespace {

const World kOneProcess;  // GRPO in one process

// The reward of a completion, by its prompt's gold answer:
//   "flat"   : 0.1 for all three completions (all equal, though their float std is ~1e-17);
//   "varied" : the completion's sample index 0, 1, 2 (signal);
//   "one"    : sample 0 scores 1, the others are unscorable (one scored reward: no signal).
rl::rewards::RewardResult ScriptedReward(const rl::trainer::Prompt& prompt,
                                         const rl::rollout::Completion& completion) {
  rl::rewards::RewardResult r;
  if (prompt.gold == "flat") r.total = 0.1;
  if (prompt.gold == "varied") r.total = static_cast<double>(completion.sample_index);
  if (prompt.gold == "one" && completion.sample_index == 0) r.total = 1.0;
  return r;
}

// Two prompts per step, three completions each; prompts drawn in file order (no shuffle).
TrainConfig DynamicConfig(int64_t max_rounds, int64_t mini_batches) {
  TrainConfig c = ParseTrainConfig(R"(
run: {seed: 5, threads: 1}
model:
  tiny: {hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2,
         num_key_value_heads: 1, max_position_embeddings: 64}
tokenizer: {train_vocab_size: 280}
data: {shuffle: false}
rollout: {num_generations: 3, max_new_tokens: 6, batch_size: 16}
grpo: {steps: 1, prompts_per_step: 2, learning_rate: 1e-2, dynamic_sampling: true}
)",
                                   "grpo-step-test");
  c.grpo.dynamic_sampling_max_rounds = max_rounds;
  c.grpo.num_mini_batches = mini_batches;
  return c;
}

std::vector<rl::data::Example> Prompts(const std::vector<std::string>& golds) {
  std::vector<rl::data::Example> prompts;
  for (const std::string& gold : golds) prompts.push_back({"Compute 1/2 + 1/4.", gold, ""});
  return prompts;
}

Policy TinyPolicy(const TrainConfig& config) {
  std::vector<std::string> corpus = {"Compute 1/2 + 1/4.\n<think>2/4 + 1/4 = 3/4</think><answer>3/4</answer>"};
  return MakeTinyPolicy(config, corpus);
}

std::vector<torch::Tensor> Snapshot(Policy& policy) {
  std::vector<torch::Tensor> copies;
  for (const torch::Tensor& p : policy.model->parameters()) copies.push_back(p.detach().clone());
  return copies;
}

bool Unchanged(Policy& policy, const std::vector<torch::Tensor>& before) {
  std::vector<torch::Tensor> now = policy.model->parameters();
  for (size_t i = 0; i < now.size(); ++i) {
    if (!torch::equal(now[i], before[i])) return false;
  }
  return true;
}

// Two prompts per step, three completions each, every group with signal.
TrainConfig SamplingConfig(Precision dtype) {
  TrainConfig c = DynamicConfig(/*max_rounds=*/1, /*mini_batches=*/1);
  c.grpo.dynamic_sampling = false;
  c.grpo.steps = 2;
  c.rollout.dtype = dtype;
  return c;
}

// Scores as ScriptedReward and keeps the sampler's per-token log-probs of each completion.
struct SamplerLogprobs {
  std::mutex mutex;
  std::map<std::pair<int64_t, int64_t>, std::vector<float>> by_sequence;  // (prompt, sample)

  ScoreFn Scorer() {
    return [this](const Prompt& prompt, const rl::rollout::Completion& completion) {
      std::lock_guard<std::mutex> lock(mutex);  // the scorer runs on several threads
      by_sequence[{completion.prompt_index, completion.sample_index}] = completion.logprobs;
      return ScriptedReward(prompt, completion);
    };
  }
};

// Scores as ScriptedReward and keeps the weights the trainer sampled with, as they were at the
// last score: the bf16 copy exists only while a step samples.
struct SampledWeights {
  const GrpoTrainer* trainer = nullptr;
  std::mutex mutex;
  std::vector<torch::Tensor> last;

  ScoreFn Scorer() {
    return [this](const Prompt& prompt, const rl::rollout::Completion& completion) {
      std::vector<torch::Tensor> now;
      for (const torch::Tensor& w : trainer->sampling_model()->parameters()) now.push_back(w.detach().clone());
      std::lock_guard<std::mutex> lock(mutex);  // the scorer runs on several threads
      last = std::move(now);
      return ScriptedReward(prompt, completion);
    };
  }

  // Whether they were exactly `weights` (the policy's, in order) rounded to bf16.
  bool Were(const std::vector<torch::Tensor>& weights) {
    for (size_t i = 0; i < last.size(); ++i) {
      if (!torch::equal(last[i], weights[i].to(torch::kBFloat16))) return false;
    }
    return !last.empty();
  }
};

void CheckFinite(const nlohmann::ordered_json& metrics) {
  for (const auto& [key, value] : metrics.items()) {
    INFO(key);
    if (value.is_number()) CHECK(std::isfinite(value.get<double>()));
  }
}

}  // namespace

TEST_CASE("rollout.dtype bfloat16 samples with a bf16 copy of the policy", "[grpo][rollout_dtype]") {
  const std::vector<rl::data::Example> prompts = Prompts({"varied", "varied"});
  // The sampler's log-probs of the first step's completions, same seed, same initial policy.
  auto first_step = [&](Precision dtype) {
    const TrainConfig config = SamplingConfig(dtype);
    Policy policy = TinyPolicy(config);
    SamplerLogprobs recorded;
    GrpoTrainer trainer(config, policy, nullptr, prompts, recorded.Scorer(), kOneProcess);
    if (dtype == Precision::kFloat32) {
      CHECK(trainer.sampling_model() == policy.model.get());  // no copy: today's sampling
    } else {
      CHECK(trainer.sampling_model() == nullptr);  // the copy is made when a step samples
    }
    trainer.Step();
    if (dtype == Precision::kBFloat16) CHECK(trainer.sampling_model() == nullptr);  // and dropped before the update
    return recorded.by_sequence;
  };
  const auto float32 = first_step(Precision::kFloat32);
  const auto bfloat16 = first_step(Precision::kBFloat16);
  CHECK(float32.size() == 6);
  CHECK(bfloat16.size() == 6);
  CHECK(first_step(Precision::kFloat32) == float32);  // deterministic: a difference is the dtype's
  CHECK(bfloat16 != float32);
}

TEST_CASE("the bf16 sampling copy is made from the updated policy at every step", "[grpo][rollout_dtype]") {
  const TrainConfig config = SamplingConfig(Precision::kBFloat16);
  Policy policy = TinyPolicy(config);
  const std::vector<rl::data::Example> prompts = Prompts({"varied", "varied", "varied", "varied"});
  SampledWeights sampled;
  GrpoTrainer trainer(config, policy, nullptr, prompts, sampled.Scorer(), kOneProcess);
  sampled.trainer = &trainer;
  const std::vector<torch::Tensor> initial = Snapshot(policy);

  nlohmann::ordered_json first = trainer.Step();
  CheckFinite(first);
  CHECK(first["grad_norm"].get<double>() > 0.0);
  CHECK_FALSE(Unchanged(policy, initial));
  CHECK(sampled.Were(initial));  // step 1 sampled the initial policy
  const std::vector<torch::Tensor> updated = Snapshot(policy);

  nlohmann::ordered_json second = trainer.Step();
  CheckFinite(second);
  CHECK(sampled.Were(updated));  // step 2 sampled the policy step 1 left
  CHECK_FALSE(sampled.Were(initial));
}

TEST_CASE("dynamic sampling drops groups without signal and samples rounds until the batch is full",
          "[grpo][dynamic]") {
  const TrainConfig config = DynamicConfig(/*max_rounds=*/4, /*mini_batches=*/1);
  Policy policy = TinyPolicy(config);
  // Round 1: flat (dropped), varied (kept). Round 2: flat, one (both dropped). Round 3:
  // varied (kept: the batch is full), varied (signal, but no room left).
  const std::vector<rl::data::Example> prompts = Prompts({"flat", "varied", "flat", "one", "varied", "varied", "flat"});
  GrpoTrainer trainer(config, policy, nullptr, prompts, ScriptedReward, kOneProcess);
  nlohmann::ordered_json m = trainer.Step();
  CHECK(m["dynamic_sampling/rounds"] == 3);
  CHECK(m["dynamic_sampling/kept_groups"] == 2);
  CHECK(trainer.State()["data_offset"] == 6);  // three rounds drew 3 × 2 prompts
  CHECK(m["frac_reward_zero_std"].get<double>() == 3.0 / 6.0);  // flat, flat, one of 6 groups
  CHECK(m["unscorable"] == 2);
  // Over every scored completion sampled: 0.1 ×6, 0+1+2 ×3 and 1 of 16.
  CHECK(m["reward"].get<double>() == Approx((0.6 + 9.0 + 1.0) / 16.0));
  CHECK(m["grad_norm"].get<double>() > 0.0);
}

TEST_CASE("dynamic sampling stops after max_rounds and trains on the short batch", "[grpo][dynamic]") {
  // Six mini-batches for a full batch of 2 × 3 rows; the short batch has 3 rows, fewer than
  // the mini-batches: each row still lands in one of them.
  const TrainConfig config = DynamicConfig(/*max_rounds=*/2, /*mini_batches=*/6);
  Policy policy = TinyPolicy(config);
  const std::vector<rl::data::Example> prompts = Prompts({"flat", "varied", "flat", "flat", "varied", "varied"});
  GrpoTrainer trainer(config, policy, nullptr, prompts, ScriptedReward, kOneProcess);
  const std::vector<torch::Tensor> before = Snapshot(policy);
  nlohmann::ordered_json m = trainer.Step();
  CHECK(m["dynamic_sampling/rounds"] == 2);
  CHECK(m["dynamic_sampling/kept_groups"] == 1);
  CHECK(trainer.State()["data_offset"] == 4);
  CHECK(m["frac_reward_zero_std"].get<double>() == 3.0 / 4.0);
  CHECK(m["grad_norm"].get<double>() > 0.0);
  CHECK_FALSE(Unchanged(policy, before));
  CHECK(trainer.State()["updates"] == 6);  // the learning-rate schedule advanced by a full step
}

TEST_CASE("a step whose groups all lack signal skips the update", "[grpo][dynamic]") {
  const TrainConfig config = DynamicConfig(/*max_rounds=*/3, /*mini_batches=*/2);
  Policy policy = TinyPolicy(config);
  const std::vector<rl::data::Example> prompts = Prompts({"flat", "one"});
  GrpoTrainer trainer(config, policy, nullptr, prompts, ScriptedReward, kOneProcess);
  const std::vector<torch::Tensor> before = Snapshot(policy);
  nlohmann::ordered_json m = trainer.Step();
  CHECK(m["dynamic_sampling/rounds"] == 3);
  CHECK(m["dynamic_sampling/kept_groups"] == 0);
  CHECK(m["frac_reward_zero_std"].get<double>() == 1.0);
  CHECK(m["loss"].get<double>() == 0.0);
  CHECK(m["grad_norm"].get<double>() == 0.0);
  CHECK(Unchanged(policy, before));
  CHECK(trainer.step() == 1);
  CHECK(trainer.State()["updates"] == 2);
}

TEST_CASE("without dynamic sampling one round is sampled and every group kept", "[grpo][dynamic]") {
  // The same round (same seed, same prompts) with dynamic sampling on and off: off keeps the
  // flat group too, so its batch holds more tokens.
  const std::vector<rl::data::Example> prompts = Prompts({"flat", "varied", "varied"});
  auto step = [&](bool dynamic) {
    TrainConfig config = DynamicConfig(/*max_rounds=*/1, /*mini_batches=*/1);
    config.grpo.dynamic_sampling = dynamic;
    Policy policy = TinyPolicy(config);
    GrpoTrainer trainer(config, policy, nullptr, prompts, ScriptedReward, kOneProcess);
    nlohmann::ordered_json m = trainer.Step();
    CHECK(trainer.State()["data_offset"] == 2);
    CHECK(m["frac_reward_zero_std"].get<double>() == 0.5);
    return m;
  };
  nlohmann::ordered_json on = step(true);
  nlohmann::ordered_json off = step(false);
  CHECK(on["dynamic_sampling/kept_groups"] == 1);
  CHECK_FALSE(off.contains("dynamic_sampling/rounds"));
  CHECK(off["num_tokens"].get<double>() > on["num_tokens"].get<double>());
}

TEST_CASE("step metrics under TRL's names: reward_std of all rewards, the within-group one, epoch",
          "[grpo][metrics]") {
  const TrainConfig config = SamplingConfig(Precision::kFloat32);  // 2 prompts of 4 per step
  Policy policy = TinyPolicy(config);
  const std::vector<rl::data::Example> prompts = Prompts({"varied", "varied", "varied", "varied"});
  GrpoTrainer trainer(config, policy, nullptr, prompts, ScriptedReward, kOneProcess);
  nlohmann::ordered_json m = trainer.Step();
  // Rewards 0 1 2 | 0 1 2: unbiased std of all six sqrt(4/5); each group's std is 1.
  CHECK(m["reward_std"].get<double>() == Approx(std::sqrt(0.8)));
  CHECK(m["reward_std_within_group"].get<double>() == Approx(1.0));
  CHECK(m["epoch"].get<double>() == 0.5);
  // One update on the sampled batch: every ratio is 1, nothing is clipped in any sequence.
  CHECK(m["clip_ratio/low_min"].get<double>() == 0.0);
  CHECK(m["clip_ratio/high_max"].get<double>() == 0.0);
  const double min_terminated = m["completions/min_terminated_length"].get<double>();
  const double max_terminated = m["completions/max_terminated_length"].get<double>();
  if (m["completions/clipped_ratio"].get<double>() == 1.0) {
    CHECK(max_terminated == 0.0);  // TRL's value when no completion ended
  } else {
    CHECK(min_terminated <= m["completions/mean_terminated_length"].get<double>());
    CHECK(m["completions/mean_terminated_length"].get<double>() <= max_terminated);
  }
  CHECK(trainer.Step()["epoch"].get<double>() == 1.0);
}

TEST_CASE("sync_ref_model mixes the policy into the reference every ref_model_sync_steps updates",
          "[grpo][sync_ref]") {
  TrainConfig config = SamplingConfig(Precision::kFloat32);  // one update per step
  config.grpo.beta = 0.1;
  config.grpo.sync_ref_model = true;
  config.grpo.ref_model_mixup_alpha = 0.6;
  config.grpo.ref_model_sync_steps = 2;
  Policy policy = TinyPolicy(config);
  Policy reference = TinyPolicy(config);
  {
    torch::NoGradGuard no_grad;  // a reference unlike the policy, so that the mix shows
    for (torch::Tensor& p : reference.model->parameters()) p.mul_(0.5);
  }
  const std::vector<rl::data::Example> prompts = Prompts({"varied", "varied", "varied", "varied"});
  GrpoTrainer trainer(config, policy, &reference, prompts, ScriptedReward, kOneProcess);
  const std::vector<torch::Tensor> before = Snapshot(reference);
  trainer.Step();
  CHECK(Unchanged(reference, before));  // update 1: not a multiple of 2
  trainer.Step();
  const std::vector<torch::Tensor> policy_now = Snapshot(policy);
  const std::vector<torch::Tensor> now = reference.model->parameters();
  for (size_t i = 0; i < now.size(); ++i) {
    INFO("parameter " << i);
    CHECK(torch::allclose(now[i], 0.6 * policy_now[i] + 0.4 * before[i], 1e-6, 1e-7));
  }
}

TEST_CASE("rollout importance sampling: the sampler's log-probs are the loss's, at the sampling temperature",
          "[grpo][rollout_is]") {
  auto first_step = [](Precision dtype) {
    TrainConfig config = SamplingConfig(dtype);
    config.rollout.temperature = 0.7;
    config.grpo.rollout_importance_sampling_correction = true;
    config.grpo.rollout_importance_sampling_clip_max = 3.0;
    Policy policy = TinyPolicy(config);
    const std::vector<rl::data::Example> prompts = Prompts({"varied", "varied"});  // the trainer keeps a view
    GrpoTrainer trainer(config, policy, nullptr, prompts, ScriptedReward, kOneProcess);
    nlohmann::ordered_json m = trainer.Step();
    CheckFinite(m);
    return m;
  };
  // Float32 sampling: the same weights, only the decode's rounding against the full forward's;
  // a temperature applied on one side only would differ by far more.
  nlohmann::ordered_json same = first_step(Precision::kFloat32);
  CHECK(same["sampling/sampling_logp_difference/max"].get<double>() < 1e-4);
  CHECK(same["sampling/importance_sampling_ratio/mean"].get<double>() == Approx(1.0).epsilon(1e-4));
  // The bf16 copy samples another distribution; the weights stay within [0, clip_max].
  nlohmann::ordered_json bf16 = first_step(Precision::kBFloat16);
  CHECK(bf16["sampling/sampling_logp_difference/max"].get<double>() > 1e-4);
  CHECK(bf16["sampling/sampling_logp_difference/mean"].get<double>() > 0.0);
  CHECK(bf16["sampling/importance_sampling_ratio/min"].get<double>() > 0.0);
  CHECK(bf16["sampling/importance_sampling_ratio/max"].get<double>() <= 3.0);
}

// Issues 13 and 14: under bf16 training the products read bf16 casts of frozen matrices, so the
// reference and a LoRA policy's base are kept in bf16 (rl/model's StoreLinearsIn proves the
// products unchanged); the base is widened back, rounded, when the trainer ends.
TEST_CASE("bf16 training keeps the frozen matrices in bf16: the reference's and a LoRA base's",
          "[grpo][train_dtype]") {
  TrainConfig config = SamplingConfig(Precision::kBFloat16);
  config.grpo.train_dtype = Precision::kBFloat16;
  config.grpo.beta = 0.04;
  const std::vector<rl::data::Example> prompts = Prompts({"varied", "varied"});
  auto q_proj = [](Policy& p) -> torch::Tensor& { return p.model->model->layers[0]->self_attn->q_proj->weight; };
  SECTION("the reference") {
    Policy policy = TinyPolicy(config);
    Policy reference = policy;
    reference.model = rl::model::CloneDecoder(*policy.model, torch::kFloat32, torch::kCPU);
    GrpoTrainer trainer(config, policy, &reference, prompts, ScriptedReward, kOneProcess);
    CHECK(q_proj(reference).scalar_type() == torch::kBFloat16);
    CHECK(reference.model->model->embed_tokens->weight.scalar_type() == torch::kFloat32);
    CHECK(q_proj(policy).scalar_type() == torch::kFloat32);  // trained in full: the master weights
    const nlohmann::ordered_json m = trainer.Step();
    CheckFinite(m);
    CHECK(std::abs(m.at("kl").get<double>()) < 1e-6);  // the first update's reference is the policy itself
    CHECK(trainer.Step().at("kl").get<double>() > 0);
  }
  SECTION("a LoRA base, while the trainer lives") {
    config.grpo.lora.r = 4;
    config.grpo.lora.alpha = 8;
    Policy policy = TinyPolicy(config);
    AttachAdapters(policy, config.grpo.lora, "base", 3);
    const torch::Tensor rounded = q_proj(policy).to(torch::kBFloat16).to(torch::kFloat32);
    const std::vector<torch::Tensor> adapters = [&] {
      std::vector<torch::Tensor> copies;
      for (const torch::Tensor& t : TrainableParameters(policy)) copies.push_back(t.detach().clone());
      return copies;
    }();
    {
      GrpoTrainer trainer(config, policy, nullptr, prompts, ScriptedReward, kOneProcess);
      CHECK(q_proj(policy).scalar_type() == torch::kBFloat16);
      for (int i = 0; i < 2; ++i) CheckFinite(trainer.Step());
    }
    CHECK(q_proj(policy).scalar_type() == torch::kFloat32);
    CHECK(torch::equal(q_proj(policy), rounded));
    bool trained = false;
    const std::vector<torch::Tensor> now = TrainableParameters(policy);
    for (size_t i = 0; i < now.size(); ++i) trained = trained || !torch::equal(now[i], adapters[i]);
    CHECK(trained);
  }
}

#include "trainer/sft.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <torch/types.h>
#include <torch/utils.h>

#include "common/random.h"
#include "rl/data/sampler.h"
#include "trainer/distributed.h"
#include "trainer/logprobs.h"
#include "trainer/optimizer.h"
#include "trainer/policy.h"

namespace rl::trainer {
namespace {

struct TokenizedExample {
  std::vector<int32_t> prompt;
  std::vector<int32_t> response;  // response + EOS, cut to max_length together with the prompt
};

std::vector<TokenizedExample> Tokenize(const Policy& policy, const TrainConfig& config,
                                       std::span<const data::Example> examples) {
  std::vector<TokenizedExample> out;
  out.reserve(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    if (examples[i].response.empty()) {
      throw std::invalid_argument("SFT example " + std::to_string(i) + " has no response (data.response_key '" +
                                  config.data.response_key + "')");
    }
    TokenizedExample t;
    t.prompt = policy.tokenizer->Encode(RenderPrompt(config.tokenizer, examples[i]));
    t.response = policy.tokenizer->Encode(examples[i].response);
    t.response.push_back(static_cast<int32_t>(policy.generation.eos_token_ids.front()));  // the configured eos
    const size_t room = static_cast<size_t>(std::max<int64_t>(config.sft.max_length - 1, 1));
    if (t.prompt.size() > room) t.prompt.resize(room);
    t.response.resize(std::min(t.response.size(), static_cast<size_t>(config.sft.max_length) - t.prompt.size()));
    out.push_back(std::move(t));
  }
  return out;
}

// What one update did, summed over the ranks.
struct StepResult {
  double loss = 0;
  double tokens = 0;
  GradientCheck check;
};

// The loss and gradients of one global batch (`indices`, the same on every rank), this rank's
// share computed here and the sums taken over the ranks; the caller steps the optimizer.
StepResult LossAndGradients(Policy& policy, const TrainConfig& config, const std::vector<TokenizedExample>& data,
                            const std::vector<int64_t>& indices, const std::vector<torch::Tensor>& parameters,
                            const World& world, GradientSum& gradient_sum) {
  std::vector<std::vector<int32_t>> prompts, responses;
  const auto [first, last] = world.Shard(static_cast<int64_t>(indices.size()));
  for (int64_t i = first; i < last; ++i) {
    prompts.push_back(data[static_cast<size_t>(indices[static_cast<size_t>(i)])].prompt);
    responses.push_back(data[static_cast<size_t>(indices[static_cast<size_t>(i)])].response);
  }
  TokenBatch batch = MakeTokenBatch(prompts, responses);
  CompletionLogprobs lp = ComputeCompletionLogprobs(*policy.model, batch, 1.0, config.grpo.logprob_chunk_size,
                                                    /*with_entropy=*/false);
  StepResult r;
  r.tokens = world.Sum(batch.completion_mask.sum().item<double>());
  torch::Tensor loss = -lp.logprobs.sum() / std::max(r.tokens, 1.0);
  r.loss = world.Sum(loss.item<double>());
  r.check.finite = std::isfinite(r.loss);
  if (r.check.finite) {
    gradient_sum.Arm();
    loss.backward();
    gradient_sum.Finish();
    r.check = ClipGradients(parameters, config.sft.optim.max_grad_norm);
  }
  return r;
}

}  // namespace

SftSummary RunSft(Policy& policy, const TrainConfig& config, std::span<const data::Example> examples,
                  const MetricsSink& on_step, const World& world) {
  const auto start = std::chrono::steady_clock::now();
  const SftSection& sft = config.sft;
  if (sft.batch_size < world.size()) {
    throw std::invalid_argument("sft.batch_size (" + std::to_string(sft.batch_size) + ") is smaller than the number of "
                                "ranks (" + std::to_string(world.size()) + "): every rank needs an example per step");
  }
  std::vector<TokenizedExample> data = Tokenize(policy, config, examples);
  data::EpochSampler sampler(static_cast<int64_t>(data.size()), common::DeriveSeed(static_cast<uint64_t>(config.run.seed), "sft order"),
                             config.data.shuffle);
  std::vector<torch::Tensor> parameters = TrainableParameters(policy);  // the adapters with LoRA
  InPlaceAdamW adamw = MakeAdamW(parameters, sft.optim);
  GradientSum gradient_sum(world, parameters);
  NonFiniteGuard guard(config.grpo.max_nonfinite_steps);
  policy.model->train();
  TrainingPasses passes(*policy.model, sft.train_dtype == Precision::kBFloat16, sft.gradient_checkpointing);
  BaseKeptInBf16 base_in_bf16(policy, sft.train_dtype == Precision::kBFloat16);  // with LoRA

  SftSummary summary;
  double tail_sum = 0;
  int64_t tail_count = 0;
  const int64_t tail_from = sft.steps - std::max<int64_t>(sft.steps / 10, 1);
  for (int64_t step = 0; step < sft.steps; ++step) {
    const double lr = ScheduledLearningRate(sft.optim, step, sft.steps);
    SetLearningRate(adamw, lr);
    adamw.zero_grad();
    const StepResult r = LossAndGradients(policy, config, data, sampler.Next(sft.batch_size), parameters, world,
                                            gradient_sum);
    if (guard.Admit(r.check.finite)) adamw.step();

    if (step == 0) summary.first_loss = r.loss;
    if (step >= tail_from) tail_sum += r.loss, ++tail_count;
    if (on_step) {
      on_step({{"stage", "sft"}, {"step", step + 1}, {"loss", r.loss}, {"grad_norm", r.check.norm},
               {"learning_rate", lr}, {"tokens", r.tokens}});
    }
  }
  policy.model->eval();
  summary.steps = sft.steps;
  summary.last_loss = tail_count > 0 ? tail_sum / static_cast<double>(tail_count) : 0.0;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace rl::trainer

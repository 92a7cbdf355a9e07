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
    t.response = policy.tokenizer->Encode(examples[i].response + config.tokenizer.eos_token);
    const size_t room = static_cast<size_t>(std::max<int64_t>(config.sft.max_length - 1, 1));
    if (t.prompt.size() > room) t.prompt.resize(room);
    t.response.resize(std::min(t.response.size(), static_cast<size_t>(config.sft.max_length) - t.prompt.size()));
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

SftSummary RunSft(Policy& policy, const TrainConfig& config, std::span<const data::Example> examples,
                  const MetricsSink& on_step) {
  const auto start = std::chrono::steady_clock::now();
  const SftSection& sft = config.sft;
  std::vector<TokenizedExample> data = Tokenize(policy, config, examples);
  data::EpochSampler sampler(static_cast<int64_t>(data.size()), common::DeriveSeed(static_cast<uint64_t>(config.run.seed), "sft order"),
                             config.data.shuffle);
  std::vector<torch::Tensor> parameters = policy.model->parameters();
  torch::optim::AdamW adamw = MakeAdamW(parameters, sft.optim);
  NonFiniteGuard guard(config.grpo.max_nonfinite_steps);
  policy.model->train();

  SftSummary summary;
  double tail_sum = 0;
  int64_t tail_count = 0;
  const int64_t tail_from = sft.steps - std::max<int64_t>(sft.steps / 10, 1);
  for (int64_t step = 0; step < sft.steps; ++step) {
    std::vector<std::vector<int32_t>> prompts, responses;
    for (int64_t index : sampler.Next(sft.batch_size)) {
      prompts.push_back(data[static_cast<size_t>(index)].prompt);
      responses.push_back(data[static_cast<size_t>(index)].response);
    }
    TokenBatch batch = MakeTokenBatch(prompts, responses);
    const double lr = ScheduledLearningRate(sft.optim, step, sft.steps);
    SetLearningRate(adamw, lr);
    adamw.zero_grad();
    CompletionLogprobs lp = ComputeCompletionLogprobs(*policy.model, batch, 1.0, config.grpo.logprob_chunk_size,
                                                      /*with_entropy=*/false);
    torch::Tensor loss = -lp.logprobs.sum() / batch.completion_mask.sum().clamp_min(1.0);
    const double loss_value = loss.item<double>();
    GradientCheck check;
    check.finite = std::isfinite(loss_value);
    if (check.finite) {
      loss.backward();
      check = ClipGradients(parameters, sft.optim.max_grad_norm);
    }
    if (guard.Admit(check.finite)) adamw.step();

    if (step == 0) summary.first_loss = loss_value;
    if (step >= tail_from) tail_sum += loss_value, ++tail_count;
    if (on_step) {
      on_step({{"stage", "sft"}, {"step", step + 1}, {"loss", loss_value}, {"grad_norm", check.norm},
               {"learning_rate", lr}, {"tokens", batch.completion_mask.sum().item<double>()}});
    }
  }
  policy.model->eval();
  summary.steps = sft.steps;
  summary.last_loss = tail_count > 0 ? tail_sum / static_cast<double>(tail_count) : 0.0;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace rl::trainer

#include "trainer/evaluate.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "common/random.h"
#include "rewards/reward.h"
#include "trainer/distributed.h"
#include "trainer/policy.h"
#include "rollout/generate.h"

namespace rl::trainer {
namespace {

std::unique_ptr<rewards::Reward> EvalReward(const TrainConfig& config) {
  std::vector<std::string> special;
  if (!config.tokenizer.eos_token.empty()) special.push_back(config.tokenizer.eos_token);
  for (const char* token : {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>"}) {
    if (token != config.tokenizer.eos_token) special.push_back(token);
  }
  nlohmann::json spec = {
      {"special_tokens", special},
      {"on_unscorable", "zero"},
      {"rules", {{{"name", "format.think_answer"}, {"weight", 1}}, {{"name", "accuracy.math"}, {"weight", 1}}}}};
  std::string error;
  auto reward = rewards::Reward::FromJson(spec, &error, "evaluation reward");
  if (!reward) throw std::runtime_error(error);
  return reward;
}

bool RuleSaysYes(const rewards::RewardResult& result, std::string_view rule) {
  for (const rewards::RuleScore& score : result.components) {
    if (score.rule == rule) return score.status == rewards::ScoreStatus::kOk && score.value >= 1.0;
  }
  return false;
}

}  // namespace

EvalResult Evaluate(Policy& policy, const TrainConfig& config, std::span<const data::Example> problems,
                    const World& world) {
  const auto start = std::chrono::steady_clock::now();
  const size_t count = std::min<size_t>(problems.size(), static_cast<size_t>(config.eval.num_problems));
  EvalResult result;
  result.problems = static_cast<int64_t>(count);
  if (count == 0) return result;
  auto reward = EvalReward(config);

  rollout::SamplingParams sampling;
  sampling.temperature = config.eval.temperature;
  sampling.max_new_tokens = config.eval.max_new_tokens > 0 ? config.eval.max_new_tokens : config.rollout.max_new_tokens;
  sampling.eos_ids = policy.generation.eos_token_ids;
  sampling.stop_strings = config.rollout.stop_strings;
  sampling.seed = common::DeriveSeed(static_cast<uint64_t>(config.run.seed), "eval");

  std::vector<std::string> prompt_texts(count);
  std::vector<rollout::SequenceRequest> requests;
  for (size_t i = 0; i < count; ++i) {
    prompt_texts[i] = RenderPrompt(config.tokenizer, problems[i]);
    std::vector<int32_t> ids = policy.tokenizer->Encode(prompt_texts[i]);
    for (int64_t s = 0; s < config.eval.num_samples; ++s) {
      requests.push_back({ids, static_cast<int64_t>(i), s});
    }
  }
  torch::NoGradGuard no_grad;
  double formatted = 0, correct = 0, tokens = 0, completions = 0;
  const size_t batch = static_cast<size_t>(config.rollout.batch_size);
  const auto [first, last] = world.Shard(static_cast<int64_t>(requests.size()));
  for (size_t begin = static_cast<size_t>(first); begin < static_cast<size_t>(last); begin += batch) {
    std::span<const rollout::SequenceRequest> part(requests.data() + begin,
                                                   std::min(batch, static_cast<size_t>(last) - begin));
    for (const rollout::Completion& c : rollout::Generate(*policy.model, *policy.tokenizer, part, sampling)) {
      const data::Example& problem = problems[static_cast<size_t>(c.prompt_index)];
      rewards::Sample sample;
      sample.prompt = prompt_texts[static_cast<size_t>(c.prompt_index)];
      sample.completion = c.text;
      sample.gold = problem.answer;
      sample.completion_tokens = static_cast<int64_t>(c.token_ids.size());
      rewards::RewardResult scored = reward->Score(sample);
      formatted += RuleSaysYes(scored, "format.think_answer");
      correct += RuleSaysYes(scored, "accuracy.math");
      tokens += static_cast<double>(c.token_ids.size());
      ++completions;
    }
  }
  const at::Tensor totals = torch::tensor({formatted, correct, tokens, completions}, torch::kFloat64);
  world.SumTensor(totals);  // counts below 2^53: exact in float64
  const double n = totals[3].item<double>();
  result.completions = static_cast<int64_t>(n);
  result.format_rate = totals[0].item<double>() / n;
  result.accuracy = totals[1].item<double>() / n;
  result.mean_length = totals[2].item<double>() / n;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

nlohmann::json ToJson(const EvalResult& r) {
  return {{"problems", r.problems}, {"completions", r.completions}, {"format_rate", r.format_rate},
          {"accuracy", r.accuracy}, {"mean_length", r.mean_length}, {"seconds", r.seconds}};
}

EvalResult EvalResultFromJson(const nlohmann::json& j) {
  EvalResult r;
  r.problems = j.at("problems").get<int64_t>();
  r.completions = j.at("completions").get<int64_t>();
  r.format_rate = j.at("format_rate").get<double>();
  r.accuracy = j.at("accuracy").get<double>();
  r.mean_length = j.at("mean_length").get<double>();
  r.seconds = j.at("seconds").get<double>();
  return r;
}

}  // namespace rl::trainer

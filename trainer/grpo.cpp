#include "trainer/grpo.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>

#include <torch/torch.h>

#include "trainer/dynamic_sampling.h"
#include "trainer/grpo_loss.h"
#include "trainer/logprobs.h"

namespace rl::trainer {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

rollout::RolloutOptions MakeRolloutOptions(const TrainConfig& config) {
  rollout::RolloutOptions options;
  options.group_size = config.rollout.num_generations;
  options.micro_batch_size = config.rollout.batch_size;
  options.workers = static_cast<int>(config.rollout.workers);
  const int64_t threads = config.run.threads > 0 ? config.run.threads : std::thread::hardware_concurrency();
  options.threads_per_worker = static_cast<int>(std::max<int64_t>(threads / config.rollout.workers, 1));
  options.scoring_threads = static_cast<int>(config.rewards.threads > 0 ? config.rewards.threads
                                                                        : std::max<int64_t>(threads, 1));
  if (std::string error = options.Check(); !error.empty()) throw std::invalid_argument("rollout: " + error);
  return options;
}

// The bf16 copy that rollout.dtype bfloat16 samples from; null for float32 (sample the policy).
model::Qwen2 MakeSamplingCopy(const TrainConfig& config, Policy& policy) {
  if (config.rollout.dtype == RolloutDtype::kFloat32) return model::Qwen2(nullptr);
  return model::CloneQwen2(*policy.model, torch::kBFloat16, policy.model->device());
}

double Mean(const std::vector<double>& v) {
  if (v.empty()) return 0.0;
  double sum = 0;
  for (double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

rollout::SamplingParams MakeSamplingParams(const TrainConfig& config, const Policy& policy) {
  rollout::SamplingParams sampling;
  sampling.temperature = config.rollout.temperature;
  sampling.top_k = config.rollout.top_k;
  sampling.top_p = config.rollout.top_p;
  sampling.min_p = config.rollout.min_p;
  sampling.max_new_tokens = config.rollout.max_new_tokens;
  sampling.eos_ids = policy.generation.eos_token_ids;
  sampling.stop_strings = config.rollout.stop_strings;
  return sampling;
}

// What every completion sampled in a step adds to the metrics, whether its group joins the
// batch or not (as TRL reports the whole generation batch).
struct SampleStats {
  std::vector<double> rewards, group_stds, lengths, terminated_lengths;
  std::vector<std::pair<std::string, std::vector<double>>> per_rule;  // in the reward's rule order
  int64_t unscorable = 0, clipped = 0;
  double generation_s = 0, scoring_s = 0, scoring_tail_s = 0;

  // Returns each group's rewards (NaN: unscorable).
  std::vector<std::vector<double>> Add(const rollout::RolloutResult& result) {
    generation_s += result.stats.generation_seconds;
    scoring_s += result.stats.scoring_seconds;
    scoring_tail_s += result.stats.scoring_tail_seconds;
    std::vector<std::vector<double>> group_rewards;
    for (const rollout::RolloutGroup& g : result.groups) {
      std::vector<double>& group = group_rewards.emplace_back();
      for (const rollout::Completion& c : g.completions) group.push_back(Count(c));
      group_stds.push_back(RewardStd(group));
    }
    return group_rewards;
  }

  // Returns the completion's reward (NaN: unscorable).
  double Count(const rollout::Completion& c) {
    const rewards::RewardResult& r = *c.reward;
    if (r.total) rewards.push_back(*r.total);
    else ++unscorable;
    for (size_t k = 0; k < r.components.size(); ++k) {
      if (k == per_rule.size()) per_rule.push_back({r.components[k].rule, {}});
      if (r.components[k].status == rewards::ScoreStatus::kOk) per_rule[k].second.push_back(r.components[k].value);
    }
    lengths.push_back(static_cast<double>(c.token_ids.size()));
    if (c.finish_reason == rollout::FinishReason::kLength) ++clipped;
    else terminated_lengths.push_back(static_cast<double>(c.token_ids.size()));
    return r.total.value_or(std::numeric_limits<double>::quiet_NaN());
  }

  void Write(const GroupSelector& selector, bool dynamic_sampling, nlohmann::ordered_json& m) const {
    m["reward"] = Mean(rewards);
    m["reward_std"] = Mean(group_stds);
    for (const auto& [rule, values] : per_rule) {
      m["rewards/" + rule + "/mean"] = Mean(values);
      m["rewards/" + rule + "/std"] = RewardStd(values);
    }
    m["frac_reward_zero_std"] = static_cast<double>(selector.zero_std()) / static_cast<double>(selector.seen());
    m["unscorable"] = unscorable;
    m["completions/mean_length"] = Mean(lengths);
    m["completions/min_length"] = *std::min_element(lengths.begin(), lengths.end());
    m["completions/max_length"] = *std::max_element(lengths.begin(), lengths.end());
    m["completions/clipped_ratio"] = static_cast<double>(clipped) / static_cast<double>(lengths.size());
    m["completions/mean_terminated_length"] = Mean(terminated_lengths);
    if (dynamic_sampling) {
      m["dynamic_sampling/rounds"] = selector.rounds();
      m["dynamic_sampling/kept_groups"] = selector.kept();
    }
    m["time/generation"] = generation_s;
    m["time/scoring"] = scoring_s;
    m["time/scoring_tail"] = scoring_tail_s;
  }
};

using Rows = std::pair<int64_t, int64_t>;  // [first, second)

// `rows` cut into `parts` contiguous ranges whose sizes differ by at most one (some empty when
// there are fewer rows than parts). A batch that dynamic sampling left short need not divide
// into mini- and micro-batches the way a full one must (config.cpp checks only the full one).
std::vector<Rows> SplitRows(Rows rows, int64_t parts) {
  const int64_t n = rows.second - rows.first;
  std::vector<Rows> out;
  for (int64_t i = 0; i < parts; ++i) out.push_back({rows.first + n * i / parts, rows.first + n * (i + 1) / parts});
  return out;
}

}  // namespace

// The sequences of one step: the kept groups, flattened (group g's completions at g*G..).
struct GrpoTrainer::Batch {
  std::vector<std::vector<int32_t>> prompt_ids, completion_ids;
  std::vector<double> rewards;  // NaN: unscorable
  std::vector<bool> truncated;
  TokenBatch tokens;
  torch::Tensor advantages;  // [B]
  torch::Tensor loss_mask;   // [B, C]
  torch::Tensor old_logprobs, ref_logprobs;  // [B, C] or undefined

  void Append(const std::vector<int32_t>& prompt, const rollout::RolloutGroup& group,
              const std::vector<double>& group_rewards);
  void ComputeAdvantagesAndMask(const GrpoSection& grpo, int64_t group_size);
};

void GrpoTrainer::Batch::Append(const std::vector<int32_t>& prompt, const rollout::RolloutGroup& group,
                                const std::vector<double>& group_rewards) {
  for (const rollout::Completion& c : group.completions) {
    prompt_ids.push_back(prompt);
    completion_ids.push_back(c.token_ids);
    truncated.push_back(c.finish_reason == rollout::FinishReason::kLength);
  }
  rewards.insert(rewards.end(), group_rewards.begin(), group_rewards.end());
}

// Unscorable completions take their group's scored mean (no effect on the baseline) and are
// masked out of the loss.
void GrpoTrainer::Batch::ComputeAdvantagesAndMask(const GrpoSection& grpo, int64_t group_size) {
  std::vector<double> filled = rewards;
  for (size_t g = 0; g < filled.size(); g += static_cast<size_t>(group_size)) {
    std::vector<double> scored;
    for (size_t i = g; i < g + static_cast<size_t>(group_size); ++i) {
      if (!std::isnan(filled[i])) scored.push_back(filled[i]);
    }
    const double mean = Mean(scored);
    for (size_t i = g; i < g + static_cast<size_t>(group_size); ++i) {
      if (std::isnan(filled[i])) filled[i] = mean;
    }
  }
  AdvantageOptions options;
  options.scale_rewards = grpo.scale_rewards;
  options.rloo = grpo.rloo;
  options.eps = grpo.advantage_eps;
  advantages = ComputeGroupAdvantages(torch::tensor(filled, torch::kDouble), group_size, options)
                   .advantages.to(torch::kFloat32);
  tokens = MakeTokenBatch(prompt_ids, completion_ids);
  std::vector<float> keep(rewards.size());
  for (size_t i = 0; i < keep.size(); ++i) {
    const bool masked = std::isnan(rewards[i]) || (grpo.mask_truncated_completions && truncated[i]);
    keep[i] = masked ? 0.0f : 1.0f;
  }
  loss_mask = tokens.completion_mask * torch::tensor(keep).unsqueeze(1);
}

GrpoTrainer::GrpoTrainer(const TrainConfig& config, Policy& policy, Policy* reference,
                         std::span<const data::Example> prompts, rollout::ScoreFn score)
    : config_(config),
      policy_(policy),
      reference_(reference),
      prompts_(prompts),
      score_(std::move(score)),
      sampling_copy_(MakeSamplingCopy(config, policy)),
      engine_(sampling_copy_ ? *sampling_copy_ : *policy.model, *policy.tokenizer, MakeRolloutOptions(config)),
      sampler_(static_cast<int64_t>(prompts.size()), static_cast<uint64_t>(config.run.seed) + 2, config.data.shuffle),
      parameters_(policy.model->parameters()),
      optimizer_(MakeAdamW(parameters_, config.grpo.optim)),
      guard_(config.grpo.max_nonfinite_steps) {
  if (config.grpo.beta > 0 && reference == nullptr) {
    throw std::invalid_argument("grpo.beta > 0 needs a reference model");
  }
  if (reference_ != nullptr) {
    for (torch::Tensor& p : reference_->model->parameters()) p.set_requires_grad(false);
    reference_->model->eval();
  }
}

nlohmann::json GrpoTrainer::State() const {
  return {{"step", step_}, {"updates", updates_}, {"num_tokens", num_tokens_},
          {"data_epoch", sampler_.position().epoch}, {"data_offset", sampler_.position().offset},
          {"nonfinite_skipped", guard_.skipped()}};
}

void GrpoTrainer::Restore(const nlohmann::json& state) {
  step_ = state.at("step").get<int64_t>();
  updates_ = state.at("updates").get<int64_t>();
  num_tokens_ = state.at("num_tokens").get<double>();
  sampler_.Seek({state.at("data_epoch").get<int64_t>(), state.at("data_offset").get<int64_t>()});
  guard_.set_skipped(state.at("nonfinite_skipped").get<int64_t>());
}

nlohmann::ordered_json GrpoTrainer::Step() {
  const auto start = Clock::now();
  nlohmann::ordered_json m;
  m["step"] = step_ + 1;
  Batch batch = SampleAndScore(m);  // 1-3: sample, score, advantages
  Update(batch, m);                 // 4-5: log-probs, loss, update
  m["step_time"] = Since(start);
  ++step_;
  return m;
}

std::vector<rollout::RolloutPrompt> GrpoTrainer::DrawPrompts() {
  std::vector<rollout::RolloutPrompt> prompts;
  for (int64_t index : sampler_.Next(config_.grpo.prompts_per_step)) {
    const data::Example& e = prompts_[static_cast<size_t>(index)];
    std::string text = RenderPrompt(config_.tokenizer, e);
    std::vector<int32_t> ids = policy_.tokenizer->Encode(text);
    prompts.push_back({std::move(ids), std::move(text), e.answer});
  }
  return prompts;
}

GrpoTrainer::Batch GrpoTrainer::SampleAndScore(nlohmann::ordered_json& m) {
  rollout::SamplingParams sampling = MakeSamplingParams(config_, policy_);
  Batch batch;
  SampleStats stats;
  GroupSelector selector(config_.grpo);
  torch::NoGradGuard no_grad;
  // The copy must sample the current policy: the last update, or a checkpoint restored into it.
  if (sampling_copy_) sampling_copy_->CopyWeightsFrom(*policy_.model);
  while (!selector.done()) {
    // 1. sample and 2. score
    std::vector<rollout::RolloutPrompt> prompts = DrawPrompts();
    sampling.seed = static_cast<uint64_t>(config_.run.seed) * 0x9e3779b97f4a7c15ULL +
                    static_cast<uint64_t>(step_) * 1000 + static_cast<uint64_t>(selector.rounds());
    rollout::RolloutResult result = engine_.Run(prompts, sampling, score_);
    std::vector<std::vector<double>> rewards = stats.Add(result);
    // 3. the groups that join the batch (with dynamic sampling: only those with signal)
    for (size_t g : selector.Offer(rewards)) {
      const rollout::RolloutGroup& group = result.groups[g];
      batch.Append(prompts[static_cast<size_t>(group.prompt_index)].prompt_ids, group, rewards[g]);
    }
  }
  stats.Write(selector, config_.grpo.dynamic_sampling, m);
  if (!batch.rewards.empty()) batch.ComputeAdvantagesAndMask(config_.grpo, config_.rollout.num_generations);
  return batch;
}

void GrpoTrainer::Update(Batch& batch, nlohmann::ordered_json& m) {
  const GrpoSection& grpo = config_.grpo;
  const double temperature = config_.rollout.temperature;
  const int64_t updates_per_step = grpo.num_iterations * grpo.num_mini_batches;
  if (batch.rewards.empty()) {  // dynamic sampling found no group with signal: nothing to learn
    m["loss"] = 0.0;
    m["grad_norm"] = 0.0;
    m["learning_rate"] = ScheduledLearningRate(grpo.optim, updates_, grpo.steps * updates_per_step);
    m["skipped_updates"] = guard_.skipped();
    updates_ += updates_per_step;
    return;
  }
  const std::vector<Rows> minis = SplitRows({0, batch.tokens.input_ids.size(0)}, grpo.num_mini_batches);
  auto micros = [&](Rows mini) { return SplitRows(mini, grpo.gradient_accumulation_steps); };
  auto select = [](Rows rows) { return torch::arange(rows.first, rows.second, torch::kInt64); };

  // 4. log-probs without gradient: the sampling policy's (when the batch is used for more
  // than one update) and the reference's (for the KL term). Same micro-batches as the update,
  // so that float rounding matches.
  auto frozen_logprobs = [&](model::Qwen2Impl& model) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> parts;
    for (Rows mini : minis) {
      for (Rows micro : micros(mini)) {
        if (micro.first == micro.second) continue;
        TokenBatch sub = SelectRows(batch.tokens, select(micro));
        torch::Tensor lp = ComputeCompletionLogprobs(model, sub, temperature, grpo.logprob_chunk_size, false).logprobs;
        parts.push_back(torch::constant_pad_nd(lp, {0, batch.tokens.completion_ids.size(1) - lp.size(1)}));
      }
    }
    return torch::cat(parts, 0);
  };
  auto t0 = Clock::now();
  if (updates_per_step > 1) batch.old_logprobs = frozen_logprobs(*policy_.model);
  m["time/old_logprobs"] = Since(t0);
  t0 = Clock::now();
  if (reference_ != nullptr && grpo.beta > 0) batch.ref_logprobs = frozen_logprobs(*reference_->model);
  m["time/ref_logprobs"] = Since(t0);

  // 5. loss and update
  double loss_sum = 0, norm_sum = 0, kl_sum = 0, low_sum = 0, high_sum = 0, region_sum = 0, tokens = 0;
  double entropy_sum = 0, entropy_tokens = 0, lr = 0, backward_s = 0, optimizer_s = 0;
  PolicyLossOptions loss_options;
  loss_options.loss_type = grpo.loss_type;
  loss_options.epsilon_low = grpo.epsilon;
  loss_options.epsilon_high = grpo.epsilon_high.value_or(grpo.epsilon);
  loss_options.beta = grpo.beta;
  loss_options.kl_log_ratio_clamp = grpo.kl_log_ratio_clamp;
  loss_options.max_completion_length = config_.rollout.max_new_tokens;
  policy_.model->train();
  for (int64_t iteration = 0; iteration < grpo.num_iterations; ++iteration) {
    for (Rows mini : minis) {
      if (mini.first == mini.second) {  // a short batch with fewer rows than mini-batches
        ++updates_;                     // keeps the learning-rate schedule in step
        continue;
      }
      t0 = Clock::now();
      optimizer_.zero_grad();
      loss_options.total_sequences = mini.second - mini.first;
      loss_options.total_tokens = batch.loss_mask.slice(0, mini.first, mini.second).sum().item<double>();
      bool finite = true;
      double loss_value = 0;
      for (Rows micro : micros(mini)) {
        if (micro.first == micro.second) continue;
        torch::Tensor index = select(micro);
        TokenBatch sub = SelectRows(batch.tokens, index);
        const int64_t width = sub.completion_ids.size(1);
        CompletionLogprobs lp = ComputeCompletionLogprobs(*policy_.model, sub, temperature, grpo.logprob_chunk_size,
                                                          /*with_entropy=*/iteration == 0);
        PolicyLossInputs in;
        in.logprobs = lp.logprobs;
        in.mask = batch.loss_mask.index_select(0, index).narrow(1, 0, width);
        in.advantages = batch.advantages.index_select(0, index);
        if (batch.old_logprobs.defined()) in.old_logprobs = batch.old_logprobs.index_select(0, index).narrow(1, 0, width);
        if (batch.ref_logprobs.defined()) in.ref_logprobs = batch.ref_logprobs.index_select(0, index).narrow(1, 0, width);
        PolicyLoss loss = ComputePolicyLoss(in, loss_options);
        const double value = loss.loss.item<double>();
        if (!std::isfinite(value)) {
          finite = false;
          break;
        }
        loss_value += value;
        if (loss.loss.requires_grad()) loss.loss.backward();
        kl_sum += loss.kl * loss.tokens;
        low_sum += loss.clip_ratio_low * loss.tokens;
        high_sum += loss.clip_ratio_high * loss.tokens;
        region_sum += loss.clip_ratio_region * loss.tokens;
        tokens += loss.tokens;
        if (lp.entropy.defined()) {
          entropy_sum += (lp.entropy * in.mask).sum().item<double>();
          entropy_tokens += in.mask.sum().item<double>();
        }
      }
      backward_s += Since(t0);
      t0 = Clock::now();
      GradientCheck check = finite ? ClipGradients(parameters_, grpo.optim.max_grad_norm) : GradientCheck{0, false};
      lr = ScheduledLearningRate(grpo.optim, updates_, grpo.steps * updates_per_step);
      SetLearningRate(optimizer_, lr);
      if (guard_.Admit(check.finite)) optimizer_.step();
      optimizer_.zero_grad();
      ++updates_;
      optimizer_s += Since(t0);
      loss_sum += loss_value;
      norm_sum += check.norm;
    }
  }
  policy_.model->eval();
  num_tokens_ += batch.tokens.key_mask.sum().item<double>();  // prompt and completion tokens
  const double updates = static_cast<double>(updates_per_step);
  const double token_count = std::max(tokens, 1.0);
  if (reference_ != nullptr && grpo.beta > 0) m["kl"] = kl_sum / token_count;
  m["entropy"] = entropy_tokens > 0 ? entropy_sum / entropy_tokens : 0.0;
  m["clip_ratio/low_mean"] = low_sum / token_count;
  m["clip_ratio/high_mean"] = high_sum / token_count;
  m["clip_ratio/region_mean"] = region_sum / token_count;
  m["loss"] = loss_sum / updates;
  m["grad_norm"] = norm_sum / updates;
  m["learning_rate"] = lr;
  m["num_tokens"] = num_tokens_;
  m["skipped_updates"] = guard_.skipped();
  m["time/backward"] = backward_s;
  m["time/optimizer"] = optimizer_s;
}

}  // namespace rl::trainer

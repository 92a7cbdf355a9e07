#include "trainer/grpo.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>

#include <torch/torch.h>

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

double Mean(const std::vector<double>& v) {
  if (v.empty()) return 0.0;
  double sum = 0;
  for (double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

double Std(const std::vector<double>& v) {  // unbiased, as torch.std
  if (v.size() < 2) return 0.0;
  const double mean = Mean(v);
  double squares = 0;
  for (double x : v) squares += (x - mean) * (x - mean);
  return std::sqrt(squares / static_cast<double>(v.size() - 1));
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
};

GrpoTrainer::GrpoTrainer(const TrainConfig& config, Policy& policy, Policy* reference,
                         std::span<const data::Example> prompts, rollout::ScoreFn score)
    : config_(config),
      policy_(policy),
      reference_(reference),
      prompts_(prompts),
      score_(std::move(score)),
      engine_(*policy.model, *policy.tokenizer, MakeRolloutOptions(config)),
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

GrpoTrainer::Batch GrpoTrainer::SampleAndScore(nlohmann::ordered_json& m) {
  const GrpoSection& grpo = config_.grpo;
  const int64_t group = config_.rollout.num_generations;
  rollout::SamplingParams sampling;
  sampling.temperature = config_.rollout.temperature;
  sampling.top_k = config_.rollout.top_k;
  sampling.top_p = config_.rollout.top_p;
  sampling.min_p = config_.rollout.min_p;
  sampling.max_new_tokens = config_.rollout.max_new_tokens;
  sampling.eos_ids = policy_.generation.eos_token_ids;
  sampling.stop_strings = config_.rollout.stop_strings;

  Batch batch;
  std::vector<double> all_rewards, group_stds, lengths, terminated_lengths;
  std::vector<std::pair<std::string, std::vector<double>>> per_rule;  // in the reward's rule order
  int64_t groups_seen = 0, zero_std_groups = 0, unscorable = 0, clipped = 0, rounds = 0;
  double generation_s = 0, scoring_s = 0, scoring_tail_s = 0;
  torch::NoGradGuard no_grad;
  while (rounds < (grpo.dynamic_sampling ? grpo.dynamic_sampling_max_rounds : 1)) {
    // 1. sample and 2. score
    std::vector<rollout::RolloutPrompt> prompts;
    for (int64_t index : sampler_.Next(grpo.prompts_per_step)) {
      const data::Example& e = prompts_[static_cast<size_t>(index)];
      std::string text = RenderPrompt(config_.tokenizer, e.prompt);
      std::vector<int32_t> ids = policy_.tokenizer->Encode(text);
      prompts.push_back({std::move(ids), std::move(text), e.answer});
    }
    sampling.seed = static_cast<uint64_t>(config_.run.seed) * 0x9e3779b97f4a7c15ULL +
                    static_cast<uint64_t>(step_) * 1000 + static_cast<uint64_t>(rounds);
    rollout::RolloutResult result = engine_.Run(prompts, sampling, score_);
    generation_s += result.stats.generation_seconds;
    scoring_s += result.stats.scoring_seconds;
    scoring_tail_s += result.stats.scoring_tail_seconds;
    ++rounds;

    for (const rollout::RolloutGroup& g : result.groups) {
      std::vector<double> scored;
      for (const rollout::Completion& c : g.completions) {
        const rewards::RewardResult& r = *c.reward;
        if (r.total) {
          scored.push_back(*r.total);
          all_rewards.push_back(*r.total);
        } else {
          ++unscorable;
        }
        for (size_t k = 0; k < r.components.size(); ++k) {
          if (k == per_rule.size()) per_rule.push_back({r.components[k].rule, {}});
          if (r.components[k].status == rewards::ScoreStatus::kOk) per_rule[k].second.push_back(r.components[k].value);
        }
        lengths.push_back(static_cast<double>(c.token_ids.size()));
        if (c.finish_reason == rollout::FinishReason::kLength) ++clipped;
        else terminated_lengths.push_back(static_cast<double>(c.token_ids.size()));
      }
      const double sd = Std(scored);
      group_stds.push_back(sd);
      ++groups_seen;
      const bool no_signal = scored.size() < 2 || sd == 0.0;
      zero_std_groups += no_signal;
      // 3. dynamic sampling keeps only groups with signal, up to the batch size
      if (grpo.dynamic_sampling && no_signal) continue;
      if (static_cast<int64_t>(batch.rewards.size()) >= grpo.prompts_per_step * group) continue;
      for (const rollout::Completion& c : g.completions) {
        batch.prompt_ids.push_back(prompts[static_cast<size_t>(g.prompt_index)].prompt_ids);
        batch.completion_ids.push_back(c.token_ids);
        batch.rewards.push_back(c.reward->total ? *c.reward->total : std::numeric_limits<double>::quiet_NaN());
        batch.truncated.push_back(c.finish_reason == rollout::FinishReason::kLength);
      }
    }
    if (static_cast<int64_t>(batch.rewards.size()) >= grpo.prompts_per_step * group) break;
  }

  m["reward"] = Mean(all_rewards);
  m["reward_std"] = Mean(group_stds);
  for (const auto& [rule, values] : per_rule) {
    m["rewards/" + rule + "/mean"] = Mean(values);
    m["rewards/" + rule + "/std"] = Std(values);
  }
  m["frac_reward_zero_std"] = static_cast<double>(zero_std_groups) / static_cast<double>(groups_seen);
  m["unscorable"] = unscorable;
  const double count = static_cast<double>(lengths.size());
  m["completions/mean_length"] = Mean(lengths);
  m["completions/min_length"] = *std::min_element(lengths.begin(), lengths.end());
  m["completions/max_length"] = *std::max_element(lengths.begin(), lengths.end());
  m["completions/clipped_ratio"] = static_cast<double>(clipped) / count;
  m["completions/mean_terminated_length"] = Mean(terminated_lengths);
  if (grpo.dynamic_sampling) {
    m["dynamic_sampling/rounds"] = rounds;
    m["dynamic_sampling/kept_groups"] = static_cast<int64_t>(batch.rewards.size()) / group;
  }
  m["time/generation"] = generation_s;
  m["time/scoring"] = scoring_s;
  m["time/scoring_tail"] = scoring_tail_s;
  if (batch.rewards.empty()) return batch;

  // 3. advantages. Unscorable completions take their group's scored mean (no effect on the
  // baseline) and are masked out of the loss below.
  std::vector<double> filled = batch.rewards;
  for (size_t g = 0; g < filled.size(); g += static_cast<size_t>(group)) {
    std::vector<double> scored;
    for (size_t i = g; i < g + static_cast<size_t>(group); ++i) {
      if (!std::isnan(filled[i])) scored.push_back(filled[i]);
    }
    const double mean = Mean(scored);
    for (size_t i = g; i < g + static_cast<size_t>(group); ++i) {
      if (std::isnan(filled[i])) filled[i] = mean;
    }
  }
  AdvantageOptions options;
  options.scale_rewards = grpo.scale_rewards;
  options.rloo = grpo.rloo;
  options.eps = grpo.advantage_eps;
  batch.advantages = ComputeGroupAdvantages(torch::tensor(filled, torch::kDouble), group, options)
                         .advantages.to(torch::kFloat32);
  batch.tokens = MakeTokenBatch(batch.prompt_ids, batch.completion_ids);
  std::vector<float> keep(batch.rewards.size());
  for (size_t i = 0; i < keep.size(); ++i) {
    const bool masked = std::isnan(batch.rewards[i]) || (grpo.mask_truncated_completions && batch.truncated[i]);
    keep[i] = masked ? 0.0f : 1.0f;
  }
  batch.loss_mask = batch.tokens.completion_mask * torch::tensor(keep).unsqueeze(1);
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
  const int64_t rows = batch.tokens.input_ids.size(0);
  const int64_t mini = rows / grpo.num_mini_batches;
  const int64_t micro = std::max<int64_t>(mini / grpo.gradient_accumulation_steps, 1);
  auto micro_rows = [&](int64_t begin) { return torch::arange(begin, std::min(begin + micro, rows), torch::kInt64); };

  // 4. log-probs without gradient: the sampling policy's (when the batch is used for more
  // than one update) and the reference's (for the KL term).
  auto frozen_logprobs = [&](model::Qwen2Impl& model) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> parts;
    for (int64_t begin = 0; begin < rows; begin += micro) {
      TokenBatch sub = SelectRows(batch.tokens, micro_rows(begin));
      torch::Tensor lp = ComputeCompletionLogprobs(model, sub, temperature, grpo.logprob_chunk_size, false).logprobs;
      parts.push_back(torch::constant_pad_nd(lp, {0, batch.tokens.completion_ids.size(1) - lp.size(1)}));
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
    for (int64_t mb = 0; mb < grpo.num_mini_batches; ++mb) {
      t0 = Clock::now();
      optimizer_.zero_grad();
      loss_options.total_sequences = mini;
      loss_options.total_tokens = batch.loss_mask.narrow(0, mb * mini, mini).sum().item<double>();
      bool finite = true;
      double loss_value = 0;
      for (int64_t begin = mb * mini; begin < (mb + 1) * mini; begin += micro) {
        torch::Tensor index = micro_rows(begin);
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

#include "trainer/grpo.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>

#include <torch/types.h>
#include <torch/utils.h>

#include "common/random.h"
#include "common/threads.h"
#include "rl/model/lora.h"
#include "trainer/distributed.h"
#include "trainer/dynamic_sampling.h"
#include "trainer/grpo_loss.h"
#include "trainer/logprobs.h"

namespace rl::trainer {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Generation and scoring threads from this rank's share of the cores (run.threads, or the
// cores divided by the ranks on this machine), as the rank's LibTorch threads are.
rollout::RolloutOptions MakeRolloutOptions(const TrainConfig& config, const World& world) {
  rollout::RolloutOptions options;
  options.group_size = config.rollout.num_generations;
  options.micro_batch_size = config.rollout.batch_size;
  options.workers = static_cast<int>(config.rollout.workers);
  const int threads = common::ThreadCount(static_cast<int>(ThreadsPerRank(config.run.threads, world)));
  options.threads_per_worker = std::max(threads / options.workers, 1);
  options.callback_threads = config.rewards.threads > 0 ? static_cast<int>(config.rewards.threads) : threads;
  if (std::string error = options.Check(); !error.empty()) throw std::invalid_argument("rollout: " + error);
  return options;
}

// The bf16 copy that rollout.dtype bfloat16 samples from, adapters merged (sampling runs
// without their extra products); null for float32 (sample the policy).
model::Decoder MakeSamplingCopy(const TrainConfig& config, Policy& policy) {
  if (config.rollout.dtype == Precision::kFloat32) return model::Decoder(nullptr);
  model::Decoder copy(policy.model->config(), torch::TensorOptions().dtype(torch::kBFloat16).device(policy.model->device()),
                      /*random_init=*/false);
  copy->CopyWeightsFrom(*policy.model);
  if (policy.lora.enabled()) model::CopyMergedWeights(*copy, *policy.model);
  return copy;
}

double Mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0.0 : sum / static_cast<double>(v.size());
}

rollout::SamplingParams MakeSamplingParams(const TrainConfig& config, const Policy& policy) {
  rollout::SamplingParams sampling;
  sampling.temperature = config.rollout.temperature;
  sampling.top_k = config.rollout.top_k;
  sampling.top_p = config.rollout.top_p;
  sampling.min_p = config.rollout.min_p;
  sampling.repetition_penalty = config.rollout.repetition_penalty;
  sampling.max_new_tokens = config.rollout.max_new_tokens;
  sampling.eos_ids = policy.generation.eos_token_ids;
  sampling.stop_strings = config.rollout.stop_strings;
  return sampling;
}

PolicyLossOptions MakeLossOptions(const TrainConfig& config) {
  PolicyLossOptions options;
  options.loss_type = config.grpo.loss_type;
  options.epsilon_low = config.grpo.epsilon;
  options.epsilon_high = config.grpo.epsilon_high.value_or(config.grpo.epsilon);
  options.beta = config.grpo.beta;
  options.kl_log_ratio_clamp = config.grpo.kl_log_ratio_clamp;
  options.max_completion_length = config.rollout.max_new_tokens;
  options.importance_sampling_level = config.grpo.importance_sampling_level;
  options.delta = config.grpo.delta;
  options.top_entropy_quantile = config.grpo.top_entropy_quantile;
  options.entropy_coef = config.grpo.entropy_coef;
  return options;
}

RolloutImportanceOptions MakeRolloutImportanceOptions(const GrpoSection& grpo) {
  RolloutImportanceOptions options;
  options.mode = grpo.rollout_importance_sampling_mode;
  options.clip_max = grpo.rollout_importance_sampling_clip_max;
  options.clip_min = grpo.rollout_importance_sampling_clip_min;
  return options;
}

// TR-DPO's reference update (TRL: trl/trainer/callbacks.py, SyncRefModelCallback):
// reference ← α·policy + (1 − α)·reference, parameter by parameter.
void MixIntoReference(model::DecoderImpl& reference, model::DecoderImpl& policy, double alpha) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> target = reference.parameters(), source = policy.parameters();
  if (target.size() != source.size()) {
    throw std::invalid_argument("grpo.sync_ref_model: the reference and the policy have different parameters");
  }
  for (size_t i = 0; i < target.size(); ++i) {
    target[i].mul_(1.0 - alpha).add_(source[i].to(target[i].scalar_type()), alpha);
  }
}

// One sampling round as every rank sees it: what the rules said of each completion of the
// round's global batch, and its length. Each rank fills the rows of its own prompts' groups;
// summed over the ranks, the table is the same everywhere, so that the group selection, the
// advantages and the metrics are those of one process sampling the whole batch.
struct RoundTable {
  // Per completion: scored (0/1), total, length, clipped (0/1), then per rule: ok (0/1), value.
  static constexpr int64_t kScored = 0, kTotal = 1, kLength = 2, kClipped = 3, kRules = 4;
  torch::Tensor rows;                     // [prompts * G, kRules + 2 * rules] float64
  std::vector<std::string> rule_names;    // in the reward's rule order

  int64_t size() const { return rows.size(0); }
  double At(int64_t row, int64_t field) const { return rows[row][field].item<double>(); }
};

// The table of `round` (this rank's prompts [first, first + round's prompts) of `prompts`),
// summed over the ranks.
RoundTable GatherRound(const ScoredRollout& round, int64_t first, int64_t prompts, int64_t group_size,
                       const World& world) {
  RoundTable table;
  const rewards::RewardResult& any = round.rewards.at(0).at(0);
  for (const rewards::RuleScore& c : any.components) table.rule_names.push_back(c.rule);
  const auto rules = static_cast<int64_t>(table.rule_names.size());
  if (world.Sum(static_cast<double>(rules)) != static_cast<double>(rules * world.size())) {
    throw std::runtime_error("rank " + std::to_string(world.rank()) + ": the ranks' rewards have different rules");
  }
  table.rows = torch::zeros({prompts * group_size, RoundTable::kRules + 2 * rules}, torch::kFloat64);
  auto rows = table.rows.accessor<double, 2>();
  for (const rollout::RolloutGroup& g : round.rollout.groups) {
    for (const rollout::Completion& c : g.completions) {
      const rewards::RewardResult& r = round.rewards[static_cast<size_t>(g.prompt_index)][static_cast<size_t>(c.sample_index)];
      const int64_t row = (first + g.prompt_index) * group_size + c.sample_index;
      rows[row][RoundTable::kScored] = r.total ? 1 : 0;
      rows[row][RoundTable::kTotal] = r.total.value_or(0.0);
      rows[row][RoundTable::kLength] = static_cast<double>(c.token_ids.size());
      rows[row][RoundTable::kClipped] = c.finish_reason == rollout::FinishReason::kLength ? 1 : 0;
      for (size_t k = 0; k < r.components.size() && static_cast<int64_t>(k) < rules; ++k) {
        const bool ok = r.components[k].status == rewards::ScoreStatus::kOk;
        rows[row][RoundTable::kRules + 2 * static_cast<int64_t>(k)] = ok ? 1 : 0;
        rows[row][RoundTable::kRules + 2 * static_cast<int64_t>(k) + 1] = ok ? r.components[k].value : 0.0;
      }
    }
  }
  world.SumTensor(table.rows);
  return table;
}

// What every completion sampled in a step adds to the metrics, whether its group joins the
// batch or not (as TRL reports the whole generation batch).
struct SampleStats {
  std::vector<double> rewards, group_stds, lengths, terminated_lengths;
  std::vector<std::pair<std::string, std::vector<double>>> per_rule;  // in the reward's rule order
  int64_t unscorable = 0, clipped = 0;
  double generation_s = 0, scoring_s = 0, scoring_tail_s = 0;

  void AddTimes(const ScoredRollout& round) {
    generation_s += round.rollout.stats.generation_seconds;
    scoring_s += round.rollout.stats.callback_seconds;
    scoring_tail_s += round.rollout.stats.callback_tail_seconds;
  }

  // Counts one round; returns each group's rewards.
  std::vector<GroupRewards> Add(const RoundTable& table, int64_t group_size) {
    if (per_rule.empty()) {
      for (const std::string& rule : table.rule_names) per_rule.push_back({rule, {}});
    }
    std::vector<GroupRewards> groups;
    auto rows = table.rows.accessor<double, 2>();
    for (int64_t first = 0; first < table.size(); first += group_size) {
      std::vector<std::optional<double>> values;
      for (int64_t row = first; row < first + group_size; ++row) {
        if (rows[row][RoundTable::kScored] != 0) rewards.push_back(rows[row][RoundTable::kTotal]);
        else ++unscorable;
        values.push_back(rows[row][RoundTable::kScored] != 0 ? std::optional<double>(rows[row][RoundTable::kTotal])
                                                              : std::nullopt);
        for (size_t k = 0; k < per_rule.size(); ++k) {
          const int64_t field = RoundTable::kRules + 2 * static_cast<int64_t>(k);
          if (rows[row][field] != 0) per_rule[k].second.push_back(rows[row][field + 1]);
        }
        lengths.push_back(rows[row][RoundTable::kLength]);
        if (rows[row][RoundTable::kClipped] != 0) ++clipped;
        else terminated_lengths.push_back(rows[row][RoundTable::kLength]);
      }
      group_stds.push_back(groups.emplace_back(std::move(values)).Std());
    }
    return groups;
  }

  void Write(const GroupSelector& selector, bool dynamic_sampling, nlohmann::ordered_json& m) const {
    m["reward"] = Mean(rewards);
    m["reward_std"] = RewardStd(rewards);  // TRL: of all the step's rewards (since Aug 2025)
    m["reward_std_within_group"] = Mean(group_stds);  // TRL's reward_std before then
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
    // TRL reports 0 for all three when every completion was clipped.
    m["completions/mean_terminated_length"] = Mean(terminated_lengths);
    m["completions/min_terminated_length"] =
        terminated_lengths.empty() ? 0.0 : *std::min_element(terminated_lengths.begin(), terminated_lengths.end());
    m["completions/max_terminated_length"] =
        terminated_lengths.empty() ? 0.0 : *std::max_element(terminated_lengths.begin(), terminated_lengths.end());
    if (dynamic_sampling) {
      m["dynamic_sampling/rounds"] = selector.rounds();
      m["dynamic_sampling/kept_groups"] = selector.kept();
    }
    m["time/generation"] = generation_s;
    m["time/scoring"] = scoring_s;
    m["time/scoring_tail"] = scoring_tail_s;
  }
};

// `rows` cut into `parts` contiguous ranges whose sizes differ by at most one (some empty when
// there are fewer rows than parts). A batch that dynamic sampling left short need not divide
// into mini- and micro-batches the way a full one must (config.cpp checks only the full one).
std::vector<std::pair<int64_t, int64_t>> SplitRows(std::pair<int64_t, int64_t> rows, int64_t parts) {
  const int64_t n = rows.second - rows.first;
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int64_t i = 0; i < parts; ++i) out.push_back({rows.first + n * i / parts, rows.first + n * (i + 1) / parts});
  return out;
}

torch::Tensor RowIndex(std::pair<int64_t, int64_t> rows) { return torch::arange(rows.first, rows.second, torch::kInt64); }

// Gives the records of the batch's local groups (group i's first record at first_record[i])
// the advantages of their rows ([local groups * G]).
void SetAdvantages(std::vector<CompletionRecord>& records, const std::vector<size_t>& first_record,
                   const torch::Tensor& advantages, int64_t group_size) {
  for (size_t i = 0; i < first_record.size(); ++i) {
    for (int64_t j = 0; j < group_size; ++j) {
      records[first_record[i] + static_cast<size_t>(j)].advantage =
          advantages[static_cast<int64_t>(i) * group_size + j].item<double>();
    }
  }
}

// Rows `index` of a [rows, C] tensor, its first `width` columns.
torch::Tensor Slice(const torch::Tensor& t, const torch::Tensor& index, int64_t width) {
  return t.index_select(0, index).narrow(1, 0, width);
}

// Each rank's `values`, stacked: [ranks, values' shape] on every rank.
torch::Tensor GatherRanks(const World& world, const torch::Tensor& values) {
  std::vector<int64_t> shape = values.sizes().vec();
  shape.insert(shape.begin(), world.size());
  torch::Tensor all = torch::zeros(shape, values.options());
  all[world.rank()].copy_(values);
  world.SumTensor(all);  // every other rank's row is 0 here: the sum is the stack
  return all;
}

// `rows` right-padded with 0 to `width` columns: [rows, width] float32.
torch::Tensor PadRows(const std::vector<std::vector<float>>& rows, int64_t width) {
  torch::Tensor out = torch::zeros({static_cast<int64_t>(rows.size()), width}, torch::kFloat32);
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].empty()) continue;
    out[static_cast<int64_t>(r)].narrow(0, 0, static_cast<int64_t>(rows[r].size()))
        .copy_(torch::tensor(rows[r], torch::kFloat32));
  }
  return out;
}

// The sampler/trainer importance weights of a micro-batch whose loss inputs are `in`. As TRL,
// against the old log-probs: the step's frozen ones, or (one update per step) the loss's own.
RolloutImportance MicroBatchRolloutImportance(const PolicyLossInputs& in, const torch::Tensor& sampler_logprobs,
                                              const GrpoSection& grpo) {
  return RolloutImportanceWeights(in.old_logprobs.defined() ? in.old_logprobs : in.logprobs.detach(),
                                  sampler_logprobs, in.mask, MakeRolloutImportanceOptions(grpo));
}

// Whether the loss needs each token's entropy (with its gradient, for the bonus).
bool LossNeedsEntropy(const GrpoSection& grpo) { return grpo.top_entropy_quantile < 1 || grpo.entropy_coef > 0; }

}  // namespace

// The sequences of one step. `groups` are the rewards of every kept group of the global batch
// (the same on every rank: advantages are computed over all of them); this rank holds the
// sequences of `local` of them, flattened (group local[i]'s completions at rows i*G..).
struct GrpoTrainer::Batch {
  std::vector<GroupRewards> groups;
  std::vector<size_t> local;  // indices into groups, in order
  std::vector<std::vector<int32_t>> prompt_ids, completion_ids;
  std::vector<bool> truncated;
  std::vector<std::vector<float>> sampler_logprob_rows;  // the rollout engine's, per token
  TokenBatch tokens;
  torch::Tensor advantages;  // [rows]
  torch::Tensor loss_mask;   // [rows, C]
  torch::Tensor sampler_logprobs;  // [rows, C], for grpo.rollout_importance_sampling_correction
  torch::Tensor old_logprobs, ref_logprobs;  // [rows, C] or undefined

  bool empty() const { return groups.empty(); }  // on every rank alike
  int64_t rows() const { return static_cast<int64_t>(completion_ids.size()); }

  void Keep(GroupRewards rewards) { groups.push_back(std::move(rewards)); }

  void AppendLocal(const std::vector<int32_t>& prompt, const rollout::RolloutGroup& group) {
    for (const rollout::Completion& c : group.completions) {
      prompt_ids.push_back(prompt);
      completion_ids.push_back(c.token_ids);
      truncated.push_back(c.finish_reason == rollout::FinishReason::kLength);
      sampler_logprob_rows.push_back(c.logprobs);
    }
    local.push_back(groups.size() - 1);
  }

  // Advantages over every kept group, then this rank's rows. Unscorable completions take their
  // group's scored mean (no effect on the baseline) and are masked out of the loss.
  void ComputeAdvantagesAndMask(const GrpoSection& grpo, int64_t group_size) {
    std::vector<double> filled;
    for (const GroupRewards& group : groups) {
      for (const std::optional<double>& r : group.values()) filled.push_back(r.value_or(group.Mean()));
    }
    AdvantageOptions options;
    options.scale_rewards = grpo.scale_rewards;
    options.rloo = grpo.rloo;
    options.eps = grpo.advantage_eps;
    const torch::Tensor all = ComputeGroupAdvantages(torch::tensor(filled, torch::kDouble), group_size, options)
                                  .advantages.to(torch::kFloat32);
    if (local.empty()) return;  // this rank holds none of the kept groups
    std::vector<int64_t> rows_of_local;
    std::vector<float> keep;
    for (size_t g : local) {
      for (int64_t j = 0; j < group_size; ++j) {
        rows_of_local.push_back(static_cast<int64_t>(g) * group_size + j);
        const bool scored = groups[g].values()[static_cast<size_t>(j)].has_value();
        keep.push_back(scored && !(grpo.mask_truncated_completions && truncated[keep.size()]) ? 1.0f : 0.0f);
      }
    }
    advantages = all.index_select(0, torch::tensor(rows_of_local, torch::kInt64));
    tokens = MakeTokenBatch(prompt_ids, completion_ids);
    loss_mask = tokens.completion_mask * torch::tensor(keep).unsqueeze(1);
    sampler_logprobs = PadRows(sampler_logprob_rows, tokens.completion_ids.size(1));
  }

  // The loss's inputs of rows `index` but the policy's log-probs, `width` completion columns.
  PolicyLossInputs LossInputs(const torch::Tensor& index, int64_t width) const {
    PolicyLossInputs in;
    in.mask = Slice(loss_mask, index, width);
    in.advantages = advantages.index_select(0, index);
    if (old_logprobs.defined()) in.old_logprobs = Slice(old_logprobs, index, width);
    if (ref_logprobs.defined()) in.ref_logprobs = Slice(ref_logprobs, index, width);
    return in;
  }
};

// The running sums of one step's updates, token-weighted where TRL weights by tokens.
struct GrpoTrainer::UpdateTallies {
  double loss = 0, grad_norm = 0, kl = 0, tokens = 0;
  // Clip ratios weighted by what each micro-batch's are a mean over (tokens, or sequences).
  double clip_low = 0, clip_high = 0, clip_region = 0, cispo_clip = 0, ratio_count = 0;
  double entropy = 0, entropy_tokens = 0, learning_rate = 0, backward_s = 0, gradient_sum_s = 0, optimizer_s = 0;
  // One row per micro-batch slot of the step (update u's micro-batch k: u·accumulation + k, the
  // same slots on every rank): [has a sequence, low-clipped share min, high-clipped share max].
  int64_t first_update = 0;
  torch::Tensor clip_extremes;
  ValueRange rollout_weight, rollout_logp_diff;  // each token once (the first pass)

  UpdateTallies(int64_t first_update, int64_t slots)
      : first_update(first_update), clip_extremes(torch::zeros({slots, 3}, torch::kFloat64)) {}

  void AddMicroBatch(const PolicyLoss& l, const CompletionLogprobs& lp, const torch::Tensor& mask, bool first_pass,
                     int64_t slot) {
    kl += l.kl * l.tokens;
    clip_low += l.clip_ratio_low * l.ratio_count;
    clip_high += l.clip_ratio_high * l.ratio_count;
    clip_region += l.clip_ratio_region * l.ratio_count;
    cispo_clip += l.cispo_clip_ratio * l.ratio_count;
    ratio_count += l.ratio_count;
    tokens += l.tokens;
    if (l.clip_ratio_low_min && l.clip_ratio_high_max) {
      clip_extremes[slot].copy_(torch::tensor({1.0, *l.clip_ratio_low_min, *l.clip_ratio_high_max}, torch::kFloat64));
    }
    if (first_pass && lp.entropy.defined()) {
      entropy += (lp.entropy.detach() * mask).sum().item<double>();
      entropy_tokens += mask.sum().item<double>();
    }
  }

  void AddRolloutImportance(const RolloutImportance& is) {
    rollout_weight.Merge(is.weight);
    rollout_logp_diff.Merge(is.logp_diff);
  }

  // The sums of every rank's share; grad_norm and learning_rate are the same on every rank,
  // the timings stay this rank's. Minima and maxima over the ranks, as TRL's gathers.
  void SumOverRanks(const World& world) {
    for (double* sum : {&loss, &kl, &clip_low, &clip_high, &clip_region, &cispo_clip, &ratio_count, &tokens, &entropy,
                        &entropy_tokens}) {
      *sum = world.Sum(*sum);
    }
    for (ValueRange* range : {&rollout_weight, &rollout_logp_diff}) {
      const torch::Tensor all = GatherRanks(world, torch::tensor({range->min, range->max}, torch::kFloat64));
      range->min = all.select(1, 0).min().item<double>();
      range->max = all.select(1, 1).max().item<double>();
      range->sum = world.Sum(range->sum);
      range->count = world.Sum(range->count);
    }
    if (world.size() > 1) clip_extremes = MergeClipExtremes(GatherRanks(world, clip_extremes));
  }

  // [ranks, slots, 3] -> [slots, 3]: per slot, the min and max over the ranks that had a sequence.
  static torch::Tensor MergeClipExtremes(const torch::Tensor& all) {
    const torch::Tensor present = all.select(2, 0) > 0;  // [ranks, slots]
    const double inf = std::numeric_limits<double>::infinity();
    const torch::Tensor low = all.select(2, 1).masked_fill(~present, inf).amin(0);
    const torch::Tensor high = all.select(2, 2).masked_fill(~present, -inf).amax(0);
    return torch::stack({present.any(0).to(torch::kFloat64), low, high}, 1);
  }

  void Write(nlohmann::ordered_json& m, double updates, const GrpoSection& grpo) const {
    const double token_count = std::max(tokens, 1.0);
    const double ratio_n = std::max(ratio_count, 1.0);
    if (grpo.beta > 0) m["kl"] = kl / token_count;
    m["entropy"] = entropy_tokens > 0 ? entropy / entropy_tokens : 0.0;
    if (grpo.loss_type == LossType::kCispo) {  // TRL reports cispo's capped share instead
      m["cispo_clip_ratio"] = cispo_clip / ratio_n;
    } else {
      m["clip_ratio/low_mean"] = clip_low / ratio_n;
      m["clip_ratio/high_mean"] = clip_high / ratio_n;
      m["clip_ratio/region_mean"] = clip_region / ratio_n;
      // TRL logs each micro-batch's extreme and averages them over the logging step.
      const torch::Tensor present = clip_extremes.select(1, 0) > 0;
      const bool any = present.any().item<bool>();
      m["clip_ratio/low_min"] = any ? clip_extremes.select(1, 1).masked_select(present).mean().item<double>() : 0.0;
      m["clip_ratio/high_max"] = any ? clip_extremes.select(1, 2).masked_select(present).mean().item<double>() : 0.0;
    }
    if (grpo.rollout_importance_sampling_correction) {
      const bool weights = rollout_weight.count > 0, diffs = rollout_logp_diff.count > 0;
      m["sampling/sampling_logp_difference/mean"] = rollout_logp_diff.mean();
      m["sampling/sampling_logp_difference/max"] = diffs ? rollout_logp_diff.max : 0.0;
      m["sampling/importance_sampling_ratio/min"] = weights ? rollout_weight.min : 0.0;
      m["sampling/importance_sampling_ratio/mean"] = rollout_weight.mean();
      m["sampling/importance_sampling_ratio/max"] = weights ? rollout_weight.max : 0.0;
    }
    m["loss"] = loss / updates;
    m["grad_norm"] = grad_norm / updates;
    m["learning_rate"] = learning_rate;
  }
};

GrpoTrainer::GrpoTrainer(const TrainConfig& config, Policy& policy, Policy* reference,
                         std::span<const data::Example> prompts, ScoreFn score, const World& world)
    : config_(config),
      world_(world),
      policy_(policy),
      reference_(reference),
      prompts_(prompts),
      score_(std::move(score)),
      // Sampling from the policy itself (rollout float32) would widen the base at every token.
      base_in_bf16_(policy, config.grpo.train_dtype == Precision::kBFloat16 && config.rollout.dtype == Precision::kBFloat16),
      rollout_options_(MakeRolloutOptions(config, world)),
      sampler_(static_cast<int64_t>(prompts.size()), common::DeriveSeed(static_cast<uint64_t>(config.run.seed), "grpo order"), config.data.shuffle),
      parameters_(TrainableParameters(policy)),
      gradient_sum_(world, parameters_),
      optimizer_(MakeAdamW(parameters_, config.grpo.optim)),
      guard_(config.grpo.max_nonfinite_steps) {
  if (config.grpo.beta > 0 && reference == nullptr && !policy.lora.enabled()) {
    throw std::invalid_argument("grpo.beta > 0 needs a reference model (or a policy with LoRA adapters)");
  }
  if (config.grpo.prompts_per_step < world.size()) {
    throw std::invalid_argument("grpo.prompts_per_step (" + std::to_string(config.grpo.prompts_per_step) +
                                ") is smaller than the number of ranks (" + std::to_string(world.size()) +
                                "): every rank samples at least one group per round");
  }
  if (config.grpo.sync_ref_model && reference == nullptr) {
    throw std::invalid_argument("grpo.sync_ref_model needs a reference model");
  }
  if (reference_ != nullptr) {
    for (torch::Tensor& p : reference_->model->parameters()) p.set_requires_grad(false);
    reference_->model->eval();
    // Its passes compute as the policy's: under bf16 training they read bf16 casts of its matrices,
    // so keeping them in bf16 gives the same log-probs in half the memory.
    if (config.grpo.train_dtype == Precision::kBFloat16) reference_->model->StoreLinearsIn(torch::kBFloat16);
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
  Batch batch = SampleBatch(m);  // 1-3: sample, score, advantages
  if (batch.empty()) {
    SkipUpdate(m);  // dynamic sampling found no group with signal: nothing to learn
  } else {
    const bool bf16 = config_.grpo.train_dtype == Precision::kBFloat16;
    TrainingPasses passes(*policy_.model, bf16, config_.grpo.gradient_checkpointing);
    std::optional<TrainingPasses> reference_passes;  // the KL's log-probs computed as the policy's
    if (reference_ != nullptr) reference_passes.emplace(*reference_->model, bf16, false);
    ComputeFrozenLogprobs(batch, m);  // 4
    Optimize(batch, m);               // 5
  }
  m["step_time"] = Since(start);
  ++step_;
  return m;
}

std::vector<Prompt> GrpoTrainer::DrawPrompts() {
  std::vector<Prompt> prompts;
  for (int64_t index : sampler_.Next(config_.grpo.prompts_per_step)) {
    const data::Example& e = prompts_[static_cast<size_t>(index)];
    std::string text = RenderPrompt(config_.tokenizer, e);
    std::vector<int32_t> ids = policy_.tokenizer->Encode(text);
    prompts.push_back({std::move(ids), std::move(text), e.answer});
  }
  return prompts;
}

// 1-3: rounds of prompts sampled and scored until the selector has the batch. Every rank draws
// the same prompts and samples and scores its share of the groups; the round's table (summed
// over the ranks) gives every rank the same selection.
GrpoTrainer::Batch GrpoTrainer::SampleBatch(nlohmann::ordered_json& m) {
  rollout::SamplingParams sampling = MakeSamplingParams(config_, policy_);
  const int64_t group_size = config_.rollout.num_generations;
  Batch batch;
  SampleStats stats;
  GroupSelector selector(config_.grpo);
  torch::NoGradGuard no_grad;
  completions_.clear();
  std::vector<size_t> kept_records;  // the first record of each of the batch's local groups
  // A copy of the current policy (the last update, or a checkpoint restored into it), made for
  // this sampling only: the update has no use for its memory (1 GB at 0.5B).
  sampling_copy_ = MakeSamplingCopy(config_, policy_);
  const rollout::RolloutEngine engine(sampling_copy_ ? *sampling_copy_ : *policy_.model, *policy_.tokenizer, rollout_options_);
  while (!selector.done()) {
    const std::vector<Prompt> prompts = DrawPrompts();
    const auto [first, last] = world_.Shard(static_cast<int64_t>(prompts.size()));
    sampling.seed = common::DeriveSeed(static_cast<uint64_t>(config_.run.seed), "rollout",
                                       {static_cast<uint64_t>(step_), static_cast<uint64_t>(selector.rounds())});
    sampling.first_stream = first;
    const auto mine = std::span<const Prompt>(prompts).subspan(static_cast<size_t>(first), static_cast<size_t>(last - first));
    const ScoredRollout round = RunAndScore(engine, mine, sampling, score_);
    const size_t round_records = completions_.size();
    for (CompletionRecord& r : ToCompletionRecords(step_ + 1, mine, round)) completions_.push_back(std::move(r));
    stats.AddTimes(round);
    std::vector<GroupRewards> rewards =
        stats.Add(GatherRound(round, first, static_cast<int64_t>(prompts.size()), group_size, world_), group_size);
    for (size_t g : selector.Offer(rewards)) {
      batch.Keep(std::move(rewards[g]));
      const int64_t local = static_cast<int64_t>(g) - first;
      if (local >= 0 && local < last - first) {
        batch.AppendLocal(prompts[g].ids, round.rollout.groups[static_cast<size_t>(local)]);
        kept_records.push_back(round_records + static_cast<size_t>(local * group_size));
      }
    }
  }
  sampling_copy_ = model::Decoder(nullptr);
  stats.Write(selector, config_.grpo.dynamic_sampling, m);
  // TRL's epoch: passes over the training prompts so far, fractional.
  const data::EpochSampler::Position at = sampler_.position();
  m["epoch"] = static_cast<double>(at.epoch) + static_cast<double>(at.offset) / static_cast<double>(prompts_.size());
  if (!batch.empty()) batch.ComputeAdvantagesAndMask(config_.grpo, group_size);
  SetAdvantages(completions_, kept_records, batch.advantages, group_size);
  return batch;
}

int64_t GrpoTrainer::UpdatesPerStep() const { return config_.grpo.num_iterations * config_.grpo.num_mini_batches; }

// A step without a batch still advances the learning-rate schedule as a full one would.
void GrpoTrainer::SkipUpdate(nlohmann::ordered_json& m) {
  m["loss"] = 0.0;
  m["grad_norm"] = 0.0;
  m["learning_rate"] = ScheduledLearningRate(config_.grpo.optim, updates_, config_.grpo.steps * UpdatesPerStep());
  m["skipped_updates"] = guard_.skipped();
  updates_ += UpdatesPerStep();
}

std::vector<GrpoTrainer::Rows> GrpoTrainer::MiniBatches(const Batch& batch) const {
  return SplitRows({0, batch.rows()}, config_.grpo.num_mini_batches);
}

std::vector<GrpoTrainer::Rows> GrpoTrainer::MicroBatches(Rows mini) const {
  return SplitRows(mini, config_.grpo.gradient_accumulation_steps);
}

// Log-probs of `model` over the whole batch without gradient, in the same micro-batches as the
// update, so that float rounding matches.
torch::Tensor GrpoTrainer::FrozenLogprobs(model::DecoderImpl& model, const Batch& batch) const {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (Rows mini : MiniBatches(batch)) {
    for (Rows micro : MicroBatches(mini)) {
      if (micro.first == micro.second) continue;
      TokenBatch sub = SelectRows(batch.tokens, RowIndex(micro));
      torch::Tensor lp = ComputeCompletionLogprobs(model, sub, config_.rollout.temperature,
                                                   config_.grpo.logprob_chunk_size, false).logprobs;
      parts.push_back(torch::constant_pad_nd(lp, {0, batch.tokens.completion_ids.size(1) - lp.size(1)}));
    }
  }
  return torch::cat(parts, 0);
}

// 4: the sampling policy's log-probs (when the batch is used for more than one update) and the
// reference's (for the KL term).
void GrpoTrainer::ComputeFrozenLogprobs(Batch& batch, nlohmann::ordered_json& m) {
  auto t0 = Clock::now();
  const bool rows = batch.rows() > 0;  // a rank may hold none of the kept groups
  if (rows && UpdatesPerStep() > 1) batch.old_logprobs = FrozenLogprobs(*policy_.model, batch);
  m["time/old_logprobs"] = Since(t0);
  t0 = Clock::now();
  if (rows && config_.grpo.beta > 0) {
    if (reference_ != nullptr) {
      batch.ref_logprobs = FrozenLogprobs(*reference_->model, batch);
    } else {  // LoRA: the reference is the base, the policy with its adapters off
      model::AdaptersDisabled base(*policy_.model);
      batch.ref_logprobs = FrozenLogprobs(*policy_.model, batch);
    }
  }
  m["time/ref_logprobs"] = Since(t0);
}

// 5: μ passes over the batch, one optimizer step per mini-batch.
void GrpoTrainer::Optimize(const Batch& batch, nlohmann::ordered_json& m) {
  UpdateTallies tallies(updates_, UpdatesPerStep() * config_.grpo.gradient_accumulation_steps);
  policy_.model->train();
  for (int64_t iteration = 0; iteration < config_.grpo.num_iterations; ++iteration) {
    for (Rows mini : MiniBatches(batch)) {
      // A short batch with fewer rows than mini-batches (on every rank) skips an update, and
      // keeps the learning-rate schedule in step.
      if (world_.Sum(static_cast<double>(mini.second - mini.first)) == 0) {
        ++updates_;
        continue;
      }
      UpdateMiniBatch(batch, mini, /*first_pass=*/iteration == 0, tallies);
    }
  }
  policy_.model->eval();
  // Prompt and completion tokens.
  num_tokens_ += world_.Sum(batch.rows() > 0 ? batch.tokens.key_mask.sum().item<double>() : 0.0);
  tallies.SumOverRanks(world_);
  tallies.Write(m, static_cast<double>(UpdatesPerStep()), config_.grpo);
  m["num_tokens"] = num_tokens_;
  m["skipped_updates"] = guard_.skipped();
  m["time/backward"] = tallies.backward_s;
  m["time/gradient_sum"] = tallies.gradient_sum_s;  // summing gradients over the ranks (waits included)
  m["time/optimizer"] = tallies.optimizer_s;
}

// One optimizer step over `mini`: gradients accumulated over its micro-batches, clipped, and
// applied unless they are not finite.
void GrpoTrainer::UpdateMiniBatch(const Batch& batch, Rows mini, bool first_pass, UpdateTallies& tallies) {
  auto t0 = Clock::now();
  optimizer_.zero_grad();
  bool finite = true;
  const double loss = AccumulateGradients(batch, mini, first_pass, tallies, &finite);
  tallies.backward_s += Since(t0);
  t0 = Clock::now();
  gradient_sum_.Finish();  // on every rank, finite or not: the buckets are collectives
  tallies.gradient_sum_s += Since(t0);
  t0 = Clock::now();
  // Every rank skips the update when one rank's loss was not finite.
  GradientCheck check{0, false};
  if (world_.Sum(finite ? 0.0 : 1.0) == 0) check = ClipGradients(parameters_, config_.grpo.optim.max_grad_norm);
  tallies.learning_rate = ScheduledLearningRate(config_.grpo.optim, updates_, config_.grpo.steps * UpdatesPerStep());
  SetLearningRate(optimizer_, tallies.learning_rate);
  if (guard_.Admit(check.finite)) optimizer_.step();
  optimizer_.zero_grad();
  ++updates_;
  if (config_.grpo.sync_ref_model && updates_ % config_.grpo.ref_model_sync_steps == 0) {
    MixIntoReference(*reference_->model, *policy_.model, config_.grpo.ref_model_mixup_alpha);
  }
  tallies.optimizer_s += Since(t0);
  tallies.loss += loss;
  tallies.grad_norm += check.norm;
}

// Forward and backward of each micro-batch of `mini`; returns the summed loss, stopping with
// *finite = false at the first micro-batch whose loss is not finite. Entropy is measured on
// the first pass over the batch only.
double GrpoTrainer::AccumulateGradients(const Batch& batch, Rows mini, bool first_pass, UpdateTallies& tallies,
                                        bool* finite) {
  // Normalised over the mini-batch of all ranks, as one process would over the whole of it.
  PolicyLossOptions options = MakeLossOptions(config_);
  options.total_sequences = static_cast<int64_t>(world_.Sum(static_cast<double>(mini.second - mini.first)));
  options.total_tokens = world_.Sum(mini.first == mini.second ? 0.0
                                                              : batch.loss_mask.slice(0, mini.first, mini.second).sum().item<double>());
  const std::vector<Rows> micros = MicroBatches(mini);
  options.micro_batches = static_cast<int64_t>(world_.Sum(static_cast<double>(
      std::count_if(micros.begin(), micros.end(), [](Rows r) { return r.first < r.second; }))));
  double loss_sum = 0;
  size_t last = 0;  // the last micro-batch with rows (empty ones may lie between others)
  for (size_t k = 0; k < micros.size(); ++k) last = micros[k].first < micros[k].second ? k : last;
  for (size_t k = 0; k < micros.size(); ++k) {
    const Rows micro = micros[k];
    if (micro.first == micro.second) continue;
    const torch::Tensor index = RowIndex(micro);
    const TokenBatch sub = SelectRows(batch.tokens, index);
    const int64_t width = sub.completion_ids.size(1);
    const CompletionLogprobs lp =
        ComputeCompletionLogprobs(*policy_.model, sub, config_.rollout.temperature, config_.grpo.logprob_chunk_size,
                                  first_pass || LossNeedsEntropy(config_.grpo));
    PolicyLossInputs in = batch.LossInputs(index, width);
    in.logprobs = lp.logprobs;
    in.entropy = lp.entropy;
    if (config_.grpo.rollout_importance_sampling_correction) {
      const RolloutImportance is = MicroBatchRolloutImportance(in, Slice(batch.sampler_logprobs, index, width), config_.grpo);
      in.rollout_weights = is.weights;
      if (first_pass) tallies.AddRolloutImportance(is);
    }
    const PolicyLoss loss = ComputePolicyLoss(in, options);
    const double value = loss.loss.item<double>();
    if (!std::isfinite(value)) {
      *finite = false;
      break;
    }
    loss_sum += value;
    // The last micro-batch's backward completes the gradients: sum them over the ranks as it goes.
    if (k == last) gradient_sum_.Arm();
    if (loss.loss.requires_grad()) loss.loss.backward();
    const int64_t slot = (updates_ - tallies.first_update) * config_.grpo.gradient_accumulation_steps + static_cast<int64_t>(k);
    tallies.AddMicroBatch(loss, lp, in.mask, first_pass, slot);
  }
  return loss_sum;
}

}  // namespace rl::trainer

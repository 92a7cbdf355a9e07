// The configuration schema is written once, in VisitConfig (common/config_schema.h): the YAML
// reader binds YAML to the structs (checking types, ranges and unknown keys), the writer
// prints them. Adding a field means adding one line there.
#include "trainer/config.h"

#include <fstream>
#include <sstream>
#include <string>

#include "common/config_yaml.h"

namespace rl::trainer {
namespace {

using common::AtLeast;
using common::Between;
using common::Choices;
using common::StringOrList;
using common::YamlSubtree;

const Choices<LossType> kLossTypes = {{"grpo", LossType::kGrpo},
                                      {"dapo", LossType::kDapo},
                                      {"dr_grpo", LossType::kDrGrpo},
                                      {"bnpo", LossType::kBnpo},
                                      {"cispo", LossType::kCispo}};
const Choices<ImportanceSamplingLevel> kIsLevels = {{"token", ImportanceSamplingLevel::kToken},
                                                    {"sequence", ImportanceSamplingLevel::kSequence}};
const Choices<RolloutIsMode> kRolloutIsModes = {{"token_truncate", RolloutIsMode::kTokenTruncate},
                                                {"token_mask", RolloutIsMode::kTokenMask},
                                                {"sequence_truncate", RolloutIsMode::kSequenceTruncate},
                                                {"sequence_mask", RolloutIsMode::kSequenceMask}};
const Choices<ScaleRewards> kScaleRewards = {{"group", ScaleRewards::kGroup},
                                             {"batch", ScaleRewards::kBatch},
                                             {"none", ScaleRewards::kNone}};
const Choices<LrSchedule> kLrSchedules = {{"constant", LrSchedule::kConstant},
                                          {"cosine", LrSchedule::kCosine},
                                          {"linear", LrSchedule::kLinear}};
const Choices<PromptFormat> kPromptFormats = {{"plain", PromptFormat::kPlain},    {"auto", PromptFormat::kAuto},
                                              {"chatml", PromptFormat::kChatMl},
                                              {"qwen3", PromptFormat::kQwen3},    {"llama3", PromptFormat::kLlama3},
                                              {"llama3.2", PromptFormat::kLlama32}};
const Choices<Precision> kPrecisions = {{"float32", Precision::kFloat32},
                                              {"bfloat16", Precision::kBFloat16}};

template <class V>
void VisitOptimizer(V& v, OptimizerSection& o) {
  v.Field("learning_rate", o.learning_rate, AtLeast(0));
  v.Choice("lr_scheduler_type", o.lr_scheduler_type, kLrSchedules);
  v.Field("warmup_ratio", o.warmup_ratio, Between(0, 1));
  v.Field("weight_decay", o.weight_decay, AtLeast(0));
  v.Field("adam_beta1", o.adam_beta1, Between(0, 0.999999));
  v.Field("adam_beta2", o.adam_beta2, Between(0, 0.999999));
  v.Field("adam_epsilon", o.adam_epsilon, AtLeast(0));
  v.Field("max_grad_norm", o.max_grad_norm, AtLeast(0));
}

// PEFT's names (r, alpha as lora_alpha is in adapter_config.json, dropout, target_modules).
template <class V>
void VisitLora(V& v, model::LoraConfig& l) {
  v.Field("r", l.r, AtLeast(0));
  v.Field("alpha", l.alpha, AtLeast(1e-9));
  v.Field("dropout", l.dropout, Between(0, 0.999999));
  v.Field("target_modules", l.target_modules);
  v.Field("use_rslora", l.use_rslora);
}

template <class V>
void VisitRun(V& v, RunSection& s) {
  v.Field("name", s.name);
  v.Field("output_dir", s.output_dir);
  v.Field("seed", s.seed, AtLeast(0));
  v.Field("threads", s.threads, AtLeast(0));
  v.Field("collective_timeout_s", s.collective_timeout_s, AtLeast(0.001));
  v.Field("logging_steps", s.logging_steps, AtLeast(1));
  v.Field("tensorboard", s.tensorboard);
  v.Field("log_completions_steps", s.log_completions_steps, AtLeast(0));
  v.Field("num_completions_to_print", s.num_completions_to_print, AtLeast(0));
}

template <class V>
void VisitModel(V& v, ModelSection& s) {
  v.Field("path", s.path);
  v.Section("tiny", [&] {
    TinyModelSection& t = s.tiny;
    v.Field("hidden_size", t.hidden_size, AtLeast(1));
    v.Field("intermediate_size", t.intermediate_size, AtLeast(1));
    v.Field("num_hidden_layers", t.num_hidden_layers, AtLeast(1));
    v.Field("num_attention_heads", t.num_attention_heads, AtLeast(1));
    v.Field("num_key_value_heads", t.num_key_value_heads, AtLeast(1));
    v.Field("max_position_embeddings", t.max_position_embeddings, AtLeast(8));
    v.Field("rope_theta", t.rope_theta, AtLeast(1));
    v.Field("rms_norm_eps", t.rms_norm_eps, AtLeast(0));
    v.Field("tie_word_embeddings", t.tie_word_embeddings);
    v.Field("init_std", t.init_std, AtLeast(0));
  });
}

template <class V>
void VisitTokenizer(V& v, TokenizerSection& s) {
  v.Field("path", s.path);
  v.Field("train_vocab_size", s.train_vocab_size, Between(260, 1 << 20));
  v.Field("eos_token", s.eos_token);
  v.Choice("prompt_format", s.prompt_format, kPromptFormats);
  v.Field("enable_thinking", s.enable_thinking);
  v.Field("system_prompt", s.system_prompt);
}

template <class V>
void VisitData(V& v, DataSection& s) {
  v.Field("train_file", s.train_file);
  v.Field("eval_file", s.eval_file);
  v.Field("prompt_key", s.prompt_key);
  v.Field("answer_key", s.answer_key);
  v.Field("response_key", s.response_key);
  v.Field("shuffle", s.shuffle);
  v.Section("task", [&] {
    TaskSection& t = s.task;
    v.Field("name", t.name);
    v.Field("num_train", t.num_train, AtLeast(1));
    v.Field("num_eval", t.num_eval, AtLeast(0));
    v.Field("max_numerator", t.max_numerator, Between(1, 99));
    v.Field("max_denominator", t.max_denominator, Between(2, 99));
    v.Field("teacher_slip_rate", t.teacher_slip_rate, Between(0, 1));
  });
}

template <class V>
void VisitRewards(V& v, RewardsSection& s) {
  v.Field("spec_file", s.spec_file);
  v.Field("spec", YamlSubtree{&s.spec});
  v.Field("server", StringOrList{&s.server});
  v.Field("reward_name", s.reward_name);
  v.Field("max_retries", s.max_retries, AtLeast(0));
  v.Field("retry_backoff_s", s.retry_backoff_s, AtLeast(0));
  v.Field("timeout_s", s.timeout_s, AtLeast(0.001));
  v.Field("threads", s.threads, AtLeast(0));
}

template <class V>
void VisitRollout(V& v, RolloutSection& s) {
  v.Field("num_generations", s.num_generations, AtLeast(1));
  v.Field("max_new_tokens", s.max_new_tokens, AtLeast(1));
  v.Field("temperature", s.temperature, AtLeast(0));
  v.Field("top_k", s.top_k, AtLeast(0));
  v.Field("top_p", s.top_p, Between(1e-9, 1));
  v.Field("min_p", s.min_p, Between(0, 0.999999));
  v.Field("stop_strings", s.stop_strings);
  v.Field("repetition_penalty", s.repetition_penalty, AtLeast(1e-9));
  v.Field("batch_size", s.batch_size, AtLeast(1));
  v.Field("workers", s.workers, AtLeast(1));
  v.Choice("dtype", s.dtype, kPrecisions);
}

template <class V>
void VisitSft(V& v, SftSection& s) {
  v.Field("steps", s.steps, AtLeast(0));
  v.Field("batch_size", s.batch_size, AtLeast(1));
  v.Field("max_length", s.max_length, AtLeast(2));
  VisitOptimizer(v, s.optim);
  v.Section("lora", [&] { VisitLora(v, s.lora); });
  v.Choice("train_dtype", s.train_dtype, kPrecisions);
  v.Field("gradient_checkpointing", s.gradient_checkpointing);
}

template <class V>
void VisitGrpo(V& v, GrpoSection& s) {
  v.Field("steps", s.steps, AtLeast(0));
  v.Field("prompts_per_step", s.prompts_per_step, AtLeast(1));
  v.Field("num_iterations", s.num_iterations, AtLeast(1));
  v.Field("num_mini_batches", s.num_mini_batches, AtLeast(1));
  v.Field("gradient_accumulation_steps", s.gradient_accumulation_steps, AtLeast(1));
  VisitOptimizer(v, s.optim);
  v.Field("beta", s.beta, AtLeast(0));
  v.Field("epsilon", s.epsilon, Between(0, 1));
  v.Field("epsilon_high", s.epsilon_high, AtLeast(0));
  v.Field("delta", s.delta, AtLeast(1));
  v.Choice("loss_type", s.loss_type, kLossTypes);
  v.Choice("importance_sampling_level", s.importance_sampling_level, kIsLevels);
  v.Field("top_entropy_quantile", s.top_entropy_quantile, Between(0, 1));
  v.Field("entropy_coef", s.entropy_coef, AtLeast(0));
  v.Choice("scale_rewards", s.scale_rewards, kScaleRewards);
  v.Field("rloo", s.rloo);
  v.Field("advantage_eps", s.advantage_eps, AtLeast(0));
  v.Field("mask_truncated_completions", s.mask_truncated_completions);
  v.Field("kl_log_ratio_clamp", s.kl_log_ratio_clamp, AtLeast(0.001));
  v.Field("logprob_chunk_size", s.logprob_chunk_size, AtLeast(1));
  v.Field("dynamic_sampling", s.dynamic_sampling);
  v.Field("dynamic_sampling_max_rounds", s.dynamic_sampling_max_rounds, AtLeast(1));
  v.Field("max_nonfinite_steps", s.max_nonfinite_steps, AtLeast(1));
  v.Field("sync_ref_model", s.sync_ref_model);
  v.Field("ref_model_mixup_alpha", s.ref_model_mixup_alpha, Between(0, 1));
  v.Field("ref_model_sync_steps", s.ref_model_sync_steps, AtLeast(1));
  v.Field("rollout_importance_sampling_correction", s.rollout_importance_sampling_correction);
  v.Choice("rollout_importance_sampling_mode", s.rollout_importance_sampling_mode, kRolloutIsModes);
  v.Field("rollout_importance_sampling_clip_max", s.rollout_importance_sampling_clip_max, AtLeast(1e-9));
  v.Field("rollout_importance_sampling_clip_min", s.rollout_importance_sampling_clip_min, AtLeast(0));
  v.Section("lora", [&] { VisitLora(v, s.lora); });
  v.Choice("train_dtype", s.train_dtype, kPrecisions);
  v.Field("gradient_checkpointing", s.gradient_checkpointing);
}

template <class V>
void VisitEval(V& v, EvalSection& s) {
  v.Field("num_problems", s.num_problems, AtLeast(0));
  v.Field("num_samples", s.num_samples, AtLeast(1));
  v.Field("temperature", s.temperature, AtLeast(0));
  v.Field("max_new_tokens", s.max_new_tokens, AtLeast(0));
  v.Field("every", s.every, AtLeast(0));
}

template <class V>
void VisitCheckpoint(V& v, CheckpointSection& s) {
  v.Field("every", s.every, AtLeast(0));
  v.Field("keep_last", s.keep_last, AtLeast(1));
  v.Field("max_shard_size_mb", s.max_shard_size_mb, AtLeast(1));
}

// The whole schema, section by section; adding a field means adding one line to its section.
template <class V>
void VisitConfig(V& v, TrainConfig& c) {
  v.Section("run", [&] { VisitRun(v, c.run); });
  v.Section("model", [&] { VisitModel(v, c.model); });
  v.Section("tokenizer", [&] { VisitTokenizer(v, c.tokenizer); });
  v.Section("data", [&] { VisitData(v, c.data); });
  v.Section("rewards", [&] { VisitRewards(v, c.rewards); });
  v.Section("rollout", [&] { VisitRollout(v, c.rollout); });
  v.Section("sft", [&] { VisitSft(v, c.sft); });
  v.Section("grpo", [&] { VisitGrpo(v, c.grpo); });
  v.Section("eval", [&] { VisitEval(v, c.eval); });
  v.Section("checkpoint", [&] { VisitCheckpoint(v, c.checkpoint); });
}

// Cross-field rules that a single field's range cannot express.
void CheckConsistency(const TrainConfig& c) {
  auto fail = [&](const std::string& what) { throw ConfigError(c.origin, 0, "", what); };
  if (c.model.tiny.num_attention_heads % c.model.tiny.num_key_value_heads != 0) {
    fail("model.tiny.num_attention_heads must be a multiple of model.tiny.num_key_value_heads");
  }
  if (c.model.tiny.hidden_size % c.model.tiny.num_attention_heads != 0) {
    fail("model.tiny.hidden_size must be a multiple of model.tiny.num_attention_heads");
  }
  if (c.grpo.steps > 0 && c.rollout.num_generations < 2) {
    fail("rollout.num_generations must be at least 2 for GRPO (advantages compare a group)");
  }
  int64_t batch = 0, split = 0;
  if (__builtin_mul_overflow(c.grpo.prompts_per_step, c.rollout.num_generations, &batch) ||
      __builtin_mul_overflow(c.grpo.num_mini_batches, c.grpo.gradient_accumulation_steps, &split)) {
    fail("grpo.prompts_per_step * rollout.num_generations or grpo.num_mini_batches * "
         "grpo.gradient_accumulation_steps is too large");
  }
  if (c.grpo.steps > 0 && batch % split != 0) {
    fail("grpo.prompts_per_step * rollout.num_generations (" + std::to_string(batch) +
         ") must be divisible by grpo.num_mini_batches * grpo.gradient_accumulation_steps");
  }
  if (c.grpo.rloo && c.rollout.num_generations < 2) fail("grpo.rloo needs rollout.num_generations >= 2");
  for (const auto& [name, lora] : {std::pair{"sft.lora", &c.sft.lora}, std::pair{"grpo.lora", &c.grpo.lora}}) {
    if (!lora->enabled()) continue;
    try {
      lora->Validate(name);
    } catch (const model::ModelError& e) {
      fail(e.what());
    }
  }
  if (c.grpo.sync_ref_model && (c.grpo.beta == 0 || c.grpo.lora.enabled())) {
    fail("grpo.sync_ref_model needs a reference model: grpo.beta > 0 and no grpo.lora "
         "(a LoRA run's reference is its frozen base)");
  }
  if (c.grpo.rollout_importance_sampling_clip_min &&
      *c.grpo.rollout_importance_sampling_clip_min >= c.grpo.rollout_importance_sampling_clip_max) {
    fail("grpo.rollout_importance_sampling_clip_min must be below grpo.rollout_importance_sampling_clip_max");
  }
  if (c.data.train_file.empty() && c.data.task.name != "fractions") {
    fail("data.task.name: unknown task '" + c.data.task.name + "' (built-in tasks: fractions)");
  }
}

}  // namespace

TrainConfig ParseTrainConfig(std::string_view yaml, std::string_view origin,
                             const std::vector<std::string>& overrides) {
  TrainConfig config;
  config.origin = std::string(origin);
  std::vector<common::YamlOverride> parsed;
  for (const std::string& text : overrides) parsed.push_back(common::ParseYamlOverride(text));
  common::YamlReader reader(common::ParseYamlConfig(std::string(yaml), config.origin), config.origin,
                            std::move(parsed));
  VisitConfig(reader, config);
  reader.CheckUnknownKeys();
  CheckConsistency(config);
  return config;
}

TrainConfig LoadTrainConfig(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path, 0, "", "cannot open the config file");
  std::stringstream text;
  text << in.rdbuf();
  return ParseTrainConfig(text.str(), path, overrides);
}

std::string ToYaml(const TrainConfig& config) {
  common::YamlWriter writer;
  VisitConfig(writer, const_cast<TrainConfig&>(config));  // the Writer only reads
  return writer.Dump();
}

}  // namespace rl::trainer

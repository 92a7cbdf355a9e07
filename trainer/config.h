// trainer/config.h: the configuration of a training run (`rl train CONFIG.yaml`).
//
// A run is described by one YAML file with ten sections, every field optional (defaults
// below). Names follow TRL's GRPOConfig where TRL has the concept:
//
//   run:        {name: quickstart, output_dir: runs/quickstart, seed: 0, threads: 2}
//   model:      {path: ""}                 # a Hugging Face directory; empty: `tiny` from scratch
//   tokenizer:  {path: ""}                 # tokenizer.json; empty: the model's, or trained
//   data:       {train_file: "", prompt_key: prompt, answer_key: answer, task: {...}}
//   rewards:    {spec_file: configs/rewards/r1.yaml}   # or `spec: {...}` or `server: http://…`
//   rollout:    {num_generations: 8, max_new_tokens: 64, temperature: 1.0, dtype: float32}
//   sft:        {steps: 200, batch_size: 32, learning_rate: 1e-3}
//   grpo:       {steps: 60, prompts_per_step: 16, beta: 0.0, loss_type: dapo, ...,
//                lora: {r: 16, alpha: 32, dropout: 0.05, target_modules: [q_proj, v_proj]}}
//   eval:       {num_problems: 200, temperature: 0}
//   checkpoint: {every: 20, keep_last: 2}
//
// Validation happens once, here, at the edge: an unknown key is an error naming the nearest
// valid key; a value of the wrong type or out of range is an error naming the key, the file
// and its line. ToYaml() prints the effective configuration (`rl train --print-config`).
//
// Errors: LoadTrainConfig and ParseTrainConfig throw ConfigError (common/config_schema.h: the
// file, line and key path as data) with a message of the form
// "FILE:LINE: grpo.lerning_rate: unknown key; did you mean 'learning_rate'? (valid keys: …)".
// Thread safety: plain values; the functions are pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config_schema.h"
#include "rl/model/config.h"

namespace rl::trainer {

using common::ConfigError;

// "grpo", "dapo", "dr_grpo", "bnpo", "cispo" (TRL's GRPOConfig.loss_type)
enum class LossType { kGrpo, kDapo, kDrGrpo, kBnpo, kCispo };
enum class ScaleRewards { kGroup, kBatch, kNone };      // "group", "batch", "none"
enum class LrSchedule { kConstant, kCosine, kLinear };  // "constant", "cosine", "linear"
// "plain", "chatml" (Qwen2.5's template), "qwen3", "llama3" (Llama 3 / 3.1), "llama3.2"
enum class PromptFormat { kPlain, kAuto, kChatMl, kQwen3, kLlama3, kLlama32 };
enum class Precision { kFloat32, kBFloat16 };        // "float32", "bfloat16"
// The ratio π_θ/π_old per token, or GSPO's per sequence (length-normalised): "token", "sequence"
enum class ImportanceSamplingLevel { kToken, kSequence };
// How the sampler/trainer mismatch weights are bounded (TRL's vllm_importance_sampling_mode):
// "token_truncate", "token_mask", "sequence_truncate", "sequence_mask"
enum class RolloutIsMode { kTokenTruncate, kTokenMask, kSequenceTruncate, kSequenceMask };

struct RunSection {
  std::string name = "run";
  std::string output_dir = "runs/run";  // metrics.jsonl, checkpoints/, final/
  int64_t seed = 0;
  int64_t threads = 0;  // LibTorch intra-op threads per rank; 0: the cores / the ranks on this machine
  double collective_timeout_s = 1800;  // how long a rank waits for the others (rendezvous, collectives)
  int64_t logging_steps = 1;  // the terminal's metrics line every N steps (metrics.jsonl: every step)
  bool tensorboard = false;   // TensorBoard event files under <output_dir>/tensorboard/
  int64_t log_completions_steps = 1;  // <output_dir>/completions.jsonl every N GRPO steps; 0: none
  int64_t num_completions_to_print = 0;  // completions shown on the terminal every logging step
};

// The architecture of a Qwen2-shaped model trained from scratch (model.path empty).
struct TinyModelSection {
  int64_t hidden_size = 128;
  int64_t intermediate_size = 384;
  int64_t num_hidden_layers = 4;
  int64_t num_attention_heads = 4;
  int64_t num_key_value_heads = 2;
  int64_t max_position_embeddings = 256;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = true;
  double init_std = 0.02;  // normal init of every weight matrix; norms start at 1, biases 0
};

struct ModelSection {
  std::string path;  // Hugging Face directory (config.json + model.safetensors)
  TinyModelSection tiny;
};

struct TokenizerSection {
  std::string path;  // tokenizer.json; empty: <model.path>/tokenizer.json, or trained when
                     // the model is trained from scratch
  int64_t train_vocab_size = 384;  // byte-level BPE trained on the SFT corpus (from scratch)
  // Ends every SFT response and stops sampling (with generation_config.json's ids). Empty: the
  // chat template's end of turn when prompts use one, else the checkpoint's
  // tokenizer_config.json eos_token, else "<|endoftext|>" (ResolveTokenizer, trainer/policy.h).
  std::string eos_token;
  // Of text prompts: plain, or a template's name: that chat template (chat-message prompts
  // always use one: Qwen2.5's when plain); auto: the checkpoint's template (plain when it has
  // none, an error when it is one rl does not render).
  PromptFormat prompt_format = PromptFormat::kPlain;
  bool enable_thinking = true;  // qwen3 only: false closes an empty think block in the prompt
  std::string system_prompt;  // chat template only, when the prompt has no system message;
                              // empty: the template's default
};

// The built-in synthetic task (rl/data/fraction_task.h), used when data.train_file is empty.
struct TaskSection {
  std::string name = "fractions";
  int64_t num_train = 4000;      // SFT traces and GRPO prompts drawn from the training problems
  int64_t num_eval = 200;        // held-out problems (never seen in training)
  int64_t max_numerator = 9;
  int64_t max_denominator = 9;
  double teacher_slip_rate = 0.5;  // share of SFT traces with the add-the-denominators slip
};

struct DataSection {
  std::string train_file;  // JSONL; empty: the built-in task
  std::string eval_file;   // JSONL of held-out problems; empty: none (or the task's)
  std::string prompt_key = "prompt";
  std::string answer_key = "answer";
  std::string response_key = "response";  // SFT target text (only needed when sft.steps > 0)
  bool shuffle = true;
  TaskSection task;
};

struct RewardsSection {
  std::string spec_file = "configs/rewards/r1.yaml";  // used when `spec` is not given
  std::string spec;      // an inline reward spec (YAML text of the mapping), overrides spec_file
  common::StringList server;  // http://host:port of one reward server or more: score there instead
  std::string reward_name;  // the server's named reward; empty: its default
  int64_t max_retries = 5;        // per server and completion
  double retry_backoff_s = 0.5;  // doubled after each round in which no server answered
  double timeout_s = 60.0;
  int64_t threads = 0;  // in-process scoring threads; 0: all cores
};

struct RolloutSection {
  int64_t num_generations = 8;  // G completions per prompt
  int64_t max_new_tokens = 64;
  double temperature = 1.0;  // also the temperature of the log-prob recomputation
  int64_t top_k = 0;
  double top_p = 1.0;
  double min_p = 0.0;
  std::vector<std::string> stop_strings;
  double repetition_penalty = 1.0;  // transformers' (CTRL's): 1 is none
  int64_t batch_size = 64;  // sequences decoded together (per rollout worker)
  int64_t workers = 1;      // generation threads, sharing run.threads
  // The weights completions are sampled with. bfloat16: a bf16 copy of the policy, refreshed
  // every step (faster decoding on CPUs with bf16 kernels). The loss's log-probs are the
  // trained policy's (grpo.train_dtype); grpo.rollout_importance_sampling_correction weighs
  // the mismatch.
  Precision dtype = Precision::kFloat32;
};

struct OptimizerSection {
  double learning_rate = 1e-6;
  LrSchedule lr_scheduler_type = LrSchedule::kConstant;
  double warmup_ratio = 0.0;
  double weight_decay = 0.0;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_epsilon = 1e-8;
  double max_grad_norm = 1.0;  // 0: no clipping
};

struct SftSection {
  int64_t steps = 0;  // 0: no SFT stage
  int64_t batch_size = 32;
  int64_t max_length = 256;  // prompt + response tokens; longer examples are cut from the right
  OptimizerSection optim;
  model::LoraConfig lora;  // r > 0: train a LoRA adapter (rl/model/lora.h) instead of every weight
  // bfloat16: mixed precision (matrix products and activations in bf16; float32 master weights,
  // optimizer moments, norms, softmax and loss)
  Precision train_dtype = Precision::kFloat32;
  bool gradient_checkpointing = false;  // recompute each layer's activations in the backward pass
};

struct GrpoSection {
  int64_t steps = 0;  // 0: no GRPO stage
  int64_t prompts_per_step = 8;
  int64_t num_iterations = 1;  // μ: updates per generated batch
  int64_t num_mini_batches = 1;  // optimizer steps per pass over a generated batch
  int64_t gradient_accumulation_steps = 1;  // micro-batches per mini-batch (memory only)
  OptimizerSection optim;
  double beta = 0.0;  // KL coefficient; 0 loads no reference model
  double epsilon = 0.2;
  std::optional<double> epsilon_high;  // unset: epsilon. cispo: the weight's cap ε_max (TRL: 5.0)
  std::optional<double> delta;  // INTELLECT-2's two-sided clip: the ratio capped at delta (> 1)
  LossType loss_type = LossType::kDapo;
  ImportanceSamplingLevel importance_sampling_level = ImportanceSamplingLevel::kToken;
  double top_entropy_quantile = 1.0;  // train only on the tokens of the top quantile of entropy
  double entropy_coef = 0.0;          // entropy bonus: loss −= coef · mean token entropy
  ScaleRewards scale_rewards = ScaleRewards::kGroup;
  bool rloo = false;  // leave-one-out baseline instead of the group mean
  double advantage_eps = 1e-4;
  bool mask_truncated_completions = false;
  double kl_log_ratio_clamp = 10.0;
  int64_t logprob_chunk_size = 32;  // positions per [B, chunk, V] logits tensor in log-prob passes
  bool dynamic_sampling = false;    // DAPO: drop zero-variance groups, draw more prompts
  int64_t dynamic_sampling_max_rounds = 4;
  int64_t max_nonfinite_steps = 3;  // stop after this many skipped non-finite updates
  // TR-DPO: every ref_model_sync_steps steps the reference becomes α·π_θ + (1−α)·π_ref.
  bool sync_ref_model = false;
  double ref_model_mixup_alpha = 0.6;
  int64_t ref_model_sync_steps = 512;
  // The sampler's log-probs against the trained policy's (TRL's vllm_importance_sampling_*):
  // each token's loss is weighted by π_θ/π_sampler (detached), bounded as `mode` says.
  bool rollout_importance_sampling_correction = false;
  RolloutIsMode rollout_importance_sampling_mode = RolloutIsMode::kTokenTruncate;
  double rollout_importance_sampling_clip_max = 3.0;
  std::optional<double> rollout_importance_sampling_clip_min;  // unset: no lower bound
  Precision train_dtype = Precision::kFloat32;  // as sft.train_dtype
  bool gradient_checkpointing = false;
  // r > 0: train a LoRA adapter on the frozen starting policy; the KL reference is that base
  // (adapters disabled), so no second model is loaded.
  model::LoraConfig lora;
};

struct EvalSection {
  int64_t num_problems = 200;  // held-out problems scored for the SFT and GRPO policies
  int64_t num_samples = 1;     // completions per problem
  double temperature = 0.0;    // 0: greedy
  int64_t max_new_tokens = 0;  // 0: rollout.max_new_tokens
  int64_t every = 0;           // also evaluate every N GRPO steps (0: only before and after)
};

struct CheckpointSection {
  int64_t every = 0;  // GRPO steps between checkpoints; 0: only the final model
  int64_t keep_last = 2;
  // Weights above this many MB are written as model-0000i-of-0000N.safetensors shards plus
  // model.safetensors.index.json, as transformers' save_pretrained does (its default "5GB").
  int64_t max_shard_size_mb = 5000;
};

struct TrainConfig {
  RunSection run;
  ModelSection model;
  TokenizerSection tokenizer;
  DataSection data;
  RewardsSection rewards;
  RolloutSection rollout;
  SftSection sft;
  GrpoSection grpo;
  EvalSection eval;
  CheckpointSection checkpoint;
  std::string origin = "<defaults>";  // the file the config came from, for messages
};

// Reads and validates a YAML file. Relative paths inside stay as written (relative to the
// working directory, like every launcher of this kind). `overrides` are the command line's
// "grpo.steps=3" (common/config_yaml.h: YamlOverride), applied to the document before it is
// read, so they are checked as the file's keys are and their errors name them.
TrainConfig LoadTrainConfig(const std::string& path, const std::vector<std::string>& overrides = {});
// Parses YAML text; `origin` prefixes error messages.
TrainConfig ParseTrainConfig(std::string_view yaml, std::string_view origin,
                             const std::vector<std::string>& overrides = {});
// The effective configuration as YAML, every field present; ParseTrainConfig(ToYaml(c))
// gives back c.
std::string ToYaml(const TrainConfig& config);

}  // namespace rl::trainer

// trainer/policy.h: the policy a run trains — model, tokenizer, prompt rendering, EOS ids —
// made from a config (loaded from a Hugging Face directory, or a tiny model and a tokenizer
// trained from scratch), and saved back in the Hugging Face layout.
//
//   Policy policy = LoadPolicy(dir, "", config);          // config.json, model.safetensors,
//                                                         // tokenizer.json, generation_config.json
//   std::string text = RenderPrompt(config.tokenizer, example);  // a data::Example
//   std::vector<int32_t> ids = policy.tokenizer->Encode(text);
//   SavePolicy(policy, "runs/x/final");                   // the same files, and the tokenizer's
//                                                         // tokenizer_config.json and
//                                                         // chat_template.jinja when it had them
//
// Thread safety: a Policy is used by one training loop; the tokenizer is shared read-only.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "rl/data/dataset.h"
#include "rl/model/config.h"
#include "rl/model/decoder.h"
#include "rl/text/tokenizer.h"
#include "trainer/config.h"

namespace rl::trainer {

struct Policy {
  model::Decoder model{nullptr};
  std::shared_ptr<const text::Tokenizer> tokenizer;
  std::string tokenizer_json;        // the tokenizer.json text, written into every checkpoint
  // The files beside tokenizer.json that carry its chat template and special tokens
  // (tokenizer_config.json, chat_template.jinja), name -> text, copied into every checkpoint so
  // that transformers, vLLM and `rl generate --chat` find the template there.
  std::map<std::string, std::string> tokenizer_files;
  model::GenerationConfig generation;  // eos ids (the configured eos token first)
  // enabled(): the model carries LoRA adapters of these settings, and they alone are trained;
  // base_model_name_or_path is the directory of the frozen base weights (absolute).
  model::LoraConfig lora;
};

// `tokenizer` with its checkpoint-dependent defaults made concrete: prompt_format auto becomes
// the template of `checkpoint_dir` (the tokenizer's directory; empty for a model trained from
// scratch): the one it carries, plain when it carries none; and an empty eos_token becomes the
// template's end of turn ("<|im_end|>", "<|eot_id|>") when prompts use one, else the
// checkpoint's tokenizer_config.json eos_token, else "<|endoftext|>". Concrete values are kept.
// Throws std::runtime_error naming the file for a template rl does not render.
TokenizerSection ResolveTokenizer(TokenizerSection tokenizer, const std::string& checkpoint_dir);

// The directory whose tokenizer files a run starts from: tokenizer.path's, else model.path.
std::string TokenizerDir(const TrainConfig& config);

// The text the policy is conditioned on, with the generation prompt where there is a template.
// A text prompt: plain: the prompt and a newline; a template (chatml: Qwen2.5's, qwen3 with
// tokenizer.enable_thinking, llama3, llama3.2; rl/text/chat_template.h) around one user message.
// A conversation (example.messages): that template, Qwen2.5's when prompt_format is plain, as
// TRL renders conversational data. Either way the system prompt is the
// conversation's own, else tokenizer.system_prompt, else the template's default. prompt_format
// auto must have been resolved (ResolveTokenizer).
std::string RenderPrompt(const TokenizerSection& tokenizer, const data::Example& example);

// Trains a byte-level BPE tokenizer on `corpus` (tokenizer.train_vocab_size, the EOS token
// and the chat template's markers as special tokens) and a randomly initialised
// Qwen2 of config.model.tiny's shape around it (seeded from config.run.seed).
Policy MakeTinyPolicy(const TrainConfig& config, std::span<const std::string> corpus);

// Loads a Hugging Face directory: the model in float32 on the CPU, `tokenizer_file` (empty:
// dir/tokenizer.json) and the tokenizer files beside it, generation_config.json when present;
// the (resolved) config.tokenizer.eos_token must be a token. Throws std::runtime_error (or
// rl::model::ModelError) naming the file.
Policy LoadPolicy(const std::string& dir, const std::string& tokenizer_file, const TrainConfig& config);

// Writes the weights — config.json and model.safetensors, or with adapters the adapter alone in
// PEFT's layout (adapter_config.json, adapter_model.safetensors) — and generation_config.json,
// tokenizer.json and the tokenizer files into `dir` (created when missing). Weights above
// max_shard_bytes are sharded (rl/model/decoder.h: SaveDecoder).
void SavePolicy(Policy& policy, const std::string& dir, int64_t max_shard_bytes = model::kDefaultMaxShardBytes);

// Attaches fresh LoRA adapters (rl/model/lora.h; A drawn from `seed`) to the policy, whose
// current weights are those saved in `base_dir`: the adapter's files name it as their base.
void AttachAdapters(Policy& policy, model::LoraConfig lora, const std::string& base_dir, uint64_t seed);

// A policy saved with adapters: the base named by dir/adapter_config.json, the tokenizer files
// of `dir`, and the adapters. Throws as LoadPolicy, or ModelError naming the adapter's file.
Policy LoadAdapterPolicy(const std::string& dir, const TrainConfig& config);

// True when `dir` holds an adapter (adapter_config.json) rather than full weights.
bool IsAdapterDir(const std::string& dir);

// For its lifetime, when `on`, a LoRA policy's frozen base matrices are stored in bf16
// (DecoderImpl::StoreLinearsIn): bf16 training reads bf16 casts of them anyway, so its products
// are unchanged and the base takes half the memory. The end widens them back (holding the
// rounded values) for what runs at float32 afterwards (evaluation, merging). Nothing without
// adapters: a policy trained in full keeps its float32 master weights.
class BaseKeptInBf16 {
 public:
  BaseKeptInBf16(Policy& policy, bool on);
  ~BaseKeptInBf16();
  BaseKeptInBf16(const BaseKeptInBf16&) = delete;
  BaseKeptInBf16& operator=(const BaseKeptInBf16&) = delete;

 private:
  model::DecoderImpl* model_ = nullptr;  // null: nothing was changed
};

// What the optimizer updates: the adapters when there are, else every parameter.
std::vector<torch::Tensor> TrainableParameters(Policy& policy);

// Merges the adapters into the base weights: the policy then has none, and every weight is
// trainable again.
void MergeAdapters(Policy& policy);

}  // namespace rl::trainer

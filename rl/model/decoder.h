// The decoder of Qwen2 / Qwen2.5, Qwen3 and Llama 3.x in LibTorch (one implementation: the
// architectures differ in DecoderConfig's switches), with Hugging Face parameter names, a
// preallocated KV cache, and checkpoint loading/saving in the Hugging Face layout.
//
//   rl::model::ConfigureThreads(4);
//   rl::model::Decoder model = rl::model::LoadDecoder("Qwen2.5-0.5B-Instruct", torch::kBFloat16,
//                                                 torch::kCPU);
//   // input_ids [B,T]; positions [B,T] (left padding: the first real token is position 0);
//   // key_mask [B,S] bool, true where the key slot holds a real token.
//   torch::Tensor hidden = model->Hidden(input_ids, positions, key_mask);   // [B,T,C]
//   torch::Tensor logits = model->Logits(hidden);                           // [B,T,V] float32
//
//   // Incremental decoding: prefill, then one token per step; only the last position's
//   // logits are needed, so apply Logits to hidden.select(1, -1).
//   rl::model::KvCache cache(model->config(), B, capacity, torch::kBFloat16, torch::kCPU);
//   hidden = model->Hidden(prompt_ids, prompt_positions, prompt_mask, &cache);  // S = T
//   hidden = model->Hidden(next_ids /*[B,1]*/, next_positions, mask /*[B,S+1]*/, &cache);
//
//   rl::model::SaveDecoder(model, "out_dir", torch::kBFloat16);  // config.json + model.safetensors
//
// The forward pass follows transformers' Qwen2 / Qwen3 / Llama equations: RMSNorm in float32
// then cast back, half-split RoPE (Llama 3's frequency scaling when configured), grouped-query
// attention (biases as configured, Qwen3's per-head q/k RMSNorm before RoPE, scale
// head_dim^-0.5, softmax in float32), SwiGLU MLP, tied or untied lm_head. Parameter names are exactly
// transformers' (named_parameters(): "model.layers.0.self_attn.q_proj.weight", ...).
//
// Concurrency: a model may run forward passes from several threads at once under
// torch::NoGradGuard (it holds no per-call state); a KvCache belongs to one caller at a time.
// Errors: ModelError naming the file, tensor or argument.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "rl/model/bf16_gemm.h"
#include "rl/model/config.h"
#include "rl/model/lora.h"
#include "rl/model/model_error.h"

namespace rl::model {

// Sets LibTorch's intra-op thread count (and so OpenMP/OpenBLAS's); n <= 0 means one thread per
// hardware core. LibTorch's default here is 1, so every entry point that runs a model calls
// this with its configured value. On a machine shared with other work, start the process with
// OMP_WAIT_POLICY=PASSIVE (OpenMP reads it only at start-up): spinning OpenMP threads that
// wait for a descheduled sibling made decoding 5-7x slower in bench/model under load.
// It also puts LibTorch's large CPU tensors on huge pages (rl/model/cpu_memory.h): page faults
// are the cost of a training step's allocations on VMs like our CI's. And on AVX-512 CPUs it
// sets ATEN_CPU_CAPABILITY=avx512 unless already set, since LibTorch 1.13 otherwise runs its
// elementwise and softmax kernels in AVX2: call it before any tensor operation, as LibTorch
// chooses its kernels at the first one.
void ConfigureThreads(int num_threads);

// The vector kernels LibTorch chose for its own CPU operations, as at::show_config() names them:
// "AVX512", "AVX2", "DEFAULT" ("unknown" if it does not say).
std::string TorchVectorKernels();

// Preallocated keys and values of every layer, [B, kv_heads, capacity, head_dim] each. Hidden()
// writes the new positions in place at [length, length + T) and advances length.
class KvCache {
 public:
  KvCache(const DecoderConfig& config, int64_t batch, int64_t capacity, torch::ScalarType dtype,
          torch::Device device);
  // Move-only: a copy would share the tensors and silently overwrite the original's slots.
  KvCache(KvCache&&) = default;
  KvCache& operator=(KvCache&&) = default;
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;
  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  int64_t batch() const { return batch_; }
  // Forgets every position (no reallocation).
  void Reset() { length_ = 0; }
  // Forgets positions from `length` on (length <= this->length()).
  void Truncate(int64_t length);
  // Keeps batch rows `indices` (int64 [B'], repeats allowed): e.g. prefill a prompt once and
  // repeat it G times for a group, or drop finished rows. Reallocates.
  void SelectBatch(const torch::Tensor& indices);
  // Continuous batching (rollout/generate.cpp) puts a new sequence into a freed row while the
  // others go on. CopyRow copies `count` positions of row `source_row` of `source` (a cache of
  // the same model), from its column `source_column`, into row `row` at [column, column + count);
  // length is unchanged. Shift moves every row's positions by `offset` columns (negative: the
  // first -offset are dropped) and length with them; what is moved in at the front is stale.
  // Keys carry their rotary positions, so a moved token attends and is attended as before,
  // once the caller's key mask moves alike. Throw ModelError for ranges outside the caches.
  void CopyRow(int64_t row, int64_t column, const KvCache& source, int64_t source_row,
               int64_t source_column, int64_t count);
  void Shift(int64_t offset);
  const torch::Tensor& keys(int64_t layer) const { return keys_.at(layer); }
  const torch::Tensor& values(int64_t layer) const { return values_.at(layer); }

 private:
  friend class DecoderImpl;
  std::vector<torch::Tensor> keys_, values_;
  int64_t batch_, capacity_, length_ = 0;
};

// x [..., K] · w[N,K]ᵀ (+ b[N]) -> [..., N]. In bf16 on the CPU, when no gradient is being
// recorded and x has at most Bf16KernelMaxRows(kernel) rows (a decode step), the product runs
// on `kernel` (rl/model/bf16_gemm.h: faster than LibTorch's there); kNone, a gradient, more
// rows, another dtype or another device use torch::linear.
torch::Tensor LinearForward(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                            Bf16Kernel kernel);
// The same product on `kernel` whatever the row count, split across LibTorch's threads: x
// [..., K], w [N,K] contiguous and b [N] (or undefined), all bf16 on the CPU; no gradient.
torch::Tensor Bf16Linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, Bf16Kernel kernel);

// A bf16 tensor's storage as the 16-bit words the hand-written kernels read and write
// (rl/model/bf16_gemm.h, rl/model/bf16_fused.h); null for an undefined tensor. Throws for
// another dtype; the kernels expect it contiguous.
uint16_t* Bf16Words(const torch::Tensor& t);

// y = x W^T (+ b), with HF names "weight" and "bias", through LinearForward, plus a LoRA
// adapter's update when one is attached and enabled (rl/model/lora.h; not a registered
// parameter, so the model's named_parameters() stay the Hugging Face checkpoint's).
// With compute_dtype set (mixed precision, DecoderImpl::SetComputeDtype), x, W and b are cast
// to it first and y is in it; the casts are differentiable, so W's gradient arrives in W's dtype.
// Without, W and b stored narrower than x (DecoderImpl::StoreLinearsIn) are widened to x's dtype.
class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in, int64_t out, bool bias, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  Bf16Kernel bf16_kernel = BestBf16Kernel();
  std::shared_ptr<LoraAdapter> lora;  // null: none
  torch::ScalarType compute_dtype = torch::ScalarType::Undefined;  // Undefined: the input's
};
TORCH_MODULE(Linear);

// x / sqrt(mean(x^2) + eps) * weight, computed in float32 and cast back before the weight.
class RmsNormImpl : public torch::nn::Module {
 public:
  RmsNormImpl(int64_t dim, double eps, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RmsNorm);

class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(int64_t vocab, int64_t dim, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& ids);
  torch::Tensor weight;
};
TORCH_MODULE(Embedding);

class SelfAttentionImpl : public torch::nn::Module {
 public:
  SelfAttentionImpl(const DecoderConfig& config, const torch::TensorOptions& options);
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RmsNorm q_norm{nullptr}, k_norm{nullptr};  // over head_dim; qwen3 only
};
TORCH_MODULE(SelfAttention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(const DecoderConfig& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const DecoderConfig& config, const torch::TensorOptions& options);
  RmsNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  SelfAttention self_attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(DecoderLayer);

// The "model." prefix of the HF names.
class DecoderBodyImpl : public torch::nn::Module {
 public:
  DecoderBodyImpl(const DecoderConfig& config, const torch::TensorOptions& options);
  Embedding embed_tokens{nullptr};
  std::vector<DecoderLayer> layers;
  RmsNorm norm{nullptr};
};
TORCH_MODULE(DecoderBody);

class DecoderImpl : public torch::nn::Module {
 public:
  // A model with parameters of `options` (dtype, device). With random_init, weights are drawn as
  // transformers initialises these models (normal(0, initializer_range), zero biases, unit norms) from
  // LibTorch's global generator (torch::manual_seed makes it reproducible); without it they are
  // left uninitialised for a loader to fill.
  explicit DecoderImpl(const DecoderConfig& config, const torch::TensorOptions& options = {},
                     bool random_init = true);

  // input_ids [B,T] int64; positions [B,T] int64, or undefined for past..past+T-1;
  // key_mask [B,S] bool with S = past + T, or undefined for all real. Causal masking is applied
  // inside. Appends to `cache` when given (past = cache->length()). Returns the final-normed
  // hidden states [B,T,C] in the model's dtype.
  torch::Tensor Hidden(const torch::Tensor& input_ids, const torch::Tensor& positions,
                       const torch::Tensor& key_mask, KvCache* cache = nullptr);
  // [..., C] -> [..., V] float32.
  torch::Tensor Logits(const torch::Tensor& hidden);
  // Logits(Hidden(...)).
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& positions,
                        const torch::Tensor& key_mask, KvCache* cache = nullptr);

  const DecoderConfig& config() const { return config_; }
  torch::ScalarType dtype() const;
  torch::Device device() const;
  // Copies every parameter of `other` (same shapes) into this model, converting dtype/device:
  // e.g. a frozen reference model for the KL term. Does not change requires_grad.
  void CopyWeightsFrom(DecoderImpl& other);
  // Mixed precision, as autocast does it: with dtype kBFloat16, a float32 model computes every
  // matrix product (projections, attention, lm_head) and the activations between them in bf16
  // from bf16 casts of its weights, while the residual stream, RMSNorm statistics, softmax and
  // the returned logits stay float32 and gradients reach the float32 weights. The model's own
  // dtype (kUndefined) turns it off. Only for the log-prob and training passes: decoding would
  // cast every weight per token (sample with a bf16 copy instead). Not while another thread
  // runs this model.
  void SetComputeDtype(torch::ScalarType dtype);
  torch::ScalarType compute_dtype() const;  // the model's dtype when mixed precision is off
  // Stores the weight and bias of every Linear (projections, MLP, an untied lm_head; not the
  // embeddings and norms, which set the model's dtype and the residual stream's) in `dtype`.
  // For frozen weights (a KL reference, a LoRA base): under bf16 mixed precision the products
  // read bf16 casts of them anyway, so storing them in bf16 gives the same products in half the
  // memory. Passes without mixed precision widen them per product (they are then the rounded
  // values). StoreLinearsIn(dtype()) widens them back. Throws ModelError when a weight that
  // would be narrowed requires a gradient (the optimizer's master copy must stay as it is).
  void StoreLinearsIn(torch::ScalarType dtype);
  // Activation checkpointing: in a forward pass that records gradients (no KV cache), each layer
  // keeps only its input and recomputes its activations during the backward pass (with the
  // random state of the forward pass, so LoRA dropout draws the same mask). Memory per layer
  // falls from the activations of attention and MLP to one [B,T,C] tensor, for ~1/3 more compute.
  void SetGradientCheckpointing(bool on) { checkpoint_layers_ = on; }
  // The [V,C] matrix of Logits(): lm_head's weight, or the embeddings when tied.
  torch::Tensor& OutputWeight();
  // Decoder layer `layer` on the residual stream x [B,T,C] (Hidden's loop body; public for the
  // checkpointed recomputation). cos, sin [B,1,T,D] and the attention mask's bias [B,1,T,S] as
  // Hidden makes them.
  torch::Tensor Layer(int64_t layer, const torch::Tensor& x, const torch::Tensor& cos,
                      const torch::Tensor& sin, const torch::Tensor& bias, KvCache* cache);
  // Chooses the CPU kernel of every bf16 product at inference (default: the fastest this CPU
  // runs; kNone: LibTorch's). Kernels round differently, so logits differ in the last bf16 bit.
  // Throws ModelError when this CPU cannot run `kernel`.
  void UseBf16Kernel(Bf16Kernel kernel);

  DecoderBody model{nullptr};
  Linear lm_head{nullptr};  // null when tie_word_embeddings: the embedding matrix is used

 private:
  torch::Tensor Attention(SelfAttentionImpl& attn, const torch::Tensor& x,
                          const torch::Tensor& cos, const torch::Tensor& sin,
                          const torch::Tensor& bias, KvCache* cache, int64_t layer);
  DecoderConfig config_;
  Bf16Kernel bf16_kernel_ = BestBf16Kernel();
  torch::ScalarType compute_dtype_ = torch::ScalarType::Undefined;
  bool checkpoint_layers_ = false;
};
TORCH_MODULE(Decoder);

// Loads config.json and model.safetensors (or the shards of model.safetensors.index.json) from
// `dir`, converting to `dtype` on `device`. Every parameter must be present with the right
// shape; an unexpected tensor is an error (a checkpoint of another architecture), except a
// tied lm_head.weight, which is ignored as transformers does. Throws ModelError.
Decoder LoadDecoder(const std::string& dir, torch::ScalarType dtype, torch::Device device);

// transformers' default max_shard_size ("5GB", decimal).
inline constexpr int64_t kDefaultMaxShardBytes = 5'000'000'000;

// Writes config.json and the weights (tensors in `dtype`; a tied lm_head is not written) into
// `dir` (created if needed), and generation_config.json when `generation` is given, so that
// transformers and vLLM load the directory. Weights above max_shard_bytes are split as
// transformers splits them: model-00001-of-0000N.safetensors, ... in parameter order, each at
// most max_shard_bytes unless one tensor alone is larger, and model.safetensors.index.json
// ({"metadata": {"total_size"}, "weight_map"}); below it, one model.safetensors. Files of an
// earlier save in `dir` that this one does not write are removed. Throws ModelError.
void SaveDecoder(Decoder& model, const std::string& dir, torch::ScalarType dtype,
                 const GenerationConfig* generation = nullptr, int64_t max_shard_bytes = kDefaultMaxShardBytes);

// A new model with `model`'s config and a copy of its weights in dtype/device.
Decoder CloneDecoder(DecoderImpl& model, torch::ScalarType dtype, torch::Device device);

}  // namespace rl::model

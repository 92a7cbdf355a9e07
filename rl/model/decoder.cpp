// The decoder's forward pass (Qwen2, Qwen3, Llama), top to bottom. Shapes: B batch, T new tokens, P past tokens in the
// cache, S = P + T keys, C hidden size, H query heads, K key/value heads, R = H / K queries per
// key/value head, D head_dim, F intermediate size, V vocabulary.
#include "rl/model/decoder.h"

#include "common/blas_kernels.h"
#include "common/threads.h"
#include "rl/model/bf16_fused.h"
#include "rl/model/bf16_gemm.h"
#include "rl/model/cpu_memory.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <stdexcept>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <torch/autograd.h>
#include <torch/nn/modules/container/modulelist.h>

namespace rl::model {

namespace {

// LibTorch 1.12 and 1.13 run their own vector kernels (elementwise operations, softmax,
// reductions; not oneDNN's matrix products) with AVX2 on AVX-512 CPUs unless the environment
// variable ATEN_CPU_CAPABILITY says avx512: pytorch/pytorch#80253 made AVX-512 opt-in, as it ran
// slower on some older CPUs. On a Sapphire Rapids VM opting in ran SiLU's gradient twice as fast
// and a bf16 GRPO step 4-6% faster (README, "Fast steps"). LibTorch reads the variable once, at
// the first kernel it dispatches, and does not check it against the CPU, so it is set only where
// the CPU has the instructions LibTorch's AVX-512 kernels need, and never over the user's choice.
void PreferAvx512Kernels() {
  if (std::getenv("ATEN_CPU_CAPABILITY") != nullptr) return;
  if (common::DetectCpuVectorUnits().avx512) setenv("ATEN_CPU_CAPABILITY", "avx512", /*overwrite=*/0);
}

}  // namespace

void ConfigureThreads(int num_threads) {
  PreferAvx512Kernels();
  at::set_num_threads(common::ThreadCount(num_threads));
  UseHugePagesForLargeTensors();
}

std::string TorchVectorKernels() {
  // at::show_config() is the one public report of the capability LibTorch chose; its line reads
  // "  - CPU capability usage: AVX512".
  const std::string config = at::show_config();
  const std::string key = "CPU capability usage: ";
  const size_t found = config.find(key);
  if (found == std::string::npos) return "unknown";
  const size_t begin = found + key.size();
  return config.substr(begin, config.find('\n', begin) - begin);
}

// ---------------------------------------------------------------------------------------------
// KvCache

KvCache::KvCache(const DecoderConfig& config, int64_t batch, int64_t capacity,
                 torch::ScalarType dtype, torch::Device device)
    : batch_(batch), capacity_(capacity) {
  if (batch <= 0 || capacity <= 0) {
    throw ModelError("KvCache: batch and capacity must be positive, got " + std::to_string(batch) +
                     " and " + std::to_string(capacity));
  }
  const auto options = torch::TensorOptions().dtype(dtype).device(device);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    keys_.push_back(
        torch::zeros({batch, config.num_key_value_heads, capacity, config.head_dim}, options));
    values_.push_back(torch::zeros_like(keys_.back()));
  }
}

void KvCache::Truncate(int64_t length) {
  if (length < 0 || length > length_) {
    throw ModelError("KvCache::Truncate: length " + std::to_string(length) + " is outside [0, " +
                     std::to_string(length_) + "]");
  }
  length_ = length;
}

void KvCache::SelectBatch(const torch::Tensor& indices) {
  const torch::Tensor idx = indices.to(keys_.at(0).device(), torch::kLong);
  if (idx.dim() != 1 || idx.numel() == 0)
    throw ModelError("KvCache::SelectBatch: indices must be 1-D and non-empty");
  if (idx.min().item<int64_t>() < 0 || idx.max().item<int64_t>() >= batch_) {
    throw ModelError("KvCache::SelectBatch: index out of range [0, " + std::to_string(batch_) +
                     ")");
  }
  for (auto& t : keys_) t = t.index_select(0, idx);
  for (auto& t : values_) t = t.index_select(0, idx);
  batch_ = idx.numel();
}

void KvCache::CopyRow(int64_t row, int64_t column, const KvCache& source, int64_t source_row,
                      int64_t source_column, int64_t count) {
  const bool fits = row >= 0 && row < batch_ && column >= 0 && count >= 0 && column + count <= capacity_ &&
                    source_row >= 0 && source_row < source.batch_ && source_column >= 0 &&
                    source_column + count <= source.length_ && source.keys_.size() == keys_.size();
  if (!fits) {
    throw ModelError("KvCache::CopyRow: row " + std::to_string(source_row) + " columns [" +
                     std::to_string(source_column) + ", +" + std::to_string(count) + ") into row " +
                     std::to_string(row) + " column " + std::to_string(column) + " is outside the caches");
  }
  for (size_t l = 0; l < keys_.size(); ++l) {
    keys_[l][row].narrow(1, column, count).copy_(source.keys_[l][source_row].narrow(1, source_column, count));
    values_[l][row].narrow(1, column, count).copy_(source.values_[l][source_row].narrow(1, source_column, count));
  }
}

void KvCache::Shift(int64_t offset) {
  if (length_ + offset < 0 || length_ + offset > capacity_) {
    throw ModelError("KvCache::Shift: length " + std::to_string(length_) + " shifted by " +
                     std::to_string(offset) + " is outside [0, " + std::to_string(capacity_) + "]");
  }
  const int64_t kept = offset < 0 ? length_ + offset : length_;
  const int64_t from = offset < 0 ? -offset : 0, to = offset < 0 ? 0 : offset;
  if (offset != 0 && kept > 0) {
    for (std::vector<torch::Tensor>* list : {&keys_, &values_}) {
      for (torch::Tensor& t : *list) t.narrow(2, to, kept).copy_(t.narrow(2, from, kept).clone());  // overlap
    }
  }
  length_ += offset;
}

// ---------------------------------------------------------------------------------------------
// Building blocks

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias,
                       const torch::TensorOptions& options) {
  weight = register_parameter("weight", torch::empty({out, in}, options));  // [out, in]
  if (with_bias) bias = register_parameter("bias", torch::empty({out}, options));
}

uint16_t* Bf16Words(const torch::Tensor& t) {
  return t.defined() ? reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()) : nullptr;
}

torch::Tensor Bf16Linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, Bf16Kernel kernel) {
  if (w.dim() != 2 || !w.is_contiguous() || x.size(-1) != w.size(1) || (b.defined() && b.numel() != w.size(0)) ||
      !x.device().is_cpu() || !w.device().is_cpu() || x.scalar_type() != torch::kBFloat16 ||
      w.scalar_type() != torch::kBFloat16 || (b.defined() && b.scalar_type() != torch::kBFloat16)) {
    throw std::invalid_argument("Bf16Linear: needs bf16 CPU tensors x [..., K], w [N, K] contiguous, b [N]");
  }
  const int64_t K = w.size(1), N = w.size(0);
  const torch::Tensor x2 = x.reshape({-1, K}).contiguous();
  const torch::Tensor b1 = b.defined() ? b.contiguous() : b;
  const int64_t M = x2.size(0);
  torch::Tensor y = torch::empty({M, N}, x.options());
  uint16_t* out = Bf16Words(y);
  // Threads take blocks of 64 weight rows, and at least 2 Mi multiply-adds each (at one row, 2 Mi
  // weights: 4 MiB): waking a sleeping OpenMP thread costs more than a smaller product (k_proj
  // at one row: 0.1 Mi). More rows make each weight more work, so smaller shares pay.
  constexpr int64_t kColumns = 64, kMinMacsPerThread = int64_t{1} << 21;
  const int64_t grain = std::max<int64_t>(1, kMinMacsPerThread / (kColumns * K * std::max<int64_t>(M, 1)));
  at::parallel_for(0, (N + kColumns - 1) / kColumns, grain, [&](int64_t begin, int64_t end) {
    Bf16GemmColumns(kernel, Bf16Words(x2), Bf16Words(w), Bf16Words(b1), out, M, N, K, begin * kColumns,
                    std::min(N, end * kColumns));
  });
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes.back() = N;
  return y.view(sizes);
}

torch::Tensor LinearForward(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                            Bf16Kernel kernel) {
  const bool no_graph =
      !torch::GradMode::is_enabled() ||
      !(x.requires_grad() || w.requires_grad() || (b.defined() && b.requires_grad()));
  const int64_t K = w.size(1);
  if (kernel == Bf16Kernel::kNone || !no_graph || !x.device().is_cpu() ||
      x.scalar_type() != torch::kBFloat16 || w.scalar_type() != torch::kBFloat16 ||
      (b.defined() && b.scalar_type() != torch::kBFloat16) || !w.is_contiguous() ||
      x.size(-1) != K || x.numel() / K > Bf16KernelMaxRows(kernel)) {
    return torch::linear(x, w, b);
  }
  return Bf16Linear(x, w, b, kernel);
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x_in) {
  const torch::ScalarType dtype = compute_dtype != torch::ScalarType::Undefined ? compute_dtype : x_in.scalar_type();
  const torch::Tensor x = x_in.to(dtype);  // to() returns the tensor itself when it has the dtype
  const torch::Tensor w = weight.to(dtype);
  const torch::Tensor b = bias.defined() ? bias.to(dtype) : bias;
  torch::Tensor y = LinearForward(x, w, b, bf16_kernel);  // [..., in] -> [..., out]
  if (lora && lora->enabled) y = y + lora->Update(x, is_training());
  return y;
}

RmsNormImpl::RmsNormImpl(int64_t dim, double eps_, const torch::TensorOptions& options)
    : eps(eps_) {
  weight = register_parameter("weight", torch::empty({dim}, options));
}

namespace {

// The dtype of norm statistics and softmax: float32 for bf16 (too few mantissa bits for a mean
// of squares) and float32 inputs, float64 for float64 ones (a float64 model stays exact, which
// finite-difference gradient checks need).
torch::ScalarType StatisticsDtype(torch::ScalarType dtype) {
  return dtype == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

}  // namespace

torch::Tensor RmsNormImpl::forward(const torch::Tensor& x) {
  // x [..., C]: statistics in float32 at least.
  const torch::Tensor xf = x.to(StatisticsDtype(x.scalar_type()));
  const torch::Tensor variance = xf.pow(2).mean(-1, /*keepdim=*/true);
  // In x's dtype: under mixed precision a bf16 input (Qwen3's q/k norms) stays bf16.
  return weight.to(x.scalar_type()) * (xf * torch::rsqrt(variance + eps)).to(x.scalar_type());
}

EmbeddingImpl::EmbeddingImpl(int64_t vocab, int64_t dim, const torch::TensorOptions& options) {
  weight = register_parameter("weight", torch::empty({vocab, dim}, options));  // [V, C]
}

torch::Tensor EmbeddingImpl::forward(const torch::Tensor& ids) {
  return torch::embedding(weight, ids);  // [B,T] -> [B,T,C]
}

SelfAttentionImpl::SelfAttentionImpl(const DecoderConfig& c, const torch::TensorOptions& options) {
  const int64_t q_dim = c.num_attention_heads * c.head_dim,
                kv_dim = c.num_key_value_heads * c.head_dim;
  q_proj = register_module("q_proj", Linear(c.hidden_size, q_dim, c.qkv_bias(), options));
  k_proj = register_module("k_proj", Linear(c.hidden_size, kv_dim, c.qkv_bias(), options));
  v_proj = register_module("v_proj", Linear(c.hidden_size, kv_dim, c.qkv_bias(), options));
  o_proj = register_module("o_proj", Linear(q_dim, c.hidden_size, c.o_bias(), options));
  if (c.qk_norm()) {
    q_norm = register_module("q_norm", RmsNorm(c.head_dim, c.rms_norm_eps, options));
    k_norm = register_module("k_norm", RmsNorm(c.head_dim, c.rms_norm_eps, options));
  }
}

MlpImpl::MlpImpl(const DecoderConfig& c, const torch::TensorOptions& options) {
  gate_proj = register_module("gate_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias, options));
  up_proj = register_module("up_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias, options));
  down_proj = register_module("down_proj", Linear(c.intermediate_size, c.hidden_size, c.mlp_bias, options));
}

namespace {

#if RL_HAVE_BF16_FUSED
// silu(gate) · up on bf16 CPU tensors in one pass each way (rl/model/bf16_fused.h), where
// LibTorch's silu, product and their gradients take five, silu itself far below the memory's
// speed (5-10 ms per [8, 193, 4864] call on the Sapphire Rapids VM).
struct FusedSwiGlu : public torch::autograd::Function<FusedSwiGlu> {
  static constexpr int64_t kGrain = int64_t{1} << 15;  // elements per thread, at least

  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& gate,
                               const torch::Tensor& up) {
    ctx->save_for_backward({gate, up});
    torch::Tensor out = torch::empty_like(gate);
    at::parallel_for(0, gate.numel(), kGrain, [&](int64_t begin, int64_t end) {
      Bf16SwiGlu(Bf16Words(gate), Bf16Words(up), Bf16Words(out), begin, end);
    });
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor d_out = grad[0].to(torch::kBFloat16).contiguous();
    torch::Tensor d_gate = torch::empty_like(saved[0]), d_up = torch::empty_like(saved[1]);
    at::parallel_for(0, d_out.numel(), kGrain, [&](int64_t begin, int64_t end) {
      Bf16SwiGluGrad(Bf16Words(saved[0]), Bf16Words(saved[1]), Bf16Words(d_out), Bf16Words(d_gate),
                     Bf16Words(d_up), begin, end);
    });
    return {d_gate, d_up};
  }
};
#endif

// silu(gate) · up; `mixed_precision` (the training passes) takes the fused kernels where they run,
// while a bf16-stored model keeps LibTorch's operations, which round as transformers' do.
torch::Tensor SwiGlu(const torch::Tensor& gate, const torch::Tensor& up, bool mixed_precision) {
#if RL_HAVE_BF16_FUSED
  if (mixed_precision && gate.scalar_type() == torch::kBFloat16 && up.scalar_type() == torch::kBFloat16 && gate.is_cpu() &&
      gate.sizes() == up.sizes() && gate.is_contiguous() && up.is_contiguous() &&
      Bf16KernelSupported(Bf16Kernel::kAvx512)) {
    return FusedSwiGlu::apply(gate, up);
  }
#endif
  return torch::silu(gate) * up;
}

}  // namespace

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  // SwiGLU: [B,T,C] -> [B,T,F] -> [B,T,C]
  return down_proj(SwiGlu(gate_proj(x), up_proj(x), gate_proj->compute_dtype == torch::kBFloat16));
}

DecoderLayerImpl::DecoderLayerImpl(const DecoderConfig& c,
                                             const torch::TensorOptions& options) {
  self_attn = register_module("self_attn", SelfAttention(c, options));
  mlp = register_module("mlp", Mlp(c, options));
  input_layernorm =
      register_module("input_layernorm", RmsNorm(c.hidden_size, c.rms_norm_eps, options));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RmsNorm(c.hidden_size, c.rms_norm_eps, options));
}

DecoderBodyImpl::DecoderBodyImpl(const DecoderConfig& c, const torch::TensorOptions& options) {
  embed_tokens = register_module("embed_tokens", Embedding(c.vocab_size, c.hidden_size, options));
  torch::nn::ModuleList list;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    layers.push_back(DecoderLayer(c, options));
    list->push_back(layers.back());
  }
  register_module("layers", list);  // children "0", "1", ...: "model.layers.N.*"
  norm = register_module("norm", RmsNorm(c.hidden_size, c.rms_norm_eps, options));
}

// ---------------------------------------------------------------------------------------------
// Decoder

DecoderImpl::DecoderImpl(const DecoderConfig& config, const torch::TensorOptions& options,
                     bool random_init)
    : config_(config) {
  config_.Validate("DecoderConfig");
  model = register_module("model", DecoderBody(config_, options));
  if (!config_.tie_word_embeddings) {
    lm_head =
        register_module("lm_head", Linear(config_.hidden_size, config_.vocab_size, false, options));
  }
  if (!random_init) return;
  // transformers' _init_weights for these models: matrices ~ N(0, initializer_range), biases 0, norms 1.
  torch::NoGradGuard no_grad;
  for (auto& p : named_parameters()) {
    const std::string& name = p.key();
    if (name.ends_with("norm.weight")) {
      p.value().fill_(1.0);
    } else if (name.ends_with(".bias")) {
      p.value().zero_();
    } else {
      p.value().normal_(0.0, config_.initializer_range);
    }
  }
}

torch::ScalarType DecoderImpl::dtype() const { return model->embed_tokens->weight.scalar_type(); }
torch::Device DecoderImpl::device() const { return model->embed_tokens->weight.device(); }

namespace {

// The D/2 rotary frequencies in float32, as transformers computes them: inv_freq_i =
// 1 / theta^(2i/D), then Llama 3's scaling when configured: low frequencies (wavelength above
// original / low_freq_factor) divided by `factor`, high ones (below original / high_freq_factor)
// kept, and a linear blend of the two in between.
torch::Tensor InverseFrequencies(const DecoderConfig& c, torch::Device device) {
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  const torch::Tensor exponents =
      torch::arange(0, c.head_dim, 2, f32.dtype(torch::kLong)).to(torch::kFloat32) / static_cast<double>(c.head_dim);
  const torch::Tensor inv_freq = torch::pow(c.rope_theta, exponents).reciprocal();  // [D/2]
  if (c.rope_scaling.type != "llama3") return inv_freq;
  const RopeScaling& r = c.rope_scaling;
  const double original = static_cast<double>(r.original_max_position_embeddings);
  const torch::Tensor wavelength = (2 * M_PI) / inv_freq;
  const torch::Tensor low = wavelength > original / r.low_freq_factor;    // scaled fully
  const torch::Tensor high = wavelength < original / r.high_freq_factor;  // kept
  const torch::Tensor smooth = (original / wavelength - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
  const torch::Tensor blended = (1 - smooth) * inv_freq / r.factor + smooth * inv_freq;
  return torch::where(low, inv_freq / r.factor, torch::where(high, inv_freq, blended));
}

// RoPE tables for positions [B,T]: cos, sin [B,1,T,D] in `dtype`. Angles are computed in
// float32 as transformers does: angle = position * inv_freq, and the D/2 frequencies are
// repeated for the two halves (the half-split layout).
std::pair<torch::Tensor, torch::Tensor> RopeTables(const torch::Tensor& positions, const DecoderConfig& config,
                                                   torch::ScalarType dtype) {
  const torch::Tensor inv_freq = InverseFrequencies(config, positions.device());
  const torch::Tensor angles = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq;  // [B,T,D/2]
  const torch::Tensor emb = torch::cat({angles, angles}, -1).unsqueeze(1);              // [B,1,T,D]
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

// x [B,h,T,D]: (x1, x2) -> (-x2, x1) on the two halves of D.
torch::Tensor RotateHalf(const torch::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

torch::Tensor ApplyRope(const torch::Tensor& x, const torch::Tensor& cos,
                        const torch::Tensor& sin) {
  return x * cos + RotateHalf(x) * sin;  // [B,h,T,D]
}

// The attention mask as a bias [B,1,T,S] in `dtype`, added to the scaled scores: 0 where query t
// (slot P + t) may see key slot j (j <= P + t and the key is real), elsewhere the lowest finite
// float rather than -inf, so that a fully masked row (a padding query) gives finite values
// instead of NaNs that would reach the cache. The scores are small beside it, so a masked score
// is that lowest value exactly, as a masked fill would write; one addition then widens and masks
// bf16 scores in a single pass over [B,H,T,S] where two ran.
torch::Tensor AttentionBias(const torch::Tensor& key_mask, int64_t past, int64_t T, torch::ScalarType dtype) {
  const int64_t S = key_mask.size(1);
  const auto long_options = torch::TensorOptions().dtype(torch::kLong).device(key_mask.device());
  const torch::Tensor query_slot =
      torch::arange(past, past + T, long_options).unsqueeze(1);                   // [T,1]
  const torch::Tensor key_slot = torch::arange(0, S, long_options).unsqueeze(0);  // [1,S]
  const torch::Tensor causal = key_slot <= query_slot;                            // [T,S]
  const torch::Tensor allowed = causal.unsqueeze(0).unsqueeze(0) & key_mask.unsqueeze(1).unsqueeze(1);
  return torch::zeros(allowed.sizes(), key_mask.options().dtype(dtype))
      .masked_fill_(allowed.logical_not(), std::numeric_limits<float>::lowest());  // [B,1,T,S]
}

void CheckArguments(const torch::Tensor& ids, const torch::Tensor& positions,
                    const torch::Tensor& key_mask, int64_t past, const KvCache* cache,
                    torch::ScalarType dtype) {
  auto fail = [](const std::string& what) { throw ModelError("Decoder::Hidden: " + what); };
  if (ids.dim() != 2 || ids.scalar_type() != torch::kLong) fail("input_ids must be int64 [B,T]");
  const int64_t B = ids.size(0), T = ids.size(1);
  if (T == 0) fail("input_ids has no tokens");
  if (positions.defined() &&
      (positions.sizes() != ids.sizes() || positions.scalar_type() != torch::kLong)) {
    fail("positions must be int64 [B,T] like input_ids");
  }
  if (key_mask.defined() &&
      (key_mask.dim() != 2 || key_mask.size(0) != B || key_mask.size(1) != past + T ||
       key_mask.scalar_type() != torch::kBool)) {
    fail("key_mask must be bool [B, past + T] = [" + std::to_string(B) + ", " +
         std::to_string(past + T) + "]");
  }
  if (cache != nullptr && cache->batch() != B) {
    fail("cache batch " + std::to_string(cache->batch()) + " != input batch " + std::to_string(B));
  }
  if (cache != nullptr && cache->keys(0).scalar_type() != dtype) {
    fail(std::string("cache dtype ") + c10::toString(cache->keys(0).scalar_type()) +
         " != model dtype " + c10::toString(dtype));
  }
  if (cache != nullptr && past + T > cache->capacity()) {
    fail("cache capacity " + std::to_string(cache->capacity()) +
         " exceeded: " + std::to_string(past) + " cached + " + std::to_string(T) + " new");
  }
}

// Activation checkpointing of one layer, as torch.utils.checkpoint's reentrant variant: the
// forward pass runs without recording and keeps only the layer's input; the backward pass
// recomputes the layer with recording on and backpropagates through it, which accumulates the
// parameters' gradients directly and returns the input's. The CPU generator's state is put back
// for the recomputation so that dropout (LoRA's) draws the mask it drew the first time. The
// first pass records too (then drops the graph), so that it draws dropout masks at all.
struct CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, DecoderImpl* model,
                               int64_t layer, const torch::Tensor& cos, const torch::Tensor& sin,
                               const torch::Tensor& bias) {
    ctx->save_for_backward({x, cos, sin, bias});
    // saved_data holds IValues; the model outlives the graph (the trainer owns both).
    ctx->saved_data["model"] = static_cast<int64_t>(reinterpret_cast<intptr_t>(model));
    ctx->saved_data["layer"] = layer;
    ctx->saved_data["generator"] = at::detail::getDefaultCPUGenerator().get_state();
    // Recording on, as in the recomputation: LoRA dropout acts only while a gradient is recorded,
    // and both passes must draw the same mask. The graph is dropped with the detached result.
    torch::AutoGradMode recording(true);
    return model->Layer(layer, x, cos, sin, bias, nullptr).detach();
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    auto* model = reinterpret_cast<DecoderImpl*>(static_cast<intptr_t>(ctx->saved_data["model"].toInt()));
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    const torch::Tensor now = generator.get_state();
    generator.set_state(ctx->saved_data["generator"].toTensor());
    torch::Tensor x = saved[0].detach().requires_grad_(true);
    torch::Tensor y;
    {
      torch::AutoGradMode recording(true);
      y = model->Layer(ctx->saved_data["layer"].toInt(), x, saved[1], saved[2], saved[3], nullptr);
    }
    generator.set_state(now);
    torch::autograd::backward({y}, {grad[0]});
    return {x.grad(), {}, {}, {}, {}, {}};
  }
};

}  // namespace

torch::Tensor DecoderImpl::Hidden(const torch::Tensor& input_ids, const torch::Tensor& positions_in,
                                const torch::Tensor& key_mask_in, KvCache* cache) {
  const int64_t past = cache != nullptr ? cache->length() : 0;
  CheckArguments(input_ids, positions_in, key_mask_in, past, cache, dtype());
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  const auto long_options = torch::TensorOptions().dtype(torch::kLong).device(input_ids.device());
  const torch::Tensor positions = positions_in.defined()
                                      ? positions_in
                                      : torch::arange(past, past + T, long_options).expand({B, T});
  const torch::Tensor key_mask = key_mask_in.defined()
                                     ? key_mask_in
                                     : torch::ones({B, past + T}, long_options.dtype(torch::kBool));

  if (cache != nullptr && compute_dtype() != dtype()) {
    throw ModelError("Decoder::Hidden: mixed precision is for passes without a KV cache");
  }
  torch::Tensor x = model->embed_tokens(input_ids);  // [B,T,C], the residual stream in the model's dtype
  const auto [cos, sin] = RopeTables(positions, config_, compute_dtype());
  const torch::Tensor bias = AttentionBias(key_mask, past, T, StatisticsDtype(compute_dtype()));  // [B,1,T,S]
  const bool checkpoint = checkpoint_layers_ && cache == nullptr && torch::GradMode::is_enabled();
  // A checkpointed layer is differentiable only through its input: with frozen embeddings
  // (LoRA) that input must itself ask for a gradient, or no layer's backward would run.
  if (checkpoint && !x.requires_grad()) x = x.detach().requires_grad_(true);
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    x = checkpoint ? CheckpointedLayer::apply(x, this, l, cos, sin, bias) : Layer(l, x, cos, sin, bias, cache);
  }
  if (cache != nullptr) cache->length_ = past + T;
  return model->norm(x);  // [B,T,C]
}

torch::Tensor DecoderImpl::Layer(int64_t l, const torch::Tensor& x_in, const torch::Tensor& cos,
                                 const torch::Tensor& sin, const torch::Tensor& bias, KvCache* cache) {
  DecoderLayerImpl& layer = *model->layers[l];
  torch::Tensor x = x_in + Attention(*layer.self_attn, layer.input_layernorm(x_in), cos, sin, bias, cache, l);
  return x + layer.mlp(layer.post_attention_layernorm(x));
}

torch::Tensor DecoderImpl::Attention(SelfAttentionImpl& attn, const torch::Tensor& x,
                                   const torch::Tensor& cos, const torch::Tensor& sin,
                                   const torch::Tensor& bias, KvCache* cache, int64_t layer) {
  const int64_t B = x.size(0), T = x.size(1);
  const int64_t H = config_.num_attention_heads, K = config_.num_key_value_heads,
                D = config_.head_dim;
  const int64_t R = H / K;
  // Projections [B,T,C] -> [B,h,T,D] (Qwen3: each head RMS-normed), then rotary embeddings on
  // queries and keys.
  torch::Tensor q = attn.q_proj(x).view({B, T, H, D});
  torch::Tensor k = attn.k_proj(x).view({B, T, K, D});
  if (attn.q_norm) {
    q = attn.q_norm(q);
    k = attn.k_norm(k);
  }
  q = q.transpose(1, 2);
  k = k.transpose(1, 2);
  torch::Tensor v = attn.v_proj(x).view({B, T, K, D}).transpose(1, 2);
  q = ApplyRope(q, cos, sin);
  k = ApplyRope(k, cos, sin);
  if (cache != nullptr) {
    // Write the new keys/values in place, then attend over all S = P + T cached slots.
    const int64_t past = cache->length_;
    cache->keys_[layer].narrow(2, past, T).copy_(k);
    cache->values_[layer].narrow(2, past, T).copy_(v);
    k = cache->keys_[layer].narrow(2, 0, past + T);  // [B,K,S,D]
    v = cache->values_[layer].narrow(2, 0, past + T);
  }
  const int64_t S = k.size(2);
  // Grouped-query attention without copying K/V: query heads h = kv * R + r share kv head kv,
  // so view queries as [B,K,R*T,D] and multiply against [B,K,D,S].
  const torch::Tensor qg = q.reshape({B, K, R * T, D});
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  // Scaled in the products' dtype, as transformers does (bf16 logits then match its bit for bit),
  // then widened and masked by one addition, and the softmax in float32 at least (the bias's dtype).
  const torch::Tensor scores = torch::matmul(qg, k.transpose(2, 3)).mul(scale).view({B, H, T, S});
  const torch::Tensor probs = torch::add(bias, scores).softmax(-1).to(v.scalar_type());  // [B,H,T,S]
  const torch::Tensor out = torch::matmul(probs.view({B, K, R * T, S}), v)  // [B,K,R*T,D]
                                .view({B, H, T, D})
                                .transpose(1, 2)
                                .reshape({B, T, H * D});
  return attn.o_proj(out);  // [B,T,C]
}

torch::Tensor DecoderImpl::Logits(const torch::Tensor& hidden) {
  // [..., C] -> [..., V], computed in the model's dtype as transformers does, returned in float32.
  const torch::ScalarType dtype = compute_dtype();
  return LinearForward(hidden.to(dtype), OutputWeight().to(dtype), {}, bf16_kernel_).to(torch::kFloat32);
}

torch::Tensor& DecoderImpl::OutputWeight() {
  return config_.tie_word_embeddings ? model->embed_tokens->weight : lm_head->weight;
}

void DecoderImpl::SetComputeDtype(torch::ScalarType dtype) {
  if (dtype == this->dtype()) dtype = torch::ScalarType::Undefined;
  if (dtype != torch::ScalarType::Undefined && dtype != torch::kBFloat16) {
    throw ModelError(std::string("SetComputeDtype: mixed precision computes in bfloat16, not ") +
                     c10::toString(dtype));
  }
  compute_dtype_ = dtype;
  for (const auto& module : modules()) {
    if (auto* linear = module->as<LinearImpl>()) linear->compute_dtype = dtype;
  }
}

void DecoderImpl::StoreLinearsIn(torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  for (const auto& item : named_modules("", /*include_self=*/false)) {
    auto* linear = item.value()->as<LinearImpl>();
    if (linear == nullptr) continue;
    for (torch::Tensor* t : {&linear->weight, &linear->bias}) {
      if (!t->defined() || t->scalar_type() == dtype) continue;
      if (t->requires_grad() && static_cast<int64_t>(c10::elementSize(dtype)) < t->element_size()) {
        throw ModelError("StoreLinearsIn: '" + item.key() + "' is trained (requires a gradient); only frozen "
                         "weights are stored in " + c10::toString(dtype));
      }
      t->set_data(t->to(dtype));
    }
  }
}

torch::ScalarType DecoderImpl::compute_dtype() const {
  return compute_dtype_ == torch::ScalarType::Undefined ? dtype() : compute_dtype_;
}

void DecoderImpl::UseBf16Kernel(Bf16Kernel kernel) {
  if (!Bf16KernelSupported(kernel)) {
    throw ModelError("UseBf16Kernel: '" + std::string(Bf16KernelName(kernel)) +
                     "' does not run on this CPU");
  }
  bf16_kernel_ = kernel;
  for (const auto& module : modules()) {
    if (auto* linear = module->as<LinearImpl>()) linear->bf16_kernel = kernel;
  }
}

torch::Tensor DecoderImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& positions,
                                 const torch::Tensor& key_mask, KvCache* cache) {
  return Logits(Hidden(input_ids, positions, key_mask, cache));
}

void DecoderImpl::CopyWeightsFrom(DecoderImpl& other) {
  torch::NoGradGuard no_grad;
  auto theirs = other.named_parameters();
  for (auto& p : named_parameters()) {
    const torch::Tensor* src = theirs.find(p.key());
    if (src == nullptr || src->sizes() != p.value().sizes()) {
      throw ModelError("CopyWeightsFrom: parameter '" + p.key() +
                       "' is missing or has another shape");
    }
    p.value().copy_(*src);
  }
}

Decoder CloneDecoder(DecoderImpl& source, torch::ScalarType dtype, torch::Device device) {
  Decoder copy(source.config(), torch::TensorOptions().dtype(dtype).device(device),
             /*random_init=*/false);
  copy->CopyWeightsFrom(source);
  return copy;
}

}  // namespace rl::model

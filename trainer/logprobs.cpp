#include "trainer/logprobs.h"

#include <algorithm>
#include <stdexcept>

#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include "rl/model/bf16_gemm.h"
#include "rl/model/bf16_fused.h"
#include "rl/model/decoder.h"

namespace rl::trainer {

TokenBatch MakeTokenBatch(std::span<const std::vector<int32_t>> prompts,
                          std::span<const std::vector<int32_t>> completions) {
  if (prompts.size() != completions.size() || prompts.empty()) {
    throw std::invalid_argument("MakeTokenBatch: need as many prompts as completions, at least one");
  }
  const int64_t rows = static_cast<int64_t>(prompts.size());
  int64_t width_p = 0, width_c = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) throw std::invalid_argument("MakeTokenBatch: an empty prompt");
    width_p = std::max<int64_t>(width_p, static_cast<int64_t>(prompts[i].size()));
    width_c = std::max<int64_t>(width_c, static_cast<int64_t>(completions[i].size()));
  }
  if (width_c == 0) throw std::invalid_argument("MakeTokenBatch: every completion is empty");

  TokenBatch b;
  b.prompt_width = width_p;
  b.input_ids = torch::zeros({rows, width_p + width_c}, torch::kInt64);
  b.positions = torch::zeros({rows, width_p + width_c}, torch::kInt64);
  b.key_mask = torch::zeros({rows, width_p + width_c}, torch::kBool);
  b.completion_ids = torch::zeros({rows, width_c}, torch::kInt64);
  b.completion_mask = torch::zeros({rows, width_c}, torch::kFloat32);
  auto ids = b.input_ids.accessor<int64_t, 2>();
  auto pos = b.positions.accessor<int64_t, 2>();
  auto mask = b.key_mask.accessor<bool, 2>();
  auto cids = b.completion_ids.accessor<int64_t, 2>();
  auto cmask = b.completion_mask.accessor<float, 2>();
  for (int64_t r = 0; r < rows; ++r) {
    const auto& prompt = prompts[static_cast<size_t>(r)];
    const auto& completion = completions[static_cast<size_t>(r)];
    const int64_t pad = width_p - static_cast<int64_t>(prompt.size());
    int64_t position = 0;
    for (size_t j = 0; j < prompt.size(); ++j) {
      const int64_t col = pad + static_cast<int64_t>(j);
      ids[r][col] = prompt[j];
      pos[r][col] = position++;
      mask[r][col] = true;
    }
    for (size_t j = 0; j < completion.size(); ++j) {
      const int64_t col = width_p + static_cast<int64_t>(j);
      ids[r][col] = completion[j];
      pos[r][col] = position++;
      mask[r][col] = true;
      cids[r][static_cast<int64_t>(j)] = completion[j];
      cmask[r][static_cast<int64_t>(j)] = 1.0f;
    }
  }
  return b;
}

TokenBatch SelectRows(const TokenBatch& batch, const torch::Tensor& rows) {
  TokenBatch out;
  torch::Tensor key_mask = batch.key_mask.index_select(0, rows);
  torch::Tensor completion_mask = batch.completion_mask.index_select(0, rows);
  // Trim columns no selected row uses: leading prompt padding and trailing completion padding.
  torch::Tensor prompt_real = key_mask.narrow(1, 0, batch.prompt_width).any(0);
  const int64_t first = prompt_real.to(torch::kInt64).argmax().item<int64_t>();
  const int64_t used_c = std::max<int64_t>(completion_mask.sum(1).max().item<int64_t>(), 1);
  const int64_t keep_p = batch.prompt_width - first;
  out.prompt_width = keep_p;
  out.input_ids = batch.input_ids.index_select(0, rows).narrow(1, first, keep_p + used_c);
  out.positions = batch.positions.index_select(0, rows).narrow(1, first, keep_p + used_c);
  out.key_mask = key_mask.narrow(1, first, keep_p + used_c);
  out.completion_ids = batch.completion_ids.index_select(0, rows).narrow(1, 0, used_c);
  out.completion_mask = completion_mask.narrow(1, 0, used_c);
  return out;
}

namespace {

// The [B,L,V] logits of hidden chunk h [B,L,H] in the compute dtype of w (the output weight
// cast once per pass), as DecoderImpl::Logits makes them.
torch::Tensor ChunkLogits(const torch::Tensor& h, const torch::Tensor& w) {
  return torch::matmul(h.to(w.scalar_type()), w.t());
}

#if RL_HAVE_BF16_FUSED
// Whether the log-softmax over the vocabulary runs on the fused kernels of
// rl/model/bf16_fused.h (bf16 logits on a CPU with AVX-512) rather than on LibTorch's
// float32 operations.
bool FusedHead(const torch::Tensor& w) {
  return w.scalar_type() == torch::kBFloat16 && w.is_cpu() && model::Bf16KernelSupported(model::Bf16Kernel::kAvx512);
}

float* FloatsOrNull(const torch::Tensor& t) { return t.defined() ? t.data_ptr<float>() : nullptr; }
#endif

// Log-probabilities [B,L] of chunk targets [B,L] and, with_entropy, the entropies, float32,
// at temperature t.
std::pair<torch::Tensor, torch::Tensor> ChunkLogprobs(const torch::Tensor& h, const torch::Tensor& w,
                                                      const torch::Tensor& targets, double t, bool with_entropy) {
#if RL_HAVE_BF16_FUSED
  if (FusedHead(w)) {
    const torch::Tensor logits = ChunkLogits(h, w).contiguous(), ids = targets.contiguous();
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
    torch::Tensor logprob = torch::empty(targets.sizes(), f32);
    torch::Tensor entropy = with_entropy ? torch::empty(targets.sizes(), f32) : torch::Tensor();
    at::parallel_for(0, ids.numel(), 1, [&](int64_t begin, int64_t end) {
      model::Bf16LogSoftmaxRows(model::Bf16Words(logits), logits.size(-1), ids.data_ptr<int64_t>(),
                                static_cast<float>(1 / t), begin, end, logprob.data_ptr<float>(),
                                FloatsOrNull(entropy));
    });
    return {logprob, entropy};
  }
#endif
  torch::Tensor z = ChunkLogits(h, w).to(torch::kFloat32);
  const torch::Tensor lsm = torch::log_softmax(t != 1.0 ? z.div_(t) : z, -1);
  torch::Tensor logprob = lsm.gather(-1, targets.unsqueeze(-1)).squeeze(-1);
  if (!with_entropy) return {logprob, torch::Tensor()};
  return {logprob, -lsm.exp().mul_(lsm).sum(-1)};  // −Σ p log p
}

// ∂loss/∂logits [B,L,V] of a chunk in the compute dtype of w, for g = ∂loss/∂logprob and
// ge = ∂loss/∂entropy [B,L] (either undefined: zero). With z = logits/t, p = softmax(z),
// lp = z_target − logsumexp(z) and H = −Σ p log p: ∂lp/∂z = onehot − p and ∂H/∂z = −p (log p + H).
torch::Tensor ChunkLogitGradient(const torch::Tensor& h, const torch::Tensor& w, const torch::Tensor& targets,
                                 double t, const torch::Tensor& g, const torch::Tensor& ge) {
#if RL_HAVE_BF16_FUSED
  if (FusedHead(w)) {
    const torch::Tensor d_logits = ChunkLogits(h, w).contiguous(), ids = targets.contiguous();  // in place
    const torch::Tensor gc = g.defined() ? g.to(torch::kFloat32).contiguous() : g;
    const torch::Tensor gec = ge.defined() ? ge.to(torch::kFloat32).contiguous() : ge;
    at::parallel_for(0, ids.numel(), 1, [&](int64_t begin, int64_t end) {
      model::Bf16LogSoftmaxGradRows(model::Bf16Words(d_logits), d_logits.size(-1), ids.data_ptr<int64_t>(),
                                    static_cast<float>(1 / t), FloatsOrNull(gc), FloatsOrNull(gec), begin, end);
    });
    return d_logits;
  }
#endif
  // Built in place in p's storage, and the entropy's term in lsm's: [B,L,V] float32 tensors
  // are 0.16 GB each at 8 × 32 positions of a 151,936-word vocabulary.
  torch::Tensor z = ChunkLogits(h, w).to(torch::kFloat32);
  torch::Tensor lsm = torch::log_softmax(t != 1.0 ? z.div_(t) : z, -1);
  torch::Tensor dz = ge.defined() ? lsm.exp() : lsm.exp_();  // p, in lsm's storage when lsm is done
  torch::Tensor entropy_term;                                // p (log p + H) ∂loss/∂H
  if (ge.defined()) {
    const torch::Tensor entropy = -(dz * lsm).sum(-1, /*keepdim=*/true);
    entropy_term = lsm.add_(entropy).mul_(dz).mul_(ge.unsqueeze(-1));
  }
  if (g.defined()) {
    dz.mul_(-g.unsqueeze(-1)).scatter_add_(-1, targets.unsqueeze(-1), g.unsqueeze(-1));
  } else {
    dz.zero_();
  }
  if (entropy_term.defined()) dz.sub_(entropy_term);
  return (t != 1.0 ? dz.div_(t) : dz).to(w.scalar_type());
}

// d_weight [V,H] float32 += d_logits [N,V]ᵀ · h [N,H], both in the compute dtype, a block of
// vocabulary rows at a time: the whole product would be a second [V,H] tensor (0.27 GB in bf16
// at Qwen2.5-0.5B's shape). bf16 adds into float32 in place by exact widening. d_logitsᵀ is
// copied out once: given the transposed view, oneDNN ran its generic gemm:jit kernel rather than
// its AMX one (0.83 s against 0.33 s, plus 0.23 s for the copy, per micro-batch of the issue's
// step on a Sapphire Rapids VM).
void AddWeightGradient(torch::Tensor& d_weight, const torch::Tensor& d_logits, const torch::Tensor& h) {
  constexpr int64_t kRows = 16384;
  const torch::Tensor d_logits_t = d_logits.t().contiguous();
  for (int64_t v = 0; v < d_weight.size(0); v += kRows) {
    const int64_t n = std::min(kRows, d_weight.size(0) - v);
    d_weight.narrow(0, v, n).add_(torch::matmul(d_logits_t.narrow(0, v, n), h));
  }
}

// Log-probabilities (and with_entropy their entropies) of the target tokens from the hidden
// states, `chunk` positions at a time, with a hand-written backward pass that recomputes each
// chunk's logits:
// autograd would keep every chunk's [B,L,V] logits, log-softmax and probabilities until the
// backward pass (0.6 GB per tensor for 8 × 128 tokens of a 151,936-word vocabulary), this keeps
// only the hidden states.
//
// With `tied` (the weight is also the input embedding's), the weight's gradient is added
// straight into weight.grad(), as Megatron-LM's gradient accumulation fusion does. Returned, it
// would meet the embedding's gradient in the autograd engine, which sums the two into a fresh
// [V,H] float32 tensor (0.54 GB at Qwen2.5-0.5B's shape) before adding that into .grad: two
// passes and two such tensors more per micro-batch. The embedding's contribution still goes
// through autograd, so hooks on the weight (GradientSum's) still fire once, with .grad already
// holding this part. An untied weight's gradient is returned: its hook would not fire otherwise.
struct ChunkedTokenLogprobs : public torch::autograd::Function<ChunkedTokenLogprobs> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& hidden,
                                                const torch::Tensor& weight, const torch::Tensor& targets,
                                                double t, int64_t chunk, torch::ScalarType dtype, bool with_entropy,
                                                bool tied) {
    ctx->save_for_backward({hidden, weight, targets});
    // An output the loss does not use (the entropy, kept for metrics) gets no gradient rather
    // than zeros: its term would cost three passes over every chunk's [B,L,V] for nothing.
    ctx->set_materialize_grads(false);
    ctx->saved_data["t"] = t;
    ctx->saved_data["chunk"] = chunk;
    ctx->saved_data["dtype"] = static_cast<int64_t>(dtype);
    // Into .grad only where it holds the sum at the weight's precision: a float32 or float64
    // parameter (a bf16 .grad would round every chunk's addition).
    ctx->saved_data["into_grad"] = tied && weight.is_leaf() && weight.scalar_type() != torch::kBFloat16;
    const int64_t width = targets.size(1);
    const torch::Tensor w = weight.to(dtype);
    std::vector<torch::Tensor> logprobs, entropies;
    for (int64_t start = 0; start < width; start += chunk) {
      const int64_t len = std::min(chunk, width - start);
      auto [logprob, entropy] =
          ChunkLogprobs(hidden.narrow(1, start, len), w, targets.narrow(1, start, len), t, with_entropy);
      logprobs.push_back(logprob);
      if (with_entropy) entropies.push_back(entropy);
    }
    if (!with_entropy) return {torch::cat(logprobs, 1)};      // [B,C] float32
    return {torch::cat(logprobs, 1), torch::cat(entropies, 1)};  // [B,C] float32 each
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &hidden = saved[0], &weight = saved[1], &targets = saved[2];
    const double t = ctx->saved_data["t"].toDouble();
    const int64_t chunk = ctx->saved_data["chunk"].toInt(), width = targets.size(1);
    const auto dtype = static_cast<torch::ScalarType>(ctx->saved_data["dtype"].toInt());
    const torch::Tensor w = weight.to(dtype);
    const bool weight_grad = ctx->needs_input_grad(1);
    const bool into_grad = weight_grad && ctx->saved_data["into_grad"].toBool();
    torch::Tensor d_hidden = torch::zeros_like(hidden);
    torch::Tensor d_weight;
    if (into_grad) {
      // The saved weight is the parameter itself (a saved input keeps its variable), so this is
      // the parameter's .grad.
      torch::Tensor& grad = weight.mutable_grad();
      if (!grad.defined()) grad = torch::zeros_like(weight);
      d_weight = grad;
    } else if (weight_grad) {
      d_weight = torch::zeros(weight.sizes(), weight.options().dtype(torch::kFloat32));
    }
    for (int64_t start = 0; start < width; start += chunk) {
      const int64_t len = std::min(chunk, width - start);
      const torch::Tensor h = hidden.narrow(1, start, len);
      const auto chunk_grad = [&](size_t i) {
        return grad.size() > i && grad[i].defined() ? grad[i].narrow(1, start, len) : torch::Tensor();
      };
      const torch::Tensor d_logits =
          ChunkLogitGradient(h, w, targets.narrow(1, start, len), t, chunk_grad(0), chunk_grad(1));  // [B,L,V]
      d_hidden.narrow(1, start, len).copy_(torch::matmul(d_logits, w));
      if (weight_grad) AddWeightGradient(d_weight, d_logits.flatten(0, 1), h.to(dtype).flatten(0, 1));
    }
    const bool returned = weight_grad && !into_grad;
    return {d_hidden, returned ? d_weight.to(weight.scalar_type()) : torch::Tensor(), {}, {}, {}, {}, {}, {}};
  }
};

}  // namespace

TrainingPasses::TrainingPasses(model::DecoderImpl& model, bool bf16, bool gradient_checkpointing) : model_(model) {
  model_.SetComputeDtype(bf16 ? torch::kBFloat16 : model_.dtype());
  model_.SetGradientCheckpointing(gradient_checkpointing);
}

TrainingPasses::~TrainingPasses() {
  model_.SetComputeDtype(model_.dtype());
  model_.SetGradientCheckpointing(false);
}

CompletionLogprobs ComputeCompletionLogprobs(model::DecoderImpl& model, const TokenBatch& batch,
                                             double temperature, int64_t chunk, bool with_entropy) {
  const double t = temperature > 0 ? temperature : 1.0;
  const int64_t vocabulary = model.OutputWeight().size(0);
  if (batch.completion_ids.min().item<int64_t>() < 0 || batch.completion_ids.max().item<int64_t>() >= vocabulary) {
    throw std::invalid_argument("ComputeCompletionLogprobs: a completion token id is outside the vocabulary [0, " +
                                std::to_string(vocabulary) + ")");
  }
  torch::Tensor hidden = model.Hidden(batch.input_ids, batch.positions, batch.key_mask);  // [B,P+C,H]
  const int64_t width_c = batch.completion_ids.size(1);
  torch::Tensor predicting = hidden.narrow(1, batch.prompt_width - 1, width_c);  // [B,C,H]
  const auto outputs = ChunkedTokenLogprobs::apply(predicting, model.OutputWeight(), batch.completion_ids, t,
                                                   chunk, model.compute_dtype(), with_entropy,
                                                   model.config().tie_word_embeddings);
  CompletionLogprobs out;
  out.logprobs = outputs[0] * batch.completion_mask;
  if (with_entropy) out.entropy = outputs[1] * batch.completion_mask;
  return out;
}

}  // namespace rl::trainer

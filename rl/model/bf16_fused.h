// Fused bfloat16 kernels for the training passes, where LibTorch 1.13 runs a chain of separate
// operations, each a trip to memory and some in slow scalar-like loops:
//
//  - the log-prob head's log-softmax over the vocabulary: each row's target log-probability and
//    entropy, and the gradient with respect to the logits, without a float32 copy of the row;
//  - SwiGLU's product silu(gate) · up and its gradient, in one pass each.
//
//   // logits [N, V] bf16 (16-bit patterns), targets [N]; z = logits * scale (scale = 1 / temperature)
//   if (rl::model::Bf16KernelSupported(rl::model::Bf16Kernel::kAvx512)) {
//     rl::model::Bf16LogSoftmaxRows(logits, V, targets, scale, 0, N, logprob, entropy);
//     rl::model::Bf16LogSoftmaxGradRows(logits, V, targets, scale, d_logprob, d_entropy, 0, N);
//   }   // logits now hold ∂loss/∂logits in bf16
//
// The log-softmax. A training pass's log-prob head turns [N, V] logits (V is 151,936 for Qwen)
// into one log-probability and entropy per row, and its backward pass turns them into
// ∂loss/∂logits. With LibTorch's operations each is a chain of float32 tensors the size of the
// logits (widen, log-softmax, exp, product, sum, gather; then exp, scatter, scale, narrow):
// 0.7-1.2 s per micro-batch of the GRPO step on a Sapphire Rapids VM. These read a row once from
// memory and again from cache (a row is 297 KiB of bf16) and write only what is asked for. With
// z = scale · logits, lse = logsumexp(z), p = exp(z − lse):
//   logprob = z[target] − lse          entropy H = −Σ p log p
//   ∂loss/∂logits = scale · (g · (onehot(target) − p) − h · p · (log p + H))
// for g = ∂loss/∂logprob and h = ∂loss/∂H of the row. Sums run in float32 over 64 lanes, the
// exponential is SLEEF's (1.0 ULP), and the gradient is rounded to nearest-even bf16 as
// LibTorch's conversion rounds.
//
// SwiGLU. out = silu(gate) · up with silu(x) = x · σ(x), σ(x) = 1 / (1 + exp(−x)), and its
// gradient, computed in float32 and rounded to bf16 once per output. LibTorch 1.13's bf16 silu
// rounds its intermediates too (a third of its results are a bf16 step from the float32 value's
// rounding) and runs several times slower; the decoder therefore uses these kernels in its
// mixed-precision training passes, and LibTorch's operations for bf16-stored models, whose
// logits then equal transformers' bit for bit.
//
// Requirements: AVX-512 F and BW with FMA, as Bf16Kernel::kAvx512 (rl/model/bf16_gemm.h); the
// caller checks Bf16KernelSupported(Bf16Kernel::kAvx512) and splits the work across threads.
// Built on x86-64 only (RL_HAVE_BF16_FUSED). scale > 0; every target in [0, V).
//
// Thread-safety: pure functions of their arguments; threads may share inputs and write disjoint
// rows or ranges.
#pragma once

#include <cstdint>

namespace rl::model {

// For rows [row_begin, row_end) of logits [N, V]: logprob[r] and, where entropy is not null,
// entropy[r].
void Bf16LogSoftmaxRows(const uint16_t* logits, int64_t V, const int64_t* targets, float scale,
                        int64_t row_begin, int64_t row_end, float* logprob, float* entropy);

// Overwrites rows [row_begin, row_end) of logits [N, V] with ∂loss/∂logits. d_logprob[r] and
// d_entropy[r] are the row's g and h; a null array counts as zeros.
void Bf16LogSoftmaxGradRows(uint16_t* logits, int64_t V, const int64_t* targets, float scale,
                            const float* d_logprob, const float* d_entropy, int64_t row_begin,
                            int64_t row_end);

// out[i] = silu(gate[i]) · up[i] for i in [begin, end).
void Bf16SwiGlu(const uint16_t* gate, const uint16_t* up, uint16_t* out, int64_t begin, int64_t end);

// For i in [begin, end), with d_out = ∂loss/∂out: d_gate[i] = ∂loss/∂gate and d_up[i] = ∂loss/∂up.
void Bf16SwiGluGrad(const uint16_t* gate, const uint16_t* up, const uint16_t* d_out, uint16_t* d_gate,
                    uint16_t* d_up, int64_t begin, int64_t end);

}  // namespace rl::model

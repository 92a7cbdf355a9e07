// Matrix products with bfloat16 weights on the CPU, for inference: y[M,N] = x[M,K] · w[N,K]ᵀ
// (+ b[N]), all three bf16 (passed as their 16-bit patterns), accumulated in float32 and rounded
// to nearest-even once per output.
//
//   const rl::model::Bf16Kernel kernel = rl::model::BestBf16Kernel();
//   if (kernel != rl::model::Bf16Kernel::kNone)
//     rl::model::Bf16GemmColumns(kernel, x, w, bias, y, M, N, K, 0, N);  // split [0,N) to thread
//
// Why: LibTorch 1.13's bf16 products reached about a quarter of this machine's memory bandwidth
// in a decode step, which reads every weight once per token (bench/model). These kernels stream
// each weight row once per block of 64 input rows and keep x in cache. They are for few rows
// (decoding); for many, LibTorch's oneDNN computes faster (see Bf16KernelMaxRows).
//
// Batch invariance: every output element is reduced in one fixed order, whatever M, whichever
// tile it falls in, and however [0,N) is split across threads, so a row of x gives the same bits
// alone or in a batch of any size. (LibTorch's bf16 products do not promise this; its batched
// bf16 matmul, used for attention, gives other bits for another batch size.) The two kernels
// round differently from each other and from LibTorch.
//
// Thread-safety: pure functions of their arguments; callers split [0,N) across threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace rl::model {

enum class Bf16Kernel {
  kNone,    // no kernel: LibTorch computes
  kAvx2,    // AVX2 + FMA: bf16 widened to float32, 8-lane fused multiply-adds
  kAvx512,  // AVX-512 F/BW + FMA: the same with 16 lanes
  kAmx,     // AMX-BF16 tiles (Sapphire Rapids and later; Linux grants the tile state on request)
};

// The fastest kernel this CPU runs (checked once with cpuid, then cached).
Bf16Kernel BestBf16Kernel();
// Whether this CPU can run `kernel` (kNone: always).
bool Bf16KernelSupported(Bf16Kernel kernel);
// The most rows M for which `kernel` is used rather than LibTorch 1.13's oneDNN (which uses AMX
// when the CPU has it): 64 for kAmx, 8 for kAvx512, 4 for kAvx2, 0 for kNone. On the Emerald
// Rapids VM, bench/model/gemm_bench (2 threads) puts kAmx at 1.04-2.2x oneDNN's rate up to 32
// rows on every Qwen2.5-0.5B matrix, 0.91-1.38x at 64 (three runs; one matrix under 1 once),
// 0.98-1.11x at 128 and 0.61-1.05x from 256 (prefill, log-prob passes); model_bench's decode at
// batch 64 ran 1.19-1.39x faster with this bound at 64 than at 32 (two alternating pairs).
// kAvx512 against oneDNN kept off AMX (ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16, the code a CPU with
// AVX512-BF16 and no AMX runs), same VM, two runs: 1.29-2.15x at 8 rows on every matrix,
// 0.97-1.58x at 16, 0.85-1.51x at 32. kAvx2's 4 is unmeasured past 4 rows (an AVX2-only CPU,
// where LibTorch does not use oneDNN for bf16, was not at hand).
int64_t Bf16KernelMaxRows(Bf16Kernel kernel);
// "torch" (kNone: LibTorch computes), "avx2", "avx512", "amx".
std::string_view Bf16KernelName(Bf16Kernel kernel);
// The kernel of that name, or BestBf16Kernel() for "auto"; nullopt for any other name.
std::optional<Bf16Kernel> Bf16KernelNamed(std::string_view name);

// Writes y[m, n] for every m in [0,M) and n in [n_begin, n_end). x [M,K], w [N,K] and y [M,N]
// are row-major and contiguous; bias is [N] or null. `kernel` must be supported and not kNone.
void Bf16GemmColumns(Bf16Kernel kernel, const uint16_t* x, const uint16_t* w, const uint16_t* bias,
                     uint16_t* y, int64_t M, int64_t N, int64_t K, int64_t n_begin, int64_t n_end);

}  // namespace rl::model

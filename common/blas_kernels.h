// common/blas_kernels.h: OpenBLAS's kernels fitted to the CPU the program runs on.
//
//   int main(int argc, char** argv) {
//     rl::common::RestartForBlasKernels(argv);  // first: it may start the program again
//
// LibTorch's float32 matrix products go to the system's BLAS, OpenBLAS on Debian. Debian 12's
// OpenBLAS (0.3.21) chooses its kernels once, while it is loaded, from the CPU's family and
// model numbers, and gives a model it does not know its generic SSE3 kernels ("Prescott"). An
// Emerald Rapids VM (family 6, model 207, AVX-512 and AMX) got them: the float32 quickstart ran
// 2.7-3.2x slower than with OPENBLAS_CORETYPE=SkylakeX, the kernels the CPU can run (README, "Fast
// steps"). OpenBLAS reads that variable only while loading, before main(); so where OpenBLAS
// chose kernels older than AVX2 on a CPU with AVX2 and FMA, and the variable is unset, this
// sets it (SkylakeX with AVX-512, Haswell with AVX2) and starts the same program again
// (execv of /proc/self/exe, the same arguments and environment). It happens once: the new
// process finds the variable set. Without OpenBLAS in the process (a program without LibTorch,
// another BLAS) it does nothing. Call it first in main(), before threads, output or files.
#pragma once

#include <string>
#include <string_view>

namespace rl::common {

void RestartForBlasKernels(char** argv);

// The kernels OpenBLAS runs on ("SkylakeX", "Haswell", "Prescott", ...); "" without OpenBLAS.
std::string BlasKernels();

// The decision above: the OPENBLAS_CORETYPE to start again with, "" to keep `chosen`.
struct CpuVectorUnits {
  bool avx2_fma = false;  // AVX2 and FMA, with the OS's support
  bool avx512 = false;    // AVX-512 F, CD, BW, DQ and VL, with the OS's support
};
std::string BetterBlasKernels(std::string_view chosen, CpuVectorUnits cpu);

// This CPU's.
CpuVectorUnits DetectCpuVectorUnits();

}  // namespace rl::common

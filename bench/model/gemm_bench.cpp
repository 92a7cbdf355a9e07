// bf16 matrix products alone: rl/model/bf16_gemm.h's kernels against LibTorch's torch::linear,
// for the weight shapes of Qwen2.5-0.5B and a range of row counts M (decode: M = batch; prefill
// and log-prob passes: M = batch × tokens). Prints GFLOP/s and weight GB/s, medians of
// --repeats, the candidates interleaved within each repeat so that load on a shared machine
// hits them alike. It is what decides rl::model's Bf16KernelMaxRows. On a CPU with AMX,
// ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 with --kernel avx512 compares what one without AMX runs.
//
//   gemm_bench                                   # all shapes, M = 1..256
//   gemm_bench --rows 1,16 --repeats 7
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <torch/types.h>
#include <torch/utils.h>
#include <CLI/CLI.hpp>

#include "common/blas_kernels.h"
#include "rl/model/decoder.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Shape {
  const char* name;
  int64_t n, k;
};

// Per layer: q/o 896×896, k/v 128×896, gate/up 4864×896, down 896×4864; and the tied lm_head.
const Shape kShapes[] = {{"q_proj", 896, 896},     {"k_proj", 128, 896},
                         {"gate_proj", 4864, 896}, {"down_proj", 896, 4864},
                         {"lm_head", 151936, 896}};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Ours through Bf16Linear, at any row count (LinearForward would hand rows past
// Bf16KernelMaxRows to LibTorch); kNone: LibTorch's torch::linear.
torch::Tensor Product(const torch::Tensor& x, const torch::Tensor& w, rl::model::Bf16Kernel k) {
  return k == rl::model::Bf16Kernel::kNone ? torch::linear(x, w) : rl::model::Bf16Linear(x, w, {}, k);
}

// Seconds per product, over enough calls to take about 50 ms.
double SecondsPerCall(const torch::Tensor& x, const torch::Tensor& w, rl::model::Bf16Kernel k) {
  Product(x, w, k);  // warm-up: pages, caches
  int64_t calls = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  while (elapsed < 0.05) {
    Product(x, w, k);
    ++calls;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  }
  return elapsed / static_cast<double>(calls);
}

}  // namespace

int main(int argc, char** argv) {
  rl::common::RestartForBlasKernels(argv);  // first: it may start the program again
  std::vector<int64_t> rows = {1, 2, 4, 8, 16, 32, 64, 128, 256};
  int repeats = 5, threads = 0;
  std::string kernel_name = "auto";
  CLI::App app{"bf16 matrix products: rl::model kernels against LibTorch"};
  app.add_option("--rows", rows, "row counts M")->delimiter(',');
  app.add_option("--repeats", repeats, "interleaved runs per figure (the median is printed)");
  app.add_option("--threads", threads, "threads (0: one per core)");
  app.add_option("--kernel", kernel_name, "ours: auto, avx2, avx512, amx");
  CLI11_PARSE(app, argc, argv);

  rl::model::ConfigureThreads(threads);
  torch::NoGradGuard no_grad;
  const auto named = rl::model::Bf16KernelNamed(kernel_name);
  if (!named || !rl::model::Bf16KernelSupported(*named)) {
    std::fprintf(stderr, "--kernel %s: unknown or not supported by this CPU\n",
                 kernel_name.c_str());
    return 2;
  }
  const rl::model::Bf16Kernel ours = *named;
  if (ours == rl::model::Bf16Kernel::kNone) {
    std::printf("no bf16 kernel runs on this CPU: nothing to compare\n");
    return 0;
  }
  std::printf("threads %d, kernel %s, median of %d\n", at::get_num_threads(),
              std::string(rl::model::Bf16KernelName(ours)).c_str(), repeats);
  std::printf("%-10s %6s %12s %12s %10s %10s %7s\n", "matrix", "M", "ours GFLOP/s",
              "torch GFLOP/s", "ours GB/s", "torch GB/s", "ratio");
  torch::manual_seed(0);
  for (const Shape& s : kShapes) {
    const torch::Tensor w = torch::randn({s.n, s.k}).to(torch::kBFloat16);
    for (int64_t m : rows) {
      const torch::Tensor x = torch::randn({m, s.k}).to(torch::kBFloat16);
      std::vector<double> mine, theirs;
      for (int r = 0; r < repeats; ++r) {
        mine.push_back(SecondsPerCall(x, w, ours));
        theirs.push_back(SecondsPerCall(x, w, rl::model::Bf16Kernel::kNone));
      }
      const double flop = 2.0 * m * s.n * s.k, bytes = 2.0 * s.n * s.k;
      const double a = Median(mine), b = Median(theirs);
      std::printf("%-10s %6lld %12.1f %12.1f %10.1f %10.1f %6.2fx\n", s.name,
                  static_cast<long long>(m), flop / a / 1e9, flop / b / 1e9, bytes / a / 1e9,
                  bytes / b / 1e9, b / a);
      std::fflush(stdout);
    }
  }
  return 0;
}

// rl/model/bf16_fused.h's kernels against the LibTorch operations that run where they cannot,
// medians of --repeats, the two interleaved within each repeat:
//  - the log-prob head's log-softmax (trainer/logprobs.cpp) on bf16 logits of one chunk of the
//    GRPO step's micro-batch (8 sequences × 32 positions of Qwen's 151,936-word vocabulary),
//    temperature 0.7, with entropies; forward: log-probabilities and entropies; backward:
//    ∂loss/∂logits in bf16 for both outputs' gradients;
//  - SwiGLU's silu(gate) · up (rl/model/decoder.cpp's MLP) on [--tokens, 4864] bf16, forward and
//    backward (LibTorch: silu, product; the product's two gradients and silu's).
//
//   fused_bench --rows 256 --tokens 1544 --repeats 7
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/types.h>
#include <torch/utils.h>
#include <CLI/CLI.hpp>

#include "common/blas_kernels.h"
#include "rl/model/bf16_gemm.h"
#include "rl/model/bf16_fused.h"
#include "rl/model/decoder.h"

namespace {

using rl::model::Bf16Words;

using Clock = std::chrono::steady_clock;

double Seconds(const std::function<void()>& run) {
  const auto start = Clock::now();
  run();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  rl::common::RestartForBlasKernels(argv);  // first: it may start the program again
  int64_t rows = 256, vocab = 151936, tokens = 1544, intermediate = 4864;
  int repeats = 7, threads = 0;
  CLI::App app{"the log-prob head's log-softmax: fused bf16 kernels against LibTorch's operations"};
  app.add_option("--rows", rows, "logit rows (sequences × positions)");
  app.add_option("--vocab", vocab, "vocabulary size");
  app.add_option("--tokens", tokens, "SwiGLU rows (sequences × tokens)");
  app.add_option("--intermediate", intermediate, "SwiGLU width (the MLP's intermediate size)");
  app.add_option("--repeats", repeats, "interleaved runs per figure (the median is printed)");
  app.add_option("--threads", threads, "threads (0: one per core)");
  CLI11_PARSE(app, argc, argv);

  rl::model::ConfigureThreads(threads);
  torch::NoGradGuard no_grad;
#if !RL_HAVE_BF16_FUSED
  std::printf("the fused kernels are built for x86-64 only: nothing to compare\n");
  return 0;
#else
  if (!rl::model::Bf16KernelSupported(rl::model::Bf16Kernel::kAvx512)) {
    std::printf("the fused kernels need AVX-512 F/BW with FMA: nothing to compare on this CPU\n");
    return 0;
  }
  const double t = 0.7;
  torch::manual_seed(0);
  const torch::Tensor logits = (torch::randn({rows, vocab}) * 3).to(torch::kBFloat16);
  const torch::Tensor targets = torch::randint(0, vocab, {rows}, torch::kInt64);
  const torch::Tensor g = torch::randn({rows}), ge = torch::randn({rows});
  torch::Tensor logprob = torch::empty({rows}), entropy = torch::empty({rows});
  torch::Tensor work = torch::empty_like(logits);

  const auto fused_forward = [&] {
    at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
      rl::model::Bf16LogSoftmaxRows(Bf16Words(logits), vocab, targets.data_ptr<int64_t>(), static_cast<float>(1 / t),
                                    begin, end, logprob.data_ptr<float>(), entropy.data_ptr<float>());
    });
  };
  const auto fused_backward = [&] {
    at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
      rl::model::Bf16LogSoftmaxGradRows(Bf16Words(work), vocab, targets.data_ptr<int64_t>(), static_cast<float>(1 / t),
                                        g.data_ptr<float>(), ge.data_ptr<float>(), begin, end);
    });
  };
  // trainer/logprobs.cpp's LibTorch path, step for step.
  const auto torch_forward = [&] {
    const torch::Tensor lsm = torch::log_softmax(logits.to(torch::kFloat32).div_(t), -1);
    logprob.copy_(lsm.gather(-1, targets.unsqueeze(-1)).squeeze(-1));
    entropy.copy_(-lsm.exp().mul_(lsm).sum(-1));
  };
  const auto torch_backward = [&] {
    torch::Tensor lsm = torch::log_softmax(logits.to(torch::kFloat32).div_(t), -1);
    torch::Tensor dz = lsm.exp();
    const torch::Tensor h = -(dz * lsm).sum(-1, true);
    const torch::Tensor entropy_term = lsm.add_(h).mul_(dz).mul_(ge.unsqueeze(-1));
    dz.mul_(-g.unsqueeze(-1)).scatter_add_(-1, targets.unsqueeze(-1), g.unsqueeze(-1)).sub_(entropy_term);
    work.copy_(dz.div_(t));
  };

  const auto bf16 = torch::TensorOptions().dtype(torch::kBFloat16);
  const torch::Tensor gate = torch::randn({tokens, intermediate}).to(torch::kBFloat16);
  const torch::Tensor up = torch::randn({tokens, intermediate}).to(torch::kBFloat16);
  const torch::Tensor d_out = torch::randn({tokens, intermediate}).to(torch::kBFloat16);
  constexpr int64_t kGrain = int64_t{1} << 15;
  const auto swiglu_forward = [&] {
    torch::Tensor out = torch::empty({tokens, intermediate}, bf16);
    at::parallel_for(0, out.numel(), kGrain, [&](int64_t begin, int64_t end) {
      rl::model::Bf16SwiGlu(Bf16Words(gate), Bf16Words(up), Bf16Words(out), begin, end);
    });
  };
  const auto swiglu_backward = [&] {
    torch::Tensor d_gate = torch::empty({tokens, intermediate}, bf16), d_up = torch::empty_like(d_gate);
    at::parallel_for(0, d_gate.numel(), kGrain, [&](int64_t begin, int64_t end) {
      rl::model::Bf16SwiGluGrad(Bf16Words(gate), Bf16Words(up), Bf16Words(d_out), Bf16Words(d_gate), Bf16Words(d_up),
                                begin, end);
    });
  };
  const auto torch_swiglu_forward = [&] { const torch::Tensor out = torch::silu(gate) * up; };
  const torch::Tensor saved_silu = torch::silu(gate);
  const auto torch_swiglu_backward = [&] {  // autograd's: two products with the saved silu(gate), silu's gradient
    const torch::Tensor d_up = d_out * saved_silu, d_gate = at::silu_backward(d_out * up, gate);
  };

  std::vector<double> ff, fb, tf, tb, sf, sb, tsf, tsb;
  for (int r = 0; r <= repeats; ++r) {  // the first round warms up pages and caches
    work.copy_(logits);
    const double a = Seconds(fused_forward), b = Seconds(fused_backward), c = Seconds(torch_forward),
                 d = Seconds(torch_backward);
    const double e = Seconds(swiglu_forward), f = Seconds(swiglu_backward), g = Seconds(torch_swiglu_forward);
    const double h = Seconds(torch_swiglu_backward);
    if (r == 0) continue;
    ff.push_back(a), fb.push_back(b), tf.push_back(c), tb.push_back(d);
    sf.push_back(e), sb.push_back(f), tsf.push_back(g), tsb.push_back(h);
  }
  std::printf("log-softmax rows %lld x vocabulary %lld, SwiGLU %lld x %lld; threads %d (%s vector kernels), "
              "median of %d\n",
              static_cast<long long>(rows), static_cast<long long>(vocab), static_cast<long long>(tokens),
              static_cast<long long>(intermediate), at::get_num_threads(), rl::model::TorchVectorKernels().c_str(),
              repeats);
  std::printf("%-21s %10s %10s %7s\n", "pass", "fused ms", "torch ms", "ratio");
  const auto row = [](const char* name, const std::vector<double>& ours, const std::vector<double>& theirs) {
    const double a = Median(ours), b = Median(theirs);
    std::printf("%-21s %10.2f %10.2f %6.2fx\n", name, a * 1e3, b * 1e3, b / a);
  };
  row("log-softmax forward", ff, tf);
  row("log-softmax backward", fb, tb);
  row("SwiGLU forward", sf, tsf);
  row("SwiGLU backward", sb, tsb);
  return 0;
#endif
}

// The log-prob head's log-softmax alone: rl/model/bf16_logsoftmax.h's fused kernels against the
// LibTorch operations trainer/logprobs.cpp runs where they cannot (the same math on float32
// tensors), on bf16 logits of one chunk of the GRPO step's micro-batch (8 sequences × 32
// positions of Qwen's 151,936-word vocabulary), temperature 0.7, with entropies. Forward:
// log-probabilities and entropies; backward: ∂loss/∂logits in bf16 for both outputs' gradients.
// Medians of --repeats, the two interleaved within each repeat.
//
//   logsoftmax_bench --rows 256 --repeats 7
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/types.h>
#include <torch/utils.h>
#include <CLI/CLI.hpp>

#include "rl/model/bf16_gemm.h"
#include "rl/model/bf16_logsoftmax.h"
#include "rl/model/decoder.h"

namespace {

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

uint16_t* Bits(const torch::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); }

}  // namespace

int main(int argc, char** argv) {
  int64_t rows = 256, vocab = 151936;
  int repeats = 7, threads = 0;
  CLI::App app{"the log-prob head's log-softmax: fused bf16 kernels against LibTorch's operations"};
  app.add_option("--rows", rows, "logit rows (sequences × positions)");
  app.add_option("--vocab", vocab, "vocabulary size");
  app.add_option("--repeats", repeats, "interleaved runs per figure (the median is printed)");
  app.add_option("--threads", threads, "threads (0: one per core)");
  CLI11_PARSE(app, argc, argv);

  rl::model::ConfigureThreads(threads);
  torch::NoGradGuard no_grad;
#if !RL_HAVE_BF16_LOGSOFTMAX
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
      rl::model::Bf16LogSoftmaxRows(Bits(logits), vocab, targets.data_ptr<int64_t>(), static_cast<float>(1 / t),
                                    begin, end, logprob.data_ptr<float>(), entropy.data_ptr<float>());
    });
  };
  const auto fused_backward = [&] {
    at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
      rl::model::Bf16LogSoftmaxGradRows(Bits(work), vocab, targets.data_ptr<int64_t>(), static_cast<float>(1 / t),
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

  std::vector<double> ff, fb, tf, tb;
  for (int r = 0; r <= repeats; ++r) {  // the first round warms up pages and caches
    work.copy_(logits);
    const double a = Seconds(fused_forward), b = Seconds(fused_backward), c = Seconds(torch_forward),
                 d = Seconds(torch_backward);
    if (r == 0) continue;
    ff.push_back(a), fb.push_back(b), tf.push_back(c), tb.push_back(d);
  }
  std::printf("rows %lld, vocabulary %lld, threads %d (%s vector kernels), median of %d\n",
              static_cast<long long>(rows), static_cast<long long>(vocab), at::get_num_threads(),
              rl::model::TorchVectorKernels().c_str(), repeats);
  std::printf("%-9s %10s %10s %7s\n", "pass", "fused ms", "torch ms", "ratio");
  std::printf("%-9s %10.1f %10.1f %6.2fx\n", "forward", Median(ff) * 1e3, Median(tf) * 1e3, Median(tf) / Median(ff));
  std::printf("%-9s %10.1f %10.1f %6.2fx\n", "backward", Median(fb) * 1e3, Median(tb) * 1e3, Median(tb) / Median(fb));
  return 0;
#endif
}

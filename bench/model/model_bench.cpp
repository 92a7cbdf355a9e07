// Qwen2 forward-pass throughput: prefill and greedy-decode tokens/s for a tiny config and for a
// random model of Qwen2.5-0.5B's shape, float32 and bfloat16, batch 1/8/16/64, decoding with the
// KV cache against recomputing the whole sequence each step; peak RSS. Medians of --repeats.
// "floor" is the rate of the bare matrix products of a decode step (see MatmulFloorSeconds).
// --kernel compares the bf16 products of rl/model/bf16_gemm.h ("auto": the best this CPU runs)
// with LibTorch's ("torch") side by side in one run; float32 always uses LibTorch.
//
//   model_bench                                  # everything (minutes on 2 cores)
//   model_bench --shape qwen0.5b --dtype bf16 --batch 1,16 --kernel auto,torch --repeats 3
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <torch/types.h>
#include <torch/utils.h>
#include <CLI/CLI.hpp>

#include "common/blas_kernels.h"
#include "rl/model/decoder.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::vector<std::string> shapes = {"tiny", "qwen0.5b"};
  std::vector<std::string> dtypes = {"bf16", "f32"};
  std::vector<int64_t> batches = {1, 8, 16, 64};
  std::vector<std::string> kernels = {"auto", "torch"};
  int64_t prompt_len = 32;
  int64_t new_tokens = 16;
  int64_t recompute_tokens = 4;  // recompute is O(T^2): fewer steps keep runs short
  int repeats = 3;
  int threads = 0;
};

rl::model::DecoderConfig ShapeConfig(const std::string& shape) {
  if (shape == "tiny") return rl::model::DecoderConfig::Tiny(512);
  return rl::model::DecoderConfig::Qwen2_5_0_5B();
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Peak resident set size of the process so far, in MiB (VmHWM).
double PeakRssMiB() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

struct Figures {
  double prefill, decode, recompute, floor;  // tokens/s
};

// The matrix products no decode step can avoid: every weight matrix (the lm_head included) once
// for B rows. Its rate is the machine's ceiling for decoding at this moment, so decode/floor
// says how close the forward pass comes to it even when the machine is shared and loaded.
double MatmulFloorSeconds(rl::model::Decoder& model, int64_t B, int64_t steps,
                          rl::model::Bf16Kernel kernel) {
  std::vector<torch::Tensor> weights;
  for (const auto& p : model->named_parameters()) {
    const bool lookup_only =
        p.key() == "model.embed_tokens.weight" && !model->config().tie_word_embeddings;
    if (p.value().dim() == 2 && !lookup_only) weights.push_back(p.value());
  }
  std::vector<torch::Tensor> inputs;
  for (const torch::Tensor& w : weights) {
    inputs.push_back(torch::randn({B, w.size(1)}, torch::TensorOptions().dtype(w.scalar_type())));
  }
  const auto start = Clock::now();
  for (int64_t s = 0; s < steps; ++s) {
    for (size_t i = 0; i < weights.size(); ++i)
      rl::model::LinearForward(inputs[i], weights[i], {}, kernel);
  }
  return Seconds(start);
}

// One prefill of [B, P] with the cache, then `steps` greedy steps of [B, 1], each computing
// only the last position's logits. Returns (prefill seconds, decode seconds).
std::pair<double, double> RunCached(rl::model::Decoder& model, const torch::Tensor& prompt,
                                    int64_t steps) {
  const int64_t B = prompt.size(0), P = prompt.size(1);
  rl::model::KvCache cache(model->config(), B, P + steps, model->dtype(), torch::kCPU);
  auto start = Clock::now();
  torch::Tensor next =
      model->Logits(model->Hidden(prompt, {}, {}, &cache).select(1, -1)).argmax(-1);
  const double prefill = Seconds(start);
  start = Clock::now();
  for (int64_t s = 0; s < steps; ++s) {
    next = model->Logits(model->Hidden(next.unsqueeze(1), {}, {}, &cache).select(1, -1)).argmax(-1);
  }
  return {prefill, Seconds(start)};
}

// `steps` greedy steps, each recomputing the whole sequence without a cache.
double RunRecompute(rl::model::Decoder& model, torch::Tensor sequence, int64_t steps) {
  const auto start = Clock::now();
  for (int64_t s = 0; s < steps; ++s) {
    const torch::Tensor next =
        model->Logits(model->Hidden(sequence, {}, {}).select(1, -1)).argmax(-1);
    sequence = torch::cat({sequence, next.unsqueeze(1)}, 1);
  }
  return Seconds(start);
}

Figures Measure(rl::model::Decoder& model, int64_t B, const Options& o,
                rl::model::Bf16Kernel kernel) {
  model->UseBf16Kernel(kernel);
  torch::manual_seed(B);
  const torch::Tensor prompt =
      torch::randint(0, model->config().vocab_size, {B, o.prompt_len}, torch::kLong);
  RunCached(model, prompt, 2);  // warm-up: allocator and BLAS buffers
  std::vector<double> prefill, decode, recompute, floor;
  for (int r = 0; r < o.repeats; ++r) {
    const auto [p, d] = RunCached(model, prompt, o.new_tokens);
    prefill.push_back(static_cast<double>(B * o.prompt_len) / p);
    decode.push_back(static_cast<double>(B * o.new_tokens) / d);
    floor.push_back(static_cast<double>(B * o.new_tokens) /
                    MatmulFloorSeconds(model, B, o.new_tokens, kernel));
    if (o.recompute_tokens > 0) {
      recompute.push_back(static_cast<double>(B * o.recompute_tokens) /
                          RunRecompute(model, prompt, o.recompute_tokens));
    }
  }
  return {Median(prefill), Median(decode), recompute.empty() ? 0.0 : Median(recompute),
          Median(floor)};
}

rl::model::Bf16Kernel KernelNamed(const std::string& name) {
  if (const auto kernel = rl::model::Bf16KernelNamed(name)) return *kernel;
  throw CLI::ValidationError("--kernel", "unknown kernel '" + name + "'");
}

}  // namespace

int main(int argc, char** argv) {
  rl::common::RestartForBlasKernels(argv);  // first: it may start the program again
  Options o;
  CLI::App app{"Qwen2 forward-pass throughput (prefill, KV-cache decode, recompute decode)"};
  app.add_option("--shape", o.shapes, "tiny and/or qwen0.5b")->delimiter(',');
  app.add_option("--dtype", o.dtypes, "bf16 and/or f32")->delimiter(',');
  app.add_option("--batch", o.batches, "batch sizes")->delimiter(',');
  app.add_option("--prompt-len", o.prompt_len, "prompt tokens per row");
  app.add_option("--new-tokens", o.new_tokens, "decode steps with the cache");
  app.add_option("--recompute-tokens", o.recompute_tokens,
                 "decode steps without the cache (0: skip)");
  app.add_option("--repeats", o.repeats, "runs per figure (the median is printed)");
  app.add_option("--threads", o.threads, "LibTorch threads (0: one per core)");
  app.add_option("--kernel", o.kernels, "bf16 products: auto, torch, avx2, avx512, amx")
      ->delimiter(',');
  CLI11_PARSE(app, argc, argv);

  rl::model::ConfigureThreads(o.threads);
  torch::NoGradGuard no_grad;
  std::printf("threads %d (%s vector kernels), prompt %lld tokens, %lld decode steps (%lld recompute), median of %d\n",
              at::get_num_threads(), rl::model::TorchVectorKernels().c_str(), static_cast<long long>(o.prompt_len),
              static_cast<long long>(o.new_tokens), static_cast<long long>(o.recompute_tokens),
              o.repeats);
  std::printf("%-9s %-5s %-10s %5s %11s %10s %10s %8s %10s %8s %9s\n", "shape", "dtype",
              "kernel", "batch", "prefill t/s", "decode t/s", "recomp t/s", "cache x",
              "floor t/s", "of floor", "peak MiB");
  for (const std::string& shape : o.shapes) {
    for (const std::string& dtype_name : o.dtypes) {
      const auto dtype = dtype_name == "bf16" ? torch::kBFloat16 : torch::kFloat32;
      torch::manual_seed(0);
      rl::model::Decoder model(ShapeConfig(shape), torch::TensorOptions().dtype(dtype));
      model->eval();
      // float32 never reaches the bf16 kernels: one pass, labelled "torch".
      const std::vector<std::string> kernels =
          dtype == torch::kBFloat16 ? o.kernels : std::vector<std::string>{"torch"};
      for (int64_t B : o.batches) {
        for (const std::string& kernel_name : kernels) {
          const rl::model::Bf16Kernel kernel = KernelNamed(kernel_name);
          const Figures f = Measure(model, B, o, kernel);
          const std::string label(rl::model::Bf16KernelName(kernel));
          std::printf("%-9s %-5s %-10s %5lld %11.1f %10.1f %10.1f %7.1fx %10.1f %7.0f%% %9.0f\n",
                      shape.c_str(), dtype_name.c_str(), label.c_str(), static_cast<long long>(B),
                      f.prefill, f.decode, f.recompute,
                      f.recompute > 0 ? f.decode / f.recompute : 0.0, f.floor,
                      100.0 * f.decode / f.floor, PeakRssMiB());
          std::fflush(stdout);
        }
      }
    }
  }
  return 0;
}

// Seconds per GRPO step and where they go (generation, scoring, reference and old log-probs,
// forward+backward, optimizer) and the peak resident memory, for a randomly initialised decoder
// of a given shape, trained in full or with a LoRA adapter.
//
//   grpo_step_bench                       # the quickstart's tiny shape, 8 prompts x G=8, 128 new tokens
//   grpo_step_bench --shape qwen2.5-0.5b  # Qwen2.5-0.5B's shape (494M parameters, vocab 151936)
//   grpo_step_bench --prompts 2 --group 4 --new-tokens 32 --steps 2   # shorter
//   grpo_step_bench --shape qwen2.5-0.5b --rollout-dtype bfloat16     # sample with a bf16 copy
//   grpo_step_bench --ranks 2 --threads 1 # 2 processes x 1 thread against the default 1 x all cores
//   grpo_step_bench --shape qwen2.5-0.5b --layers 4   # its width and vocabulary, 4 of its 24 layers
//   grpo_step_bench --shape qwen2.5-1.5b --lora 16    # LoRA r=16 on every linear module; the
//                                                     # KL reference is the base (no second copy)
//   grpo_step_bench --shape qwen2.5-0.5b --rollout-dtype bfloat16 --train-dtype bfloat16
//                   --gradient-checkpointing --micro-batch 8     # (one line) bf16 mixed precision
//
// Completions are decoded --decode-batch at a time (rollout.batch_size, default 64) with
// continuous batching; forward and backward passes take --micro-batch sequences.
// The policy samples with no EOS, so every completion has exactly --new-tokens tokens. The
// reward is the R1 spec (format + accuracy) in process. Two mini-batches per step and
// beta > 0 (--mini-batches, --beta), so both the old and the reference log-prob passes run. Prints one line per step
// and the median of each phase. With --ranks N the bench starts N local processes as
// `rl train --nproc N` does (each with --threads threads, default the cores divided by N), they
// split every step's batch and sum their gradients over c10d/Gloo, and rank 0 prints;
// time/gradient_sum is the part of the gradient all-reduce that backward did not hide.
// Not a test: figures depend on the machine and its load.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <thread>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/types.h>
#include <torch/utils.h>

#include "cli/torch/launch.h"
#include "common/blas_kernels.h"
#include "rl/model/decoder.h"
#include "rl/text/tokenizer.h"
#include "trainer/config.h"
#include "trainer/distributed.h"
#include "trainer/grpo.h"
#include "trainer/policy.h"
#include "trainer/scoring.h"

using namespace rl::trainer;

namespace {

// Published shapes (their config.json), for random weights of the same size.
rl::model::DecoderConfig Shape(const std::string& name, const rl::model::DecoderConfig& tiny) {
  if (name == "tiny") return tiny;
  if (name == "qwen2.5-0.5b") return rl::model::DecoderConfig::Qwen2_5_0_5B();
  rl::model::DecoderConfig c = rl::model::DecoderConfig::Qwen2_5_0_5B();  // vocabulary, RoPE, tied head
  c.num_hidden_layers = 28;
  c.head_dim = 128;
  if (name == "qwen2.5-1.5b") {
    c.hidden_size = 1536, c.intermediate_size = 8960, c.num_attention_heads = 12, c.num_key_value_heads = 2;
  } else {  // qwen3-1.7b
    c.model_type = "qwen3";
    c.hidden_size = 2048, c.intermediate_size = 6144, c.num_attention_heads = 16, c.num_key_value_heads = 8;
  }
  return c;
}

double PeakRssGib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);  // ru_maxrss is in KiB on Linux: GiB
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  rl::common::RestartForBlasKernels(argv);  // first: it may start the program again
  CLI::App app{"GRPO step benchmark"};
  std::string shape = "tiny", rollout_dtype = "float32", train_dtype = "float32";
  bool checkpointing = false;
  int64_t mini_batches = 2;
  double beta = 0.04;
  int64_t prompts = 8, group = 8, new_tokens = 128, prompt_tokens = 32, steps = 3, threads = 0, micro = 16, ranks = 1, layers = 0;
  int64_t lora = 0, decode_batch = TrainConfig().rollout.batch_size, chunk = TrainConfig().grpo.logprob_chunk_size;
  app.add_option("--shape", shape, "tiny | qwen2.5-0.5b | qwen2.5-1.5b | qwen3-1.7b")
      ->check(CLI::IsMember({"tiny", "qwen2.5-0.5b", "qwen2.5-1.5b", "qwen3-1.7b"}));
  app.add_option("--lora", lora, "LoRA rank on every linear module, alpha 2r (0: train every weight)");
  app.add_option("--prompts", prompts, "prompts per step");
  app.add_option("--group", group, "completions per prompt (G)");
  app.add_option("--new-tokens", new_tokens, "tokens generated per completion");
  app.add_option("--prompt-tokens", prompt_tokens, "tokens per prompt");
  app.add_option("--steps", steps, "GRPO steps to time");
  app.add_option("--threads", threads, "LibTorch threads per rank (0: the cores divided by --ranks)");
  app.add_option("--layers", layers, "decoder layers (0: the shape's)");
  app.add_option("--ranks", ranks, "processes training together over c10d/Gloo")->check(CLI::Range(1, 64));
  app.add_option("--micro-batch", micro, "sequences per forward/backward");
  app.add_option("--decode-batch", decode_batch, "rollout.batch_size: sequences decoded together")
      ->check(CLI::PositiveNumber);
  app.add_option("--rollout-dtype", rollout_dtype, "rollout.dtype: weights the completions are sampled with")
      ->check(CLI::IsMember({"float32", "bfloat16"}));
  app.add_option("--train-dtype", train_dtype, "grpo.train_dtype: bfloat16 is mixed precision")
      ->check(CLI::IsMember({"float32", "bfloat16"}));
  app.add_flag("--gradient-checkpointing", checkpointing, "grpo.gradient_checkpointing: recompute each layer");
  app.add_option("--logprob-chunk", chunk, "grpo.logprob_chunk_size: completion positions per [B, chunk, V] logits")
      ->check(CLI::PositiveNumber);
  app.add_option("--mini-batches", mini_batches, "grpo.num_mini_batches (1 with one iteration: no old log-prob pass)")
      ->check(CLI::PositiveNumber);
  app.add_option("--beta", beta, "grpo.beta (0: no reference log-prob pass)")->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);

  // The launcher re-runs this program with the torchrun variables set; each run is a rank.
  if (ranks > 1 && std::getenv("WORLD_SIZE") == nullptr) {
    return rl::cli::LaunchLocalRanks(static_cast<int>(ranks), std::vector<std::string>(argv + 1, argv + argc));
  }
  const std::optional<WorldSpec> spec = WorldFromEnvironment();
  const World world = spec ? World::Join(*spec, std::chrono::minutes(30)) : World();
  rl::model::ConfigureThreads(static_cast<int>(ThreadsPerRank(threads, world)));
  // The dtypes go through the config parser, so the bench reads them as `rl train` does.
  TrainConfig config = ParseTrainConfig("rewards: {spec_file: configs/rewards/r1.yaml}\nrollout: {dtype: " + rollout_dtype +
                                            "}\ngrpo: {train_dtype: " + train_dtype + "}\n",
                                        "bench");
  config.grpo.gradient_checkpointing = checkpointing;
  config.grpo.logprob_chunk_size = chunk;
  config.run.threads = threads;
  config.rollout.num_generations = group;
  config.rollout.max_new_tokens = new_tokens;
  config.rollout.batch_size = decode_batch;
  config.grpo.steps = steps;
  config.grpo.prompts_per_step = prompts;
  config.grpo.num_mini_batches = mini_batches;
  config.grpo.gradient_accumulation_steps = std::max<int64_t>(prompts * group / mini_batches / micro, 1);
  config.grpo.beta = beta;
  config.grpo.optim.learning_rate = 1e-6;

  // A small trained tokenizer decodes the text the rules see; ids beyond its vocabulary (the
  // large model's) decode to nothing, which costs the rules nothing either.
  std::vector<std::string> corpus = {"<think>1 + 2 = 3</think><answer>3</answer>", "Compute 1/2 + 1/4."};
  Policy policy = MakeTinyPolicy(config, corpus);
  rl::model::DecoderConfig model_config = Shape(shape, policy.model->config());
  if (layers > 0) model_config.num_hidden_layers = layers;
  torch::manual_seed(0);
  policy.model = rl::model::Decoder(model_config, torch::TensorOptions().dtype(torch::kFloat32), true);
  policy.generation.eos_token_ids.clear();  // every completion runs to --new-tokens
  std::optional<Policy> reference;  // with LoRA the reference is the base: no copy
  if (lora > 0) {
    config.grpo.lora.r = lora;
    config.grpo.lora.alpha = 2.0 * static_cast<double>(lora);
    AttachAdapters(policy, config.grpo.lora, "random-base", 1);
  } else if (beta > 0) {
    reference = policy;
    reference->model = rl::model::CloneDecoder(*policy.model, torch::kFloat32, torch::kCPU);
  }

  // Prompts of random tokens of the tokenizer's vocabulary.
  std::vector<rl::data::Example> data;
  const int32_t vocab = policy.tokenizer->vocab_size();
  for (int64_t i = 0; i < prompts; ++i) {
    std::vector<int32_t> ids;
    for (int64_t t = 0; t < prompt_tokens; ++t) ids.push_back(static_cast<int32_t>((i * 7919 + t * 104729) % (vocab - 2)));
    data.push_back({policy.tokenizer->Decode(ids), "3", ""});
  }
  int64_t parameters = 0, trainable = 0;
  for (const auto& p : policy.model->parameters()) parameters += p.numel();
  for (const auto& p : TrainableParameters(policy)) trainable += p.numel();
  if (world.is_main()) {
    std::printf("shape %s, %lld layers (%.1fM parameters, %.1fM trained%s), %lld prompts x G=%lld, %lld new tokens, "
                "%d rank(s) x %d thread(s) (%s vector kernels, OpenBLAS %s), rollout %s, training %s%s, decode batch %lld, micro-batch %lld, %lld mini-batch(es), beta %g\n", shape.c_str(), static_cast<long long>(model_config.num_hidden_layers),
                static_cast<double>(parameters) / 1e6, static_cast<double>(trainable) / 1e6,
                lora > 0 ? (", LoRA r " + std::to_string(lora)).c_str() : "", static_cast<long long>(prompts),
                static_cast<long long>(group), static_cast<long long>(new_tokens), world.size(),
                torch::get_num_threads(), rl::model::TorchVectorKernels().c_str(), rl::common::BlasKernels().c_str(), rollout_dtype.c_str(), train_dtype.c_str(),
                checkpointing ? " checkpointed" : "", static_cast<long long>(decode_batch), static_cast<long long>(micro), static_cast<long long>(mini_batches), beta);
  }

  Scorer scorer = MakeScorer(config.rewards);
  GrpoTrainer trainer(config, policy, reference ? &*reference : nullptr, data, scorer.score, world);
  const std::vector<std::string> phases = {"step_time",         "time/generation", "time/scoring",
                                           "time/ref_logprobs", "time/old_logprobs", "time/backward",
                                           "time/gradient_sum", "time/optimizer"};
  std::vector<std::vector<double>> seconds(phases.size());
  for (int64_t s = 0; s < steps; ++s) {
    nlohmann::ordered_json m = trainer.Step();
    for (size_t k = 0; k < phases.size(); ++k) seconds[k].push_back(m[phases[k]].get<double>());
    if (!world.is_main()) continue;
    std::printf("step %lld:", static_cast<long long>(s + 1));
    for (size_t k = 0; k < phases.size(); ++k) std::printf(" %s %.3f", phases[k].c_str(), seconds[k].back());
    std::printf("\n");
  }
  if (!world.is_main()) return 0;
  std::printf("median of %lld steps (s):", static_cast<long long>(steps));
  for (size_t k = 0; k < phases.size(); ++k) std::printf(" %s %.3f", phases[k].c_str(), Median(seconds[k]));
  std::printf("\nexposed gradient all-reduce: %.1f%% of the step\npeak RSS %.2f GiB\n",
              100 * Median(seconds[6]) / std::max(Median(seconds[0]), 1e-9), PeakRssGib());
  return 0;
}

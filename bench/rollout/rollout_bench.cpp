// Rollout throughput with mixed completion lengths: generated tokens per second of the rollout
// engine (rollout/rollout.h) with static micro-batches (a batch decodes until its longest
// sequence ends) against continuous batching (a finished sequence's slot takes the next one),
// per batch size, on a random Qwen2 of a small shape. Prompts of random length, G samples each;
// completions end at one of --eos-ids token ids (a random model samples nearly uniformly, so
// lengths are geometric with mean vocab / eos-ids, cut at --new-tokens). Both modes sample the
// same completions (per-sequence random streams): the bench checks their token counts agree.
// Medians of --repeats runs.
//
//   rollout_bench                                   # tiny and small, batch 8,16,32,64
//   rollout_bench --shape small --batch 16 --repeats 5 --threads 2
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/types.h>
#include <torch/utils.h>

#include "common/blas_kernels.h"
#include "rl/model/decoder.h"
#include "rl/text/tokenizer.h"
#include "rollout/rollout.h"

namespace {

struct Options {
  std::vector<std::string> shapes = {"tiny", "small"};
  std::vector<int64_t> batches = {8, 16, 32, 64};
  int64_t prompts = 16;
  int64_t group = 8;
  int64_t new_tokens = 128;
  int64_t eos_ids = 16;
  int repeats = 3;
  int threads = 1;
};

// tiny: DecoderConfig::Tiny; small: 4 layers of width 256 (a few million parameters).
rl::model::DecoderConfig ShapeConfig(const std::string& shape, int64_t vocab) {
  rl::model::DecoderConfig c = rl::model::DecoderConfig::Tiny(vocab);
  if (shape == "small") {
    c.hidden_size = 256, c.intermediate_size = 768, c.num_hidden_layers = 4;
    c.num_attention_heads = 8, c.num_key_value_heads = 2, c.head_dim = 32;
  }
  return c;
}

std::unique_ptr<rl::text::Tokenizer> BenchTokenizer() {
  const std::vector<std::string> corpus = {"<think>two plus two is four</think><answer>4</answer>",
                                           "the quick brown fox jumps over the lazy dog"};
  const std::vector<std::string> specials = {"<|endoftext|>"};
  std::string error;
  auto tokenizer = rl::text::Tokenizer::FromJson(rl::text::TrainByteLevelBpe(corpus, 300, specials), &error);
  if (!tokenizer) throw std::runtime_error("tokenizer: " + error);
  return tokenizer;
}

// Prompts of 16 to 64 random token ids (seeded).
std::vector<std::vector<int32_t>> RandomPrompts(int64_t count, int64_t vocab) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int64_t> length(16, 64);
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(vocab - 1));
  std::vector<std::vector<int32_t>> prompts(count);
  for (auto& p : prompts) {
    p.resize(length(rng));
    for (int32_t& t : p) t = id(rng);
  }
  return prompts;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Figure {
  double tokens_per_second = 0;
  int64_t tokens = 0;
  int64_t longest = 0;
};

Figure Measure(rl::model::DecoderImpl& model, const rl::text::Tokenizer& tokenizer, const Options& o,
               int64_t batch, bool continuous) {
  rl::rollout::RolloutOptions options;
  options.group_size = o.group;
  options.micro_batch_size = batch;
  options.threads_per_worker = o.threads;
  options.continuous_batching = continuous;
  rl::rollout::RolloutEngine engine(model, tokenizer, options);
  rl::rollout::SamplingParams sampling;
  sampling.max_new_tokens = o.new_tokens;
  sampling.seed = 1;
  for (int64_t id = 0; id < o.eos_ids; ++id) sampling.eos_ids.push_back(id);
  const auto prompts = RandomPrompts(o.prompts, model.config().vocab_size);
  std::vector<double> rates;
  Figure figure;
  for (int r = 0; r < o.repeats; ++r) {
    rl::rollout::RolloutResult result = engine.Run(prompts, sampling);
    rates.push_back(static_cast<double>(result.stats.generated_tokens) / result.stats.generation_seconds);
    figure.tokens = result.stats.generated_tokens;
    for (const auto& g : result.groups)
      for (const auto& c : g.completions) figure.longest = std::max<int64_t>(figure.longest, c.token_ids.size());
  }
  figure.tokens_per_second = Median(rates);
  return figure;
}

}  // namespace

int main(int argc, char** argv) {
  rl::common::RestartForBlasKernels(argv);  // first: it may start the program again
  Options o;
  CLI::App app{"Rollout tokens/s, static against continuous batching, mixed completion lengths"};
  app.add_option("--shape", o.shapes, "tiny and/or small")->delimiter(',');
  app.add_option("--batch", o.batches, "sequences decoding at once (rollout.batch_size)")->delimiter(',');
  app.add_option("--prompts", o.prompts, "prompts per rollout");
  app.add_option("--group", o.group, "samples per prompt (G)");
  app.add_option("--new-tokens", o.new_tokens, "max_new_tokens");
  app.add_option("--eos-ids", o.eos_ids, "token ids that end a completion (mean length vocab / this)");
  app.add_option("--repeats", o.repeats, "runs per figure (the median is printed)");
  app.add_option("--threads", o.threads, "LibTorch threads (0: one per core)");
  CLI11_PARSE(app, argc, argv);
  rl::model::ConfigureThreads(o.threads);
  torch::NoGradGuard no_grad;
  const auto tokenizer = BenchTokenizer();
  std::printf("%lld prompts x G=%lld, max_new_tokens %lld, %lld EOS ids, %d threads, median of %d\n",
              static_cast<long long>(o.prompts), static_cast<long long>(o.group),
              static_cast<long long>(o.new_tokens), static_cast<long long>(o.eos_ids), o.threads, o.repeats);
  std::printf("%-6s %6s %10s %10s %14s %14s %8s\n", "shape", "batch", "tokens", "longest", "static tok/s",
              "contin. tok/s", "speedup");
  for (const std::string& shape : o.shapes) {
    torch::manual_seed(0);
    rl::model::Decoder model(ShapeConfig(shape, tokenizer->vocab_size()));
    model->eval();
    for (int64_t batch : o.batches) {
      const Figure fixed = Measure(*model, *tokenizer, o, batch, false);
      const Figure continuous = Measure(*model, *tokenizer, o, batch, true);
      std::printf("%-6s %6lld %10lld %10lld %14.0f %14.0f %7.2fx%s\n", shape.c_str(), static_cast<long long>(batch),
                  static_cast<long long>(fixed.tokens), static_cast<long long>(fixed.longest), fixed.tokens_per_second,
                  continuous.tokens_per_second, continuous.tokens_per_second / fixed.tokens_per_second,
                  fixed.tokens == continuous.tokens ? "" : "  (token counts differ!)");
      std::fflush(stdout);
    }
  }
  return 0;
}

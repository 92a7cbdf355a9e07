// A tiny policy for rollout tests: a byte-level BPE tokenizer trained on a few sentences and a
// random Qwen2 of DecoderConfig::Tiny's shape over its vocabulary. Include after LibTorch's headers
// and before Catch2 (glog's CHECK).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rl/model/decoder.h"
#include "rl/text/tokenizer.h"
#include "rollout/rollout.h"
#include "rollout/sampling.h"

namespace rl::rollout::testing {

inline const std::vector<std::string>& TinyCorpus() {
  static const std::vector<std::string> corpus = {
      "<think>two plus two is four</think><answer>4</answer>",
      "<think>three quarters is 0.75</think><answer>3/4</answer>",
      "What is 1/2 + 1/4? Think step by step, then answer.",
      "the quick brown fox jumps over the lazy dog",
      "Compute 7 * 8 and give the answer in the answer tag.",
  };
  return corpus;
}

inline std::unique_ptr<text::Tokenizer> TinyTokenizer() {
  std::vector<std::string> specials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  nlohmann::json j = text::TrainByteLevelBpe(TinyCorpus(), 320, specials);
  std::string error;
  auto tokenizer = text::Tokenizer::FromJson(j, &error);
  if (!tokenizer) throw std::runtime_error("tiny tokenizer: " + error);
  return tokenizer;
}

// A larger init than transformers' 0.02 spreads the logits, so that greedy decoding has no
// near-ties and sampled tokens vary.
inline model::Decoder TinyModel(int64_t vocab_size, uint64_t seed = 1) {
  model::DecoderConfig config = model::DecoderConfig::Tiny(vocab_size);
  config.initializer_range = 0.3;
  torch::manual_seed(seed);
  model::Decoder model(config);
  model->eval();
  return model;
}

// One tokenizer and model per test process, built on first use: training the tokenizer and
// initialising the model dominate a test's set-up.
struct Policy {
  std::unique_ptr<text::Tokenizer> tokenizer = TinyTokenizer();
  model::Decoder model = TinyModel(tokenizer->vocab_size());
};

inline Policy& SharedPolicy() {
  static Policy policy;
  return policy;
}

// Engine options for tests: one LibTorch thread per worker, two callback threads.
inline RolloutOptions EngineOptions(int64_t group, int64_t micro_batch, int workers) {
  RolloutOptions options;
  options.group_size = group;
  options.micro_batch_size = micro_batch;
  options.workers = workers;
  options.threads_per_worker = 1;
  options.callback_threads = 2;
  return options;
}

// Seeded sampling whose first 20 token ids all end a sequence, so that lengths scatter.
inline SamplingParams ScatteredSampling(uint64_t seed, int64_t max_new_tokens = 12) {
  SamplingParams sampling;
  sampling.seed = seed;
  sampling.max_new_tokens = max_new_tokens;
  for (int64_t id = 0; id < 20; ++id) sampling.eos_ids.push_back(id);
  return sampling;
}

}  // namespace rl::rollout::testing

// Tokenizer throughput: Encode and Decode of a long mixed text (English, numbers, code, CJK,
// emoji), one thread and several at once; also TrainByteLevelBpe's time. Prints medians.
//
//   bench_text [tokenizer.json] [text file]
// Without a tokenizer.json it trains an 8000-token one on the text first (and says so); the
// real Qwen2.5 tokenizer is the file tests/text/fetch_tokenizers.sh caches.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "rl/text/tokenizer.h"

namespace {

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

template <typename F>
double MedianSeconds(int runs, F&& f) {
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    f();
    times.push_back(Seconds(start));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// About `bytes` of text that looks like a reasoning corpus: prose, math, code, some CJK/emoji.
std::string SyntheticText(size_t bytes) {
  const std::vector<std::string> words = {
      "the", "answer", "is", "therefore", "we", "compute", "Let", "x", "be", "a", "number",
      "such", "that", "equation", "holds", "First,", "note", "sum", "of", "squares", "and",
      "<think>", "</think>", "<answer>", "</answer>", "\\frac{1}{2}", "\\boxed{42}", "=", "+",
      "(a+b)^2", "3.14159", "2024", "1234567", "def", "return", "x*2", "for", "i", "in",
      "range(n):", "\n", "\n\n", "    ", "数学", "答案是", "🦙", "Grüße", "naïve", "—", "it's",
      "don't", "we'll", "\\sqrt{2}", "\\int_0^1", "dx", "probability", "triangle", "ABC"};
  std::mt19937 rng(1);
  std::uniform_int_distribution<size_t> pick(0, words.size() - 1);
  std::string text;
  while (text.size() < bytes) {
    text += words[pick(rng)];
    text += ' ';
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  std::string text;
  if (argc > 2) {
    std::ifstream in(argv[2], std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  } else {
    text = SyntheticText(4 << 20);
  }
  std::string error;
  std::unique_ptr<rl::text::Tokenizer> tokenizer;
  if (argc > 1) {
    const auto start = std::chrono::steady_clock::now();
    tokenizer = rl::text::Tokenizer::FromFile(argv[1], &error);
    if (!tokenizer) {
      std::fprintf(stderr, "%s\n", error.c_str());
      return 1;
    }
    std::printf("loaded %s in %.2f s (vocab %d)\n", argv[1], Seconds(start),
                tokenizer->vocab_size());
  } else {
    std::vector<std::string> corpus;
    for (size_t pos = 0; pos < std::min<size_t>(text.size(), 1 << 20); pos += 4096) {
      corpus.push_back(text.substr(pos, 4096));
    }
    const std::vector<std::string> specials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    nlohmann::json trained;
    const double train_s = MedianSeconds(3, [&] {
      trained = rl::text::TrainByteLevelBpe(corpus, 8000, specials);
    });
    std::printf("trained an 8000-token BPE on 1 MiB in %.2f s (median of 3)\n", train_s);
    tokenizer = rl::text::Tokenizer::FromJson(trained, &error);
  }

  std::vector<int32_t> ids;
  const double encode_s = MedianSeconds(5, [&] { ids = tokenizer->Encode(text); });
  std::printf("Encode, 1 thread: %.2f MB/s, %.0f tokens/s (%zu bytes -> %zu tokens, median of 5)\n",
              text.size() / encode_s / 1e6, ids.size() / encode_s, text.size(), ids.size());
  std::string decoded;
  const double decode_s = MedianSeconds(5, [&] { decoded = tokenizer->Decode(ids); });
  std::printf("Decode, 1 thread: %.0f tokens/s\n", ids.size() / decode_s);

  // Short calls, as a rollout encodes prompts: 512-byte pieces.
  const size_t piece = 512;
  const double short_s = MedianSeconds(5, [&] {
    for (size_t pos = 0; pos + piece <= text.size(); pos += piece) {
      tokenizer->Encode(std::string_view(text).substr(pos, piece));
    }
  });
  std::printf("Encode of 512-byte pieces, 1 thread: %.2f MB/s\n", text.size() / short_s / 1e6);

  const unsigned threads = std::max(2u, std::thread::hardware_concurrency());
  const double parallel_s = MedianSeconds(3, [&] {
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t) pool.emplace_back([&] { tokenizer->Encode(text); });
    for (auto& th : pool) th.join();
  });
  std::printf("Encode, %u threads at once: %.2f MB/s aggregate\n", threads,
              threads * text.size() / parallel_s / 1e6);
  return decoded.size() == 0;  // keeps the decode from being optimised away
}

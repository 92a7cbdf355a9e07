// Completions per second per thread for each format and shaping rule, and for a composite of
// all of them (no accuracy rule: bench/math measures the verifier), on generated R1-style
// completions of about 0.5, 2 and 8 KB. Prints the median of several repetitions.
//
//   bench_rewards [--reps 5] [--seconds 0.2] [--threads N]
//
// --threads N > 1 adds a ScoreBatch line for the composite with N threads. On a machine with
// fewer free cores than threads, run it with OMP_WAIT_POLICY=passive: libgomp's spinning
// threads otherwise take the CPU from the ones doing the work.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "rewards/reward.h"

namespace {

using rl::rewards::Reward;
using rl::rewards::Sample;

// Sentences of a chain of thought on an arithmetic word problem: prose, equations, LaTeX,
// numbered steps and inequalities (so '<' appears in the text, as it does in real math).
std::string Sentence(std::mt19937& rng, int step) {
  std::uniform_int_distribution<int> number(2, 999);
  const int a = number(rng), b = number(rng);
  switch (rng() % 8) {
    case 0:
      return "Step " + std::to_string(step) + ": multiply " + std::to_string(a) + " by " +
             std::to_string(b) + ", which gives " + std::to_string(a * b) + ".\n";
    case 1:
      return std::to_string(step) + ". Since " + std::to_string(a) + " < " + std::to_string(a + b) +
             ", the remainder is positive and we can continue.\n";
    case 2:
      return "We have $\\frac{" + std::to_string(a) + "}{" + std::to_string(b) +
             "} = " + std::to_string(static_cast<double>(a) / b) + "$, so the ratio is less than " +
             std::to_string(a / b + 1) + ".\n";
    case 3:
      return "Let me double-check this: " + std::to_string(a) + " + " + std::to_string(b) + " = " +
             std::to_string(a + b) + ", and subtracting " + std::to_string(b) + " gives back " +
             std::to_string(a) + ".\n";
    case 4:
      return "Next, the train covers " + std::to_string(a) + " km in " +
             std::to_string(b % 12 + 1) + " hours, so its speed is about " +
             std::to_string(a / (b % 12 + 1)) + " km/h.\n";
    case 5:
      return "- If x = " + std::to_string(a) + ", then 2x + " + std::to_string(b) + " = " +
             std::to_string(2 * a + b) + ".\n";
    case 6:
      return "Wait, that does not look right. Let me reconsider the constraint x^2 + y^2 \\le " +
             std::to_string(a) + ".\n";
    default:
      return "So far the total is " + std::to_string(a + b) +
             ", which matches the earlier estimate of roughly " +
             std::to_string((a + b) / 10 * 10) + ".\n";
  }
}

std::string Completion(std::mt19937& rng, size_t target_bytes) {
  std::string thought;
  for (int step = 1; thought.size() + 60 < target_bytes; ++step) thought += Sentence(rng, step);
  return "<think>\n" + thought + "</think>\n<answer>\nThe answer is \\boxed{" +
         std::to_string(rng() % 1000) + "}\n</answer><|im_end|>";
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

struct Config {
  std::string label;
  std::string yaml;
};

double ThreadCpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

struct Rates {
  double wall;  // completions per wall-clock second
  double cpu;   // completions per CPU second of this thread (one thread only)
};

// Completions per second scoring `samples` one by one (threads == 1) or with ScoreBatch.
Rates Rate(const Reward& reward, const std::vector<Sample>& samples, double seconds, int threads) {
  using Clock = std::chrono::steady_clock;
  const double cpu_start = ThreadCpuSeconds();
  const auto start = Clock::now();
  int64_t scored = 0;
  double checksum = 0;
  do {
    if (threads == 1) {
      for (const Sample& sample : samples) {
        auto result = reward.Score(sample);
        checksum += result.total.value_or(0);
      }
    } else {
      for (const auto& result : reward.ScoreBatch(samples, threads))
        checksum += result.total.value_or(0);
    }
    scored += static_cast<int64_t>(samples.size());
  } while (std::chrono::duration<double>(Clock::now() - start).count() < seconds);
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = ThreadCpuSeconds() - cpu_start;
  if (checksum < -1e300) std::puts("");  // keeps the scoring from being optimised away
  return {static_cast<double>(scored) / elapsed, static_cast<double>(scored) / cpu};
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  double seconds = 0.2;
  int threads = 1;
  CLI::App app{"rule library benchmark: completions per second per rule and for a composite"};
  app.add_option("--reps", reps, "repetitions (the median is printed)")->check(CLI::PositiveNumber);
  app.add_option("--seconds", seconds, "measured seconds per repetition")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "threads for the ScoreBatch line")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  const std::vector<Config> configs = {
      {"format.think_answer", "rules: [{name: format.think_answer}]"},
      {"format.tags", "rules: [{name: format.tags}]"},
      {"format.tag_count", "rules: [{name: format.tag_count}]"},
      {"format.boxed", "rules: [{name: format.boxed}]"},
      {"length.soft_overlong",
       "rules: [{name: length.soft_overlong, params: {max_length: 4096, cache_length: 1024}}]"},
      {"repetition.ngram", "rules: [{name: repetition.ngram}]"},
      {"reasoning.steps", "rules: [{name: reasoning.steps}]"},
      {"composite (7 rules)",
       "rules:\n"
       "  - {name: format.think_answer}\n  - {name: format.tags}\n  - {name: format.tag_count}\n"
       "  - {name: format.boxed}\n"
       "  - {name: length.soft_overlong, params: {max_length: 4096, cache_length: 1024}}\n"
       "  - {name: repetition.ngram}\n  - {name: reasoning.steps}\n"},
  };
  const std::vector<size_t> sizes = {512, 2048, 8192};
  std::mt19937 rng(12345);
  std::vector<std::vector<std::string>> texts(sizes.size());
  std::vector<std::vector<Sample>> samples(sizes.size());
  for (size_t s = 0; s < sizes.size(); ++s) {
    for (int i = 0; i < 256; ++i) texts[s].push_back(Completion(rng, sizes[s]));
    for (const std::string& text : texts[s]) {
      Sample sample;
      sample.prompt = "<|im_start|>user\nSolve the problem.<|im_end|>\n<|im_start|>assistant\n";
      sample.completion = text;
      sample.completion_tokens = static_cast<int64_t>(text.size() / 4);
      samples[s].push_back(sample);
    }
  }
  std::printf(
      "completions/s on one thread (Reward::Score), median of %d x %.2f s;\n"
      "wall: per wall-clock second, cpu: per CPU second of the thread (robust to load)\n",
      reps, seconds);
  std::printf("%-22s %11s %11s %11s %11s %11s %11s\n", "rule", "0.5KB wall", "cpu", "2KB wall",
              "cpu", "8KB wall", "cpu");
  for (const Config& config : configs) {
    std::string error;
    std::unique_ptr<Reward> reward = Reward::FromYamlText(config.yaml, &error, config.label);
    if (!reward) {
      std::fprintf(stderr, "%s\n", error.c_str());
      return 1;
    }
    std::printf("%-22s", config.label.c_str());
    for (size_t s = 0; s < sizes.size(); ++s) {
      std::vector<double> wall, cpu;
      for (int r = 0; r < reps; ++r) {
        Rates rates = Rate(*reward, samples[s], seconds, 1);
        wall.push_back(rates.wall);
        cpu.push_back(rates.cpu);
      }
      std::printf(" %11.0f %11.0f", Median(wall), Median(cpu));
    }
    std::printf("\n");
    if (threads > 1 && &config == &configs.back()) {
      std::printf("%-22s", ("  ScoreBatch x" + std::to_string(threads)).c_str());
      for (size_t s = 0; s < sizes.size(); ++s) {
        std::vector<double> rates;
        for (int r = 0; r < reps; ++r)
          rates.push_back(Rate(*reward, samples[s], seconds, threads).wall);
        std::printf(" %11.0f %11s", Median(rates), "");
      }
      std::printf("   (all threads together)\n");
    }
  }
  return 0;
}

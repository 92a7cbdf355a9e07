// Benchmark of rl::rewards::math::Verifier::Check on (1) the development set (Math-Verify's cases in
// tests/math/suite), (2) real model outputs (a JSONL file of completions and golds, by default
// tests/math/realworld/realworld.jsonl) and (3) generated long chain-of-thought completions.
// Prints verifications per second on one thread and on all threads, and p50 / p99 / max
// latency; every figure is the median over --reps repetitions.
//
//   build/bench/math/math_verify_bench [--data tests/math/suite] [--file FILE.jsonl] [--reps 5]
//                                      [--cot 300] [--threads N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "rewards/math/verify.h"
#include "tests/math/long_inputs.h"
#include "tests/math/realworld_rows.h"
#include "tests/math/suite_common.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Item {
  std::string id;
  std::string completion, gold;
  rl::rewards::math::VerifierOptions options;
};

// Per-call latency is the thread's CPU time: on a shared machine, wall time per call mostly
// measures the scheduler (preemptions of several ms). Throughput is wall time.
double ThreadCpuMicros() { return 1e3 * rl::rewards::math::testing::ThreadCpuMillis(); }

// Reading the thread's CPU clock is a system call in some virtual machines (about 2 us, as
// much as a short check): what one reading adds to a measured call, the median of many, is
// taken off each call's figure, and the mean comes from a pass that reads the clock only twice.
double ClockReadMicros() {
  std::vector<double> reads(1001);
  for (double& read : reads) {
    double t0 = ThreadCpuMicros();
    read = ThreadCpuMicros() - t0;
  }
  std::sort(reads.begin(), reads.end());
  return reads[reads.size() / 2];
}

// A few hundred realistic completions: paragraphs of reasoning with inline and display math,
// intermediate results, and a final boxed answer (or an anchor phrase) of varied forms.
std::vector<Item> GenerateChainOfThought(int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  struct Answer {
    std::string pred, gold;
  };
  std::vector<Answer> answers = {
      {"\\frac{3}{4}", "0.75"},       {"12", "12"},
      {"2\\sqrt{3}", "\\sqrt{12}"},   {"(1, -2)", "(1,-2)"},
      {"x^2+2x+1", "(x+1)^2"},         {"[0, 5)", "[0,5)"},
      {"\\frac{\\pi}{6}", "\\pi/6"},   {"7425000", "7,425,000"},
      {"3 \\pm \\sqrt{5}", "3+\\sqrt5, 3-\\sqrt5"}, {"25\\%", "25\\%"},
      {"\\{1, 2, 3\\}", "\\{3,2,1\\}"}, {"y = 2x + 1", "2x - y + 1 = 0"},
      {"\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}", "\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}"},
      {"13", "14"},                    {"\\frac{1}{3}", "0.33"}};
  static const char* kSentences[] = {
      "First, let us restate the problem in our own words and identify what is being asked. ",
      "We can simplify the expression by combining like terms and factoring where possible. ",
      "Note that the constraint implies the variable must be positive, so we discard the other root. ",
      "Let me double-check this computation, since an arithmetic slip here would propagate. ",
      "Wait, that does not look right; going back to the previous step, the sign should flip. ",
      "By symmetry, the two cases contribute equally, so it suffices to count one of them. ",
      "Substituting back into the original equation confirms that the value satisfies it. "};
  std::vector<Item> items;
  for (int k = 0; k < count; ++k) {
    const Answer& answer = answers[static_cast<size_t>(pick(static_cast<int>(answers.size())))];
    std::string text = "<think>\n";
    int paragraphs = 6 + pick(10);
    for (int p = 0; p < paragraphs; ++p) {
      for (int s = 0; s < 3 + pick(4); ++s) text += kSentences[pick(7)];
      int a = 2 + pick(50), b = 2 + pick(50);
      text += "We compute $" + std::to_string(a) + " \\cdot " + std::to_string(b) + " = " +
              std::to_string(a * b) + "$ and $\\frac{" + std::to_string(a) + "}{" +
              std::to_string(b) + "}$, so\n\\[ x^2 - " + std::to_string(a + b) + "x + " +
              std::to_string(a * b) + " = 0. \\]\n";
    }
    text += "</think>\n";
    if (pick(3) == 0) text += "The final answer is $" + answer.pred + "$.";
    else text += "Therefore, the answer is $\\boxed{" + answer.pred + "}$.";
    items.push_back({"cot:" + std::to_string(k), std::move(text), answer.gold, {}});
  }
  return items;
}

struct Figures {
  double mean_us, p50_us, p99_us, max_us, per_second_one, per_second_all;
  std::string slowest;
  double per_cpu_second_all;  // parallel checks per CPU-second: contention would lower it
  int64_t max_nodes;          // the most node budget one check spent (the same every run)
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Figures Measure(const std::vector<Item>& items, int reps, int threads) {
  std::vector<rl::rewards::math::Verifier> verifiers;
  for (const Item& item : items) verifiers.emplace_back(item.options);
  std::vector<double> means, p50s, p99s, maxes, one, all;
  std::vector<double> latencies(items.size());
  size_t last_worst = 0;
  int64_t max_nodes = 0;
  std::vector<double> per_cpu_second;
  const double clock_read_us = ClockReadMicros();
  for (int rep = 0; rep < reps; ++rep) {
    // One thread, the whole set: the mean CPU time and the checks per second.
    auto start = Clock::now();
    double cpu0 = ThreadCpuMicros();
    for (size_t k = 0; k < items.size(); ++k) {
      rl::rewards::math::CheckResult r = verifiers[k].Check(items[k].completion, items[k].gold);
      max_nodes = std::max(max_nodes, r.nodes);
      if (r.verdict == rl::rewards::math::Verdict::kBudgetExceeded) {
        std::fprintf(stderr, "%s: budget exceeded (%s)\n", items[k].id.c_str(), r.detail.c_str());
      }
    }
    means.push_back((ThreadCpuMicros() - cpu0) / static_cast<double>(items.size()));
    double total_s = std::chrono::duration<double>(Clock::now() - start).count();
    one.push_back(static_cast<double>(items.size()) / total_s);
    // One thread, call by call: the percentiles.
    for (size_t k = 0; k < items.size(); ++k) {
      double t0 = ThreadCpuMicros();
      verifiers[k].Check(items[k].completion, items[k].gold);
      latencies[k] = std::max(0.0, ThreadCpuMicros() - t0 - clock_read_us);
    }
    size_t worst = static_cast<size_t>(std::max_element(latencies.begin(), latencies.end()) -
                                       latencies.begin());
    std::vector<double> sorted = latencies;
    std::sort(sorted.begin(), sorted.end());
    p50s.push_back(sorted[sorted.size() / 2]);
    p99s.push_back(sorted[std::min(sorted.size() - 1, sorted.size() * 99 / 100)]);
    maxes.push_back(sorted.back());
    // All threads: each runs the whole set.
    constexpr int kRounds = 30;  // long enough that thread start-up does not count
    start = Clock::now();
    std::vector<std::thread> pool;
    std::vector<double> cpu_us(static_cast<size_t>(threads));
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        double t0 = ThreadCpuMicros();
        for (int round = 0; round < kRounds; ++round) {
          for (size_t k = 0; k < items.size(); ++k) verifiers[k].Check(items[k].completion, items[k].gold);
        }
        cpu_us[static_cast<size_t>(t)] = ThreadCpuMicros() - t0;
      });
    }
    for (auto& thread : pool) thread.join();
    total_s = std::chrono::duration<double>(Clock::now() - start).count();
    double checks = static_cast<double>(items.size()) * threads * kRounds;
    all.push_back(checks / total_s);
    double cpu_s = 0;
    for (double us : cpu_us) cpu_s += us / 1e6;
    per_cpu_second.push_back(checks / cpu_s);
    if (rep + 1 == reps) last_worst = worst;
  }
  return {Median(means), Median(p50s),  Median(p99s),
          Median(maxes), Median(one),   Median(all),
          items[last_worst].id, Median(per_cpu_second), max_nodes};
}

void Print(const char* name, size_t n, const Figures& f, int threads) {
  std::printf("%-28s n=%-4zu CPU per call: mean %7.2f us  p50 %7.2f us  p99 %7.2f us  "
              "max %7.2f us (%s)\n%-28s wall: 1 thread %8.0f checks/s, %d threads %8.0f checks/s; "
              "%d threads per CPU-second %8.0f checks\n"
              "%-28s node budget: at most %lld spent of %lld\n",
              name, n, f.mean_us, f.p50_us, f.p99_us, f.max_us, f.slowest.c_str(), "",
              f.per_second_one, threads, f.per_second_all, threads, f.per_cpu_second_all, "",
              static_cast<long long>(f.max_nodes),
              static_cast<long long>(rl::rewards::math::VerifierOptions{}.node_budget));
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = "tests/math/suite";
  std::string file = "tests/math/realworld/realworld.jsonl";
  int reps = 5, cot = 300;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  CLI::App app{"math verifier benchmark: verifications/s and latency percentiles"};
  app.add_option("--data", data, "folder with math_equiv_suite.jsonl")->check(CLI::ExistingDirectory);
  app.add_option("--file", file, "real completions (the format of tests/math/realworld)")
      ->check(CLI::ExistingFile);
  app.add_option("--reps", reps, "repetitions (the median is printed)")->check(CLI::PositiveNumber);
  app.add_option("--cot", cot, "generated chain-of-thought completions")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "threads for the parallel figures")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  std::vector<Item> dev;
  try {
    for (auto& row : rl::rewards::math::testing::LoadDevelopmentSet(data)) {
      dev.push_back({row.id, row.pred, row.gold, row.options});
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s (pass --data DIR, the folder with math_equiv_suite.jsonl)\n", e.what());
    return 1;
  }
  // Real completions, scored with the options a training run uses.
  std::vector<Item> real;
  try {
    for (auto& row : rl::rewards::math::testing::LoadRealWorld(file)) {
      real.push_back({row.id, row.completion, row.gold, {}});
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s (pass --file FILE.jsonl)\n", e.what());
    return 1;
  }
  std::vector<Item> chains = GenerateChainOfThought(cot, 42);
  auto mean_bytes = [](const std::vector<Item>& items) {
    size_t bytes = 0;
    for (const Item& item : items) bytes += item.completion.size();
    return bytes / std::max<size_t>(1, items.size());
  };
  std::printf("math verifier benchmark: medians of %d repetitions, %d threads for the parallel "
              "figure; real completions average %zu bytes, generated ones %zu\n",
              reps, threads, mean_bytes(real), mean_bytes(chains));
  Print("development set", dev.size(), Measure(dev, reps, threads), threads);
  Print("real model outputs", real.size(), Measure(real, reps, threads), threads);
  Print("chain-of-thought completions", chains.size(), Measure(chains, reps, threads), threads);
  return 0;
}

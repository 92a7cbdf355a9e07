// Boundedness and thread safety: hostile inputs, a randomized run over generated and mutated
// expressions (fixed seed, a few seconds), and many threads sharing one Verifier. Time is
// asserted with generous slack (budget x 4): these tests check that calls are bounded, not fast.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <chrono>
#include <pthread.h>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "rewards/math/verify.h"
#include "tests/math/long_inputs.h"
#include "tests/math/suite_common.h"

namespace {

using rl::rewards::math::CheckResult;
using rl::rewards::math::Verdict;
using rl::rewards::math::Verifier;
using rl::rewards::math::VerifierOptions;
using rl::rewards::math::testing::Repeat;
using rl::rewards::math::testing::ThreadCpuMillis;
using Clock = std::chrono::steady_clock;

constexpr double kSlack = 4;

// A decision (correct or incorrect) needs no explanation; every other verdict says why
// (CheckResult::detail), so that a user can tell a budget hit from an unreadable answer.
bool Explained(const CheckResult& r) {
  return r.verdict == Verdict::kCorrect || r.verdict == Verdict::kIncorrect || !r.detail.empty();
}

// Runs one check and asserts it stayed within the time budget (with slack). The budget is
// the thread's CPU time, which is what is asserted: wall time on a shared machine is noise.
CheckResult Bounded(const Verifier& verifier, const std::string& completion,
                    const std::string& gold) {
  double start = ThreadCpuMillis();
  CheckResult r = verifier.Check(completion, gold);
  double ms = ThreadCpuMillis() - start;
  INFO("completion (first 80 bytes): " << completion.substr(0, 80)
                                       << "  gold: " << gold.substr(0, 80)
                                       << "  verdict: " << ToString(r.verdict) << "  ms: " << ms);
  CHECK(Explained(r));
  CHECK(ms <= verifier.options().time_budget_ms * kSlack);
  return r;
}

// A random LaTeX expression of bounded depth.
std::string RandomExpr(std::mt19937_64& rng, int depth) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  if (depth <= 0 || pick(4) == 0) {
    switch (pick(6)) {
      case 0: return std::to_string(pick(20));
      case 1: return std::to_string(pick(1000)) + "." + std::to_string(pick(100));
      case 2: return std::string(1, "xyzab"[pick(5)]);
      case 3: return "\\pi";
      case 4: return "\\sqrt{" + std::to_string(pick(50) + 1) + "}";
      default: return "\\frac{" + std::to_string(pick(9) + 1) + "}{" + std::to_string(pick(9) + 1) + "}";
    }
  }
  std::string a = RandomExpr(rng, depth - 1), b = RandomExpr(rng, depth - 1);
  switch (pick(12)) {
    case 0: return a + "+" + b;
    case 1: return a + "-" + b;
    case 2: return a + "\\cdot " + b;
    case 3: return "\\frac{" + a + "}{" + b + "}";
    case 4: return "(" + a + ")^{" + std::to_string(pick(5)) + "}";
    case 5: return "\\sin(" + a + ")";
    case 6: return "\\left(" + a + ", " + b + "\\right)";
    case 7: return "\\{" + a + ", " + b + "\\}";
    case 8: return "[" + a + ", " + b + ")";
    case 9: return "x = " + a;
    case 10: return a + " \\le " + b;
    default: return "\\begin{pmatrix}" + a + " & " + b + "\\end{pmatrix}";
  }
}

std::string Mutate(std::string s, std::mt19937_64& rng) {
  static constexpr std::string_view kPieces[] = {"{", "}", "\\", "^", "_", "(", ")", "$", "\\frac",
                                                 "\\boxed{", "|", "!", "\xff", "\xe2\x88", "9999"};
  int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits && !s.empty(); ++e) {
    size_t at = rng() % s.size();
    switch (rng() % 3) {
      case 0: s.erase(at, 1 + rng() % 3); break;
      case 1: s.insert(at, kPieces[rng() % std::size(kPieces)]); break;
      default: std::swap(s[at], s[rng() % s.size()]); break;
    }
  }
  return s;
}

}  // namespace

TEST_CASE("hostile inputs get a verdict within the budget", "[math][stress]") {
  Verifier verifier;
  const std::string tower = "5^{5^{5^{5^5}}}";
  CHECK(Bounded(verifier, "\\boxed{" + tower + "}", tower).verdict == Verdict::kCorrect);
  // Beyond the bit budget only magnitudes are known: finite 3 is not the tower, but the
  // tower plus one cannot be told from the tower.
  CHECK(Bounded(verifier, "\\boxed{3}", tower).verdict == Verdict::kIncorrect);
  CHECK(Bounded(verifier, "\\boxed{" + tower + "+1}", tower).verdict == Verdict::kBudgetExceeded);
  Bounded(verifier, "\\boxed{(10^{100})!}", "3");
  CHECK(Bounded(verifier, "\\boxed{3}", "(10^{100})!").verdict == Verdict::kBudgetExceeded);
  Bounded(verifier, "\\boxed{9^{9^{9}}}", "9^{9^{9}}+1");
  Bounded(verifier, "\\boxed{10^{-10^{10}}}", "0");
  Bounded(verifier, "\\boxed{2^{100000}}", "2^{100000}");

  std::string nested = Repeat("{", 100000) + "1" + Repeat("}", 100000);
  CHECK(Bounded(verifier, "\\boxed{" + nested + "}", "2").verdict != Verdict::kCorrect);
  CHECK(Bounded(verifier, "\\boxed{2}", nested).verdict != Verdict::kCorrect);
  Bounded(verifier, "\\boxed{" + nested + "+1}", "2");
  Bounded(verifier, Repeat("(", 100000) + "1" + Repeat(")", 100000), "1");
  Bounded(verifier, "\\boxed{" + Repeat("\\sqrt{", 20000) + "2" + Repeat("}", 20000) + "}", "2");
  Bounded(verifier, "\\boxed{" + Repeat("x^", 50000) + "x}", "x");
  Bounded(verifier, "\\boxed{" + Repeat("|", 100001) + "}", "1");
  Bounded(verifier, "\\boxed{" + Repeat("1+", 300000) + "1}", "300001");

  std::string digits(1 << 20, '7');
  Bounded(verifier, "\\boxed{" + digits + "}", digits);
  Bounded(verifier, digits, "7");
  Bounded(verifier, "\\boxed{1}", digits);
  Bounded(verifier, "the answer is " + Repeat("1,000", 200000), "1000");

  CHECK(Bounded(verifier, "\\boxed{{{{{1}", "1").verdict != Verdict::kCorrect);
  Bounded(verifier, "}}}}\\boxed{1}}}}", "1");
  CHECK(Bounded(verifier, "\\boxed{1}", "\\frac{{{").verdict == Verdict::kInvalidGold);
  Bounded(verifier, "\\boxed{\xff\xfe}", "1");
  Bounded(verifier, "\\boxed{1}", "\xc3\x28");
  Bounded(verifier, Repeat("\\boxed{1} or ", 20000), "1");
  Bounded(verifier, Repeat("$x$ and ", 100000), "x");
  Bounded(verifier, std::string(1 << 20, '\\'), "1");
  Bounded(verifier, std::string(1 << 20, '$'), "1");
}

TEST_CASE("tight budgets are honoured", "[math][stress]") {
  VerifierOptions options;
  options.node_budget = 500;
  Verifier verifier(options);
  CHECK(Bounded(verifier, "\\boxed{" + Repeat("1+", 5000) + "1}", "5001").verdict ==
        Verdict::kBudgetExceeded);
  options = {};
  options.bit_budget = 256;
  Verifier small_bits(options);
  CHECK(Bounded(small_bits, "\\boxed{100!}", "100!").verdict == Verdict::kCorrect);  // same text
  CHECK(Bounded(small_bits, "\\boxed{100! + 0}", "100!").verdict == Verdict::kBudgetExceeded);
}

TEST_CASE("randomized generated and mutated expressions", "[math][stress]") {
  std::mt19937_64 rng(20261121);
  Verifier verifier;
  auto deadline = Clock::now() + std::chrono::seconds(3);
  int checks = 0, reflexive = 0, reflexive_ok = 0;
  for (int iteration = 0; iteration < 20000 && Clock::now() < deadline; ++iteration) {
    std::string gold = RandomExpr(rng, 1 + static_cast<int>(rng() % 4));
    std::string pred = rng() % 2 ? gold : RandomExpr(rng, 3);
    if (rng() % 3 == 0) pred = Mutate(pred, rng);
    if (rng() % 5 == 0) gold = Mutate(gold, rng);
    CheckResult r = Bounded(verifier, "The answer is $\\boxed{" + pred + "}$.", gold);
    ++checks;
    if (pred == gold && r.verdict != Verdict::kInvalidGold) {
      ++reflexive;
      if (r.verdict == Verdict::kCorrect) ++reflexive_ok;
    }
  }
  INFO("checks: " << checks << " reflexive: " << reflexive_ok << "/" << reflexive);
  CHECK(checks > 1000);
  CHECK(reflexive_ok == reflexive);  // an answer always equals itself
}

TEST_CASE("one Verifier shared by many threads gives the single-thread verdicts", "[math][stress]") {
  auto rows = rl::rewards::math::testing::LoadDevelopmentSet("math/suite");
  std::vector<Verifier> verifiers;
  for (const auto& row : rows) verifiers.emplace_back(row.options);
  std::vector<Verdict> expected;
  for (size_t k = 0; k < rows.size(); ++k) {
    expected.push_back(verifiers[k].Check(rows[k].pred, rows[k].gold).verdict);
  }
  constexpr int kThreads = 16;
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (size_t k = 0; k < rows.size(); ++k) {
          size_t i = (k + static_cast<size_t>(t) * 37) % rows.size();
          CheckResult r = verifiers[i].Check(rows[i].pred, rows[i].gold);
          if (r.verdict != expected[i]) {
            ++mismatches;
            std::printf("mismatch %s: %s (%s)\n", rows[i].id.c_str(),
                        std::string(ToString(r.verdict)).c_str(), r.detail.c_str());
          }
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(mismatches.load() == 0);
}

TEST_CASE("deep inputs are safe on a small thread stack", "[math][stress]") {
  // OpenMP and server worker threads may have small stacks: run the deep inputs on one.
  std::vector<std::string> inputs = {
      "\\boxed{1" + Repeat("!", 100000) + "}",    "\\boxed{x" + Repeat("^2", 100000) + "}",
      "\\boxed{5" + Repeat("\\%", 100000) + "}",  "\\boxed{" + Repeat("-", 100000) + "1}",
      "\\boxed{" + Repeat("\\sqrt", 100000) + " 2}", "\\boxed{" + Repeat("(", 100000) + "}",
      "\\boxed{x^" + Repeat("-", 100000) + "1}"};
  Verifier verifier;
  std::vector<Verdict> verdicts(inputs.size(), Verdict::kCorrect);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
#if defined(__SANITIZE_ADDRESS__)
  constexpr size_t kStack = 8 << 20;  // AddressSanitizer inflates every frame several times
#else
  constexpr size_t kStack = 512 << 10;
#endif
  pthread_attr_setstacksize(&attr, kStack);
  struct Job {
    const Verifier* verifier;
    const std::vector<std::string>* inputs;
    std::vector<Verdict>* verdicts;
  } job{&verifier, &inputs, &verdicts};
  pthread_t thread;
  auto body = [](void* arg) -> void* {
    auto* j = static_cast<Job*>(arg);
    for (size_t k = 0; k < j->inputs->size(); ++k) {
      (*j->verdicts)[k] = j->verifier->Check((*j->inputs)[k], "1").verdict;
    }
    return nullptr;
  };
  REQUIRE(pthread_create(&thread, &attr, body, &job) == 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
  for (Verdict v : verdicts) CHECK(v != Verdict::kCorrect);
}

namespace {

// Scalar expressions with nonzero denominators and moderate values.
std::string RandomScalar(std::mt19937_64& rng, int depth) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  if (depth <= 0 || pick(3) == 0) {
    switch (pick(5)) {
      case 0: return std::to_string(1 + pick(20));
      case 1: return std::string(1, "xyz"[pick(3)]);
      case 2: return "\\pi";
      case 3: return "\\sqrt{" + std::to_string(2 + pick(30)) + "}";
      default: return "\\frac{" + std::to_string(1 + pick(9)) + "}{" + std::to_string(2 + pick(8)) + "}";
    }
  }
  std::string a = RandomScalar(rng, depth - 1), b = RandomScalar(rng, depth - 1);
  switch (pick(7)) {
    case 0: return a + "+" + b;
    case 1: return a + "-" + b;
    case 2: return a + "\\cdot " + b;
    case 3: return "\\frac{" + a + "}{" + std::to_string(2 + pick(8)) + "}";
    case 4: return "(" + a + ")^{" + std::to_string(pick(4)) + "}";
    case 5: return "\\sin(" + a + ")";
    default: return "\\cos(" + a + ")+" + b;
  }
}

}  // namespace

TEST_CASE("randomized rewrites are equal and near misses are not", "[math][stress]") {
  std::mt19937_64 rng(7);
  Verifier verifier;
  auto deadline = Clock::now() + std::chrono::seconds(3);
  int checked = 0;
  for (int iteration = 0; iteration < 600 && Clock::now() < deadline; ++iteration) {
    std::string e = RandomScalar(rng, 1 + static_cast<int>(rng() % 4));
    INFO("expression: " << e);
    CHECK(Bounded(verifier, "\\boxed{\\frac{2(" + e + ")}{2}}", e).verdict == Verdict::kCorrect);
    CHECK(Bounded(verifier, "\\boxed{(" + e + ") \\cdot 1 + 0}", e).verdict == Verdict::kCorrect);
    CHECK(Bounded(verifier, "\\boxed{(" + e + ")+1}", e).verdict == Verdict::kIncorrect);
    CHECK(Bounded(verifier, "\\boxed{(" + e + ")+10^{-9}}", e).verdict == Verdict::kIncorrect);
    ++checked;
  }
  CHECK(checked > 50);
}

// Sampling math on hand-made logits: filters, temperature, log-probabilities, the counter-based
// RNG, parameter validation, and stop-string matching.
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include <ATen/ATen.h>

#include "tests/support/catch_torch.h"

#include "rollout/sampling.h"
#include "rollout/stop_strings.h"

namespace rr = rl::rollout;

namespace {

at::Tensor Row(std::vector<float> values) {
  return at::tensor(at::ArrayRef<float>(values)).unsqueeze(0);
}

// Indices of the entries left finite by a filter.
std::set<int64_t> Kept(const at::Tensor& filtered) {
  std::set<int64_t> kept;
  at::Tensor row = filtered.reshape({-1});
  for (int64_t i = 0; i < row.numel(); ++i)
    if (std::isfinite(row[i].item<float>())) kept.insert(i);
  return kept;
}

constexpr float kInf = std::numeric_limits<float>::infinity();

}  // namespace

TEST_CASE("top-k keeps the k largest logits, ties with the k-th included") {
  at::Tensor logits = Row({1.0f, 5.0f, 3.0f, 4.0f, 2.0f});
  CHECK(Kept(rr::FilterTopK(logits, 2)) == std::set<int64_t>{1, 3});
  CHECK(Kept(rr::FilterTopK(logits, 1)) == std::set<int64_t>{1});
  CHECK(Kept(rr::FilterTopK(logits, 0)).size() == 5);   // disabled
  CHECK(Kept(rr::FilterTopK(logits, 9)).size() == 5);   // k >= V: disabled
  CHECK(Kept(rr::FilterTopK(Row({3, 3, 1, 3}), 2)) == std::set<int64_t>{0, 1, 3});
  // Rows are filtered independently.
  at::Tensor two = at::cat({Row({0, 1, 2}), Row({2, 1, 0})});
  at::Tensor f = rr::FilterTopK(two, 1);
  CHECK(Kept(f[0]) == std::set<int64_t>{2});
  CHECK(Kept(f[1]) == std::set<int64_t>{0});
}

TEST_CASE("top-p keeps the smallest most-probable set reaching p") {
  // Probabilities 0.5, 0.25, 0.15, 0.1 (as log-probabilities).
  at::Tensor logits = Row({std::log(0.1f), std::log(0.5f), std::log(0.15f), std::log(0.25f)});
  CHECK(Kept(rr::FilterTopP(logits, 0.5)) == std::set<int64_t>{1});
  CHECK(Kept(rr::FilterTopP(logits, 0.6)) == std::set<int64_t>{1, 3});
  CHECK(Kept(rr::FilterTopP(logits, 0.75)) == std::set<int64_t>{1, 3});
  CHECK(Kept(rr::FilterTopP(logits, 0.8)) == std::set<int64_t>{1, 2, 3});
  CHECK(Kept(rr::FilterTopP(logits, 0.95)) == std::set<int64_t>{0, 1, 2, 3});
  CHECK(Kept(rr::FilterTopP(logits, 1.0)).size() == 4);
  // The most probable token survives even a tiny p.
  CHECK(Kept(rr::FilterTopP(logits, 1e-9)) == std::set<int64_t>{1});
  // Already-removed tokens stay removed.
  CHECK(Kept(rr::FilterTopP(Row({0, -kInf, 0}), 0.9)) == std::set<int64_t>{0, 2});
}

TEST_CASE("top-p agrees with a full sort on large vocabularies of every shape") {
  // Peaked to flat rows: the kept set may be a handful of tokens or thousands of them.
  at::manual_seed(5);
  for (double scale : {8.0, 2.0, 0.5, 0.01}) {
    at::Tensor logits = at::randn({3, 5000}) * scale;
    for (double p : {0.1, 0.5, 0.9, 0.99}) {
      at::Tensor filtered = rr::FilterTopP(logits, p);
      for (int64_t r = 0; r < 3; ++r) {
        auto [sorted, order] = logits[r].softmax(-1).to(at::kDouble).sort(-1, true);
        at::Tensor before = sorted.cumsum(-1) - sorted;
        std::set<int64_t> expected;
        for (int64_t i = 0; i < sorted.size(0) && before[i].item<double>() < p; ++i)
          expected.insert(order[i].item<int64_t>());
        std::set<int64_t> kept = Kept(filtered[r]);
        INFO("scale " << scale << " p " << p << " row " << r);
        // Float rounding may move the cut by one token on a near-flat row; no more.
        CHECK(std::max(kept.size(), expected.size()) - std::min(kept.size(), expected.size()) <= 1);
        bool nested = std::includes(kept.begin(), kept.end(), expected.begin(), expected.end()) ||
                      std::includes(expected.begin(), expected.end(), kept.begin(), kept.end());
        CHECK(nested);
      }
    }
  }
}

TEST_CASE("min-p drops tokens below min_p times the top probability") {
  // Probabilities 0.5, 0.25, 0.15, 0.1: thresholds relative to 0.5.
  at::Tensor logits = Row({std::log(0.5f), std::log(0.25f), std::log(0.15f), std::log(0.1f)});
  CHECK(Kept(rr::FilterMinP(logits, 0.0)).size() == 4);
  CHECK(Kept(rr::FilterMinP(logits, 0.25)) == std::set<int64_t>{0, 1, 2});  // cut at 0.125
  CHECK(Kept(rr::FilterMinP(logits, 0.4)) == std::set<int64_t>{0, 1});      // cut at 0.2
  CHECK(Kept(rr::FilterMinP(logits, 0.9)) == std::set<int64_t>{0});
}

TEST_CASE("logprobs are log_softmax(logits / T) before filtering") {
  at::Tensor logits = at::cat({Row({0.3f, -1.2f, 2.0f, 0.7f, 0.0f}),
                               Row({1.0f, 1.0f, -0.5f, 3.0f, 2.5f})});
  for (double t : {0.5, 1.0, 1.7}) {
    rr::SamplingParams params;
    params.temperature = t;
    params.top_k = 2;       // filters must not change the reported logprob
    params.top_p = 0.9;
    std::vector<double> u = {0.3, 0.8};
    rr::SampledTokens s = rr::SampleTokens(logits, params, u);
    at::Tensor expected = (logits / t).log_softmax(-1);
    for (int64_t b = 0; b < 2; ++b) {
      int64_t token = s.tokens[b].item<int64_t>();
      CHECK(s.logprobs[b].item<float>() ==
            Approx(expected[b][token].item<float>()).margin(1e-6));
    }
  }
}

TEST_CASE("greedy picks the argmax and reports its temperature-1 logprob") {
  at::Tensor logits = Row({0.1f, 2.5f, 2.4f, -3.0f});
  rr::SamplingParams params;
  params.temperature = 0;
  std::vector<double> u = {0.999};
  rr::SampledTokens s = rr::SampleTokens(logits, params, u);
  CHECK(s.tokens[0].item<int64_t>() == 1);
  CHECK(s.logprobs[0].item<float>() ==
        Approx(logits.log_softmax(-1)[0][1].item<float>()).margin(1e-6));
}

TEST_CASE("repetition penalty: seen tokens' logits divided when positive, multiplied when negative") {
  // Row 0 has seen 0 1 (prompt) and 1 (generated): 2.0 / 2 = 1, −1.0 · 2 = −2 (once, although
  // 1 occurs twice). Row 1 has seen 3 and 2: 0.0 stays 0 (not negative: divided), 4.0 / 2 = 2.
  at::Tensor logits = at::cat({Row({2.0f, -1.0f, 0.5f, 3.0f}), Row({-0.5f, 3.0f, 4.0f, 0.0f})});
  const std::vector<int32_t> prompt0 = {0, 1}, generated0 = {1}, prompt1 = {3}, generated1 = {2};
  const std::vector<rr::TokenHistory> history = {{prompt0, generated0}, {prompt1, generated1}};
  at::Tensor penalised = rr::ApplyRepetitionPenalty(logits, 2.0, history);
  CHECK(penalised.equal(at::cat({Row({1.0f, -2.0f, 0.5f, 3.0f}), Row({-0.5f, 3.0f, 2.0f, 0.0f})})));
  CHECK(logits[0][0].item<float>() == 2.0f);  // the input is left as it was
  CHECK(rr::ApplyRepetitionPenalty(logits, 1.0, {}).equal(logits));

  // Sampling applies it before the temperature: greedy now picks token 1 of row 1 (3 > 2), and
  // the logprob is that of the penalised logits: 3 − log(e^−0.5 + e^3 + e^2 + e^0).
  rr::SamplingParams params;
  params.temperature = 0;
  params.repetition_penalty = 2.0;
  std::vector<double> u = {0.5, 0.5};
  rr::SampledTokens s = rr::SampleTokens(logits, params, u, history);
  CHECK(s.tokens[0].item<int64_t>() == 3);
  CHECK(s.tokens[1].item<int64_t>() == 1);
  CHECK(s.logprobs[0].item<float>() == Approx(-0.2022534).margin(1e-6));  // 3 − log(e^1 + e^−2 + e^0.5 + e^3)
  CHECK(s.logprobs[1].item<float>() == Approx(-0.3700893).margin(1e-6));
  CHECK_THROWS_WITH(rr::SampleTokens(logits, params, u), Catch::Contains("repetition_penalty"));
  const std::vector<int32_t> outside = {4};
  const std::vector<rr::TokenHistory> bad = {{outside, {}}, {prompt1, generated1}};
  CHECK_THROWS_AS(rr::ApplyRepetitionPenalty(logits, 2.0, bad), std::invalid_argument);
}

TEST_CASE("the draw inverts the CDF of the filtered distribution") {
  // Probabilities 0.5, 0.25, 0.15, 0.1.
  at::Tensor logits = Row({std::log(0.5f), std::log(0.25f), std::log(0.15f), std::log(0.1f)});
  rr::SamplingParams params;
  auto pick = [&](double u) {
    std::vector<double> us = {u};
    return rr::SampleTokens(logits, params, us).tokens[0].item<int64_t>();
  };
  CHECK(pick(0.0) == 0);
  CHECK(pick(0.49) == 0);
  CHECK(pick(0.51) == 1);
  CHECK(pick(0.74) == 1);
  CHECK(pick(0.76) == 2);
  CHECK(pick(0.91) == 3);
  CHECK(pick(std::nextafter(1.0, 0.0)) == 3);
  params.top_k = 2;  // renormalised over {0, 1}: 2/3 and 1/3
  CHECK(pick(0.6) == 0);
  CHECK(pick(0.7) == 1);
  CHECK(pick(std::nextafter(1.0, 0.0)) == 1);  // never a removed token
}

TEST_CASE("sampled frequencies follow the tempered, filtered distribution") {
  at::Tensor logits = Row({0.0f, 1.0f, 2.0f, -1.0f});
  rr::SamplingParams params;
  params.temperature = 0.8;
  params.top_k = 3;
  at::Tensor expected = rr::FilterTopK(logits / 0.8, 3).softmax(-1)[0];
  std::vector<int> counts(4, 0);
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    std::vector<double> u = {rr::CounterUniform(123, 0, static_cast<uint64_t>(i))};
    counts[rr::SampleTokens(logits, params, u).tokens[0].item<int64_t>()]++;
  }
  CHECK(counts[3] == 0);
  for (int v = 0; v < 3; ++v)  // 5 standard deviations of a binomial at n = 20000
    CHECK(std::abs(counts[v] / double(n) - expected[v].item<double>()) < 0.02);
}

TEST_CASE("CounterUniform is a pure function of (seed, stream, step)") {
  CHECK(rr::CounterUniform(1, 2, 3) == rr::CounterUniform(1, 2, 3));
  CHECK(rr::CounterUniform(1, 2, 3) != rr::CounterUniform(1, 2, 4));
  CHECK(rr::CounterUniform(1, 2, 3) != rr::CounterUniform(1, 3, 3));
  CHECK(rr::CounterUniform(1, 2, 3) != rr::CounterUniform(2, 2, 3));
  double sum = 0;
  for (uint64_t i = 0; i < 10000; ++i) {
    double u = rr::CounterUniform(7, i % 13, i);
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    sum += u;
  }
  CHECK(sum / 10000 == Approx(0.5).margin(0.02));
}

TEST_CASE("SamplingParams::Check names the bad field") {
  rr::SamplingParams ok;
  CHECK(ok.Check().empty());
  auto error_of = [](auto mutate) {
    rr::SamplingParams p;
    mutate(p);
    return p.Check();
  };
  CHECK_THAT(error_of([](auto& p) { p.temperature = -1; }), Catch::Contains("temperature"));
  CHECK_THAT(error_of([](auto& p) { p.temperature = std::nan(""); }),
             Catch::Contains("temperature"));
  CHECK_THAT(error_of([](auto& p) { p.top_k = -2; }), Catch::Contains("top_k"));
  CHECK_THAT(error_of([](auto& p) { p.top_p = 0; }), Catch::Contains("top_p"));
  CHECK_THAT(error_of([](auto& p) { p.top_p = 1.5; }), Catch::Contains("top_p"));
  CHECK_THAT(error_of([](auto& p) { p.min_p = 1; }), Catch::Contains("min_p"));
  CHECK_THAT(error_of([](auto& p) { p.max_new_tokens = 0; }), Catch::Contains("max_new_tokens"));
  CHECK_THAT(error_of([](auto& p) { p.eos_ids = {-1}; }), Catch::Contains("eos_ids"));
  CHECK_THAT(error_of([](auto& p) { p.stop_strings = {""}; }), Catch::Contains("stop_strings"));
  CHECK_THAT(error_of([](auto& p) { p.repetition_penalty = 0; }), Catch::Contains("repetition_penalty"));
  std::vector<double> u = {0.5};
  rr::SamplingParams bad;
  bad.top_p = 2;
  CHECK_THROWS_AS(rr::SampleTokens(Row({0, 1}), bad, u), std::invalid_argument);
}

TEST_CASE("non-finite logits are refused") {
  rr::SamplingParams params;
  std::vector<double> u = {0.5};
  CHECK_THROWS_AS(rr::SampleTokens(Row({0, std::nanf("")}), params, u), std::runtime_error);
  CHECK_THROWS_AS(rr::SampleTokens(Row({-kInf, -kInf}), params, u), std::runtime_error);
  CHECK_THROWS_AS(rr::SampleTokens(Row({0, kInf}), params, u), std::runtime_error);
  std::vector<double> two = {0.5, 0.5};
  CHECK_THROWS_AS(rr::SampleTokens(Row({0, 1}), params, two), std::invalid_argument);
}

TEST_CASE("stop strings are found across appends, earliest first") {
  rr::StopStringMatcher matcher({"</answer>", "\n\n", "STOP"});
  std::string text = "<think>x</think><answer>4</ans";
  CHECK_FALSE(matcher.FindNew(text, 0));
  size_t old = text.size();
  text += "wer> trailing";
  auto hit = matcher.FindNew(text, old);
  REQUIRE(hit);
  CHECK(hit->index == 0);
  CHECK(text.substr(0, hit->end) == "<think>x</think><answer>4</answer>");
  CHECK(text.substr(0, hit->begin) == "<think>x</think><answer>4");

  // A match that ended before the append was reported earlier and is not reported again.
  std::string done = "a\n\nb";
  CHECK_FALSE(matcher.FindNew(done, 3));
  CHECK(matcher.FindNew(done, 2));

  // Two stop strings completed by one append: the one starting first wins.
  std::string both = "xxST";
  old = both.size();
  both += "OP\n\n";
  hit = matcher.FindNew(both, old);
  REQUIRE(hit);
  CHECK(hit->index == 2);
  CHECK(hit->begin == 2);

  rr::StopStringMatcher none({});
  CHECK(none.empty());
  CHECK_FALSE(none.FindNew("anything", 0));
}

// GRPO arithmetic against values worked out by hand (the comments show the working).
#include <cmath>
#include <limits>
#include <vector>

#include <torch/types.h>
#include "tests/support/catch_torch.h"

#include "trainer/grpo_loss.h"

using rl::trainer::AdvantageOptions;
using rl::trainer::ComputeGroupAdvantages;
using rl::trainer::ComputePolicyLoss;
using rl::trainer::HighEntropyMask;
using rl::trainer::ImportanceSamplingLevel;
using rl::trainer::KlK3;
using rl::trainer::LossType;
using rl::trainer::RolloutImportanceOptions;
using rl::trainer::RolloutImportanceWeights;
using rl::trainer::RolloutIsMode;
using rl::trainer::PolicyLossInputs;
using rl::trainer::PolicyLossOptions;
using rl::trainer::ScaleRewards;

namespace {

double At(const torch::Tensor& t, int64_t i) { return t[i].item<double>(); }

}  // namespace

TEST_CASE("group advantages: mean baseline, std per group", "[advantages]") {
  // Group 1: {1,0,0,1}: mean 0.5, unbiased std sqrt(4·0.25/3) = 0.5773503.
  // Group 2: {1,1,1,1}: std 0 -> advantages 0, counted in frac_reward_zero_std.
  torch::Tensor rewards = torch::tensor({1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0});
  AdvantageOptions options;
  auto adv = ComputeGroupAdvantages(rewards, 4, options);
  const double a = 0.5 / (std::sqrt(1.0 / 3.0) + 1e-4);
  CHECK(At(adv.advantages, 0) == Approx(a));
  CHECK(At(adv.advantages, 1) == Approx(-a));
  CHECK(At(adv.advantages, 2) == Approx(-a));
  CHECK(At(adv.advantages, 3) == Approx(a));
  for (int64_t i = 4; i < 8; ++i) CHECK(At(adv.advantages, i) == 0.0);
  CHECK(adv.frac_reward_zero_std == 0.5);
  CHECK(At(adv.group_mean, 0) == 0.5);
  CHECK(At(adv.group_std, 1) == 0.0);
}

TEST_CASE("group advantages: batch and no scaling", "[advantages]") {
  torch::Tensor rewards = torch::tensor({1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0});
  AdvantageOptions options;
  options.scale_rewards = ScaleRewards::kNone;  // Dr. GRPO: r - mean
  auto none = ComputeGroupAdvantages(rewards, 4, options);
  CHECK(At(none.advantages, 0) == 0.5);
  CHECK(At(none.advantages, 1) == -0.5);
  // Batch std of all 8: mean 0.75, squared deviations 6·0.0625 + 2·0.5625 = 1.5, /7.
  options.scale_rewards = ScaleRewards::kBatch;
  auto batch = ComputeGroupAdvantages(rewards, 4, options);
  CHECK(At(batch.advantages, 0) == Approx(0.5 / (std::sqrt(1.5 / 7.0) + 1e-4)));
  CHECK(At(batch.advantages, 5) == 0.0);
}

TEST_CASE("group advantages: RLOO baseline", "[advantages]") {
  // {1,0,0,0}: baseline of the 1 is mean{0,0,0} = 0 -> +1; of each 0 is mean{1,0,0} = 1/3.
  torch::Tensor rewards = torch::tensor({1.0, 0.0, 0.0, 0.0});
  AdvantageOptions options;
  options.rloo = true;
  options.scale_rewards = ScaleRewards::kNone;
  auto adv = ComputeGroupAdvantages(rewards, 4, options);
  CHECK(At(adv.advantages, 0) == Approx(1.0));
  CHECK(At(adv.advantages, 1) == Approx(-1.0 / 3.0));
  CHECK(At(adv.advantages, 3) == Approx(-1.0 / 3.0));
  // With group scaling: divided by std{1,0,0,0} = sqrt(0.75/3) = 0.5.
  options.scale_rewards = ScaleRewards::kGroup;
  auto scaled = ComputeGroupAdvantages(rewards, 4, options);
  CHECK(At(scaled.advantages, 0) == Approx(1.0 / (0.5 + 1e-4)));
}

TEST_CASE("group advantages reject bad input", "[advantages]") {
  AdvantageOptions options;
  CHECK_THROWS_WITH(ComputeGroupAdvantages(torch::zeros({7}), 4, options),
                    Catch::Contains("multiple of the group size"));
  CHECK_THROWS_WITH(ComputeGroupAdvantages(torch::tensor({1.0, std::nan("")}), 2, options),
                    Catch::Contains("not finite"));
}

namespace {

// Two sequences of three tokens. ratio ρ = exp(logπ − logπ_old) with logπ_old = 0:
//   sequence 0, A = +1: ρ = 1.5, 1.0, 0.5
//   sequence 1, A = −2: ρ = 1.1, 0.7, (masked)
// Per-token loss −min(ρA, clip(ρ, 0.8, 1.2)A):
//   seq 0: −min(1.5, 1.2) = −1.2 (high-clipped), −1, −min(0.5, 0.8) = −0.5
//   seq 1: −min(−2.2, −2.2) = 2.2, −min(−1.4, −1.6) = 1.6 (low-clipped)
PolicyLossInputs HandWorkedInputs() {
  PolicyLossInputs in;
  in.logprobs = torch::tensor({std::log(1.5), 0.0, std::log(0.5), std::log(1.1), std::log(0.7), 0.0},
                              torch::kDouble)
                    .view({2, 3})
                    .requires_grad_(true);
  in.old_logprobs = torch::zeros({2, 3}, torch::kDouble);
  in.advantages = torch::tensor({1.0, -2.0}, torch::kDouble);
  in.mask = torch::tensor({1.0, 1.0, 1.0, 1.0, 1.0, 0.0}, torch::kDouble).view({2, 3});
  return in;
}

}  // namespace

TEST_CASE("policy loss: each loss type by hand", "[loss]") {
  PolicyLossInputs in = HandWorkedInputs();
  PolicyLossOptions options;
  options.loss_type = LossType::kGrpo;  // sequence means −2.7/3 = −0.9 and 3.8/2 = 1.9 -> 0.5
  CHECK(ComputePolicyLoss(in, options).loss.item<double>() == Approx(0.5));
  options.loss_type = LossType::kDapo;  // (−2.7 + 3.8) / 5 tokens
  auto dapo = ComputePolicyLoss(in, options);
  CHECK(dapo.loss.item<double>() == Approx(0.22));
  CHECK(dapo.clip_ratio_high == Approx(0.2));
  CHECK(dapo.clip_ratio_low == Approx(0.2));
  CHECK(dapo.clip_ratio_region == Approx(0.4));
  CHECK(dapo.tokens == 5.0);
  CHECK(dapo.ratio_count == 5.0);
  // Per sequence: low-clipped 0/3 and 1/2, high-clipped 1/3 and 0/2.
  CHECK(dapo.clip_ratio_low_min.value() == 0.0);
  CHECK(dapo.clip_ratio_high_max.value() == Approx(1.0 / 3.0));
  options.loss_type = LossType::kBnpo;  // one micro-batch: the token mean, as dapo
  CHECK(ComputePolicyLoss(in, options).loss.item<double>() == Approx(0.22));
  options.loss_type = LossType::kDrGrpo;  // 1.1 / (2 sequences × 3)
  CHECK(ComputePolicyLoss(in, options).loss.item<double>() == Approx(1.1 / 6.0));
  options.max_completion_length = 4;  // 1.1 / (2 × 4)
  CHECK(ComputePolicyLoss(in, options).loss.item<double>() == Approx(0.1375));
}

TEST_CASE("policy loss: asymmetric clipping (epsilon_high)", "[loss]") {
  PolicyLossInputs in = HandWorkedInputs();
  PolicyLossOptions options;
  options.epsilon_high = 0.6;  // ρ = 1.5 no longer clipped: −1.5 instead of −1.2
  options.loss_type = LossType::kDapo;
  auto loss = ComputePolicyLoss(in, options);
  CHECK(loss.loss.item<double>() == Approx((-3.0 + 3.8) / 5.0));
  CHECK(loss.clip_ratio_high == 0.0);
}

TEST_CASE("policy loss: gradient by hand", "[loss]") {
  // dapo: d loss / d logπ = −A·ρ / 5 where the unclipped branch is active, 0 where clipped.
  PolicyLossInputs in = HandWorkedInputs();
  PolicyLossOptions options;
  options.loss_type = LossType::kDapo;
  ComputePolicyLoss(in, options).loss.backward();
  torch::Tensor g = in.logprobs.grad();
  CHECK(g[0][0].item<double>() == Approx(0.0));         // high-clipped
  CHECK(g[0][1].item<double>() == Approx(-1.0 / 5.0));  // −(+1)(1.0)/5
  CHECK(g[0][2].item<double>() == Approx(-0.5 / 5.0));
  CHECK(g[1][0].item<double>() == Approx(2.2 / 5.0));   // −(−2)(1.1)/5
  CHECK(g[1][1].item<double>() == Approx(0.0));         // low-clipped
  CHECK(g[1][2].item<double>() == 0.0);                 // masked
}

TEST_CASE("policy loss: KL term with beta", "[loss][kl]") {
  // d = logπ_ref − logπ = 0, ln 2, −ln 2 on sequence 0; 0 on sequence 1.
  // k3(ln 2) = 2 − ln 2 − 1 = 0.3068528; k3(−ln 2) = 0.5 + ln 2 − 1 = 0.1931472.
  PolicyLossInputs in = HandWorkedInputs();
  torch::Tensor d = torch::tensor({0.0, std::log(2.0), -std::log(2.0), 0.0, 0.0, 0.0}, torch::kDouble).view({2, 3});
  in.ref_logprobs = in.logprobs.detach() + d;
  PolicyLossOptions options;
  options.loss_type = LossType::kDapo;
  options.beta = 0.1;
  auto loss = ComputePolicyLoss(in, options);
  CHECK(loss.kl == Approx((0.3068528 + 0.1931472) / 5.0));
  CHECK(loss.loss.item<double>() == Approx((1.1 + 0.1 * 0.5) / 5.0));
  // beta > 0 without a reference is a programming error, caught.
  in.ref_logprobs = torch::Tensor();
  CHECK_THROWS(ComputePolicyLoss(in, options));
}

TEST_CASE("k3 KL is non-negative and finite for extreme log-ratios", "[kl]") {
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    torch::Tensor logprobs = torch::tensor({-1e4, 0.0, -50.0, -1e-30, -88.0, 0.0, -1e30}, dtype);
    torch::Tensor ref = torch::tensor({0.0, -1e4, -50.0, 0.0, -1e-3, -1e30, 0.0}, dtype);
    torch::Tensor kl = KlK3(logprobs, ref, 10.0);
    CHECK(torch::isfinite(kl).all().item<bool>());
    CHECK((kl >= 0).all().item<bool>());
    CHECK(kl[2].item<double>() == 0.0);  // identical log-probs
    // Clamped at ±10: exp(10) − 10 − 1 for d = +1e4.
    CHECK(kl[0].item<double>() == Approx(std::exp(10.0) - 11.0).epsilon(1e-5));
    CHECK(kl[1].item<double>() == Approx(std::exp(-10.0) + 9.0).epsilon(1e-5));
  }
}

TEST_CASE("micro-batch losses add up to the whole batch's loss", "[loss]") {
  PolicyLossInputs in = HandWorkedInputs();
  for (LossType type : {LossType::kGrpo, LossType::kDapo, LossType::kDrGrpo}) {
    PolicyLossOptions whole;
    whole.loss_type = type;
    const double full = ComputePolicyLoss(in, whole).loss.item<double>();
    PolicyLossOptions part = whole;
    part.total_sequences = 2;
    part.total_tokens = 5;
    part.max_completion_length = 3;
    double sum = 0;
    for (int64_t row = 0; row < 2; ++row) {
      PolicyLossInputs slice;
      slice.logprobs = in.logprobs.narrow(0, row, 1);
      slice.old_logprobs = in.old_logprobs.narrow(0, row, 1);
      slice.advantages = in.advantages.narrow(0, row, 1);
      slice.mask = in.mask.narrow(0, row, 1);
      sum += ComputePolicyLoss(slice, part).loss.item<double>();
    }
    CHECK(sum == Approx(full));
  }
}

TEST_CASE("on-policy ratio is 1 and its gradient is the policy gradient", "[loss]") {
  // old_logprobs undefined: ρ = 1 in value, gradient −A/tokens per token (dapo).
  torch::Tensor logprobs = torch::tensor({-1.0, -2.0}, torch::kDouble).view({1, 2}).requires_grad_(true);
  PolicyLossInputs in;
  in.logprobs = logprobs;
  in.advantages = torch::tensor({0.5}, torch::kDouble);
  in.mask = torch::ones({1, 2}, torch::kDouble);
  PolicyLossOptions options;
  auto loss = ComputePolicyLoss(in, options);
  CHECK(loss.loss.item<double>() == Approx(-0.5));
  loss.loss.backward();
  CHECK(logprobs.grad()[0][0].item<double>() == Approx(-0.25));
}

namespace {

// The policy loss of each row of `in` alone, as micro-batches of a 2-row step.
std::vector<double> RowLosses(const PolicyLossInputs& in, PolicyLossOptions options) {
  std::vector<double> out;
  for (int64_t row = 0; row < in.logprobs.size(0); ++row) {
    PolicyLossInputs slice;
    slice.logprobs = in.logprobs.narrow(0, row, 1);
    slice.old_logprobs = in.old_logprobs.narrow(0, row, 1);
    slice.advantages = in.advantages.narrow(0, row, 1);
    slice.mask = in.mask.narrow(0, row, 1);
    out.push_back(ComputePolicyLoss(slice, options).loss.item<double>());
  }
  return out;
}

// Entropies of the hand-worked tokens: 0.1 0.5 0.9 | 0.3 0.7, and 5.0 on the padding (which
// must not count).
torch::Tensor HandWorkedEntropy() {
  return torch::tensor({0.1, 0.5, 0.9, 0.3, 0.7, 5.0}, torch::kDouble).view({2, 3});
}

}  // namespace

TEST_CASE("policy loss: bnpo normalises each micro-batch by its own tokens", "[loss]") {
  // TRL's bnpo: a micro-batch's token mean, averaged over the micro-batches. Row 0 alone:
  // −2.7 / 3 tokens / 2 micro-batches = −0.45; row 1: 3.8 / 2 / 2 = 0.95 (sum 0.5, where dapo's
  // global token count gives 1.1 / 5 = 0.22).
  PolicyLossOptions options;
  options.loss_type = LossType::kBnpo;
  options.micro_batches = 2;
  const std::vector<double> rows = RowLosses(HandWorkedInputs(), options);
  CHECK(rows[0] == Approx(-0.45));
  CHECK(rows[1] == Approx(0.95));
}

TEST_CASE("policy loss: sequence-level importance sampling (GSPO)", "[loss][gspo]") {
  // ρ per sequence = exp(mean log-ratio): seq 0 (1.5·1·0.5)^(1/3) = 0.9085603, seq 1
  // sqrt(1.1·0.7) = 0.8774964. With ε = 0.1 (clip to [0.9, 1.1]): seq 0 unclipped, −0.9085603;
  // seq 1 (A = −2) low-clipped, −min(−1.7549929, −1.8) = 1.8. grpo: (−0.9085603 + 1.8) / 2.
  PolicyLossInputs in = HandWorkedInputs();
  PolicyLossOptions options;
  options.loss_type = LossType::kGrpo;
  options.importance_sampling_level = ImportanceSamplingLevel::kSequence;
  options.epsilon_low = options.epsilon_high = 0.1;
  auto loss = ComputePolicyLoss(in, options);
  CHECK(loss.loss.item<double>() == Approx(0.4457199));
  // Clip ratios are over sequences: one of two low-clipped.
  CHECK(loss.ratio_count == 2.0);
  CHECK(loss.clip_ratio_low == Approx(0.5));
  CHECK(loss.clip_ratio_high == 0.0);
  CHECK(loss.clip_ratio_low_min.value() == 0.0);
  // d/d logπ_t of −ρ0·A/2 with ρ0 = exp(mean of 3 log-ratios): −ρ0/6 on each of seq 0's tokens;
  // the clipped sequence has none.
  loss.loss.backward();
  torch::Tensor g = in.logprobs.grad();
  for (int64_t t = 0; t < 3; ++t) CHECK(g[0][t].item<double>() == Approx(-0.1514267));
  CHECK(g[1][0].item<double>() == 0.0);
  CHECK(g[1][1].item<double>() == 0.0);
}

TEST_CASE("policy loss: cispo weights are capped and detached", "[loss][cispo]") {
  // w = min(ρ, ε_high = 1.2), no gradient: 1.2 1.0 0.5 | 1.1 0.7. Per token −w·A·logπ:
  //   seq 0: −1.2·ln 1.5 = −0.4865581, 0, −0.5·ln 0.5 = 0.3465736
  //   seq 1: 2.2·ln 1.1 = 0.2096824, 1.4·ln 0.7 = −0.4993449
  // sum −0.4296470 over 5 tokens.
  PolicyLossInputs in = HandWorkedInputs();
  PolicyLossOptions options;
  options.loss_type = LossType::kCispo;
  options.epsilon_high = 1.2;
  auto loss = ComputePolicyLoss(in, options);
  CHECK(loss.loss.item<double>() == Approx(-0.0859294));
  CHECK(loss.cispo_clip_ratio == Approx(0.2));  // ρ = 1.5 > 1.2 with A > 0
  // The gradient is −w·A/5 on every token, the capped one included.
  loss.loss.backward();
  torch::Tensor g = in.logprobs.grad();
  CHECK(g[0][0].item<double>() == Approx(-0.24));
  CHECK(g[0][2].item<double>() == Approx(-0.1));
  CHECK(g[1][1].item<double>() == Approx(0.28));
  CHECK(g[1][2].item<double>() == 0.0);
}

TEST_CASE("policy loss: delta caps the unclipped ratio (two-sided clipping)", "[loss][delta]") {
  // One sequence, A = −1, ρ = 2.0 1.1 0.5, ε = 0.2. Without delta: −min(−2, −1.2) = 2,
  // 1.1, −min(−0.5, −0.8) = 0.8: mean 1.3. delta 1.3: the first is −min(−1.3, −1.2) = 1.3:
  // mean 3.2/3, and its gradient is 0 (the cap is flat) instead of −A·ρ/3 = 2/3.
  auto make = [] {
    PolicyLossInputs in;
    in.logprobs = torch::tensor({std::log(2.0), std::log(1.1), std::log(0.5)}, torch::kDouble).view({1, 3})
                      .requires_grad_(true);
    in.old_logprobs = torch::zeros({1, 3}, torch::kDouble);
    in.advantages = torch::tensor({-1.0}, torch::kDouble);
    in.mask = torch::ones({1, 3}, torch::kDouble);
    return in;
  };
  PolicyLossOptions options;
  PolicyLossInputs plain = make();
  auto without = ComputePolicyLoss(plain, options);
  CHECK(without.loss.item<double>() == Approx(1.3));
  without.loss.backward();
  CHECK(plain.logprobs.grad()[0][0].item<double>() == Approx(2.0 / 3.0));
  options.delta = 1.3;
  PolicyLossInputs capped = make();
  auto with = ComputePolicyLoss(capped, options);
  CHECK(with.loss.item<double>() == Approx(3.2 / 3.0));
  with.loss.backward();
  CHECK(capped.logprobs.grad()[0][0].item<double>() == 0.0);
  CHECK(capped.logprobs.grad()[0][1].item<double>() == Approx(1.1 / 3.0));
}

TEST_CASE("high-entropy mask: quantile over the masked tokens only", "[loss][entropy]") {
  // Masked entropies 0.1 0.3 0.5 0.7 0.9; the 0.5 quantile is 0.5 (with the padding's 5.0 it
  // would be 0.6 and drop the 0.5). Top quantile 0.5 keeps 0.5, 0.9 and 0.7.
  PolicyLossInputs in = HandWorkedInputs();
  torch::Tensor kept = HighEntropyMask(HandWorkedEntropy(), in.mask, 0.5);
  CHECK(kept.equal(torch::tensor({0.0, 1.0, 1.0, 0.0, 1.0, 0.0}, torch::kDouble).view({2, 3})));
  // Top 0.4: threshold at position 4·0.6 = 2.4: 0.5 + 0.4·0.2 = 0.58: only 0.9 and 0.7.
  CHECK(HighEntropyMask(HandWorkedEntropy(), in.mask, 0.4).sum().item<double>() == 2.0);
  CHECK(HighEntropyMask(HandWorkedEntropy(), torch::zeros({2, 3}, torch::kDouble), 0.5).sum().item<double>() == 0.0);
  // grpo on the kept tokens (denominators still the sequences' token counts):
  // seq 0 (−1 − 0.5)/3 = −0.5, seq 1 1.6/2 = 0.8: mean 0.15.
  PolicyLossOptions options;
  options.loss_type = LossType::kGrpo;
  options.top_entropy_quantile = 0.5;
  in.entropy = HandWorkedEntropy();
  auto loss = ComputePolicyLoss(in, options);
  CHECK(loss.loss.item<double>() == Approx(0.15));
  loss.loss.backward();
  CHECK(in.logprobs.grad()[1][0].item<double>() == 0.0);  // a low-entropy token: no gradient
  in.entropy = torch::Tensor();
  CHECK_THROWS_WITH(ComputePolicyLoss(in, options), Catch::Contains("needs entropy"));
}

TEST_CASE("policy loss: entropy bonus is the mean token entropy for every loss type", "[loss][entropy]") {
  // Mean masked entropy (0.1 + 0.5 + 0.9 + 0.3 + 0.7) / 5 = 0.5; coef 0.1.
  PolicyLossInputs in = HandWorkedInputs();
  in.entropy = HandWorkedEntropy().requires_grad_(true);
  PolicyLossOptions options;
  options.entropy_coef = 0.1;
  options.loss_type = LossType::kDapo;  // 0.22 − 0.05
  auto dapo = ComputePolicyLoss(in, options);
  CHECK(dapo.loss.item<double>() == Approx(0.17));
  dapo.loss.backward();
  CHECK(in.entropy.grad()[0][0].item<double>() == Approx(-0.02));  // −coef/5
  CHECK(in.entropy.grad()[1][2].item<double>() == 0.0);            // padding
  options.loss_type = LossType::kGrpo;  // 0.5 − 0.05
  CHECK(ComputePolicyLoss(in, options).loss.item<double>() == Approx(0.45));
  // With top_entropy_quantile 0.5 the bonus is over the kept tokens: mean(0.5, 0.9, 0.7) = 0.7,
  // so 0.15 − 0.07.
  options.top_entropy_quantile = 0.5;
  CHECK(ComputePolicyLoss(in, options).loss.item<double>() == Approx(0.08));
}

namespace {

// old − sampler per token: ln 2, −ln 2, ln 5 | ln 1.5, −ln 4, and 3.0 on the padding.
struct SamplerCase {
  torch::Tensor old = torch::zeros({2, 3}, torch::kDouble);
  torch::Tensor sampler = -torch::tensor({std::log(2.0), -std::log(2.0), std::log(5.0), std::log(1.5),
                                          -std::log(4.0), 3.0}, torch::kDouble).view({2, 3});
  torch::Tensor mask = torch::tensor({1.0, 1.0, 1.0, 1.0, 1.0, 0.0}, torch::kDouble).view({2, 3});
};

}  // namespace

TEST_CASE("rollout importance weights: the four modes", "[loss][rollout_is]") {
  SamplerCase c;
  RolloutImportanceOptions options;  // token_truncate, clip_max 3: 2 0.5 3 | 1.5 0.25 (1 on padding)
  auto truncated = RolloutImportanceWeights(c.old, c.sampler, c.mask, options);
  CHECK(torch::allclose(truncated.weights, torch::tensor({2.0, 0.5, 3.0, 1.5, 0.25, 1.0}, torch::kDouble).view({2, 3})));
  CHECK(truncated.weight.min == Approx(0.25));
  CHECK(truncated.weight.max == Approx(3.0));
  CHECK(truncated.weight.mean() == Approx(1.45));  // 7.25 / 5
  // |old − sampler| over the 5 tokens: (2 ln 2 + ln 5 + ln 1.5 + ln 4) / 5, max ln 5.
  CHECK(truncated.logp_diff.mean() == Approx(0.9574983));
  CHECK(truncated.logp_diff.max == Approx(1.6094379));
  options.clip_min = 0.4;  // 0.25 raised to 0.4
  CHECK(RolloutImportanceWeights(c.old, c.sampler, c.mask, options).weights[1][1].item<double>() == Approx(0.4));
  options.mode = RolloutIsMode::kTokenMask;  // outside [0.4, 3]: 0
  CHECK(torch::allclose(RolloutImportanceWeights(c.old, c.sampler, c.mask, options).weights,
                        torch::tensor({2.0, 0.5, 0.0, 1.5, 0.0, 1.0}, torch::kDouble).view({2, 3})));
  // Sequences: exp(ln 2 − ln 2 + ln 5) = 5 -> 3; exp(ln 1.5 − ln 4) = 0.375.
  options = {};
  options.mode = RolloutIsMode::kSequenceTruncate;
  auto sequence = RolloutImportanceWeights(c.old, c.sampler, c.mask, options);
  CHECK(torch::allclose(sequence.weights, torch::tensor({3.0, 0.375}, torch::kDouble).view({2, 1})));
  CHECK(sequence.weight.count == 2.0);
  CHECK(sequence.weight.mean() == Approx(1.6875));
  options.mode = RolloutIsMode::kSequenceMask;  // 5 > 3: the whole sequence weighs 0
  CHECK(torch::allclose(RolloutImportanceWeights(c.old, c.sampler, c.mask, options).weights,
                        torch::tensor({0.0, 0.375}, torch::kDouble).view({2, 1})));
}

TEST_CASE("policy loss: rollout importance weights scale the policy term", "[loss][rollout_is]") {
  // dapo with token weights 2 0.5 3 | 1.5 0.25: −1.2·2 − 1·0.5 − 0.5·3 + 2.2·1.5 + 1.6·0.25
  // = −0.7, over 5 tokens.
  PolicyLossInputs in = HandWorkedInputs();
  in.rollout_weights = torch::tensor({2.0, 0.5, 3.0, 1.5, 0.25, 1.0}, torch::kDouble).view({2, 3});
  PolicyLossOptions options;
  auto loss = ComputePolicyLoss(in, options);
  CHECK(loss.loss.item<double>() == Approx(-0.14));
  loss.loss.backward();
  CHECK(in.logprobs.grad()[0][1].item<double>() == Approx(-0.1));  // −A·ρ·w/5 = −0.5/5
  CHECK(in.logprobs.grad()[1][0].item<double>() == Approx(0.66));  // 2·1.1·1.5/5
  // Sequence weights 3 and 0.375 under grpo: (−2.7·3/3 + 3.8·0.375/2) / 2.
  PolicyLossInputs seq = HandWorkedInputs();
  seq.rollout_weights = torch::tensor({3.0, 0.375}, torch::kDouble).view({2, 1});
  options.loss_type = LossType::kGrpo;
  CHECK(ComputePolicyLoss(seq, options).loss.item<double>() == Approx(-0.99375));
}

// GRPO arithmetic against values worked out by hand (the comments show the working).
#include <cmath>
#include <limits>

#include <torch/types.h>
#include "tests/support/catch_torch.h"

#include "trainer/grpo_loss.h"

using rl::trainer::AdvantageOptions;
using rl::trainer::ComputeGroupAdvantages;
using rl::trainer::ComputePolicyLoss;
using rl::trainer::KlK3;
using rl::trainer::LossType;
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

#include <cmath>
#include <limits>

#include <torch/types.h>
#include "tests/support/catch_torch.h"

#include "trainer/optimizer.h"

using namespace rl::trainer;

TEST_CASE("learning-rate schedules", "[optimizer]") {
  OptimizerSection o;
  o.learning_rate = 1.0;
  o.warmup_ratio = 0.2;  // 10 steps: 2 of warm-up
  o.lr_scheduler_type = LrSchedule::kCosine;
  CHECK(ScheduledLearningRate(o, 0, 10) == Approx(0.5));
  CHECK(ScheduledLearningRate(o, 1, 10) == Approx(1.0));
  CHECK(ScheduledLearningRate(o, 2, 10) == Approx(1.0));  // progress 0
  CHECK(ScheduledLearningRate(o, 6, 10) == Approx(0.5));  // progress 4/8 -> ½(1 + cos π/2)
  o.lr_scheduler_type = LrSchedule::kLinear;
  CHECK(ScheduledLearningRate(o, 6, 10) == Approx(0.5));
  CHECK(ScheduledLearningRate(o, 9, 10) == Approx(1.0 / 8.0));
  o.lr_scheduler_type = LrSchedule::kConstant;
  CHECK(ScheduledLearningRate(o, 9, 10) == 1.0);
  o.warmup_ratio = 0;
  CHECK(ScheduledLearningRate(o, 0, 10) == 1.0);
}

TEST_CASE("AdamW step matches the update worked out by hand", "[optimizer]") {
  // One step from w = 1 with gradient g = 2: m̂ = g, v̂ = g², update lr·g/(|g| + eps) = lr,
  // decoupled decay w·(1 − lr·wd) first: 1·(1 − 0.1·0.5) − 0.1 = 0.85.
  torch::Tensor w = torch::ones({1}, torch::kDouble).requires_grad_(true);
  OptimizerSection o;
  o.learning_rate = 0.1;
  o.weight_decay = 0.5;
  o.adam_epsilon = 0;
  auto adamw = MakeAdamW({w}, o);
  w.mutable_grad() = torch::full({1}, 2.0, torch::kDouble);
  adamw.step();
  CHECK(w.item<double>() == Approx(0.85));
  SetLearningRate(adamw, 0.01);
  CHECK(static_cast<torch::optim::AdamWOptions&>(adamw.param_groups()[0].options()).lr() == 0.01);
}

TEST_CASE("InPlaceAdamW's steps are bit-identical to LibTorch's AdamW", "[optimizer]") {
  // One tensor longer than the step's 4 Mi-element slice (the last slice is partial), one small.
  torch::manual_seed(3);
  const std::vector<torch::Tensor> start = {torch::randn({(int64_t{1} << 22) + 5}), torch::randn({7, 3})};
  OptimizerSection o;
  o.learning_rate = 0.01;
  o.weight_decay = 0.1;
  auto clone = [&] {
    std::vector<torch::Tensor> out;
    for (const torch::Tensor& t : start) out.push_back(t.clone().requires_grad_(true));
    return out;
  };
  std::vector<torch::Tensor> ours = clone(), theirs = clone();
  InPlaceAdamW in_place = MakeAdamW(ours, o);
  torch::optim::AdamW reference(theirs, torch::optim::AdamWOptions(o.learning_rate).weight_decay(o.weight_decay));
  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < start.size(); ++i) {
      torch::Tensor g = torch::randn_like(start[i]);
      ours[i].mutable_grad() = g.clone();
      theirs[i].mutable_grad() = g.clone();
    }
    in_place.step();
    reference.step();
  }
  for (size_t i = 0; i < start.size(); ++i) {
    CHECK(torch::equal(ours[i], theirs[i]));
    CHECK_FALSE(torch::equal(ours[i], start[i]));
  }
}

TEST_CASE("gradient clipping and the non-finite guard", "[optimizer]") {
  torch::Tensor a = torch::zeros({2}).requires_grad_(true);
  torch::Tensor b = torch::zeros({1}).requires_grad_(true);
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  GradientCheck check = ClipGradients({a, b}, 1.0);
  CHECK(check.norm == Approx(5.0));
  CHECK(check.finite);
  CHECK(a.grad()[0].item<double>() == Approx(0.6).epsilon(1e-4));
  CHECK(b.grad()[0].item<double>() == Approx(0.8).epsilon(1e-4));

  b.mutable_grad() = torch::tensor({std::numeric_limits<float>::infinity()});
  CHECK_FALSE(ClipGradients({a, b}, 1.0).finite);

  NonFiniteGuard guard(2);
  CHECK(guard.Admit(true));
  CHECK_FALSE(guard.Admit(false));
  CHECK(guard.skipped() == 1);
  CHECK_THROWS_AS(guard.Admit(false), NonFiniteError);
}

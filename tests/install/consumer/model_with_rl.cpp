// Uses the installed LibTorch side: a tiny random decoder's forward pass (rl::model) and GRPO's
// group advantages (rl::trainer); exits 0 only when the shapes and values are the expected ones.
#include <cstdio>

#include <rl/model/decoder.h>
#include <trainer/grpo_loss.h>

int main() {
  torch::manual_seed(0);
  rl::model::Decoder model(rl::model::DecoderConfig::Tiny(/*vocab_size=*/64));
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = torch::arange(6, torch::kInt64).view({1, 6});
  const torch::Tensor logits = model->forward(ids, /*positions=*/{}, /*key_mask=*/{});
  // Two groups of two: the better completion of each gets the positive advantage.
  const rl::trainer::GroupAdvantages advantages = rl::trainer::ComputeGroupAdvantages(
      torch::tensor({1.0, 0.0, 0.0, 2.0}, torch::kFloat64), /*group_size=*/2, {});
  const torch::Tensor a = advantages.advantages;
  const bool ok = logits.sizes() == torch::IntArrayRef({1, 6, 64}) &&
                  logits.isfinite().all().item<bool>() && a.size(0) == 4 &&
                  a[0].item<double>() > 0 && a[1].item<double>() < 0 &&
                  a[2].item<double>() < 0 && a[3].item<double>() > 0;
  std::printf("model_with_rl: %s\n", ok ? "ok" : "WRONG RESULTS");
  return ok ? 0 : 1;
}

#include "trainer/logprobs.h"

#include <algorithm>
#include <stdexcept>

#include "rl/model/decoder.h"

namespace rl::trainer {

TokenBatch MakeTokenBatch(std::span<const std::vector<int32_t>> prompts,
                          std::span<const std::vector<int32_t>> completions) {
  if (prompts.size() != completions.size() || prompts.empty()) {
    throw std::invalid_argument("MakeTokenBatch: need as many prompts as completions, at least one");
  }
  const int64_t rows = static_cast<int64_t>(prompts.size());
  int64_t width_p = 0, width_c = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) throw std::invalid_argument("MakeTokenBatch: an empty prompt");
    width_p = std::max<int64_t>(width_p, static_cast<int64_t>(prompts[i].size()));
    width_c = std::max<int64_t>(width_c, static_cast<int64_t>(completions[i].size()));
  }
  if (width_c == 0) throw std::invalid_argument("MakeTokenBatch: every completion is empty");

  TokenBatch b;
  b.prompt_width = width_p;
  b.input_ids = torch::zeros({rows, width_p + width_c}, torch::kInt64);
  b.positions = torch::zeros({rows, width_p + width_c}, torch::kInt64);
  b.key_mask = torch::zeros({rows, width_p + width_c}, torch::kBool);
  b.completion_ids = torch::zeros({rows, width_c}, torch::kInt64);
  b.completion_mask = torch::zeros({rows, width_c}, torch::kFloat32);
  auto ids = b.input_ids.accessor<int64_t, 2>();
  auto pos = b.positions.accessor<int64_t, 2>();
  auto mask = b.key_mask.accessor<bool, 2>();
  auto cids = b.completion_ids.accessor<int64_t, 2>();
  auto cmask = b.completion_mask.accessor<float, 2>();
  for (int64_t r = 0; r < rows; ++r) {
    const auto& prompt = prompts[static_cast<size_t>(r)];
    const auto& completion = completions[static_cast<size_t>(r)];
    const int64_t pad = width_p - static_cast<int64_t>(prompt.size());
    int64_t position = 0;
    for (size_t j = 0; j < prompt.size(); ++j) {
      const int64_t col = pad + static_cast<int64_t>(j);
      ids[r][col] = prompt[j];
      pos[r][col] = position++;
      mask[r][col] = true;
    }
    for (size_t j = 0; j < completion.size(); ++j) {
      const int64_t col = width_p + static_cast<int64_t>(j);
      ids[r][col] = completion[j];
      pos[r][col] = position++;
      mask[r][col] = true;
      cids[r][static_cast<int64_t>(j)] = completion[j];
      cmask[r][static_cast<int64_t>(j)] = 1.0f;
    }
  }
  return b;
}

TokenBatch SelectRows(const TokenBatch& batch, const torch::Tensor& rows) {
  TokenBatch out;
  torch::Tensor key_mask = batch.key_mask.index_select(0, rows);
  torch::Tensor completion_mask = batch.completion_mask.index_select(0, rows);
  // Trim columns no selected row uses: leading prompt padding and trailing completion padding.
  torch::Tensor prompt_real = key_mask.narrow(1, 0, batch.prompt_width).any(0);
  const int64_t first = prompt_real.to(torch::kInt64).argmax().item<int64_t>();
  const int64_t used_c = std::max<int64_t>(completion_mask.sum(1).max().item<int64_t>(), 1);
  const int64_t keep_p = batch.prompt_width - first;
  out.prompt_width = keep_p;
  out.input_ids = batch.input_ids.index_select(0, rows).narrow(1, first, keep_p + used_c);
  out.positions = batch.positions.index_select(0, rows).narrow(1, first, keep_p + used_c);
  out.key_mask = key_mask.narrow(1, first, keep_p + used_c);
  out.completion_ids = batch.completion_ids.index_select(0, rows).narrow(1, 0, used_c);
  out.completion_mask = completion_mask.narrow(1, 0, used_c);
  return out;
}

CompletionLogprobs ComputeCompletionLogprobs(model::DecoderImpl& model, const TokenBatch& batch,
                                             double temperature, int64_t chunk, bool with_entropy) {
  const double t = temperature > 0 ? temperature : 1.0;
  torch::Tensor hidden = model.Hidden(batch.input_ids, batch.positions, batch.key_mask);  // [B,P+C,H]
  const int64_t width_c = batch.completion_ids.size(1);
  torch::Tensor predicting = hidden.narrow(1, batch.prompt_width - 1, width_c);  // [B,C,H]
  std::vector<torch::Tensor> logprobs, entropies;
  for (int64_t start = 0; start < width_c; start += chunk) {
    const int64_t len = std::min(chunk, width_c - start);
    torch::Tensor logits = model.Logits(predicting.narrow(1, start, len));  // [B,len,V] float32
    if (t != 1.0) logits = logits / t;
    torch::Tensor log_softmax = torch::log_softmax(logits, -1);
    torch::Tensor targets = batch.completion_ids.narrow(1, start, len).unsqueeze(-1);
    logprobs.push_back(log_softmax.gather(-1, targets).squeeze(-1));
    if (with_entropy) {
      torch::NoGradGuard no_grad;
      entropies.push_back(-(log_softmax.exp() * log_softmax).sum(-1));
    }
  }
  CompletionLogprobs out;
  out.logprobs = torch::cat(logprobs, 1) * batch.completion_mask;
  if (with_entropy) out.entropy = torch::cat(entropies, 1).detach();
  return out;
}

}  // namespace rl::trainer

// Batched generation on a tiny random Qwen2 with a trained tokenizer: logprobs against a full
// recompute, determinism, batching and padding invariance, stop conditions, callbacks.
#include <algorithm>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <torch/types.h>
#include <torch/utils.h>

#include "tests/rollout/tiny_policy.h"

#include "tests/support/catch_torch.h"

#include "rollout/generate.h"

namespace rr = rl::rollout;
using rl::rollout::testing::TinyModel;
using rl::rollout::testing::TinyTokenizer;
using rl::rollout::testing::Policy;
using rl::rollout::testing::SharedPolicy;

namespace {

std::vector<rr::SequenceRequest> Requests(const rl::text::Tokenizer& tokenizer,
                                          const std::vector<std::string>& prompts) {
  std::vector<rr::SequenceRequest> out;
  for (size_t i = 0; i < prompts.size(); ++i)
    out.push_back({tokenizer.Encode(prompts[i]), static_cast<int64_t>(i), 0});
  return out;
}

const std::vector<std::string> kPrompts = {
    "What is 1/2 + 1/4?",
    "the lazy dog",
    "Compute 7 * 8 and give the answer in the answer tag. Think step by step.",
    "<think>",
};

rr::Completion GenerateOne(Policy& p, const rr::SequenceRequest& request,
                           const rr::SamplingParams& params) {
  return rr::Generate(*p.model, *p.tokenizer, std::span(&request, 1), params).at(0);
}

// log_softmax(logits / T) of each completion token, from one forward pass over the whole
// sequence without a cache.
std::vector<float> RecomputeLogprobs(Policy& p, const std::vector<int32_t>& prompt,
                                     const std::vector<int32_t>& completion, double temperature) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> ids(prompt.begin(), prompt.end());
  ids.insert(ids.end(), completion.begin(), completion.end());
  torch::Tensor input = torch::tensor(ids, torch::kLong).view({1, -1});
  torch::Tensor logprobs = (p.model->forward(input, {}, {})[0] / temperature).log_softmax(-1);
  std::vector<float> out;
  for (size_t i = 0; i < completion.size(); ++i)
    out.push_back(logprobs[prompt.size() - 1 + i][completion[i]].item<float>());
  return out;
}

}  // namespace

TEST_CASE("logprobs equal log_softmax at the sampling temperature of a full recompute") {
  Policy& p = SharedPolicy();
  for (double temperature : {0.6, 1.0, 1.5}) {
    rr::SamplingParams params;
    params.temperature = temperature;
    params.top_k = 20;  // filters change what is drawn, not how it is scored
    params.top_p = 0.9;
    params.max_new_tokens = 12;
    params.seed = 5;
    auto requests = Requests(*p.tokenizer, kPrompts);
    auto completions = rr::Generate(*p.model, *p.tokenizer, requests, params);
    REQUIRE(completions.size() == kPrompts.size());
    for (size_t i = 0; i < completions.size(); ++i) {
      const rr::Completion& c = completions[i];
      REQUIRE(c.token_ids.size() == 12);
      REQUIRE(c.logprobs.size() == c.token_ids.size());
      std::vector<float> expected =
          RecomputeLogprobs(p, requests[i].prompt_ids, c.token_ids, temperature);
      for (size_t t = 0; t < expected.size(); ++t)
        CHECK(c.logprobs[t] == Approx(expected[t]).margin(1e-4));
    }
  }
}

TEST_CASE("repetition_penalty reads each row's prompt and the tokens it generated so far") {
  // Greedy: every token must be the argmax of a full recompute's logits penalised over the
  // prompt and the completion before it (ApplyRepetitionPenalty is checked by hand in
  // sampling_test), its logprob that of the penalised logits.
  Policy& p = SharedPolicy();
  rr::SamplingParams params;
  params.temperature = 0;
  params.repetition_penalty = 1.8;
  params.max_new_tokens = 10;
  auto requests = Requests(*p.tokenizer, kPrompts);
  auto penalised = rr::Generate(*p.model, *p.tokenizer, requests, params);
  params.repetition_penalty = 1.0;
  auto plain = rr::Generate(*p.model, *p.tokenizer, requests, params);
  torch::NoGradGuard no_grad;
  int differing = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const std::vector<int32_t>& prompt = requests[i].prompt_ids;
    const std::vector<int32_t>& completion = penalised[i].token_ids;
    std::vector<int64_t> ids(prompt.begin(), prompt.end());
    ids.insert(ids.end(), completion.begin(), completion.end());
    torch::Tensor logits = p.model->forward(torch::tensor(ids, torch::kLong).view({1, -1}), {}, {})[0];
    for (size_t t = 0; t < completion.size(); ++t) {
      const std::vector<rr::TokenHistory> history = {{prompt, std::span(completion).first(t)}};
      torch::Tensor row = rr::ApplyRepetitionPenalty(logits[prompt.size() - 1 + t].unsqueeze(0), 1.8, history)[0];
      INFO("request " << i << ", token " << t);
      CHECK(completion[t] == row.argmax().item<int64_t>());
      CHECK(penalised[i].logprobs[t] == Approx(row.log_softmax(-1)[completion[t]].item<float>()).margin(1e-4));
    }
    differing += penalised[i].token_ids != plain[i].token_ids;
  }
  CHECK(differing > 0);  // the tiny model repeats itself without the penalty
}

TEST_CASE("the same seed gives the same completions; another seed, others") {
  Policy& p = SharedPolicy();
  rr::SamplingParams params;
  params.max_new_tokens = 16;
  params.seed = 11;
  auto requests = Requests(*p.tokenizer, kPrompts);
  auto a = rr::Generate(*p.model, *p.tokenizer, requests, params);
  auto b = rr::Generate(*p.model, *p.tokenizer, requests, params);
  params.seed = 12;
  auto c = rr::Generate(*p.model, *p.tokenizer, requests, params);
  int differing = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].token_ids == b[i].token_ids);
    CHECK(a[i].logprobs == b[i].logprobs);
    CHECK(a[i].text == b[i].text);
    differing += a[i].token_ids != c[i].token_ids;
  }
  CHECK(differing > 0);
}

TEST_CASE("greedy batched equals unbatched exactly, whatever the padding") {
  Policy& p = SharedPolicy();
  rr::SamplingParams params;
  params.temperature = 0;
  params.max_new_tokens = 16;
  auto requests = Requests(*p.tokenizer, kPrompts);
  auto batched = rr::Generate(*p.model, *p.tokenizer, requests, params);
  for (size_t i = 0; i < requests.size(); ++i) {
    rr::Completion alone = GenerateOne(p, requests[i], params);
    CHECK(alone.token_ids == batched[i].token_ids);
    CHECK(alone.text == batched[i].text);
    for (size_t t = 0; t < alone.logprobs.size(); ++t)
      CHECK(alone.logprobs[t] == Approx(batched[i].logprobs[t]).margin(1e-4));
  }
}

TEST_CASE("a sampled row does not depend on the rows it is batched with") {
  Policy& p = SharedPolicy();
  rr::SamplingParams params;
  params.temperature = 1.0;
  params.max_new_tokens = 16;
  params.seed = 3;
  auto requests = Requests(*p.tokenizer, kPrompts);
  auto batched = rr::Generate(*p.model, *p.tokenizer, requests, params);
  // The shortest prompt sits behind the most left padding in the batch; alone it has none.
  for (size_t i : {size_t{3}, size_t{1}}) {
    rr::Completion alone = GenerateOne(p, requests[i], params);
    CHECK(alone.token_ids == batched[i].token_ids);
    REQUIRE(alone.logprobs.size() == batched[i].logprobs.size());
    for (size_t t = 0; t < alone.logprobs.size(); ++t)
      CHECK(alone.logprobs[t] == Approx(batched[i].logprobs[t]).margin(1e-4));
  }
  // Reversing the batch order changes nothing either.
  std::vector<rr::SequenceRequest> reversed(requests.rbegin(), requests.rend());
  auto out = rr::Generate(*p.model, *p.tokenizer, reversed, params);
  for (size_t i = 0; i < out.size(); ++i)
    CHECK(out[i].token_ids == batched[requests.size() - 1 - i].token_ids);
}

TEST_CASE("a group sharing one prompt samples like separate rows") {
  Policy& p = SharedPolicy();
  rr::SamplingParams params;
  params.max_new_tokens = 10;
  params.seed = 9;
  std::vector<rr::SequenceRequest> group;
  for (int64_t j = 0; j < 4; ++j) group.push_back({p.tokenizer->Encode(kPrompts[0]), 0, j});
  group.push_back({p.tokenizer->Encode(kPrompts[1]), 1, 0});
  auto out = rr::Generate(*p.model, *p.tokenizer, group, params);
  std::set<std::vector<int32_t>> distinct;
  for (size_t i = 0; i < group.size(); ++i) {
    CHECK(out[i].prompt_index == group[i].prompt_index);
    CHECK(out[i].sample_index == group[i].sample_index);
    CHECK(GenerateOne(p, group[i], params).token_ids == out[i].token_ids);
    if (i < 4) distinct.insert(out[i].token_ids);
  }
  CHECK(distinct.size() > 1);  // the group's samples differ from each other
}

TEST_CASE("max_new_tokens ends a completion with finish reason length") {
  Policy& p = SharedPolicy();
  rr::SamplingParams params;
  params.max_new_tokens = 7;
  auto out = rr::Generate(*p.model, *p.tokenizer, Requests(*p.tokenizer, kPrompts), params);
  for (const rr::Completion& c : out) {
    CHECK(c.finish_reason == rr::FinishReason::kLength);
    CHECK(c.token_ids.size() == 7);
    CHECK(c.text == p.tokenizer->Decode(c.token_ids, /*skip_special_tokens=*/true));
  }
  CHECK(rr::ToString(rr::FinishReason::kLength) == "length");
  CHECK(rr::ToString(rr::FinishReason::kStop) == "stop");
}

TEST_CASE("an EOS id stops its row; the other rows go on; callbacks fire once each") {
  Policy& p = SharedPolicy();
  rr::SamplingParams params;
  params.temperature = 0;
  params.max_new_tokens = 20;
  auto requests = Requests(*p.tokenizer, kPrompts);
  auto free_run = rr::Generate(*p.model, *p.tokenizer, requests, params);
  // Row 0's fourth greedy token becomes the EOS: row 0 stops there, others when they emit it.
  int32_t eos = free_run[0].token_ids[3];
  params.eos_ids = {eos};
  std::vector<int64_t> finished_order;
  auto out = rr::Generate(*p.model, *p.tokenizer, requests, params,
                          [&](const rr::Completion& c) {
                            finished_order.push_back(c.prompt_index);
                            CHECK(c.token_ids.size() == c.logprobs.size());
                          });
  REQUIRE(finished_order.size() == requests.size());
  std::vector<int64_t> sorted_order = finished_order;
  std::sort(sorted_order.begin(), sorted_order.end());
  CHECK(sorted_order == std::vector<int64_t>{0, 1, 2, 3});
  for (size_t i = 0; i < out.size(); ++i) {
    const std::vector<int32_t>& full = free_run[i].token_ids;
    auto first_eos = std::find(full.begin(), full.end(), eos);
    if (first_eos == full.end()) {
      CHECK(out[i].finish_reason == rr::FinishReason::kLength);
      CHECK(out[i].token_ids == full);
    } else {
      CHECK(out[i].finish_reason == rr::FinishReason::kStop);
      CHECK(out[i].token_ids == std::vector<int32_t>(full.begin(), first_eos + 1));
    }
  }
  CHECK(out[0].token_ids.size() <= 4);
  // Rows finish in order of their length: a row's callback comes no later than a longer row's.
  for (size_t k = 1; k < finished_order.size(); ++k)
    CHECK(out[finished_order[k - 1]].token_ids.size() <= out[finished_order[k]].token_ids.size());
}

TEST_CASE("rows finishing at different steps leave the others unchanged") {
  // Many EOS ids make rows stop at scattered steps, so the batch is compacted on the way.
  Policy& p = SharedPolicy();
  rr::SamplingParams params;
  params.max_new_tokens = 24;
  params.seed = 21;
  for (int64_t id = 0; id < 40; ++id) params.eos_ids.push_back(id);
  std::vector<rr::SequenceRequest> requests;
  for (int64_t j = 0; j < 3; ++j)
    for (size_t i = 0; i < kPrompts.size(); ++i)
      requests.push_back({p.tokenizer->Encode(kPrompts[i]), static_cast<int64_t>(i), j});
  auto batched = rr::Generate(*p.model, *p.tokenizer, requests, params);
  std::set<size_t> lengths;
  for (size_t r = 0; r < requests.size(); ++r) {
    rr::Completion alone = GenerateOne(p, requests[r], params);
    CHECK(alone.token_ids == batched[r].token_ids);
    CHECK(alone.finish_reason == batched[r].finish_reason);
    lengths.insert(batched[r].token_ids.size());
  }
  CHECK(lengths.size() >= 3);  // the rows really did stop at different steps
}

TEST_CASE("a stop string ends the row; the text keeps or drops it; ids stay consistent") {
  Policy& p = SharedPolicy();
  rr::SamplingParams params;
  params.temperature = 0;
  params.max_new_tokens = 24;
  rr::SequenceRequest request{p.tokenizer->Encode(kPrompts[2]), 0, 0};
  rr::Completion free_run = GenerateOne(p, request, params);
  const std::string& text = free_run.text;
  REQUIRE(text.size() >= 8);
  std::string stop = text.substr(text.size() / 2, 3);
  size_t at = text.find(stop);

  params.stop_strings = {stop};
  rr::Completion kept = GenerateOne(p, request, params);
  CHECK(kept.finish_reason == rr::FinishReason::kStop);
  CHECK(kept.text == text.substr(0, at + stop.size()));
  // The ids run through the token that completed the stop string, and no further.
  REQUIRE(kept.token_ids.size() <= free_run.token_ids.size());
  CHECK(std::equal(kept.token_ids.begin(), kept.token_ids.end(), free_run.token_ids.begin()));
  std::string decoded = p.tokenizer->Decode(kept.token_ids, true);
  CHECK(decoded.substr(0, kept.text.size()) == kept.text);
  std::vector<int32_t> shorter(kept.token_ids.begin(), kept.token_ids.end() - 1);
  CHECK(p.tokenizer->Decode(shorter, true).find(stop) == std::string::npos);

  params.include_stop_string = false;
  rr::Completion dropped = GenerateOne(p, request, params);
  CHECK(dropped.text == text.substr(0, at));
  CHECK(dropped.token_ids == kept.token_ids);
}

TEST_CASE("the text follows skip_special_tokens; the ids do not") {
  Policy& p = SharedPolicy();
  rr::SamplingParams params;
  params.temperature = 50;  // near-uniform: special tokens come up among 16 x 30 draws
  params.max_new_tokens = 30;
  params.seed = 4;
  std::vector<rr::SequenceRequest> requests;
  for (int64_t j = 0; j < 16; ++j) requests.push_back({p.tokenizer->Encode(kPrompts[1]), 0, j});
  auto skipped = rr::Generate(*p.model, *p.tokenizer, requests, params);
  params.skip_special_tokens = false;
  auto kept = rr::Generate(*p.model, *p.tokenizer, requests, params);
  int with_specials = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    CHECK(kept[i].token_ids == skipped[i].token_ids);
    CHECK(kept[i].text == p.tokenizer->Decode(kept[i].token_ids, false));
    CHECK(skipped[i].text == p.tokenizer->Decode(skipped[i].token_ids, true));
    with_specials += kept[i].text != skipped[i].text;
  }
  CHECK(with_specials > 0);
}

TEST_CASE("bad requests are refused with the row named") {
  Policy& p = SharedPolicy();
  rr::SamplingParams params;
  std::vector<rr::SequenceRequest> empty_prompt = {{{1, 2}, 0, 0}, {{}, 1, 0}};
  CHECK_THROWS_WITH(rr::Generate(*p.model, *p.tokenizer, empty_prompt, params),
                    Catch::Contains("request 1") && Catch::Contains("empty"));
  std::vector<rr::SequenceRequest> out_of_vocab = {{{1, 100000}, 0, 0}};
  CHECK_THROWS_WITH(rr::Generate(*p.model, *p.tokenizer, out_of_vocab, params),
                    Catch::Contains("vocabulary"));
  params.temperature = -1;
  std::vector<rr::SequenceRequest> fine = {{{1, 2}, 0, 0}};
  CHECK_THROWS_WITH(rr::Generate(*p.model, *p.tokenizer, fine, params),
                    Catch::Contains("temperature"));
  CHECK(rr::Generate(*p.model, *p.tokenizer, {}, rr::SamplingParams{}).empty());
}

// Continuous batching against static batching on the same requests: 3 samples of 4 prompts
// (2 to 19 tokens) in 3 slots, lengths scattered by 40 EOS ids and a stop string, so that
// slots are refilled at many steps and the cache is compacted; then with a fifth, longer prompt
// (40 tokens) that enters a compacted cache shorter than itself, so every row moves right. In
// a float64 model the rounding that batch composition changes stays far below float32 logits'.
TEST_CASE("continuous batching samples what static batching samples, greedy and sampled") {
  Policy& p = SharedPolicy();
  rl::model::Decoder model64 = rl::model::CloneDecoder(*p.model, torch::kFloat64, torch::kCPU);
  model64->eval();
  std::vector<std::string> prompts = kPrompts;
  for (bool longer : {false, true}) {
    if (longer) prompts.push_back(kPrompts[2] + " " + kPrompts[0] + " " + kPrompts[1]);
    // Sample-major: a greedy group's samples are equal, and neighbours must differ in length.
    std::vector<rr::SequenceRequest> requests;
    for (int64_t j = 0; j < 3; ++j)
      for (size_t i = 0; i < prompts.size(); ++i)
        requests.push_back({p.tokenizer->Encode(prompts[i]), static_cast<int64_t>(i), j});
    for (double temperature : {0.0, 1.0}) {
      INFO("prompts " << prompts.size() << ", temperature " << temperature);
      rr::SamplingParams params;
      params.temperature = temperature;
      params.max_new_tokens = 16;
      params.seed = 5;
      params.stop_strings = {"</"};
      for (int64_t id = 0; id < 40; ++id) params.eos_ids.push_back(id);
      std::vector<rr::Completion> fixed;  // static micro-batches of 3
      for (size_t begin = 0; begin < requests.size(); begin += 3) {
        for (rr::Completion& c : rr::Generate(*model64, *p.tokenizer, std::span(requests).subspan(begin, 3), params))
          fixed.push_back(std::move(c));
      }
      std::vector<size_t> order;  // request indices in the order they finished
      auto continuous = rr::Generate(
          *model64, *p.tokenizer, requests, params,
          [&](const rr::Completion& c) { order.push_back(c.sample_index * prompts.size() + c.prompt_index); },
          /*max_batch=*/3);
      REQUIRE(continuous.size() == fixed.size());
      std::set<size_t> lengths;
      for (size_t r = 0; r < requests.size(); ++r) {
        INFO("request " << r);
        CHECK(continuous[r].prompt_index == requests[r].prompt_index);
        CHECK(continuous[r].sample_index == requests[r].sample_index);
        CHECK(continuous[r].token_ids == fixed[r].token_ids);
        CHECK(continuous[r].text == fixed[r].text);
        CHECK(continuous[r].finish_reason == fixed[r].finish_reason);
        REQUIRE(continuous[r].logprobs.size() == fixed[r].logprobs.size());
        for (size_t t = 0; t < fixed[r].logprobs.size(); ++t)
          CHECK(continuous[r].logprobs[t] == Approx(fixed[r].logprobs[t]).margin(1e-6));
        lengths.insert(fixed[r].token_ids.size());
      }
      CHECK(lengths.size() >= 3);  // the rows really did stop at different steps
      CHECK(order.size() == requests.size());
      CHECK_FALSE(std::is_sorted(order.begin(), order.end()));  // later requests overtook earlier ones
    }
  }
}

TEST_CASE("continuous batching with one slot equals generating each request alone") {
  Policy& p = SharedPolicy();
  rr::SamplingParams params;
  params.max_new_tokens = 12;
  params.seed = 11;
  for (int64_t id = 0; id < 30; ++id) params.eos_ids.push_back(id);
  auto requests = Requests(*p.tokenizer, kPrompts);
  auto one_slot = rr::Generate(*p.model, *p.tokenizer, requests, params, {}, /*max_batch=*/1);
  for (size_t r = 0; r < requests.size(); ++r)
    CHECK(one_slot[r].token_ids == GenerateOne(p, requests[r], params).token_ids);
  CHECK_THROWS_WITH(rr::Generate(*p.model, *p.tokenizer, requests, params, {}, -1), Catch::Contains("max_batch"));
}

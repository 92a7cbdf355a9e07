#include "rollout/generate.h"

#include <algorithm>
#include <map>
#include <memory>
#include <stdexcept>

#include <ATen/ATen.h>

#include "rl/model/decoder.h"
#include "rl/text/tokenizer.h"
#include "rollout/stop_strings.h"

namespace rl::rollout {

std::string_view ToString(FinishReason reason) {
  return reason == FinishReason::kStop ? "stop" : "length";
}

namespace {

// One row of the batch while it is being generated.
struct RowState {
  Completion completion;
  std::unique_ptr<text::StreamDecoder> decoder;
  uint64_t stream = 0;
  int64_t prompt_length = 0;
  bool done = false;
};

uint64_t StreamOf(const SequenceRequest& request, int64_t first_stream) {
  return (static_cast<uint64_t>(first_stream + request.prompt_index) << 32) ^
         static_cast<uint64_t>(request.sample_index);
}

void CheckRequests(std::span<const SequenceRequest> requests, int64_t vocab_size) {
  for (size_t r = 0; r < requests.size(); ++r) {
    const SequenceRequest& request = requests[r];
    if (request.prompt_ids.empty())
      throw std::invalid_argument("generate: request " + std::to_string(r) +
                                  " has an empty prompt");
    for (int32_t id : request.prompt_ids)
      if (id < 0 || id >= vocab_size)
        throw std::invalid_argument("generate: request " + std::to_string(r) +
                                    " has token id " + std::to_string(id) +
                                    " outside the model's vocabulary [0, " +
                                    std::to_string(vocab_size) + ")");
    if (request.prompt_index < 0 || request.sample_index < 0)
      throw std::invalid_argument("generate: request " + std::to_string(r) +
                                  " has a negative prompt_index or sample_index");
  }
}

// Left-padded prompts: ids [U, L], positions [U, L] (first real token at 0), and the key
// mask [U, L + extra] (true on real prompt tokens; decode steps switch their columns on).
struct PaddedBatch {
  at::Tensor ids, positions, key_mask;
  int64_t length = 0;
};

PaddedBatch LeftPad(const std::vector<const std::vector<int32_t>*>& prompts, int64_t extra,
                    at::Device device) {
  int64_t batch = static_cast<int64_t>(prompts.size());
  int64_t length = 0;
  for (const std::vector<int32_t>* p : prompts)
    length = std::max<int64_t>(length, static_cast<int64_t>(p->size()));
  at::Tensor ids = at::zeros({batch, length}, at::kLong);
  at::Tensor positions = at::zeros({batch, length}, at::kLong);
  at::Tensor key_mask = at::zeros({batch, length + extra}, at::kBool);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto pos_a = positions.accessor<int64_t, 2>();
  auto mask_a = key_mask.accessor<bool, 2>();
  for (int64_t b = 0; b < batch; ++b) {
    const std::vector<int32_t>& prompt = *prompts[b];
    int64_t pad = length - static_cast<int64_t>(prompt.size());
    for (int64_t t = 0; t < static_cast<int64_t>(prompt.size()); ++t) {
      ids_a[b][pad + t] = prompt[t];
      pos_a[b][pad + t] = t;
      mask_a[b][pad + t] = true;
    }
  }
  return {ids.to(device), positions.to(device), key_mask.to(device), length};
}

at::Tensor IndexTensor(const std::vector<int64_t>& index, at::Device device) {
  return at::tensor(at::ArrayRef<int64_t>(index)).to(device);
}

bool IsEos(const SamplingParams& params, int64_t token) {
  return std::find(params.eos_ids.begin(), params.eos_ids.end(), token) != params.eos_ids.end();
}

// Appends one sampled token to a row; marks the row done when it stops.
void Advance(RowState& row, int32_t token, float logprob, const SamplingParams& params,
             const StopStringMatcher& matcher) {
  Completion& c = row.completion;
  c.token_ids.push_back(token);
  c.logprobs.push_back(logprob);
  size_t old_size = c.text.size();
  c.text += row.decoder->Push(token);
  if (IsEos(params, token)) {
    c.text += row.decoder->Flush();
    c.finish_reason = FinishReason::kStop;
    row.done = true;
  } else if (auto hit = matcher.FindNew(c.text, old_size)) {
    c.text.resize(params.include_stop_string ? hit->end : hit->begin);
    c.finish_reason = FinishReason::kStop;
    row.done = true;
  } else if (static_cast<int64_t>(c.token_ids.size()) >= params.max_new_tokens) {
    c.text += row.decoder->Flush();
    c.finish_reason = FinishReason::kLength;
    row.done = true;
  }
}

// The running batch: slot s of the KV cache and of the key mask holds row slot_rows[s].
struct Batch {
  std::vector<int64_t> slot_rows;
  at::Tensor key_mask;  // [slots, prompt length + max_new_tokens]
  int64_t prompt_length = 0;
};

// Samples the next token of every running row from `logits` [slots, V].
void SampleStep(const at::Tensor& logits, const Batch& batch, std::vector<RowState>& rows,
                int64_t step, const SamplingParams& params, const StopStringMatcher& matcher,
                const CompletionCallback& on_finished) {
  std::vector<int64_t> active_slots;
  std::vector<double> uniforms;
  for (size_t s = 0; s < batch.slot_rows.size(); ++s) {
    const RowState& row = rows[batch.slot_rows[s]];
    if (row.done) continue;
    active_slots.push_back(static_cast<int64_t>(s));
    uniforms.push_back(CounterUniform(params.seed, row.stream, static_cast<uint64_t>(step)));
  }
  at::Tensor picked = logits.index_select(0, IndexTensor(active_slots, logits.device()));
  SampledTokens next = SampleTokens(picked, params, uniforms);
  at::Tensor tokens = next.tokens.to(at::kCPU).to(at::kInt).contiguous();
  at::Tensor logprobs = next.logprobs.to(at::kCPU).to(at::kFloat).contiguous();
  const int32_t* token_data = tokens.data_ptr<int32_t>();
  const float* logprob_data = logprobs.data_ptr<float>();
  for (size_t i = 0; i < active_slots.size(); ++i) {
    RowState& row = rows[batch.slot_rows[active_slots[i]]];
    Advance(row, token_data[i], logprob_data[i], params, matcher);
    if (row.done && on_finished) on_finished(row.completion);
  }
}

// Prefills the distinct prompts once and repeats their cache rows for identical prompts (a
// GRPO group shares its prompt). Returns the last prompt position's logits, one row per slot.
at::Tensor Prefill(model::DecoderImpl& model, std::span<const SequenceRequest> requests,
                   int64_t max_new_tokens, std::unique_ptr<model::KvCache>& cache, Batch& batch) {
  std::map<std::vector<int32_t>, int64_t> distinct;
  std::vector<const std::vector<int32_t>*> prompts;
  std::vector<int64_t> slot_to_prompt;
  for (const SequenceRequest& r : requests) {
    auto [it, inserted] = distinct.emplace(r.prompt_ids, static_cast<int64_t>(prompts.size()));
    if (inserted) prompts.push_back(&r.prompt_ids);
    slot_to_prompt.push_back(it->second);
  }
  PaddedBatch padded = LeftPad(prompts, max_new_tokens, model.device());
  cache = std::make_unique<model::KvCache>(model.config(), static_cast<int64_t>(prompts.size()),
                                           padded.length + max_new_tokens, model.dtype(),
                                           model.device());
  at::Tensor hidden = model.Hidden(padded.ids, padded.positions,
                                   padded.key_mask.narrow(1, 0, padded.length), cache.get());
  at::Tensor logits = model.Logits(hidden.select(1, padded.length - 1));  // [U, V]
  batch.prompt_length = padded.length;
  batch.key_mask = padded.key_mask;
  batch.slot_rows.resize(requests.size());
  for (size_t s = 0; s < requests.size(); ++s) batch.slot_rows[s] = static_cast<int64_t>(s);
  if (prompts.size() == requests.size()) return logits;
  at::Tensor expand = IndexTensor(slot_to_prompt, model.device());
  cache->SelectBatch(expand);
  batch.key_mask = batch.key_mask.index_select(0, expand);
  return logits.index_select(0, expand);
}

// Drops finished rows from the cache once at most half the slots still run: every decode
// step then costs only what the running rows need, at the price of a few cache copies.
void CompactIfSparse(const std::vector<RowState>& rows, model::KvCache& cache, Batch& batch) {
  std::vector<int64_t> keep;
  for (size_t s = 0; s < batch.slot_rows.size(); ++s)
    if (!rows[batch.slot_rows[s]].done) keep.push_back(static_cast<int64_t>(s));
  if (keep.empty() || 2 * keep.size() > batch.slot_rows.size()) return;
  at::Tensor index = IndexTensor(keep, batch.key_mask.device());
  cache.SelectBatch(index);
  batch.key_mask = batch.key_mask.index_select(0, index);
  std::vector<int64_t> slot_rows;
  for (int64_t s : keep) slot_rows.push_back(batch.slot_rows[s]);
  batch.slot_rows = std::move(slot_rows);
}

// One decode step: feeds each slot its row's last token and returns the next logits [slots, V].
at::Tensor DecodeStep(model::DecoderImpl& model, const std::vector<RowState>& rows,
                      int64_t step, model::KvCache& cache, Batch& batch) {
  int64_t slots = static_cast<int64_t>(batch.slot_rows.size());
  std::vector<int64_t> ids(slots, 0), positions(slots, 0);
  std::vector<uint8_t> running(slots, 0);
  for (int64_t s = 0; s < slots; ++s) {
    const RowState& row = rows[batch.slot_rows[s]];
    positions[s] = row.prompt_length + step;
    if (row.done) continue;  // a finished row feeds a placeholder that no one attends to
    ids[s] = row.completion.token_ids.back();
    running[s] = 1;
  }
  int64_t column = batch.prompt_length + step;
  batch.key_mask.select(1, column).copy_(at::tensor(at::ArrayRef<uint8_t>(running)).to(at::kBool));
  at::Device device = model.device();
  at::Tensor hidden = model.Hidden(IndexTensor(ids, device).view({slots, 1}),
                                   IndexTensor(positions, device).view({slots, 1}),
                                   batch.key_mask.narrow(1, 0, column + 1), &cache);
  return model.Logits(hidden.select(1, 0));
}

}  // namespace

std::vector<Completion> Generate(model::DecoderImpl& model, const text::Tokenizer& tokenizer,
                                 std::span<const SequenceRequest> requests,
                                 const SamplingParams& params,
                                 const CompletionCallback& on_finished) {
  if (std::string error = params.Check(); !error.empty())
    throw std::invalid_argument("generate: " + error);
  if (requests.empty()) return {};
  CheckRequests(requests, model.config().vocab_size);
  at::NoGradGuard no_grad;

  std::vector<RowState> rows(requests.size());
  for (size_t r = 0; r < requests.size(); ++r) {
    rows[r].completion.prompt_index = requests[r].prompt_index;
    rows[r].completion.sample_index = requests[r].sample_index;
    rows[r].decoder = std::make_unique<text::StreamDecoder>(tokenizer, params.skip_special_tokens);
    rows[r].stream = StreamOf(requests[r], params.first_stream);
    rows[r].prompt_length = static_cast<int64_t>(requests[r].prompt_ids.size());
  }
  StopStringMatcher matcher(params.stop_strings);

  Batch batch;
  std::unique_ptr<model::KvCache> cache;
  at::Tensor logits = Prefill(model, requests, params.max_new_tokens, cache, batch);
  for (int64_t step = 0;; ++step) {
    SampleStep(logits, batch, rows, step, params, matcher, on_finished);
    if (std::all_of(rows.begin(), rows.end(), [](const RowState& r) { return r.done; })) break;
    CompactIfSparse(rows, *cache, batch);
    logits = DecodeStep(model, rows, step, *cache, batch);
  }

  std::vector<Completion> out;
  out.reserve(rows.size());
  for (RowState& row : rows) out.push_back(std::move(row.completion));
  return out;
}

}  // namespace rl::rollout

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

// Left-padded prompts: ids, positions and key_mask [U, L] (first real token at position 0;
// the mask true on real tokens).
struct PaddedBatch {
  at::Tensor ids, positions, key_mask;
  int64_t length = 0;
};

PaddedBatch LeftPad(const std::vector<const std::vector<int32_t>*>& prompts, at::Device device) {
  int64_t batch = static_cast<int64_t>(prompts.size());
  int64_t length = 0;
  for (const std::vector<int32_t>* p : prompts)
    length = std::max<int64_t>(length, static_cast<int64_t>(p->size()));
  at::Tensor ids = at::zeros({batch, length}, at::kLong);
  at::Tensor positions = at::zeros({batch, length}, at::kLong);
  at::Tensor key_mask = at::zeros({batch, length}, at::kBool);
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

// Prompts prefilled once and kept until every request with that prompt has entered the batch:
// a GRPO group's G requests share one prefill even when they enter at different steps.
class PromptStore {
 public:
  // A prefilled prompt: its keys and values are row `row` of `cache`, columns
  // [column, column + length); `logits` [V] are those of its last token.
  struct Entry {
    std::shared_ptr<model::KvCache> cache;
    int64_t row = 0, column = 0, length = 0;
    at::Tensor logits;
  };

  explicit PromptStore(std::span<const SequenceRequest> requests) {
    for (const SequenceRequest& r : requests) ++waiting_[r.prompt_ids];
  }

  // Prefills, in one batch, the prompts among `prompts` not stored yet.
  void Prefill(model::DecoderImpl& model, const std::vector<const std::vector<int32_t>*>& prompts) {
    std::vector<const std::vector<int32_t>*> missing;
    for (const std::vector<int32_t>* p : prompts) {
      if (!entries_.count(*p) && std::find_if(missing.begin(), missing.end(),
                                              [&](const auto* m) { return *m == *p; }) == missing.end())
        missing.push_back(p);
    }
    if (missing.empty()) return;
    PaddedBatch padded = LeftPad(missing, model.device());
    auto cache = std::make_shared<model::KvCache>(model.config(), static_cast<int64_t>(missing.size()),
                                                  padded.length, model.dtype(), model.device());
    at::Tensor hidden = model.Hidden(padded.ids, padded.positions, padded.key_mask, cache.get());
    at::Tensor logits = model.Logits(hidden.select(1, padded.length - 1));  // [U, V]
    for (size_t u = 0; u < missing.size(); ++u) {
      const int64_t length = static_cast<int64_t>(missing[u]->size());
      entries_[*missing[u]] = {cache, static_cast<int64_t>(u), padded.length - length, length,
                               logits[static_cast<int64_t>(u)]};
    }
  }

  // The stored prompt for one more request; forgotten once no request waits for it.
  Entry Take(const std::vector<int32_t>& prompt) {
    Entry entry = entries_.at(prompt);
    if (--waiting_.at(prompt) == 0) entries_.erase(prompt);
    return entry;
  }

 private:
  std::map<std::vector<int32_t>, Entry> entries_;
  std::map<std::vector<int32_t>, int64_t> waiting_;
};

// Continuous batching over `requests` with at most `slots` sequences decoding at once; the
// layout is described in generate.h. One object per Generate call.
class Decoding {
 public:
  Decoding(model::DecoderImpl& model, std::span<const SequenceRequest> requests, std::vector<RowState>& rows,
           const SamplingParams& params, const CompletionCallback& on_finished, int64_t slots)
      : model_(model), requests_(requests), rows_(rows), params_(params), matcher_(params.stop_strings),
        on_finished_(on_finished), store_(requests), slot_rows_(slots, -1), slot_start_(slots, 0) {
    int64_t longest = 0;
    for (const SequenceRequest& r : requests)
      longest = std::max<int64_t>(longest, static_cast<int64_t>(r.prompt_ids.size()));
    // Admitting into a compacted cache needs longest + 2 * max_new_tokens columns (generate.h).
    const bool admits_later = slots < static_cast<int64_t>(requests.size());
    const int64_t capacity = longest + (admits_later ? 2 : 1) * params.max_new_tokens;
    cache_ = std::make_unique<model::KvCache>(model.config(), slots, capacity, model.dtype(), model.device());
    key_mask_ = at::zeros({slots, capacity}, at::TensorOptions().dtype(at::kBool).device(model.device()));
    logits_ = at::zeros({slots, model.config().vocab_size}, at::kFloat).to(model.device());
  }

  void Run() {
    std::vector<int64_t> to_sample = Admit();
    for (;;) {
      Sample(to_sample);
      while (next_ < requests_.size() && FreeSlots() > 0) Sample(Admit());
      if (Running().empty()) return;
      if (next_ == requests_.size()) DropFreeSlotsIfSparse();
      DecodeStep();
      to_sample = Running();
    }
  }

 private:
  std::vector<int64_t> Running() const {
    std::vector<int64_t> out;
    for (size_t s = 0; s < slot_rows_.size(); ++s)
      if (slot_rows_[s] >= 0) out.push_back(static_cast<int64_t>(s));
    return out;
  }
  int64_t FreeSlots() const { return std::count(slot_rows_.begin(), slot_rows_.end(), -1); }

  // Samples the next token of the rows in `slots` from logits_; a row that finishes is handed
  // over and frees its slot.
  void Sample(const std::vector<int64_t>& slots) {
    if (slots.empty()) return;
    std::vector<double> uniforms;
    std::vector<TokenHistory> history;  // what repetition_penalty reads (row r is request r)
    for (int64_t s : slots) {
      const RowState& row = rows_[slot_rows_[s]];
      uniforms.push_back(CounterUniform(params_.seed, row.stream, row.completion.token_ids.size()));
      if (params_.repetition_penalty != 1)
        history.push_back({requests_[slot_rows_[s]].prompt_ids, row.completion.token_ids});
    }
    at::Tensor picked = logits_.index_select(0, IndexTensor(slots, logits_.device()));
    SampledTokens next = SampleTokens(picked, params_, uniforms, history);
    at::Tensor tokens = next.tokens.to(at::kCPU).to(at::kInt).contiguous();
    at::Tensor logprobs = next.logprobs.to(at::kCPU).to(at::kFloat).contiguous();
    for (size_t i = 0; i < slots.size(); ++i) {
      RowState& row = rows_[slot_rows_[slots[i]]];
      Advance(row, tokens.data_ptr<int32_t>()[i], logprobs.data_ptr<float>()[i], params_, matcher_);
      if (!row.done) continue;
      if (on_finished_) on_finished_(row.completion);
      slot_rows_[slots[i]] = -1;
      key_mask_[slots[i]].fill_(false);
    }
  }

  // Moves the next waiting requests into the free slots: their prompts' keys and values end
  // at the cache's current length, their logits are ready to sample. Returns their slots.
  std::vector<int64_t> Admit() {
    std::vector<int64_t> slots;
    std::vector<const std::vector<int32_t>*> prompts;
    int64_t longest = 0;
    for (size_t s = 0; s < slot_rows_.size() && next_ + slots.size() < requests_.size(); ++s) {
      if (slot_rows_[s] >= 0) continue;
      slots.push_back(static_cast<int64_t>(s));
      prompts.push_back(&requests_[next_ + prompts.size()].prompt_ids);
      longest = std::max<int64_t>(longest, static_cast<int64_t>(prompts.back()->size()));
    }
    store_.Prefill(model_, prompts);
    MakeRoom(longest);
    const int64_t length = cache_->length();
    for (size_t i = 0; i < slots.size(); ++i, ++next_) {
      const int64_t s = slots[i];
      const PromptStore::Entry entry = store_.Take(*prompts[i]);
      cache_->CopyRow(s, length - entry.length, *entry.cache, entry.row, entry.column, entry.length);
      key_mask_[s].fill_(false);
      key_mask_[s].narrow(0, length - entry.length, entry.length).fill_(true);
      logits_[s].copy_(entry.logits);
      slot_rows_[s] = static_cast<int64_t>(next_);
      slot_start_[s] = length - entry.length;
    }
    return slots;
  }

  // Makes the cache's length at least `prompt_length` with room for max_new_tokens more
  // columns: when full, drops the columns before the oldest running row's first token.
  void MakeRoom(int64_t prompt_length) {
    int64_t drop = 0;
    if (cache_->length() + params_.max_new_tokens > cache_->capacity()) {
      drop = cache_->length();
      for (int64_t s : Running()) drop = std::min(drop, slot_start_[s]);
    }
    Shift(std::max(-drop, prompt_length - cache_->length()));
  }

  // Moves every row's columns by `offset` (the cache's and the key mask's alike); keys carry
  // their rotary positions, so a token's attention is the same at any column.
  void Shift(int64_t offset) {
    if (offset == 0) return;
    const int64_t length = cache_->length();
    const int64_t kept = offset < 0 ? length + offset : length;
    const int64_t from = offset < 0 ? -offset : 0, to = offset < 0 ? 0 : offset;
    cache_->Shift(offset);
    at::Tensor moved = key_mask_.narrow(1, from, kept).clone();
    key_mask_.fill_(false);
    key_mask_.narrow(1, to, kept).copy_(moved);
    for (int64_t& start : slot_start_) start += offset;
  }

  // Once the queue is empty and at most half the slots still run, drops the free ones: every
  // decode step then costs only what the running rows need, for one copy of the cache.
  void DropFreeSlotsIfSparse() {
    const std::vector<int64_t> keep = Running();
    if (2 * keep.size() > slot_rows_.size()) return;
    at::Tensor index = IndexTensor(keep, key_mask_.device());
    cache_->SelectBatch(index);
    key_mask_ = key_mask_.index_select(0, index);
    logits_ = logits_.index_select(0, index);
    std::vector<int64_t> rows, starts;
    for (int64_t s : keep) {
      rows.push_back(slot_rows_[s]);
      starts.push_back(slot_start_[s]);
    }
    slot_rows_ = std::move(rows);
    slot_start_ = std::move(starts);
  }

  // Feeds each running slot its row's last token at the next column; logits_ become the next
  // token's, one row per slot. A free slot feeds a placeholder that no one attends to.
  void DecodeStep() {
    const int64_t slots = static_cast<int64_t>(slot_rows_.size());
    std::vector<int64_t> ids(slots, 0), positions(slots, 0);
    std::vector<uint8_t> running(slots, 0);
    for (int64_t s = 0; s < slots; ++s) {
      if (slot_rows_[s] < 0) continue;
      const RowState& row = rows_[slot_rows_[s]];
      const int64_t generated = static_cast<int64_t>(row.completion.token_ids.size());
      positions[s] = row.prompt_length + generated - 1;
      ids[s] = row.completion.token_ids.back();
      running[s] = 1;
    }
    const int64_t column = cache_->length();
    key_mask_.select(1, column).copy_(at::tensor(at::ArrayRef<uint8_t>(running)).to(at::kBool));
    const at::Device device = model_.device();
    at::Tensor hidden = model_.Hidden(IndexTensor(ids, device).view({slots, 1}),
                                      IndexTensor(positions, device).view({slots, 1}),
                                      key_mask_.narrow(1, 0, column + 1), cache_.get());
    logits_ = model_.Logits(hidden.select(1, 0));
  }

  model::DecoderImpl& model_;
  std::span<const SequenceRequest> requests_;
  std::vector<RowState>& rows_;
  const SamplingParams& params_;
  StopStringMatcher matcher_;
  const CompletionCallback& on_finished_;
  PromptStore store_;
  size_t next_ = 0;                  // the first request not yet admitted
  std::vector<int64_t> slot_rows_;   // slot -> request (row) index; -1: free
  std::vector<int64_t> slot_start_;  // slot -> the column of its prompt's first token
  std::unique_ptr<model::KvCache> cache_;
  at::Tensor key_mask_;  // [slots, capacity]: true where the slot's own tokens are
  at::Tensor logits_;    // [slots, V]: each slot's next-token logits
};

}  // namespace

std::vector<Completion> Generate(model::DecoderImpl& model, const text::Tokenizer& tokenizer,
                                 std::span<const SequenceRequest> requests,
                                 const SamplingParams& params,
                                 const CompletionCallback& on_finished, int64_t max_batch) {
  if (std::string error = params.Check(); !error.empty())
    throw std::invalid_argument("generate: " + error);
  if (max_batch < 0) throw std::invalid_argument("generate: max_batch must be >= 0 (0: all requests)");
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
  const int64_t requested = static_cast<int64_t>(requests.size());
  Decoding(model, requests, rows, params, on_finished,
           max_batch > 0 ? std::min(max_batch, requested) : requested)
      .Run();

  std::vector<Completion> out;
  out.reserve(rows.size());
  for (RowState& row : rows) out.push_back(std::move(row.completion));
  return out;
}

}  // namespace rl::rollout

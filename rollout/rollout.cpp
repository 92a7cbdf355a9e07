#include "rollout/rollout.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <ATen/Parallel.h>

#include "common/threads.h"

namespace rl::rollout {

std::string RolloutOptions::Check() const {
  if (group_size < 1) return "group_size must be >= 1, got " + std::to_string(group_size);
  if (micro_batch_size < 1)
    return "micro_batch_size must be >= 1, got " + std::to_string(micro_batch_size);
  if (workers < 1) return "workers must be >= 1, got " + std::to_string(workers);
  if (threads_per_worker < 0)
    return "threads_per_worker must be >= 0 (0: automatic), got " +
           std::to_string(threads_per_worker);
  if (callback_threads < 1)
    return "callback_threads must be >= 1, got " + std::to_string(callback_threads);
  return "";
}

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Indices of finished completions waiting for the callback.
class FinishedQueue {
 public:
  void Push(size_t index) {
    {
      std::lock_guard lock(mutex_);
      items_.push_back(index);
    }
    ready_.notify_one();
  }
  void Close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    ready_.notify_all();
  }
  // Blocks until an item is available (true) or the queue is closed and drained (false).
  bool Pop(size_t* index) {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return false;
    *index = items_.front();
    items_.pop_front();
    return true;
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<size_t> items_;
  bool closed_ = false;
};

// The shared state of one Run: the sequences, where their results go, the first error.
struct RunState {
  std::vector<SequenceRequest> requests;      // prompts × G, prompt-major
  std::vector<Completion> completions;        // completions[k] belongs to requests[k]
  std::vector<double> micro_batch_finished_at;
  size_t chunk_size = 0;        // requests per Generate call
  int64_t max_batch = 0;         // sequences decoding at once within a call
  std::atomic<size_t> next_micro_batch{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;  // guards error, callback_seconds, first_callback_done_at
  std::exception_ptr error;
  double callback_seconds = 0;
  std::optional<double> first_callback_done_at;
  Clock::time_point start = Clock::now();

  void Fail(std::exception_ptr e) {
    std::lock_guard lock(mutex);
    if (!error) error = e;
    failed = true;
  }
  void CallbackDone(double seconds) {
    std::lock_guard lock(mutex);
    callback_seconds += seconds;
    if (!first_callback_done_at) first_callback_done_at = SecondsSince(start);
  }
};

// prompts × G requests, prompt-major; throws for an empty prompt.
std::vector<SequenceRequest> MakeRequests(std::span<const std::vector<int32_t>> prompts,
                                          int64_t group) {
  std::vector<SequenceRequest> requests;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty())
      throw std::invalid_argument("rollout: prompt " + std::to_string(i) + " has no tokens");
    for (int64_t j = 0; j < group; ++j)
      requests.push_back({prompts[i], static_cast<int64_t>(i), j});
  }
  return requests;
}

// Generates chunks of chunk_size requests (a worker's share, or a static micro-batch) taken
// from the shared counter until none is left or the run fails; each finished completion is
// stored and queued for the callback.
void GenerateMicroBatches(model::DecoderImpl& model, const text::Tokenizer& tokenizer,
                          const SamplingParams& sampling, int64_t group, bool queue_finished,
                          RunState& state, FinishedQueue& queue) {
  const size_t total = state.requests.size();
  const size_t micro = state.chunk_size;
  while (!state.failed) {
    const size_t m = state.next_micro_batch++;
    if (m >= state.micro_batch_finished_at.size()) break;
    const size_t begin = m * micro, end = std::min(total, begin + micro);
    try {
      Generate(model, tokenizer,
               std::span<const SequenceRequest>(state.requests).subspan(begin, end - begin),
               sampling, [&](const Completion& c) {
                 size_t k = static_cast<size_t>(c.prompt_index * group + c.sample_index);
                 state.completions[k] = c;  // written once, before the queue publishes it
                 if (queue_finished) queue.Push(k);
               },
               state.max_batch);
    } catch (...) {
      state.Fail(std::current_exception());
    }
    state.micro_batch_finished_at[m] = SecondsSince(state.start);
  }
}

// Hands queued completions to the callback until the queue is closed and drained.
void CallBack(const FinishedFn& on_finished, RunState& state, FinishedQueue& queue) {
  for (size_t k; queue.Pop(&k);) {
    if (state.failed) continue;  // drain without calling: the run is failing anyway
    try {
      const Clock::time_point begin = Clock::now();
      on_finished(state.completions[k]);
      state.CallbackDone(SecondsSince(begin));
    } catch (...) {
      state.Fail(std::current_exception());
    }
  }
}

// The completions grouped by prompt, and where the time went.
RolloutResult Collect(RunState& state, size_t prompts, double generation_seconds) {
  RolloutResult result;
  RolloutStats& stats = result.stats;
  stats.wall_seconds = SecondsSince(state.start);
  stats.generation_seconds = generation_seconds;
  stats.callback_seconds = state.callback_seconds;
  stats.callback_tail_seconds = stats.wall_seconds - generation_seconds;
  stats.first_callback_done_at = state.first_callback_done_at;
  stats.micro_batch_finished_at = state.micro_batch_finished_at;
  stats.completions = static_cast<int64_t>(state.completions.size());
  result.groups.resize(prompts);
  for (Completion& c : state.completions) {
    stats.generated_tokens += static_cast<int64_t>(c.token_ids.size());
    RolloutGroup& g = result.groups[static_cast<size_t>(c.prompt_index)];
    g.prompt_index = c.prompt_index;
    g.completions.push_back(std::move(c));
  }
  return result;
}

}  // namespace

RolloutEngine::RolloutEngine(model::DecoderImpl& model, const text::Tokenizer& tokenizer,
                             RolloutOptions options)
    : model_(model), tokenizer_(tokenizer), options_(std::move(options)) {
  if (std::string error = options_.Check(); !error.empty())
    throw std::invalid_argument("rollout options: " + error);
}

RolloutResult RolloutEngine::Run(std::span<const std::vector<int32_t>> prompts,
                                 const SamplingParams& sampling,
                                 const FinishedFn& on_finished) const {
  if (std::string error = sampling.Check(); !error.empty())
    throw std::invalid_argument("rollout sampling: " + error);
  const int64_t group = options_.group_size;
  RunState state;
  state.requests = MakeRequests(prompts, group);
  state.completions.resize(state.requests.size());
  const size_t total = state.requests.size(), shares = static_cast<size_t>(options_.workers);
  state.chunk_size = options_.continuous_batching ? std::max<size_t>(1, (total + shares - 1) / shares)
                                                  : static_cast<size_t>(options_.micro_batch_size);
  state.max_batch = options_.micro_batch_size;
  state.micro_batch_finished_at.resize((total + state.chunk_size - 1) / state.chunk_size);
  const int threads_per_worker =
      options_.threads_per_worker > 0 ? options_.threads_per_worker
                                      : std::max(1, common::ThreadCount(0) / options_.workers);

  FinishedQueue queue;
  std::vector<std::thread> callers;
  if (on_finished) {
    for (int t = 0; t < options_.callback_threads; ++t)
      callers.emplace_back([&] { CallBack(on_finished, state, queue); });
  }
  std::vector<std::thread> workers;
  for (int w = 0; w < options_.workers; ++w) {
    workers.emplace_back([&] {
      at::set_num_threads(threads_per_worker);
      GenerateMicroBatches(model_, tokenizer_, sampling, group, bool(on_finished), state, queue);
    });
  }
  for (std::thread& t : workers) t.join();
  const double generation_seconds = SecondsSince(state.start);
  queue.Close();
  for (std::thread& t : callers) t.join();
  if (state.error) std::rethrow_exception(state.error);
  return Collect(state, prompts.size(), generation_seconds);
}

}  // namespace rl::rollout

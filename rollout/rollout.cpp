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

namespace rl::rollout {

std::string RolloutOptions::Check() const {
  if (group_size < 1) return "group_size must be >= 1, got " + std::to_string(group_size);
  if (micro_batch_size < 1)
    return "micro_batch_size must be >= 1, got " + std::to_string(micro_batch_size);
  if (workers < 1) return "workers must be >= 1, got " + std::to_string(workers);
  if (threads_per_worker < 0)
    return "threads_per_worker must be >= 0 (0: automatic), got " +
           std::to_string(threads_per_worker);
  if (scoring_threads < 1)
    return "scoring_threads must be >= 1, got " + std::to_string(scoring_threads);
  return "";
}

ScoreFn ScoreWithReward(const rewards::Reward& reward) {
  return [&reward](const RolloutPrompt& prompt, const Completion& completion) {
    rewards::Sample sample;
    sample.prompt = prompt.prompt_text;
    sample.completion = completion.text;
    if (prompt.gold) sample.gold = *prompt.gold;
    sample.completion_tokens = static_cast<int64_t>(completion.token_ids.size());
    return reward.Score(sample);
  };
}

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Indices of finished completions waiting to be scored.
class ScoringQueue {
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
  std::vector<std::optional<rewards::RewardResult>> rewards;
  std::vector<double> micro_batch_finished_at;
  std::atomic<size_t> next_micro_batch{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;  // guards error, scoring_seconds, first_scored_at
  std::exception_ptr error;
  double scoring_seconds = 0;
  std::optional<double> first_scored_at;
  Clock::time_point start = Clock::now();

  void Fail(std::exception_ptr e) {
    std::lock_guard lock(mutex);
    if (!error) error = e;
    failed = true;
  }
};

}  // namespace

RolloutEngine::RolloutEngine(model::Qwen2Impl& model, const text::Tokenizer& tokenizer,
                             RolloutOptions options)
    : model_(model), tokenizer_(tokenizer), options_(std::move(options)) {
  if (std::string error = options_.Check(); !error.empty())
    throw std::invalid_argument("rollout options: " + error);
}

RolloutResult RolloutEngine::Run(std::span<const RolloutPrompt> prompts,
                                 const SamplingParams& sampling, const ScoreFn& score) const {
  if (std::string error = sampling.Check(); !error.empty())
    throw std::invalid_argument("rollout sampling: " + error);
  const int64_t group = options_.group_size;
  RunState state;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].prompt_ids.empty())
      throw std::invalid_argument("rollout: prompt " + std::to_string(i) + " has no tokens");
    for (int64_t j = 0; j < group; ++j)
      state.requests.push_back({prompts[i].prompt_ids, static_cast<int64_t>(i), j});
  }
  const size_t total = state.requests.size();
  const size_t micro = static_cast<size_t>(options_.micro_batch_size);
  const size_t micro_batches = (total + micro - 1) / micro;
  state.completions.resize(total);
  state.rewards.resize(total);
  state.micro_batch_finished_at.resize(micro_batches);

  int threads_per_worker = options_.threads_per_worker;
  if (threads_per_worker == 0)
    threads_per_worker =
        std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / options_.workers);

  ScoringQueue queue;
  auto generate_worker = [&] {
    at::set_num_threads(threads_per_worker);
    while (!state.failed) {
      size_t m = state.next_micro_batch++;
      if (m >= micro_batches) break;
      size_t begin = m * micro, end = std::min(total, begin + micro);
      try {
        Generate(model_, tokenizer_,
                 std::span<const SequenceRequest>(state.requests).subspan(begin, end - begin),
                 sampling, [&](const Completion& c) {
                   size_t k = static_cast<size_t>(c.prompt_index * group + c.sample_index);
                   state.completions[k] = c;  // written once, before the queue publishes it
                   if (score) queue.Push(k);
                 });
      } catch (...) {
        state.Fail(std::current_exception());
      }
      state.micro_batch_finished_at[m] = SecondsSince(state.start);
    }
  };
  auto scoring_worker = [&] {
    for (size_t k; queue.Pop(&k);) {
      if (state.failed) continue;  // drain without scoring: the run is failing anyway
      try {
        Clock::time_point begin = Clock::now();
        rewards::RewardResult result = score(prompts[state.requests[k].prompt_index],
                                             state.completions[k]);
        double seconds = SecondsSince(begin);
        state.rewards[k] = std::move(result);
        std::lock_guard lock(state.mutex);
        state.scoring_seconds += seconds;
        if (!state.first_scored_at) state.first_scored_at = SecondsSince(state.start);
      } catch (...) {
        state.Fail(std::current_exception());
      }
    }
  };

  std::vector<std::thread> scorers;
  if (score)
    for (int t = 0; t < options_.scoring_threads; ++t) scorers.emplace_back(scoring_worker);
  std::vector<std::thread> workers;
  for (int w = 0; w < options_.workers; ++w) workers.emplace_back(generate_worker);
  for (std::thread& t : workers) t.join();
  double generation_seconds = SecondsSince(state.start);
  queue.Close();
  for (std::thread& t : scorers) t.join();
  if (state.error) std::rethrow_exception(state.error);

  RolloutResult result;
  RolloutStats& stats = result.stats;
  stats.wall_seconds = SecondsSince(state.start);
  stats.generation_seconds = generation_seconds;
  stats.scoring_seconds = state.scoring_seconds;
  stats.scoring_tail_seconds = stats.wall_seconds - generation_seconds;
  stats.first_scored_at = state.first_scored_at;
  stats.micro_batch_finished_at = state.micro_batch_finished_at;
  stats.completions = static_cast<int64_t>(total);
  result.groups.resize(prompts.size());
  for (size_t k = 0; k < total; ++k) {
    Completion& c = state.completions[k];
    c.reward = std::move(state.rewards[k]);
    stats.generated_tokens += static_cast<int64_t>(c.token_ids.size());
    RolloutGroup& g = result.groups[static_cast<size_t>(c.prompt_index)];
    g.prompt_index = c.prompt_index;
    g.completions.push_back(std::move(c));
  }
  return result;
}

}  // namespace rl::rollout

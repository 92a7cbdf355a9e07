// TrainByteLevelBpe: counts the pre-tokenized words of a corpus, then repeatedly merges the most
// frequent adjacent pair of tokens, updating pair counts incrementally (only the words that
// hold the merged pair are revisited).
#include <algorithm>
#include <queue>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "rl/text/pre_tokenizer.h"
#include "rl/text/tokenizer.h"

namespace rl::text {
namespace {

using internal::ByteLevelAlphabet;

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

struct Word {
  std::vector<int32_t> symbols;
  int64_t count;
};

// A queued pair; entries go stale when the pair's count changes and are then skipped.
struct Candidate {
  int64_t count;
  int32_t left, right;
  // Most frequent first; among equals the smaller (left, right) ids, for determinism.
  bool operator<(const Candidate& o) const {
    if (count != o.count) return count < o.count;
    return left != o.left ? left > o.left : right > o.right;
  }
};

// Word counts of the corpus, special tokens cut out, in a deterministic order.
std::vector<std::pair<std::string, int64_t>> CountWords(std::span<const std::string> corpus,
                                                        std::span<const std::string> specials) {
  std::string error;
  auto normalizer = internal::Normalizer::FromJson(internal::Qwen2NormalizerJson(), "", &error);
  auto pre = internal::PreTokenizer::FromJson(internal::Qwen2PreTokenizerJson(), "", &error);
  std::unordered_map<std::string, int64_t> counts;
  std::vector<std::string> words;
  auto count_segment = [&](std::string_view segment) {
    if (segment.empty()) return;
    words.clear();
    pre->Split(normalizer->Apply(segment), &words);
    for (std::string& w : words) ++counts[std::move(w)];
  };
  for (const std::string& text : corpus) {
    size_t pos = 0;
    while (pos < text.size()) {
      // The leftmost special token, longest among those starting there.
      size_t best = std::string::npos, best_length = 0;
      for (const std::string& s : specials) {
        const size_t at = text.find(s, pos);
        if (at < best || (at == best && s.size() > best_length)) {
          best = at;
          best_length = s.size();
        }
      }
      count_segment(std::string_view(text).substr(pos, best == std::string::npos ? std::string::npos
                                                                                 : best - pos));
      if (best == std::string::npos) break;
      pos = best + best_length;
    }
  }
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());
  return sorted;
}

void CheckArguments(int32_t vocab_size, std::span<const std::string> specials) {
  std::unordered_set<std::string> seen;
  for (const std::string& s : specials) {
    if (s.empty()) throw std::invalid_argument("TrainByteLevelBpe: empty special token");
    if (!seen.insert(s).second) {
      throw std::invalid_argument("TrainByteLevelBpe: special token \"" + s + "\" repeated");
    }
  }
  if (vocab_size < 256 + static_cast<int64_t>(specials.size())) {
    throw std::invalid_argument("TrainByteLevelBpe: vocab_size " + std::to_string(vocab_size) +
                                " is below 256 byte tokens + " + std::to_string(specials.size()) +
                                " special tokens");
  }
}

// The merge loop. Pair counts are kept up to date incrementally: merging a pair revisits only
// the words that hold it (words_with_), and a priority queue with lazy deletion yields the most
// frequent pair.
class BpeTrainer {
 public:
  explicit BpeTrainer(const std::vector<std::pair<std::string, int64_t>>& word_counts);
  // Merges until `target` tokens exist or no pair is left.
  void Train(size_t target);
  nlohmann::json VocabJson() const;
  const nlohmann::json& merges() const { return merges_; }
  size_t token_count() const { return token_bytes_.size(); }

 private:
  void AddPairs(int32_t word, int64_t sign);
  void Merge(int32_t left, int32_t right);

  const ByteLevelAlphabet& alphabet_ = ByteLevelAlphabet::Get();
  std::vector<std::string> token_bytes_;  // by id
  std::unordered_map<std::string, int32_t> id_of_;
  std::vector<Word> words_;
  std::unordered_map<uint64_t, int64_t> pair_count_;
  std::unordered_map<uint64_t, std::vector<int32_t>> words_with_;  // may hold stale entries
  std::priority_queue<Candidate> queue_;
  std::vector<uint64_t> changed_;  // pairs whose count changed in the current merge
  nlohmann::json merges_ = nlohmann::json::array();
};

BpeTrainer::BpeTrainer(const std::vector<std::pair<std::string, int64_t>>& word_counts) {
  // Tokens 0..255 are the bytes in GPT-2's order, as in Qwen2's vocabulary.
  std::array<int32_t, 256> byte_id{};
  for (uint8_t b : alphabet_.order()) {
    byte_id[b] = static_cast<int32_t>(token_bytes_.size());
    id_of_.emplace(std::string(1, static_cast<char>(b)), byte_id[b]);
    token_bytes_.emplace_back(1, static_cast<char>(b));
  }
  for (const auto& [text, count] : word_counts) {
    Word w{{}, count};
    for (char c : text) w.symbols.push_back(byte_id[static_cast<uint8_t>(c)]);
    words_.push_back(std::move(w));
  }
  for (int32_t wi = 0; wi < static_cast<int32_t>(words_.size()); ++wi) AddPairs(wi, +1);
  for (const auto& [key, count] : pair_count_) {
    queue_.push({count, static_cast<int32_t>(key >> 32), static_cast<int32_t>(key & 0xFFFFFFFF)});
  }
}

void BpeTrainer::AddPairs(int32_t wi, int64_t sign) {
  const Word& w = words_[wi];
  for (size_t k = 0; k + 1 < w.symbols.size(); ++k) {
    const uint64_t key = PairKey(w.symbols[k], w.symbols[k + 1]);
    pair_count_[key] += sign * w.count;
    changed_.push_back(key);
    if (sign > 0) {
      auto& list = words_with_[key];
      if (list.empty() || list.back() != wi) list.push_back(wi);
    }
  }
}

void BpeTrainer::Train(size_t target) {
  while (token_bytes_.size() < target && !queue_.empty()) {
    const Candidate top = queue_.top();
    queue_.pop();
    if (top.count > 0 && pair_count_[PairKey(top.left, top.right)] == top.count) {
      Merge(top.left, top.right);
    }
  }
}

void BpeTrainer::Merge(int32_t left, int32_t right) {
  const std::string merged_bytes = token_bytes_[left] + token_bytes_[right];
  // Two different pairs can spell the same string; the token is then shared.
  auto [it, is_new] = id_of_.emplace(merged_bytes, static_cast<int32_t>(token_bytes_.size()));
  if (is_new) token_bytes_.push_back(merged_bytes);
  const int32_t merged = it->second;
  merges_.push_back(alphabet_.Encode(token_bytes_[left]) + " " +
                    alphabet_.Encode(token_bytes_[right]));

  changed_.clear();
  const uint64_t key = PairKey(left, right);
  std::vector<int32_t> holders = std::move(words_with_[key]);
  words_with_.erase(key);
  std::sort(holders.begin(), holders.end());
  holders.erase(std::unique(holders.begin(), holders.end()), holders.end());
  for (int32_t wi : holders) {
    AddPairs(wi, -1);
    std::vector<int32_t>& s = words_[wi].symbols;
    std::vector<int32_t> out;
    out.reserve(s.size());
    for (size_t k = 0; k < s.size(); ++k) {
      const bool hit = k + 1 < s.size() && s[k] == left && s[k + 1] == right;
      out.push_back(hit ? merged : s[k]);
      k += hit;
    }
    s = std::move(out);
    AddPairs(wi, +1);
  }
  std::sort(changed_.begin(), changed_.end());
  changed_.erase(std::unique(changed_.begin(), changed_.end()), changed_.end());
  for (uint64_t c : changed_) {
    const int64_t count = pair_count_[c];
    if (count > 0) {
      queue_.push({count, static_cast<int32_t>(c >> 32), static_cast<int32_t>(c & 0xFFFFFFFF)});
    }
  }
}

nlohmann::json BpeTrainer::VocabJson() const {
  nlohmann::json vocab = nlohmann::json::object();
  for (size_t id = 0; id < token_bytes_.size(); ++id) {
    vocab[alphabet_.Encode(token_bytes_[id])] = id;
  }
  return vocab;
}

}  // namespace

nlohmann::json TrainByteLevelBpe(std::span<const std::string> corpus, int32_t vocab_size,
                                 std::span<const std::string> special_tokens) {
  CheckArguments(vocab_size, special_tokens);
  BpeTrainer trainer(CountWords(corpus, special_tokens));
  trainer.Train(static_cast<size_t>(vocab_size) - special_tokens.size());

  nlohmann::json added = nlohmann::json::array();
  for (size_t i = 0; i < special_tokens.size(); ++i) {
    added.push_back({{"id", trainer.token_count() + i},
                     {"content", special_tokens[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  const nlohmann::json byte_level = {{"type", "ByteLevel"},
                                     {"add_prefix_space", false},
                                     {"trim_offsets", false},
                                     {"use_regex", false}};
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", internal::Qwen2NormalizerJson()},
          {"pre_tokenizer", internal::Qwen2PreTokenizerJson()},
          {"post_processor", byte_level},
          {"decoder", byte_level},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", ""},
            {"end_of_word_suffix", ""},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", false},
            {"vocab", trainer.VocabJson()},
            {"merges", trainer.merges()}}}};
}

}  // namespace rl::text

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

}  // namespace

nlohmann::json TrainByteLevelBpe(std::span<const std::string> corpus, int32_t vocab_size,
                                 std::span<const std::string> special_tokens) {
  CheckArguments(vocab_size, special_tokens);
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::Get();

  // Tokens 0..255 are the bytes in GPT-2's order, as in Qwen2's vocabulary.
  std::vector<std::string> token_bytes;
  std::unordered_map<std::string, int32_t> id_of;
  std::array<int32_t, 256> byte_id{};
  for (uint8_t b : alphabet.order()) {
    byte_id[b] = static_cast<int32_t>(token_bytes.size());
    id_of.emplace(std::string(1, static_cast<char>(b)), byte_id[b]);
    token_bytes.emplace_back(1, static_cast<char>(b));
  }

  std::vector<Word> words;
  for (auto& [text, count] : CountWords(corpus, special_tokens)) {
    Word w{{}, count};
    for (char c : text) w.symbols.push_back(byte_id[static_cast<uint8_t>(c)]);
    words.push_back(std::move(w));
  }

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> words_with;  // may hold stale entries
  auto add_pairs = [&](int32_t wi, int64_t sign, std::vector<uint64_t>* changed) {
    const Word& w = words[wi];
    for (size_t k = 0; k + 1 < w.symbols.size(); ++k) {
      const uint64_t key = PairKey(w.symbols[k], w.symbols[k + 1]);
      pair_count[key] += sign * w.count;
      if (changed != nullptr) changed->push_back(key);
      if (sign > 0) {
        auto& list = words_with[key];
        if (list.empty() || list.back() != wi) list.push_back(wi);
      }
    }
  };
  for (int32_t wi = 0; wi < static_cast<int32_t>(words.size()); ++wi) add_pairs(wi, +1, nullptr);
  std::priority_queue<Candidate> queue;
  for (const auto& [key, count] : pair_count) {
    queue.push({count, static_cast<int32_t>(key >> 32), static_cast<int32_t>(key & 0xFFFFFFFF)});
  }

  const size_t target = static_cast<size_t>(vocab_size) - special_tokens.size();
  nlohmann::json merges = nlohmann::json::array();
  std::vector<int32_t> last_visit(words.size(), -1);
  std::vector<uint64_t> changed;
  while (token_bytes.size() < target && !queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    const uint64_t key = PairKey(top.left, top.right);
    if (top.count <= 0 || pair_count[key] != top.count) continue;
    const std::string merged_bytes = token_bytes[top.left] + token_bytes[top.right];
    // Two different pairs can spell the same string; the token is then shared.
    auto [it, is_new] = id_of.emplace(merged_bytes, static_cast<int32_t>(token_bytes.size()));
    if (is_new) token_bytes.push_back(merged_bytes);
    const int32_t merged = it->second;
    merges.push_back(alphabet.Encode(token_bytes[top.left]) + " " +
                     alphabet.Encode(token_bytes[top.right]));

    changed.clear();
    const std::vector<int32_t> holders = std::move(words_with[key]);
    words_with.erase(key);
    const int32_t visit = static_cast<int32_t>(merges.size());
    for (int32_t wi : holders) {
      if (last_visit[wi] == visit) continue;
      last_visit[wi] = visit;
      add_pairs(wi, -1, &changed);
      std::vector<int32_t>& s = words[wi].symbols;
      std::vector<int32_t> out;
      out.reserve(s.size());
      for (size_t k = 0; k < s.size(); ++k) {
        if (k + 1 < s.size() && s[k] == top.left && s[k + 1] == top.right) {
          out.push_back(merged);
          ++k;
        } else {
          out.push_back(s[k]);
        }
      }
      s = std::move(out);
      add_pairs(wi, +1, &changed);
    }
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
    for (uint64_t c : changed) {
      const int64_t count = pair_count[c];
      if (count > 0) {
        queue.push({count, static_cast<int32_t>(c >> 32), static_cast<int32_t>(c & 0xFFFFFFFF)});
      }
    }
  }

  nlohmann::json vocab = nlohmann::json::object();
  for (size_t id = 0; id < token_bytes.size(); ++id) vocab[alphabet.Encode(token_bytes[id])] = id;
  nlohmann::json added = nlohmann::json::array();
  for (size_t i = 0; i < special_tokens.size(); ++i) {
    added.push_back({{"id", token_bytes.size() + i},
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
            {"vocab", vocab},
            {"merges", merges}}}};
}

}  // namespace rl::text

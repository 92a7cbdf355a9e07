// A tokenizer.json written by TrainByteLevelBpe loads in Hugging Face's own tokenizers (npm
// tokenizers@0.23.2, the Rust library under transformers' fast tokenizers) and encodes and
// decodes exactly as rl::text::Tokenizer does. Exits with 77 (CTest: skipped) when the oracle
// cannot be installed (offline, no node).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "rl/text/tokenizer.h"

namespace {

constexpr int kSkipReturnCode = 77;

// Runs a command; returns its exit code and stdout.
int Run(const std::string& command, std::string* output) {
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) output->append(buffer, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string HfNodeModules() {
  std::string output;
  const int code = Run("text/fetch_tokenizers.sh hf", &output);
  if (code == kSkipReturnCode) {
    std::cerr << "\n*** SKIPPED text_hf_compat: Hugging Face's tokenizers (npm "
                 "tokenizers@0.23.2) could not be installed (see above; offline?) ***\n\n";
    std::exit(kSkipReturnCode);
  }
  REQUIRE(code == 0);
  const std::string key = "hf_node_modules=";
  const size_t at = output.find(key);
  REQUIRE(at != std::string::npos);
  std::string path = output.substr(at + key.size());
  while (!path.empty() && path.back() == '\n') path.pop_back();
  return path;
}

}  // namespace

TEST_CASE("a trained tokenizer.json loads in Hugging Face tokenizers and encodes identically") {
  const std::string node_modules = HfNodeModules();
  // Train on the first 1000 generated strings; check all 1502, so unseen text is covered too.
  std::vector<std::string> texts;
  std::ifstream in("fixtures/tokenizer/hf_random_qwen2.jsonl");
  for (std::string line; std::getline(in, line);) {
    texts.push_back(nlohmann::json::parse(line)["text"].get<std::string>());
  }
  REQUIRE(texts.size() == 1502);
  const std::vector<std::string> specials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  const std::vector<std::string> corpus(texts.begin(), texts.begin() + 1000);
  const nlohmann::json trained = rl::text::TrainByteLevelBpe(corpus, 2000, specials);
  std::string error;
  auto tokenizer = rl::text::Tokenizer::FromJson(trained, &error);
  INFO(error);
  REQUIRE(tokenizer != nullptr);
  CHECK(tokenizer->vocab_size() == 2000);

  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("rl_hf_compat_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << trained.dump();
  {
    std::ofstream cases(dir / "cases.jsonl");
    for (const std::string& text : texts) {
      const std::vector<int32_t> ids = tokenizer->Encode(text);
      cases << nlohmann::json{{"text", text}, {"ids", ids}, {"decoded", tokenizer->Decode(ids)}}
                   .dump()
            << "\n";
    }
  }
  std::string output;
  const int code = Run("NODE_PATH=" + node_modules + " node text/hf_compat.js " +
                           (dir / "tokenizer.json").string() + " " +
                           (dir / "cases.jsonl").string(),
                       &output);
  std::filesystem::remove_all(dir);
  std::cout << output;
  INFO(output);
  CHECK(code == 0);
}

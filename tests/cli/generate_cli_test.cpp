// `rl generate` end to end on a tiny model saved in the Hugging Face layout: the output file
// matches the in-process rollout engine, --rewards scores, bad rows name file and line; and
// `rl merge-lora` / `rl generate --adapter` with a LoRA adapter in PEFT's layout.
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <torch/types.h>
#include <torch/utils.h>

#include "tests/rollout/tiny_policy.h"
#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

#include "tests/support/catch_torch.h"

#include "rl/model/config.h"
#include "rl/model/lora.h"
#include "rollout/rollout.h"

namespace fs = std::filesystem;
namespace rr = rl::rollout;
using rl::testing::ReadFile;
using rl::testing::TempDir;

namespace {

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Runs `rl ARGS`, keeping stderr in *err and stdout in *out; returns the exit code.
int RunRl(const std::string& args, std::string* err, std::string* out = nullptr) {
  rl::testing::ProcessResult r = rl::testing::RunProcess(std::string(RL_BINARY) + " " + args);
  *err = r.err;
  if (out) *out = r.out;
  return r.exit_code;
}

// A saved tiny policy: config.json, model.safetensors, tokenizer.json, generation_config.json.
struct SavedPolicy {
  TempDir dir;
  std::unique_ptr<rl::text::Tokenizer> tokenizer;
  rl::model::Decoder model{nullptr};
  SavedPolicy() {
    std::vector<std::string> specials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    nlohmann::json j = rl::text::TrainByteLevelBpe(rl::rollout::testing::TinyCorpus(), 320,
                                                   specials);
    WriteFile(dir.path() / "tokenizer.json", j.dump());
    std::string error;
    tokenizer = rl::text::Tokenizer::FromJson(j, &error);
    model = rl::rollout::testing::TinyModel(tokenizer->vocab_size());
    rl::model::GenerationConfig generation;
    generation.eos_token_ids = {*tokenizer->TokenToId("<|endoftext|>")};
    rl::model::SaveDecoder(model, dir.path().string(), torch::kFloat32, &generation);
  }
};

}  // namespace

TEST_CASE("rl generate writes G lines per prompt, identical to the in-process engine") {
  SavedPolicy policy;
  fs::path prompts = policy.dir.path() / "prompts.jsonl";
  WriteFile(prompts,
            "{\"question\": \"What is 1/2 + 1/4?\", \"answer\": \"3/4\"}\n"
            "\n"
            "{\"question\": \"the lazy dog\", \"answer\": 4}\n");
  fs::path out = policy.dir.path() / "out.jsonl";
  std::string err;
  std::string args = "generate --model " + policy.dir.path().string() + " --prompts " +
                     prompts.string() + " --prompt-key question -n 3 --output " + out.string() +
                     " --temperature 0.9 --top-k 50 --max-new-tokens 10 --seed 17 " +
                     "--batch-size 4 --threads 1 --logprobs";
  REQUIRE(RunRl(args, &err) == 0);
  CHECK_THAT(err, Catch::Contains("6 completions"));
  CHECK_FALSE(fs::exists(out.string() + ".partial"));

  std::vector<nlohmann::json> lines;
  std::istringstream text(ReadFile(out));
  for (std::string line; std::getline(text, line);) lines.push_back(nlohmann::json::parse(line));
  REQUIRE(lines.size() == 6);

  // The same rollout in process: same weights, seed, sampling and micro-batches.
  rr::RolloutOptions options;
  options.group_size = 3;
  options.micro_batch_size = 4;
  options.threads_per_worker = 1;
  rr::RolloutEngine engine(*policy.model, *policy.tokenizer, options);
  const std::vector<std::string> texts = {"What is 1/2 + 1/4?", "the lazy dog"};
  std::vector<std::vector<int32_t>> in_process;
  for (const std::string& p : texts) in_process.push_back(policy.tokenizer->Encode(p));
  rr::SamplingParams sampling;
  sampling.temperature = 0.9;
  sampling.top_k = 50;
  sampling.max_new_tokens = 10;
  sampling.seed = 17;
  sampling.eos_ids = {*policy.tokenizer->TokenToId("<|endoftext|>")};
  rr::RolloutResult expected = engine.Run(in_process, sampling);

  for (size_t k = 0; k < lines.size(); ++k) {
    const nlohmann::json& line = lines[k];
    const rr::Completion& c = expected.groups[k / 3].completions[k % 3];
    CHECK(line["prompt_index"] == k / 3);
    CHECK(line["sample_index"] == k % 3);
    CHECK(line["prompt"] == texts[k / 3]);
    CHECK(line["completion"] == c.text);
    CHECK(line["finish_reason"] == std::string(rr::ToString(c.finish_reason)));
    CHECK(line["tokens"] == c.token_ids.size());
    CHECK(line["token_ids"].get<std::vector<int32_t>>() == c.token_ids);
    CHECK(line["logprobs"].size() == c.logprobs.size());
    CHECK_FALSE(line.contains("reward"));
  }

  // With --output -, stdout carries the JSONL and nothing else (messages go to stderr).
  std::string stdout_text;
  REQUIRE(RunRl(args.substr(0, args.find(" --output")) + " --output - --temperature 0.9 " +
                    "--top-k 50 --max-new-tokens 10 --seed 17 --batch-size 4 --threads 1", &err, &stdout_text) == 0);
  std::istringstream piped(stdout_text);
  int piped_lines = 0;
  for (std::string line; std::getline(piped, line); ++piped_lines)
    CHECK(nlohmann::json::parse(line)["completion"] == lines[piped_lines]["completion"]);
  CHECK(piped_lines == 6);
}

TEST_CASE("rl generate --chat --rewards scores each completion") {
  SavedPolicy policy;
  fs::path prompts = policy.dir.path() / "prompts.jsonl";
  WriteFile(prompts,
            "{\"prompt\": \"What is 2+2?\", \"answer\": \"4\"}\n"
            "{\"prompt\": [{\"role\": \"user\", \"content\": \"Compute 7 * 8.\"}], "
            "\"answer\": \"56\"}\n");
  fs::path spec = policy.dir.path() / "reward.yaml";
  WriteFile(spec,
            "rules:\n"
            "  - {name: format.think_answer, weight: 1}\n"
            "  - {name: accuracy.math, weight: 1}\n");
  fs::path out = policy.dir.path() / "out.jsonl";
  std::string err;
  std::string args = "generate --model " + policy.dir.path().string() + " --prompts " +
                     prompts.string() + " -n 2 --chat --rewards " + spec.string() +
                     " --max-new-tokens 6 --output " + out.string();
  REQUIRE(RunRl(args, &err) == 0);
  std::istringstream text(ReadFile(out));
  int count = 0;
  for (std::string line; std::getline(text, line); ++count) {
    nlohmann::json j = nlohmann::json::parse(line);
    CHECK(j["prompt"].get<std::string>().rfind("<|im_start|>system\n", 0) == 0);
    CHECK(j["prompt"].get<std::string>().find("<|im_start|>assistant\n") != std::string::npos);
    REQUIRE(j.contains("reward"));
    CHECK(j["status"] == "ok");
    CHECK(j["components"].contains("format.think_answer"));
    CHECK(j["components"].contains("accuracy.math"));
  }
  CHECK(count == 4);
}

TEST_CASE("rl generate --chat-template: a named template, Qwen3's thinking switch, the checkpoint's") {
  SavedPolicy policy;
  fs::path prompts = policy.dir.path() / "prompts.jsonl";
  WriteFile(prompts, "{\"prompt\": \"What is 2+2?\"}\n");
  fs::path out = policy.dir.path() / "out.jsonl";
  auto first_prompt = [&](const std::string& flags, std::string* err) {
    const int status = RunRl("generate --model " + policy.dir.path().string() + " --prompts " + prompts.string() +
                                 " --chat --max-new-tokens 2 --output " + out.string() + " " + flags,
                             err);
    if (status != 0) return "exit " + std::to_string(status);
    std::istringstream text(ReadFile(out));
    std::string line;
    std::getline(text, line);
    return nlohmann::json::parse(line)["prompt"].get<std::string>();
  };
  std::string err;
  CHECK(first_prompt("--chat-template llama3", &err) ==
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");
  CHECK(first_prompt("--chat-template qwen3 --no-thinking", &err) ==
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  CHECK(first_prompt("--chat-template qwen4", &err) == "exit 2");
  CHECK_THAT(err, Catch::Contains("--chat-template") && Catch::Contains("qwen4"));
  // auto: the checkpoint's tokenizer_config.json decides, and a template rl does not render
  // stops the run naming the file.
  WriteFile(policy.dir.path() / "tokenizer_config.json", "{\"chat_template\": \"{{ messages }}\"}");
  CHECK(first_prompt("", &err) == "exit 2");
  CHECK_THAT(err, Catch::Contains("tokenizer_config.json") && Catch::Contains("chat_template"));
}

TEST_CASE("rl generate names the file and line of a bad row and writes nothing") {
  SavedPolicy policy;
  fs::path out = policy.dir.path() / "out.jsonl";
  auto run_with = [&](const std::string& rows, std::string* err) {
    fs::path prompts = policy.dir.path() / "bad.jsonl";
    WriteFile(prompts, rows);
    return RunRl("generate --model " + policy.dir.path().string() + " --prompts " +
                     prompts.string() + " --output " + out.string(), err);
  };
  std::string err;
  CHECK(run_with("{\"prompt\": \"ok\"}\n{\"text\": \"no prompt key\"}\n", &err) == 2);
  CHECK_THAT(err, Catch::Contains("bad.jsonl:2") && Catch::Contains("'prompt' missing"));
  CHECK(run_with("{\"prompt\": \"ok\"}\n\n{not json\n", &err) == 2);
  CHECK_THAT(err, Catch::Contains("bad.jsonl:3") && Catch::Contains("invalid JSON"));
  CHECK(run_with("{\"prompt\": [1, 2]}\n", &err) == 2);
  CHECK_THAT(err, Catch::Contains("bad.jsonl:1") && Catch::Contains("--chat"));
  CHECK(run_with("{\"prompt\": \"\"}\n", &err) == 2);
  CHECK_THAT(err, Catch::Contains("bad.jsonl:1") && Catch::Contains("empty"));
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(out.string() + ".partial"));
  // A model directory without tokenizer.json is named too.
  fs::remove(policy.dir.path() / "tokenizer.json");
  CHECK(run_with("{\"prompt\": \"ok\"}\n", &err) != 0);
  CHECK_THAT(err, Catch::Contains("tokenizer.json"));
}

TEST_CASE("rl merge-lora writes base + adapter; rl generate --adapter samples the same model") {
  SavedPolicy policy;
  const fs::path adapter = policy.dir.path() / "adapter";
  rl::model::Decoder adapted = rl::model::CloneDecoder(*policy.model, torch::kFloat32, torch::kCPU);
  rl::model::LoraConfig lora;
  lora.r = 4;
  lora.alpha = 8;
  lora.base_model_name_or_path = policy.dir.path().string();
  rl::model::AttachLora(*adapted, lora, 3);
  {
    torch::NoGradGuard no_grad;
    torch::manual_seed(4);
    for (auto& [name, t] : rl::model::NamedLoraParameters(*adapted)) t.normal_(0.0, 0.3);
  }
  rl::model::SaveLoraAdapter(*adapted, lora, adapter.string());
  rl::model::MergeLora(*adapted);

  std::string err;
  const fs::path merged = policy.dir.path() / "merged";
  REQUIRE(RunRl("merge-lora " + policy.dir.path().string() + " " + adapter.string() + " " + merged.string(), &err) == 0);
  CHECK_THAT(err, Catch::Contains("r 4, 7 target modules"));
  CHECK(ReadFile(merged / "tokenizer.json") == ReadFile(policy.dir.path() / "tokenizer.json"));  // from the base
  rl::model::Decoder loaded = rl::model::LoadDecoder(merged.string(), torch::kFloat32, torch::kCPU);
  for (const auto& p : adapted->named_parameters()) {
    INFO(p.key());
    CHECK((loaded->named_parameters()[p.key()] - p.value()).abs().max().item<double>() == 0);
  }

  // Greedy samples of base + adapter (the base found through adapter_config.json) equal the
  // merged model's.
  const fs::path prompts = policy.dir.path() / "prompts.jsonl";
  WriteFile(prompts, "{\"prompt\": \"What is 1/2 + 1/4?\"}\n{\"prompt\": \"the lazy dog\"}\n");
  auto sample = [&](const std::string& model_args) {
    const fs::path out = policy.dir.path() / "out.jsonl";
    REQUIRE(RunRl("generate " + model_args + " --prompts " + prompts.string() + " --output " + out.string() +
                      " --temperature 0 --max-new-tokens 12 --threads 1",
                  &err) == 0);
    return ReadFile(out);
  };
  const std::string with_adapter = sample("--adapter " + adapter.string());
  CHECK(with_adapter == sample("--model " + merged.string()));
  CHECK(with_adapter != sample("--model " + policy.dir.path().string()));  // the adapter matters

  // An adapter of another shape is refused, naming the tensor.
  lora.r = 2;
  rl::model::Decoder other = rl::model::CloneDecoder(*policy.model, torch::kFloat32, torch::kCPU);
  rl::model::AttachLora(*other, lora, 3);
  rl::model::SaveLoraAdapter(*other, lora, adapter.string());
  nlohmann::json config = nlohmann::json::parse(ReadFile(adapter / "adapter_config.json"));
  config["r"] = 4;
  WriteFile(adapter / "adapter_config.json", config.dump());
  CHECK(RunRl("merge-lora " + policy.dir.path().string() + " " + adapter.string() + " " + merged.string(), &err) == 1);
  CHECK_THAT(err, Catch::Contains("adapter_model.safetensors") && Catch::Contains("does not match this model and r"));
}

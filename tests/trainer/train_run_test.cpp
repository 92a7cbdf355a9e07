// End-to-end runs of the trainer on a tiny model: a smoke run (SFT + a few GRPO steps) whose
// metrics and checkpoints must be complete and loadable, a resumed run that must reproduce
// the uninterrupted one exactly, and rewards from a live reward server on loopback.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/types.h>
#include <torch/utils.h>
#include "tests/support/catch_torch.h"

#include "tests/support/files.h"
#include "tests/support/temp_dir.h"

#include "rewards/server/server.h"
#include "rewards/server/server_config.h"
#include "rl/model/decoder.h"
#include "rl/text/tokenizer.h"
#include "trainer/checkpoint.h"
#include "trainer/config.h"
#include "trainer/policy.h"
#include "trainer/run.h"

namespace fs = std::filesystem;
using rl::testing::ReadJsonLines;
using namespace rl::trainer;
using rl::testing::ReadFile;
using rl::testing::TempDir;

namespace {

// A run small enough for CI: a 2-layer model of width 32, 60 SFT steps (enough for some
// completions to earn rewards, so advantages and updates are not all zero), 4 GRPO steps.
TrainConfig TinyRun(const fs::path& output_dir) {
  TrainConfig c = ParseTrainConfig(R"(
run: {seed: 3, threads: 1}
model:
  tiny: {hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2,
         num_key_value_heads: 1, max_position_embeddings: 96}
tokenizer: {train_vocab_size: 300}
data:
  task: {num_train: 64, num_eval: 8}
rewards:
  spec:  # partial credit per tag: a barely trained policy already earns different rewards
    rules: [{name: format.tags, weight: 1}, {name: accuracy.math, weight: 1}]
rollout: {num_generations: 4, max_new_tokens: 20, batch_size: 16}
sft: {steps: 60, batch_size: 16, learning_rate: 1e-2}
grpo:
  steps: 4
  prompts_per_step: 2
  num_iterations: 2
  num_mini_batches: 2
  gradient_accumulation_steps: 2
  learning_rate: 1e-3
  lr_scheduler_type: cosine
  warmup_ratio: 0.25
  beta: 0.04
eval: {num_problems: 4}
checkpoint: {every: 2, keep_last: 5}
)",
                                   "tiny-run");
  c.run.output_dir = output_dir.string();
  return c;
}

// The metrics without wall-clock timings (which differ between any two runs).
nlohmann::json WithoutTimes(nlohmann::json m) {
  nlohmann::json out;
  for (auto& [key, value] : m.items()) {
    if (key.rfind("time/", 0) != 0 && key != "step_time") out[key] = value;
  }
  return out;
}

// What a run had on disk right after step 2 (checkpoint-2, the SFT policy, the evaluation before
// GRPO), copied into `resumed` as an interrupted run would have left it.
void CopyRunAtStep2(const fs::path& whole, const fs::path& resumed) {
  fs::create_directories(resumed);
  fs::copy(whole / "checkpoint-2", resumed / "checkpoint-2", fs::copy_options::recursive);
  fs::copy(whole / "sft", resumed / "sft", fs::copy_options::recursive);
  fs::copy(whole / "eval_before_grpo.json", resumed / "eval_before_grpo.json");
}

}  // namespace

TEST_CASE("a policy's tokenizer_config.json and chat_template.jinja travel with it into every save", "[run]") {
  const TempDir tmp;
  const TrainConfig config = TinyRun(tmp.path() / "run");
  const std::vector<std::string> corpus = {"<think>1 + 2 = 3</think><answer>3</answer>"};
  Policy tiny = MakeTinyPolicy(config, corpus);
  SavePolicy(tiny, (tmp.path() / "source").string());
  CHECK_FALSE(fs::exists(tmp.path() / "source" / "tokenizer_config.json"));  // none to copy
  const std::string tokenizer_config = R"({"chat_template": "{{ messages }}", "bos_token": null})";
  std::ofstream(tmp.path() / "source" / "tokenizer_config.json") << tokenizer_config;
  std::ofstream(tmp.path() / "source" / "chat_template.jinja") << "{{ messages }}";
  Policy loaded = LoadPolicy((tmp.path() / "source").string(), "", config);
  SavePolicy(loaded, (tmp.path() / "saved").string());
  CHECK(ReadFile(tmp.path() / "saved" / "tokenizer_config.json") == tokenizer_config);
  CHECK(ReadFile(tmp.path() / "saved" / "chat_template.jinja") == "{{ messages }}");
}

TEST_CASE("smoke run: metrics, checkpoints and the final model are complete and loadable", "[run]") {
  const TempDir smoke_dir;
  const fs::path dir = smoke_dir.path();
  // A stale checkpoint of an earlier run in the same directory: a fresh run removes it.
  fs::create_directories(dir / "checkpoint-99");
  std::ofstream(dir / "checkpoint-99" / "trainer_state.json") << "{}";
  RunSummary summary = RunTraining(TinyRun(dir), {});
  CHECK_FALSE(fs::exists(dir / "checkpoint-99"));
  CHECK(summary.grpo_steps == 4);
  REQUIRE(summary.before);
  REQUIRE(summary.after);
  CHECK(summary.after->completions == 4);

  std::vector<nlohmann::json> metrics = ReadJsonLines(dir / "metrics.jsonl");
  REQUIRE(metrics.size() == 4);
  for (const char* key : {"step", "epoch", "reward", "reward_std", "reward_std_within_group", "rewards/format.tags/mean",
                          "rewards/accuracy.math/mean", "frac_reward_zero_std", "kl", "entropy", "clip_ratio/low_mean",
                          "clip_ratio/high_mean", "clip_ratio/low_min", "clip_ratio/high_max", "completions/mean_length",
                          "completions/clipped_ratio", "completions/min_terminated_length",
                          "completions/max_terminated_length", "loss", "grad_norm", "learning_rate",
                          "step_time", "time/generation", "time/scoring", "time/old_logprobs", "time/ref_logprobs",
                          "time/backward", "time/optimizer"}) {
    INFO(key);
    CHECK(metrics.back().contains(key));
  }
  for (size_t i = 0; i < metrics.size(); ++i) {
    CHECK(metrics[i]["step"] == i + 1);
    CHECK(std::isfinite(metrics[i]["loss"].get<double>()));
    CHECK(metrics[i]["kl"].get<double>() >= 0.0);
  }
  // The run had signal: some group with different rewards, so some non-zero gradient.
  double max_reward_std = 0, max_grad_norm = 0;
  for (const nlohmann::json& m : metrics) {
    max_reward_std = std::max(max_reward_std, m["reward_std"].get<double>());
    max_grad_norm = std::max(max_grad_norm, m["grad_norm"].get<double>());
  }
  CHECK(max_reward_std > 0.0);
  CHECK(max_grad_norm > 0.0);

  // keep_last 5: both checkpoints, complete; no temporary directory left behind.
  for (const char* name : {"checkpoint-2", "checkpoint-4"}) {
    for (const char* file : {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
                             "optimizer.pt", "rng_state.pt", "trainer_state.json"}) {
      INFO(name << "/" << file);
      CHECK(fs::exists(dir / name / file));
    }
  }
  CHECK_FALSE(fs::exists(dir / "checkpoint-4.tmp"));
  CHECK(FindLatestCheckpoint(dir.string()) == (dir / "checkpoint-4").string());
  rl::model::Decoder loaded = rl::model::LoadDecoder((dir / "checkpoint-4").string(), torch::kFloat32, torch::kCPU);
  rl::model::Decoder final_model = rl::model::LoadDecoder((dir / "final").string(), torch::kFloat32, torch::kCPU);
  CHECK(loaded->parameters().size() == final_model->parameters().size());
  std::string error;
  CHECK(rl::text::Tokenizer::FromFile((dir / "final" / "tokenizer.json").string(), &error) != nullptr);
  nlohmann::json eval = nlohmann::json::parse(ReadFile(dir / "eval.json"));
  CHECK(eval.contains("before_grpo"));
  CHECK(eval.contains("after_grpo"));
  CHECK_THAT(FormatEvalTable(summary), Catch::Contains("policy after GRPO"));
}

TEST_CASE("a run resumed from a checkpoint reproduces the uninterrupted run exactly", "[run][resume]") {
  const TempDir whole_dir;
  const fs::path whole = whole_dir.path();
  RunTraining(TinyRun(whole), {});

  // The "interrupted" run: what the whole run had on disk right after step 2.
  const TempDir resumed_dir;
  const fs::path resumed = resumed_dir.path();
  CopyRunAtStep2(whole, resumed);
  {
    std::vector<nlohmann::json> lines = ReadJsonLines(whole / "metrics.jsonl");
    std::ofstream out(resumed / "metrics.jsonl");
    out << lines[0].dump() << "\n" << lines[1].dump() << "\n" << "{\"step\": 3, \"partial\": true}\n";
  }
  RunSummary summary = RunTraining(TinyRun(resumed), {.resume = true, .resume_from = {}, .world = {}});
  CHECK(summary.grpo_steps == 4);

  std::vector<nlohmann::json> a = ReadJsonLines(whole / "metrics.jsonl");
  std::vector<nlohmann::json> b = ReadJsonLines(resumed / "metrics.jsonl");
  REQUIRE(a.size() == 4);
  REQUIRE(b.size() == 4);  // the partial line of step 3 was replaced
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("step " << i + 1);
    CHECK(WithoutTimes(a[i]).dump() == WithoutTimes(b[i]).dump());
  }
  CHECK(ReadFile(whole / "final" / "model.safetensors") == ReadFile(resumed / "final" / "model.safetensors"));
}

TEST_CASE("with sync_ref_model the moving reference resumes from the checkpoint", "[run][resume]") {
  auto config = [](const fs::path& dir) {
    TrainConfig c = TinyRun(dir);
    c.grpo.sync_ref_model = true;  // every update mixes the policy into the reference
    c.grpo.ref_model_sync_steps = 1;
    c.grpo.ref_model_mixup_alpha = 0.5;
    return c;
  };
  const TempDir whole_dir;
  const fs::path whole = whole_dir.path();
  RunTraining(config(whole), {});
  CHECK(fs::exists(whole / "checkpoint-2" / "reference" / "model.safetensors"));
  const TempDir resumed_dir;
  const fs::path resumed = resumed_dir.path();
  CopyRunAtStep2(whole, resumed);
  {
    std::vector<nlohmann::json> lines = ReadJsonLines(whole / "metrics.jsonl");
    std::ofstream(resumed / "metrics.jsonl") << lines[0].dump() << "\n" << lines[1].dump() << "\n";
  }
  RunTraining(config(resumed), {.resume = true, .resume_from = {}, .world = {}});
  const std::vector<nlohmann::json> a = ReadJsonLines(whole / "metrics.jsonl"), b = ReadJsonLines(resumed / "metrics.jsonl");
  REQUIRE(a.size() == 4);
  REQUIRE(b.size() == 4);
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("step " << i + 1);
    CHECK(WithoutTimes(a[i]).dump() == WithoutTimes(b[i]).dump());  // kl included
  }
}

// The tiny run with a LoRA adapter on the SFT policy (dropout included: resume must restore its
// random stream too) and the KL term against the base.
TrainConfig TinyLoraRun(const fs::path& output_dir) {
  TrainConfig c = TinyRun(output_dir);
  c.grpo.lora.r = 4;
  c.grpo.lora.alpha = 8;
  c.grpo.lora.dropout = 0.1;
  c.grpo.lora.target_modules = {"q_proj", "v_proj", "up_proj", "down_proj"};
  c.grpo.optim.learning_rate = 1e-2;
  return c;
}

torch::Tensor FinalLogits(rl::model::DecoderImpl& model) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  return model.forward(torch::randint(0, model.config().vocab_size, {2, 9}, torch::kLong), {}, {});
}

TEST_CASE("GRPO with LoRA: adapters in PEFT's layout, the base as reference, merged weights, exact resume",
          "[run][lora]") {
  const TempDir whole_dir;
  const fs::path whole = whole_dir.path();
  const TrainConfig config = TinyLoraRun(whole);
  RunSummary summary = RunTraining(config, {});
  CHECK(summary.grpo_steps == 4);
  std::vector<nlohmann::json> metrics = ReadJsonLines(whole / "metrics.jsonl");
  REQUIRE(metrics.size() == 4);
  double max_kl = 0;
  for (const nlohmann::json& m : metrics) max_kl = std::max(max_kl, m["kl"].get<double>());
  CHECK(max_kl > 0);  // the adapters moved the policy away from its base, the reference

  for (const fs::path& dir : {whole / "checkpoint-2", whole / "final"}) {
    INFO(dir);
    CHECK(fs::exists(dir / "adapter_config.json"));
    CHECK(fs::exists(dir / "adapter_model.safetensors"));
    CHECK(fs::exists(dir / "tokenizer.json"));
    CHECK_FALSE(fs::exists(dir / "model.safetensors"));
  }
  CHECK(fs::exists(whole / "checkpoint-2" / "optimizer.pt"));
  const nlohmann::json adapter = nlohmann::json::parse(ReadFile(whole / "final" / "adapter_config.json"));
  CHECK(adapter["base_model_name_or_path"] == fs::absolute(whole / "sft").lexically_normal().string());
  CHECK(adapter["r"] == 4);

  // final/merged/ is the adapter merged into its base: the same model as base + adapter.
  Policy with_adapter = LoadAdapterPolicy((whole / "final").string(), config);
  CHECK(with_adapter.lora.enabled());
  rl::model::Decoder merged = rl::model::LoadDecoder((whole / "final" / "merged").string(), torch::kFloat32, torch::kCPU);
  rl::model::Decoder base = rl::model::LoadDecoder((whole / "sft").string(), torch::kFloat32, torch::kCPU);
  const torch::Tensor adapted = FinalLogits(*with_adapter.model);
  CHECK((FinalLogits(*merged) - adapted).abs().max().item<double>() < 1e-4);
  CHECK((FinalLogits(*base) - adapted).abs().max().item<double>() > 1e-3);  // and it learned something

  // Resumed from checkpoint-2, the run ends where the uninterrupted one did.
  const TempDir resumed_dir;
  const fs::path resumed = resumed_dir.path();
  CopyRunAtStep2(whole, resumed);
  {
    // The checkpoint names its base by absolute path: point it at the copy, as a user moving a
    // run would (the uninterrupted run's directory still exists, so this is what is tested).
    nlohmann::json moved = nlohmann::json::parse(ReadFile(resumed / "checkpoint-2" / "adapter_config.json"));
    moved["base_model_name_or_path"] = (resumed / "sft").string();
    std::ofstream(resumed / "checkpoint-2" / "adapter_config.json") << moved.dump(2);
    nlohmann::json state = nlohmann::json::parse(ReadFile(resumed / "checkpoint-2" / "trainer_state.json"));
    state["reference_dir"] = (resumed / "sft").string();
    std::ofstream(resumed / "checkpoint-2" / "trainer_state.json") << state.dump(2);
    std::vector<nlohmann::json> lines = ReadJsonLines(whole / "metrics.jsonl");
    std::ofstream out(resumed / "metrics.jsonl");
    out << lines[0].dump() << "\n" << lines[1].dump() << "\n";
  }
  RunTraining(TinyLoraRun(resumed), {.resume = true, .resume_from = {}, .world = {}});
  std::vector<nlohmann::json> b = ReadJsonLines(resumed / "metrics.jsonl");
  REQUIRE(b.size() == 4);
  for (size_t i = 0; i < metrics.size(); ++i) {
    INFO("step " << i + 1);
    CHECK(WithoutTimes(metrics[i]).dump() == WithoutTimes(b[i]).dump());
  }
  CHECK(ReadFile(whole / "final" / "adapter_model.safetensors") ==
        ReadFile(resumed / "final" / "adapter_model.safetensors"));
}

TEST_CASE("SFT with LoRA: sft/ holds the merged policy, sft_adapter/ the adapter", "[run][lora]") {
  const TempDir dir_holder;
  const fs::path dir = dir_holder.path();
  TrainConfig config = TinyRun(dir);
  config.sft.lora.r = 8;
  config.sft.lora.alpha = 16;
  config.grpo.steps = 0;
  config.eval.num_problems = 0;
  RunTraining(config, {});
  CHECK(fs::exists(dir / "sft_adapter" / "adapter_model.safetensors"));
  CHECK(fs::exists(dir / "sft" / "model.safetensors"));
  Policy adapter = LoadAdapterPolicy((dir / "sft_adapter").string(), config);
  CHECK(adapter.lora.base_model_name_or_path == fs::absolute(dir / "initial").lexically_normal().string());
  rl::model::Decoder merged = rl::model::LoadDecoder((dir / "sft").string(), torch::kFloat32, torch::kCPU);
  rl::model::Decoder initial = rl::model::LoadDecoder((dir / "initial").string(), torch::kFloat32, torch::kCPU);
  const torch::Tensor adapted = FinalLogits(*adapter.model);
  CHECK((FinalLogits(*merged) - adapted).abs().max().item<double>() < 1e-4);
  CHECK((FinalLogits(*initial) - adapted).abs().max().item<double>() > 1e-2);
}

TEST_CASE("rewards from a live reward server on loopback", "[run][server]") {
  // The server and the in-process run score with the same spec (the tiny run's).
  const fs::path spec = fs::temp_directory_path() / "rl_trainer_test_reward.yaml";
  std::ofstream(spec) << TinyRun("unused").rewards.spec;
  rl::rewards::server::ServerConfig server_config;
  server_config.host = "127.0.0.1";
  server_config.port = 0;
  server_config.rewards = {{"tags", spec.string()}};
  std::string error;
  std::shared_ptr<const rl::rewards::server::RewardRegistry> registry = rl::rewards::server::RewardRegistry::FromConfig(server_config, &error);
  REQUIRE(registry);
  std::unique_ptr<rl::rewards::server::Server> server = rl::rewards::server::Server::Start(server_config, registry, &error);
  REQUIRE(server);
  const std::string url = "http://127.0.0.1:" + std::to_string(server->port());

  // The same run scored in process and over HTTP: identical metrics.
  const TempDir local_dir;
  const fs::path local = local_dir.path();
  const TempDir remote_dir;
  const fs::path remote = remote_dir.path();
  TrainConfig local_config = TinyRun(local);
  local_config.grpo.steps = 2;
  TrainConfig remote_config = local_config;
  remote_config.run.output_dir = remote.string();
  remote_config.rewards.server = {url};
  RunTraining(local_config, {});
  RunTraining(remote_config, {});
  std::vector<nlohmann::json> a = ReadJsonLines(local / "metrics.jsonl");
  std::vector<nlohmann::json> b = ReadJsonLines(remote / "metrics.jsonl");
  REQUIRE(a.size() == 2);
  REQUIRE(b.size() == 2);
  for (size_t i = 0; i < a.size(); ++i) CHECK(WithoutTimes(a[i]).dump() == WithoutTimes(b[i]).dump());

  // The server goes away: the resumed run fails clearly (no zero rewards) and the last
  // checkpoint stays complete.
  server->Shutdown();
  server->Wait();
  server.reset();
  remote_config.grpo.steps = 4;
  remote_config.rewards.max_retries = 1;
  remote_config.rewards.retry_backoff_s = 0.01;
  CHECK_THROWS_WITH(RunTraining(remote_config, {.resume = true, .resume_from = {}, .world = {}}), Catch::Contains("127.0.0.1"));
  CHECK(FindLatestCheckpoint(remote.string()) == (remote / "checkpoint-2").string());
  CHECK(ReadJsonLines(remote / "metrics.jsonl").size() == 2);
}

TEST_CASE("dynamic sampling keeps only groups with reward variance", "[run][dynamic]") {
  const TempDir dynamic_dir;
  const fs::path dir = dynamic_dir.path();
  TrainConfig config = TinyRun(dir);
  config.grpo.steps = 2;
  config.grpo.num_mini_batches = 1;
  config.grpo.gradient_accumulation_steps = 1;
  config.grpo.dynamic_sampling = true;
  config.grpo.dynamic_sampling_max_rounds = 3;
  RunTraining(config, {});
  std::vector<nlohmann::json> metrics = ReadJsonLines(dir / "metrics.jsonl");
  REQUIRE(metrics.size() == 2);
  for (const nlohmann::json& m : metrics) {
    const int64_t rounds = m["dynamic_sampling/rounds"].get<int64_t>();
    const int64_t kept = m["dynamic_sampling/kept_groups"].get<int64_t>();
    CHECK(rounds >= 1);
    CHECK(rounds <= 3);
    CHECK(kept <= config.grpo.prompts_per_step);
    // Another round is drawn only while the batch is not full.
    if (kept < config.grpo.prompts_per_step) CHECK(rounds == 3);
    if (rounds == 1 && m["frac_reward_zero_std"].get<double>() == 0.0) CHECK(kept == config.grpo.prompts_per_step);
  }
}

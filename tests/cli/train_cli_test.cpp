// `rl train` started as ranks by the torchrun convention (RANK, WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT), two processes on loopback as two machines would be: data-parallel SFT and GRPO
// with rank 0 alone writing, and a rank that never comes ending the other in an error within
// run.collective_timeout_s; and `--nproc 2`, which starts the ranks itself (a run resumed by
// one process, a failing rank, a killed rank). Then the command line: KEY=VALUE overrides and
// --resume CHECKPOINT_DIR.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "tests/support/event_file_reader.h"
#include "tests/support/ports.h"
#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
using rl::testing::RunProcess;
using rl::testing::ReadFile;
using rl::testing::TempDir;

namespace {

// A tiny from-scratch run: `grpo_steps` GRPO steps of `prompts` prompts (a checkpoint after each)
// after `sft_steps` SFT steps of 4 examples.
fs::path WriteConfig(const TempDir& dir, int grpo_steps, double timeout_s = 120, int sft_steps = 8, int prompts = 2) {
  const fs::path path = dir.path() / "run.yaml";
  std::ofstream(path) << "run: {seed: 2, threads: 1, collective_timeout_s: " << timeout_s
                      << ", output_dir: " << (dir.path() / "out").string() << "}\n"
                      << R"(model:
  tiny: {hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2,
         num_key_value_heads: 1, max_position_embeddings: 96}
tokenizer: {train_vocab_size: 300}
data:
  task: {num_train: 24, num_eval: 4}
rewards:
  spec: {rules: [{name: format.tags, weight: 1}]}
rollout: {num_generations: 2, max_new_tokens: 8}
eval: {num_problems: 4}
checkpoint: {every: 1, keep_last: 5}
)" << "grpo: {steps: " << grpo_steps << ", prompts_per_step: " << prompts << "}\n"
                      << "sft: {steps: " << sft_steps << ", batch_size: 4, learning_rate: 1e-2}\n";
  return path;
}

// The shell command of rank `rank` of `size`, its output in rank<r>.out/.err/.rc under `dir`.
std::string Rank(const TempDir& dir, const fs::path& config, int rank, int size, int port) {
  std::string prefix = "'";  // appended, not "'" + a temporary: GCC 12's -Wrestrict misfires on that
  prefix += (dir.path() / ("rank" + std::to_string(rank))).string();
  return "MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " WORLD_SIZE=" + std::to_string(size) +
         " RANK=" + std::to_string(rank) + " '" RL_BINARY "' train '" + config.string() + "' > " + prefix +
         ".out' 2> " + prefix + ".err'; echo $? > " + prefix + ".rc'";
}

struct RankResult {
  int rc = -1;
  std::string out, err;
  std::string log() const { return out + err; }  // spdlog's lines go to standard output
};

RankResult Read(const TempDir& dir, int rank) {
  const fs::path base = dir.path() / ("rank" + std::to_string(rank));
  RankResult r;
  std::istringstream(ReadFile(base.string() + ".rc")) >> r.rc;
  r.out = ReadFile(base.string() + ".out");
  r.err = ReadFile(base.string() + ".err");
  return r;
}

}  // namespace

std::vector<nlohmann::json> MetricsLines(const fs::path& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

TEST_CASE("rl train as two ranks: SFT and GRPO data-parallel, rank 0 alone writes", "[cli][distributed]") {
  TempDir dir;
  const fs::path config = WriteConfig(dir, /*grpo_steps=*/2);
  const int port = rl::testing::FreeLoopbackPort();
  RunProcess("( " + Rank(dir, config, 1, 2, port) + " ) & " + Rank(dir, config, 0, 2, port) + "; wait");
  const RankResult r0 = Read(dir, 0), r1 = Read(dir, 1);
  INFO("rank 0: " << r0.log() << "\nrank 1: " << r1.log());
  CHECK(r0.rc == 0);
  CHECK(r1.rc == 0);
  CHECK_THAT(r0.out, Catch::Contains("held-out problems"));  // the table, once
  CHECK_THAT(r0.log(), Catch::Contains("rank 0 of 2") && Catch::Contains("sft:") && Catch::Contains("grpo    2/2"));
  CHECK(r1.log().empty());  // other ranks log warnings only, and print no table
  const fs::path out = dir.path() / "out";
  CHECK(MetricsLines(out / "sft_metrics.jsonl").size() == 8);  // one line per step: rank 1 wrote nothing
  const std::vector<nlohmann::json> metrics = MetricsLines(out / "metrics.jsonl");
  REQUIRE(metrics.size() == 2);
  CHECK(metrics[1]["step"] == 2);
  CHECK(metrics[1]["world_size"] == 2);
  CHECK(fs::exists(out / "checkpoint-2" / "model.safetensors"));
  CHECK(fs::exists(out / "final" / "model.safetensors"));
}

TEST_CASE("rl train --nproc 2, then resumed by one process", "[cli][distributed]") {
  TempDir dir;
  const fs::path config = WriteConfig(dir, /*grpo_steps=*/2);
  const rl::testing::ProcessResult r = RunProcess("'" RL_BINARY "' train '" + config.string() + "' --nproc 2");
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("rank 0 of 2") && Catch::Contains("held-out problems"));
  // Two more steps from the last checkpoint, with another number of ranks.
  const fs::path longer = WriteConfig(dir, /*grpo_steps=*/4);
  const rl::testing::ProcessResult resumed = RunProcess("'" RL_BINARY "' train '" + longer.string() + "' --resume");
  INFO(resumed.out << resumed.err);
  CHECK(resumed.exit_code == 0);
  const std::vector<nlohmann::json> metrics = MetricsLines(dir.path() / "out" / "metrics.jsonl");
  REQUIRE(metrics.size() == 4);
  CHECK(metrics[1]["world_size"] == 2);
  CHECK(metrics[2]["step"] == 3);
  CHECK(metrics[2]["world_size"] == 1);
}

TEST_CASE("a rank that never comes: the other stops with an error within the timeout", "[cli][distributed]") {
  TempDir dir;
  const fs::path config = WriteConfig(dir, /*grpo_steps=*/0, /*timeout_s=*/2);
  const int port = rl::testing::FreeLoopbackPort();
  const auto start = std::chrono::steady_clock::now();
  RunProcess(Rank(dir, config, 0, 2, port));
  const RankResult r0 = Read(dir, 0);
  CHECK(r0.rc == 1);
  CHECK_THAT(r0.log(), Catch::Contains("rank 0 of 2: joining the ranks at 127.0.0.1:" + std::to_string(port) + " failed"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(60));
}

TEST_CASE("rl train --nproc 2: a failing rank's status is the launcher's", "[cli][distributed]") {
  TempDir dir;
  // One prompt per step cannot be shared by two ranks: every rank refuses it.
  const fs::path config = WriteConfig(dir, /*grpo_steps=*/2, 120, 8, /*prompts=*/1);
  const rl::testing::ProcessResult r = RunProcess("'" RL_BINARY "' train '" + config.string() + "' --nproc 2");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.out + r.err, Catch::Contains("grpo.prompts_per_step (1) is smaller than the number of ranks (2)") &&
                                Catch::Contains("stopping the other ranks"));
  const rl::testing::ProcessResult nested =
      RunProcess("WORLD_SIZE=2 '" RL_BINARY "' train '" + config.string() + "' --nproc 2");
  CHECK(nested.exit_code == 2);
  CHECK_THAT(nested.out + nested.err, Catch::Contains("start the ranks with one launcher"));
}

TEST_CASE("rl train --nproc 2: a rank killed mid-run stops the other, nothing hangs", "[cli][distributed]") {
  TempDir dir;
  const fs::path config = WriteConfig(dir, /*grpo_steps=*/0, /*timeout_s=*/120, /*sft_steps=*/1000000);
  const fs::path metrics = dir.path() / "out" / "sft_metrics.jsonl";
  // The launcher in the background; once SFT is under way, one rank (a child of the
  // launcher, found through /proc) is killed outright.
  const std::string script =
      "'" RL_BINARY "' train '" + config.string() + "' --nproc 2 > '" + (dir.path() / "log").string() +
      "' 2>&1 & L=$!\n"
      "for i in $(seq 600); do [ -s '" + metrics.string() + "' ] && break; sleep 0.1; done\n"
      "kids=''; for s in /proc/[0-9]*/stat; do read -r pid comm state ppid rest < $s 2>/dev/null; "
      "[ \"$ppid\" = \"$L\" ] && kids=\"$kids $pid\"; done\n"
      "kill -9 ${kids##* }\n"
      "wait $L; echo \"rc=$?\"\n"
      "for k in $kids; do kill -0 $k 2>/dev/null && echo \"alive $k\"; done; true";
  const auto start = std::chrono::steady_clock::now();
  const rl::testing::ProcessResult r = RunProcess(script);
  const std::string log = ReadFile(dir.path() / "log");
  INFO(r.out << log);
  CHECK_THAT(r.out, Catch::Contains("rc=137") && !Catch::Contains("alive"));  // the killed rank's status; no orphan
  // The launcher names the rank that failed (rank 0 may see its peer gone first and say so, or be
  // stopped before it does).
  CHECK_THAT(log, Catch::Contains("failed (status 137); stopping the other ranks"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(120));
}

TEST_CASE("rl train KEY=VALUE overrides: applied before the schema reads, shown by --print-config", "[cli][config]") {
  TempDir dir;
  const fs::path config = WriteConfig(dir, /*grpo_steps=*/2);
  const std::string rl = "'" RL_BINARY "' train '" + config.string() + "' ";
  const rl::testing::ProcessResult shown =
      RunProcess(rl + "grpo.steps=3 'rollout.stop_strings=[a, b]' run.output_dir=/tmp/x --print-config");
  INFO(shown.out << shown.err);
  REQUIRE(shown.exit_code == 0);
  const YAML::Node printed = YAML::Load(shown.out);
  CHECK(printed["grpo"]["steps"].as<int>() == 3);
  CHECK(printed["grpo"]["prompts_per_step"].as<int>() == 2);  // the file's, untouched
  CHECK(printed["rollout"]["stop_strings"].as<std::vector<std::string>>() == std::vector<std::string>{"a", "b"});
  CHECK(printed["run"]["output_dir"].as<std::string>() == "/tmp/x");
  const rl::testing::ProcessResult typo = RunProcess(rl + "grpo.lerning_rate=1e-3 --print-config");
  CHECK(typo.exit_code == 2);
  CHECK_THAT(typo.out + typo.err, Catch::Contains("command-line override grpo.lerning_rate=1e-3: grpo.lerning_rate: "
                                                  "unknown key; did you mean 'learning_rate'?"));
  const rl::testing::ProcessResult range = RunProcess(rl + "grpo.steps=-1");
  CHECK(range.exit_code == 2);
  CHECK_THAT(range.out + range.err, Catch::Contains("command-line override grpo.steps=-1: grpo.steps: value -1 out of "
                                                    "range"));
}

// Issue 17's evidence: a short run whose settings come from the command line, TensorBoard on; its
// event file, read by the spec-written reader, holds metrics.jsonl's values step by step.
TEST_CASE("rl train configured by overrides writes TensorBoard events equal to its metrics", "[cli][config]") {
  TempDir dir;
  const fs::path config = WriteConfig(dir, /*grpo_steps=*/1, 120, /*sft_steps=*/1);
  const fs::path out = dir.path() / "overridden";
  const rl::testing::ProcessResult run = RunProcess("'" RL_BINARY "' train '" + config.string() + "' grpo.steps=2 sft.steps=2 "
                                                    "run.tensorboard=true run.logging_steps=2 run.output_dir='" + out.string() + "'");
  INFO(run.out << run.err);
  REQUIRE(run.exit_code == 0);
  const std::vector<nlohmann::json> metrics = rl::testing::ReadJsonLines(out / "metrics.jsonl");
  REQUIRE(metrics.size() == 2);
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(out / "tensorboard")) files.push_back(entry.path());
  REQUIRE(files.size() == 1);
  const std::vector<rl::testing::TbEvent> events = rl::testing::ReadEventFile(files[0].string());
  int matched = 0;
  for (const rl::testing::TbEvent& event : events) {
    for (const auto& [tag, value] : event.values) {
      if (tag != "train/reward" && tag != "train/loss") continue;
      REQUIRE(event.step >= 1);
      REQUIRE(event.step <= 2);
      const nlohmann::json& m = metrics[static_cast<size_t>(event.step - 1)];
      CHECK(value == Approx(m[tag.substr(6)].get<double>()).epsilon(1e-6));
      ++matched;
    }
  }
  CHECK(matched == 4);  // two tags, two steps
}

// checkpoint.max_shard_size_mb reaches every save (issue 13: transformers' sharded layout above a
// size), and config.yaml records the tokenizer's defaults made concrete.
TEST_CASE("rl train shards the weights it writes above checkpoint.max_shard_size_mb", "[cli][checkpoint]") {
  TempDir dir;
  const fs::path config = WriteConfig(dir, /*grpo_steps=*/1, 120, /*sft_steps=*/1);
  // About 2.5 MB of float32 weights: three shards of at most 1 MB.
  const rl::testing::ProcessResult run = RunProcess("'" RL_BINARY "' train '" + config.string() + "' "
                                                    "model.tiny.hidden_size=256 model.tiny.intermediate_size=512 "
                                                    "checkpoint.max_shard_size_mb=1");
  INFO(run.out << run.err);
  REQUIRE(run.exit_code == 0);
  for (const char* saved : {"sft", "checkpoint-1", "final"}) {
    const fs::path index = dir.path() / "out" / saved / "model.safetensors.index.json";
    INFO(saved);
    REQUIRE(fs::exists(index));
    CHECK_FALSE(fs::exists(dir.path() / "out" / saved / "model.safetensors"));
    const nlohmann::json map = nlohmann::json::parse(ReadFile(index.string()))["weight_map"];
    std::set<std::string> shards;
    for (const auto& [name, file] : map.items()) shards.insert(file.get<std::string>());
    CHECK(shards.size() >= 3);
    for (const std::string& shard : shards) CHECK(fs::file_size(dir.path() / "out" / saved / shard) <= 1'000'000);
  }
  const YAML::Node recorded = YAML::LoadFile((dir.path() / "out" / "config.yaml").string());
  CHECK(recorded["tokenizer"]["eos_token"].as<std::string>() == "<|endoftext|>");
  CHECK(recorded["tokenizer"]["prompt_format"].as<std::string>() == "plain");
}

TEST_CASE("rl train --resume CHECKPOINT_DIR: from that checkpoint; an incomplete one is named", "[cli][resume]") {
  TempDir dir;
  const fs::path config = WriteConfig(dir, /*grpo_steps=*/2);
  const std::string rl = "'" RL_BINARY "' train '" + config.string() + "' ";
  const rl::testing::ProcessResult first = RunProcess(rl);
  INFO(first.out << first.err);
  REQUIRE(first.exit_code == 0);
  // Step 2 again from checkpoint-1, into another output directory.
  const fs::path checkpoint = dir.path() / "out" / "checkpoint-1", other = dir.path() / "other";
  const rl::testing::ProcessResult again =
      RunProcess(rl + "run.output_dir='" + other.string() + "' --resume '" + checkpoint.string() + "'");
  INFO(again.out << again.err);
  REQUIRE(again.exit_code == 0);
  CHECK_THAT(again.out, Catch::Contains("resume: from " + checkpoint.string()));
  const std::vector<nlohmann::json> metrics = MetricsLines(other / "metrics.jsonl");
  REQUIRE(metrics.size() == 1);
  CHECK(metrics[0]["step"] == 2);
  CHECK(metrics[0]["loss"] == MetricsLines(dir.path() / "out" / "metrics.jsonl")[1]["loss"]);  // the same step
  // Without a value: the newest checkpoint of run.output_dir; an override after --resume is one.
  const rl::testing::ProcessResult newest = RunProcess(rl + "--resume grpo.steps=3");
  INFO(newest.out << newest.err);
  REQUIRE(newest.exit_code == 0);
  CHECK_THAT(newest.out, Catch::Contains("checkpoint-2"));
  CHECK(MetricsLines(dir.path() / "out" / "metrics.jsonl").size() == 3);
  // A checkpoint missing files is refused before anything is trained, naming what it lacks.
  const fs::path broken = dir.path() / "broken";
  fs::copy(checkpoint, broken, fs::copy_options::recursive);
  fs::remove(broken / "optimizer.pt");
  fs::remove(broken / "rng_state.pt");
  const rl::testing::ProcessResult refused = RunProcess(rl + "--resume '" + broken.string() + "'");
  CHECK(refused.exit_code == 1);
  CHECK_THAT(refused.out + refused.err,
             Catch::Contains(broken.string() + " is not a complete checkpoint: it lacks optimizer.pt, rng_state.pt"));
  const rl::testing::ProcessResult missing = RunProcess(rl + "--resume '" + (dir.path() / "nowhere").string() + "'");
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.out + missing.err, Catch::Contains("nowhere: no such checkpoint directory"));
}

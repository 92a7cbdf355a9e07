#include <cmath>

#include <catch2/catch.hpp>

#include "trainer/config.h"

using namespace rl::trainer;

TEST_CASE("defaults and a round trip through --print-config", "[config]") {
  TrainConfig c = ParseTrainConfig(
      "run: {name: t, seed: 3}\n"
      "grpo:\n"
      "  steps: 10\n"
      "  loss_type: dr_grpo\n"
      "  epsilon_high: 0.28\n"
      "  learning_rate: 1e-5\n"
      "rewards:\n"
      "  spec: {rules: [{name: format.think_answer, weight: 1}]}\n"
      "rollout: {stop_strings: ['</answer>']}\n",
      "t.yaml");
  CHECK(c.run.name == "t");
  CHECK(c.run.seed == 3);
  CHECK(c.grpo.loss_type == LossType::kDrGrpo);
  CHECK(c.grpo.epsilon_high == 0.28);
  CHECK(c.grpo.optim.learning_rate == 1e-5);
  CHECK(c.grpo.scale_rewards == ScaleRewards::kGroup);  // default
  CHECK(c.rollout.stop_strings == std::vector<std::string>{"</answer>"});
  CHECK_THAT(c.rewards.spec, Catch::Contains("format.think_answer"));

  const std::string printed = ToYaml(c);
  CHECK_THAT(printed, Catch::Contains("loss_type: dr_grpo"));
  TrainConfig again = ParseTrainConfig(printed, "printed");
  CHECK(ToYaml(again) == printed);
  CHECK(again.grpo.epsilon_high == 0.28);
  CHECK(again.rewards.spec == c.rewards.spec);
}

TEST_CASE("an empty file is the defaults", "[config]") {
  TrainConfig c = ParseTrainConfig("", "empty.yaml");
  CHECK(c.grpo.steps == 0);
  CHECK_FALSE(c.grpo.epsilon_high.has_value());
}

TEST_CASE("unknown keys name the nearest valid key and the line", "[config]") {
  CHECK_THROWS_WITH(ParseTrainConfig("run:\n  seed: 1\ngrpo:\n  lerning_rate: 0.1\n", "c.yaml"),
                    Catch::StartsWith("c.yaml:4: grpo.lerning_rate: unknown key; did you mean 'learning_rate'?"));
  CHECK_THROWS_WITH(ParseTrainConfig("rollut: {}\n", "c.yaml"),
                    Catch::StartsWith("c.yaml:1: rollut: unknown key; did you mean 'rollout'?"));
  CHECK_THROWS_WITH(ParseTrainConfig("model:\n  tiny:\n    hiden_size: 3\n", "c.yaml"),
                    Catch::StartsWith("c.yaml:3: model.tiny.hiden_size: unknown key; did you mean 'hidden_size'?"));
}

TEST_CASE("wrong types and ranges name the key and its line", "[config]") {
  CHECK_THROWS_WITH(ParseTrainConfig("grpo:\n  steps: 10\n  beta: lots\n", "c.yaml"),
                    Catch::StartsWith("c.yaml:3: grpo.beta: expected a number, got 'lots'"));
  CHECK_THROWS_WITH(ParseTrainConfig("grpo:\n  steps: 1.5\n", "c.yaml"),
                    Catch::StartsWith("c.yaml:2: grpo.steps: expected an integer, got '1.5'"));
  CHECK_THROWS_WITH(ParseTrainConfig("data:\n  shuffle: maybe\n", "c.yaml"),
                    Catch::StartsWith("c.yaml:2: data.shuffle: expected true or false"));
  CHECK_THROWS_WITH(ParseTrainConfig("rollout:\n  stop_strings: '</answer>'\n", "c.yaml"),
                    Catch::StartsWith("c.yaml:2: rollout.stop_strings: expected a list of strings"));
  CHECK_THROWS_WITH(ParseTrainConfig("grpo:\n  loss_type: ppo\n", "c.yaml"),
                    Catch::Contains("grpo.loss_type: expected one of 'grpo', 'dapo', 'dr_grpo', 'bnpo', 'cispo', got 'ppo'"));
  CHECK_THROWS_WITH(ParseTrainConfig("rollout:\n  temperature: -1\n", "c.yaml"),
                    Catch::StartsWith("c.yaml:2: rollout.temperature: value -1 out of range"));
  CHECK_THROWS_WITH(ParseTrainConfig("grpo: 3\n", "c.yaml"),
                    Catch::StartsWith("c.yaml:1: grpo: expected a mapping"));
  CHECK_THROWS_WITH(ParseTrainConfig("grpo: {steps: [1}\n", "c.yaml"), Catch::Contains("not valid YAML"));
}

// Found by train_config_fuzz: yaml-cpp read control bytes in an inline spec, wrote them in
// text it could not read back, and --print-config threw from YAML's parser.
TEST_CASE("bytes outside YAML's character set are refused at their line", "[config]") {
  CHECK_THROWS_WITH(ParseTrainConfig("rewards:\n  spec:\n    rules: [{name: \"a\x1e\"}]\n", "c.yaml"),
                    Catch::StartsWith("c.yaml:3: not valid YAML: byte 0x1E is a control character"));
  CHECK_THROWS_WITH(ParseTrainConfig("run: {name: \"\xff\"}\n", "c.yaml"),
                    Catch::StartsWith("c.yaml:1: not valid YAML: byte 0xFF is not UTF-8"));
  CHECK_NOTHROW(ParseTrainConfig("run: {name: \"caf\xc3\xa9\t\"}\r\n", "c.yaml"));
}

TEST_CASE("an error carries its file, line and key path as data", "[config]") {
  try {
    ParseTrainConfig("run: {seed: 1}\ngrpo:\n  beta: lots\n", "c.yaml");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(e.origin() == "c.yaml");
    CHECK(e.line() == 3);
    CHECK(e.path() == "grpo.beta");
    CHECK(e.detail() == "expected a number, got 'lots'");
  }
}

TEST_CASE("rollout.dtype: float32 by default, bfloat16 on request, printed either way", "[config]") {
  TrainConfig defaults = ParseTrainConfig("rollout: {num_generations: 4}\n", "d.yaml");
  CHECK(defaults.rollout.dtype == Precision::kFloat32);
  CHECK_THAT(ToYaml(defaults), Catch::Contains("dtype: float32"));

  TrainConfig bf16 = ParseTrainConfig("rollout:\n  dtype: bfloat16\n", "b.yaml");
  CHECK(bf16.rollout.dtype == Precision::kBFloat16);
  const std::string printed = ToYaml(bf16);
  CHECK_THAT(printed, Catch::Contains("dtype: bfloat16"));
  CHECK(ParseTrainConfig(printed, "printed").rollout.dtype == Precision::kBFloat16);

  CHECK_THROWS_WITH(ParseTrainConfig("run: {seed: 1}\nrollout:\n  top_k: 5\n  dtype: fp16\n", "c.yaml"),
                    Catch::StartsWith("c.yaml:4: rollout.dtype: expected one of 'float32', 'bfloat16', got 'fp16'"));
}

TEST_CASE("this round's training keys read, print back, and their cross-field rules hold", "[config]") {
  const TrainConfig c = ParseTrainConfig(R"(
sft: {train_dtype: bfloat16, gradient_checkpointing: true}
grpo:
  train_dtype: bfloat16
  gradient_checkpointing: true
  loss_type: cispo
  epsilon_high: 5.0
  importance_sampling_level: sequence
  delta: 1.5
  top_entropy_quantile: 0.2
  entropy_coef: 0.01
  beta: 0.04
  sync_ref_model: true
  ref_model_sync_steps: 64
  rollout_importance_sampling_correction: true
  rollout_importance_sampling_mode: sequence_mask
  rollout_importance_sampling_clip_min: 0.5
rollout: {repetition_penalty: 1.1}
)", "new.yaml");
  CHECK(c.sft.train_dtype == Precision::kBFloat16);
  CHECK(c.grpo.gradient_checkpointing);
  CHECK(c.grpo.loss_type == LossType::kCispo);
  CHECK(c.grpo.importance_sampling_level == ImportanceSamplingLevel::kSequence);
  CHECK(c.grpo.delta == 1.5);
  CHECK(c.grpo.rollout_importance_sampling_mode == RolloutIsMode::kSequenceMask);
  CHECK(c.grpo.rollout_importance_sampling_clip_max == 3.0);
  CHECK(c.rollout.repetition_penalty == 1.1);
  const TrainConfig again = ParseTrainConfig(ToYaml(c), "printed");
  CHECK(ToYaml(again) == ToYaml(c));

  CHECK_THROWS_WITH(ParseTrainConfig("grpo: {sync_ref_model: true}\n", "s.yaml"),
                    Catch::Contains("grpo.sync_ref_model needs a reference model"));
  CHECK_THROWS_WITH(ParseTrainConfig("grpo: {rollout_importance_sampling_clip_min: 4}\n", "m.yaml"),
                    Catch::Contains("clip_min must be below"));
  CHECK_THROWS_WITH(ParseTrainConfig("grpo: {delta: 0.5}\n", "d.yaml"), Catch::Contains("grpo.delta"));
}

TEST_CASE("rewards.server: one URL or a list of them, printed as given", "[config]") {
  TrainConfig one = ParseTrainConfig("rewards:\n  server: http://127.0.0.1:8000\n", "one.yaml");
  CHECK(one.rewards.server == std::vector<std::string>{"http://127.0.0.1:8000"});
  CHECK_THAT(ToYaml(one), Catch::Contains("server: http://127.0.0.1:8000\n"));

  TrainConfig two = ParseTrainConfig("rewards:\n  server: [http://a:1, http://b:2]\n", "two.yaml");
  CHECK(two.rewards.server == std::vector<std::string>{"http://a:1", "http://b:2"});
  CHECK(ParseTrainConfig(ToYaml(two), "printed").rewards.server == two.rewards.server);

  CHECK(ParseTrainConfig("run: {seed: 1}\n", "none.yaml").rewards.server.empty());
  CHECK_THROWS_WITH(ParseTrainConfig("rewards:\n  server: {url: http://a:1}\n", "c.yaml"),
                    Catch::StartsWith("c.yaml:2: rewards.server: expected a string or a list of strings, got a mapping"));
  CHECK_THROWS_WITH(ParseTrainConfig("rewards:\n  server: [[http://a:1]]\n", "c.yaml"),
                    Catch::StartsWith("c.yaml:2: rewards.server: expected a list of strings, got a list in it"));
}

TEST_CASE("cross-field checks", "[config]") {
  CHECK_THROWS_WITH(ParseTrainConfig("grpo: {steps: 1}\nrollout: {num_generations: 1}\n", "c.yaml"),
                    Catch::Contains("num_generations must be at least 2"));
  CHECK_THROWS_WITH(
      ParseTrainConfig("grpo: {steps: 1, prompts_per_step: 3, num_mini_batches: 2}\nrollout: {num_generations: 3}\n", "c.yaml"),
      Catch::Contains("must be divisible"));
}

TEST_CASE("found by fuzzing: keys that are not strings and batches that overflow", "[config]") {
  // tests/fuzz/train_config_fuzz.cpp: yaml-cpp's bad-conversion exception escaped
  // ParseTrainConfig for a mapping used as a key ...
  CHECK_THROWS_WITH(ParseTrainConfig("grpo:\n  ? {lerning_rate: 1}\n  : 1e-3\n", "k.yaml"),
                    "k.yaml:2: grpo: keys must be strings, got a mapping");
  CHECK_THROWS_WITH(ParseTrainConfig("? [run]\n: {}\n", "k.yaml"),
                    "k.yaml:1: (top level): keys must be strings, got a list");
  // ... and prompts_per_step * num_generations overflowed int64 (undefined behaviour).
  CHECK_THROWS_WITH(ParseTrainConfig("grpo: {steps: 1, prompts_per_step: 4611686018427387904}\n"
                                     "rollout: {num_generations: 4}\n",
                                     "o.yaml"),
                    Catch::Contains("too large"));
}

TEST_CASE("grpo.lora and sft.lora: off by default, PEFT's settings, targets checked by name", "[config]") {
  TrainConfig off = ParseTrainConfig("", "empty.yaml");
  CHECK_FALSE(off.grpo.lora.enabled());
  CHECK_FALSE(off.sft.lora.enabled());
  TrainConfig c = ParseTrainConfig(
      "grpo:\n"
      "  lora: {r: 16, alpha: 32, dropout: 0.05, target_modules: [q_proj, v_proj]}\n"
      "sft:\n"
      "  lora: {r: 8, use_rslora: true}\n",
      "lora.yaml");
  CHECK(c.grpo.lora.enabled());
  CHECK(c.grpo.lora.scale() == 2.0);
  CHECK(c.grpo.lora.target_modules == std::vector<std::string>{"q_proj", "v_proj"});
  CHECK(c.sft.lora.target_modules.size() == 7);  // the default: every linear module but lm_head
  CHECK(c.sft.lora.scale() == Approx(32.0 / std::sqrt(8.0)));
  TrainConfig again = ParseTrainConfig(ToYaml(c), "printed");
  CHECK(ToYaml(again) == ToYaml(c));
  CHECK_THROWS_WITH(ParseTrainConfig("grpo: {lora: {r: 4, target_modules: [q_proj, qproj]}}", "bad.yaml"),
                    Catch::Contains("'qproj' is not a linear module") && Catch::Contains("grpo.lora"));
  CHECK_THROWS_WITH(ParseTrainConfig("grpo: {lora: {r: 4, dropout: 1}}", "bad.yaml"),
                    Catch::Contains("grpo.lora.dropout"));
  CHECK_THROWS_WITH(ParseTrainConfig("grpo: {lora: {rank: 4}}", "bad.yaml"), Catch::Contains("did you mean 'r'"));
}

TEST_CASE("the shipped training configs parse", "[config]") {
  // Tests run in tests/: the configs are one level up.
  const TrainConfig quickstart = LoadTrainConfig("../configs/quickstart.yaml");
  CHECK_FALSE(quickstart.grpo.lora.enabled());
  const TrainConfig lora = LoadTrainConfig("../configs/quickstart_lora.yaml");
  CHECK(lora.grpo.lora.r == 16);
  CHECK(lora.model.path == "runs/quickstart/sft");
  CHECK(lora.run.seed == quickstart.run.seed);  // the same held-out problems
}

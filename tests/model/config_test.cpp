// config.json and generation_config.json: both RoPE layouts, defaults, refusals, round trips.
#include <catch2/catch.hpp>

#include <fstream>

#include <nlohmann/json.hpp>

#include "rl/model/config.h"
#include "tests/support/temp_dir.h"

using Catch::Matchers::Contains;
using rl::model::GenerationConfig;
using rl::model::ModelError;
using rl::model::Qwen2Config;
using rl::testing::TempDir;

namespace {

// Qwen2.5-0.5B-Instruct's config.json as transformers v4 writes it.
nlohmann::json Qwen25HalfB() {
  return nlohmann::json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
    "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 21,
    "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24,
    "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
    "sliding_window": 32768, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "transformers_version": "4.43.1", "use_cache": true, "use_sliding_window": false,
    "vocab_size": 151936})");
}

std::string ErrorOf(const nlohmann::json& j) {
  try {
    Qwen2Config::FromJson(j, "config.json");
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("config: Qwen2.5-0.5B v4 layout", "[config]") {
  const Qwen2Config c = Qwen2Config::FromJson(Qwen25HalfB(), "config.json");
  CHECK(c.vocab_size == 151936);
  CHECK(c.hidden_size == 896);
  CHECK(c.intermediate_size == 4864);
  CHECK(c.num_hidden_layers == 24);
  CHECK(c.num_attention_heads == 14);
  CHECK(c.num_key_value_heads == 2);
  CHECK(c.head_dim == 64);  // default: hidden / heads
  CHECK(c.rope_theta == 1e6);
  CHECK(c.rms_norm_eps == 1e-6);
  CHECK(c.tie_word_embeddings);
  CHECK(c.bos_token_id == 151643);
  CHECK(c.eos_token_id == 151645);
}

TEST_CASE("config: v5 rope_parameters layout and explicit head_dim", "[config]") {
  nlohmann::json j = Qwen25HalfB();
  j.erase("rope_theta");
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 123456.0}};
  j["head_dim"] = 128;
  j["layer_types"] = nlohmann::json::array({"full_attention", "full_attention"});
  const Qwen2Config c = Qwen2Config::FromJson(j, "config.json");
  CHECK(c.rope_theta == 123456.0);
  CHECK(c.head_dim == 128);
}

TEST_CASE("config: defaults follow transformers", "[config]") {
  const nlohmann::json j = {{"model_type", "qwen2"},  {"vocab_size", 10},
                            {"hidden_size", 32},      {"intermediate_size", 64},
                            {"num_hidden_layers", 1}, {"num_attention_heads", 4}};
  const Qwen2Config c = Qwen2Config::FromJson(j, "config.json");
  CHECK(c.num_key_value_heads == 4);
  CHECK(c.head_dim == 8);
  CHECK(c.rope_theta == 10000.0);
  CHECK(c.rms_norm_eps == 1e-6);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK(c.max_position_embeddings == 32768);
}

TEST_CASE("config: what is not implemented is refused by name", "[config]") {
  nlohmann::json j = Qwen25HalfB();
  SECTION("model_type") {
    j["model_type"] = "llama";
    CHECK_THAT(ErrorOf(j), Contains("config.json") && Contains("model_type") && Contains("llama"));
  }
  SECTION("missing model_type") {
    j.erase("model_type");
    CHECK_THAT(ErrorOf(j), Contains("model_type"));
  }
  SECTION("rope_scaling yarn (v4)") {
    j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
    CHECK_THAT(ErrorOf(j), Contains("rope_scaling") && Contains("yarn"));
  }
  SECTION("rope_type linear (v5)") {
    j["rope_parameters"] = {{"rope_type", "linear"}, {"rope_theta", 1e6}, {"factor", 2.0}};
    CHECK_THAT(ErrorOf(j), Contains("rope_parameters") && Contains("linear"));
  }
  SECTION("sliding window") {
    j["use_sliding_window"] = true;
    CHECK_THAT(ErrorOf(j), Contains("use_sliding_window"));
  }
  SECTION("v5 sliding layers") {
    j["layer_types"] = {"full_attention", "sliding_attention"};
    CHECK_THAT(ErrorOf(j), Contains("layer_types") && Contains("sliding_attention"));
  }
  SECTION("activation") {
    j["hidden_act"] = "gelu";
    CHECK_THAT(ErrorOf(j), Contains("hidden_act") && Contains("gelu"));
  }
  SECTION("missing size") {
    j.erase("hidden_size");
    CHECK_THAT(ErrorOf(j), Contains("hidden_size") && Contains("required"));
  }
  SECTION("wrong type") {
    j["num_hidden_layers"] = "24";
    CHECK_THAT(ErrorOf(j), Contains("num_hidden_layers") && Contains("integer"));
  }
  SECTION("heads not divisible") {
    j["num_key_value_heads"] = 3;
    CHECK_THAT(ErrorOf(j), Contains("num_key_value_heads") && Contains("does not divide"));
  }
  SECTION("non-positive") {
    j["vocab_size"] = 0;
    CHECK_THAT(ErrorOf(j), Contains("vocab_size") && Contains("positive"));
  }
  SECTION("odd head_dim") {
    j["head_dim"] = 63;
    CHECK_THAT(ErrorOf(j), Contains("head_dim") && Contains("even"));
  }
}

TEST_CASE("config: files", "[config]") {
  TempDir dir;
  CHECK_THROWS_WITH(Qwen2Config::FromJsonFile(dir / "none.json"),
                    Contains("none.json") && Contains("cannot open"));
  std::ofstream(dir / "broken.json") << "{\"model_type\": \"qwen2\",";
  CHECK_THROWS_WITH(Qwen2Config::FromJsonFile(dir / "broken.json"),
                    Contains("broken.json") && Contains("not valid JSON"));
  std::ofstream(dir / "array.json") << "[]";
  CHECK_THROWS_WITH(Qwen2Config::FromJsonFile(dir / "array.json"), Contains("object"));

  Qwen2Config c = Qwen2Config::Tiny(300);
  c.rope_theta = 5e5;
  c.bos_token_id = 1;
  c.WriteJsonFile(dir / "config.json", "bfloat16");
  const Qwen2Config back = Qwen2Config::FromJsonFile(dir / "config.json");
  CHECK(back.ToJson("bfloat16") == c.ToJson("bfloat16"));
  std::ifstream in(dir / "config.json");
  const auto written = nlohmann::json::parse(in);
  CHECK(written["architectures"][0] == "Qwen2ForCausalLM");
  CHECK(written["torch_dtype"] == "bfloat16");
  CHECK(written["head_dim"] == 16);
}

TEST_CASE("generation config: eos_token_id as an int or a list", "[config]") {
  const auto one = GenerationConfig::FromJson({{"eos_token_id", 7}}, "g.json");
  CHECK(one.eos_token_ids == std::vector<int64_t>{7});
  const auto qwen = GenerationConfig::FromJson(nlohmann::json::parse(R"({
      "bos_token_id": 151643, "pad_token_id": 151643, "do_sample": true,
      "eos_token_id": [151645, 151643], "repetition_penalty": 1.1, "temperature": 0.7,
      "top_p": 0.8, "top_k": 20, "transformers_version": "4.37.0"})"),
                                               "g.json");
  CHECK(qwen.eos_token_ids == std::vector<int64_t>{151645, 151643});
  CHECK(qwen.temperature == 0.7);
  CHECK(qwen.top_k == 20);
  CHECK(qwen.do_sample == true);
  CHECK(GenerationConfig::FromJson(qwen.ToJson(), "g").ToJson() == qwen.ToJson());
  CHECK(one.ToJson()["eos_token_id"] == 7);
  CHECK_THROWS_WITH(GenerationConfig::FromJson({{"eos_token_id", "x"}}, "g.json"),
                    Contains("g.json") && Contains("eos_token_id"));
  CHECK_THROWS_WITH(GenerationConfig::FromJson({{"eos_token_id", {1, "x"}}}, "g.json"),
                    Contains("eos_token_id"));
  TempDir dir;
  qwen.WriteJsonFile(dir / "generation_config.json");
  CHECK(GenerationConfig::FromJsonFile(dir / "generation_config.json").eos_token_ids ==
        qwen.eos_token_ids);
}

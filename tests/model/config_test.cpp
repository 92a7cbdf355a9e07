// config.json and generation_config.json: Qwen2, Qwen3 and Llama 3, both RoPE layouts, defaults,
// refusals, round trips.
#include <catch2/catch.hpp>

#include <fstream>

#include <nlohmann/json.hpp>

#include "rl/model/config.h"
#include "tests/support/temp_dir.h"

using Catch::Matchers::Contains;
using rl::model::GenerationConfig;
using rl::model::ModelError;
using rl::model::DecoderConfig;
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

// Qwen3-0.6B's config.json (transformers 4.51).
nlohmann::json Qwen3() {
  return nlohmann::json::parse(R"({
    "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
    "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
    "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
    "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null,
    "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
    "use_cache": true, "use_sliding_window": false, "vocab_size": 151936})");
}

// Llama-3.2-1B-Instruct's config.json (transformers 4.45).
nlohmann::json Llama32() {
  return nlohmann::json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "head_dim": 64,
    "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
    "intermediate_size": 8192, "max_position_embeddings": 131072, "mlp_bias": false,
    "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 16,
    "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "transformers_version": "4.45.0.dev0", "use_cache": true, "vocab_size": 128256})");
}

std::string ErrorOf(const nlohmann::json& j) {
  try {
    DecoderConfig::FromJson(j, "config.json");
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("config: Qwen2.5-0.5B v4 layout", "[config]") {
  const DecoderConfig c = DecoderConfig::FromJson(Qwen25HalfB(), "config.json");
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
  const DecoderConfig c = DecoderConfig::FromJson(j, "config.json");
  CHECK(c.rope_theta == 123456.0);
  CHECK(c.head_dim == 128);
}

TEST_CASE("config: defaults follow transformers", "[config]") {
  const nlohmann::json j = {{"model_type", "qwen2"},  {"vocab_size", 10},
                            {"hidden_size", 32},      {"intermediate_size", 64},
                            {"num_hidden_layers", 1}, {"num_attention_heads", 4}};
  const DecoderConfig c = DecoderConfig::FromJson(j, "config.json");
  CHECK(c.num_key_value_heads == 4);
  CHECK(c.head_dim == 8);
  CHECK(c.rope_theta == 10000.0);
  CHECK(c.rms_norm_eps == 1e-6);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK(c.max_position_embeddings == 32768);
}

TEST_CASE("config: Qwen3 and Llama 3 switch the decoder's parts", "[config]") {
  const DecoderConfig qwen3 = DecoderConfig::FromJson(Qwen3(), "config.json");
  CHECK(qwen3.model_type == "qwen3");
  CHECK(qwen3.head_dim == 128);  // 16 x 128 = 2048 query features for a hidden size of 1024
  CHECK(qwen3.qk_norm());
  CHECK_FALSE(qwen3.qkv_bias());
  CHECK_FALSE(qwen3.o_bias());
  CHECK(qwen3.rope_scaling.type == "default");
  const DecoderConfig qwen2 = DecoderConfig::FromJson(Qwen25HalfB(), "config.json");
  CHECK(qwen2.qkv_bias());
  CHECK_FALSE(qwen2.o_bias());
  CHECK_FALSE(qwen2.qk_norm());

  const DecoderConfig llama = DecoderConfig::FromJson(Llama32(), "config.json");
  CHECK(llama.model_type == "llama");
  CHECK_FALSE(llama.qkv_bias());
  CHECK_FALSE(llama.qk_norm());
  CHECK_FALSE(llama.mlp_bias);
  CHECK(llama.rms_norm_eps == 1e-5);
  CHECK(llama.rope_theta == 500000.0);
  CHECK(llama.rope_scaling.type == "llama3");
  CHECK(llama.rope_scaling.factor == 32.0);
  CHECK(llama.rope_scaling.low_freq_factor == 1.0);
  CHECK(llama.rope_scaling.high_freq_factor == 4.0);
  CHECK(llama.rope_scaling.original_max_position_embeddings == 8192);
  CHECK_FALSE(llama.eos_token_id.has_value());  // a list: generation_config.json's business

  nlohmann::json biased = Llama32();
  biased["attention_bias"] = true;
  biased["mlp_bias"] = true;
  const DecoderConfig b = DecoderConfig::FromJson(biased, "config.json");
  CHECK(b.qkv_bias());
  CHECK(b.o_bias());
  CHECK(b.mlp_bias);
}

TEST_CASE("config: Qwen3 and Llama 3 are written back as themselves", "[config]") {
  for (const nlohmann::json& original : {Qwen3(), Llama32()}) {
    const DecoderConfig c = DecoderConfig::FromJson(original, "config.json");
    const nlohmann::json written = c.ToJson("bfloat16");
    CHECK(written["architectures"] == original["architectures"]);
    CHECK(written["model_type"] == original["model_type"]);
    CHECK(written["attention_bias"] == original["attention_bias"]);
    CHECK(written["head_dim"] == original["head_dim"]);
    const DecoderConfig again = DecoderConfig::FromJson(written, "written.json");
    CHECK(again.qk_norm() == c.qk_norm());
    CHECK(again.rope_scaling.type == c.rope_scaling.type);
    CHECK(again.rope_scaling.factor == c.rope_scaling.factor);
    CHECK(again.rope_scaling.original_max_position_embeddings == c.rope_scaling.original_max_position_embeddings);
  }
  CHECK(DecoderConfig::FromJson(Llama32(), "c").ToJson()["rope_scaling"]["rope_type"] == "llama3");
  CHECK(DecoderConfig::FromJson(Llama32(), "c").ToJson()["mlp_bias"] == false);
}

TEST_CASE("config: Llama 3's rope scaling in the v5 layout", "[config]") {
  nlohmann::json j = Llama32();
  j.erase("rope_theta");
  j.erase("rope_scaling");
  j["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 500000.0}, {"factor", 8.0},
                          {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                          {"original_max_position_embeddings", 8192}};
  const DecoderConfig c = DecoderConfig::FromJson(j, "config.json");
  CHECK(c.rope_theta == 500000.0);
  CHECK(c.rope_scaling.type == "llama3");
  CHECK(c.rope_scaling.factor == 8.0);
}

TEST_CASE("config: what is not implemented is refused by name", "[config]") {
  nlohmann::json j = Qwen25HalfB();
  SECTION("model_type") {
    j["model_type"] = "qwen3_moe";
    CHECK_THAT(ErrorOf(j), Contains("config.json") && Contains("model_type") && Contains("qwen3_moe"));
  }
  SECTION("llama3 rope scaling without its factor") {
    nlohmann::json llama = Llama32();
    llama["rope_scaling"].erase("factor");
    CHECK_THAT(ErrorOf(llama), Contains("rope_scaling.factor") && Contains("llama3"));
  }
  SECTION("qwen3 sliding window") {
    nlohmann::json qwen3 = Qwen3();
    qwen3["use_sliding_window"] = true;
    CHECK_THAT(ErrorOf(qwen3), Contains("use_sliding_window"));
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
  CHECK_THROWS_WITH(DecoderConfig::FromJsonFile(dir / "none.json"),
                    Contains("none.json") && Contains("cannot open"));
  std::ofstream(dir / "broken.json") << "{\"model_type\": \"qwen2\",";
  CHECK_THROWS_WITH(DecoderConfig::FromJsonFile(dir / "broken.json"),
                    Contains("broken.json") && Contains("not valid JSON"));
  std::ofstream(dir / "array.json") << "[]";
  CHECK_THROWS_WITH(DecoderConfig::FromJsonFile(dir / "array.json"), Contains("object"));

  DecoderConfig c = DecoderConfig::Tiny(300);
  c.rope_theta = 5e5;
  c.bos_token_id = 1;
  c.WriteJsonFile(dir / "config.json", "bfloat16");
  const DecoderConfig back = DecoderConfig::FromJsonFile(dir / "config.json");
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

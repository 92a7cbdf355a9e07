// LoadDecoder / SaveDecoder: bit-exact round trips (tied, untied, bf16), sharded checkpoints, and
// clear errors for checkpoints that do not fit the config.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

// LibTorch pulls in glog, whose CHECK macro would replace Catch2's: include Catch2 after it.
#include <torch/types.h>
#include <torch/utils.h>

#include "tests/support/catch_torch.h"
#include <nlohmann/json.hpp>

#include "rl/model/decoder.h"
#include "rl/model/safetensors.h"
#include "rl/model/tensor_io.h"
#include "tests/support/temp_dir.h"

using Catch::Matchers::Contains;
using rl::model::ModelError;
using rl::model::Decoder;
using rl::model::DecoderConfig;
using rl::testing::TempDir;

namespace {

Decoder RandomModel(bool tied, uint64_t seed) {
  DecoderConfig config = DecoderConfig::Tiny(53);
  config.tie_word_embeddings = tied;
  config.initializer_range = 0.2;
  torch::manual_seed(seed);
  return Decoder(config);
}

void CheckSameParameters(Decoder& a, Decoder& b) {
  auto theirs = b->named_parameters();
  REQUIRE(a->named_parameters().size() == theirs.size());
  for (const auto& p : a->named_parameters()) {
    INFO(p.key());
    REQUIRE(theirs.find(p.key()) != nullptr);
    CHECK(theirs[p.key()].scalar_type() == p.value().scalar_type());
    CHECK(torch::equal(theirs[p.key()], p.value()));
  }
}

// Rewrites dir/model.safetensors as two shards plus model.safetensors.index.json.
void Shard(const std::string& dir) {
  namespace fs = std::filesystem;
  nlohmann::json weight_map;
  {
    const auto file =
        rl::model::SafetensorsFile::Open((fs::path(dir) / "model.safetensors").string());
    std::vector<rl::model::TensorBlob> parts[2];
    for (size_t i = 0; i < file.tensors().size(); ++i) {
      const auto& t = file.tensors()[i];
      parts[i % 2].push_back({t.name, t.dtype, t.shape, t.bytes});
      weight_map[t.name] = "model-0000" + std::to_string(i % 2 + 1) + "-of-00002.safetensors";
    }
    for (int s = 0; s < 2; ++s) {
      rl::model::WriteSafetensors(
          (fs::path(dir) / ("model-0000" + std::to_string(s + 1) + "-of-00002.safetensors"))
              .string(),
          parts[s]);
    }
  }
  fs::remove(fs::path(dir) / "model.safetensors");
  std::ofstream(fs::path(dir) / "model.safetensors.index.json")
      << nlohmann::json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump(2);
}

}  // namespace

TEST_CASE("save/load round trip is bit-exact", "[checkpoint]") {
  torch::NoGradGuard no_grad;
  for (bool tied : {true, false}) {
    INFO("tied " << tied);
    TempDir dir;
    Decoder model = RandomModel(tied, 11);
    rl::model::GenerationConfig generation;
    generation.eos_token_ids = {1, 2};
    rl::model::SaveDecoder(model, dir.str(), torch::kFloat32, &generation);
    CHECK(std::filesystem::exists(dir / "config.json"));
    CHECK(std::filesystem::exists(dir / "generation_config.json"));
    const auto file = rl::model::SafetensorsFile::Open(dir / "model.safetensors");
    CHECK((file.Find("lm_head.weight") != nullptr) == !tied);
    CHECK(file.metadata().at("format") == "pt");

    Decoder loaded = rl::model::LoadDecoder(dir.str(), torch::kFloat32, torch::kCPU);
    CheckSameParameters(model, loaded);
    const torch::Tensor ids = torch::randint(0, 53, {2, 7}, torch::kLong);
    CHECK(torch::equal(model->forward(ids, {}, {}), loaded->forward(ids, {}, {})));
    CHECK(rl::model::GenerationConfig::FromJsonFile(dir / "generation_config.json").eos_token_ids ==
          generation.eos_token_ids);
  }
}

TEST_CASE("bfloat16 checkpoints", "[checkpoint]") {
  torch::NoGradGuard no_grad;
  TempDir dir;
  Decoder model = RandomModel(false, 12);
  rl::model::SaveDecoder(model, dir.str(), torch::kBFloat16);
  const auto file = rl::model::SafetensorsFile::Open(dir / "model.safetensors");
  CHECK(file.Get("model.norm.weight").dtype == rl::model::Dtype::kBF16);
  CHECK(DecoderConfig::FromJsonFile(dir / "config.json").ToJson("bfloat16")["torch_dtype"] ==
        "bfloat16");

  Decoder as_bf16 = rl::model::LoadDecoder(dir.str(), torch::kBFloat16, torch::kCPU);
  Decoder expected = rl::model::CloneDecoder(*model, torch::kBFloat16, torch::kCPU);
  CheckSameParameters(expected, as_bf16);
  // Loading bf16 weights as float32 widens them exactly.
  Decoder as_f32 = rl::model::LoadDecoder(dir.str(), torch::kFloat32, torch::kCPU);
  Decoder widened = rl::model::CloneDecoder(*expected, torch::kFloat32, torch::kCPU);
  CheckSameParameters(widened, as_f32);
}

TEST_CASE("sharded checkpoints load like single files", "[checkpoint]") {
  torch::NoGradGuard no_grad;
  TempDir dir;
  Decoder model = RandomModel(false, 13);
  rl::model::SaveDecoder(model, dir.str(), torch::kFloat32);
  Shard(dir.str());
  REQUIRE_FALSE(std::filesystem::exists(dir / "model.safetensors"));
  Decoder loaded = rl::model::LoadDecoder(dir.str(), torch::kFloat32, torch::kCPU);
  CheckSameParameters(model, loaded);
}

TEST_CASE("SaveDecoder shards above max_shard_bytes as transformers does", "[checkpoint]") {
  torch::NoGradGuard no_grad;
  TempDir dir;
  Decoder model = RandomModel(false, 15);
  int64_t total = 0, largest = 0;
  for (const auto& p : model->parameters()) total += p.numel() * 4, largest = std::max(largest, p.numel() * 4);
  // One shard's limit: a quarter of the weights (and never below the largest tensor).
  const int64_t limit = std::max(total / 4, largest);
  rl::model::SaveDecoder(model, dir.str(), torch::kFloat32, nullptr, limit);
  CHECK_FALSE(std::filesystem::exists(dir / "model.safetensors"));
  std::ifstream in(dir / "model.safetensors.index.json");
  const nlohmann::json index = nlohmann::json::parse(in);
  CHECK(index["metadata"]["total_size"] == total);
  std::map<std::string, int64_t> bytes_per_file;
  for (const auto& p : model->named_parameters()) {
    const std::string file = index["weight_map"].at(p.key());
    bytes_per_file[file] += p.value().numel() * 4;
  }
  CHECK(bytes_per_file.size() >= 4);
  const std::string last = "model-0000" + std::to_string(bytes_per_file.size()) + "-of-0000" +
                           std::to_string(bytes_per_file.size()) + ".safetensors";
  CHECK(bytes_per_file.count("model-00001-of-0000" + std::to_string(bytes_per_file.size()) + ".safetensors"));
  CHECK(bytes_per_file.count(last));
  for (const auto& [file, bytes] : bytes_per_file) CHECK(bytes <= limit);
  Decoder sharded = rl::model::LoadDecoder(dir.str(), torch::kFloat32, torch::kCPU);
  CheckSameParameters(model, sharded);

  // Saved again under the default limit: one file, and no shard of the earlier save is left.
  rl::model::SaveDecoder(model, dir.str(), torch::kFloat32);
  CHECK(std::filesystem::exists(dir / "model.safetensors"));
  CHECK_FALSE(std::filesystem::exists(dir / "model.safetensors.index.json"));
  CHECK_FALSE(std::filesystem::exists(dir / last));
  Decoder single = rl::model::LoadDecoder(dir.str(), torch::kFloat32, torch::kCPU);
  CheckSameParameters(model, single);
}

TEST_CASE("checkpoints that do not fit are refused clearly", "[checkpoint]") {
  torch::NoGradGuard no_grad;
  TempDir dir;
  Decoder model = RandomModel(true, 14);
  rl::model::SaveDecoder(model, dir.str(), torch::kFloat32);
  const std::string st = dir / "model.safetensors";
  auto rewrite = [&](auto edit) {  // rewrites model.safetensors with edited (name, tensor) pairs
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    {
      const auto file = rl::model::SafetensorsFile::Open(st);
      for (const auto& t : file.tensors()) tensors.emplace_back(t.name, rl::model::ToTensor(t));
    }
    edit(tensors);
    rl::model::WriteTensorFile(st, tensors, torch::kFloat32);
  };
  auto load_error = [&] {
    try {
      rl::model::LoadDecoder(dir.str(), torch::kFloat32, torch::kCPU);
    } catch (const ModelError& e) {
      return std::string(e.what());
    }
    return std::string();
  };

  SECTION("a tied lm_head.weight is ignored, as transformers does") {
    rewrite([](auto& t) { t.emplace_back("lm_head.weight", torch::zeros({53, 64})); });
    CHECK(load_error().empty());
  }
  SECTION("missing tensor") {
    rewrite([](auto& t) {
      std::erase_if(t, [](auto& p) { return p.first == "model.layers.1.mlp.up_proj.weight"; });
    });
    CHECK_THAT(load_error(), Contains("model.layers.1.mlp.up_proj.weight") && Contains("missing"));
  }
  SECTION("unexpected tensor") {
    rewrite([](auto& t) { t.emplace_back("v_head.summary.weight", torch::zeros({1, 64})); });
    CHECK_THAT(load_error(), Contains("v_head.summary.weight") && Contains("model.safetensors"));
  }
  SECTION("shape that does not match config.json") {
    nlohmann::json config = DecoderConfig::FromJsonFile(dir / "config.json").ToJson();
    config["intermediate_size"] = 96;
    std::ofstream(dir / "config.json") << config.dump();
    CHECK_THAT(load_error(), Contains("model.layers.0.mlp.gate_proj.weight") && Contains("shape") &&
                                 Contains("model.safetensors"));
  }
  SECTION("unsupported config") {
    nlohmann::json config = DecoderConfig::FromJsonFile(dir / "config.json").ToJson();
    config["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
    std::ofstream(dir / "config.json") << config.dump();
    CHECK_THAT(load_error(),
               Contains("config.json") && Contains("rope_scaling") && Contains("dynamic"));
  }
  SECTION("damaged weights file") {
    std::filesystem::resize_file(st, std::filesystem::file_size(st) - 100);
    CHECK_THAT(load_error(), Contains("model.safetensors") && Contains("truncated"));
  }
  SECTION("no config.json") {
    std::filesystem::remove(dir / "config.json");
    CHECK_THAT(load_error(), Contains("config.json") && Contains("cannot open"));
  }
}

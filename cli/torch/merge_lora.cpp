// `rl merge-lora BASE ADAPTER OUT`: full weights from a base model and a LoRA adapter in PEFT's
// layout, W + scale · B A for every adapted module, written as a Hugging Face directory that
// transformers and vLLM load without PEFT.
//
//   rl merge-lora Qwen2.5-0.5B-Instruct runs/x/final runs/x/merged [--dtype bfloat16]
//
// OUT gets config.json, model.safetensors (shards and their index above --max-shard-mb,
// default 5000 as transformers' 5GB), and the tokenizer and generation files
// (tokenizer.json, tokenizer_config.json, chat_template.jinja, special_tokens_map.json,
// generation_config.json), each taken from ADAPTER when it has one (a run saves them there),
// else from BASE. The merge is computed in float32 whatever --dtype says.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <torch/types.h>

#include "cli/commands.h"
#include "rl/model/decoder.h"
#include "rl/model/lora.h"

namespace rl::cli {
namespace {

struct MergeFlags {
  std::string base, adapter, out;
  std::string dtype = "float32";
  int64_t max_shard_mb = model::kDefaultMaxShardBytes / 1'000'000;
};

constexpr const char* kCompanionFiles[] = {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                                           "special_tokens_map.json", "generation_config.json"};

void RunMerge(const MergeFlags& flags) {
  namespace fs = std::filesystem;
  model::Decoder model = model::LoadDecoder(flags.base, torch::kFloat32, torch::kCPU);
  const model::LoraConfig lora = model::LoadLoraAdapter(*model, flags.adapter);
  model::MergeLora(*model);
  model::SaveDecoder(model, flags.out, flags.dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32, nullptr,
                     flags.max_shard_mb * 1'000'000);
  for (const char* name : kCompanionFiles) {
    for (const std::string& dir : {flags.adapter, flags.base}) {
      if (!fs::exists(fs::path(dir) / name)) continue;
      fs::copy_file(fs::path(dir) / name, fs::path(flags.out) / name, fs::copy_options::overwrite_existing);
      break;
    }
  }
  std::fprintf(stderr, "rl merge-lora: r %lld, %zu target modules merged into %s\n", static_cast<long long>(lora.r),
               lora.target_modules.size(), flags.out.c_str());
}

}  // namespace

void AddMergeLoraCommand(CLI::App& app) {
  auto flags = std::make_shared<MergeFlags>();
  CLI::App* cmd = app.add_subcommand("merge-lora", "Merge a LoRA adapter (PEFT layout) into its base's weights");
  cmd->add_option("BASE", flags->base, "Base model directory (config.json, model.safetensors)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("ADAPTER", flags->adapter, "Adapter directory (adapter_config.json, adapter_model.safetensors)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("OUT", flags->out, "Output directory (created)")->required();
  cmd->add_option("--dtype", flags->dtype, "Dtype of the written weights")
      ->capture_default_str()
      ->check(CLI::IsMember({"float32", "bfloat16"}));
  cmd->add_option("--max-shard-mb", flags->max_shard_mb,
                  "Split the weights into shards of at most this many MB (transformers' max_shard_size)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  cmd->callback([flags] {
    try {
      RunMerge(*flags);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "rl merge-lora: %s\n", e.what());
      throw CLI::RuntimeError(1);
    }
  });
}

}  // namespace rl::cli

#include "trainer/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <stdexcept>
#include <vector>

#include <torch/serialize.h>
#include <torch/types.h>

#include "common/json_file.h"

namespace rl::trainer {
namespace fs = std::filesystem;
namespace {

const std::regex kCheckpointName("checkpoint-([0-9]+)");

void WriteJson(const fs::path& path, const nlohmann::json& j) {
  std::string error;
  if (!common::WriteJsonFile(path.string(), j, &error)) throw std::runtime_error(error);
}

// Complete checkpoints of output_dir, sorted by step.
std::vector<std::pair<int64_t, fs::path>> ListCheckpoints(const std::string& output_dir) {
  std::vector<std::pair<int64_t, fs::path>> found;
  if (!fs::is_directory(output_dir)) return found;
  for (const fs::directory_entry& entry : fs::directory_iterator(output_dir)) {
    std::smatch match;
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || !std::regex_match(name, match, kCheckpointName)) continue;
    if (!fs::exists(entry.path() / "trainer_state.json")) continue;
    found.emplace_back(std::stoll(match[1].str()), entry.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace

void SavePolicyAtomically(Policy& policy, const std::string& dir, int64_t max_shard_bytes) {
  const fs::path final_path(dir);
  const fs::path temp_path = final_path.string() + ".tmp";
  fs::remove_all(temp_path);
  SavePolicy(policy, temp_path.string(), max_shard_bytes);
  fs::remove_all(final_path);
  fs::rename(temp_path, final_path);
}

void SaveCheckpoint(const std::string& output_dir, int64_t step, Policy& policy,
                    torch::optim::AdamW& optimizer, const nlohmann::json& trainer_state,
                    int64_t keep_last, Policy* reference, int64_t max_shard_bytes) {
  const fs::path final_path = fs::path(output_dir) / ("checkpoint-" + std::to_string(step));
  const fs::path temp_path = final_path.string() + ".tmp";
  fs::remove_all(temp_path);
  SavePolicy(policy, temp_path.string(), max_shard_bytes);
  if (reference != nullptr) SavePolicy(*reference, (temp_path / "reference").string(), max_shard_bytes);
  torch::save(optimizer, (temp_path / "optimizer.pt").string());
  torch::Tensor rng = torch::globalContext().defaultGenerator(torch::kCPU).get_state();
  torch::save(rng, (temp_path / "rng_state.pt").string());
  WriteJson(temp_path / "trainer_state.json", trainer_state);  // last: marks the files complete
  fs::remove_all(final_path);
  fs::rename(temp_path, final_path);

  std::vector<std::pair<int64_t, fs::path>> all = ListCheckpoints(output_dir);
  for (size_t i = 0; i + static_cast<size_t>(keep_last) < all.size(); ++i) fs::remove_all(all[i].second);
}

int64_t RemoveCheckpoints(const std::string& output_dir) {
  if (!fs::is_directory(output_dir)) return 0;
  const std::regex any_checkpoint("checkpoint-[0-9]+(\\.tmp)?");
  int64_t removed = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(output_dir)) {
    if (entry.is_directory() && std::regex_match(entry.path().filename().string(), any_checkpoint)) {
      fs::remove_all(entry.path());
      ++removed;
    }
  }
  return removed;
}

std::optional<std::string> FindLatestCheckpoint(const std::string& output_dir) {
  std::vector<std::pair<int64_t, fs::path>> all = ListCheckpoints(output_dir);
  if (all.empty()) return std::nullopt;
  return all.back().second.string();
}

void RequireCompleteCheckpoint(const std::string& dir) {
  const fs::path path(dir);
  if (!fs::is_directory(path)) throw std::runtime_error(dir + ": no such checkpoint directory");
  const bool adapter = fs::exists(path / "adapter_config.json");
  std::vector<std::string> required = {"tokenizer.json", "optimizer.pt", "rng_state.pt", "trainer_state.json"};
  required.insert(required.begin(), adapter ? "adapter_model.safetensors" : "config.json");
  std::string missing;
  for (const std::string& name : required) {
    if (!fs::exists(path / name)) missing += (missing.empty() ? "" : ", ") + name;
  }
  if (!adapter && !fs::exists(path / "model.safetensors") && !fs::exists(path / "model.safetensors.index.json")) {
    missing += std::string(missing.empty() ? "" : ", ") + "model.safetensors (or its index)";
  }
  if (missing.empty()) return;
  throw std::runtime_error(dir + " is not a complete checkpoint: it lacks " + missing +
                           " (rl train writes them into output_dir/checkpoint-<step>)");
}

nlohmann::json LoadCheckpointState(const std::string& checkpoint_dir, torch::optim::AdamW& optimizer) {
  const fs::path dir(checkpoint_dir);
  std::ifstream in(dir / "trainer_state.json", std::ios::binary);
  nlohmann::json state = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (state.is_discarded() || !state.is_object()) {
    throw std::runtime_error((dir / "trainer_state.json").string() + ": not a JSON object");
  }
  try {
    torch::load(optimizer, (dir / "optimizer.pt").string());
    torch::Tensor rng;
    torch::load(rng, (dir / "rng_state.pt").string());
    at::Generator generator = torch::globalContext().defaultGenerator(torch::kCPU);  // a handle
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(rng);
  } catch (const c10::Error& e) {
    throw std::runtime_error(checkpoint_dir + ": cannot restore the optimizer or RNG state: " + e.what_without_backtrace());
  }
  return state;
}

}  // namespace rl::trainer

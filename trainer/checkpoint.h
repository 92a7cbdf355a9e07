// trainer/checkpoint.h: crash-safe checkpoints in the Hugging Face layout.
//
//   SaveCheckpoint(output_dir, step, policy, adamw, state, keep_last);
//   // output_dir/checkpoint-<step>/: config.json, model.safetensors, generation_config.json,
//   //   tokenizer.json (the Hugging Face layout: transformers and vLLM load the directory),
//   //   optimizer.pt (AdamW moments), rng_state.pt (LibTorch's CPU generator),
//   //   trainer_state.json (step, learning-rate schedule position, data position, counters)
//   std::optional<std::string> dir = FindLatestCheckpoint(output_dir);
//
// A checkpoint is written into "checkpoint-<step>.tmp" and renamed when every file is
// complete, so a crash never leaves a half checkpoint under the final name; older complete
// checkpoints beyond `keep_last` are removed only after the new one exists.
// Thread safety: one writer per output directory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/optim/adamw.h>

#include "trainer/policy.h"

namespace rl::trainer {

// `reference`, when given (a reference that moves: grpo.sync_ref_model), is saved in the
// checkpoint's reference/ subdirectory in the same layout, for the resumed run to load.
void SaveCheckpoint(const std::string& output_dir, int64_t step, Policy& policy,
                    torch::optim::AdamW& optimizer, const nlohmann::json& trainer_state,
                    int64_t keep_last, Policy* reference = nullptr,
                    int64_t max_shard_bytes = model::kDefaultMaxShardBytes);

// Removes every checkpoint (complete or not) of output_dir: a fresh run must not mix its
// checkpoints with an earlier run's. Returns how many were removed.
int64_t RemoveCheckpoints(const std::string& output_dir);

// The complete checkpoint with the highest step, if any.
std::optional<std::string> FindLatestCheckpoint(const std::string& output_dir);

// Throws std::runtime_error unless `dir` holds every file a run resumes from, naming the ones
// it lacks: the weights (config.json and model.safetensors or its sharded index; with LoRA
// adapter_config.json and adapter_model.safetensors), tokenizer.json, optimizer.pt,
// rng_state.pt and trainer_state.json (written last: a crash leaves a .tmp without it).
void RequireCompleteCheckpoint(const std::string& dir);

// Reads trainer_state.json of a checkpoint; loads optimizer.pt into `optimizer` and restores
// the CPU generator from rng_state.pt. Throws std::runtime_error naming the file.
nlohmann::json LoadCheckpointState(const std::string& checkpoint_dir, torch::optim::AdamW& optimizer);

// Writes `dir` through "<dir>.tmp" and a rename (replacing an older `dir`).
void SavePolicyAtomically(Policy& policy, const std::string& dir, int64_t max_shard_bytes = model::kDefaultMaxShardBytes);

}  // namespace rl::trainer

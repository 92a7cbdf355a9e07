// rl::model::ModelError: the one exception type of rl/model. Every message names the file and,
// where there is one, the tensor or config field, and says what was expected.
#pragma once

#include <stdexcept>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace rl::model {

class ModelError : public std::runtime_error {
 public:
  explicit ModelError(const std::string& message) : std::runtime_error(message) {}
};

// Reads and parses a JSON file (config.json, a sharded checkpoint's index) with
// common::ReadJsonFile; a ModelError names the file when it cannot be opened or is not valid JSON.
nlohmann::json ReadModelJson(const std::string& path);

}  // namespace rl::model

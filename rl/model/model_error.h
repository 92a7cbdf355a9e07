// rl::model::ModelError: the one exception type of rl/model. Every message names the file and,
// where there is one, the tensor or config field, and says what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace rl::model {

class ModelError : public std::runtime_error {
 public:
  explicit ModelError(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace rl::model

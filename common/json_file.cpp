#include "common/json_file.h"

#include <fstream>

namespace rl::common {

std::optional<nlohmann::json> ReadJsonFile(const std::string& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "'" + path + "': cannot open";
    return std::nullopt;
  }
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    *error = "'" + path + "': not valid JSON: " + e.what();
    return std::nullopt;
  }
}

}  // namespace rl::common

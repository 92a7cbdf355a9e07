#include "common/json_file.h"

#include <filesystem>
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

bool WriteJsonFile(const std::string& path, const nlohmann::json& j, std::string* error) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      *error = "writing '" + tmp + "': cannot open";
      return false;
    }
    out << j.dump(2) << "\n";
    out.close();
    if (!out) {
      *error = "writing '" + tmp + "': I/O error";
      return false;
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    *error = "writing '" + path + "': rename failed: " + ec.message();
    return false;
  }
  return true;
}

}  // namespace rl::common

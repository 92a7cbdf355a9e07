// YAML to JSON for reward specs, remembering the source line of every key path so that spec
// errors can say "file:line: key 'rules[2].weight': expected a number".
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "common/config_yaml.h"
#include "rewards/rule.h"

namespace rl::rewards {
namespace {

bool IsInteger(std::string_view s) {
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

// YAML 1.2 core schema float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool IsFloat(std::string_view s) {
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  size_t digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  }
  if (digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    size_t exponent_digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++exponent_digits;
    if (exponent_digits == 0) return false;
  }
  return i == s.size();
}

// Types a plain (unquoted) scalar the way YAML 1.2's core schema does.
nlohmann::json PlainScalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (IsInteger(s)) {
    int64_t value = 0;
    const char* begin = s.data() + (s[0] == '+' ? 1 : 0);
    auto [end, ec] = std::from_chars(begin, s.data() + s.size(), value);
    if (ec == std::errc() && end == s.data() + s.size()) return value;
    return std::strtod(s.c_str(), nullptr);  // too large for int64: keep its magnitude
  }
  if (IsFloat(s)) return std::strtod(s.c_str(), nullptr);
  if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf") {
    return std::numeric_limits<double>::infinity();
  }
  if (s == "-.inf" || s == "-.Inf" || s == "-.INF") return -std::numeric_limits<double>::infinity();
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return std::numeric_limits<double>::quiet_NaN();
  return s;
}

class Converter {
 public:
  Converter(std::string_view origin, SpecLines* lines) : origin_(origin), lines_(lines) {}

  bool Convert(const YAML::Node& node, const std::string& path, nlohmann::json* out) {
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null: *out = nullptr; return true;
      case YAML::NodeType::Scalar:
        // "!" marks a quoted (non-plain) scalar: always a string.
        *out = node.Tag() == "!" ? nlohmann::json(node.Scalar()) : PlainScalar(node.Scalar());
        return true;
      case YAML::NodeType::Sequence: {
        *out = nlohmann::json::array();
        size_t index = 0;
        for (const YAML::Node& item : node) {
          std::string item_path = path + "[" + std::to_string(index++) + "]";
          Remember(item_path, item.Mark());
          nlohmann::json value;
          if (!Convert(item, item_path, &value)) return false;
          out->push_back(std::move(value));
        }
        return true;
      }
      case YAML::NodeType::Map: {
        *out = nlohmann::json::object();
        for (const auto& entry : node) {
          if (!entry.first.IsScalar())
            return Fail(entry.first.Mark(), "keys must be plain strings");
          const std::string& key = entry.first.Scalar();
          if (out->contains(key)) return Fail(entry.first.Mark(), "duplicate key '" + key + "'");
          std::string key_path = path.empty() ? key : path + "." + key;
          Remember(key_path, entry.first.Mark());
          nlohmann::json value;
          if (!Convert(entry.second, key_path, &value)) return false;
          (*out)[key] = std::move(value);
        }
        return true;
      }
    }
    return true;
  }

  const std::string& error() const { return error_; }

 private:
  void Remember(const std::string& path, const YAML::Mark& mark) {
    if (lines_ != nullptr && !mark.is_null()) lines_->emplace_back(path, mark.line + 1);
  }
  bool Fail(const YAML::Mark& mark, const std::string& what) {
    error_ = std::string(origin_) + ":" + std::to_string(mark.line + 1) + ": " + what;
    return false;
  }

  std::string_view origin_;
  SpecLines* lines_;
  std::string error_;
};

}  // namespace

bool YamlToJson(std::string_view yaml, std::string_view origin, nlohmann::json* out,
                SpecLines* lines, std::string* error) {
  YAML::Node root;
  try {
    // YAML's character set and bounded nesting (an alias may contain itself): Convert recurses.
    root = common::ParseYamlDocument(std::string(yaml), std::string(origin));
  } catch (const common::ConfigError& e) {
    *error = e.what();
    return false;
  }
  Converter converter(origin, lines);
  try {
    if (converter.Convert(root, "", out)) return true;
    *error = converter.error();
  } catch (const YAML::Exception& e) {
    *error =
        std::string(origin) + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg;
  }
  return false;
}

}  // namespace rl::rewards

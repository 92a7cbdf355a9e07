#include "common/config_json.h"

#include <algorithm>
#include <sstream>

#include "common/names.h"

namespace rl::common {

JsonReader::JsonReader(const nlohmann::json& root, std::string path) {
  stack_.push_back({root.is_null() ? nullptr : &root, std::move(path), {}});
  if (!root.is_null() && !root.is_object()) Fail(stack_.back().path, "expected a mapping, got " + TypeOf(root));
}

const nlohmann::json* JsonReader::Lookup(const char* key) {
  Frame& frame = stack_.back();
  frame.known.push_back(key);
  if (frame.node == nullptr) return nullptr;
  const auto it = frame.node->find(key);
  return it == frame.node->end() || it->is_null() ? nullptr : &*it;
}

std::string JsonReader::Path(const char* key) const {
  const std::string& prefix = stack_.back().path;
  return prefix.empty() ? std::string(key) : prefix + "." + key;
}

void JsonReader::CheckUnknownKeys() {
  const Frame& frame = stack_.back();
  if (frame.node == nullptr) return;
  for (const auto& item : frame.node->items()) {
    const std::string& key = item.key();
    if (std::find(frame.known.begin(), frame.known.end(), key) != frame.known.end()) continue;
    Fail(frame.path.empty() ? key : frame.path + "." + key, "unknown key; " + DidYouMean(key, frame.known, "valid"));
  }
}

void JsonReader::Fail(const std::string& path, const std::string& detail) {
  throw ConfigError("", 0, path, detail);
}

std::string JsonReader::TypeOf(const nlohmann::json& node) {
  if (node.is_string()) return "'" + node.get_ref<const std::string&>() + "'";
  if (node.is_number() || node.is_boolean()) return node.dump();
  if (node.is_array()) return "a list";
  if (node.is_object()) return "a mapping";
  return "null";
}

void JsonReader::CheckRange(const char* key, double value, Range range) const {
  if (range.Contains(value)) return;
  std::ostringstream detail;
  detail << "value " << value << " out of range: expected " << range.Describe();
  Fail(Path(key), detail.str());
}

}  // namespace rl::common

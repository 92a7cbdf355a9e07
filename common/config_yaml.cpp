#include "common/config_yaml.h"

#include <sstream>

#include "common/names.h"

namespace rl::common {

YAML::Node ParseYamlConfig(const std::string& text, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(origin, e.mark.line + 1, "", "not valid YAML: " + e.msg);
  }
  if (root && !root.IsNull() && !root.IsMap()) {
    throw ConfigError(origin, root.Mark().line + 1, "", "expected a mapping of settings at the top level");
  }
  return root;
}

YamlReader::YamlReader(YAML::Node root, std::string origin) : origin_(std::move(origin)) {
  stack_.push_back({std::move(root), "", {}});
}

void YamlReader::Field(const char* key, std::optional<double>& value, Range range, const char*) {
  YAML::Node node = Lookup(key);
  if (!node || node.IsNull()) return;
  value = Convert<double>(node, key);
  CheckRange(node, key, *value, range);
}

void YamlReader::Field(const char* key, StringList& value, Range, const char*) {
  YAML::Node node = Lookup(key);
  if (!node || node.IsNull()) return;
  if (!node.IsSequence()) Fail(node, Path(key), "expected a list of strings, got " + Describe(node));
  StringList out;
  for (const YAML::Node& item : node) {
    if (!item.IsScalar()) Fail(item, Path(key), "expected a list of strings, got " + Describe(item) + " in it");
    out.push_back(item.Scalar());
  }
  value = std::move(out);
}

void YamlReader::Field(const char* key, StringPairs& value, Range, const char*) {
  YAML::Node node = Lookup(key);
  if (!node || node.IsNull()) return;
  if (!node.IsMap()) Fail(node, Path(key), "expected a mapping of names to strings, got " + Describe(node));
  StringPairs out;
  for (const auto& item : node) {
    if (!item.first.IsScalar()) Fail(item.first, Path(key), "keys must be strings, got " + Describe(item.first));
    const std::string name = item.first.Scalar();
    if (!item.second.IsScalar()) Fail(item.second, Path(key) + "." + name, "expected a string, got " + Describe(item.second));
    out.emplace_back(name, item.second.Scalar());
  }
  value = std::move(out);
}

void YamlReader::Field(const char* key, YamlSubtree subtree, Range, const char*) {
  YAML::Node node = Lookup(key);
  if (!node || node.IsNull()) return;
  if (!node.IsMap()) Fail(node, Path(key), "expected a mapping, got " + Describe(node));
  *subtree.text = YAML::Dump(node);
}

void YamlReader::CheckUnknownKeys() {
  const Frame& frame = stack_.back();
  if (!frame.node || !frame.node.IsMap()) return;
  for (const auto& item : frame.node) {
    if (!item.first.IsScalar()) {
      const std::string section =
          frame.path.empty() ? "(top level)" : frame.path.substr(0, frame.path.size() - 1);
      Fail(item.first, section, "keys must be strings, got " + Describe(item.first));
    }
    const std::string& key = item.first.Scalar();
    if (std::find(frame.known.begin(), frame.known.end(), key) != frame.known.end()) continue;
    const std::string nearest(NearestName(key, frame.known));
    Fail(item.first, frame.path + key,
         "unknown key; did you mean '" + nearest + "'? (valid keys: " + Join(frame.known) + ")");
  }
}

YAML::Node YamlReader::Lookup(const char* key) {
  Frame& frame = stack_.back();
  frame.known.push_back(key);
  const YAML::Node& node = frame.node;  // const: lookups must not insert keys
  if (!node || !node.IsMap() || !node[key]) return YAML::Node();
  return node[key];
}

void YamlReader::Fail(const YAML::Node& node, const std::string& path, const std::string& detail) const {
  throw ConfigError(origin_, node.Mark().line + 1, path, detail);
}

std::string YamlReader::Describe(const YAML::Node& node) {
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "nothing";
}

std::string YamlReader::Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

void YamlReader::CheckRange(const YAML::Node& node, const char* key, double value, Range range) const {
  if (range.Contains(value)) return;
  std::ostringstream detail;
  detail << "value " << node.Scalar() << " out of range: expected " << range.Describe();
  Fail(node, Path(key), detail.str());
}

void YamlWriter::Field(const char* key, const std::optional<double>& value, Range, const char*) {
  stack_.back()[key] = value ? YAML::Node(*value) : YAML::Node(YAML::NodeType::Null);
}

void YamlWriter::Field(const char* key, const StringPairs& value, Range, const char*) {
  YAML::Node map(YAML::NodeType::Map);
  for (const auto& [name, text] : value) map[name] = text;
  stack_.back()[key] = map;
}

void YamlWriter::Field(const char* key, YamlSubtree subtree, Range, const char*) {
  stack_.back()[key] = subtree.text->empty() ? YAML::Node(YAML::NodeType::Null) : YAML::Load(*subtree.text);
}

std::string YamlWriter::Dump() const {
  YAML::Emitter out;
  out.SetDoublePrecision(17);
  out << stack_.front();
  return std::string(out.c_str()) + "\n";
}

}  // namespace rl::common

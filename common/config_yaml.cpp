#include "common/config_yaml.h"

#include <cstdio>
#include <sstream>
#include <string_view>

#include "common/names.h"
#include "common/utf8.h"

namespace rl::common {

namespace {

// YAML's character set (the spec's c-printable, in UTF-8): tab, line breaks and printable
// characters. yaml-cpp reads other bytes too, and then writes text it cannot read back.
void CheckYamlCharacters(std::string_view text, const std::string& origin) {
  int line = 1;
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const utf8::Scan scan = utf8::ScanAt(text, i);
    const size_t n = scan.complete ? scan.length : 0;
    const bool c1_control = c == 0xC2 && n == 2 && static_cast<unsigned char>(text[i + 1]) < 0xA0 &&
                            static_cast<unsigned char>(text[i + 1]) != 0x85;  // U+0080..U+009F
    // A carriage return only before a line feed: yaml-cpp keeps a lone one inside a scalar and
    // writes it back where a reader takes it for a line break.
    const bool line_end_cr = c == '\r' && i + 1 < text.size() && text[i + 1] == '\n';
    const bool printable =
        c == '\t' || c == '\n' || line_end_cr || (c >= 0x20 && c != 0x7F && n > 0 && !c1_control);
    if (!printable) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", c);
      throw ConfigError(origin, line, "",
                        std::string("not valid YAML: byte ") + hex +
                            (c == '\r'             ? " is a carriage return not before a line feed"
                             : n == 0 && c >= 0x80 ? " is not UTF-8"
                                                   : " is a control character") +
                            " (YAML allows printable characters, tab and line ends \\n or \\r\\n)");
    }
    if (c == '\n') ++line;
    i += n;
  }
}

// What an escape made of a scalar must also be writable and readable back: yaml-cpp writes a
// carriage return unescaped (read back, it ends the line) and decodes the escapes \N and \_
// to single bytes that are not UTF-8.
void CheckYamlScalar(const YAML::Node& node, const std::string& origin) {
  const std::string& value = node.Scalar();
  const char* problem = value.find('\r') != std::string::npos ? "a carriage return"
                        : !utf8::IsValid(value)                ? "bytes that are not UTF-8"
                                                               : nullptr;
  if (problem == nullptr) return;
  throw ConfigError(origin, node.Mark().line + 1, "",
                    std::string("a value holds ") + problem +
                        ", which would not survive being written back (escapes \\r, \\N and \\_ "
                        "make them): write line ends as \\n and other characters as themselves");
}

// Walks the document as its readers will, aliases expanded, and bounds it: readers and writers
// (ours and yaml-cpp's) recurse once per level, an alias that contains itself nests forever,
// and aliases of aliases make a few hundred bytes into hundreds of millions of values.
// Scalars are checked on the way.
void CheckYamlTree(const YAML::Node& node, const std::string& origin, int depth, int64_t* values) {
  if (++*values > kMaxYamlValues) {
    // No line: an alias's values stand where their anchor does.
    throw ConfigError(origin, 0, "",
                      "the document has more than " + std::to_string(kMaxYamlValues) +
                          " values once aliases are expanded (aliases of aliases?)");
  }
  if (node.IsScalar()) CheckYamlScalar(node, origin);
  if (!node.IsMap() && !node.IsSequence()) return;
  if (depth > kMaxYamlNesting) {
    throw ConfigError(origin, node.Mark().line + 1, "",
                      "nested deeper than " + std::to_string(kMaxYamlNesting) +
                          " levels (or an alias contains itself)");
  }
  for (const auto& item : node) {
    if (node.IsMap()) {
      CheckYamlTree(item.first, origin, depth + 1, values);
      CheckYamlTree(item.second, origin, depth + 1, values);
    } else {
      CheckYamlTree(item, origin, depth + 1, values);
    }
  }
}

}  // namespace

YAML::Node ParseYamlDocument(const std::string& text, const std::string& origin) {
  CheckYamlCharacters(text, origin);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(origin, e.mark.line + 1, "", "not valid YAML: " + e.msg);
  }
  int64_t values = 0;
  CheckYamlTree(root, origin, 1, &values);
  return root;
}

YAML::Node ParseYamlConfig(const std::string& text, const std::string& origin) {
  YAML::Node root = ParseYamlDocument(text, origin);
  if (root && !root.IsNull() && !root.IsMap()) {
    throw ConfigError(origin, root.Mark().line + 1, "", "expected a mapping of settings at the top level");
  }
  return root;
}

YamlOverride ParseYamlOverride(const std::string& text) {
  YamlOverride out;
  out.text = text;
  const size_t equals = text.find('=');
  const std::string key = text.substr(0, equals);
  for (size_t start = 0; equals != std::string::npos && start <= key.size();) {
    const size_t dot = std::min(key.find('.', start), key.size());
    out.path.push_back(key.substr(start, dot - start));
    start = dot + 1;
  }
  const bool empty_key = std::any_of(out.path.begin(), out.path.end(), [](const auto& k) { return k.empty(); });
  if (equals == std::string::npos || empty_key) {
    throw ConfigError(out.Origin(), 0, "", "expected KEY=VALUE with a dotted key, e.g. grpo.steps=3");
  }
  const std::string value = text.substr(equals + 1);
  try {
    out.value = value.empty() ? YAML::Node(YAML::NodeType::Null) : ParseYamlDocument(value, out.Origin());
  } catch (const ConfigError& e) {
    throw ConfigError(out.Origin(), 0, key, e.detail());  // the value's own line 1 would mislead
  }
  return out;
}

YamlReader::YamlReader(YAML::Node root, std::string origin, std::vector<YamlOverride> overrides)
    : origin_(std::move(origin)) {
  for (const YamlOverride& override : overrides) ApplyOverride(root, override);
  stack_.push_back({std::move(root), "", {}});
}

// Walks the override's sections with handles rebound by reset(): assigning one Node to another
// would write into the document (yaml-cpp's assignment shares and replaces the referred value).
void YamlReader::ApplyOverride(YAML::Node& root, const YamlOverride& override) {
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  YAML::Node node = root;
  std::string path, owned;  // owned: down from the first key the override added
  for (size_t i = 0; i < override.path.size(); ++i) {
    const std::string& key = override.path[i];
    path += (i == 0 ? "" : ".") + key;
    const YAML::Node existing = static_cast<const YAML::Node&>(node)[key];  // const: no insertion
    if (i + 1 == override.path.size()) {
      node[key] = override.value;
      break;
    }
    if (!existing || existing.IsNull()) {
      if (owned.empty()) owned = path;
      node[key] = YAML::Node(YAML::NodeType::Map);
    } else if (!existing.IsMap()) {
      throw ConfigError(override.Origin(), 0, path, "holds a value in " + origin_ + ", not a section with keys");
    }
    node.reset(node[key]);
  }
  overridden_.push_back({owned.empty() ? path : owned, override.Origin()});
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
  value = ReadList(node, key);
}

void YamlReader::Field(const char* key, StringOrList field, Range, const char*) {
  YAML::Node node = Lookup(key);
  if (!node || node.IsNull()) return;
  if (node.IsScalar()) {
    *field.values = {node.Scalar()};
    return;
  }
  if (!node.IsSequence()) Fail(node, Path(key), "expected a string or a list of strings, got " + Describe(node));
  *field.values = ReadList(node, key);
}

StringList YamlReader::ReadList(const YAML::Node& node, const char* key) const {
  StringList out;
  for (const YAML::Node& item : node) {
    if (!item.IsScalar()) Fail(item, Path(key), "expected a list of strings, got " + Describe(item) + " in it");
    out.push_back(item.Scalar());
  }
  return out;
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
  std::string text = YAML::Dump(node);
  try {
    (void)YAML::Load(text);  // what is kept is read again later (and printed): it must parse
  } catch (const YAML::Exception&) {
    Fail(node, Path(key), "a mapping that YAML cannot write back faithfully");
  }
  *subtree.text = std::move(text);
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
    Fail(item.first, frame.path + key, "unknown key; " + DidYouMean(key, frame.known, "valid keys"));
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
  for (auto it = overridden_.rbegin(); it != overridden_.rend(); ++it) {
    if (path == it->path || path.starts_with(it->path + ".")) throw ConfigError(it->origin, 0, path, detail);
  }
  throw ConfigError(origin_, node.Mark().line + 1, path, detail);
}

std::string YamlReader::Describe(const YAML::Node& node) {
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "nothing";
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

void YamlWriter::Field(const char* key, StringOrList field, Range, const char*) {
  const StringList& values = *field.values;
  stack_.back()[key] = values.empty()      ? YAML::Node(YAML::NodeType::Null)
                       : values.size() == 1 ? YAML::Node(values[0])
                                            : YAML::Node(values);
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

// common/config_yaml.h: the YAML visitors of a configuration schema (common/config_schema.h).
//
//   YamlReader  binds a YAML document to the structs: types, ranges and choices are checked,
//               a key the schema does not have is an error with a "did you mean"; fields
//               the document leaves out (or sets to null) keep their values.
//   YamlWriter  prints the structs as YAML, every field in schema order; what it prints reads
//               back to the same values.
//
// Errors: YamlReader throws ConfigError with the origin, the line and the key path.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/config_schema.h"

namespace rl::common {

// Deeper YAML is refused: readers and writers (yaml-cpp's too) recurse once per level.
inline constexpr int kMaxYamlNesting = 64;
// So is a document of more values than this, counted with aliases expanded as its readers
// see it (a configuration has hundreds).
inline constexpr int64_t kMaxYamlValues = 100'000;

// Parses YAML text into a document: a syntax error is a ConfigError at its line, and so are a
// byte outside YAML's character set (control characters, a carriage return not before a line
// feed, ill-formed UTF-8: yaml-cpp reads them but may write text it cannot read back), a value
// that an escape made into such text (a carriage return, bytes that are not UTF-8), nesting
// beyond kMaxYamlNesting (an alias that contains itself nests forever) and more than
// kMaxYamlValues values (aliases of aliases).
YAML::Node ParseYamlDocument(const std::string& text, const std::string& origin);
// ParseYamlDocument, for YamlReader: a document that is not a mapping (nor empty) is an error.
YAML::Node ParseYamlConfig(const std::string& text, const std::string& origin);

// A command-line override of one key, as Hydra/OmegaConf and TRL's parser take them:
// "grpo.steps=3", "rollout.stop_strings=[a, b]", "grpo.lora={r: 16, alpha: 32}". The value is
// YAML (a scalar, or a flow list or mapping) and replaces what the document holds at that
// path, sections created as needed; "key=" or "key=null" sets null, which leaves the field at
// its default. Keys cannot contain dots. Errors name the override as written:
// "command-line override grpo.lerning_rate=1e-3: grpo.lerning_rate: unknown key; did you mean
// 'learning_rate'? ...".
struct YamlOverride {
  std::vector<std::string> path;  // {"grpo", "steps"}
  YAML::Node value;
  std::string text;  // as written: "grpo.steps=3"
  // The origin of every error this override causes: "command-line override grpo.steps=3".
  std::string Origin() const { return "command-line override " + text; }
};
// Parses "a.b.c=VALUE"; throws ConfigError for a missing '=', an empty key or malformed YAML.
YamlOverride ParseYamlOverride(const std::string& text);

class YamlReader {
 public:
  // Reads `root` (from `origin`) with `overrides` applied in order (a later one of the same key
  // wins): the schema checks an overridden value exactly as a value in the file, and an error
  // at or below an override's key names the override instead of a line of `origin`. Throws
  // ConfigError when an override goes through a key that holds a value, not a section.
  YamlReader(YAML::Node root, std::string origin, std::vector<YamlOverride> overrides = {});

  template <class Body>
  void Section(const char* key, Body&& body) {
    YAML::Node node = Lookup(key);
    const std::string path = Path(key);
    if (node && !node.IsNull() && !node.IsMap()) Fail(node, path, "expected a mapping (a section with keys)");
    stack_.push_back({node, path + ".", {}});
    body();
    CheckUnknownKeys();
    stack_.pop_back();
  }

  template <class T>
  void Field(const char* key, T& value, Range range = {}, const char* = "") {
    YAML::Node node = Lookup(key);
    if (!node || node.IsNull()) return;
    value = Convert<T>(node, key);
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      CheckRange(node, key, static_cast<double>(value), range);
    }
  }
  void Field(const char* key, std::optional<double>& value, Range range = {}, const char* = "");
  void Field(const char* key, StringList& value, Range = {}, const char* = "");
  void Field(const char* key, StringOrList field, Range = {}, const char* = "");
  void Field(const char* key, StringPairs& value, Range = {}, const char* = "");
  void Field(const char* key, YamlSubtree subtree, Range = {}, const char* = "");

  template <class E>
  void Choice(const char* key, E& value, const Choices<E>& choices, const char* = "") {
    YAML::Node node = Lookup(key);
    if (!node || node.IsNull()) return;
    const std::string text = Convert<std::string>(node, key);
    for (const auto& [name, choice] : choices) {
      if (text == name) {
        value = choice;
        return;
      }
    }
    Fail(node, Path(key), "expected one of " + QuotedNames(choices) + ", got '" + text + "'");
  }

  // Reports a key of the current mapping that the schema did not ask for. Sections check
  // their own keys; call it once more after visiting, for the top level.
  void CheckUnknownKeys();

 private:
  struct Frame {
    YAML::Node node;
    std::string path;                // "" or "section."
    std::vector<std::string> known;  // the keys visited so far
  };

  // What an override has put in the document, from the first key it added (or replaced) down.
  struct Overridden {
    std::string path;  // "grpo.lerning_rate", or "grpo" when the document had no grpo section
    std::string origin;
  };

  void ApplyOverride(YAML::Node& root, const YamlOverride& override);
  YAML::Node Lookup(const char* key);
  std::string Path(const char* key) const { return stack_.back().path + key; }
  [[noreturn]] void Fail(const YAML::Node& node, const std::string& path, const std::string& detail) const;
  static std::string Describe(const YAML::Node& node);
  StringList ReadList(const YAML::Node& node, const char* key) const;
  void CheckRange(const YAML::Node& node, const char* key, double value, Range range) const;

  template <class T>
  T Convert(const YAML::Node& node, const char* key) const {
    const char* expected = std::is_same_v<T, std::string> ? "a string"
                           : std::is_same_v<T, bool>      ? "true or false"
                           : std::is_integral_v<T>        ? "an integer"
                                                          : "a number";
    T out{};
    if (!node.IsScalar() || !YAML::convert<T>::decode(node, out)) {
      Fail(node, Path(key), std::string("expected ") + expected + ", got " + Describe(node));
    }
    if constexpr (std::is_floating_point_v<T>) {
      if (!std::isfinite(out)) Fail(node, Path(key), "expected a finite number, got " + Describe(node));
    }
    return out;
  }

  std::string origin_;
  std::vector<Frame> stack_;
  std::vector<Overridden> overridden_;  // in the order applied: the last match wins
};

class YamlWriter {
 public:
  YamlWriter() { stack_.push_back(YAML::Node(YAML::NodeType::Map)); }

  template <class Body>
  void Section(const char* key, Body&& body) {
    stack_.push_back(YAML::Node(YAML::NodeType::Map));
    body();
    YAML::Node done = stack_.back();
    stack_.pop_back();
    stack_.back()[key] = done;
  }

  template <class T>
  void Field(const char* key, const T& value, Range = {}, const char* = "") {
    stack_.back()[key] = value;
  }
  void Field(const char* key, const std::optional<double>& value, Range = {}, const char* = "");
  void Field(const char* key, StringOrList field, Range = {}, const char* = "");
  void Field(const char* key, const StringPairs& value, Range = {}, const char* = "");
  void Field(const char* key, YamlSubtree subtree, Range = {}, const char* = "");

  template <class E>
  void Choice(const char* key, const E& value, const Choices<E>& choices, const char* = "") {
    for (const auto& [name, choice] : choices) {
      if (choice == value) stack_.back()[key] = std::string(name);
    }
  }

  // The document, full precision for numbers, ending in a newline.
  std::string Dump() const;

 private:
  std::vector<YAML::Node> stack_;
};

}  // namespace rl::common

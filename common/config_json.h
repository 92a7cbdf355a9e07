// common/config_json.h: the JSON reader of a configuration schema (common/config_schema.h),
// for settings that arrive as JSON (a reward spec, read from YAML or sent as JSON): the same
// checks as YamlReader, with errors that carry the key path (the caller knows the lines).
//
//   common::JsonReader reader(spec["math"], "math");
//   VisitVerifierOptions(reader, options);  // throws ConfigError{"", 0, "math.precision", ...}
//   reader.CheckUnknownKeys();
//
// Besides the schema's field types, ChoiceList reads a list of choices (a priority order), and
// a JsonSubtree field keeps a value as the JSON it is, for a reader of its own (a reward spec's
// rules, each read by its rule's factory).
#pragma once

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/config_schema.h"

namespace rl::common {

// A value left unread by the schema; null when absent. Points into the reader's document.
struct JsonSubtree {
  const nlohmann::json* node = nullptr;
};

class JsonReader {
 public:
  // `path` names `root` in errors ("math"); empty for a document's top level.
  JsonReader(const nlohmann::json& root, std::string path);

  template <class Body>
  void Section(const char* key, Body&& body) {
    const nlohmann::json* node = Lookup(key);
    if (node != nullptr && !node->is_object()) Fail(Path(key), "expected a mapping, got " + TypeOf(*node));
    stack_.push_back({node, Path(key), {}});
    body();
    CheckUnknownKeys();
    stack_.pop_back();
  }

  template <class T>
  void Field(const char* key, T& value, Range range = {}, const char* = "") {
    const nlohmann::json* node = Lookup(key);
    if (node == nullptr) return;
    if constexpr (std::is_same_v<T, bool>) {
      if (!node->is_boolean()) Fail(Path(key), "expected true or false, got " + TypeOf(*node));
      value = node->get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
      if (!node->is_number_integer()) Fail(Path(key), "expected an integer, got " + TypeOf(*node));
      const double number = node->get<double>();
      CheckRange(key, number, range);
      value = node->is_number_unsigned() ? static_cast<T>(node->get<uint64_t>()) : static_cast<T>(node->get<int64_t>());
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!node->is_number()) Fail(Path(key), "expected a number, got " + TypeOf(*node));
      const double number = node->get<double>();
      if (!std::isfinite(number)) Fail(Path(key), "expected a finite number");
      CheckRange(key, number, range);
      value = static_cast<T>(number);
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!node->is_string()) Fail(Path(key), "expected a string, got " + TypeOf(*node));
      value = node->get<std::string>();
    } else if constexpr (std::is_same_v<T, JsonSubtree>) {
      value.node = node;
    } else {
      static_assert(std::is_same_v<T, StringList>, "JsonReader: a field type of config_schema.h");
      if (!node->is_array()) Fail(Path(key), "expected a list of strings, got " + TypeOf(*node));
      StringList out;
      for (const nlohmann::json& item : *node) {
        if (!item.is_string()) Fail(Path(key), "expected a list of strings, got " + TypeOf(item) + " in it");
        out.push_back(item.get<std::string>());
      }
      value = std::move(out);
    }
  }

  template <class E>
  void Choice(const char* key, E& value, const Choices<E>& choices, const char* = "") {
    const nlohmann::json* node = Lookup(key);
    if (node == nullptr) return;
    value = Pick(*node, choices, Path(key));
  }

  // A non-empty list of choices, in the order given.
  template <class E>
  void ChoiceList(const char* key, std::vector<E>& values, const Choices<E>& choices, const char* = "") {
    const nlohmann::json* node = Lookup(key);
    if (node == nullptr) return;
    if (!node->is_array() || node->empty()) {
      Fail(Path(key), "expected a list of " + QuotedNames(choices) + ", got " + TypeOf(*node));
    }
    std::vector<E> out;
    for (const nlohmann::json& item : *node) out.push_back(Pick(item, choices, Path(key)));
    values = std::move(out);
  }

  // Reports a key of the current mapping that the schema did not ask for; call it once more
  // after visiting, for the top level.
  void CheckUnknownKeys();

 private:
  struct Frame {
    const nlohmann::json* node;  // null: absent
    std::string path;
    std::vector<std::string> known;
  };

  const nlohmann::json* Lookup(const char* key);
  std::string Path(const char* key) const;
  [[noreturn]] static void Fail(const std::string& path, const std::string& detail);
  // "a list", "'text'" (as given, not dumped: it may not be UTF-8), "number 3", ...
  static std::string TypeOf(const nlohmann::json& node);
  void CheckRange(const char* key, double value, Range range) const;

  template <class E>
  static E Pick(const nlohmann::json& node, const Choices<E>& choices, const std::string& path) {
    for (const auto& [name, choice] : choices) {
      if (node.is_string() && node.get_ref<const std::string&>() == name) return choice;
    }
    Fail(path, "expected one of " + QuotedNames(choices) + ", got " + TypeOf(node));
  }

  std::vector<Frame> stack_;
};

}  // namespace rl::common

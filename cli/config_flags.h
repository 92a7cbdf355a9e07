// cli/config_flags.h: a command's flags derived from a configuration schema
// (common/config_schema.h), so that a setting is written down once, with its help, and the
// flag is read and checked exactly as the key in a file is.
//
//   auto schema = [](auto& v, ServerConfig& c) { VisitServerConfig(v, c); };
//   ConfigFlags flags(cmd, schema, ServerConfig{});  // --port, --io-threads, --assistant-marker, ...
//   ... cmd parses the command line ...
//   flags.Apply(schema, &config);  // the given flags over config; throws ConfigError
//
// A field's flag is its key with '-' for '_', without its section (get_reward.assistant_marker
// is --assistant-marker; the schema keeps leaf keys unique). Its value is what the key takes in
// YAML: a scalar; a list as "a,b,c"; a mapping of strings as "name=value,name=value". Apply
// feeds the given flags through the schema's YAML reader with the origin "command line", so an
// error reads "command line: port: value 70000 out of range: expected between 0 and 65535".
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <yaml-cpp/yaml.h>

#include "common/config_schema.h"
#include "common/config_yaml.h"

namespace rl::cli {

class ConfigFlags {
 public:
  // Adds one flag per field that schema(visitor, config) visits; `defaults` shows in --help.
  template <class Config, class Schema>
  ConfigFlags(CLI::App* app, Schema schema, Config defaults) {
    Binder binder{this, app, {}};
    schema(binder, defaults);
  }

  // Applies the flags given on the command line onto *config; throws common::ConfigError.
  template <class Config, class Schema>
  void Apply(Schema schema, Config* config) const {
    common::YamlReader reader(Given(), "command line");
    schema(reader, *config);
  }

  // The flags given, as the YAML document they stand for; throws common::ConfigError for a
  // malformed list or mapping.
  YAML::Node Given() const;

 private:
  enum class Kind { kScalar, kList, kPairs };
  struct Flag {
    std::vector<std::string> path;  // section keys, then the field's key
    Kind kind;
    std::string text;  // the value as given
    CLI::Option* option = nullptr;
  };

  // The visitor that adds the flags.
  struct Binder {
    ConfigFlags* flags;
    CLI::App* app;
    std::vector<std::string> sections;

    template <class Body>
    void Section(const char* key, Body&& body) {
      sections.push_back(key);
      body();
      sections.pop_back();
    }
    template <class T>
    void Field(const char* key, const T& value, common::Range = {}, const char* help = "") {
      Kind kind = Kind::kScalar;
      const char* type = std::is_same_v<T, bool> ? "BOOL" : std::is_integral_v<T> ? "INT"
                         : std::is_floating_point_v<T> ? "NUMBER" : "TEXT";
      if constexpr (std::is_same_v<T, common::StringList> || std::is_same_v<T, common::StringOrList>) {
        kind = Kind::kList, type = "A,B,...";
      }
      if constexpr (std::is_same_v<T, common::StringPairs>) kind = Kind::kPairs, type = "NAME=VALUE,...";
      flags->Add(app, sections, key, kind, help, DefaultText(value))->type_name(type);
    }
    template <class E>
    void Choice(const char* key, const E& value, const common::Choices<E>& choices, const char* help = "") {
      std::vector<std::string> names;
      std::string shown;
      for (const auto& [name, choice] : choices) {
        names.push_back(name);
        if (choice == value) shown = name;
      }
      flags->Add(app, sections, key, Kind::kScalar, help, shown)->check(CLI::IsMember(names));
    }

    // As YAML writes it: a string with a newline is shown quoted and escaped.
    template <class T>
    static std::string DefaultText(const T& value) {
      if constexpr (std::is_same_v<T, std::string> || std::is_arithmetic_v<T>) {
        if constexpr (std::is_same_v<T, std::string>) {
          if (value.empty()) return "";
        }
        YAML::Emitter out;
        out << value;
        return out.c_str();
      } else {
        return "";  // lists and mappings: their help says what they hold
      }
    }
  };

  CLI::Option* Add(CLI::App* app, const std::vector<std::string>& sections, const char* key, Kind kind,
                   const char* help, const std::string& default_text);

  std::vector<std::unique_ptr<Flag>> flags_;  // stable addresses: CLI11 writes into `text`
};

}  // namespace rl::cli

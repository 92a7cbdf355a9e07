// common/config_schema.h: a configuration written down once, as a visit of its fields, and
// read, printed, checked and turned into command-line flags by visitors. The trainer's run
// config and the reward server's config are schemas of this kind:
//
//   template <class V>
//   void VisitServer(V& v, ServerConfig& c) {
//     v.Field("port", c.port, Between(0, 65535), "port (0: any free port)");
//     v.Section("get_reward", [&] {
//       v.Choice("on_unscorable", c.get_reward.on_unscorable, kOnUnscorable);
//     });
//   }
//
//   rl::common::YamlReader reader(YAML::Load(text), "server.yaml");  // common/config_yaml.h
//   VisitServer(reader, config);  // throws ConfigError("server.yaml", 3, "port", "expected ...")
//   reader.CheckUnknownKeys();    // a key nobody asked for: "did you mean 'port'?"
//   rl::common::YamlWriter writer;
//   VisitServer(writer, config);  // writer.Dump(): every field, in schema order
//
// A visitor has Section(key, body), Field(key, value, range, help) and Choice(key, value,
// choices, help). Field takes bool, integers, double, std::optional<double> (null: unset),
// std::string, StringList (a YAML list), StringOrList (a string or a list of them), StringPairs
// (a YAML mapping of string to string, in order) and YamlSubtree (any mapping, kept as YAML
// text). Ranges apply to numbers. Help is one line, shown by command-line flags
// (cli/config_flags.h).
//
// Errors: readers and RangeChecker throw ConfigError, which carries where the error is as data
// (origin, line, dotted key path) besides the sentence; nothing else escapes them.
//
// Thread safety: visitors are single-use objects of one thread; the schema functions they
// visit are plain code.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace rl::common {

// Inclusive bounds of a number.
struct Range {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool Contains(double v) const { return v >= min && v <= max; }
  // "at least 1", "between 0 and 65535".
  std::string Describe() const;
};
inline Range AtLeast(double min) { return Range{min, std::numeric_limits<double>::infinity()}; }
inline Range Between(double min, double max) { return Range{min, max}; }

// The names of an enum's values, in the order they are documented.
template <class E>
using Choices = std::vector<std::pair<const char*, E>>;

// "'a', 'b', 'c'": the names of the choices, for "expected one of ..." in every reader.
template <class E>
std::string QuotedNames(const Choices<E>& choices) {
  std::string out;
  for (const auto& [name, choice] : choices) out += (out.empty() ? "'" : ", '") + std::string(name) + "'";
  return out;
}

using StringList = std::vector<std::string>;
// A mapping of string to string, in the order written (e.g. reward name -> spec file).
using StringPairs = std::vector<std::pair<std::string, std::string>>;
// A field that takes one string or a list of them (one reward server, or several), read into
// a StringList and written back as a scalar when it holds one.
struct StringOrList {
  StringList* values;
};
// A field holding any mapping, kept as YAML text (e.g. an inline reward spec).
struct YamlSubtree {
  std::string* text;
};

// An error at one key of a configuration.
class ConfigError : public std::runtime_error {
 public:
  // origin: the file (or "command line"); line: 1-based, 0 when unknown; path: the dotted key
  // path ("grpo.beta"), empty for the document as a whole.
  ConfigError(std::string origin, int line, std::string path, std::string detail);

  const std::string& origin() const { return origin_; }
  int line() const { return line_; }
  const std::string& path() const { return path_; }
  const std::string& detail() const { return detail_; }

 private:
  std::string origin_;
  int line_;
  std::string path_;
  std::string detail_;
};

// "origin:line: path: detail", leaving out what is unknown (what() returns this).
std::string FormatConfigError(const std::string& origin, int line, const std::string& path,
                              const std::string& detail);

// Checks the numbers of a configuration that did not come through a reader (built in code, or
// changed after reading) against the schema's ranges; throws ConfigError naming the path.
class RangeChecker {
 public:
  explicit RangeChecker(std::string origin) : origin_(std::move(origin)) {}

  template <class Body>
  void Section(const char* key, Body&& body) {
    const size_t size = prefix_.size();
    prefix_ += std::string(key) + ".";
    body();
    prefix_.resize(size);
  }
  template <class T>
  void Field(const char* key, const T& value, Range range = {}, const char* = "") {
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      Check(key, static_cast<double>(value), range);
    } else if constexpr (std::is_same_v<T, std::optional<double>>) {
      if (value) Check(key, *value, range);
    }
  }
  template <class E>
  void Choice(const char*, const E&, const Choices<E>&, const char* = "") {}

 private:
  void Check(const char* key, double value, Range range) const;

  std::string origin_;
  std::string prefix_;
};

}  // namespace rl::common

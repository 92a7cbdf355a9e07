#include "cli/config_flags.h"

#include <string_view>

namespace rl::cli {
namespace {

std::string FlagName(const char* key) {
  std::string name = std::string("--") + key;
  for (char& ch : name) ch = ch == '_' ? '-' : ch;
  return name;
}

std::vector<std::string_view> SplitCommas(std::string_view text) {
  std::vector<std::string_view> parts;
  while (true) {
    const size_t comma = text.find(',');
    parts.push_back(text.substr(0, comma));
    if (comma == std::string_view::npos) return parts;
    text.remove_prefix(comma + 1);
  }
}

}  // namespace

CLI::Option* ConfigFlags::Add(CLI::App* app, const std::vector<std::string>& sections, const char* key,
                              Kind kind, const char* help, const std::string& default_text) {
  auto flag = std::make_unique<Flag>();
  flag->path = sections;
  flag->path.push_back(key);
  flag->kind = kind;
  flag->option = app->add_option(FlagName(key), flag->text, help);
  if (!default_text.empty()) flag->option->default_str(default_text);
  flags_.push_back(std::move(flag));
  return flags_.back()->option;
}

YAML::Node ConfigFlags::Given() const {
  YAML::Node root(YAML::NodeType::Map);
  for (const auto& flag : flags_) {
    if (flag->option->count() == 0) continue;
    const std::string& key = flag->path.back();
    YAML::Node value;
    if (flag->kind == Kind::kScalar) {
      value = flag->text;
    } else if (flag->kind == Kind::kList) {
      value = YAML::Node(YAML::NodeType::Sequence);
      for (std::string_view item : SplitCommas(flag->text)) value.push_back(std::string(item));
    } else {
      value = YAML::Node(YAML::NodeType::Map);
      for (std::string_view item : SplitCommas(flag->text)) {
        const size_t eq = item.find('=');
        if (eq == std::string_view::npos || eq == 0 || eq + 1 == item.size()) {
          throw common::ConfigError("command line", 0, FlagName(key.c_str()),
                                    "'" + std::string(item) + "': expected name=value[,name=value...]");
        }
        value[std::string(item.substr(0, eq))] = std::string(item.substr(eq + 1));
      }
    }
    // Nested sections become nested mappings, as in a file. (A YAML::Node is a reference:
    // reset() rebinds it, where `=` would overwrite the node it refers to.)
    YAML::Node parent = root;
    for (size_t i = 0; i + 1 < flag->path.size(); ++i) {
      if (!parent[flag->path[i]]) parent[flag->path[i]] = YAML::Node(YAML::NodeType::Map);
      parent.reset(parent[flag->path[i]]);
    }
    parent[key] = value;
  }
  return root;
}

}  // namespace rl::cli

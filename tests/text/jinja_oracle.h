// The Jinja2 oracle of the chat-template tests: renders conversations with
// text/render_chat_template.py under Debian's /usr/bin/python3 (python3-jinja2), as
// transformers' apply_chat_template does. Exits the test with 77 (CTest: skipped) when the
// oracle is missing.
#ifndef RL_TESTS_TEXT_JINJA_ORACLE_H_
#define RL_TESTS_TEXT_JINJA_ORACLE_H_

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "rl/text/chat_template.h"
#include "tests/support/process.h"

namespace rl::testing {

constexpr int kSkipReturnCode = 77;

struct ChatCase {
  std::vector<rl::text::ChatMessage> messages;
  bool add_generation_prompt = true;
  std::optional<bool> enable_thinking;  // unset: the variable is not passed (Jinja: undefined)
  std::optional<std::string> date_string;  // likewise
};

[[noreturn]] inline void SkipTest(const std::string& test, const std::string& why) {
  std::cerr << "\n*** SKIPPED " << test << ": " << why << " ***\n\n";
  std::exit(kSkipReturnCode);
}

inline nlohmann::json CasesJson(std::span<const ChatCase> cases) {
  nlohmann::json input = nlohmann::json::array();
  for (const ChatCase& c : cases) {
    nlohmann::json messages = nlohmann::json::array();
    for (const rl::text::ChatMessage& m : c.messages) {
      messages.push_back({{"role", m.role}, {"content", m.content}});
    }
    nlohmann::json one = {{"messages", messages},
                          {"add_generation_prompt", c.add_generation_prompt}};
    if (c.enable_thinking) one["enable_thinking"] = *c.enable_thinking;
    if (c.date_string) one["date_string"] = *c.date_string;
    input.push_back(one);
  }
  return input;
}

// Renders every case with `template_path` (a .jinja file or a tokenizer_config.json).
inline std::vector<std::string> RenderWithJinja(const std::string& template_path,
                                                std::span<const ChatCase> cases,
                                                const std::string& test) {
  if (access("/usr/bin/python3", X_OK) != 0) {
    SkipTest(test, "/usr/bin/python3 is missing (install python3-jinja2: ./scripts/setup)");
  }
  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     ("rl_chat_template_" + std::to_string(getpid()) + ".json");
  std::ofstream(path) << CasesJson(cases).dump();
  const ProcessResult run = RunProcess("/usr/bin/python3 text/render_chat_template.py " +
                                       template_path + " " + path.string());
  std::filesystem::remove(path);
  std::cerr << run.err;
  if (run.exit_code == kSkipReturnCode) {
    SkipTest(test, "jinja2 is missing for /usr/bin/python3 (install python3-jinja2: "
                   "./scripts/setup)");
  }
  REQUIRE(run.exit_code == 0);
  const auto rendered = nlohmann::json::parse(run.out).get<std::vector<std::string>>();
  REQUIRE(rendered.size() == cases.size());
  return rendered;
}

}  // namespace rl::testing

#endif  // RL_TESTS_TEXT_JINJA_ORACLE_H_

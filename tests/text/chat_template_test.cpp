// RenderChatMl against the Jinja2 rendering of Qwen2.5-Instruct's own chat template, done by
// Debian's /usr/bin/python3 (python3-jinja2). Exits with 77 (CTest: skipped) when that oracle
// is missing.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "rl/text/chat_template.h"
#include "tests/support/process.h"

namespace {

using rl::text::ChatMessage;
using rl::text::RenderChatMl;

constexpr int kSkipReturnCode = 77;

struct Case {
  std::vector<ChatMessage> messages;
  bool add_generation_prompt;
};

std::vector<Case> Cases() {
  const std::string unicode = "Grüße, 世界! 🦙 e\xCC\x81 — «ünïcödé» \t tabs\n\nand lines";
  return {
      {{{"user", "What is 2+2?"}}, true},
      {{{"user", "What is 2+2?"}}, false},
      {{{"system", "You are a math tutor."}, {"user", "Solve x^2=4."}}, true},
      {{{"system", ""}, {"user", "empty system prompt"}}, true},
      {{{"system", "only a system message"}}, true},
      {{{"user", "hi"}, {"assistant", "Hello! How can I help?"}, {"user", "Tell a joke."}},
       true},
      {{{"system", "Be brief."},
        {"user", "q1"},
        {"assistant", "<think>\nreasoning\n</think>\n<answer>42</answer>"},
        {"user", "q2"},
        {"assistant", "a2"}},
       false},
      {{{"user", "first"}, {"system", "a late system message"}, {"user", "second"}}, true},
      {{{"user", "say nothing"}, {"assistant", ""}}, false},
      {{{"user", unicode}, {"assistant", unicode}}, true},
      {{{"user", "{{ not a template }} {% raw %} <|im_end|> \\n"}}, true},
      {{{"user", "call a tool"},
        {"tool", "result one"},
        {"tool", "result two"},
        {"assistant", "done"},
        {"tool", "late result"}},
       true},
      {{{"user", " leading and trailing spaces \n"}}, true},
  };
}

// Renders every case with the Jinja2 oracle; exits with the skip code when it is unavailable.
std::vector<std::string> RenderWithJinja(const std::vector<Case>& cases) {
  if (access("/usr/bin/python3", X_OK) != 0) {
    std::cerr << "\n*** SKIPPED text_chat_template: /usr/bin/python3 is missing (install "
                 "python3-jinja2: ./scripts/setup) ***\n\n";
    std::exit(kSkipReturnCode);
  }
  nlohmann::json input = nlohmann::json::array();
  for (const Case& c : cases) {
    nlohmann::json messages = nlohmann::json::array();
    for (const ChatMessage& m : c.messages) {
      messages.push_back({{"role", m.role}, {"content", m.content}});
    }
    input.push_back({{"messages", messages}, {"add_generation_prompt", c.add_generation_prompt}});
  }
  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     ("rl_chat_template_" + std::to_string(getpid()) + ".json");
  std::ofstream(path) << input.dump();
  const std::string command =
      "/usr/bin/python3 text/render_chat_template.py "
      "fixtures/tokenizer/qwen2.5-instruct.chat_template.jinja " + path.string();
  const rl::testing::ProcessResult run = rl::testing::RunProcess(command);
  std::filesystem::remove(path);
  std::cerr << run.err;
  const std::string& output = run.out;
  const int code = run.exit_code;
  if (code == kSkipReturnCode) {
    std::cerr << "\n*** SKIPPED text_chat_template: jinja2 is missing for /usr/bin/python3 "
                 "(install python3-jinja2: ./scripts/setup) ***\n\n";
    std::exit(kSkipReturnCode);
  }
  REQUIRE(code == 0);
  return nlohmann::json::parse(output).get<std::vector<std::string>>();
}

}  // namespace

TEST_CASE("RenderChatMl is byte-identical to Jinja2 on Qwen2.5-Instruct's template") {
  const std::vector<Case> cases = Cases();
  const std::vector<std::string> expected = RenderWithJinja(cases);
  REQUIRE(expected.size() == cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i);
    CHECK(RenderChatMl(cases[i].messages, cases[i].add_generation_prompt) == expected[i]);
  }
}

TEST_CASE("RenderChatMl: default system prompt and generation prompt") {
  const std::vector<ChatMessage> messages = {{"user", "Hi"}};
  CHECK(RenderChatMl(messages, true) ==
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
        "assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST_CASE("RenderChatMl refuses what the template would fail on or silently drop") {
  CHECK_THROWS_AS(RenderChatMl(std::vector<ChatMessage>{}, true), std::invalid_argument);
  const std::vector<ChatMessage> bad_role = {{"user", "a"}, {"narrator", "b"}};
  CHECK_THROWS_WITH(RenderChatMl(bad_role, true), Catch::Contains("messages[1].role"));
}

// RenderChatMl against the Jinja2 rendering of Qwen2.5-Instruct's own chat template, done by
// Debian's /usr/bin/python3 (python3-jinja2); the other templates' shapes and the
// identification of templates. Exits with 77 (CTest: skipped) when that oracle is missing.
// Qwen3's and Llama 3's published templates: chat_template_published_test.cpp.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "rl/text/chat_template.h"
#include "tests/text/jinja_oracle.h"

namespace {

using rl::text::ChatMessage;
using rl::testing::ChatCase;
using rl::text::RenderChatMl;

struct Case {
  std::vector<ChatMessage> messages;
  bool add_generation_prompt;
};

std::vector<Case> QwenCases() {
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

}  // namespace

TEST_CASE("RenderChatMl is byte-identical to Jinja2 on Qwen2.5-Instruct's template") {
  std::vector<ChatCase> cases;
  for (const Case& c : QwenCases()) {
    cases.push_back({c.messages, c.add_generation_prompt, {}, {}});
  }
  const std::vector<std::string> expected = rl::testing::RenderWithJinja(
      "fixtures/tokenizer/qwen2.5-instruct.chat_template.jinja", cases, "text_chat_template");
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i);
    CHECK(RenderChatMl(cases[i].messages, cases[i].add_generation_prompt) == expected[i]);
    rl::text::ChatOptions options;
    options.add_generation_prompt = cases[i].add_generation_prompt;
    CHECK(rl::text::RenderChat(rl::text::ChatTemplate::kQwen25, cases[i].messages, options) ==
          expected[i]);
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

TEST_CASE("Qwen3, Llama 3 and Llama 3.2-Instruct: the shapes of their prompts") {
  using rl::text::ChatTemplate;
  using rl::text::RenderChat;
  const std::vector<ChatMessage> messages = {{"user", "Hi"}};
  rl::text::ChatOptions thinking;
  CHECK(RenderChat(ChatTemplate::kQwen3, messages, thinking) ==
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  rl::text::ChatOptions no_thinking;
  no_thinking.enable_thinking = false;
  CHECK(RenderChat(ChatTemplate::kQwen3, messages, no_thinking) ==
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  const std::vector<ChatMessage> padded = {{"system", "  Be brief.\n"}, {"user", "\tHi \n"}};
  CHECK(RenderChat(ChatTemplate::kLlama3, padded, thinking) ==
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");
  CHECK(RenderChat(ChatTemplate::kLlama32, messages, thinking) ==
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
        "December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");
  CHECK_THROWS_WITH(RenderChat(ChatTemplate::kQwen3, std::vector<ChatMessage>{}, thinking),
                    Catch::Contains("no messages"));
  const std::vector<ChatMessage> bad_role = {{"user", "a"}, {"narrator", "b"}};
  CHECK_THROWS_WITH(RenderChat(ChatTemplate::kQwen3, bad_role, thinking),
                    Catch::Contains("messages[1].role"));
}

TEST_CASE("ChatTemplateOf recognises the published texts only") {
  using rl::text::ChatTemplate;
  std::ifstream in("fixtures/tokenizer/qwen2.5-instruct.chat_template.jinja");
  REQUIRE(in.good());
  const std::string qwen25((std::istreambuf_iterator<char>(in)),
                           std::istreambuf_iterator<char>());
  CHECK(rl::text::ChatTemplateOfText(qwen25) == ChatTemplate::kQwen25);
  CHECK(rl::text::ChatTemplateOfText(qwen25.substr(0, qwen25.size() - 1)) ==
        ChatTemplate::kQwen25);  // Jinja2 drops one trailing newline
  CHECK_FALSE(rl::text::ChatTemplateOfText(qwen25 + " "));
  std::string error;
  CHECK(rl::text::ChatTemplateOf({{"chat_template", qwen25}}, "cfg.json", &error) ==
        ChatTemplate::kQwen25);
  const nlohmann::json named = {{"chat_template",
                                 {{{"name", "tool_use"}, {"template", "x"}},
                                  {{"name", "default"}, {"template", qwen25}}}}};
  CHECK(rl::text::ChatTemplateOf(named, "cfg.json", &error) == ChatTemplate::kQwen25);
  const nlohmann::json edited = {{"chat_template", "{{ messages }}"}};
  CHECK_FALSE(rl::text::ChatTemplateOf(edited, "cfg.json", &error));
  CHECK_THAT(error, Catch::Contains("cfg.json: chat_template: not one of the chat templates"));
  CHECK_FALSE(rl::text::ChatTemplateOf(nlohmann::json::object(), "cfg.json", &error));
  CHECK_THAT(error, Catch::Contains("cfg.json: chat_template: missing"));
  CHECK_FALSE(rl::text::ChatTemplateOf({{"chat_template", 3}}, "cfg.json", &error));
  CHECK_THAT(error, Catch::Contains("expected a string or a list"));
}

TEST_CASE("ChatTemplateOfCheckpoint reads chat_template.jinja, else tokenizer_config.json") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("rl_chat_ckpt_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::string error;
  CHECK_FALSE(rl::text::ChatTemplateOfCheckpoint(dir.string(), &error));
  CHECK_THAT(error, Catch::Contains("neither tokenizer_config.json nor chat_template.jinja"));
  fs::copy_file("fixtures/tokenizer/qwen2.5-instruct.chat_template.jinja",
                dir / "chat_template.jinja");
  CHECK(rl::text::ChatTemplateOfCheckpoint(dir.string(), &error) ==
        rl::text::ChatTemplate::kQwen25);
  std::ofstream(dir / "chat_template.jinja") << "{{ messages }}";
  CHECK_FALSE(rl::text::ChatTemplateOfCheckpoint(dir.string(), &error));
  CHECK_THAT(error, Catch::Contains("chat_template.jinja: not one of the chat templates"));
  fs::remove(dir / "chat_template.jinja");
  std::ofstream(dir / "tokenizer_config.json") << "{not json";
  CHECK_FALSE(rl::text::ChatTemplateOfCheckpoint(dir.string(), &error));
  CHECK_THAT(error, Catch::Contains("tokenizer_config.json: not a JSON object"));
  fs::remove_all(dir);
}

TEST_CASE("ChatTemplateFromName reads the names ChatTemplateName writes, and chatml") {
  using rl::text::ChatTemplate;
  for (ChatTemplate kind : {ChatTemplate::kQwen25, ChatTemplate::kQwen3, ChatTemplate::kLlama3,
                            ChatTemplate::kLlama32}) {
    CHECK(rl::text::ChatTemplateFromName(rl::text::ChatTemplateName(kind)) == kind);
  }
  CHECK(rl::text::ChatTemplateFromName("chatml") == ChatTemplate::kQwen25);
  CHECK_FALSE(rl::text::ChatTemplateFromName("plain"));
  CHECK_FALSE(rl::text::ChatTemplateFromName("Qwen3"));
}

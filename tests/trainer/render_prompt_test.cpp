// RenderPrompt (trainer/policy.h): a dataset's prompt, text or chat messages, as the policy
// sees it.
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/catch_torch.h"

#include "rl/data/dataset.h"
#include "tests/support/temp_dir.h"
#include "trainer/policy.h"

using rl::data::Example;
using rl::trainer::PromptFormat;
using rl::trainer::RenderPrompt;
using rl::trainer::ResolveTokenizer;
using rl::trainer::TokenizerSection;

TEST_CASE("text and chat-message prompts render through the same chat template", "[data][chat]") {
  TokenizerSection chatml;
  chatml.prompt_format = PromptFormat::kChatMl;
  const std::string header =
      "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n";
  const std::string question = "<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n";
  Example text{"1+1?", "2", ""};
  Example chat;
  chat.messages = {{"user", "1+1?"}};
  CHECK(RenderPrompt(chatml, text) == header + question);
  CHECK(RenderPrompt(chatml, chat) == header + question);
  // A conversation uses the template even when text prompts are plain.
  TokenizerSection plain;
  CHECK(RenderPrompt(plain, text) == "1+1?\n");
  CHECK(RenderPrompt(plain, chat) == header + question);
  // The configured system prompt stands in for a missing system message, never for one given.
  chatml.system_prompt = "Think first.";
  CHECK(RenderPrompt(chatml, chat) == "<|im_start|>system\nThink first.<|im_end|>\n" + question);
  chat.messages.insert(chat.messages.begin(), {"system", "Be brief."});
  CHECK(RenderPrompt(chatml, chat) == "<|im_start|>system\nBe brief.<|im_end|>\n" + question);
  chat.messages = {{"user", "a"}, {"assistant", "b"}, {"user", "1+1?"}};
  CHECK(RenderPrompt(plain, chat) ==
        header + "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n" + question);
}

TEST_CASE("the Qwen3 and Llama 3 templates, and Qwen3's thinking switch", "[data][chat]") {
  const Example text{"1+1?", "2", ""};
  TokenizerSection qwen3;
  qwen3.prompt_format = PromptFormat::kQwen3;
  // Thinking (the default): the model opens <think> itself; no default system prompt.
  CHECK(RenderPrompt(qwen3, text) == "<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n");
  qwen3.enable_thinking = false;
  CHECK(RenderPrompt(qwen3, text) ==
        "<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  TokenizerSection llama;
  llama.prompt_format = PromptFormat::kLlama3;
  llama.system_prompt = "Think first.";
  CHECK(RenderPrompt(llama, text) ==
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nThink first.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n1+1?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST_CASE("prompt_format auto and the default eos_token come from the checkpoint", "[data][chat]") {
  namespace fs = std::filesystem;
  TokenizerSection defaults;
  defaults.prompt_format = PromptFormat::kAuto;
  // Trained from scratch: plain text, Qwen's end of text.
  TokenizerSection resolved = ResolveTokenizer(defaults, "");
  CHECK(resolved.prompt_format == PromptFormat::kPlain);
  CHECK(resolved.eos_token == "<|endoftext|>");
  CHECK_THROWS_WITH(RenderPrompt(defaults, Example{"1+1?", "2", ""}), Catch::Contains("ResolveTokenizer"));
  // A checkpoint with Qwen2.5-Instruct's template: chatml, ended by <|im_end|>.
  rl::testing::TempDir instruct;
  fs::copy_file("fixtures/tokenizer/qwen2.5-instruct.chat_template.jinja", instruct.path() / "chat_template.jinja");
  resolved = ResolveTokenizer(defaults, instruct.str());
  CHECK(resolved.prompt_format == PromptFormat::kChatMl);
  CHECK(resolved.eos_token == "<|im_end|>");
  // What the configuration says is kept.
  TokenizerSection given = defaults;
  given.prompt_format = PromptFormat::kPlain;
  given.eos_token = "<|endoftext|>";
  resolved = ResolveTokenizer(given, instruct.str());
  CHECK(resolved.prompt_format == PromptFormat::kPlain);
  CHECK(resolved.eos_token == "<|endoftext|>");
  // A Llama 3 format ends turns with <|eot_id|>.
  given = TokenizerSection();
  given.prompt_format = PromptFormat::kLlama3;
  CHECK(ResolveTokenizer(given, "").eos_token == "<|eot_id|>");
  // A base model without a template: plain, and the eos_token its tokenizer_config.json names
  // (an AddedToken object, as older files write it).
  rl::testing::TempDir base;
  std::ofstream(base / "tokenizer_config.json") << R"({"eos_token": {"content": "<|end_of_text|>"}})";
  resolved = ResolveTokenizer(defaults, base.str());
  CHECK(resolved.prompt_format == PromptFormat::kPlain);
  CHECK(resolved.eos_token == "<|end_of_text|>");
  // A template rl does not render is an error naming the file, not a silent plain prompt.
  rl::testing::TempDir edited;
  std::ofstream(edited / "chat_template.jinja") << "{{ messages[0]['content'] }}";
  CHECK_THROWS_WITH(ResolveTokenizer(defaults, edited.str()),
                    Catch::Contains("prompt_format auto") && Catch::Contains("chat_template.jinja"));
  // An unreadable tokenizer_config.json is named too.
  std::ofstream(base / "tokenizer_config.json", std::ios::trunc) << "[1, 2";
  CHECK_THROWS_WITH(ResolveTokenizer(defaults, base.str()), Catch::Contains("tokenizer_config.json"));
}

// RenderPrompt (trainer/policy.h): a dataset's prompt, text or chat messages, as the policy
// sees it.
#include <string>

#include "tests/support/catch_torch.h"

#include "rl/data/dataset.h"
#include "trainer/policy.h"

using rl::data::Example;
using rl::trainer::PromptFormat;
using rl::trainer::RenderPrompt;
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

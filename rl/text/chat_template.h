// ChatML rendering exactly as Qwen2.5-Instruct's chat template (the Jinja2 template shipped in
// its tokenizer_config.json, tests/fixtures/tokenizer/qwen2.5-instruct.chat_template.jinja)
// renders conversations without tools:
//
//   std::vector<rl::text::ChatMessage> messages = {{"user", "What is 2+2?"}};
//   std::string prompt = rl::text::RenderChatMl(messages, /*add_generation_prompt=*/true);
//   // "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful
//   //  assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
//
// A first message with role "system" replaces the default system prompt. Roles are "system",
// "user", "assistant" and "tool" (consecutive tool results are grouped in one user turn as
// <tool_response> blocks, as the template does). Content is copied verbatim: no escaping.
//
// Concurrency: a pure function, safe to call from any number of threads.
#ifndef RL_TEXT_CHAT_TEMPLATE_H_
#define RL_TEXT_CHAT_TEMPLATE_H_

#include <span>
#include <string>

namespace rl::text {

struct ChatMessage {
  std::string role;
  std::string content;
};

// The default system prompt of Qwen2.5-Instruct, used when the first message is not "system".
inline constexpr char kQwenDefaultSystemPrompt[] =
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

// Renders `messages`, then "<|im_start|>assistant\n" when add_generation_prompt. Throws
// std::invalid_argument when messages is empty (the template fails too) or a role is not one of
// the four above (the template would silently drop that message).
std::string RenderChatMl(std::span<const ChatMessage> messages, bool add_generation_prompt);

}  // namespace rl::text

#endif  // RL_TEXT_CHAT_TEMPLATE_H_

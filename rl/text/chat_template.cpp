#include "rl/text/chat_template.h"

#include <stdexcept>

namespace rl::text {

std::string RenderChatMl(std::span<const ChatMessage> messages, bool add_generation_prompt) {
  if (messages.empty()) throw std::invalid_argument("RenderChatMl: no messages");
  std::string out = "<|im_start|>system\n";
  out += messages[0].role == "system" ? messages[0].content : kQwenDefaultSystemPrompt;
  out += "<|im_end|>\n";
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "system" && i == 0) continue;  // already in the header
    if (m.role == "user" || m.role == "system" || m.role == "assistant") {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    } else if (m.role == "tool") {
      if (i == 0 || messages[i - 1].role != "tool") out += "<|im_start|>user";
      out += "\n<tool_response>\n" + m.content + "\n</tool_response>";
      if (i + 1 == messages.size() || messages[i + 1].role != "tool") out += "<|im_end|>\n";
    } else {
      throw std::invalid_argument("RenderChatMl: messages[" + std::to_string(i) + "].role \"" +
                                  m.role + "\" is not system, user, assistant or tool");
    }
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace rl::text

// Chat templates rendered exactly as the Jinja2 templates that checkpoints ship in their
// tokenizer_config.json (transformers' apply_chat_template, conversations without tools):
//
//   std::vector<rl::text::ChatMessage> messages = {{"user", "What is 2+2?"}};
//   std::string prompt = rl::text::RenderChatMl(messages, /*add_generation_prompt=*/true);
//   // "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful
//   //  assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
//
// or, picking the template a checkpoint carries:
//
//   std::string error;
//   std::optional<rl::text::ChatTemplate> kind =
//       rl::text::ChatTemplateOfCheckpoint("Qwen3-1.7B", &error);   // kQwen3
//   if (!kind) { spdlog::error("{}", error); return 1; }  // "...: chat_template: ..."
//   rl::text::ChatOptions options;
//   options.enable_thinking = false;
//   std::string prompt = rl::text::RenderChat(*kind, messages, options);
//   // "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
//
// The templates (each proven byte-identical to its Jinja2 rendering by
// tests/text/chat_template_test.cpp):
//   kQwen25  Qwen2.5-Instruct (and Qwen2-Instruct): ChatML; without a leading system message
//            the default one (kQwenDefaultSystemPrompt).
//   kQwen3   Qwen3 (the hybrid-thinking 0.6B ... 235B): ChatML, no default system prompt.
//            Assistant turns after the last user query keep their <think> block (reformatted
//            as "<think>\n...\n</think>\n\n"), earlier ones lose it. The generation prompt is
//            "<|im_start|>assistant\n": with enable_thinking the model writes "<think>" itself
//            (the completion starts with it: not a prefilled think block); without, the prompt
//            ends in an empty, closed block "<think>\n\n</think>\n\n".
//   kLlama3  Llama 3 / 3.1 as the tokenizer packages ship it: "<|begin_of_text|>", then each
//            message as "<|start_header_id|>ROLE<|end_header_id|>\n\n" + content with
//            whitespace trimmed (Python's str.strip) + "<|eot_id|>"; the generation prompt is
//            "<|start_header_id|>assistant<|end_header_id|>\n\n". No default system prompt and
//            no date lines.
//   kLlama32 Llama 3.2-Instruct (1B, 3B; Meta's template with tools, of which rl renders the
//            conversations without): "<|begin_of_text|>" and always a system turn,
//            "Cutting Knowledge Date: December 2023\nToday Date: " + date_string + "\n\n" +
//            the system message (trimmed; empty without one), then the turns as kLlama3 writes
//            them, except "tool"/"ipython" messages, written as an "ipython" turn holding the
//            content as a JSON string (the template's `tojson`, transformers' json.dumps with
//            ensure_ascii=False). Llama-3.1-Instruct's template is another text (refused:
//            ChatTemplateOf names it unknown).
//
// Roles: Qwen templates take "system", "user", "assistant" and "tool" (consecutive tool results
// are grouped in one user turn as <tool_response> blocks, as the templates do); other roles are
// refused, since the templates would silently drop those messages. Llama 3 writes any role
// (ipython, say) as given. Content is copied verbatim (trimmed where said): no escaping.
//
// Errors: rendering throws std::invalid_argument for an empty conversation (the templates fail
// too) or a role the template drops, naming the message. Identification returns nullopt and
// sets *error to a message naming the file and field.
//
// Concurrency: pure functions, safe to call from any number of threads.
#ifndef RL_TEXT_CHAT_TEMPLATE_H_
#define RL_TEXT_CHAT_TEMPLATE_H_

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace rl::text {

struct ChatMessage {
  std::string role;
  std::string content;
};

// The default system prompt of Qwen2.5-Instruct, used when the first message is not "system".
inline constexpr char kQwenDefaultSystemPrompt[] =
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

enum class ChatTemplate { kQwen25, kQwen3, kLlama3, kLlama32 };

// The date Llama 3.2-Instruct's template writes when the renderer passes none and defines no
// strftime_now. transformers (4.45 on) defines strftime_now, so apply_chat_template writes the
// day it runs on; rl keeps a fixed date so that a run's prompts do not change from one day to
// the next (exact resume). Set ChatOptions::date_string to match a given rendering.
inline constexpr char kLlama32DefaultDate[] = "26 Jul 2024";

struct ChatOptions {
  // Ends the text with the opening of an assistant turn, for sampling a reply.
  bool add_generation_prompt = true;
  // Qwen3 only (its `enable_thinking`; the template's default is true). Ignored by the others.
  bool enable_thinking = true;
  // Llama 3.2-Instruct only: the "Today Date: " of its system turn ("%d %b %Y").
  std::string date_string = kLlama32DefaultDate;
};

// Renders `messages` with the given template. Throws std::invalid_argument as said above.
std::string RenderChat(ChatTemplate kind, std::span<const ChatMessage> messages,
                       const ChatOptions& options);

// Qwen2.5-Instruct's template (ChatTemplate::kQwen25).
std::string RenderChatMl(std::span<const ChatMessage> messages, bool add_generation_prompt);

// The name used in configurations and messages: "qwen2.5", "qwen3", "llama3", "llama3.2".
std::string_view ChatTemplateName(ChatTemplate kind);

// The token that ends a turn in this template ("<|im_end|>" for Qwen, "<|eot_id|>" for
// Llama): sampling a reply stops there, whatever generation_config.json lists.
std::string_view ChatTemplateEndOfTurn(ChatTemplate kind);

// The special tokens the template writes, in order of first use (for a tokenizer trained from
// scratch, which must hold each as one token).
std::vector<std::string_view> ChatTemplateMarkers(ChatTemplate kind);

// The template a configuration names: one of the names above, or "chatml" (the name
// tokenizer.prompt_format has used for Qwen2.5's); nullopt for anything else.
std::optional<ChatTemplate> ChatTemplateFromName(std::string_view name);

// Which of the templates above a chat_template text is: exact comparison with the published
// texts (a single trailing newline aside, which Jinja2 drops), since a template edited in any
// way may render differently. nullopt for any other text.
std::optional<ChatTemplate> ChatTemplateOfText(std::string_view jinja);

// Which template a tokenizer_config.json document carries (its "chat_template": a string, or a
// list of {name, template} of which "default" is used), checking that its bos_token is the one
// the template writes. `origin` prefixes error messages (the file's path).
std::optional<ChatTemplate> ChatTemplateOf(const nlohmann::json& tokenizer_config,
                                           const std::string& origin, std::string* error);

// Whether a checkpoint directory carries a chat template at all, known to rl or not:
// chat_template.jinja, or a chat_template field in tokenizer_config.json (a base model's may
// have none).
bool CheckpointHasChatTemplate(const std::string& dir);

// The template of a Hugging Face checkpoint directory: chat_template.jinja when present (newer
// transformers save it there), else tokenizer_config.json's chat_template.
std::optional<ChatTemplate> ChatTemplateOfCheckpoint(const std::string& dir, std::string* error);

}  // namespace rl::text

#endif  // RL_TEXT_CHAT_TEMPLATE_H_

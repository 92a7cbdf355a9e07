// `rl generate`: samples completions from a Hugging Face checkpoint (Qwen2, Qwen3, Llama 3) for a
// JSONL file of prompts, optionally scoring them with a reward spec while they are generated.
//
//   rl generate --model DIR [--adapter LORA_DIR] --prompts in.jsonl -n 8 --output out.jsonl
//       [--chat [--chat-template auto|qwen2.5|qwen3|llama3|llama3.2] [--no-thinking]]
//       [--temperature 0.7 --top-p 0.95 ...] [--rewards configs/rewards/r1.yaml]
//
// DIR holds config.json, model.safetensors (or an index of shards), tokenizer.json and,
// optionally, generation_config.json (its eos_token_id, temperature, top_p and top_k are the
// defaults that flags override). --adapter adds a LoRA adapter in PEFT's layout (merged into
// the weights before sampling); without --model, its adapter_config.json names the base. Each
// input line is an object whose --prompt-key holds a string
// (or, with --chat, a string or a list of {role, content} messages). Each output line is one
// completion: {prompt_index, sample_index, prompt, completion, finish_reason, tokens} plus
// reward, components and status with --rewards, and token_ids and logprobs with --logprobs.
// A bad input line stops the run with FILE:LINE and what was wrong; the output is written to
// OUTPUT.partial and renamed at the end, so a failed run leaves no half file.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/threads.h"
#include "rewards/reward.h"
#include "rl/model/decoder.h"
#include "rl/model/lora.h"
#include "rl/text/chat_template.h"
#include "rl/text/tokenizer.h"
#include "rollout/rollout.h"
#include "trainer/scoring.h"

namespace rl::cli {
namespace {

struct GenerateFlags {
  std::string model_dir;
  std::string adapter_dir;
  std::string prompts;
  std::string output;
  int64_t samples = 1;
  std::string prompt_key = "prompt";
  std::string answer_key = "answer";
  bool chat = false;
  std::string chat_template = "auto";  // with --chat: a template's name, or the checkpoint's
  bool no_thinking = false;            // qwen3: an empty, closed think block in the prompt
  std::string system_prompt;
  std::optional<double> temperature, top_p, min_p;
  std::optional<int64_t> top_k;
  std::optional<double> repetition_penalty;
  int64_t max_new_tokens = 256;
  std::vector<std::string> stop;
  bool keep_special_tokens = false;
  uint64_t seed = 0;
  int threads = 0;
  int workers = 1;
  int64_t batch_size = 16;
  int64_t prompts_per_round = 64;
  std::string dtype = "float32";
  std::string device = "cpu";
  std::string rewards;
  bool logprobs = false;
};

// A failure the user can fix: printed as is, exit code 2.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct PromptRow {
  std::string text;                 // the prompt as the policy sees it (rendered with --chat)
  std::optional<std::string> gold;  // --answer-key, when present
};

// The chat template of --chat: the one --chat-template names, else the checkpoint's
// (chat_template.jinja or tokenizer_config.json); Qwen2.5's for a directory with neither, as
// before templates were read.
text::ChatTemplate ResolveChatTemplate(const GenerateFlags& flags) {
  if (flags.chat_template != "auto") {
    std::optional<text::ChatTemplate> named = text::ChatTemplateFromName(flags.chat_template);
    if (!named) {
      throw InputError("--chat-template: '" + flags.chat_template +
                       "' is not one of auto, chatml (qwen2.5), qwen3, llama3, llama3.2");
    }
    return *named;
  }
  const std::filesystem::path dir(flags.model_dir);
  if (!std::filesystem::exists(dir / "chat_template.jinja") && !std::filesystem::exists(dir / "tokenizer_config.json")) {
    return text::ChatTemplate::kQwen25;
  }
  std::string error;
  std::optional<text::ChatTemplate> found = text::ChatTemplateOfCheckpoint(flags.model_dir, &error);
  if (!found) throw InputError(error + " (name a template with --chat-template)");
  return *found;
}

// The prompt of one row, rendered with the chat template when asked; "" plus *error when bad.
std::string ReadPromptText(const nlohmann::json& value, const GenerateFlags& flags, text::ChatTemplate chat,
                           std::string* error) {
  if (value.is_string() && !flags.chat) return value.get<std::string>();
  if (!flags.chat) {
    *error = "key '" + flags.prompt_key + "': expected a string, got " + value.type_name() +
             " (a list of messages needs --chat)";
    return "";
  }
  std::vector<text::ChatMessage> messages;
  if (!flags.system_prompt.empty()) messages.push_back({"system", flags.system_prompt});
  if (value.is_string()) {
    messages.push_back({"user", value.get<std::string>()});
  } else if (value.is_array() && !value.empty()) {
    for (const nlohmann::json& m : value) {
      if (!m.is_object() || !m.contains("role") || !m.contains("content") ||
          !m["role"].is_string() || !m["content"].is_string()) {
        *error = "key '" + flags.prompt_key +
                 "': expected messages as {\"role\": string, \"content\": string}";
        return "";
      }
      messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    }
  } else {
    *error = "key '" + flags.prompt_key + "': expected a string or a non-empty list of messages";
    return "";
  }
  try {
    text::ChatOptions options;
    options.enable_thinking = !flags.no_thinking;
    return text::RenderChat(chat, messages, options);
  } catch (const std::invalid_argument& e) {
    *error = "key '" + flags.prompt_key + "': " + e.what();
    return "";
  }
}

std::vector<PromptRow> ReadPrompts(const GenerateFlags& flags, text::ChatTemplate chat) {
  std::ifstream in(flags.prompts, std::ios::binary);
  if (!in) throw InputError(flags.prompts + ": cannot open");
  std::vector<PromptRow> rows;
  std::string line;
  for (int64_t line_number = 1; std::getline(in, line); ++line_number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto fail = [&](const std::string& what) {
      return InputError(flags.prompts + ":" + std::to_string(line_number) + ": " + what);
    };
    nlohmann::json row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.is_discarded()) throw fail("invalid JSON");
    if (!row.is_object()) throw fail(std::string("expected a JSON object, got ") + row.type_name());
    auto prompt = row.find(flags.prompt_key);
    if (prompt == row.end())
      throw fail("key '" + flags.prompt_key + "' missing (--prompt-key names the prompt's key)");
    std::string error;
    PromptRow out{ReadPromptText(*prompt, flags, chat, &error), std::nullopt};
    if (!error.empty()) throw fail(error);
    if (out.text.empty()) throw fail("key '" + flags.prompt_key + "': the prompt is empty");
    if (auto answer = row.find(flags.answer_key); answer != row.end() && !answer->is_null()) {
      if (answer->is_string()) {
        out.gold = answer->get<std::string>();
      } else if (answer->is_number()) {
        out.gold = answer->dump();
      } else if (!flags.rewards.empty()) {
        throw fail("key '" + flags.answer_key + "': expected a string or a number, got " +
                   answer->type_name());
      }
    }
    rows.push_back(std::move(out));
  }
  if (in.bad()) throw InputError(flags.prompts + ": read error");
  if (rows.empty()) throw InputError(flags.prompts + ": no prompts");
  return rows;
}

// Sampling parameters: flags first, then generation_config.json, then the library defaults.
rollout::SamplingParams MakeSampling(const GenerateFlags& flags, const model::DecoderConfig& config,
                                     const text::Tokenizer& tokenizer, text::ChatTemplate chat) {
  rollout::SamplingParams params;
  model::GenerationConfig generation;
  std::string generation_path = flags.model_dir + "/generation_config.json";
  if (std::filesystem::exists(generation_path))
    generation = model::GenerationConfig::FromJsonFile(generation_path);
  params.temperature = flags.temperature.value_or(generation.temperature.value_or(1.0));
  params.top_p = flags.top_p.value_or(generation.top_p.value_or(1.0));
  params.top_k = flags.top_k.value_or(generation.top_k.value_or(0));
  params.min_p = flags.min_p.value_or(0.0);
  params.repetition_penalty = flags.repetition_penalty.value_or(generation.repetition_penalty.value_or(1.0));
  params.max_new_tokens = flags.max_new_tokens;
  params.stop_strings = flags.stop;
  params.skip_special_tokens = !flags.keep_special_tokens;
  params.seed = flags.seed;
  params.eos_ids = generation.eos_token_ids;
  if (params.eos_ids.empty() && config.eos_token_id) params.eos_ids.push_back(*config.eos_token_id);
  // A chat turn ends with the template's end of turn (<|im_end|>, <|eot_id|>), which base
  // models' generation configs do not list.
  const std::string end_of_turn(text::ChatTemplateEndOfTurn(chat));
  if (auto id = tokenizer.TokenToId(end_of_turn); id && flags.chat &&
      std::find(params.eos_ids.begin(), params.eos_ids.end(), *id) == params.eos_ids.end())
    params.eos_ids.push_back(*id);
  if (std::string error = params.Check(); !error.empty()) throw InputError(error);
  return params;
}

// `prompt_index` counts in the whole prompts file; c.prompt_index, in its round.
nlohmann::ordered_json CompletionLine(const PromptRow& prompt, size_t prompt_index,
                                      const rollout::Completion& c,
                                      const rewards::RewardResult* reward, bool with_logprobs) {
  nlohmann::ordered_json line;
  line["prompt_index"] = prompt_index;
  line["sample_index"] = c.sample_index;
  line["prompt"] = prompt.text;
  line["completion"] = c.text;
  line["finish_reason"] = std::string(rollout::ToString(c.finish_reason));
  line["tokens"] = c.token_ids.size();
  if (reward) {
    nlohmann::ordered_json wire = rewards::ToJson(*reward);
    for (auto& [key, value] : wire.items()) line[key] = std::move(value);
  }
  if (with_logprobs) {
    line["token_ids"] = c.token_ids;
    line["logprobs"] = c.logprobs;
  }
  return line;
}

// Totals for the closing summary on stderr.
struct Totals {
  int64_t completions = 0, tokens = 0, stopped = 0, scored = 0;
  double reward_sum = 0;
  double generation_seconds = 0, scoring_seconds = 0;
};

void PrintSummary(const Totals& t, double seconds) {
  std::fprintf(stderr,
               "rl generate: %lld completions, %lld tokens in %.2f s (%.1f tokens/s), "
               "%lld stopped, %lld hit max_new_tokens\n",
               static_cast<long long>(t.completions), static_cast<long long>(t.tokens), seconds,
               seconds > 0 ? static_cast<double>(t.tokens) / seconds : 0.0,
               static_cast<long long>(t.stopped),
               static_cast<long long>(t.completions - t.stopped));
  if (t.scored > 0 || t.scoring_seconds > 0)
    std::fprintf(stderr, "rl generate: mean reward %.4f over %lld scorable completions "
                 "(%.2f s of scoring, overlapped with generation)\n",
                 t.scored ? t.reward_sum / static_cast<double>(t.scored) : 0.0,
                 static_cast<long long>(t.scored), t.scoring_seconds);
}

// One round's completions as output lines, counted into `totals`.
void WriteRound(const trainer::ScoredRollout& result, const std::vector<PromptRow>& prompts,
                size_t first_prompt, bool with_logprobs, std::ostream& out, Totals& totals) {
  totals.generation_seconds += result.rollout.stats.generation_seconds;
  totals.scoring_seconds += result.rollout.stats.callback_seconds;
  for (const rollout::RolloutGroup& group : result.rollout.groups) {
    const size_t index = first_prompt + static_cast<size_t>(group.prompt_index);
    for (const rollout::Completion& c : group.completions) {
      const rewards::RewardResult* reward = result.Find(group.prompt_index, c.sample_index);
      out << CompletionLine(prompts[index], index, c, reward, with_logprobs).dump() << '\n';
      ++totals.completions;
      totals.tokens += static_cast<int64_t>(c.token_ids.size());
      totals.stopped += c.finish_reason == rollout::FinishReason::kStop;
      if (reward && reward->total) {
        ++totals.scored;
        totals.reward_sum += *reward->total;
      }
    }
  }
}

// The base model an adapter names (its adapter_config.json's base_model_name_or_path).
std::string BaseOfAdapter(const std::string& adapter_dir) {
  if (adapter_dir.empty()) throw InputError("--model is required (or --adapter, whose config names the base)");
  const model::LoraConfig lora = model::LoraConfig::FromJsonFile(adapter_dir + "/adapter_config.json");
  if (lora.base_model_name_or_path.empty() || !std::filesystem::is_directory(lora.base_model_name_or_path)) {
    throw InputError(adapter_dir + "/adapter_config.json: base_model_name_or_path '" + lora.base_model_name_or_path +
                     "' is not a directory here; name the base with --model");
  }
  return lora.base_model_name_or_path;
}

int RunGenerate(const GenerateFlags& flags) {
  const auto start = std::chrono::steady_clock::now();
  model::ConfigureThreads(flags.threads);  // before any tensor operation (LibTorch's kernel choice)
  const text::ChatTemplate chat = flags.chat ? ResolveChatTemplate(flags) : text::ChatTemplate::kQwen25;
  std::vector<PromptRow> prompts = ReadPrompts(flags, chat);
  std::string error;
  auto tokenizer = text::Tokenizer::FromFile(flags.model_dir + "/tokenizer.json", &error);
  if (!tokenizer) throw InputError(error);
  std::unique_ptr<rewards::Reward> reward;
  if (!flags.rewards.empty()) {
    reward = rewards::Reward::FromYamlFile(flags.rewards, &error);
    if (!reward) throw InputError(error);
  }
  torch::ScalarType dtype = flags.dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
  model::Decoder policy = model::LoadDecoder(flags.model_dir, dtype, torch::Device(flags.device));
  if (!flags.adapter_dir.empty()) {
    model::LoadLoraAdapter(*policy, flags.adapter_dir);
    model::MergeLora(*policy);  // sample at the base's speed
  }
  policy->eval();
  rollout::SamplingParams sampling = MakeSampling(flags, policy->config(), *tokenizer, chat);

  rollout::RolloutOptions options;
  options.group_size = flags.samples;
  options.micro_batch_size = flags.batch_size;
  options.workers = flags.workers;
  const int threads = common::ThreadCount(flags.threads);
  options.threads_per_worker = std::max(1, threads / flags.workers);
  options.callback_threads = std::max(1, threads / 2);
  rollout::RolloutEngine engine(*policy, *tokenizer, options);
  trainer::ScoreFn score = reward ? trainer::ScoreWithReward(*reward) : trainer::ScoreFn();
  // Messages go to stderr: the output may be stdout.
  std::fprintf(stderr,
               "rl generate: %zu prompts x %lld samples, temperature %g, top_k %lld, top_p %g, "
               "min_p %g, max_new_tokens %lld, %zu eos ids\n",
               prompts.size(), static_cast<long long>(flags.samples), sampling.temperature,
               static_cast<long long>(sampling.top_k), sampling.top_p, sampling.min_p,
               static_cast<long long>(sampling.max_new_tokens), sampling.eos_ids.size());

  const bool to_stdout = flags.output == "-";
  const std::string partial = flags.output + ".partial";
  std::ofstream file;
  if (!to_stdout) {
    file.open(partial, std::ios::binary | std::ios::trunc);
    if (!file) throw InputError(partial + ": cannot write");
  }
  std::ostream& out = to_stdout ? std::cout : file;
  Totals totals;
  // Prompts go through the engine a round at a time, so output appears as it is made.
  for (size_t begin = 0; begin < prompts.size();
       begin += static_cast<size_t>(flags.prompts_per_round)) {
    size_t end = std::min(prompts.size(), begin + static_cast<size_t>(flags.prompts_per_round));
    std::vector<trainer::Prompt> round;
    for (size_t i = begin; i < end; ++i)
      round.push_back({tokenizer->Encode(prompts[i].text), prompts[i].text, prompts[i].gold});
    WriteRound(trainer::RunAndScore(engine, round, sampling, score), prompts, begin,
               flags.logprobs, out, totals);
    out.flush();
  }
  if (!to_stdout) {
    file.close();
    std::error_code ec;
    std::filesystem::rename(partial, flags.output, ec);
    if (!file || ec) throw InputError(flags.output + ": cannot write (" + ec.message() + ")");
  }
  PrintSummary(totals,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

}  // namespace

void AddGenerateCommand(CLI::App& app) {
  auto flags = std::make_shared<GenerateFlags>();
  CLI::App* cmd = app.add_subcommand("generate", "Sample completions for a JSONL file of prompts");
  cmd->add_option("--model", flags->model_dir,
                  "Hugging Face model directory (config.json, model.safetensors, tokenizer.json); "
                  "default with --adapter: the adapter's base")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--adapter", flags->adapter_dir,
                  "LoRA adapter directory in PEFT's layout (adapter_config.json, adapter_model.safetensors)")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--prompts", flags->prompts, "Input JSONL, one object per line")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--output", flags->output, "Output JSONL, one line per completion ('-': stdout)")
      ->required();
  cmd->add_option("-n,--num-samples", flags->samples, "Completions per prompt")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--prompt-key", flags->prompt_key, "Key of the prompt")->capture_default_str();
  cmd->add_option("--answer-key", flags->answer_key, "Key of the gold answer (for --rewards)")
      ->capture_default_str();
  cmd->add_flag("--chat", flags->chat,
                "Render prompts with a chat template (--chat-template); the prompt may then be a "
                "list of {role, content} messages");
  cmd->add_option("--chat-template", flags->chat_template,
                  "auto (the checkpoint's chat_template.jinja or tokenizer_config.json; Qwen2.5's when it "
                  "has neither), chatml (qwen2.5), qwen3, llama3 or llama3.2")
      ->capture_default_str();
  cmd->add_flag("--no-thinking", flags->no_thinking,
                "Qwen3's template with enable_thinking=false: the prompt closes an empty think block");
  cmd->add_option("--system", flags->system_prompt,
                  "System prompt for --chat (default: the template's)");
  cmd->add_option("--temperature", flags->temperature,
                  "Sampling temperature, 0 for greedy (default: generation_config.json, else 1)")
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--top-k", flags->top_k, "Top-k filter, 0 for none (default: generation config)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", flags->top_p, "Nucleus filter in (0, 1] (default: generation config)");
  cmd->add_option("--min-p", flags->min_p, "Min-p filter in [0, 1) (default 0: none)");
  cmd->add_option("--repetition-penalty", flags->repetition_penalty,
                  "Divide positive (multiply negative) logits of the tokens already seen, prompt included, "
                  "by this (transformers' repetition_penalty; default: generation config, else 1: none)");
  cmd->add_option("--max-new-tokens", flags->max_new_tokens, "Tokens generated at most")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--stop", flags->stop, "Stop string (repeatable); the text keeps it");
  cmd->add_flag("--keep-special-tokens", flags->keep_special_tokens,
                "Keep special tokens (e.g. <|im_end|>) in the completion text");
  cmd->add_option("--seed", flags->seed, "Random seed")->capture_default_str();
  cmd->add_option("--threads", flags->threads, "LibTorch threads in all (0: all cores)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--workers", flags->workers, "Generation workers (threads split among them)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--batch-size", flags->batch_size, "Sequences per batched forward pass")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--prompts-per-round", flags->prompts_per_round,
                  "Prompts sent through the engine at a time (output is written per round)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--dtype", flags->dtype, "Weights' dtype")
      ->capture_default_str()
      ->check(CLI::IsMember({"float32", "bfloat16"}));
  cmd->add_option("--device", flags->device, "cpu, or cuda / cuda:N with a CUDA LibTorch")
      ->capture_default_str();
  cmd->add_option("--rewards", flags->rewards,
                  "Reward spec (YAML): score each completion as soon as it is generated")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--logprobs", flags->logprobs, "Also write token_ids and per-token logprobs");
  cmd->callback([flags] {
    int code = 0;
    try {
      if (flags->model_dir.empty()) flags->model_dir = BaseOfAdapter(flags->adapter_dir);
      code = RunGenerate(*flags);
    } catch (const InputError& e) {
      std::fprintf(stderr, "rl generate: %s\n", e.what());
      code = 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "rl generate: %s\n", e.what());
      code = 1;
    }
    if (code != 0) {
      std::error_code ignored;
      if (flags->output != "-") std::filesystem::remove(flags->output + ".partial", ignored);
      throw CLI::RuntimeError(code);
    }
  });
}

}  // namespace rl::cli

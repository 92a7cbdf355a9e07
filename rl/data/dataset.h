// rl/data/dataset.h: training and evaluation examples, read from JSONL or generated.
//
//   rl::data::JsonlKeys keys;                 // which keys hold what
//   keys.prompt_key = "problem"; keys.answer_key = "solution";
//   std::vector<rl::data::Example> rows = rl::data::ReadJsonlExamples("train.jsonl", keys);
//
// Every line is one JSON object. The prompt is a string, or a conversation in TRL's form: a
// non-empty list of {"role": "system"|"user"|"assistant", "content": "..."} whose last message
// is the user's (the one the model answers; other keys of a message are ignored). The answer
// may be a string or a number (written as JSON writes it); the response (the SFT target) is
// read only when keys.response_key is not empty. Blank lines are skipped. A bad line stops the
// read with a DataError "FILE:LINE: what was wrong", so a typo in a key never turns into empty
// prompts.
//
// Errors: rl/data throws DataError, naming the file and line, and std::invalid_argument for a
// caller's mistake (an empty dataset to sample, a resume position out of range).
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "rl/text/chat_template.h"

namespace rl::data {

class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Example {
  std::string prompt;    // the prompt as text, when it is a string
  std::string answer;    // the gold answer the accuracy rule compares against
  std::string response;  // SFT target text; empty when the data has none
  // The prompt as a conversation; empty: `prompt`. (`= {}` keeps {prompt, answer, response}
  // a warning-free initializer.)
  std::vector<text::ChatMessage> messages = {};
};

struct JsonlKeys {
  std::string prompt_key = "prompt";
  std::string answer_key = "answer";
  std::string response_key;  // empty: not read
};

std::vector<Example> ReadJsonlExamples(const std::string& path, const JsonlKeys& keys);

}  // namespace rl::data

// rl/data/dataset.h: training and evaluation examples, read from JSONL or generated.
//
//   rl::data::JsonlKeys keys;                 // which keys hold what
//   keys.prompt_key = "problem"; keys.answer_key = "solution";
//   std::vector<rl::data::Example> rows = rl::data::ReadJsonlExamples("train.jsonl", keys);
//
// Every line is one JSON object. The prompt must be a string; the answer may be a string or a
// number (written as JSON writes it); the response (the SFT target) is read only when
// keys.response_key is not empty. Blank lines are skipped. A bad line stops the read with a
// DataError "FILE:LINE: what was wrong", so a typo in a key never turns into empty prompts.
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace rl::data {

class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Example {
  std::string prompt;
  std::string answer;    // the gold answer the accuracy rule compares against
  std::string response;  // SFT target text; empty when the data has none
};

struct JsonlKeys {
  std::string prompt_key = "prompt";
  std::string answer_key = "answer";
  std::string response_key;  // empty: not read
};

std::vector<Example> ReadJsonlExamples(const std::string& path, const JsonlKeys& keys);

}  // namespace rl::data

// cli/score_row.h: one line of `rl score`'s JSONL input, read and checked. `rl score` reads
// every line through ReadScoreRow; tests and fuzz targets call it without a process.
//
//   rl::cli::RowOptions options;  // keys and limits; the defaults are those of `rl score`
//   rl::cli::RowResult result = rl::cli::ReadScoreRow(line, /*line_number=*/7, options);
//   if (!result.ok()) {
//     std::cerr << result.error.Message("in.jsonl") << "\n";
//     // in.jsonl:7: key 'completion': expected a string, got number
//   } else {
//     rl::rewards::RewardResult r = reward.Score(result.row->sample());
//     std::string echoed = result.row->json.dump();  // cannot overflow the stack (see below)
//   }
//
// A good line (after JSON's own whitespace, so "\r" of a CRLF line end is fine) holds:
//   - one JSON object, nested at most options.max_depth levels deep (the object itself is
//     level 1; each array or object inside adds one), and no number outside double's range;
//   - options.completion_key: a string (required);
//   - options.prompt_key: a string or null (optional);
//   - options.answer_key: a string, a number (its JSON text becomes the gold, e.g. 4 -> "4")
//     or null (optional);
//   - options.tokens_key: an integer in [0, 2^63 - 1] or null (optional); 3.0, 3.5, -1 and
//     2^63 are errors.
// Other keys may hold anything; they are kept in `json` to be echoed. A line longer than
// options.max_line_bytes is an error before it is parsed. A blank line is not a row (`rl score`
// skips it before calling ReadScoreRow); given one, ReadScoreRow reports invalid JSON.
//
// Errors are values: ReadScoreRow returns a RowError naming the line, the key at fault and what
// was wrong, for any bytes at all (ill-formed UTF-8, any nesting, any length). It throws
// nothing but std::bad_alloc, which only a line that does not fit in memory can cause.
//
// Bounded recursion: nesting is checked while parsing, without recursion, and nothing deeper
// than max_depth is ever stored in `json`; so dumping, comparing or copying a returned row
// recurses at most max_depth levels.
//
// Thread safety: ReadScoreRow is reentrant; any number of threads may call it at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "rewards/reward.h"

namespace rl::cli {

struct RowOptions {
  std::string completion_key = "completion";
  std::string answer_key = "answer";
  std::string prompt_key = "prompt";
  std::string tokens_key = "completion_tokens";
  // Deeper rows are errors: echoing a row back recurses once per level.
  int max_depth = 512;
  // Longer lines are errors: a reader holds a whole line in memory.
  size_t max_line_bytes = size_t{16} << 20;
};

// Why a line is not a good row.
struct RowError {
  int64_t line = 0;  // the line number given to ReadScoreRow
  std::string key;   // the key at fault; empty when the line as a whole is bad
  // The whole sentence, naming the key when there is one, in valid UTF-8 (ill-formed bytes that
  // a JSON error quotes become U+FFFD), e.g. "key 'completion': expected a string, got number",
  // "nested deeper than 512 levels", "invalid JSON: parse error at line 1, column 3: ...".
  std::string what;

  // "file:line: what".
  std::string Message(std::string_view file) const;
};

// A good row. `completion` and `prompt` are views into `json`'s strings: they stay valid while
// `json` lives, moves included, and the values under those keys are not replaced.
struct ScoreRow {
  nlohmann::ordered_json json;               // the row as read, keys in their order
  std::string_view completion;
  std::string_view prompt;                   // empty when the row has none
  std::optional<std::string> gold;           // none when the row has no answer (or null)
  std::optional<int64_t> completion_tokens;  // none when the row has no count (or null)

  // The sample to score: views into this row, valid while it is neither changed nor moved.
  rewards::Sample sample() const;
};

struct RowResult {
  std::optional<ScoreRow> row;  // set when the line is a good row
  RowError error;               // what was wrong, when row is empty
  bool ok() const { return row.has_value(); }
};

// Reads one line of JSONL (without its '\n'); line_number names it in the error. Never throws
// but std::bad_alloc.
RowResult ReadScoreRow(std::string_view line, int64_t line_number, const RowOptions& options);

}  // namespace rl::cli

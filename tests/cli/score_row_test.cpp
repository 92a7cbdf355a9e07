// Unit tests of ReadScoreRow (cli/score_row.h): one line of `rl score`'s input in, a row or
// an error out, for hostile lines too.
#include "cli/score_row.h"

#include <catch2/catch.hpp>
#include <string>

namespace {

using rl::cli::ReadScoreRow;
using rl::cli::RowOptions;
using rl::cli::RowResult;

// "[[...[]...]]" with `levels` arrays.
std::string Nested(int levels) {
  const size_t n = static_cast<size_t>(levels);
  return std::string(n, '[') + std::string(n, ']');
}

// The error of a line that must be bad, for its `what` and `key` to be checked.
rl::cli::RowError Bad(const std::string& line, const RowOptions& options = RowOptions()) {
  RowResult result = ReadScoreRow(line, 7, options);
  INFO(line.substr(0, 200));
  REQUIRE_FALSE(result.ok());
  CHECK(result.error.line == 7);
  return result.error;
}

}  // namespace

TEST_CASE("ReadScoreRow: a good row, its fields, its sample and its echo", "[score_row]") {
  const std::string line =
      R"({"id": 3, "prompt": "p", "completion": "c", "answer": 4, "completion_tokens": 12})";
  RowResult result = ReadScoreRow(line + "\r", 1, RowOptions());  // a CRLF line end
  REQUIRE(result.ok());
  const rl::cli::ScoreRow& row = *result.row;
  CHECK(row.completion == "c");
  CHECK(row.prompt == "p");
  CHECK(row.gold == "4");  // a numeric gold as JSON writes it
  CHECK(row.completion_tokens == 12);
  CHECK(row.json.dump() ==
        R"({"id":3,"prompt":"p","completion":"c","answer":4,"completion_tokens":12})");
  rl::rewards::Sample sample = row.sample();
  CHECK(sample.completion == "c");
  CHECK(sample.prompt == "p");
  CHECK(sample.gold == "4");
  CHECK(sample.completion_tokens == 12);

  RowResult bare = ReadScoreRow(R"({"completion": "c", "answer": null, "prompt": null})", 1, {});
  REQUIRE(bare.ok());
  CHECK(bare.row->prompt.empty());
  CHECK_FALSE(bare.row->gold);
  CHECK_FALSE(bare.row->completion_tokens);

  RowOptions keys;
  keys.completion_key = "text";
  keys.answer_key = "label";
  keys.tokens_key = "n";
  RowResult custom = ReadScoreRow(R"({"text": "t", "label": "x", "n": 0})", 1, keys);
  REQUIRE(custom.ok());
  CHECK(custom.row->completion == "t");
  CHECK(custom.row->gold == "x");
  CHECK(custom.row->completion_tokens == 0);
}

TEST_CASE("ReadScoreRow: a number outside double's range is an error, not a throw",
          "[score_row]") {
  for (const char* line : {R"({"completion": "x", "answer": 1e400})",
                           R"({"completion": "x", "meta": [-1e400]})",
                           R"({"completion": "x", "completion_tokens": 1e400})"}) {
    RowResult result;
    REQUIRE_NOTHROW(result = ReadScoreRow(line, 7, RowOptions()));
    REQUIRE_FALSE(result.ok());
    CHECK(result.error.what.find("number overflow parsing '") == 0);
    CHECK(result.error.key.empty());
  }
  CHECK(Bad(R"({"completion": "x", "answer": 1e400})").Message("in.jsonl") ==
        "in.jsonl:7: number overflow parsing '1e400'");
}

TEST_CASE("ReadScoreRow: nesting past max_depth is an error, and a row is never deeper",
          "[score_row]") {
  const std::string deep = R"({"completion": "x", "answer": "1", "meta": )" + Nested(85000) + "}";
  CHECK(Bad(deep).what == "nested deeper than 512 levels");
  std::string objects = R"({"completion": "x")";
  for (int i = 0; i < 85000; ++i) objects += R"(, "a": {"b": 1)";
  CHECK(Bad(objects + std::string(85001, '}')).what == "nested deeper than 512 levels");
  CHECK(Bad(Nested(600)).what == "nested deeper than 512 levels");

  // 512 levels: the row's object and 511 arrays; the echo is the row.
  const std::string limit = R"({"completion":"x","meta":)" + Nested(511) + "}";
  RowResult result = ReadScoreRow(limit, 1, RowOptions());
  REQUIRE(result.ok());
  CHECK(result.row->json.dump() == limit);
  CHECK(Bad(R"({"completion":"x","meta":)" + Nested(512) + "}").what ==
        "nested deeper than 512 levels");

  RowOptions shallow;
  shallow.max_depth = 2;
  CHECK(ReadScoreRow(R"({"completion": "x", "meta": {}})", 1, shallow).ok());
  CHECK(Bad(R"({"completion": "x", "meta": [[]]})", shallow).what ==
        "nested deeper than 2 levels");
}

TEST_CASE("ReadScoreRow: token counts are integers in [0, 2^63 - 1]", "[score_row]") {
  auto tokens = [](const std::string& value) {
    return R"({"completion": "x", "completion_tokens": )" + value + "}";
  };
  RowResult max = ReadScoreRow(tokens("9223372036854775807"), 1, RowOptions());
  REQUIRE(max.ok());
  CHECK(max.row->completion_tokens == INT64_MAX);
  const std::string expected = "key 'completion_tokens': expected a non-negative integer, got ";
  CHECK(Bad(tokens("-1")).what == expected + "-1");
  CHECK(Bad(tokens("3.5")).what == expected + "3.5");
  CHECK(Bad(tokens("3.0")).what == expected + "3.0");
  CHECK(Bad(tokens("9223372036854775808")).what == expected + "9223372036854775808");
  CHECK(Bad(tokens("18446744073709551615")).what == expected + "18446744073709551615");
  CHECK(Bad(tokens("18446744073709551616")).what == expected + "1.8446744073709552e+19");
  CHECK(Bad(tokens("\"7\"")).what == expected + "string");
  CHECK(Bad(tokens("true")).key == "completion_tokens");
}

TEST_CASE("ReadScoreRow: rows that are not objects, and keys of the wrong type", "[score_row]") {
  CHECK(Bad("[1, 2]").what == "expected a JSON object, got array");
  CHECK(Bad("\"text\"").what == "expected a JSON object, got string");
  CHECK(Bad("null").what == "expected a JSON object, got null");
  rl::cli::RowError missing = Bad(R"({"text": "a"})");
  CHECK(missing.key == "completion");
  CHECK(missing.what == "key 'completion' missing (--completion-key names the completion's key)");
  CHECK(Bad(R"({"completion": 7})").what == "key 'completion': expected a string, got number");
  CHECK(Bad(R"({"completion": null})").what == "key 'completion': expected a string, got null");
  CHECK(Bad(R"({"completion": "a", "prompt": ["m"]})").what ==
        "key 'prompt': expected a string, got array");
  rl::cli::RowError answer = Bad(R"({"completion": "a", "answer": {"v": 1}})");
  CHECK(answer.key == "answer");
  CHECK(answer.what == "key 'answer': expected a string or a number, got object");
}

TEST_CASE("ReadScoreRow: invalid JSON, ill-formed UTF-8 and long lines", "[score_row]") {
  CHECK(Bad("").what.find("invalid JSON: ") == 0);  // blank lines are the caller's to skip
  CHECK(Bad(R"({"completion": "a"} x)").what.find("invalid JSON: ") == 0);
  CHECK(Bad(R"({"completion": "a\ud800"})").what.find("invalid JSON: ") == 0);
  // The message quotes the ill-formed bytes it read as U+FFFD: it is valid UTF-8.
  const std::string utf8 = Bad("{\"completion\": \"\xff\xfe\"}").what;
  CHECK(utf8.find("invalid JSON: ") == 0);
  CHECK(utf8.find('\xff') == std::string::npos);
  CHECK(utf8.find("\xef\xbf\xbd") != std::string::npos);

  RowOptions small;
  small.max_line_bytes = 20;
  const std::string line = R"({"completion": "ab"})";  // 20 bytes
  CHECK(ReadScoreRow(line, 1, small).ok());
  CHECK(Bad(line + " ", small).what == "line longer than 20 bytes (--max-line-bytes)");
}

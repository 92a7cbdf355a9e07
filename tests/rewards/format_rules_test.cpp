// format.think_answer, format.tags, format.tag_count, format.boxed.
#include <string>

#include "tests/rewards/test_util.h"

using namespace rl::rewards;
using namespace rl::rewards::testing;

TEST_CASE("format.think_answer accepts the canonical shape", "[format]") {
  auto reward = OneRule("format.think_answer");
  CHECK(Value(*reward, "<think>2+2 is 4</think><answer>4</answer>") == 1);
  CHECK(Value(*reward, "  \n<think>x</think>\n\n<answer>4</answer>\n  ") == 1);
  CHECK(Value(*reward, "<think></think><answer>4</answer>") == 1);  // an empty thought is allowed
}

TEST_CASE("format.think_answer: a multi-line thought scores 1 (the DOTALL bug)",
          "[format][regression]") {
  auto reward = OneRule("format.think_answer");
  CHECK(Value(*reward,
              "<think>\nFirst line.\nSecond line.\n\nThird.\n</think>\n<answer>\n42\n</answer>") ==
        1);
  CHECK(Value(*reward, "<think>a\nb</think><answer>line 1\nline 2</answer>") == 1);
}

TEST_CASE("format.think_answer: text after </answer> scores 0 (the MULTILINE $ bug)",
          "[format][regression]") {
  auto reward = OneRule("format.think_answer");
  CHECK(Value(*reward, "<think>t</think><answer>4</answer>\nExtra text on the next line") == 0);
  CHECK(Value(*reward, "<think>t</think><answer>4</answer> trailing") == 0);
  CHECK(Value(*reward, "Preamble\n<think>t</think><answer>4</answer>") == 0);
  CHECK(Value(*reward, "<think>t</think>\nbetween\n<answer>4</answer>") == 0);
}

TEST_CASE("format.think_answer: CRLF line ends", "[format]") {
  auto reward = OneRule("format.think_answer");
  CHECK(Value(*reward,
              "<think>\r\nstep one\r\nstep two\r\n</think>\r\n<answer>\r\n7\r\n</answer>\r\n") ==
        1);
}

TEST_CASE("format.think_answer: tags are case-sensitive unless configured", "[format]") {
  auto strict = OneRule("format.think_answer");
  CHECK(Value(*strict, "<THINK>t</THINK><ANSWER>4</ANSWER>") == 0);
  CHECK(Value(*strict, "<Think>t</Think><Answer>4</Answer>") == 0);
  auto lenient = OneRule("format.think_answer", "{case_sensitive: false}");
  CHECK(Value(*lenient, "<THINK>t</THINK><ANSWER>4</ANSWER>") == 1);
  CHECK(Value(*lenient, "<Think>t</think><answer>4</ANSWER>") == 1);
  CHECK(Value(*lenient, "<THINK>t</THINK><ANSWER>4</ANSWER><answer>5</answer>") == 0);
}

TEST_CASE("format.think_answer: duplicated, nested, missing and out-of-order tags", "[format]") {
  auto reward = OneRule("format.think_answer");
  CHECK(Value(*reward, "<think>a</think><think>b</think><answer>4</answer>") == 0);
  CHECK(Value(*reward, "<think>a</think><answer>4</answer><answer>5</answer>") == 0);
  CHECK(Value(*reward, "<think>a<think>b</think></think><answer>4</answer>") == 0);
  CHECK(Value(*reward, "<think>a<answer>4</answer></think>") == 0);
  CHECK(Value(*reward, "<answer>4</answer><think>a</think>") == 0);
  CHECK(Value(*reward, "</think><think>a<answer>4</answer>") == 0);
  CHECK(Value(*reward, "<think>a</think>") == 0);
  CHECK(Value(*reward, "<answer>4</answer>") == 0);
  CHECK(Value(*reward, "<think>a</think><answer>4") == 0);
  CHECK(Value(*reward, "") == 0);
  CHECK(Value(*reward, "The answer is 4.") == 0);
}

TEST_CASE("format.think_answer: an empty answer scores 0", "[format]") {
  auto reward = OneRule("format.think_answer");
  CHECK(Value(*reward, "<think>t</think><answer></answer>") == 0);
  CHECK(Value(*reward, "<think>t</think><answer> \n\t </answer>") == 0);
}

TEST_CASE("format.think_answer: tags inside code blocks are still tags", "[format]") {
  auto reward = OneRule("format.think_answer");
  // Other markup in code is fine...
  CHECK(Value(*reward,
              "<think>Write the HTML:\n```html\n<div><p>hi</p></div>\n```\n</think>\n"
              "<answer>\n```python\nprint(1 < 2)\n```\n</answer>") == 1);
  // ...but a quoted answer tag in the thought is a second answer tag: the format is ambiguous.
  CHECK(Value(*reward,
              "<think>The reply must look "
              "like\n```\n<answer>x</answer>\n```\n</think><answer>4</answer>") == 0);
}

TEST_CASE("format.think_answer: a trailing <|im_end|> is stripped first", "[format]") {
  auto reward = OneRule("format.think_answer");
  CHECK(Value(*reward, "<think>t</think><answer>4</answer><|im_end|>") == 1);
  CHECK(Value(*reward, "<think>t</think><answer>4</answer>\n<|im_end|>\n") == 1);
  CHECK(Value(*reward, "<think>t</think><answer>4</answer><|im_end|><|endoftext|>") == 1);
  CHECK(Value(*reward, "<think>t</think><answer>4</answer></s>") == 1);
  // A special token that is not trailing is text.
  CHECK(Value(*reward, "<think>t</think><answer>4</answer><|im_end|>more") == 0);
  // Only the configured tokens are stripped.
  auto custom = OneRule("format.think_answer", "{}", "special_tokens: ['<eos>']\n");
  CHECK(Value(*custom, "<think>t</think><answer>4</answer><eos>") == 1);
  CHECK(Value(*custom, "<think>t</think><answer>4</answer><|im_end|>") == 0);
}

TEST_CASE("format.think_answer: prefilled think", "[format][prefilled]") {
  auto reward = OneRule("format.think_answer");
  const std::string prompt = "<|im_start|>assistant\n<think>\n";
  CHECK(Value(*reward, "Let me think.\n</think>\n<answer>4</answer>", prompt) == 1);
  CHECK(Value(*reward, "</think><answer>4</answer>", prompt) == 1);
  // The think block must not be opened again...
  CHECK(Value(*reward, "<think>again</think><answer>4</answer>", prompt) == 0);
  CHECK(Value(*reward, "thought</think><answer></answer>", prompt) == 0);
  // ...and without the prefilled prompt the same completion is malformed.
  CHECK(Value(*reward, "Let me think.\n</think>\n<answer>4</answer>", "plain prompt") == 0);

  auto always = OneRule("format.think_answer", "{}", "prefilled_think: always\n");
  CHECK(Value(*always, "t</think><answer>4</answer>", "") == 1);
  CHECK(Value(*always, "<think>t</think><answer>4</answer>", "") == 0);
  auto never = OneRule("format.think_answer", "{}", "prefilled_think: never\n");
  CHECK(Value(*never, "t</think><answer>4</answer>", prompt) == 0);
  CHECK(Value(*never, "<think>t</think><answer>4</answer>", prompt) == 1);
}

TEST_CASE("format.think_answer: configurable tag names", "[format]") {
  auto reward = OneRule("format.think_answer", "{}", "tags: {think: reasoning, answer: final}\n");
  CHECK(Value(*reward, "<reasoning>r</reasoning><final>4</final>") == 1);
  CHECK(Value(*reward, "<think>r</think><answer>4</answer>") == 0);
}

TEST_CASE("format.think_answer: 1 MB completions", "[format][large]") {
  auto reward = OneRule("format.think_answer");
  std::string thought;
  while (thought.size() < (1 << 20)) thought += "Consider the next case, where x < 3 and y > 2.\n";
  CHECK(Value(*reward, "<think>" + thought + "</think><answer>5</answer>") == 1);
  CHECK(Value(*reward, "<think>" + thought + "</think><answer>5</answer>" + thought) == 0);
  std::string answer(1 << 20, 'a');
  CHECK(Value(*reward, "<think>t</think><answer>" + answer + "</answer>") == 1);
  // Invalid UTF-8 (a truncated multi-byte character) is still matched byte by byte.
  CHECK(Value(*reward, "<think>caf\xc3</think><answer>\xff 4</answer>") == 1);
}

TEST_CASE("format.tags: 0.25 per tag present once and in order", "[format]") {
  auto reward = OneRule("format.tags");
  CHECK(Value(*reward, "<think>t</think><answer>4</answer>") == 1.0);
  CHECK(Value(*reward, "<think>t</think>") == 0.5);
  CHECK(Value(*reward, "no tags") == 0.0);
  CHECK(Value(*reward, "<think>t</think><answer>4</answer> trailing text") == 1.0);
  // Duplicated tags lose their credit; the others keep theirs.
  CHECK(Value(*reward, "<think>a</think><think>b</think><answer>4</answer>") == 0.5);
  // Out of order: <answer> before </think> misplaces both.
  CHECK(Value(*reward, "<think>a<answer>4</think></answer>") == 0.5);
  CHECK(Value(*reward, "<answer>4</answer><think>t</think>") == 0.0);
  CHECK(Value(*reward, "<THINK>t</THINK><answer>4</answer>") == 0.5);
  auto lenient = OneRule("format.tags", "{case_sensitive: false}");
  CHECK(Value(*lenient, "<THINK>t</THINK><answer>4</answer>") == 1.0);
  CHECK(Value(*reward, "<think>\r\nt\r\n</think>\r\n<answer>4</answer>") == 1.0);
}

TEST_CASE("format.tags: prefilled think counts the prompt's opening tag", "[format][prefilled]") {
  auto reward = OneRule("format.tags");
  CHECK(Value(*reward, "t</think><answer>4</answer>", "<think>") == 1.0);
  CHECK(Value(*reward, "<think>t</think><answer>4</answer>", "<think>\n") == 0.75);
}

TEST_CASE("format.tag_count: open-r1 newline-delimited tags", "[format]") {
  auto reward = OneRule("format.tag_count");
  CHECK(Value(*reward, "<think>\nt\n</think>\n<answer>\n4\n</answer>") == 1.0);
  CHECK(Value(*reward, "<think>t</think><answer>4</answer>") == 0.0);
  CHECK(Value(*reward, "<think>\nt</think><answer>4\n</answer>") == 0.5);
  CHECK(Value(*reward, "<think>\na\n</think>\n<think>\nb\n</think>\n<answer>\n4\n</answer>") ==
        0.5);
  CHECK(Value(*reward, "<think>\r\nt\r\n</think>\r\n<answer>\r\n4\r\n</answer>\r\n") == 1.0);
  CHECK(Value(*reward, "<think>\nt\n</think>\n<answer>\n4\n</answer><|im_end|>") == 1.0);
  // Prefilled: the prompt supplied "<think>\n".
  CHECK(Value(*reward, "t\n</think>\n<answer>\n4\n</answer>", "<think>\n") == 1.0);
  CHECK(Value(*reward, "<think>\nt\n</think>\n<answer>\n4\n</answer>", "<think>\n") == 0.75);
}

TEST_CASE("format.boxed: a brace-balanced box in the answer", "[format]") {
  auto reward = OneRule("format.boxed");
  CHECK(Value(*reward, "<think>t</think><answer>\\boxed{4}</answer>") == 1);
  CHECK(Value(*reward, "<think>t</think><answer>$\\boxed{\\frac{1}{2}}$</answer>") == 1);
  CHECK(Value(*reward, "<think>t</think><answer>\\fbox{x^{2}}</answer>") == 1);
  CHECK(Value(*reward, "<think>t</think><answer>\\boxed {4}</answer>") == 1);
  CHECK(Value(*reward, "<think>t</think><answer>\\boxed{\\{1,2\\}}</answer>") == 1);
  // Unbalanced, empty or outside the answer block: 0.
  CHECK(Value(*reward, "<think>t</think><answer>\\boxed{\\frac{1}{2}</answer>") == 0);
  CHECK(Value(*reward, "<think>t</think><answer>\\boxed{}</answer>") == 0);
  CHECK(Value(*reward, "<think>\\boxed{4}</think><answer>4</answer>") == 0);
  CHECK(Value(*reward, "<think>t</think><answer>\\boxed 4</answer>") == 0);
  // Without tags the whole completion is searched.
  CHECK(Value(*reward, "So the answer is \\boxed{42}.") == 1);
  CHECK(Value(*reward, "So the answer is 42.") == 0);
  // Many unclosed boxes stay cheap and score 0.
  std::string unclosed;
  for (int i = 0; i < 100000; ++i) unclosed += "\\boxed{";
  CHECK(Value(*reward, unclosed) == 0);
  CHECK(Value(*reward, unclosed + "\\boxed{7}") == 1);
}

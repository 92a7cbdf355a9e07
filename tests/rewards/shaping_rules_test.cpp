// length.soft_overlong, repetition.ngram, reasoning.steps.
#include <string>

#include "tests/rewards/test_util.h"

using namespace rl::rewards;
using namespace rl::rewards::testing;

TEST_CASE("length.soft_overlong follows DAPO's schedule", "[shaping]") {
  auto reward = OneRule("length.soft_overlong", "{max_length: 100, cache_length: 20}");
  CHECK(Value(*reward, "x", "", 0) == 0);
  CHECK(Value(*reward, "x", "", 80) == 0);
  CHECK(Value(*reward, "x", "", 81) == Approx(-1.0 / 20));
  CHECK(Value(*reward, "x", "", 90) == Approx(-0.5));
  CHECK(Value(*reward, "x", "", 100) == Approx(-1.0));
  CHECK(Value(*reward, "x", "", 101) == -1.0);
  CHECK(Value(*reward, "x", "", 100000) == -1.0);
}

TEST_CASE("length.soft_overlong without a token count is unscorable, not 0", "[shaping]") {
  auto reward = OneRule("length.soft_overlong", "{max_length: 100, cache_length: 20}");
  RewardResult result = ScoreText(*reward, "x");
  CHECK(result.status == ScoreStatus::kMissingTokenCount);
  CHECK_FALSE(result.total.has_value());
  CHECK(result.components[0].status == ScoreStatus::kMissingTokenCount);
  CHECK_FALSE(result.components[0].detail.empty());
  CHECK(ScoreText(*reward, "x", "", -3).status == ScoreStatus::kMissingTokenCount);
}

TEST_CASE("repetition.ngram follows open-r1", "[shaping]") {
  auto reward = OneRule("repetition.ngram", "{ngram_size: 3, max_penalty: -1.0}");
  CHECK(Value(*reward, "") == 0);
  CHECK(Value(*reward, "two words") == 0);  // fewer words than n
  CHECK(Value(*reward, "the cat sat on the mat") == 0);
  // 6 words, 4 trigrams: "a b c", "b c a", "c a b", "a b c" -> 3 distinct -> 1 - 3/4.
  CHECK(Value(*reward, "a b c a b c") == Approx(-0.25));
  // Case and whitespace do not matter: same as above.
  CHECK(Value(*reward, "A b\tC\n\na  B c") == Approx(-0.25));
  // All the same word: 10 words, 8 trigrams, 1 distinct.
  CHECK(Value(*reward, "go go go go go go go go go go") == Approx(-(1 - 1.0 / 8)));
  auto half = OneRule("repetition.ngram", "{ngram_size: 2, max_penalty: -0.5}");
  // 4 words, 3 bigrams: "x y", "y x", "x y" -> 2 distinct.
  CHECK(Value(*half, "x y x y") == Approx(-0.5 * (1 - 2.0 / 3)));
  // Unicode spaces separate words as in Python's str.split(): NBSP, ideographic space, U+2009.
  CHECK(Value(*reward,
              "a\xc2\xa0"
              "b\xe3\x80\x80"
              "c a\xe2\x80\x89"
              "b c") == Approx(-0.25));
  // Other multi-byte characters are part of words: "été x été x été x", 2 of 4 trigrams distinct.
  CHECK(Value(*reward, "\xc3\xa9t\xc3\xa9 x \xc3\xa9t\xc3\xa9 x \xc3\xa9t\xc3\xa9 x") ==
        Approx(-0.5));
  // Special tokens are stripped before counting.
  CHECK(Value(*reward, "the cat sat<|im_end|>") == 0);
}

TEST_CASE("reasoning.steps counts open-r1's markers, list numbers on any line", "[shaping]") {
  auto reward = OneRule("reasoning.steps");
  CHECK(Value(*reward, "Just the answer: 4") == 0);
  CHECK(Value(*reward, "Step 1: add. Step 2: carry. Step 3: done.") == 1);
  CHECK(Value(*reward, "First, add.") == Approx(1.0 / 3));
  CHECK(Value(*reward, "First, add. Next, carry.") == Approx(2.0 / 3));
  // Numbered lists on any line (open-r1 only matched one at the very start of the text).
  CHECK(Value(*reward, "Plan:\n1. add\n2. carry\n3. done") == 1);
  CHECK(Value(*reward, "1. add") == Approx(1.0 / 3));
  // A number in mid-line is not a list marker.
  CHECK(Value(*reward, "We have 3. Then 4.") == 0);
  CHECK(Value(*reward, "Items:\n- a\n* b") == Approx(2.0 / 3));
  CHECK(Value(*reward, "Plan:\r\n1. add\r\n2. carry\r\n") == Approx(2.0 / 3));
  auto five = OneRule("reasoning.steps", "{target_steps: 5}");
  CHECK(Value(*five, "Step 1: a Step 2: b") == Approx(2.0 / 5));
}

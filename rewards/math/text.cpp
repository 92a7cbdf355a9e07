// Text side of the verifier: normalisation to ASCII LaTeX, and finding the
// final answer in a completion (answer tag, boxed, anchors, math environments, numbers).
// Every scan here is linear in the input and charged to the budget by its length first.
#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#include "rewards/math/internal.h"
#include "rewards/math/lex.h"

namespace rl::rewards::math::internal {
namespace {

// Scans that look for a few rare bytes test 8 bytes at once (SWAR) and jump from one byte
// they look for to the next: a byte-by-byte loop costs a few cycles a byte, and every
// completion is scanned several times. A mask marks each byte looked for with 0x80 in that
// byte, exactly (no carry crosses a byte).
constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHigh = kOnes * 0x80;
constexpr uint64_t kLow7 = kOnes * 0x7F;

// The 8 bytes of `s` from s[at] on, in memory order; past its end, NUL bytes, which no mask
// here marks.
uint64_t Block(std::string_view s, size_t at) {
  uint64_t block = 0;
  // A copy of a fixed size is one load; one of a variable size calls memcpy.
  if (at + sizeof block <= s.size()) {
    std::memcpy(&block, s.data() + at, sizeof block);
  } else {
    std::memcpy(&block, s.data() + at, s.size() - at);
  }
  return block;
}

// Where, in text order (0-7), a block's first and last marked bytes are; `mask` is not 0.
size_t FirstMarked(uint64_t mask) {
  if constexpr (std::endian::native == std::endian::little) return std::countr_zero(mask) / 8;
  return std::countl_zero(mask) / 8;
}
size_t LastMarked(uint64_t mask) {
  if constexpr (std::endian::native == std::endian::little) return 7 - std::countl_zero(mask) / 8;
  return 7 - std::countr_zero(mask) / 8;
}

// 0x80 in each byte of `block` that is `c`, 0 in the others.
uint64_t BytesEqual(uint64_t block, char c) {
  uint64_t t = block ^ (kOnes * static_cast<unsigned char>(c));
  return ~(((t & kLow7) + kLow7) | t | kLow7);
}

// 0x80 in each byte of `block` from `lo` to `hi` (ASCII, inclusive), 0 in the others.
uint64_t BytesInRange(uint64_t block, char lo, char hi) {
  uint64_t low = block & kLow7;
  uint64_t at_least_lo = low + kOnes * static_cast<uint64_t>(0x80 - lo);
  uint64_t above_hi = low + kOnes * static_cast<uint64_t>(0x7F - hi);
  return at_least_lo & ~above_hi & ~block & kHigh;
}

// The first position from s[from] on that `mask_of` marks, or s.size().
template <typename MaskOf>
size_t FindMarked(std::string_view s, size_t from, MaskOf mask_of) {
  for (; from + 8 <= s.size(); from += 8) {
    if (uint64_t mask = mask_of(Block(s, from))) return from + FirstMarked(mask);
  }
  if (from < s.size()) {
    if (uint64_t mask = mask_of(Block(s, from))) return from + FirstMarked(mask);
  }
  return s.size();
}

// The last position in s[from..to) that `mask_of` marks, or npos.
template <typename MaskOf>
size_t FindLastMarked(std::string_view s, size_t from, size_t to, MaskOf mask_of) {
  for (; to >= from + 8; to -= 8) {
    if (uint64_t mask = mask_of(Block(s, to - 8))) return to - 8 + LastMarked(mask);
  }
  if (to > from) {
    if (uint64_t mask = mask_of(Block(s.substr(0, to), from))) return from + LastMarked(mask);
  }
  return std::string_view::npos;
}

// Whether s[at..] starts with `word` (lower case), ignoring case.
bool StartsWithNoCase(std::string_view s, size_t at, std::string_view word) {
  if (at + word.size() > s.size()) return false;
  for (size_t k = 0; k < word.size(); ++k) {
    if (LowerChar(s[at + k]) != word[k]) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

struct Span {
  size_t begin, end;                  // the whole construct
  size_t content_begin, content_end;  // what is inside
};

std::string_view Content(std::string_view s, const Span& span) {
  return s.substr(span.content_begin, span.content_end - span.content_begin);
}

// All top-level \boxed{...} and \fbox{...} (nested boxes stay inside their parent).
// `lenient` (gold side): an unclosed box runs to the end of the text.
std::vector<Span> FindBoxes(std::string_view s, Budget& budget, bool lenient = false) {
  budget.SpendBytes(s.size());
  std::vector<Span> boxes;
  size_t at = 0;
  // The next \boxed or \fbox from `from` on, in one pass over the backslashes (LaTeX has
  // many: a search per name would pass over each of them once per name).
  auto next_box = [&](size_t from, size_t* name_end) {
    for (size_t k = s.find('\\', from); k != std::string_view::npos; k = s.find('\\', k + 1)) {
      // Most commands are not boxes: their first letters settle it without a comparison.
      std::string_view head = s.substr(k + 1, 2);
      if (head != "bo" && head != "fb") continue;
      size_t name = s.compare(k + 1, 5, "boxed") == 0  ? 5
                    : s.compare(k + 1, 4, "fbox") == 0 ? 4
                                                       : 0;
      if (name > 0) {
        *name_end = k + 1 + name;
        return k;
      }
    }
    return std::string_view::npos;
  };
  while (true) {
    size_t name_end = 0;
    size_t pos = next_box(at, &name_end);
    if (pos == std::string_view::npos) break;
    budget.SpendMemory(sizeof(Span));
    size_t i = name_end;
    while (i < s.size() && s[i] == ' ') ++i;
    if (i < s.size() && s[i] == '{') {
      size_t end = MatchBrace(s, i);
      if (end == std::string_view::npos) {
        if (lenient) boxes.push_back({pos, s.size(), i + 1, s.size()});
        break;  // unbalanced: no further box
      }
      boxes.push_back({pos, end, i + 1, end - 1});
      at = end;
    } else if (i < s.size() && i > name_end && !IsAlpha(s[i])) {
      // "\boxed 5": one token.
      size_t j = i;
      while (j < s.size() && !IsSpace(s[j]) && s[j] != '$' && s[j] != '.') ++j;
      if (j > i) boxes.push_back({pos, j, i, j});
      at = std::max(j, i + 1);
    } else {
      at = i;
    }
  }
  return boxes;
}

// Math environments in order: $$..$$, $..$, \(..\), \[..\]. Inline ones do not span lines.
std::vector<Span> FindMathEnvs(std::string_view s, Budget& budget) {
  budget.SpendBytes(s.size());
  std::vector<Span> envs;
  auto math_opens = [](uint64_t block) { return BytesEqual(block, '\\') | BytesEqual(block, '$'); };
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == '\\' && i + 1 < s.size() && (s[i + 1] == '(' || s[i + 1] == '[')) {
      std::string_view close = s[i + 1] == '(' ? "\\)" : "\\]";
      size_t end = s.find(close, i + 2);
      if (end == std::string_view::npos) break;
      std::string_view inner = s.substr(i + 2, end - i - 2);
      if (close == "\\)" && inner.find('\n') != std::string_view::npos) {
        i = end + 2;
        continue;
      }
      budget.SpendMemory(sizeof(Span));
      envs.push_back({i, end + 2, i + 2, end});
      i = end + 2;
    } else if (c == '\\') {
      i += 2;  // an escaped character such as \$
    } else if (c == '$') {
      bool display = i + 1 < s.size() && s[i + 1] == '$';
      size_t open = i + (display ? 2 : 1);
      auto closes = [](uint64_t block) {
        return BytesEqual(block, '\\') | BytesEqual(block, '$') | BytesEqual(block, '\n');
      };
      size_t end = open;
      while ((end = FindMarked(s, end, closes)) < s.size()) {
        if (s[end] == '\\') {
          end += 2;
          continue;
        }
        if (s[end] == '$') break;
        if (!display && s[end] == '\n') break;
        ++end;
      }
      if (end >= s.size()) break;
      if (s[end] == '\n') {
        i = end;
        continue;
      }
      size_t close_len = display && end + 1 < s.size() && s[end + 1] == '$' ? 2 : 1;
      budget.SpendMemory(sizeof(Span));
      envs.push_back({i, end + close_len, open, end});
      i = end + close_len;
    } else {
      i = FindMarked(s, i + 1, math_opens);
    }
  }
  return envs;
}

// How the text between two answers joins them.
enum class Joint { kNone, kAnd, kOr };

Joint ClassifySeparator(std::string_view sep) {
  if (sep.size() > 120) return Joint::kNone;
  std::string words;
  for (size_t i = 0; i < sep.size(); ++i) {
    char c = sep[i];
    if (c == '\\') {
      size_t j = i + 1;
      while (j < sep.size() && IsAlpha(sep[j])) ++j;
      std::string_view cmd = sep.substr(i + 1, j - i - 1);
      // \text{ and } keeps its words; spacing and delimiters vanish.
      if (cmd != "text" && cmd != "textbf" && cmd != "mbox" && cmd != "mathrm" && cmd != "quad" &&
          cmd != "qquad" && !cmd.empty()) {
        return Joint::kNone;
      }
      i = cmd.empty() ? i + 1 : j - 1;
      words += ' ';
      continue;
    }
    words += IsAlpha(c) ? LowerChar(c) : ' ';
  }
  bool has_and = false, has_or = false, other = false;
  size_t i = 0;
  while (i < words.size()) {
    while (i < words.size() && words[i] == ' ') ++i;
    size_t j = i;
    while (j < words.size() && words[j] != ' ') ++j;
    std::string_view w(words.data() + i, j - i);
    if (w == "and") has_and = true;
    else if (w == "or") has_or = true;
    else if (!w.empty()) other = true;
    i = j;
  }
  if (has_or) return Joint::kOr;
  if (has_and || !other) return Joint::kAnd;
  return Joint::kNone;
}

std::string Normalized(std::string_view s) { return NormalizeText(s); }

// Joins the last span with the preceding ones while the separators join them.
Extracted JoinSpans(std::string_view s, const std::vector<Span>& spans, Extraction kind,
                    Budget& budget) {
  Extracted out;
  out.kind = kind;
  size_t first = spans.size() - 1;
  bool any_or = false;
  while (first > 0) {
    Joint joint = ClassifySeparator(s.substr(spans[first - 1].end,
                                             spans[first].begin - spans[first - 1].end));
    if (joint == Joint::kNone) break;
    any_or = any_or || joint == Joint::kOr;
    --first;
  }
  bool differ = false;
  std::string head;  // the first answer normalised, once: it may be long
  for (size_t k = first; k < spans.size(); ++k) {
    std::string_view content = Content(s, spans[k]);
    budget.SpendMemory(content.size());  // copied, and normalised when compared
    if (k == first + 1) head = Normalized(Content(s, spans[first]));
    if (k > first) {
      out.text += ", ";
      differ = differ || Normalized(content) != head;
    }
    out.text += content;
  }
  // "\boxed{6} ... \boxed{6}": the same answer repeated is one answer, not the list "6, 6".
  if (!differ) out.text = std::string(Content(s, spans[first]));
  out.hedged = any_or && differ;
  return out;
}

// Whether the text before s[at] (a sign and spaces skipped) opens a bracket: "(-1,6)".
bool AfterOpeningBracket(std::string_view s, size_t at) {
  size_t k = at;
  while (k > 0 && at - k < 8 && (s[k - 1] == ' ' || s[k - 1] == '-' || s[k - 1] == '+')) --k;
  return k > 0 && (s[k - 1] == '(' || s[k - 1] == '[');
}

// Where the digits of a plain number starting at s[at] end, and whether they are an integer
// (no decimal part); `number`, when not null, receives them normalised.
// `commas`: ",ddd" groups are thousands and ",dd" (not a group) a decimal comma.
struct NumberBody {
  size_t end;
  bool integer;
};
NumberBody ReadNumberBody(std::string_view s, size_t at, bool commas, std::string* number) {
  size_t j = at;
  while (j < s.size() && IsDigit(s[j])) ++j;
  size_t head = j - at;
  if (number != nullptr) number->append(s.substr(at, head));
  // Thousands groups: ",ddd" or " ddd" after a head of 1-3 digits.
  if (head >= 1 && head <= 3) {
    for (char sep : {',', ' '}) {
      if (sep == ',' && !commas) continue;
      while (IsThousandsGroup(s, j, sep)) {
        if (sep == ' ' && j + 4 < s.size() && s[j + 4] == '/') break;  // "1 000/3"? keep apart
        if (number != nullptr) number->append(s.substr(j + 1, 3));
        j += 4;
      }
    }
  }
  // A decimal part: ".d", or a decimal comma as the gold reads one (verify.cpp's
  // DecimalComma): ",dd" or more than three digits, or after a head of 0; "1,6" is two
  // numbers, "1,22" one.
  if (j + 1 < s.size() && (s[j] == '.' || (s[j] == ',' && commas)) && IsDigit(s[j + 1])) {
    size_t k = j + 1;
    while (k < s.size() && IsDigit(s[k])) ++k;
    size_t decimals = k - j - 1;
    bool zero_head = j == at + 1 && s[at] == '0';  // "0" alone, no thousands group
    if (s[j] == '.' || decimals == 2 || decimals > 3 || zero_head) {
      if (number != nullptr) {
        *number += '.';
        number->append(s.substr(j + 1, decimals));
      }
      return {k, false};
    }
  }
  return {j, true};
}

// Whether a plain number of its own starts at s[i]: a digit or ".d" that is not part of a name
// (x2, a_1, \frac12) or an exponent (m/s^2).
bool StartsNumber(std::string_view s, size_t i) {
  bool starts = IsDigit(s[i]) || (s[i] == '.' && i + 1 < s.size() && IsDigit(s[i + 1]));
  return starts && (i == 0 || !(IsAlpha(s[i - 1]) || IsDigit(s[i - 1]) || s[i - 1] == '_' ||
                                s[i - 1] == '.' || s[i - 1] == '\\' || s[i - 1] == '^'));
}

// Whether s[from..] starts with an integer; `end` receives where it ends.
bool ReadInteger(std::string_view s, size_t from, size_t* end) {
  size_t k = from;
  while (k < s.size() && IsDigit(s[k])) ++k;
  *end = k;
  return k > from;
}

// Where the plain number that starts at s[i] ends, with its fraction or percent; `text`, when
// not null, receives it normalised ("1,000.99" -> "1000.99", "4 4/9" -> "(4+4/9)", "5 %" ->
// "5\%"). Only the last number of a text is worth its string: the others are only skipped.
size_t ReadNumber(std::string_view s, size_t i, std::string* text) {
  NumberBody body = ReadNumberBody(s, i, /*commas=*/true, text);
  // A comma inside brackets separates a pair: "(-1,6)" is never -1.6, "[1,000]" never 1000.
  size_t j = body.end;
  if (j < s.size() && (s[j] == ')' || s[j] == ']' || s[j] == ',') && AfterOpeningBracket(s, i)) {
    std::string plain;
    NumberBody plain_body = ReadNumberBody(s, i, /*commas=*/false, text ? &plain : nullptr);
    if (plain_body.end != j) {
      body = plain_body;
      if (text != nullptr) *text = std::move(plain);
    }
  }
  j = body.end;
  if (text != nullptr && text->front() == '.') text->insert(text->begin(), '0');
  // A fraction "/d", or a mixed number " d/d" after an integer.
  size_t e1 = 0, e2 = 0;
  if (j < s.size() && s[j] == '/' && ReadInteger(s, j + 1, &e1)) {
    std::string_view den = s.substr(j + 1, e1 - j - 1);
    if (text != nullptr) *text = "(" + *text + "/" + std::string(den) + ")";
    j = e1;
  } else if (body.integer && j + 1 < s.size() && s[j] == ' ' && ReadInteger(s, j + 1, &e1) &&
             e1 < s.size() && s[e1] == '/' && ReadInteger(s, e1 + 1, &e2) &&
             (e2 >= s.size() || s[e2] != '/')) {
    std::string_view num = s.substr(j + 1, e1 - j - 1), den = s.substr(e1 + 1, e2 - e1 - 1);
    bool proper = num.size() < den.size() || (num.size() == den.size() && num < den);
    if (proper) {
      if (text != nullptr) {
        *text = "(" + *text + "+" + std::string(num) + "/" + std::string(den) + ")";
      }
      j = e2;
    }
  }
  size_t k = j;
  while (k < s.size() && s[k] == ' ') ++k;
  static constexpr std::string_view kPercent[] = {"%", "percent", "pct"};
  for (std::string_view percent : kPercent) {
    if (StartsWithNoCase(s, k, percent)) {
      if (text != nullptr) *text += "\\%";
      return k + percent.size();
    }
  }
  return j;
}

// Whether s[at] may be part of a number's text as ReadNumber reads it: a digit, a ',' '.' or
// '/' before a digit (a separator, a decimal point, a fraction bar), a space, or a letter of
// "%", "percent" and "pct". In a list "1, 2, 3" each comma is outside every number.
bool MayBeInNumber(std::string_view s, size_t at) {
  bool digit_next = at + 1 < s.size() && IsDigit(s[at + 1]);
  switch (LowerChar(s[at])) {
    case ',': case '.': case '/':
      return digit_next;
    case ' ': case '%': case 'p': case 'e': case 'r': case 'c': case 'n': case 't':
      return true;
    default:
      return IsDigit(s[at]);
  }
}

// The position of the last digit of s[0..end), or npos.
size_t LastDigitBefore(std::string_view s, size_t end) {
  return FindLastMarked(s, 0, end, [](uint64_t block) { return BytesInRange(block, '0', '9'); });
}

// The last number that starts in s[from..to), read forwards; its start, and its end in `end`.
size_t LastNumberIn(std::string_view s, size_t from, size_t to, Budget& budget, size_t* end) {
  size_t last = std::string_view::npos;
  // A number starts with a digit or '.' (BytesInRange takes '/' too, harmlessly).
  auto may_start_number = [](uint64_t block) { return BytesInRange(block, '.', '9'); };
  std::string_view head = s.substr(0, to);
  size_t i = from;
  while ((i = FindMarked(head, i, may_start_number)) < to) {
    if (!StartsNumber(s, i)) {
      ++i;
      continue;
    }
    budget.Spend(4);  // the number's reading: about 100 ns
    last = i;
    *end = ReadNumber(s, i, nullptr);
    i = std::max(*end, i + 1);
  }
  return last;
}

// The last number in plain text, normalised as ReadNumber does; `last_begin` receives where it
// starts (its sign included), `last_end` where it ends. Where a number ends decides where the
// next may start, so numbers are read forwards, but only from the last byte before the last
// digit that no number's text holds: no number crosses that byte, so the numbers after it are
// read as a scan from the text's start would read them. When none of them is a number of its
// own (x2, m/s^2), the same is done before that byte.
std::optional<std::string> LastNumber(std::string_view s, Budget& budget,
                                      size_t* last_end = nullptr, size_t* last_begin = nullptr) {
  budget.SpendBytes(s.size());
  size_t last = std::string_view::npos, end = 0;
  for (size_t to = s.size(); last == std::string_view::npos;) {
    size_t from = LastDigitBefore(s, to);
    if (from == std::string_view::npos) return std::nullopt;
    while (from > 0 && MayBeInNumber(s, from - 1)) --from;
    last = LastNumberIn(s, from, to, budget, &end);
    to = from;
  }
  bool negative = last > 0 && s[last - 1] == '-' && (last < 2 || !IsDigit(s[last - 2]));
  std::string text;
  ReadNumber(s, last, &text);
  if (last_end != nullptr) *last_end = end;
  if (last_begin != nullptr) *last_begin = negative ? last - 1 : last;
  return negative ? "-" + text : text;
}

// The bracketed group of plain numbers that the number s[begin..end) closes ("[0, 3, 5]",
// "(-1, 6)"), or nothing: a list or pair written in plain text is one answer, not its last
// number. It looks back at most kLookBack bytes.
std::optional<std::string_view> GroupEndingAt(std::string_view s, size_t begin, size_t end,
                                              Budget& budget) {
  constexpr size_t kLookBack = 256;
  budget.SpendBytes(kLookBack);
  auto in_group = [](char c) {
    return IsDigit(c) || c == ',' || c == '.' || c == '-' || c == '+' || c == '/' || c == ' ';
  };
  size_t close = end;
  while (close < s.size() && s[close] == ' ') ++close;
  if (close >= s.size() || (s[close] != ')' && s[close] != ']')) return std::nullopt;
  for (size_t k = end; k < close; ++k) {
    if (!in_group(s[k])) return std::nullopt;
  }
  size_t open = begin;
  while (open > 0 && begin - open < kLookBack && in_group(s[open - 1])) --open;
  if (open == 0 || (s[open - 1] != '(' && s[open - 1] != '[')) return std::nullopt;
  std::string_view group = s.substr(open - 1, close + 2 - open);
  if (group.find(',') == std::string_view::npos) return std::nullopt;
  return group;
}

// The last number of plain text, or the bracketed group of numbers it closes.
std::optional<std::string> LastNumberOrGroup(std::string_view s, Budget& budget,
                                             size_t* last_end = nullptr) {
  size_t begin = 0, end = 0;
  std::optional<std::string> number = LastNumber(s, budget, &end, &begin);
  if (last_end != nullptr) *last_end = end;
  if (!number) return number;
  if (std::optional<std::string_view> group = GroupEndingAt(s, begin, end, budget)) {
    if (last_end != nullptr) *last_end = group->data() + group->size() - s.data();
    return std::string(*group);
  }
  return number;
}

// The line that starts at s[at] (without its newline).
std::string_view LineAt(std::string_view s, size_t at) {
  size_t end = s.find('\n', at);
  return s.substr(at, (end == std::string_view::npos ? s.size() : end) - at);
}

// After a heading "# Answer" (PRM800K) or "**Final Answer**" alone on its line, at `after`
// (just past "answer"): the next line that is not blank, or npos. A heading is "#" or "*"
// marks, then "final" or nothing, then "answer", then ":" or marks, then the line's end.
size_t HeadingAnswer(std::string_view s, size_t answer_at, size_t after) {
  constexpr size_t kPrefix = 16;  // "### **Final " fits; a bounded look back
  size_t begin = answer_at;
  while (begin > 0 && answer_at - begin < kPrefix && s[begin - 1] != '\n') --begin;
  if (begin > 0 && s[begin - 1] != '\n') return std::string_view::npos;
  std::string prefix = Lower(s.substr(begin, answer_at - begin));
  if (prefix.empty() || (prefix[0] != '#' && prefix[0] != '*')) return std::string_view::npos;
  size_t words = prefix.find_first_not_of("#* ");
  if (words != std::string::npos && Trim(std::string_view(prefix).substr(words)) != "final") {
    return std::string_view::npos;
  }
  while (after < s.size() && (s[after] == ' ' || s[after] == '*' || s[after] == ':' ||
                              s[after] == '#' || s[after] == '\r')) {
    ++after;
  }
  if (after < s.size() && s[after] != '\n') return std::string_view::npos;
  while (after < s.size() && IsSpace(s[after])) ++after;
  // Another heading or marker is not the answer.
  return after < s.size() && s[after] != '#' ? after : std::string_view::npos;
}

// Where the answer after an "answer" anchor at s[at] starts, or npos: "answer is", "answer:",
// "answer =", or a heading line "# Answer" followed by the answer on the next line.
size_t AfterAnswerWord(std::string_view s, size_t at) {
  size_t i = at + 6;
  while (i < s.size() && (s[i] == ' ' || s[i] == '*')) ++i;
  size_t after = std::string_view::npos;
  if (StartsWithNoCase(s, i, "is") && i + 2 < s.size() && !IsAlpha(s[i + 2])) {
    after = i + 2;
  } else if (i < s.size() && (s[i] == ':' || s[i] == '=')) {
    after = i + 1;
  }
  if (after == std::string_view::npos) return HeadingAnswer(s, at, at + 6);
  while (after < s.size() && (s[after] == ' ' || s[after] == '*' || s[after] == ':')) ++after;
  // "**Answer:**\n\n42": the answer is on the next line.
  if (after < s.size() && (s[after] == '\n' || s[after] == '\r')) {
    size_t next = HeadingAnswer(s, at, at + 6);
    if (next != std::string_view::npos) return next;
    // "The answer is:\n\n[1, 0, 1]": the next line that is not blank, when it starts as math
    // does rather than as more working ("Step 1: ...").
    constexpr std::string_view kMathStarts = "$\\[(-{";
    next = after;
    while (next < s.size() && IsSpace(s[next])) ++next;
    if (next < s.size() && (IsDigit(s[next]) || kMathStarts.find(s[next]) != kMathStarts.npos)) {
      return next;
    }
  }
  return after;
}

// GSM8K's final line "#### 42": where its answer starts, or npos.
size_t AfterHashes(std::string_view s, size_t at) {
  if (s.compare(at, 4, "####") != 0 || (at > 0 && s[at - 1] == '#')) return std::string_view::npos;
  size_t after = at + 4;
  if (after >= s.size() || s[after] != ' ') return std::string_view::npos;
  while (after < s.size() && s[after] == ' ') ++after;
  // A markdown heading "#### Step 2" is not an answer: GSM8K's are numbers.
  if (after < s.size() && IsAlpha(s[after])) return std::string_view::npos;
  return after;
}

// Text after the last answer marker, up to the end of its line: "answer is", "answer:",
// "# Answer" with the answer on the next line (PRM800K), "#### 42" (GSM8K). Scans backwards
// without copying: completions are long and this runs for every one. Markers before s[from]
// are not looked for.
std::optional<std::string_view> AnchorSegment(std::string_view s, Budget& budget,
                                              size_t from = 0) {
  constexpr size_t kTail = 8192;
  size_t floor = std::max(from, s.size() > kTail ? s.size() - kTail : 0);
  budget.SpendBytes(2 * (s.size() - std::min(floor, s.size())));  // the tail, and its lines
  // Markers are found by their '#' or by the 'w' of "answer", rarer in text than its 'a'
  // (0x20 folds 'W' into 'w' and no other byte into it). No '#' lies inside an "answer", so
  // markers are still met from the last one back.
  auto marker_bytes = [](uint64_t block) {
    return BytesEqual(block, '#') | BytesEqual(block | kOnes * 0x20, 'w');
  };
  constexpr size_t kW = 3;  // "answer"[kW] == 'w'
  size_t at = s.size();
  while ((at = FindLastMarked(s, floor, at, marker_bytes)) != std::string_view::npos) {
    size_t after = std::string_view::npos;
    if (s[at] == '#') {
      after = AfterHashes(s, at);
    } else if (at >= floor + kW && StartsWithNoCase(s, at - kW, "answer")) {
      after = AfterAnswerWord(s, at - kW);
    }
    if (after == std::string_view::npos) continue;
    std::string_view segment = LineAt(s, after);
    if (!Trim(segment).empty()) return segment;
  }
  return std::nullopt;
}

// Cuts a segment at its first sentence end (". " outside math), keeping math intact.
std::string_view FirstSentence(std::string_view s) {
  bool in_math = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      if (s[i + 1] == '(' || s[i + 1] == '[') in_math = true;
      if (s[i + 1] == ')' || s[i + 1] == ']') in_math = false;
      ++i;
    } else if (s[i] == '$') {
      in_math = !in_math;
    } else if (!in_math && s[i] == '.' && (i + 1 == s.size() || IsSpace(s[i + 1]))) {
      return s.substr(0, i);
    }
  }
  return s;
}

// Letters that read as a word of a sentence, not as math: three or more that are not a math
// word, or (`short_words`) a two-letter English word ("is", "of").
bool IsProseWord(std::string_view word, bool short_words) {
  static constexpr std::string_view kMathWords[] = {"and", "sin", "cos", "tan", "log", "sqrt",
                                                    "frac", "infty", "sec", "csc", "cot", "exp"};
  static constexpr std::string_view kShortWords[] = {"is", "of", "to", "so", "we", "it", "be",
                                                     "as", "at", "by", "on", "an", "if", "in",
                                                     "am", "do", "he", "my", "no", "us"};
  // Compared without a lower-cased copy: this runs for every word of an anchor's sentence.
  auto same = [&](std::string_view lower) {
    return lower.size() == word.size() && StartsWithNoCase(word, 0, lower);
  };
  if (word.size() >= 3) return std::none_of(std::begin(kMathWords), std::end(kMathWords), same);
  return short_words && std::any_of(std::begin(kShortWords), std::end(kShortWords), same);
}

// Whether an answer block is written as a sentence ("It is 5 apples") rather than as math:
// a word of three or more letters that is not a command or a math word.
bool IsProse(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (!IsAlpha(s[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && IsAlpha(s[j])) ++j;
    bool command = i > 0 && s[i - 1] == '\\';
    if (!command && IsProseWord(s.substr(i, j - i), /*short_words=*/false)) return true;
    i = j;
  }
  return false;
}

// A stretch of an anchor's sentence without its edges' spaces and punctuation.
std::string_view TrimRun(std::string_view s) {
  s = Trim(s);
  while (!s.empty() && std::string_view(" ,;:.([").find(s.back()) != std::string_view::npos) {
    s.remove_suffix(1);
  }
  while (!s.empty() && (s.front() == ':' || s.front() == ',' || IsSpace(s.front()))) {
    s.remove_prefix(1);
  }
  return s;
}

// The first stretch of `s` that is math rather than words and holds a digit or a command:
// the text between English words and '$' outside braces ("therefore \frac{3}{2} cups" ->
// "\frac{3}{2}", "x = 3 or x = -3" whole). A digit inside \frac{..}{..} is never read alone.
std::optional<std::string_view> FirstMathRun(std::string_view s, Budget& budget) {
  budget.SpendBytes(s.size());
  size_t begin = 0;
  int depth = 0;
  auto run = [&](size_t end) -> std::optional<std::string_view> {
    std::string_view r = TrimRun(s.substr(begin, end - begin));
    bool math = false;  // a digit or a command; an escaped quote \" is not math
    for (size_t k = 0; k < r.size() && !math; ++k) {
      math = IsDigit(r[k]) || (r[k] == '\\' && k + 1 < r.size() && IsAlpha(r[k + 1]));
    }
    return math ? std::optional<std::string_view>(r) : std::nullopt;
  };
  for (size_t i = 0; i < s.size();) {
    size_t j = i + 1;
    if (s[i] == '\\') {  // a command (its letters are not a word) or an escaped character
      while (j < s.size() && IsAlpha(s[j])) ++j;
      if (j == i + 1 && j < s.size()) ++j;
    } else if (s[i] == '{' || s[i] == '}') {
      depth = std::max(0, depth + (s[i] == '{' ? 1 : -1));
    } else if (depth == 0 && (s[i] == '$' || IsAlpha(s[i]))) {
      while (s[i] != '$' && j < s.size() && IsAlpha(s[j])) ++j;
      std::string_view word = s.substr(i, j - i);
      bool unit = word == "percent" || word == "pct";  // "5 percent" is 5\%
      if (s[i] == '$' || (!unit && IsProseWord(word, /*short_words=*/true))) {
        if (std::optional<std::string_view> found = run(i)) return found;
        begin = j;
      }
    }
    i = j;
  }
  return run(s.size());
}

// A run that is one plain number, perhaps followed by a unit word ("1,000.99", "4 4/9",
// "5 percent", "12 cm"), normalised as LastNumber does; else the run as written.
std::string RunText(std::string_view run, Budget& budget) {
  // A last number that starts the run is its only one.
  size_t end = 0, begin = 0;
  std::optional<std::string> number = LastNumber(run, budget, &end, &begin);
  if (!number || begin != 0 || (end < run.size() && run[end] != ' ')) {
    return std::string(run);
  }
  std::string_view rest = run.substr(end);
  bool words_only = std::all_of(rest.begin(), rest.end(), [](char c) {
    return IsAlpha(c) || c == ' ' || c == '.' || c == ',';
  });
  return words_only ? *number : std::string(run);
}

// The environments from the first one on while the text between them joins them
// ("$x=3$ or $x=-3$").
Extracted LeadingEnvs(std::string_view s, std::vector<Span> envs, Budget& budget) {
  size_t n = 1;
  while (n < envs.size() &&
         ClassifySeparator(s.substr(envs[n - 1].end, envs[n].begin - envs[n - 1].end)) !=
             Joint::kNone) {
    ++n;
  }
  envs.resize(n);
  return JoinSpans(s, envs, Extraction::kAnchor, budget);
}

// Whether `s` opens with an English word ("the", "divisible") rather than math.
bool OpensWithWord(std::string_view s) {
  size_t end = 0;
  while (end < s.size() && IsAlpha(s[end])) ++end;
  return IsProseWord(s.substr(0, end), /*short_words=*/true);
}

// A phrase that opens with words and gives its value after a later "is" or "are" ("the radius
// of the curve at 40 m/s is 170 m", "the output when A = 0 is Q = 5") names that value, not
// the first number of its description: the part after the last such word, when that opens
// with math ("... such that n^2 + 3 is divisible by 6" keeps its first number).
std::string_view StatedValue(std::string_view sentence) {
  if (!OpensWithWord(sentence)) return sentence;
  size_t at = std::string_view::npos;
  for (std::string_view copula : {" is ", " are "}) {
    size_t found = sentence.rfind(copula);
    if (found != std::string_view::npos && (at == std::string_view::npos || found > at)) {
      at = found + copula.size();
    }
  }
  if (at == std::string_view::npos) return sentence;
  std::string_view value = Trim(sentence.substr(at));
  bool math =
      std::any_of(value.begin(), value.end(), [](char c) { return IsDigit(c) || c == '\\'; });
  return math && !OpensWithWord(value) ? value : sentence;
}

// The answer an anchor names: the whole phrase after it, read as math ("The answer is:
// \frac{3}{2}." is 3/2, "**Final Answer:** 1+2i" is 1+2i), up to the sentence's end.
std::optional<Extracted> FromAnchor(std::string_view s, Budget& budget) {
  std::optional<std::string_view> segment = AnchorSegment(s, budget);
  if (!segment) return std::nullopt;
  budget.SpendBytes(segment->size());
  std::string_view sentence = StatedValue(Trim(FirstSentence(*segment)));
  Extracted out;
  out.kind = Extraction::kAnchor;
  std::vector<Span> envs = FindMathEnvs(sentence, budget);
  if (!envs.empty() && envs.front().begin == 0) return LeadingEnvs(sentence, envs, budget);
  std::optional<std::string_view> run = FirstMathRun(sentence, budget);
  if (run && (envs.empty() || run->data() < sentence.data() + envs.front().begin)) {
    out.text = RunText(*run, budget);
    return out;
  }
  size_t number_end = 0;
  std::optional<std::string> number = LastNumber(sentence, budget, &number_end);
  if (!envs.empty() && (!number || number_end <= envs.back().end)) {
    out = JoinSpans(sentence, envs, Extraction::kAnchor, budget);  // "so $12$ and $13$"
  } else if (number) {
    out.text = *number;
  } else {
    out.text = std::string(sentence);
  }
  if (Trim(out.text).empty()) return std::nullopt;
  return out;
}

// Whether nothing that could be an answer follows s[from..]: at most a short closing remark
// without digits or math ("I hope it is correct.", a closing tag).
bool IsFinalStatement(std::string_view s, size_t from) {
  constexpr size_t kRemark = 200;
  std::string_view rest = Trim(s.substr(from));
  return rest.size() <= kRemark && rest.find_first_of("0123456789\\$") == std::string_view::npos;
}

std::optional<Extracted> FromAnswerBlock(std::string_view s, Budget& budget) {
  budget.SpendBytes(s.size());
  // The last "<answer>", by forward searches: a forward search for a string skips to its
  // first byte with memchr, where a backward one (rfind) compares at every byte.
  constexpr std::string_view kOpen = "<answer>";
  size_t open = std::string_view::npos;
  for (size_t at = s.find(kOpen); at != std::string_view::npos; at = s.find(kOpen, at + 1)) {
    open = at;
  }
  if (open == std::string_view::npos) return std::nullopt;
  size_t close = s.find("</answer>", open);
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view content = Trim(s.substr(open + 8, close - open - 8));
  Extracted out;
  out.kind = Extraction::kAnswerTag;
  if (content.empty()) return out;  // an empty answer block: the caller stops looking
  budget.SpendBytes(content.size());  // IsProse
  std::vector<Span> boxes = FindBoxes(content, budget);
  if (!boxes.empty()) {
    out = JoinSpans(content, boxes, Extraction::kAnswerTag, budget);
    out.kind = Extraction::kAnswerTag;
    return out;
  }
  std::vector<Span> envs = FindMathEnvs(content, budget);
  std::optional<std::string> number;
  if (!envs.empty() && envs.front().begin == 0 && envs.back().end == content.size()) {
    out = JoinSpans(content, envs, Extraction::kAnswerTag, budget);
  } else if (!IsProse(content)) {
    out.text = std::string(content);
  } else if (std::optional<Extracted> anchored = FromAnchor(content, budget)) {
    out = *anchored;  // "The answer is 5."
  } else if (!envs.empty()) {
    out = JoinSpans(content, envs, Extraction::kAnswerTag, budget);
  } else if ((number = LastNumber(content, budget))) {
    out.text = *number;  // "5 apples"
  } else {
    out.text = std::string(content);  // a text answer such as "Evelyn"
  }
  out.kind = Extraction::kAnswerTag;
  return out;
}


}  // namespace

std::optional<Extracted> ExtractAnswer(std::string_view completion, const VerifierOptions& options,
                                       Budget& budget) {
  auto enabled = [&](Extraction kind) {
    return std::find(options.extraction.begin(), options.extraction.end(), kind) !=
           options.extraction.end();
  };
  // The last plain number, read once: kMathEnv weighs it against the environments and kNumber,
  // next, returns it; both scans read every number of the completion.
  struct LastPlain {
    std::optional<std::string> number;
    size_t end = 0;
  };
  std::optional<LastPlain> last_plain;
  auto last_number = [&]() -> const LastPlain& {
    if (!last_plain) {
      last_plain.emplace();
      last_plain->number = LastNumberOrGroup(completion, budget, &last_plain->end);
    }
    return *last_plain;
  };
  for (Extraction kind : options.extraction) {
    std::optional<Extracted> found;
    switch (kind) {
      case Extraction::kAnswerTag:
        found = FromAnswerBlock(completion, budget);
        // A completion that wrote an empty answer block answered nothing: a number left in its
        // thought must not earn the reward.
        if (found && Trim(found->text).empty()) return std::nullopt;
        break;
      case Extraction::kBoxed: {
        std::vector<Span> boxes = FindBoxes(completion, budget);
        if (boxes.empty()) break;
        // An answer marker after the last box overrides it only as the final statement
        // ("\boxed{5} ... The final answer is 6." is 6; a later "the answer is" followed by
        // more working is not), and only when it names math, not words ("is above"). A marker
        // before the box's end cannot start its answer after it (only spaces, colons, stars
        // and line ends lie between a marker and its answer), so none is looked for there.
        std::optional<std::string_view> anchor;
        if (enabled(Extraction::kAnchor)) {
          anchor = AnchorSegment(completion, budget, boxes.back().end);
        }
        if (anchor &&
            static_cast<size_t>(anchor->data() - completion.data()) >= boxes.back().end &&
            IsFinalStatement(completion, FirstSentence(*anchor).size() +
                                             (anchor->data() - completion.data()))) {
          found = FromAnchor(completion, budget);
          if (found && IsProse(found->text)) found.reset();
        }
        if (!found) found = JoinSpans(completion, boxes, Extraction::kBoxed, budget);
        break;
      }
      case Extraction::kAnchor:
        found = FromAnchor(completion, budget);
        break;
      case Extraction::kMathEnv: {
        std::vector<Span> envs = FindMathEnvs(completion, budget);
        // A plain number after the last math environment is the later statement.
        size_t number_end = 0;
        std::optional<std::string> number;
        if (enabled(Extraction::kNumber)) {
          number = last_number().number;
          number_end = last_number().end;
        }
        if (!envs.empty() && (!number || number_end <= envs.back().end)) {
          found = JoinSpans(completion, envs, Extraction::kMathEnv, budget);
        } else if (!envs.empty()) {
          found = Extracted{*number, Extraction::kNumber, false};
        } else if (completion.size() <= 300 && completion.find('\\') != std::string_view::npos &&
                   completion.find('\n') == std::string_view::npos) {
          // A short bare LaTeX answer ("\frac{10}{9}") is its own environment.
          found = Extracted{std::string(completion), Extraction::kMathEnv, false};
        }
        break;
      }
      case Extraction::kNumber: {
        const std::optional<std::string>& number = last_number().number;
        if (number) found = Extracted{*number, Extraction::kNumber, false};
        break;
      }
    }
    if (found && !Trim(found->text).empty()) return found;
  }
  return std::nullopt;
}

std::string ExtractGold(std::string_view gold, Budget& budget) {
  std::vector<Span> boxes = FindBoxes(gold, budget, /*lenient=*/true);
  if (!boxes.empty()) {
    std::string text = JoinSpans(gold, boxes, Extraction::kBoxed, budget).text;
    // "$\boxed{20}$ percent": the unit word belongs to the answer.
    std::string after = Lower(Trim(gold.substr(boxes.back().end)));
    if (after.starts_with("$")) after = Lower(Trim(std::string_view(after).substr(1)));
    if (after.starts_with("percent") || after.starts_with("\\%")) text += "\\%";
    return text;
  }
  std::vector<Span> envs = FindMathEnvs(gold, budget);
  if (!envs.empty()) {
    // A gold that is mostly math ("$21,16$ or $11$", "$125$ miles") keeps its words.
    std::string_view trimmed = Trim(gold);
    if (envs.size() == 1 && trimmed.size() < 2 * (envs[0].end - envs[0].begin) + 20) {
      std::string text(Content(gold, envs[0]));
      std::string_view tail = Trim(gold.substr(envs[0].end));
      if (!tail.empty() && tail.size() < 20) text += " \\text{" + std::string(tail) + "}";
      return text;
    }
    return JoinSpans(gold, envs, Extraction::kMathEnv, budget).text;
  }
  return std::string(Trim(gold));
}

std::optional<std::string> ExtractChoice(std::string_view completion,
                                         const VerifierOptions& options, Budget& budget) {
  auto same = [&](std::string_view a, std::string_view b) {
    return options.choices_ignore_case ? Lower(a) == Lower(b) : a == b;
  };
  // Standalone tokens in order; a token right after an anchor wins.
  std::optional<std::string> first;
  std::optional<std::string> anchored;
  budget.SpendMemory(completion.size());
  std::string lower = Lower(completion);
  size_t i = 0;
  while (i < completion.size()) {
    if (!IsAlpha(completion[i]) && !IsDigit(completion[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < completion.size() && (IsAlpha(completion[j]) || IsDigit(completion[j]))) ++j;
    std::string_view token = completion.substr(i, j - i);
    // Each label compared (through lower-cased copies when case is ignored).
    budget.Spend(1 + static_cast<int64_t>(options.choices.size() * (1 + token.size() / 16)));
    for (const std::string& choice : options.choices) {
      if (!same(token, choice)) continue;
      if (!first) first = choice;
      std::string_view before = std::string_view(lower).substr(0, i);
      while (!before.empty() && (IsSpace(before.back()) || before.back() == '(' ||
                                 before.back() == '*' || before.back() == ':' ||
                                 before.back() == '{')) {
        before.remove_suffix(1);
      }
      if (before.ends_with("answer is") || before.ends_with("answer") ||
          before.ends_with("\\text") || before.ends_with("\\boxed")) {
        anchored = choice;
      }
    }
    i = j;
  }
  return anchored ? anchored : first;
}

std::string NormalizeText(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\\') {
      size_t j = i + 1;
      while (j < s.size() && IsAlpha(s[j])) ++j;
      std::string_view name = s.substr(i + 1, j - i - 1);
      bool wrapper = name == "text" || name == "textbf" || name == "textit" || name == "mbox" ||
                     name == "textnormal" || name == "mathrm" || name == "mathbf" ||
                     name == "emph" || name.empty();
      if (!wrapper) out.append(s.substr(i, j - i));
      if (name.empty() && j < s.size()) {
        // Spacing (\, \; \!) and currency (\$) vanish; \{ \} \% and the like count.
        if (std::string_view(",;:! $").find(s[j]) == std::string_view::npos) out += {'\\', s[j]};
        ++j;
      }
      i = j - 1;
      continue;
    }
    if (IsSpace(c) || c == '{' || c == '}' || c == '$' || c == '~') continue;
    out += LowerChar(c);
  }
  while (!out.empty() && out.back() == '.') out.pop_back();
  if (out.size() >= 2 && out.front() == '(' && out.back() == ')' &&
      out.find_first_of("(),", 1) == out.size() - 1) {
    out = out.substr(1, out.size() - 2);
  }
  return out;
}


namespace {

struct Replacement {
  std::string_view from, to;
};
// Unicode spellings of math, mapped to the LaTeX the parser reads.
constexpr Replacement kUnicode[] = {
    {"−", "-"},         {"–", "-"},         {"—", "-"},          {"×", "\\times "},
    {"÷", "\\div "},    {"·", "\\cdot "},   {"⋅", "\\cdot "},    {"≤", "\\le "},
    {"≥", "\\ge "},     {"≠", "\\ne "},     {"∞", "\\infty "},   {"π", "\\pi "},
    {"√", "\\sqrt "},   {"²", "^2"},        {"³", "^3"},         {"°", "^\\circ "},
    {"∪", "\\cup "},    {"∩", "\\cap "},    {"∈", "\\in "},      {"±", "\\pm "},
    {"∓", "\\mp "},     {"∅", "\\emptyset "}, {"≈", "\\approx "}, {"€", ""},
    {"£", ""},          {"¥", ""},          {"\u3000", " "},     {"\u00a0", " "},
    {"\u200b", ""},     {"，", ","},        {"（", "("},         {"）", ")"},
    {"％", "%"},        {"：", ":"},        {"．", "."},         {"＝", "="},
    {"＋", "+"},        {"－", "-"},        {"／", "/"},
};

// Commands that a doubled backslash ("\\frac", from over-escaped JSON) may stand for.
bool KnownAfterDoubleBackslash(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "frac",  "dfrac", "tfrac", "sqrt",  "le",    "leq",     "ge",     "geq",   "boxed",
      "left",  "right", "pi",    "text",  "cdot",  "times",   "infty",  "in",    "cup",
      "cap",   "neq",   "ne",    "lt",    "gt",    "pm",      "mathrm", "mbox",  "circ",
      "begin", "end",   "sin",   "cos",   "tan",   "log",     "ln",     "quad",  "qquad",
      "mp",    "div",   "approx", "emptyset", "varnothing", "binom", "textbf", "fbox"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}


// Unicode spellings (minus signs, full-width digits, symbols) to ASCII LaTeX.
std::string UnicodeToLatex(std::string_view in, Budget& budget) {
  std::string s;
  s.reserve(in.size());
  for (size_t i = 0; i < in.size();) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    if (c < 0x80) {
      s += in[i++];
      continue;
    }
    // Full-width digits and letters U+FF10..U+FF5A.
    if (c == 0xEF && i + 2 < in.size()) {
      unsigned char c1 = static_cast<unsigned char>(in[i + 1]);
      unsigned char c2 = static_cast<unsigned char>(in[i + 2]);
      int code = ((c & 0x0F) << 12) | ((c1 & 0x3F) << 6) | (c2 & 0x3F);
      if ((code >= 0xFF10 && code <= 0xFF19) || (code >= 0xFF21 && code <= 0xFF3A) ||
          (code >= 0xFF41 && code <= 0xFF5A)) {
        s += static_cast<char>(code - 0xFF00 + 0x20);
        i += 3;
        continue;
      }
    }
    budget.Spend();  // a look through the table of spellings
    bool replaced = false;
    for (const Replacement& r : kUnicode) {
      if (r.from[0] == in[i] && in.substr(i, r.from.size()) == r.from) {
        s += r.to;
        i += r.from.size();
        replaced = true;
        break;
      }
    }
    if (!replaced) s += in[i++];
  }
  return s;
}

// LaTeX spacing, sizing and spelling variants to the forms the parser reads.
std::string CleanLatex(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    if (c == '*' && i + 1 < s.size() && s[i + 1] == '*') {  // markdown bold
      i += 2;
      continue;
    }
    if (c == '{') {  // 10{,}000, 14 {, }916
      size_t j = i + 1;
      while (j < s.size() && s[j] == ' ') ++j;
      if (j < s.size() && s[j] == ',') {
        size_t k = j + 1;
        while (k < s.size() && s[k] == ' ') ++k;
        if (k < s.size() && s[k] == '}') {
          while (!out.empty() && out.back() == ' ') out.pop_back();
          i = k + 1;
          while (i < s.size() && s[i] == ' ') ++i;
          continue;
        }
      }
    }
    if (c == '~') {
      out += ' ';
      ++i;
      continue;
    }
    if (c != '\\' || i + 1 >= s.size()) {
      out += c;
      ++i;
      continue;
    }
    char next = s[i + 1];
    if (next == '\\') {
      size_t j = i + 2;
      while (j < s.size() && IsAlpha(s[j])) ++j;
      if (j > i + 2 && KnownAfterDoubleBackslash(s.substr(i + 2, j - i - 2))) {
        i += 1;  // drop one backslash; the command is read next round
      } else {
        out += "\\\\";
        i += 2;
      }
      continue;
    }
    if (next == '!') {
      i += 2;
      if (!out.empty() && out.back() == ',') {  // 11,\! 111: a thousands separator
        while (i < s.size() && s[i] == ' ') ++i;
      }
      continue;
    }
    if (next == ',' || next == ';' || next == ':' || next == ' ') {
      bool between_digits = !out.empty() && IsDigit(out.back()) && i + 2 < s.size() &&
                            IsDigit(s[i + 2]);
      if (!between_digits) out += ' ';
      i += 2;
      continue;
    }
    if (!IsAlpha(next)) {
      out += c;
      out += next;
      i += 2;
      continue;
    }
    size_t j = i + 1;
    while (j < s.size() && IsAlpha(s[j])) ++j;
    std::string_view name = s.substr(i + 1, j - i - 1);
    i = j;
    if (name == "left" || name == "right") {
      if (i < s.size() && s[i] == '.') ++i;
      continue;
    }
    if (name == "big" || name == "Big" || name == "bigl" || name == "bigr" || name == "Bigl" ||
        name == "Bigr" || name == "bigg" || name == "Bigg" || name == "biggl" ||
        name == "biggr" || name == "displaystyle" || name == "textstyle" || name == "limits" ||
        name == "nolimits") {
      continue;
    }
    if (name == "dfrac" || name == "tfrac" || name == "cfrac") {
      out += "\\frac";
    } else if (name == "dbinom" || name == "tbinom") {
      out += "\\binom";
    } else if (name.starts_with("qquad") || name.starts_with("quad")) {
      // "\quadx_2" (a missing space in a gold) is \quad then x_2.
      out += ' ';
      out += name.substr(name.starts_with("qquad") ? 5 : 4);
    } else {
      out += '\\';
      out += name;
    }
  }
  return out;
}

}  // namespace

std::string NormalizeMath(std::string_view in, Budget& budget) {
  budget.SpendMemory(2 * in.size());  // two copies (charged so even when one is skipped)
  // Plain ASCII has no Unicode spelling to replace: one copy fewer of a long answer, and
  // fewer fresh pages, whose faults are what a loaded machine makes slow.
  bool ascii = std::none_of(in.begin(), in.end(), [](char c) { return (c & 0x80) != 0; });
  return ascii ? CleanLatex(in) : CleanLatex(UnicodeToLatex(in, budget));
}

}  // namespace rl::rewards::math::internal

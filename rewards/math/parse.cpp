// Lexer and recursive-descent parser: normalised LaTeX or plain text -> arena expression tree.
//
// Precedence, loosest first: ";" lists, "," / "and" / "or" lists, relation chains, ratios
// (a:b), \cup / \cap, + - \pm, * / \cdot \times \div and implicit products, unary signs,
// powers, postfix (! % _ '), primaries. Nesting is limited so hostile input cannot exhaust
// the stack; every token and node is charged to the budget.
#include <algorithm>

#include "rewards/math/internal.h"
#include "rewards/math/lex.h"

namespace rl::rewards::math::internal {
namespace {

constexpr int kMaxDepth = 160;

enum class Tok : uint8_t { kEnd, kNum, kIdent, kCmd, kChar, kText, kAnd, kOr, kPercent };

struct Token {
  Tok type;
  std::string text;
};

bool IsFunctionName(std::string_view n) {
  static constexpr std::string_view kNames[] = {
      "sin",  "cos",  "tan",  "sec",  "csc",  "cot",  "arcsin", "arccos", "arctan", "asin",
      "acos", "atan", "sinh", "cosh", "tanh", "ln",   "log",    "exp",    "lg",     "arccot"};
  return std::find(std::begin(kNames), std::end(kNames), n) != std::end(kNames);
}

bool IsUnitWord(std::string_view w) {
  static constexpr std::string_view kUnits[] = {
      "cm",      "mm",     "km",     "kg",     "mg",      "units",  "unit",   "dollars",
      "dollar",  "cents",  "miles",  "mile",   "meters",  "meter",  "metres", "yuan",
      "degrees", "degree", "feet",   "foot",   "inches",  "inch",   "hours",  "hour",
      "minutes", "seconds", "mph",   "sq",     "ft",      "grams",  "liters", "days",
      "years",   "people", "students", "cups", "pounds",  "square", "cubic",  "yards"};
  return std::find(std::begin(kUnits), std::end(kUnits), w) != std::end(kUnits);
}

class Lexer {
 public:
  Lexer(std::string_view s, Budget& budget) : s_(s), budget_(budget) {}

  std::vector<Token> Run() {
    std::vector<Token> out;
    budget_.SpendBytes(s_.size());
    // Room for as many tokens as the text or the budget allows: one allocation, not copies
    // into fresh memory each time the vector doubles.
    auto affordable = static_cast<size_t>(budget_.left() / Budget::MemoryCost(sizeof(Token)));
    out.reserve(std::min(s_.size(), affordable) + 1);
    Lex(s_, &out, 0);
    out.push_back({Tok::kEnd, ""});
    return out;
  }

 private:
  void Push(std::vector<Token>* out, Tok type, std::string text) {
    budget_.SpendMemory(sizeof(Token));
    out->push_back({type, std::move(text)});
  }

  // The content of the brace group at s[i] == '{'; i moves past it.
  static std::string_view Group(std::string_view s, size_t* i) {
    const size_t end = MatchBrace(s, *i);
    if (end == std::string_view::npos) throw ParseError{"unbalanced braces"};
    std::string_view inner = s.substr(*i + 1, end - *i - 2);
    *i = end;
    return inner;
  }

  void LexNumber(std::string_view s, size_t* i, std::vector<Token>* out) {
    size_t j = *i;
    std::string num;
    while (j < s.size() && IsDigit(s[j])) num += s[j++];
    // Thousands groups "7,425,000" after a head of 1-3 digits.
    if (!num.empty() && num.size() <= 3) {
      // "1,000" could be a pair; thousands is the common meaning in answers.
      while (IsThousandsGroup(s, j, ',')) {
        num.append(s.substr(j + 1, 3));
        j += 4;
      }
    }
    if (j + 1 < s.size() && s[j] == '.' && IsDigit(s[j + 1])) {
      num += '.';
      ++j;
      while (j < s.size() && IsDigit(s[j])) num += s[j++];
    } else if (j < s.size() && s[j] == '.' && num.empty()) {
      throw ParseError{"stray '.'"};
    }
    if (num.front() == '.') num.insert(num.begin(), '0');
    // A repeating decimal 0.\overline{3} or 0.1\overline{6}: "0.1r6" for MakeNumber.
    size_t bar = j + (j < s.size() && s[j] == '.' && num.find('.') == std::string::npos ? 1 : 0);
    if (s.compare(bar, 10, "\\overline{") == 0) {
      size_t k = bar + 10;
      size_t digits = k;
      while (k < s.size() && IsDigit(s[k])) ++k;
      if (k > digits && k < s.size() && s[k] == '}' && k - digits <= 18) {
        if (num.find('.') == std::string::npos) num += '.';
        num += 'r';
        num.append(s.substr(digits, k - digits));
        j = k + 1;
      }
    }
    // Scientific notation written plainly: 1.5e3, 2E-4 (not followed by more letters).
    if (j + 1 < s.size() && (s[j] == 'e' || s[j] == 'E')) {
      size_t k = j + 1;
      if (k < s.size() && (s[k] == '-' || s[k] == '+')) ++k;
      size_t digits = k;
      while (k < s.size() && IsDigit(s[k])) ++k;
      if (k > digits && k - digits < 6 && (k >= s.size() || !IsAlpha(s[k]))) {
        num += 'e';
        num.append(s.substr(j + 1, k - j - 1));
        j = k;
      }
    }
    *i = j;
    Push(out, Tok::kNum, std::move(num));
  }

  void LexWord(std::string_view s, size_t* i, std::vector<Token>* out) {
    size_t j = *i;
    while (j < s.size() && IsAlpha(s[j])) ++j;
    std::string word(s.substr(*i, j - *i));
    *i = j;
    std::string lower = Lower(word);
    if (lower == "and") return Push(out, Tok::kAnd, word);
    if (lower == "or") return Push(out, Tok::kOr, word);
    if (lower == "percent" || lower == "pct" || lower == "percentage") {
      return Push(out, Tok::kPercent, "%");
    }
    if (word.size() > 1 && IsFunctionName(lower)) return Push(out, Tok::kCmd, lower);
    if (lower == "pi" || lower == "sqrt" || lower == "infty" || lower == "inf" ||
        lower == "infinity") {
      return Push(out, Tok::kCmd, lower == "inf" || lower == "infinity" ? "infty" : lower);
    }
    if (word.size() > 1 && IsUnitWord(lower)) return;
    for (char c : word) Push(out, Tok::kIdent, std::string(1, c));
  }

  void LexTextCommand(std::string_view name, std::string_view content,
                      std::vector<Token>* out, int depth) {
    budget_.SpendMemory(content.size());  // copied, as a text token or lower-cased
    std::string_view t = content;
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
    bool font = name.starts_with("math") && name != "mathrm";
    if (name == "mathrm" || font || name == "operatorname") {
      if (t == "e" || t == "i" || t == "d") return Push(out, Tok::kIdent, std::string(t));
      bool word = !t.empty() && std::all_of(t.begin(), t.end(), IsAlpha);
      if (name == "operatorname" && word) return Push(out, Tok::kCmd, std::string(t));
      if (font && word) return Push(out, Tok::kIdent, std::string(t));
    }
    std::string lower = Lower(t);
    if (lower == "and" || lower == ",") return Push(out, Tok::kAnd, "and");
    if (lower == "or") return Push(out, Tok::kOr, "or");
    if (lower.empty()) return;
    if (lower == "percent" || lower == "%" || lower == "\\%") return Push(out, Tok::kPercent, "%");
    bool mathy = std::all_of(t.begin(), t.end(), [](char c) {
      return IsDigit(c) || c == '.' || c == ',' || c == '-' || c == '(' || c == ')' || c == ' ';
    });
    if (mathy || name.starts_with("math")) {
      budget_.SpendBytes(t.size());  // read again, one level deeper
      return Lex(t, out, depth + 1);
    }
    Push(out, Tok::kText, std::string(t));
  }

  void Lex(std::string_view s, std::vector<Token>* out, int depth) {
    if (depth > 8) throw ParseError{"text nested too deeply"};
    size_t i = 0;
    while (i < s.size()) {
      char c = s[i];
      if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f') {
        ++i;
      } else if (IsDigit(c) || (c == '.' && i + 1 < s.size() && IsDigit(s[i + 1]))) {
        LexNumber(s, &i, out);
      } else if (IsAlpha(c)) {
        LexWord(s, &i, out);
      } else if (c == '\\') {
        if (i + 1 >= s.size()) throw ParseError{"trailing backslash"};
        char n = s[i + 1];
        if (!IsAlpha(n)) {
          if (n == '\\') Push(out, Tok::kChar, "\\\\");
          else if (n == '%') Push(out, Tok::kPercent, "%");
          else if (n == '$' || n == '#') {}  // currency and stray escapes carry no value
          else Push(out, Tok::kChar, std::string{'\\', n});
          i += 2;
          continue;
        }
        size_t j = i + 1;
        while (j < s.size() && IsAlpha(s[j])) ++j;
        std::string name(s.substr(i + 1, j - i - 1));
        i = j;
        static constexpr std::string_view kTextual[] = {
            "text",   "textbf", "textit", "textnormal", "textrm", "textsf", "mbox",
            "mathrm", "mathbf", "mathit", "mathsf",     "mathbb", "mathcal", "operatorname",
            "boldsymbol", "emph", "hbox", "texttt"};
        if (std::find(std::begin(kTextual), std::end(kTextual), name) != std::end(kTextual)) {
          while (i < s.size() && s[i] == ' ') ++i;
          if (i < s.size() && s[i] == '{') {
            std::string_view content = Group(s, &i);
            LexTextCommand(name, content, out, depth);
          }
          continue;
        }
        if (name == "boxed" || name == "fbox" || name == "hline" || name == "cline" ||
            name == "noindent" || name == "centering") {
          continue;  // the group that follows is plain grouping
        }
        Push(out, Tok::kCmd, std::move(name));
      } else if (c == '%') {
        Push(out, Tok::kPercent, "%");
        ++i;
      } else if (c == '$') {
        ++i;  // leftover math delimiters
      } else {
        Push(out, Tok::kChar, std::string(1, c));
        ++i;
      }
    }
  }

  std::string_view s_;
  Budget& budget_;
};

RelOp RelOpOf(std::string_view cmd, bool* found) {
  *found = true;
  if (cmd == "le" || cmd == "leq" || cmd == "leqslant") return RelOp::kLe;
  if (cmd == "ge" || cmd == "geq" || cmd == "geqslant") return RelOp::kGe;
  if (cmd == "ne" || cmd == "neq") return RelOp::kNe;
  if (cmd == "lt") return RelOp::kLt;
  if (cmd == "gt") return RelOp::kGt;
  if (cmd == "approx" || cmd == "simeq" || cmd == "sim") return RelOp::kApprox;
  if (cmd == "in") return RelOp::kIn;
  if (cmd == "equiv" || cmd == "Rightarrow" || cmd == "implies" || cmd == "to") {
    return RelOp::kEq;
  }
  *found = false;
  return RelOp::kEq;
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, bool lenient, Budget& budget, Tree* tree)
      : t_(std::move(tokens)), lenient_(lenient), budget_(budget), tree_(*tree) {}

  int32_t Run() {
    int32_t root = ParseSemicolonList();
    // Trailing punctuation of a sentence.
    while (IsChar(".") || IsChar(",") || IsChar(";") || IsChar(":")) ++pos_;
    if (Peek().type != Tok::kEnd) {
      throw ParseError{"unexpected '" + Peek().text + "'"};
    }
    if (unevaluated_ > 0 && StatedValues(root) != unevaluated_) {
      throw ParseError{"cannot decide: \\" + unevaluated_name_ +
                       " is not evaluated (no symbolic engine); state its value"};
    }
    return root;
  }

 private:
  // --- token helpers
  const Token& Peek(size_t ahead = 0) const {
    size_t k = std::min(pos_ + ahead, t_.size() - 1);
    return t_[k];
  }
  bool IsChar(std::string_view c, size_t ahead = 0) const {
    return Peek(ahead).type == Tok::kChar && SameText(Peek(ahead).text, c);
  }
  bool IsCmd(std::string_view c, size_t ahead = 0) const {
    return Peek(ahead).type == Tok::kCmd && SameText(Peek(ahead).text, c);
  }
  // The parser asks about the next token many times over: a first byte that differs answers
  // most of them without a call to memcmp.
  static bool SameText(std::string_view text, std::string_view c) {
    return text.size() == c.size() && (c.empty() || text[0] == c[0]) && text == c;
  }
  void Expect(std::string_view c) {
    if (!IsChar(c)) throw ParseError{"expected '" + std::string(c) + "'"};
    ++pos_;
  }

  // --- node helpers
  int32_t Make(Kind kind, std::vector<int32_t> kids = {}, std::string name = {}) {
    Node node{kind};
    node.kids = std::move(kids);
    node.name = std::move(name);
    return tree_.Add(std::move(node), budget_);
  }
  int32_t MakeNumber(std::string_view text);
  int32_t MakeRepeating(std::string_view head, std::string_view block);
  Integer ReadDigits(std::string_view digits);
  Integer PowerOfTen(int64_t power);
  Rational Decimal(Integer value, int64_t exponent);

  struct DepthGuard {
    explicit DepthGuard(int* depth) : depth_(depth) {
      if (++*depth_ > kMaxDepth) throw ParseError{"nested too deeply"};
    }
    ~DepthGuard() { --*depth_; }
    int* depth_;
  };

  // --- grammar
  bool AtListEnd() const {
    const Token& t = Peek();
    if (t.type == Tok::kEnd) return true;
    auto is = [&](std::string_view text) { return SameText(t.text, text); };
    if (t.type != Tok::kChar) return t.type == Tok::kCmd && (is("end") || is("rangle"));
    return is(")") || is("]") || is("}") || is("\\}") || is(";") || is("&") || is("\\\\") ||
           (is("|") && abs_depth_ > 0);
  }

  // The lists below are vectors only from their second item on: most expressions are one term
  // of one factor, and an allocation per grammar level was a parse's largest cost.
  int32_t ParseSemicolonList() {
    int32_t first = ParseCommaList();
    if (!IsChar(";")) return first;
    std::vector<int32_t> items{first};
    while (IsChar(";")) {
      ++pos_;
      if (Peek().type == Tok::kEnd) break;
      items.push_back(ParseCommaList());
    }
    if (items.size() == 1) return items[0];
    return Make(Kind::kList, std::move(items));
  }

  // `semicolons`: inside brackets, (0;-2;6) separates like commas.
  int32_t ParseCommaList(bool semicolons = false) {
    DepthGuard guard(&depth_);
    int32_t first = -1;
    std::vector<int32_t> rest;
    bool separated = true;
    while (!AtListEnd() || (semicolons && IsChar(";"))) {
      if (IsChar(",") || Peek().type == Tok::kAnd || Peek().type == Tok::kOr ||
          (semicolons && IsChar(";"))) {
        ++pos_;
        separated = true;
        continue;
      }
      if (!separated && first >= 0) break;
      int32_t item = ParseRelation();
      if (first < 0) {
        first = item;
      } else {
        rest.push_back(item);
      }
      separated = false;
    }
    if (first < 0) throw ParseError{"empty expression"};
    if (rest.empty()) return first;
    rest.insert(rest.begin(), first);
    return Make(Kind::kList, std::move(rest));
  }

  bool PeekRelOp(RelOp* op, size_t* width) const {
    const Token& t = Peek();
    *width = 1;
    if (t.type == Tok::kCmd) {
      bool found = false;
      *op = RelOpOf(t.text, &found);
      return found;
    }
    if (t.type != Tok::kChar) return false;
    bool eq_next = IsChar("=", 1);
    if (t.text == "=") {
      *op = RelOp::kEq;
    } else if (t.text == "<") {
      *op = eq_next ? RelOp::kLe : RelOp::kLt;
      *width = eq_next ? 2 : 1;
    } else if (t.text == ">") {
      *op = eq_next ? RelOp::kGe : RelOp::kGt;
      *width = eq_next ? 2 : 1;
    } else if (t.text == "!" && eq_next) {
      *op = RelOp::kNe;
      *width = 2;
    } else {
      return false;
    }
    return true;
  }

  int32_t ParseRelation() {
    int32_t first = ParseRatio();
    RelOp op;
    size_t width;
    if (!PeekRelOp(&op, &width)) return first;
    std::vector<int32_t> operands{first};
    std::vector<RelOp> ops;
    do {
      pos_ += width;
      ops.push_back(op);
      operands.push_back(ParseRatio());
    } while (PeekRelOp(&op, &width));
    int32_t node = Make(Kind::kRelation, std::move(operands));
    tree_.nodes[node].ops = std::move(ops);
    return node;
  }

  int32_t ParseRatio() {
    int32_t left = ParseSetExpr();
    if (!IsChar(":")) return left;
    ++pos_;
    return Make(Kind::kRatio, {left, ParseSetExpr()});
  }

  int32_t ParseSetExpr() {
    int32_t left = ParseAdditive();
    while (IsCmd("cup") || IsCmd("cap")) {
      Kind kind = IsCmd("cap") ? Kind::kIntersect : Kind::kUnion;
      ++pos_;
      int32_t right = ParseAdditive();
      left = Make(kind, {left, right});
    }
    return left;
  }

  int32_t ParseAdditive() {
    DepthGuard guard(&depth_);
    int32_t first = ParseUnary();
    if (!IsChar("+") && !IsChar("-") && !IsCmd("pm") && !IsCmd("mp")) return first;
    std::vector<int32_t> terms{first};
    while (true) {
      if (IsChar("+")) {
        ++pos_;
        terms.push_back(ParseUnary());
      } else if (IsChar("-")) {
        ++pos_;
        terms.push_back(Make(Kind::kNeg, {ParseUnary()}));
      } else if (IsCmd("pm") || IsCmd("mp")) {
        ++pos_;
        int32_t sum = terms.size() == 1 ? terms[0] : Make(Kind::kAdd, terms);
        int32_t right = ParseUnary();
        terms = {Make(Kind::kPlusMinus, {sum, right})};
      } else {
        break;
      }
    }
    if (terms.size() == 1) return terms[0];
    return Make(Kind::kAdd, std::move(terms));
  }

  // Leading signs, read in a loop (a run of them must not cost stack): -x, --x, +x, \pm x.
  int32_t ParseUnary() {
    DepthGuard guard(&depth_);
    bool negative = ReadSigns();
    int32_t node;
    if (IsCmd("pm") || IsCmd("mp")) {
      ++pos_;
      node = Make(Kind::kPlusMinus, {ParseUnary()});
    } else {
      node = ParseTerm();
    }
    return negative ? Make(Kind::kNeg, {node}) : node;
  }

  // Consumes a run of + and - signs; true when their product is negative.
  bool ReadSigns() {
    bool negative = false;
    for (int run = 0; IsChar("-") || IsChar("+"); ++run) {
      if (run > kMaxDepth) throw ParseError{"run of signs too long"};
      negative = negative != IsChar("-");
      ++pos_;
    }
    return negative;
  }

  bool StartsFactor() const {
    const Token& t = Peek();
    auto is = [&](std::string_view text) { return SameText(t.text, text); };
    switch (t.type) {
      case Tok::kNum:
      case Tok::kIdent:
      case Tok::kText:
        return true;
      case Tok::kCmd: {
        bool rel = false;
        RelOpOf(t.text, &rel);
        return !rel && !is("cdot") && !is("times") && !is("div") && !is("cup") && !is("cap") &&
               !is("pm") && !is("mp") && !is("end") && !is("rfloor") && !is("rceil") &&
               !is("rangle") && !is("rvert") && !is("circ") && !is("choose");
      }
      case Tok::kChar:
        return is("(") || is("{") || is("[") || is("\\{") || (is("|") && abs_depth_ == 0);
      default:
        return false;
    }
  }

  // Whether a product goes on: an explicit operator, or a factor written next to the last.
  bool ContinuesTerm() const {
    return IsChar("*") || IsCmd("cdot") || IsCmd("times") || IsChar("/") || IsCmd("div") ||
           StartsFactor();
  }

  int32_t ParseTerm() {
    int32_t first = ParsePower();
    if (!ContinuesTerm()) return first;
    std::vector<int32_t> factors{first};
    while (true) {
      if (IsChar("*") || IsCmd("cdot") || IsCmd("times")) {
        ++pos_;
        factors.push_back(ParseUnaryFactor());
      } else if (IsChar("/") || IsCmd("div")) {
        ++pos_;
        factors.push_back(Make(Kind::kInv, {ParseUnaryFactor()}));
      } else if (StartsFactor()) {
        bool frac_follows = IsCmd("frac");
        bool call = factors.size() == 1 && IsChar("(") && IsCallable(factors[0]);
        int32_t next = ParsePower();
        // Mixed number: an integer directly followed by a proper fraction (2\frac{1}{2}),
        // not by a parenthesised one (2(\frac{1}{2}) is a product).
        if (factors.size() == 1 && frac_follows && IsMixedNumber(factors[0], next)) {
          factors[0] = Make(Kind::kAdd, {factors[0], next});
        } else if (call && !HasSymbols(tree_, next, budget_)) {
          // f(3), p'(2), y(2.5): a function's value at a point, which names a quantity as
          // f(x) does ("p'(2) = 14" states 14). Its value is still the product.
          factors[0] = Make(Kind::kMul, {factors[0], next}, "call");
        } else {
          factors.push_back(next);
        }
      } else {
        break;
      }
    }
    if (factors.size() == 1) return factors[0];
    return Make(Kind::kMul, std::move(factors));
  }

  // After an explicit operator a sign may follow: 2 \cdot -3.
  int32_t ParseUnaryFactor() {
    bool negative = ReadSigns();
    int32_t node = ParsePower();
    return negative ? Make(Kind::kNeg, {node}) : node;
  }

  // One letter, perhaps primed (f, p'), that a parenthesis may apply as a function.
  bool IsCallable(int32_t node) const {
    const Node& n = tree_[node];
    return n.kind == Kind::kSymbol && !n.name.empty() && IsAlpha(n.name[0]) &&
           n.name.find_first_not_of('\'', 1) == std::string::npos;
  }

  bool IsMixedNumber(int32_t whole, int32_t frac) {
    const Node& w = tree_[whole];
    const Node& f = tree_[frac];
    if (w.kind != Kind::kNumber || w.flags != 0 || f.kind != Kind::kMul || f.name != "frac") {
      return false;
    }
    const Node& num = tree_[f.kids[0]];
    const Node& inv = tree_[f.kids[1]];
    if (num.kind != Kind::kNumber || num.flags != 0 || inv.kind != Kind::kInv) return false;
    const Node& den = tree_[inv.kids[0]];
    if (den.kind != Kind::kNumber || den.flags != 0) return false;
    const Rational& n = tree_.numbers[num.num];
    const Rational& d = tree_.numbers[den.num];
    budget_.Spend(CompareCost(n, d));
    return n >= 0 && d > 0 && n < d;
  }

  int32_t ParsePower() {
    DepthGuard guard(&depth_);
    int32_t base = ParsePostfix();
    int chain = 0;
    while (IsChar("^")) {
      if (++chain > kMaxDepth) throw ParseError{"power chain too long"};
      ++pos_;
      if (IsCmd("circ") || (IsChar("{") && IsCmd("circ", 1) && IsChar("}", 2))) {
        pos_ += IsCmd("circ") ? 1 : 3;
        base = Make(Kind::kFunc, {base}, "deg");  // the number itself, radians inside trig
        continue;
      }
      if (IsCmd("prime")) {
        ++pos_;
        continue;
      }
      int32_t exponent = ParseExponent();
      base = Make(Kind::kPow, {base, exponent});
      base = ParsePostfixOps(base);
    }
    return base;
  }

  int32_t ParseExponent() {
    DepthGuard guard(&depth_);  // x^---1 recurses once per sign
    if (IsChar("-")) {
      ++pos_;
      return Make(Kind::kNeg, {ParseExponent()});
    }
    if (IsChar("{")) return ParseGroup();
    // x^23 means x^2 followed by 3 in TeX.
    if (std::optional<int32_t> digit = FirstDigit()) return *digit;
    return ParsePrimary();
  }

  // TeX takes one digit of a number as an exponent or a command argument (x^23, \frac12):
  // the first digit of a plain number token, its rest left as the next token.
  std::optional<int32_t> FirstDigit() {
    const Token& t = Peek();
    bool plain = t.type == Tok::kNum && t.text.find_first_of(".e") == std::string::npos;
    if (!plain || t.text.size() < 2) return std::nullopt;
    int32_t digit = MakeNumber(std::string_view(t.text).substr(0, 1));
    budget_.SpendBytes(t.text.size());  // the rest is moved down
    t_[pos_].text.erase(0, 1);
    return digit;
  }

  int32_t ParsePostfix() { return ParsePostfixOps(ParsePrimary()); }

  // Postfix chains (x!!!, 5%%) build deep trees: they are limited like nesting.
  int32_t ParsePostfixOps(int32_t node) {
    for (int chain = 0;; ++chain) {
      if (chain > kMaxDepth) throw ParseError{"postfix chain too long"};
      if (IsChar("!") && !IsChar("=", 1)) {
        ++pos_;
        node = Make(Kind::kFunc, {node}, "fact");
      } else if (Peek().type == Tok::kPercent) {
        ++pos_;
        node = Make(Kind::kPercent, {node});
      } else if (IsChar("'")) {
        ++pos_;
        if (tree_[node].kind != Kind::kSymbol) throw ParseError{"prime on a non-symbol"};
        tree_.nodes[node].name += "'";
      } else if (IsChar("_")) {
        ++pos_;
        node = Subscript(node);
      } else {
        return node;
      }
    }
  }

  // a_1, a_{37}, x_{n+1} (names), 1011_2 (a base literal).
  int32_t Subscript(int32_t base) {
    size_t start = pos_;
    int32_t sub = IsChar("{") ? ParseGroup() : ParsePrimary();
    Node& b = tree_.nodes[base];
    const Node& s = tree_[sub];
    if (b.kind == Kind::kNumber && b.flags == 0 && s.kind == Kind::kNumber && s.flags == 0) {
      return BaseLiteral(base, sub);
    }
    if (b.kind != Kind::kSymbol && b.kind != Kind::kConst) {
      if (lenient_) return base;
      throw ParseError{"subscript on an expression"};
    }
    std::string name = b.name + "_";
    for (size_t k = start; k < pos_; ++k) {
      if (t_[k].text != "{" && t_[k].text != "}") name += t_[k].text;
    }
    budget_.SpendBytes(name.size());  // nested subscripts copy their tokens again
    return Make(Kind::kSymbol, {}, std::move(name));
  }

  int32_t BaseLiteral(int32_t digits_node, int32_t base_node) {
    const Rational& base_value = tree_.numbers[tree_[base_node].num];
    if (base_value < 2 || base_value > 36) throw ParseError{"base out of range"};
    int base = static_cast<int>(base_value.num());
    std::string digits = Render(tree_, digits_node);
    Integer value = 0;
    for (char c : digits) {
      int d = c - '0';
      if (d < 0 || d >= base) throw ParseError{"digit out of range for its base"};
      value = value * base + d;
      budget_.Spend();
    }
    // Marked with its base: a gold written in base b fixes the base of a prediction
    // written without one (equiv.cpp).
    int32_t node = tree_.AddNumber(Rational(value), budget_, kBased);
    tree_.nodes[node].cols = base;
    return node;
  }

  // \sqrt{u^{2k}} is |u^k| for real u: |u| for k = 1, u^k itself for an even k. Read as
  // such: the sample points are mostly positive, where the principal root of u^2 is u, so
  // \sqrt{x^2} would otherwise pass for x and fail against |x|.
  int32_t SquareRoot(int32_t radicand) {
    const Node& r = tree_[radicand];
    if (r.kind != Kind::kPow || tree_[r.kids[1]].kind != Kind::kNumber ||
        tree_[r.kids[1]].flags != 0) {
      return Make(Kind::kFunc, {radicand}, "sqrt");
    }
    const Rational& power = tree_.numbers[tree_[r.kids[1]].num];
    if (!power.IsInteger() || power <= 0 || power.Bits() >= 32 || power.num() % 2 != 0) {
      return Make(Kind::kFunc, {radicand}, "sqrt");
    }
    const Integer half = power.num() / 2;
    int32_t base = r.kids[0];
    if (half != 1) base = Make(Kind::kPow, {base, tree_.AddNumber(Rational(half), budget_)});
    return half % 2 == 0 ? base : Make(Kind::kFunc, {base}, "abs");
  }

  int32_t ParseGroup() {
    DepthGuard guard(&depth_);
    Expect("{");
    if (IsChar("}")) throw ParseError{"empty group"};
    int32_t inner = ParseSemicolonList();
    if (IsCmd("choose")) {  // TeX's infix binomial: {n \choose k}
      ++pos_;
      int32_t k = ParseSemicolonList();
      Expect("}");
      return Make(Kind::kFunc, {inner, k}, "binom");
    }
    Expect("}");
    return inner;
  }

  // A command argument: a brace group or one token (\frac12, \sqrt3).
  int32_t ParseArgument() {
    if (IsChar("{")) return ParseGroup();
    if (std::optional<int32_t> digit = FirstDigit()) return *digit;
    return ParsePrimary();
  }

  int32_t ParseFunctionArgument() {
    if (IsChar("(")) return ParsePrimary();
    if (IsChar("{")) return ParseGroup();
    // \sin 2x, \sin b \cos a: the factors up to the next operator or function.
    std::vector<int32_t> factors{ParsePower()};
    while (StartsFactor() && !(Peek().type == Tok::kCmd && IsFunctionName(Peek().text)) &&
           !IsChar("(")) {
      factors.push_back(ParsePower());
    }
    return factors.size() == 1 ? factors[0] : Make(Kind::kMul, std::move(factors));
  }

  int32_t ParseFunction(std::string name) {
    static constexpr std::pair<std::string_view, std::string_view> kAliases[] = {
        {"arcsin", "asin"}, {"arccos", "acos"}, {"arctan", "atan"}, {"arccot", "acot"},
        {"lg", "log10"}};
    for (auto [from, to] : kAliases) {
      if (name == from) name = std::string(to);
    }
    int32_t power = -1;
    int32_t log_base = -1;
    if (name == "log" && IsChar("_")) {
      ++pos_;
      log_base = ParseArgument();
    }
    if (IsChar("^")) {
      ++pos_;
      power = ParseExponent();
      const Node& p = tree_[power];
      if (p.kind == Kind::kNeg && tree_[p.kids[0]].kind == Kind::kNumber &&
          tree_.numbers[tree_[p.kids[0]].num] == 1 && name.size() == 3 && name[0] != 'l') {
        name = "a" + name;  // \sin^{-1} is arcsin
        power = -1;
      }
    }
    int32_t arg = ParseFunctionArgument();
    int32_t call;
    if (log_base >= 0) {
      int32_t num = Make(Kind::kFunc, {arg}, "ln");
      int32_t den = Make(Kind::kFunc, {log_base}, "ln");
      call = Make(Kind::kMul, {num, Make(Kind::kInv, {den})});
    } else {
      call = Make(Kind::kFunc, {arg}, name == "log" ? "log" : name);
    }
    return power >= 0 ? Make(Kind::kPow, {call, power}) : call;
  }

  // ( ... ) or [ ... ] or a mix: grouping, tuple, or interval.
  int32_t ParseBracketed() {
    DepthGuard guard(&depth_);
    bool left_closed = IsChar("[");
    ++pos_;
    std::vector<int32_t> items;
    if (!IsChar(")") && !IsChar("]")) {
      int32_t content = ParseCommaList(/*semicolons=*/true);
      if (tree_[content].kind == Kind::kList) items = tree_[content].kids;
      else items = {content};
    }
    bool right_closed = IsChar("]");
    if (!IsChar(")") && !IsChar("]")) throw ParseError{"unclosed bracket"};
    ++pos_;
    if (items.size() == 1 && left_closed == right_closed) return items[0];
    if (items.size() == 2 && (left_closed || right_closed)) {
      int32_t node = Make(Kind::kInterval, std::move(items));
      tree_.nodes[node].flags = (left_closed ? kLeftClosed : 0) | (right_closed ? kRightClosed : 0);
      return node;
    }
    if (left_closed != right_closed) throw ParseError{"mismatched brackets"};
    return Make(Kind::kTuple, std::move(items));
  }

  int32_t ParseSet() {
    DepthGuard guard(&depth_);
    ++pos_;  // \{
    std::vector<int32_t> items;
    if (!IsChar("\\}")) {
      int32_t content = ParseSemicolonList();
      if (tree_[content].kind == Kind::kList) items = tree_[content].kids;
      else items = {content};
    }
    Expect("\\}");
    return Make(Kind::kSet, std::move(items));
  }

  int32_t ParseDelimited(std::string_view close_cmd, std::string name) {
    ++pos_;
    ++abs_depth_;
    int32_t inner = ParseAdditive();
    --abs_depth_;
    if (close_cmd == "|") {
      Expect("|");
    } else if (IsCmd(close_cmd)) {
      ++pos_;
    } else {
      throw ParseError{"expected \\" + std::string(close_cmd)};
    }
    return Make(Kind::kFunc, {inner}, std::move(name));
  }

  int32_t ParseEnvironment() {
    ++pos_;  // \begin
    std::string env;
    Expect("{");
    while (!IsChar("}") && Peek().type != Tok::kEnd) env += t_[pos_++].text;
    Expect("}");
    if (env == "array" && IsChar("{")) {  // column spec
      while (!IsChar("}") && Peek().type != Tok::kEnd) ++pos_;
      Expect("}");
    }
    if (env == "cases" || env == "dcases") return ParseCases();
    static constexpr std::string_view kMatrices[] = {"pmatrix", "bmatrix", "Bmatrix", "matrix",
                                                     "smallmatrix", "array", "vmatrix"};
    if (std::find(std::begin(kMatrices), std::end(kMatrices), env) == std::end(kMatrices)) {
      throw ParseError{"unsupported environment " + env};
    }
    std::vector<std::vector<int32_t>> rows(1);
    while (!IsCmd("end")) {
      if (Peek().type == Tok::kEnd) throw ParseError{"unclosed environment"};
      if (IsChar("&")) {
        ++pos_;
        continue;
      }
      if (IsChar("\\\\")) {
        ++pos_;
        rows.emplace_back();
        continue;
      }
      rows.back().push_back(ParseRelation());
      if (!IsChar("&") && !IsChar("\\\\") && !IsCmd("end")) throw ParseError{"bad matrix cell"};
    }
    SkipEnd();
    while (!rows.empty() && rows.back().empty()) rows.pop_back();
    if (rows.empty()) throw ParseError{"empty matrix"};
    std::vector<int32_t> cells;
    for (const auto& row : rows) {
      if (row.size() != rows[0].size()) throw ParseError{"ragged matrix"};
      cells.insert(cells.end(), row.begin(), row.end());
    }
    int32_t node = Make(Kind::kMatrix, std::move(cells));
    tree_.nodes[node].cols = static_cast<int32_t>(rows[0].size());
    return node;
  }

  // \lim_{x \to a} f(x) and \int_a^b f(x)\,dx have no value here (that takes a symbolic
  // engine): read as a name for what follows, up to a relation or a separator, so that
  // "\lim_{x \to 0} \frac{\sin x}{x} = 1" states 1. Run() refuses one that states no value.
  int32_t ParseUnevaluated() {
    unevaluated_name_ = Peek().text;
    ++unevaluated_;
    std::string name = "\\" + unevaluated_name_ + ":";
    ++pos_;
    int depth = 0;
    RelOp op;
    size_t width;
    while (Peek().type != Tok::kEnd) {
      if (depth == 0 && (PeekRelOp(&op, &width) || AtListEnd() || IsChar(",") ||
                         Peek().type == Tok::kAnd || Peek().type == Tok::kOr)) {
        break;
      }
      if (IsChar("(") || IsChar("[") || IsChar("{") || IsChar("\\{")) ++depth;
      if (IsChar(")") || IsChar("]") || IsChar("}") || IsChar("\\}")) --depth;
      if (depth > kMaxDepth) throw ParseError{"nested too deeply"};
      name += Peek().text;
      budget_.SpendBytes(Peek().text.size());
      ++pos_;
    }
    return Make(Kind::kSymbol, {}, std::move(name));
  }

  // How many \lim / \int names are the left side of an equation "... = v" at the top level
  // (the answer, or an element of a list of answers): those whose value is stated.
  int StatedValues(int32_t id) const {
    const Node& n = tree_[id];
    if (n.kind == Kind::kList) {
      int stated = 0;
      for (int32_t kid : n.kids) stated += StatedValues(kid);
      return stated;
    }
    if (n.kind != Kind::kRelation) return 0;
    if (std::any_of(n.ops.begin(), n.ops.end(), [](RelOp op) { return op != RelOp::kEq; })) {
      return 0;
    }
    const Node& lhs = tree_[n.kids[0]];
    bool named = lhs.kind == Kind::kSymbol &&
                 (lhs.name.starts_with("\\lim:") || lhs.name.starts_with("\\int:"));
    return named ? 1 : 0;
  }

  // \end{name}.
  void SkipEnd() {
    ++pos_;
    if (IsChar("{")) {
      while (!IsChar("}") && Peek().type != Tok::kEnd) ++pos_;
      Expect("}");
    }
  }

  // \begin{cases} v_1 & c_1 \\ v_2 & c_2 \end{cases}: a piecewise definition is the set of
  // its (value, condition) pairs, named "cases" so that it equals only another one, with its
  // pieces in any order (equiv.cpp compares sets unordered).
  int32_t ParseCases() {
    std::vector<int32_t> pieces;
    while (!IsCmd("end")) {
      if (Peek().type == Tok::kEnd) throw ParseError{"unclosed environment"};
      if (IsChar("\\\\")) {
        ++pos_;
        continue;
      }
      int32_t value = ParseRelation();
      SkipPunctuation();
      Expect("&");
      int32_t condition = ParseCondition();
      SkipPunctuation();
      pieces.push_back(Make(Kind::kTuple, {value, condition}));
      if (!IsChar("\\\\") && !IsCmd("end")) throw ParseError{"bad case"};
    }
    SkipEnd();
    if (pieces.empty()) throw ParseError{"empty cases"};
    int32_t node = Make(Kind::kSet, std::move(pieces));
    tree_.nodes[node].name = "cases";
    return node;
  }

  // "x < 0", "\text{if } x < 0", "\text{for } x \ge 0", "\text{otherwise}": the words that
  // introduce a condition carry no meaning; "otherwise" stays as a text condition.
  int32_t ParseCondition() {
    while (Peek().type == Tok::kText) {
      std::string word = Lower(Peek().text);
      if (word != "if" && word != "for" && word != "when" && word != "where") break;
      ++pos_;
    }
    if (Peek().type == Tok::kText && IsChar("\\\\", 1)) return ParsePrimary();
    if (Peek().type == Tok::kText && IsCmd("end", 1)) return ParsePrimary();
    return ParseRelation();
  }

  void SkipPunctuation() {
    while (IsChar(",") || IsChar(".") || IsChar(";")) ++pos_;
  }

  // \sum_{k=a}^{b} body (and \prod): the body is the product of factors that follows.
  int32_t ParseSum(bool product) {
    ++pos_;
    if (!IsChar("_") || !IsChar("{", 1)) throw ParseError{"a sum needs _{k=a}^{b}"};
    ++pos_;
    int32_t bounds = ParseGroup();
    const Node& rel = tree_[bounds];
    // The index may be i or e, which read as constants elsewhere.
    Kind index = rel.kind == Kind::kRelation ? tree_[rel.kids[0]].kind : Kind::kNumber;
    if (rel.kind != Kind::kRelation || rel.ops.size() != 1 || rel.ops[0] != RelOp::kEq ||
        (index != Kind::kSymbol && index != Kind::kConst)) {
      throw ParseError{"a sum's lower bound must read k=a"};
    }
    std::string var = tree_[rel.kids[0]].name;
    int32_t lower = rel.kids[1];
    if (!IsChar("^")) throw ParseError{"a sum needs an upper bound"};
    ++pos_;
    int32_t upper = ParseExponent();
    int32_t body = ParseFunctionArgument();
    int32_t node = Make(Kind::kSum, {lower, upper, body}, std::move(var));
    tree_.nodes[node].flags = product ? kProduct : 0;
    return node;
  }

  int32_t ParseCommand() {
    std::string name = Peek().text;
    if (name == "frac") {
      ++pos_;
      int32_t num = ParseArgument();
      int32_t den = ParseArgument();
      int32_t node = Make(Kind::kMul, {num, Make(Kind::kInv, {den})});
      tree_.nodes[node].name = "frac";  // lets the parser spot mixed numbers
      return node;
    }
    if (name == "sqrt") {
      ++pos_;
      if (IsChar("[")) {
        ++pos_;
        int32_t index = ParseAdditive();
        Expect("]");
        int32_t radicand = ParseArgument();
        return Make(Kind::kPow, {radicand, Make(Kind::kInv, {index})});
      }
      return SquareRoot(ParseArgument());
    }
    if (name == "binom" || name == "choose") {
      ++pos_;
      int32_t n = ParseArgument();
      int32_t k = ParseArgument();
      return Make(Kind::kFunc, {n, k}, "binom");
    }
    if (IsFunctionName(name) || name == "acot" || name == "log10") {
      ++pos_;
      return ParseFunction(name);
    }
    if (name == "pi") {
      ++pos_;
      return Make(Kind::kConst, {}, "pi");
    }
    if (name == "infty" || name == "infin") {
      ++pos_;
      return Make(Kind::kConst, {}, "inf");
    }
    if (name == "emptyset" || name == "varnothing") {
      ++pos_;
      return Make(Kind::kEmptySet);
    }
    if (name == "lfloor") return ParseDelimited("rfloor", "floor");
    if (name == "lceil") return ParseDelimited("rceil", "ceil");
    if (name == "lvert" || name == "vert") return ParseDelimited(name == "lvert" ? "rvert" : "vert", "abs");
    if (name == "langle") {
      ++pos_;
      int32_t content = ParseCommaList();
      if (!IsCmd("rangle")) throw ParseError{"expected \\rangle"};
      ++pos_;
      std::vector<int32_t> items = tree_[content].kind == Kind::kList ? tree_[content].kids
                                                                       : std::vector{content};
      return Make(Kind::kTuple, std::move(items));
    }
    if (name == "begin") return ParseEnvironment();
    if (name == "lim" || name == "int") return ParseUnevaluated();
    if (name == "sum" || name == "prod") return ParseSum(name == "prod");
    if (name == "overline" || name == "bar" || name == "vec" || name == "hat" ||
        name == "overrightarrow" || name == "mathbf" || name == "widehat" || name == "angle" ||
        name == "triangle") {
      ++pos_;
      size_t start = pos_;
      if (name != "angle" && name != "triangle") ParseArgument();
      else ParsePrimary();
      std::string id = name + ":";
      for (size_t k = start; k < pos_; ++k) id += t_[k].text;
      budget_.SpendBytes(id.size());  // nested ones copy their tokens again
      return Make(Kind::kSymbol, {}, std::move(id));
    }
    static constexpr std::string_view kRejected[] = {
        "dots", "ldots", "cdots", "vdots", "ddots", "circ",
        "mod",  "pmod",  "bmod",  "cdot", "times", "div", "end", "rfloor", "rceil", "rangle",
        "rvert", "cup",  "cap",   "pm",   "mp",    "quad", "setminus"};
    if (std::find(std::begin(kRejected), std::end(kRejected), name) != std::end(kRejected)) {
      throw ParseError{"unsupported \\" + name};
    }
    // Greek letters and any other name: a symbol.
    ++pos_;
    return Make(Kind::kSymbol, {}, "\\" + name);
  }

  int32_t ParsePrimary() {
    DepthGuard guard(&depth_);
    const Token& t = Peek();
    switch (t.type) {
      case Tok::kNum: {
        std::string text = t.text;
        ++pos_;
        return MakeNumber(text);
      }
      case Tok::kIdent: {
        std::string text = t.text;
        ++pos_;
        if (text == "e" || text == "i") return Make(Kind::kConst, {}, text);
        return Make(Kind::kSymbol, {}, std::move(text));
      }
      case Tok::kText: {
        std::string text = t.text;
        ++pos_;
        return Make(Kind::kText, {}, std::move(text));
      }
      case Tok::kCmd:
        return ParseCommand();
      case Tok::kChar:
        if (t.text == "(" || t.text == "[") return ParseBracketed();
        if (t.text == "{") return ParseGroup();
        if (t.text == "\\{") return ParseSet();
        if (t.text == "|" || t.text == "\\|") return ParseDelimited(t.text == "|" ? "|" : "|", "abs");
        throw ParseError{"unexpected '" + t.text + "'"};
      default:
        throw ParseError{t.type == Tok::kEnd ? "unexpected end" : "unexpected '" + t.text + "'"};
    }
  }

  std::vector<Token> t_;
  size_t pos_ = 0;
  bool lenient_;
  Budget& budget_;
  Tree& tree_;
  int depth_ = 0;
  int abs_depth_ = 0;
  int unevaluated_ = 0;           // \lim and \int read as names (ParseUnevaluated)
  std::string unevaluated_name_;  // the last one's command, for the error
};

// Bits of 10^power, rounded up.
int64_t TenBits(int64_t power) { return power * 10 / 3 + 1; }

// Digits (leading zeros allowed: cpp_int would read them as octal) as an integer.
Integer Parser::ReadDigits(std::string_view digits) {
  size_t nonzero = digits.find_first_not_of('0');
  if (nonzero == std::string_view::npos) return 0;
  budget_.Spend(ReadDigitsCost(digits.size() - nonzero));
  std::string_view significant = digits.substr(nonzero);
  // Up to 19 digits fit in 64 bits: no string copy and no base conversion of Boost's.
  if (significant.size() <= 19 && std::all_of(significant.begin(), significant.end(), IsDigit)) {
    uint64_t value = 0;
    for (char c : significant) value = value * 10 + static_cast<uint64_t>(c - '0');
    return Integer(value);
  }
  return Integer(std::string(significant));
}

// 10^power, paid for.
Integer Parser::PowerOfTen(int64_t power) {
  budget_.Spend(PowerCost(TenBits(power)));
  if (power == 0) return 1;  // every integer's scale
  return boost::multiprecision::pow(Integer(10), static_cast<unsigned>(power));
}

// value * 10^exponent in lowest terms. A power of ten shares only 2s and 5s with the digits:
// they are divided out directly, because a gcd of two long numbers is the expensive part of
// rational arithmetic.
Rational Parser::Decimal(Integer value, int64_t exponent) {
  if (exponent >= 0 || value == 0) {
    Integer scale = PowerOfTen(std::max<int64_t>(exponent, 0));
    budget_.Spend(PowerCost(Bits(value) + Bits(scale)));  // the product, priced like a power
    return Rational(exponent > 0 ? Integer(value * scale) : std::move(value));
  }
  int64_t k = -exponent;
  int64_t twos = std::min<int64_t>(static_cast<int64_t>(lsb(value)), k);
  value >>= twos;
  int64_t fives = 0;
  while (fives < k && value % 5 == 0) {
    budget_.Spend(2 * LinearCost(Bits(value)));
    value /= 5;
    ++fives;
  }
  budget_.Spend(PowerCost(TenBits(k)));
  Integer den = boost::multiprecision::pow(Integer(5), static_cast<unsigned>(k - fives));
  return Rational::Coprime(std::move(value), den << static_cast<unsigned>(k - twos));
}

// 0.1\overline{6} = 0.1 + 6 / (10 * 9): the repeating block over 10^k (10^r - 1).
int32_t Parser::MakeRepeating(std::string_view head, std::string_view block) {
  budget_.Spend();
  size_t point = head.find('.');
  std::string whole(head.substr(0, point)), fraction(head.substr(point + 1));
  auto places = static_cast<int64_t>(fraction.size());
  Rational value = Decimal(ReadDigits(whole + fraction), -places);
  Integer period = PowerOfTen(static_cast<int64_t>(block.size())) - 1;
  Rational repeat = Rational::Fraction(ReadDigits(block), PowerOfTen(places) * period);
  budget_.Spend(ArithmeticCost(value, repeat));
  // Written with a bar, the value is exact: not a decimal to be rounded.
  return tree_.AddNumber(value + repeat, budget_);
}

int32_t Parser::MakeNumber(std::string_view text) {
  budget_.Spend(1 + static_cast<int64_t>(text.size() / 16));
  if (text.size() * 4 > static_cast<size_t>(budget_.bit_budget())) {
    throw BudgetError{"number longer than the bit budget"};
  }
  size_t bar = text.find('r');
  if (bar != std::string_view::npos) return MakeRepeating(text.substr(0, bar), text.substr(bar + 1));
  std::string digits;
  int64_t exponent = 0;
  size_t e = text.find('e');
  if (e != std::string_view::npos) exponent = std::stoll(std::string(text.substr(e + 1)));
  std::string_view mantissa = text.substr(0, e);
  size_t point = mantissa.find('.');
  bool decimal = point != std::string_view::npos || e != std::string_view::npos;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  if (point != std::string_view::npos) exponent -= static_cast<int64_t>(mantissa.size() - point - 1);
  Integer value = ReadDigits(digits);
  size_t first = digits.find_first_not_of('0');
  auto significant = static_cast<int32_t>(first == std::string::npos ? 1 : digits.size() - first);
  uint8_t flags = decimal ? kDecimal : 0;
  // Beyond the bit budget, 8e99999 is only a magnitude: 8 * 10^99999 as a tree, which the
  // exact evaluator declines and the numeric path evaluates.
  if (Bits(value) + TenBits(std::abs(exponent)) > budget_.bit_budget()) {
    int32_t head = tree_.AddNumber(Rational(std::move(value)), budget_, flags);
    tree_.nodes[head].cols = significant;
    int32_t power = tree_.AddNumber(Rational(std::abs(exponent)), budget_);
    if (exponent < 0) power = Make(Kind::kNeg, {power});
    int32_t ten = tree_.AddNumber(Rational(10), budget_);
    return Make(Kind::kMul, {head, Make(Kind::kPow, {ten, power})});
  }
  int32_t node = tree_.AddNumber(Decimal(std::move(value), exponent), budget_, flags);
  tree_.nodes[node].cols = significant;
  // Decimal places as written (0.6670 has 4, 1.5e3 has -2): a rounded answer's precision.
  tree_.nodes[node].places = static_cast<int16_t>(std::clamp<int64_t>(-exponent, -9999, 9999));
  return node;
}

void RenderInto(const Tree& tree, int32_t id, std::string* out, int depth) {
  const Node& n = tree[id];
  if (depth > 60 || out->size() > 4000) {
    *out += "...";
    return;
  }
  auto list = [&](std::string_view open, std::string_view sep, std::string_view close) {
    *out += open;
    for (size_t k = 0; k < n.kids.size(); ++k) {
      if (k) *out += sep;
      RenderInto(tree, n.kids[k], out, depth + 1);
    }
    *out += close;
  };
  switch (n.kind) {
    case Kind::kNumber: {
      const Rational& r = tree.numbers[n.num];
      if (r.Bits() > 256) *out += "<big>";
      else *out += r.str();
      break;
    }
    case Kind::kSymbol:
    case Kind::kConst:
      *out += n.name;
      break;
    case Kind::kText:
      *out += "\\text{" + n.name + "}";
      break;
    case Kind::kAdd: list("(", " + ", ")"); break;
    case Kind::kMul: list("(", "*", ")"); break;
    case Kind::kNeg: list("-", "", ""); break;
    case Kind::kInv: list("1/", "", ""); break;
    case Kind::kPow: list("(", "^", ")"); break;
    case Kind::kFunc: list(n.name + "(", ", ", ")"); break;
    case Kind::kPercent: list("", "", "%"); break;
    case Kind::kTuple: list("(", ", ", ")"); break;
    case Kind::kSet: list("{", ", ", "}"); break;
    case Kind::kList: list("", ", ", ""); break;
    case Kind::kInterval:
      list((n.flags & kLeftClosed) ? "[" : "(", ", ", (n.flags & kRightClosed) ? "]" : ")");
      break;
    case Kind::kUnion: list("", " U ", ""); break;
    case Kind::kIntersect: list("", " n ", ""); break;
    case Kind::kMatrix: {
      *out += "[";
      for (size_t k = 0; k < n.kids.size(); ++k) {
        if (k) *out += (n.cols && k % n.cols == 0) ? "; " : ", ";
        RenderInto(tree, n.kids[k], out, depth + 1);
      }
      *out += "]";
      break;
    }
    case Kind::kRelation: {
      static constexpr std::string_view kOps[] = {" = ", " < ", " > ", " <= ",
                                                  " >= ", " != ", " ~ ", " in "};
      for (size_t k = 0; k < n.kids.size(); ++k) {
        if (k) *out += kOps[static_cast<int>(n.ops[k - 1])];
        RenderInto(tree, n.kids[k], out, depth + 1);
      }
      break;
    }
    case Kind::kPlusMinus: list(n.kids.size() == 1 ? "+-" : "(", " +- ", n.kids.size() == 1 ? "" : ")"); break;
    case Kind::kRatio: list("", ":", ""); break;
    case Kind::kEmptySet: *out += "{}"; break;
    case Kind::kSum: list((n.flags & kProduct) ? "prod(" + n.name + ", " : "sum(" + n.name + ", ", ", ", ")"); break;
  }
}

// Most answers and golds are a plain integer ("42"): one number node, the tree the lexer and
// the grammar would build after passing it down a dozen levels. Up to 18 digits fit in 64 bits.
bool ParsePlainInteger(std::string_view text, Budget& budget, Tree* tree) {
  constexpr size_t kMaxDigits = 18;
  if (text.empty() || text.size() > kMaxDigits ||
      !std::all_of(text.begin(), text.end(), IsDigit)) {
    return false;
  }
  budget.SpendBytes(text.size());
  uint64_t value = 0;
  for (char c : text) value = value * 10 + static_cast<uint64_t>(c - '0');
  tree->root = tree->AddNumber(Rational(Integer(value)), budget);
  // Significant digits as MakeNumber counts them: leading zeros are not, a lone 0 is one.
  size_t first = text.find_first_not_of('0');
  size_t significant = first == std::string_view::npos ? 1 : text.size() - first;
  tree->nodes[tree->root].cols = static_cast<int32_t>(significant);
  return true;
}

}  // namespace

int32_t Tree::AddNumber(Rational value, Budget& budget, uint8_t flags) {
  Node node{Kind::kNumber};
  node.flags = flags;
  node.num = static_cast<int32_t>(numbers.size());
  budget.SpendMemory(sizeof(Rational));
  numbers.push_back(std::move(value));
  return Add(std::move(node), budget);
}

void Parse(std::string_view text, bool lenient, Budget& budget, Tree* tree) {
  if (ParsePlainInteger(text, budget, tree)) return;
  Lexer lexer(text, budget);
  std::vector<Token> tokens = lexer.Run();
  if (tokens.size() == 1) throw ParseError{"empty answer"};
  // About a node per token: one allocation, not a series of copies as the tree grows.
  tree->nodes.reserve(tokens.size() + 16);
  tree->numbers.reserve(static_cast<size_t>(std::count_if(
      tokens.begin(), tokens.end(), [](const Token& t) { return t.type == Tok::kNum; })));
  Parser parser(std::move(tokens), lenient, budget, tree);
  tree->root = parser.Run();
}

std::string Render(const Tree& tree, int32_t node) {
  std::string out;
  RenderInto(tree, node, &out, 0);
  return out;
}

}  // namespace rl::rewards::math::internal

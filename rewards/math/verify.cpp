// Verifier::Check: extract, normalise, parse both sides, compare; every failure is a verdict.
#include "rewards/math/verify.h"

#include <algorithm>
#include <exception>
#include <iterator>
#include <new>

#include "common/utf8.h"
#include "rewards/math/internal.h"

namespace rl::rewards::math {
namespace {

using internal::Budget;
using internal::BudgetError;
using internal::ParseError;
using internal::Tree;

CheckResult Make(Verdict verdict, std::string detail = {}) {
  CheckResult result;
  result.verdict = verdict;
  result.detail = std::move(detail);
  return result;
}

// Trailing sentence punctuation and a leading "x \in" are not part of an answer.
std::string_view TrimAnswer(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '.' ||
                        s.back() == ',' || s.back() == ';')) {
    s.remove_suffix(1);
  }
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n')) s.remove_prefix(1);
  return s;
}

// With options.strict off, one free symbol that only the prediction has may stand for the
// one that only the gold has: f(y) equals f(x).
std::vector<std::string> Renaming(const Tree& gold, const Tree& pred, bool strict,
                                  Budget& budget) {
  if (strict) return {};
  std::vector<std::string> g = internal::Symbols(gold, gold.root, budget);
  std::vector<std::string> p = internal::Symbols(pred, pred.root, budget);
  std::vector<std::string> only_g, only_p;
  std::set_difference(g.begin(), g.end(), p.begin(), p.end(), std::back_inserter(only_g));
  std::set_difference(p.begin(), p.end(), g.begin(), g.end(), std::back_inserter(only_p));
  if (only_g.size() != 1 || only_p.size() != 1) return {};
  return {only_p[0], only_g[0]};
}

// "1,22" and "0,111" written alone are decimal commas; "7,425" stays thousands and "1,2"
// (one digit after the comma) stays a list of two answers.
std::string DecimalComma(std::string s) {
  size_t comma = s.find(',');
  if (comma == std::string::npos || comma == 0 || s.find(',', comma + 1) != std::string::npos) {
    return s;
  }
  size_t start = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  auto digits = [&](size_t from, size_t to) {
    if (from >= to) return false;
    for (size_t k = from; k < to; ++k) {
      if (s[k] < '0' || s[k] > '9') return false;
    }
    return true;
  };
  if (!digits(start, comma) || !digits(comma + 1, s.size())) return s;
  size_t decimals = s.size() - comma - 1;
  bool zero_head = s.compare(start, comma - start, "0") == 0;
  if ((decimals == 2 || decimals > 3) || zero_head) s[comma] = '.';
  return s;
}

// "(B)", "\text{(B)} 15", "\textbf{(B) }15": the choice label a gold starts with.
std::optional<char> ChoiceLabel(std::string_view gold) {
  for (std::string_view prefix : {"\\textbf{", "\\text{", "\\mathrm{"}) {
    if (gold.starts_with(prefix)) {
      gold.remove_prefix(prefix.size());
      break;
    }
  }
  while (!gold.empty() && gold.front() == ' ') gold.remove_prefix(1);
  if (gold.size() >= 3 && gold[0] == '(' && gold[1] >= 'A' && gold[1] <= 'Z' && gold[2] == ')') {
    return gold[1];
  }
  return std::nullopt;
}

// Normalisations, UTF-8 checks and renderings are linear passes, charged by length.
std::string PlainText(std::string_view s, Budget& budget) {
  budget.SpendMemory(s.size());  // a copy
  return internal::NormalizeText(s);
}

bool ValidUtf8(std::string_view s, Budget& budget) {
  budget.SpendBytes(s.size());
  return common::utf8::IsValid(s);
}

// A few thousand characters, then "..." for each node left.
std::string Rendered(const Tree& tree, Budget& budget) {
  budget.Spend(1 + static_cast<int64_t>(tree.nodes.size() / 4));
  return internal::Render(tree, tree.root);
}

CheckResult CheckChoice(std::string_view completion, std::string_view gold,
                        const VerifierOptions& options, Budget& budget) {
  std::string g = PlainText(gold, budget);
  std::optional<std::string> choice = internal::ExtractChoice(completion, options, budget);
  if (!choice) return Make(Verdict::kNoAnswer, "no choice label found");
  CheckResult result;
  result.extracted = *choice;
  result.pred_canonical = internal::NormalizeText(*choice);
  result.gold_canonical = g;
  result.verdict = result.pred_canonical == g ? Verdict::kCorrect : Verdict::kIncorrect;
  return result;
}

CheckResult CheckUnguarded(std::string_view completion, std::string_view gold,
                           const VerifierOptions& options, Budget& budget) {
  if (gold.size() > static_cast<size_t>(options.node_budget) * 64) {
    throw BudgetError{"gold answer longer than the node budget allows"};
  }
  if (!ValidUtf8(gold, budget)) return Make(Verdict::kInvalidGold, "gold is not valid UTF-8");
  if (!options.choices.empty()) return CheckChoice(completion, gold, options, budget);

  // A plain gold such as "1,22" is a number with a decimal comma, not a pair.
  std::string gold_text =
      internal::NormalizeMath(TrimAnswer(internal::ExtractGold(gold, budget)), budget);
  if (gold_text == TrimAnswer(gold)) gold_text = DecimalComma(gold_text);
  Tree gold_tree;
  std::string gold_error;
  try {
    internal::Parse(gold_text, /*lenient=*/true, budget, &gold_tree);
  } catch (const ParseError& e) {
    gold_error = e.what;
  }

  std::optional<internal::Extracted> extracted =
      internal::ExtractAnswer(completion, options, budget);
  CheckResult result;
  if (gold_error.empty()) result.gold_canonical = Rendered(gold_tree, budget);
  if (!extracted) {
    if (!gold_error.empty()) return Make(Verdict::kInvalidGold, "gold: " + gold_error);
    result.verdict = Verdict::kNoAnswer;
    result.detail = "no answer found in the completion";
    return result;
  }
  result.extracted = extracted->text;
  if (!ValidUtf8(extracted->text, budget)) {
    result.verdict = Verdict::kUnparseableAnswer;
    result.detail = "answer is not valid UTF-8";
    return result;
  }
  std::string pred_text = internal::NormalizeMath(TrimAnswer(extracted->text), budget);
  // The same text is the same answer, even where our parser has no reading of it.
  std::string gold_plain = PlainText(gold_text, budget);
  std::string pred_plain = PlainText(pred_text, budget);
  if (!gold_plain.empty() && gold_plain == pred_plain &&
      !extracted->hedged) {
    result.verdict = Verdict::kCorrect;
    result.pred_canonical = gold_error.empty() ? result.gold_canonical : gold_plain;
    return result;
  }
  // A multiple-choice gold "\textbf{(B) }15" also accepts the label alone.
  if (std::optional<char> label = ChoiceLabel(gold_text)) {
    char lower = static_cast<char>(*label - 'A' + 'a');
    if (pred_plain == std::string(1, lower) || pred_plain == std::string{'(', lower, ')'}) {
      result.verdict = Verdict::kCorrect;
      return result;
    }
  }
  if (!gold_error.empty()) {
    result.verdict = Verdict::kInvalidGold;
    result.detail = "gold: " + gold_error;
    return result;
  }
  // "\boxed{3} or \boxed{4}" hedges between answers, unless the gold itself has several.
  internal::Prepare(&gold_tree, budget);
  internal::Kind gold_kind = gold_tree[gold_tree.root].kind;
  if (extracted->hedged && gold_kind != internal::Kind::kList && gold_kind != internal::Kind::kSet) {
    result.verdict = Verdict::kIncorrect;
    result.detail = "several different final answers joined by 'or'";
    return result;
  }
  Tree pred_tree;
  try {
    internal::Parse(pred_text, /*lenient=*/false, budget, &pred_tree);
  } catch (const ParseError& e) {
    result.verdict = Verdict::kUnparseableAnswer;
    result.detail = e.what;
    return result;
  }
  result.pred_canonical = Rendered(pred_tree, budget);
  internal::Prepare(&pred_tree, budget);
  internal::CompareContext context{options, budget, gold_tree, pred_tree,
                                   Renaming(gold_tree, pred_tree, options.strict, budget)};
  result.verdict = internal::Equivalent(context) ? Verdict::kCorrect : Verdict::kIncorrect;
  return result;
}

// Every failure inside is a verdict: Check never throws.
CheckResult CheckGuarded(std::string_view completion, std::string_view gold,
                         const VerifierOptions& options, Budget& budget) {
  try {
    return CheckUnguarded(completion, gold, options, budget);
  } catch (const BudgetError& e) {
    return Make(Verdict::kBudgetExceeded, e.what);
  } catch (const ParseError& e) {
    return Make(Verdict::kUnparseableAnswer, e.what);
  } catch (const std::bad_alloc&) {
    return Make(Verdict::kBudgetExceeded, "out of memory");
  } catch (const std::exception& e) {
    return Make(Verdict::kUnparseableAnswer, std::string("internal: ") + e.what());
  } catch (...) {
    return Make(Verdict::kUnparseableAnswer, "internal error");
  }
}

}  // namespace

std::string_view ToString(Verdict verdict) {
  switch (verdict) {
    case Verdict::kCorrect: return "correct";
    case Verdict::kIncorrect: return "incorrect";
    case Verdict::kNoAnswer: return "no_answer";
    case Verdict::kUnparseableAnswer: return "unparseable_answer";
    case Verdict::kInvalidGold: return "invalid_gold";
    case Verdict::kBudgetExceeded: return "budget_exceeded";
  }
  return "unknown";
}

std::string_view ToString(Extraction extraction) {
  switch (extraction) {
    case Extraction::kAnswerTag: return "answer_tag";
    case Extraction::kBoxed: return "boxed";
    case Extraction::kAnchor: return "anchor";
    case Extraction::kMathEnv: return "math_env";
    case Extraction::kNumber: return "number";
  }
  return "unknown";
}

Verifier::Verifier(VerifierOptions options) : options_(std::move(options)) {}

CheckResult Verifier::Check(std::string_view completion, std::string_view gold) const {
  Budget budget(options_);
  CheckResult result = CheckGuarded(completion, gold, options_, budget);
  result.nodes = budget.spent();
  return result;
}

}  // namespace rl::rewards::math

// Equivalence of a predicted answer and a gold answer, both parsed.
//
// Structures first (lists and sets unordered, tuples ordered, intervals bracket-sensitive,
// unions unordered, matrices element-wise, relations by their solution sets or as multiples
// of each other), then scalars: exact rationals when both sides have them, decimal rounding
// when a side is written as a decimal, else values at the sample points.
#include <algorithm>
#include <bit>
#include <cmath>

#include "rewards/math/internal.h"

namespace rl::rewards::math::internal {
namespace {

struct Ref {
  const Tree* tree;
  int32_t id;
  const Node& node() const { return (*tree)[id]; }
  Kind kind() const { return node().kind; }
  Ref kid(size_t k) const { return {tree, node().kids[k]}; }
};

bool IsInequality(RelOp op) {
  return op == RelOp::kLt || op == RelOp::kGt || op == RelOp::kLe || op == RelOp::kGe ||
         op == RelOp::kNe;
}

// Significant digits of the least precise decimal literal in a subtree (0: none).
int DecimalDigits(const Tree& tree, int32_t id, Budget& budget) {
  budget.Spend();
  const Node& n = tree[id];
  if (n.kind == Kind::kNumber) return (n.flags & kDecimal) ? n.cols : 0;
  int best = 0;
  for (int32_t k : n.kids) {
    int d = DecimalDigits(tree, k, budget);
    if (d > 0 && (best == 0 || d < best)) best = d;
  }
  return best;
}

// Left-hand sides that name a quantity (x, f(x), f'(2), |AB|, a_3, (p,q), A:B) make "lhs = v" an
// assignment whose value is v; sums and numbers make it an equation.
bool NameLike(Ref r, Budget& budget) {
  budget.Spend();
  switch (r.kind()) {
    case Kind::kSymbol:
    case Kind::kTuple:
    case Kind::kRatio:
      return true;
    case Kind::kFunc:
      return r.node().name == "abs" || r.node().name.size() == 1;
    case Kind::kMul:  // AB, \frac{NO}{BO}, f(3)
      if (r.node().name == "call") return true;
      for (size_t k = 0; k < r.node().kids.size(); ++k) {
        Ref kid = r.kid(k);
        if (kid.kind() == Kind::kInv) kid = kid.kid(0);
        if (!NameLike(kid, budget)) return false;
      }
      return true;
    default:
      return false;
  }
}

// A spelling of a subtree that ignores the order of sums and products: the last resort for
// expressions that have no value at the sample points (sums up to a symbolic n). Each level
// copies its kids' spellings: charged by their length.
std::string Canonical(Ref r, Budget& budget, int depth = 0) {
  if (depth > 200) throw BudgetError{"expression nested too deeply"};
  const Node& n = r.node();
  if (n.kind == Kind::kNumber) {
    budget.Spend(WriteDigitsCost((*r.tree).numbers[n.num]));
    return (*r.tree).numbers[n.num].str();
  }
  std::vector<std::string> kids;
  for (size_t k = 0; k < n.kids.size(); ++k) kids.push_back(Canonical(r.kid(k), budget, depth + 1));
  if (n.kind == Kind::kAdd || n.kind == Kind::kMul) std::sort(kids.begin(), kids.end());
  std::string out = std::to_string(static_cast<int>(n.kind)) + n.name + "(";
  for (const std::string& kid : kids) out += kid + ",";
  for (RelOp op : n.ops) out += std::to_string(static_cast<int>(op));
  budget.SpendBytes(out.size() * (1 + std::bit_width(kids.size())));  // the sort and copies
  return out + std::to_string(n.flags) + ")";
}

bool HasInfinity(Ref r, Budget& budget) {
  budget.Spend();
  if (r.kind() == Kind::kConst && r.node().name == "inf") return true;
  for (size_t k = 0; k < r.node().kids.size(); ++k) {
    if (HasInfinity(r.kid(k), budget)) return true;
  }
  return false;
}

class Comparer {
 public:
  explicit Comparer(CompareContext& context) : c_(context) {}

  bool Equal(Ref g, Ref p, int depth = 0) {
    if (depth > 64) throw BudgetError{"structure nested too deeply"};
    c_.budget.Spend();
    g = Unwrap(g);
    p = Unwrap(p);
    if (std::optional<bool> same = InGoldBase(g, p)) return *same;
    Kind gk = g.kind(), pk = p.kind();
    if (gk == Kind::kRelation) return GoldRelation(g, p, depth);
    if (pk == Kind::kRelation) {
      std::optional<Ref> value = ValueOf(p, /*gold=*/false);
      if (value) return Equal(g, *value, depth + 1);
      if (c_.options.interval_accepts_inequality && IsIntervalLike(g)) {
        return RelationMatchesIntervals(p, g);
      }
      return false;
    }
    if (gk == Kind::kText || pk == Kind::kText) {
      if (gk != pk) return false;
      c_.budget.SpendBytes(g.node().name.size() + p.node().name.size());
      return NormalizeText(g.node().name) == NormalizeText(p.node().name);
    }
    if (IsCases(g) != IsCases(p)) return false;  // a piecewise definition is no plain set
    if (gk == Kind::kList || gk == Kind::kSet) {
      if (gk == Kind::kSet && pk == Kind::kTuple) return false;
      if (gk == Kind::kList && pk == Kind::kTuple) return Ordered(g, p, depth);
      if (pk == Kind::kList || pk == Kind::kSet) return Unordered(g, p, depth);
      return false;
    }
    if (IsVector(g) && IsVector(p) && (gk == Kind::kMatrix) != (pk == Kind::kMatrix)) {
      return Ordered(g, p, depth);  // (1, 2) and a one-column or one-row matrix
    }
    if (gk == Kind::kTuple) {
      if (pk == Kind::kTuple || pk == Kind::kList) return Ordered(g, p, depth);
      if (pk == Kind::kInterval || pk == Kind::kUnion) return Intervals(g, p);
      return false;
    }
    if (IsIntervalLike(g) && gk != Kind::kTuple) {
      if (IsIntervalLike(p) || pk == Kind::kSet) return Intervals(g, p);
      return false;
    }
    if (gk == Kind::kMatrix) {
      if (pk != Kind::kMatrix || g.node().cols != p.node().cols ||
          g.node().kids.size() != p.node().kids.size()) {
        return false;
      }
      for (size_t k = 0; k < g.node().kids.size(); ++k) {
        if (!Equal(g.kid(k), p.kid(k), depth + 1)) return false;
      }
      return true;
    }
    if (gk == Kind::kRatio && pk == Kind::kRatio) return Ratios(g, p);
    if ((gk == Kind::kRatio) != (pk == Kind::kRatio) && !IsStructure(gk == Kind::kRatio ? pk : gk)) {
      return RatioAndValue(gk == Kind::kRatio ? g : p, gk == Kind::kRatio ? p : g);  // 2:3 vs 2/3
    }
    if (IsStructure(pk) || IsStructure(gk)) return false;
    return Scalars(g, p);
  }

 private:
  static bool IsStructure(Kind k) {
    return k == Kind::kTuple || k == Kind::kSet || k == Kind::kList || k == Kind::kInterval ||
           k == Kind::kUnion || k == Kind::kIntersect || k == Kind::kMatrix ||
           k == Kind::kEmptySet || k == Kind::kRelation || k == Kind::kRatio;
  }
  static bool IsCases(Ref r) { return r.kind() == Kind::kSet && r.node().name == "cases"; }
  static bool IsVector(Ref r) {
    const Node& n = r.node();
    if (n.kind == Kind::kTuple) return true;
    return n.kind == Kind::kMatrix && (n.cols == 1 || n.cols == static_cast<int32_t>(n.kids.size()));
  }
  static bool IsIntervalLike(Ref r) {
    Kind k = r.kind();
    return k == Kind::kInterval || k == Kind::kUnion || k == Kind::kEmptySet ||
           (k == Kind::kTuple && r.node().kids.size() == 2);
  }

  // A gold written in base b (1011_2) fixes the base: a plain integer prediction whose digits
  // are all base-b digits is read in that base (1011 is 11). A prediction with its own
  // subscript was read in that base by the parser, so 1011_3 and 1011_{10} stay wrong; one
  // with a digit >= b can only be a base-10 value and is compared as one (nullopt).
  std::optional<bool> InGoldBase(Ref g, Ref p) {
    const Node& gn = g.node();
    const Node& pn = p.node();
    if (gn.kind != Kind::kNumber || !(gn.flags & kBased) || pn.kind != Kind::kNumber ||
        pn.flags != 0) {
      return std::nullopt;
    }
    const Rational& written = p.tree->numbers[pn.num];
    if (!written.IsInteger() || written.Sign() < 0) return std::nullopt;
    c_.budget.Spend(WriteDigitsCost(written));
    const std::string digits = written.num().str();
    Integer value = 0;
    for (char c : digits) {
      if (c - '0' >= gn.cols) return std::nullopt;
      c_.budget.Spend(LinearCost(Bits(value)));
      value = value * gn.cols + (c - '0');
    }
    const Rational& gold = g.tree->numbers[gn.num];
    c_.budget.Spend(CompareCost(gold, Rational(value)));
    return gold.num() == value;
  }

  // One-element lists, "x \in S" and groupings read as their content.
  Ref Unwrap(Ref r) {
    while (true) {
      const Node& n = r.node();
      if ((n.kind == Kind::kList) && n.kids.size() == 1) {
        r = r.kid(0);
      } else if (n.kind == Kind::kRelation && n.ops.size() == 1 && n.ops[0] == RelOp::kIn) {
        r = r.kid(1);
      } else {
        return r;
      }
    }
  }

  // The value a relation states: "x = 5" -> 5, "x = 5+5+1 = 11" -> 11, "x \approx 3" -> 3.
  // nullopt for equations and inequalities. A prediction "1/2 = 5/10" (no symbols on the
  // left) also states its right side; a gold "7 = 11a+c" is an equation.
  std::optional<Ref> ValueOf(Ref r, bool gold) {
    const Node& n = r.node();
    c_.budget.SpendBytes(n.ops.size());
    size_t approx = n.ops.size();
    for (size_t k = 0; k < n.ops.size(); ++k) {
      if (n.ops[k] == RelOp::kApprox) {
        approx = k;
        break;
      }
      if (n.ops[k] != RelOp::kEq) return std::nullopt;
    }
    if (approx == 0) return r.kid(1);
    if (approx >= 2) return r.kid(approx);
    Ref lhs = r.kid(0);
    if (NameLike(lhs, c_.budget) || (!gold && !HasSymbols(lhs))) return r.kid(1);
    return std::nullopt;
  }

  bool GoldRelation(Ref g, Ref p, int depth) {
    const Node& n = g.node();
    bool inequality = std::any_of(n.ops.begin(), n.ops.end(), IsInequality);
    if (inequality) {
      if (p.kind() == Kind::kRelation) return Inequalities(g, p);
      if (IsIntervalLike(p)) return RelationMatchesIntervals(g, p);
      if (p.kind() == Kind::kList || p.kind() == Kind::kTuple) return SameOrder(g, p);
      return false;
    }
    std::optional<Ref> value = ValueOf(g, /*gold=*/true);
    if (p.kind() == Kind::kRelation) {
      std::optional<Ref> pred_value = ValueOf(p, /*gold=*/false);
      if (value && pred_value && SameNames(g, p) && Equal(*value, *pred_value, depth + 1)) {
        return true;
      }
      return IsEquation(g) && IsEquation(p) && Proportional(g, p, /*positive=*/false);
    }
    return value && Equal(*value, p, depth + 1);
  }

  // An ordering: "b > a > c" is answered by the list "b, a, c" (names in the chain's order,
  // as "put a, b, c in decreasing order" asks), not by "a, b, c".
  static bool SameOrder(Ref g, Ref p) {
    const Node& n = g.node();
    bool monotone = std::all_of(n.ops.begin(), n.ops.end(), [&](RelOp op) {
      return (op == RelOp::kGt || op == RelOp::kLt) && op == n.ops[0];
    });
    if (!monotone || p.node().kids.size() != n.kids.size()) return false;
    for (size_t k = 0; k < n.kids.size(); ++k) {
      Ref gk = g.kid(k), pk = p.kid(k);
      if (gk.kind() != Kind::kSymbol || pk.kind() != Kind::kSymbol) return false;
      if (gk.node().name != pk.node().name) return false;
    }
    return true;
  }

  // In strict mode two assignments to different plain symbols (x = 1 vs y = 1) differ.
  bool SameNames(Ref g, Ref p) {
    if (g.node().ops.size() != 1 || p.node().ops.size() != 1) return true;
    Ref gl = g.kid(0), pl = p.kid(0);
    if (gl.kind() != Kind::kSymbol || pl.kind() != Kind::kSymbol) return true;
    return gl.node().name == pl.node().name || !c_.options.strict;
  }

  static bool IsEquation(Ref r) {
    return r.node().ops.size() == 1 && r.node().ops[0] == RelOp::kEq;
  }

  // lhs - rhs of both relations are nonzero multiples of each other at every sample point.
  bool Proportional(Ref g, Ref p, bool positive) {
    return ProportionalDiffs(g.kid(0), g.kid(1), p.kid(0), p.kid(1), positive);
  }

  bool ProportionalDiffs(Ref gl, Ref gr, Ref pl, Ref pr, bool positive) {
    std::optional<Complex> ratio;
    int valid = 0;
    for (int point = 0; point < kPoints; ++point) {
      long double scale = 1;
      Complex a = Value(gl, point, &scale, false) - Value(gr, point, &scale, false);
      Complex b = Value(pl, point, &scale, true) - Value(pr, point, &scale, true);
      if (!Finite(a) || !Finite(b)) continue;
      long double tiny = 1e-13L * scale;
      bool a_zero = std::abs(a) <= tiny, b_zero = std::abs(b) <= tiny;
      if (a_zero != b_zero) return false;
      if (a_zero) continue;
      Complex r = b / a;
      if (ratio && std::abs(r - *ratio) > 1e-9L * std::abs(*ratio)) return false;
      ratio = r;
      ++valid;
    }
    if (!ratio) return false;
    if (positive && !(std::fabs(ratio->imag()) <= 1e-9L * std::abs(*ratio) && ratio->real() > 0)) {
      return false;
    }
    return valid > 0;
  }

  // --- inequalities: each adjacent pair of a chain is a constraint "diff > 0" (or >=, !=).
  struct Constraint {
    Ref big, small;
    RelOp kind;  // kGt, kGe or kNe
  };

  std::vector<Constraint> Constraints(Ref r) {
    std::vector<Constraint> out;
    const Node& n = r.node();
    c_.budget.SpendMemory(n.ops.size() * sizeof(Constraint));
    for (size_t k = 0; k < n.ops.size(); ++k) {
      Ref a = r.kid(k), b = r.kid(k + 1);
      switch (n.ops[k]) {
        case RelOp::kLt: out.push_back({b, a, RelOp::kGt}); break;
        case RelOp::kLe: out.push_back({b, a, RelOp::kGe}); break;
        case RelOp::kGt: out.push_back({a, b, RelOp::kGt}); break;
        case RelOp::kGe: out.push_back({a, b, RelOp::kGe}); break;
        case RelOp::kNe: out.push_back({a, b, RelOp::kNe}); break;
        default: out.push_back({a, b, RelOp::kEq}); break;
      }
    }
    return out;
  }

  bool Inequalities(Ref g, Ref p) {
    std::vector<Constraint> gc = Constraints(g), pc = Constraints(p);
    if (gc.size() != pc.size()) return false;
    std::vector<bool> used(pc.size(), false);
    for (const Constraint& a : gc) {
      bool matched = false;
      for (size_t k = 0; k < pc.size() && !matched; ++k) {
        c_.budget.Spend();  // pairs passed over too: there may be many
        const Constraint& b = pc[k];
        if (used[k] || a.kind != b.kind) continue;
        bool positive = a.kind != RelOp::kNe && a.kind != RelOp::kEq;
        if (ProportionalDiffs(a.big, a.small, b.big, b.small, positive)) {
          used[k] = matched = true;
        }
      }
      if (!matched) return false;
    }
    return true;
  }

  // --- intervals
  struct Endpoint {
    std::optional<Ref> value;  // absent: infinite
    int infinity = 0;          // -1, +1
    bool closed = false;
  };
  struct Piece {
    Endpoint lo, hi;
  };

  static int InfinitySign(Ref r) {
    if (r.kind() == Kind::kConst && r.node().name == "inf") return 1;
    if (r.kind() == Kind::kNeg && InfinitySign(r.kid(0)) != 0) return -InfinitySign(r.kid(0));
    return 0;
  }

  static Endpoint MakeEndpoint(Ref r, bool closed) {
    int inf = InfinitySign(r);
    if (inf != 0) return Endpoint{std::nullopt, inf, false};
    return Endpoint{r, 0, closed};
  }

  bool Pieces(Ref r, std::vector<Piece>* out) {
    const Node& n = r.node();
    c_.budget.SpendMemory((1 + n.kids.size()) * sizeof(Piece));
    switch (n.kind) {
      case Kind::kInterval:
      case Kind::kTuple:
        if (n.kids.size() != 2) return false;
        out->push_back({MakeEndpoint(r.kid(0), n.flags & kLeftClosed),
                        MakeEndpoint(r.kid(1), n.flags & kRightClosed)});
        return true;
      case Kind::kUnion:
        for (size_t k = 0; k < n.kids.size(); ++k) {
          if (!Pieces(r.kid(k), out)) return false;
        }
        return true;
      case Kind::kEmptySet:
        return true;
      case Kind::kSet:  // {a} is the degenerate interval [a, a]
        for (size_t k = 0; k < n.kids.size(); ++k) {
          out->push_back({Endpoint{r.kid(k), 0, true}, Endpoint{r.kid(k), 0, true}});
        }
        return true;
      default:
        return false;
    }
  }

  bool SameEndpoint(const Endpoint& a, const Endpoint& b) {
    if (a.infinity != b.infinity) return false;
    if (a.infinity != 0) return true;
    return a.closed == b.closed && Scalars(*a.value, *b.value);
  }

  bool SamePieces(const std::vector<Piece>& a, const std::vector<Piece>& b) {
    if (a.size() != b.size()) return false;
    std::vector<bool> used(b.size(), false);
    for (const Piece& x : a) {
      bool matched = false;
      for (size_t k = 0; k < b.size() && !matched; ++k) {
        c_.budget.Spend();
        if (!used[k] && SameEndpoint(x.lo, b[k].lo) && SameEndpoint(x.hi, b[k].hi)) {
          used[k] = matched = true;
        }
      }
      if (!matched) return false;
    }
    return true;
  }

  bool Intervals(Ref g, Ref p) {
    std::vector<Piece> a, b;
    if (!Pieces(g, &a) || !Pieces(p, &b)) return false;
    Merge(&a);
    Merge(&b);
    return SamePieces(a, b);
  }

  // A piece with the exact values of its finite ends.
  struct Bounded {
    Piece piece;
    std::optional<Rational> lo, hi;
  };

  // Whether piece `a` reaches up to where `b` starts, so that together they are one piece:
  // (-1,0] and [0,1) touch at 0; (1,2) and (2,3) do not (2 is in neither).
  static bool Reaches(const Bounded& a, const Bounded& b) {
    if (a.piece.hi.infinity > 0 || b.piece.lo.infinity < 0) return true;
    if (a.piece.hi.infinity < 0 || b.piece.lo.infinity > 0) return false;
    int order = Compare(*b.lo, *a.hi);
    return order < 0 || (order == 0 && (a.piece.hi.closed || b.piece.lo.closed));
  }

  // Adjacent or overlapping pieces joined into one: [-1,0] \cup [0,1] is [-1,1]. Only when
  // every finite end has an exact value; otherwise the pieces stay as written.
  void Merge(std::vector<Piece>* pieces) {
    if (pieces->size() < 2) return;
    std::vector<Bounded> all;
    c_.budget.SpendMemory(pieces->size() * sizeof(Bounded));
    for (const Piece& p : *pieces) {
      Bounded b{p, {}, {}};
      if (p.lo.value && !(b.lo = ExactValue(*p.lo.value->tree, p.lo.value->id, c_.budget))) return;
      if (p.hi.value && !(b.hi = ExactValue(*p.hi.value->tree, p.hi.value->id, c_.budget))) return;
      all.push_back(std::move(b));
    }
    int64_t compares = static_cast<int64_t>(std::bit_width(all.size()));
    for (const Bounded& b : all) {
      c_.budget.Spend(compares * (1 + (b.lo ? CompareCost(*b.lo, *b.lo) : 0)));
    }
    std::sort(all.begin(), all.end(), [](const Bounded& x, const Bounded& y) {
      if (x.piece.lo.infinity != 0 || y.piece.lo.infinity != 0) {
        return x.piece.lo.infinity < y.piece.lo.infinity;
      }
      int order = Compare(*x.lo, *y.lo);
      return order < 0 || (order == 0 && x.piece.lo.closed && !y.piece.lo.closed);
    });
    std::vector<Piece> merged;
    Bounded current = all[0];
    for (size_t k = 1; k < all.size(); ++k) {
      const Bounded& next = all[k];
      c_.budget.Spend(1 + (next.lo && current.hi ? CompareCost(*next.lo, *current.hi) : 0));
      if (!Reaches(current, next)) {
        merged.push_back(current.piece);
        current = next;
      } else if (Extends(current, next)) {
        current.piece.hi = next.piece.hi;
        current.hi = next.hi;
      } else if (!next.piece.hi.infinity && current.hi && *next.hi == *current.hi) {
        current.piece.hi.closed = current.piece.hi.closed || next.piece.hi.closed;
      }
    }
    merged.push_back(current.piece);
    *pieces = std::move(merged);
  }

  // Whether `b` ends above where `a` ends.
  static bool Extends(const Bounded& a, const Bounded& b) {
    if (a.piece.hi.infinity != 0 || b.piece.hi.infinity != 0) {
      return b.piece.hi.infinity > a.piece.hi.infinity;
    }
    return *b.hi > *a.hi;
  }

  // A chain "lo < E <= hi" or "E >= lo" around one non-constant E, as interval pieces; a
  // bare |x| in the middle gives the two mirrored pieces.
  bool RelationPieces(Ref r, std::vector<Piece>* out) {
    const Node& n = r.node();
    std::optional<size_t> middle;
    for (size_t k = 0; k < n.kids.size(); ++k) {
      if (HasSymbols(r.kid(k)) || InfinitySign(r.kid(k)) != 0) {
        if (InfinitySign(r.kid(k)) != 0) continue;
        if (middle) return false;
        middle = k;
      }
    }
    if (!middle) return false;
    Piece piece{Endpoint{std::nullopt, -1, false}, Endpoint{std::nullopt, 1, false}};
    for (const Constraint& c : Constraints(r)) {
      bool strict = c.kind == RelOp::kGt;
      if (c.kind == RelOp::kNe) {
        if (n.ops.size() != 1) return false;
        Ref value = c.big.id == r.kid(*middle).id ? c.small : c.big;
        out->push_back({Endpoint{std::nullopt, -1, false}, Endpoint{value, 0, false}});
        out->push_back({Endpoint{value, 0, false}, Endpoint{std::nullopt, 1, false}});
        return true;
      }
      if (c.kind != RelOp::kGt && c.kind != RelOp::kGe) return false;
      if (c.big.id == r.kid(*middle).id) piece.lo = MakeEndpoint(c.small, !strict);
      else if (c.small.id == r.kid(*middle).id) piece.hi = MakeEndpoint(c.big, !strict);
      else return false;
    }
    Ref e = r.kid(*middle);
    abs_middle_ = e.kind() == Kind::kFunc && e.node().name == "abs";
    out->push_back(piece);
    return true;
  }

  bool RelationMatchesIntervals(Ref relation, Ref intervals) {
    std::vector<Piece> a, b;
    abs_middle_ = false;
    if (!RelationPieces(relation, &a) || !Pieces(intervals, &b)) return false;
    if (!abs_middle_) {
      Merge(&b);
      return SamePieces(a, b);
    }
    // lo <= |x| <= hi is [-hi, -lo] and [lo, hi]; |x| <= hi alone is [-hi, hi].
    const Piece& positive = a[0];
    if (positive.lo.infinity == -1) {
      return b.size() == 1 && positive.hi.value && SameEndpoint(positive.hi, b[0].hi) &&
             b[0].lo.value && b[0].lo.closed == positive.hi.closed &&
             Negatives(*positive.hi.value, *b[0].lo.value);
    }
    if (b.size() != 2 || !positive.lo.value) return false;
    for (int flip = 0; flip < 2; ++flip) {
      const Piece& bp = b[flip], &bn = b[1 - flip];
      if (!SameEndpoint(positive.lo, bp.lo) || !SameEndpoint(positive.hi, bp.hi)) continue;
      bool hi_ok = bn.hi.value && bn.hi.closed == positive.lo.closed &&
                   Negatives(*positive.lo.value, *bn.hi.value);
      bool lo_ok = positive.hi.infinity != 0
                       ? bn.lo.infinity == -positive.hi.infinity
                       : bn.lo.value && bn.lo.closed == positive.hi.closed &&
                             Negatives(*positive.hi.value, *bn.lo.value);
      if (hi_ok && lo_ok) return true;
    }
    return false;
  }

  bool Negatives(Ref a, Ref b) {
    auto x = ExactValue(*a.tree, a.id, c_.budget);
    auto y = ExactValue(*b.tree, b.id, c_.budget);
    if (x && y) {
      c_.budget.Spend(CompareCost(*x, *y));
      return *x == -*y;
    }
    long double scale = 1;
    Complex u = NumericValue(*a.tree, a.id, 0, c_.budget, &scale);
    Complex v = NumericValue(*b.tree, b.id, 0, c_.budget, &scale);
    return std::abs(u + v) <= 1e-12L * scale;
  }

  // --- lists
  std::vector<Ref> Elements(Ref r) {
    std::vector<Ref> out;
    const Node& n = r.node();
    c_.budget.SpendMemory((1 + n.kids.size()) * sizeof(Ref));
    if (n.kind == Kind::kList || n.kind == Kind::kSet) {
      for (size_t k = 0; k < n.kids.size(); ++k) out.push_back(Unwrap(r.kid(k)));
    } else {
      out.push_back(r);
    }
    return out;
  }

  bool Ordered(Ref g, Ref p, int depth) {
    if (g.node().kids.size() != p.node().kids.size()) return false;
    for (size_t k = 0; k < g.node().kids.size(); ++k) {
      if (!Equal(g.kid(k), p.kid(k), depth + 1)) return false;
    }
    return true;
  }

  // Sets of answers: every gold element has an equal prediction and vice versa
  // (duplicates allowed on either side).
  bool Unordered(Ref g, Ref p, int depth) {
    std::vector<Ref> a = Elements(g), b = Elements(p);
    if (std::optional<bool> exact = ExactSets(a, b)) return *exact;
    // Pairwise matching; every comparison is charged to the node budget.
    std::vector<bool> b_hit(b.size(), false);
    for (Ref x : a) {
      bool found = false;
      for (size_t k = 0; k < b.size(); ++k) {
        c_.budget.Spend();  // pairs passed over too
        if ((found && b_hit[k]) || !Equal(x, b[k], depth + 1)) continue;
        found = true;
        b_hit[k] = true;
      }
      if (!found) return false;
    }
    return std::all_of(b_hit.begin(), b_hit.end(), [](bool hit) { return hit; });
  }

  // Long lists of plain numbers (all divisors of 5040) compare as sorted sets of exact
  // values; nullopt when some element is not an exact number without decimals.
  std::optional<bool> ExactSets(const std::vector<Ref>& a, const std::vector<Ref>& b) {
    if (a.size() + b.size() < 32) return std::nullopt;
    auto values = [&](const std::vector<Ref>& refs) -> std::optional<std::vector<Rational>> {
      c_.budget.SpendMemory(refs.size() * sizeof(Rational));
      std::vector<Rational> out;
      for (Ref r : refs) {
        if (HasDecimal(*r.tree, r.id, c_.budget) || r.kind() == Kind::kPercent) return std::nullopt;
        std::optional<Rational> v = ExactValue(*r.tree, r.id, c_.budget);
        if (!v) return std::nullopt;
        out.push_back(std::move(*v));
      }
      int64_t compares = static_cast<int64_t>(std::bit_width(out.size()));
      for (const Rational& v : out) c_.budget.Spend(compares * CompareCost(v, v));
      std::sort(out.begin(), out.end());
      out.erase(std::unique(out.begin(), out.end()), out.end());
      return out;
    };
    std::optional<std::vector<Rational>> x = values(a);
    if (!x) return std::nullopt;
    std::optional<std::vector<Rational>> y = values(b);
    if (!y) return std::nullopt;
    return *x == *y;
  }

  bool Ratios(Ref g, Ref p) {
    auto gz = IsZero(g.kid(1)), pz = IsZero(p.kid(1));
    if (gz || pz) return Scalars(g.kid(0), p.kid(0)) && Scalars(g.kid(1), p.kid(1));
    // a:b == c:d  <=>  a/b == c/d, compared at the sample points.
    for (int point = 0; point < kPoints; ++point) {
      long double scale = 1;
      Complex x = Value(g.kid(0), point, &scale, false) / Value(g.kid(1), point, &scale, false);
      Complex y = Value(p.kid(0), point, &scale, true) / Value(p.kid(1), point, &scale, true);
      if (!Finite(x) || !Finite(y) || std::abs(x - y) > 1e-10L * std::max<long double>(1, std::abs(x))) {
        return false;
      }
    }
    return true;
  }

  bool RatioAndValue(Ref ratio, Ref value) {
    if (IsZero(ratio.kid(1))) return false;
    for (int point = 0; point < kPoints; ++point) {
      long double scale = 1;
      Complex x = Value(ratio.kid(0), point, &scale, ratio.tree == &c_.pred) /
                  Value(ratio.kid(1), point, &scale, ratio.tree == &c_.pred);
      Complex y = Value(value, point, &scale, value.tree == &c_.pred);
      if (!Finite(x) || !Finite(y) || std::abs(x - y) > 1e-10L * std::max<long double>(1, std::abs(x))) {
        return false;
      }
    }
    return true;
  }

  bool HasSymbols(Ref r) { return internal::HasSymbols(*r.tree, r.id, c_.budget); }

  bool IsZero(Ref r) {
    auto v = ExactValue(*r.tree, r.id, c_.budget);
    return v && *v == 0;
  }

  // --- scalars
  static bool Finite(Complex z) { return std::isfinite(z.real()) && std::isfinite(z.imag()); }

  Complex Value(Ref r, int point, long double* scale, bool pred) {
    return NumericValue(*r.tree, r.id, point, c_.budget, scale,
                        pred && !c_.rename.empty() ? &c_.rename : nullptr);
  }

  bool Scalars(Ref g, Ref p) {
    bool gp = g.kind() == Kind::kPercent, pp = p.kind() == Kind::kPercent;
    if (gp && !pp) {
      // 10% accepts 0.1, and 10 when configured (Math-Verify's reading).
      if (c_.options.percent_accepts_bare_number && Values(g.kid(0), p)) return true;
      return Values(g, p);
    }
    if (pp && !gp) {
      if (c_.options.number_accepts_percent && Values(g, p.kid(0))) return true;
      return Values(g, p);
    }
    return Values(g, p);
  }

  // Decimal literal on a side: equal when within 10^-precision absolutely and, relative to
  // the magnitude, within the decimal's own significant digits (so 1.5e-9 != 1.6e-9).
  bool DecimalClose(long double x, long double y, int digits) {
    long double diff = std::fabs(x - y);
    long double absolute = std::pow(10.0L, -c_.options.precision) * (1 + 1e-9L);
    long double relative = std::max(0.5L * std::pow(10.0L, -(digits - 1)),
                                    std::pow(10.0L, -c_.options.precision)) * (1 + 1e-9L);
    return diff <= absolute && diff <= relative * std::max(std::fabs(x), std::fabs(y));
  }

  // The decimal places of a prediction that is one decimal literal (or its negation) with
  // as many places and significant digits as VerifierOptions::rounded_decimal_digits asks
  // (places alone would let 0.0001 stand for 1/7000); else nullopt.
  std::optional<int> RoundedPlaces(Ref p) const {
    int min_digits = c_.options.rounded_decimal_digits;
    if (min_digits <= 0) return std::nullopt;
    if (p.kind() == Kind::kNeg) p = p.kid(0);
    const Node& n = p.node();
    if (n.kind != Kind::kNumber || !(n.flags & kDecimal) || n.cols < min_digits ||
        n.places < min_digits) {
      return std::nullopt;
    }
    // Beyond 40 places the gold's digits cost more than the answer is worth.
    if (n.places > 40) return std::nullopt;
    return n.places;
  }

  // |value| * 10^places truncated; *rounded gets it rounded half up.
  Integer ScaledDigits(const Rational& value, const Integer& scale, Integer* rounded) {
    c_.budget.Spend(2 * ArithmeticCost(value, Rational(scale)));
    Integer quotient, remainder;
    divide_qr(Integer(abs(value.num()) * scale), value.den(), quotient, remainder);
    *rounded = quotient + (2 * remainder >= value.den() ? 1 : 0);
    return quotient;
  }

  // The prediction is the gold rounded or truncated to `places`, both exact.
  bool RoundedExact(const Rational& gold, const Rational& pred, int places) {
    if (gold.Sign() != pred.Sign() || gold.Sign() == 0) return false;
    c_.budget.Spend(PowerCost(places * 10 / 3 + 1));
    Integer scale = boost::multiprecision::pow(Integer(10), static_cast<unsigned>(places));
    Integer ignored, rounded;
    Integer written = ScaledDigits(pred, scale, &ignored);  // exact: it has `places` places
    Integer truncated = ScaledDigits(gold, scale, &rounded);
    return written == truncated || written == rounded;
  }

  // The same for a gold without an exact value (\sqrt{2}, \pi/4), in long double: at most
  // 15 digits of the scaled gold, where its rounding is still exact.
  bool RoundedNumeric(Ref g, Ref p, int places) {
    std::optional<Rational> pred = ExactValue(*p.tree, p.id, c_.budget);
    long double scale = 1;
    Complex gold = Value(g, 0, &scale, false);
    if (!pred || !Finite(gold) || std::fabs(gold.imag()) > 1e-12L * std::abs(gold)) return false;
    if ((gold.real() < 0) != (pred->Sign() < 0) || gold.real() == 0) return false;
    long double scaled = std::fabs(gold.real()) * std::pow(10.0L, places);
    if (scaled >= 1e15L) return false;
    long double written = std::fabs(pred->To<long double>()) * std::pow(10.0L, places);
    written = std::nearbyint(written);
    return written == std::floor(scaled) || written == std::floor(scaled + 0.5L);
  }

  bool Values(Ref g, Ref p) {
    int digits = DecimalDigits(*g.tree, g.id, c_.budget);
    int pred_digits = DecimalDigits(*p.tree, p.id, c_.budget);
    if (pred_digits > 0 && (digits == 0 || pred_digits < digits)) digits = pred_digits;
    auto x = ExactValue(*g.tree, g.id, c_.budget);
    if (x) {
      auto y = ExactValue(*p.tree, p.id, c_.budget);
      if (y) {
        c_.budget.Spend(CompareCost(*x, *y));
        if (*x == *y) return true;
        if (digits == 0) return false;
        if (std::optional<int> places = RoundedPlaces(p); places && RoundedExact(*x, *y, *places)) {
          return true;
        }
        return DecimalClose(x->To<long double>(), y->To<long double>(), digits);
      }
    }
    bool symbolic = HasSymbols(g) || HasSymbols(p);
    if (std::optional<int> places = RoundedPlaces(p); places && !symbolic && !x) {
      if (RoundedNumeric(g, p, *places)) return true;
    }
    int points = 1;
    if (symbolic) {
      bool steps = HasStepFunction(*g.tree, g.id, c_.budget) ||
                   HasStepFunction(*p.tree, p.id, c_.budget);
      points = kPoints + (steps ? kStepPoints : 0);
    }
    int valid = 0, overflowed = 0;
    bool confirmed = false;
    for (int point = 0; point < points; ++point) {
      long double scale = 1;
      Complex a = Value(g, point, &scale, false);
      Complex b = Value(p, point, &scale, true);
      bool fa = Finite(a), fb = Finite(b);
      if (!fa && !fb) {
        if (a != b) continue;  // NaN (undefined here) decides nothing
        // Both overflowed: only a written \infty is really infinite; an overflow at one
        // point leaves the decision to the others.
        if (HasInfinity(g, c_.budget) && HasInfinity(p, c_.budget)) ++valid;
        else ++overflowed;
        continue;
      }
      if (fa != fb) return false;
      ++valid;
      long double diff = std::abs(a - b);
      if (digits > 0 && !symbolic) {
        if (std::fabs(a.imag()) > 1e-12L || std::fabs(b.imag()) > 1e-12L) {
          if (diff > 1e-12L * scale) return false;
          continue;
        }
        if (!DecimalClose(a.real(), b.real(), digits)) return false;
        continue;
      }
      if (digits > 0) {
        if (diff > std::pow(10.0L, -c_.options.precision) * std::max<long double>(1, std::abs(a))) {
          return false;
        }
        continue;
      }
      long double magnitude = std::max(std::abs(a), std::abs(b));
      bool close = diff <= 1e-12L * magnitude + 1e-16L * scale;
      bool cancellation = scale > 1e6L * magnitude;
      if (!close && !cancellation) return false;
      if (close && !cancellation && confirmed) continue;
      // Equal-looking values (or a long-double result drowned in cancellation) are
      // re-checked with 50 digits before we call them equal: at one point suffices unless
      // cancellation shows up at another.
      confirmed = true;
      std::optional<bool> precise = PreciselyEqual(*g.tree, g.id, *p.tree, p.id, point, c_.budget,
                                                   c_.rename.empty() ? nullptr : &c_.rename);
      if (precise ? !*precise : !close) return false;
    }
    if (valid == 0 && overflowed > 0) throw BudgetError{"values beyond the numeric range"};
    if (valid == 0) return Canonical(g, c_.budget) == Canonical(p, c_.budget);
    return true;
  }

  CompareContext& c_;
  bool abs_middle_ = false;
};

// Copies a subtree choosing + or - for each \pm in it (bit k of `choice` for the k-th).
int32_t CopyChoosing(Tree* tree, int32_t id, uint32_t choice, int* seen, Budget& budget) {
  Node node = (*tree)[id];
  if (node.kind == Kind::kPlusMinus) {
    bool minus = (choice >> (*seen)++) & 1;
    int32_t right = CopyChoosing(tree, node.kids.back(), choice, seen, budget);
    if (minus) right = tree->Add(Node{Kind::kNeg, 0, 0, 0, -1, {}, {right}, {}}, budget);
    if (node.kids.size() == 1) return right;
    int32_t left = CopyChoosing(tree, node.kids[0], choice, seen, budget);
    return tree->Add(Node{Kind::kAdd, 0, 0, 0, -1, {}, {left, right}, {}}, budget);
  }
  for (int32_t& kid : node.kids) kid = CopyChoosing(tree, kid, choice, seen, budget);
  return tree->Add(std::move(node), budget);
}

int CountPlusMinus(const Tree& tree, int32_t id, Budget& budget) {
  budget.Spend();
  const Node& n = tree[id];
  int count = n.kind == Kind::kPlusMinus ? 1 : 0;
  for (int32_t k : n.kids) count += CountPlusMinus(tree, k, budget);
  return count;
}

// "1 \pm \sqrt{19}" -> the list {1 + \sqrt{19}, 1 - \sqrt{19}}, element by element.
void ExpandPlusMinus(Tree* tree, Budget& budget) {
  const Node& root = (*tree)[tree->root];
  bool is_list = root.kind == Kind::kList || root.kind == Kind::kSet;
  std::vector<int32_t> elements = is_list ? root.kids : std::vector<int32_t>{tree->root};
  std::vector<int32_t> expanded;
  bool changed = false;
  for (int32_t element : elements) {
    int count = CountPlusMinus(*tree, element, budget);
    if (count == 0 || count > 4) {
      expanded.push_back(element);
      continue;
    }
    changed = true;
    for (uint32_t choice = 0; choice < (1u << count); ++choice) {
      int seen = 0;
      expanded.push_back(CopyChoosing(tree, element, choice, &seen, budget));
    }
  }
  if (!changed) return;
  Kind kind = is_list ? (*tree)[tree->root].kind : Kind::kList;
  tree->root = tree->Add(Node{kind, 0, 0, 0, -1, {}, std::move(expanded), {}}, budget);
}

// Matrix arithmetic written out (A + B, A B, 2A) becomes one matrix of element expressions.
int32_t FoldMatrices(Tree* tree, int32_t id, Budget& budget, int depth) {
  if (depth > 400) throw BudgetError{"expression nested too deeply"};
  budget.Spend();
  std::vector<int32_t> kids = (*tree)[id].kids;
  for (int32_t& kid : kids) kid = FoldMatrices(tree, kid, budget, depth + 1);
  tree->nodes[id].kids = kids;
  Kind kind = (*tree)[id].kind;
  if (kind != Kind::kAdd && kind != Kind::kMul) return id;
  bool any_matrix = std::any_of(kids.begin(), kids.end(),
                                [&](int32_t k) { return (*tree)[k].kind == Kind::kMatrix; });
  if (!any_matrix) return id;
  auto make = [&](Kind k, std::vector<int32_t> args) {
    return tree->Add(Node{k, 0, 0, 0, -1, {}, std::move(args), {}}, budget);
  };
  int32_t acc = kids[0];
  for (size_t k = 1; k < kids.size(); ++k) {
    const Node a = (*tree)[acc];
    const Node b = (*tree)[kids[k]];
    bool am = a.kind == Kind::kMatrix, bm = b.kind == Kind::kMatrix;
    if ((am && a.cols <= 0) || (bm && b.cols <= 0)) return id;
    Node out{Kind::kMatrix};
    if (kind == Kind::kAdd) {
      if (!am || !bm || a.cols != b.cols || a.kids.size() != b.kids.size()) return id;
      out.cols = a.cols;
      for (size_t e = 0; e < a.kids.size(); ++e) out.kids.push_back(make(Kind::kAdd, {a.kids[e], b.kids[e]}));
    } else if (am && bm) {
      int32_t n = static_cast<int32_t>(a.kids.size()) / a.cols, inner = a.cols, m = b.cols;
      if (static_cast<int32_t>(b.kids.size()) != inner * m) return id;
      out.cols = m;
      for (int32_t i = 0; i < n; ++i) {
        for (int32_t j = 0; j < m; ++j) {
          std::vector<int32_t> terms;
          for (int32_t t = 0; t < inner; ++t) {
            terms.push_back(make(Kind::kMul, {a.kids[i * inner + t], b.kids[t * m + j]}));
          }
          out.kids.push_back(make(Kind::kAdd, std::move(terms)));
        }
      }
    } else {
      const Node& matrix = am ? a : b;
      int32_t scalar = am ? kids[k] : acc;
      out.cols = matrix.cols;
      for (int32_t e : matrix.kids) out.kids.push_back(make(Kind::kMul, {scalar, e}));
    }
    acc = tree->Add(std::move(out), budget);
  }
  return acc;
}

}  // namespace

void Prepare(Tree* tree, Budget& budget) {
  tree->root = FoldMatrices(tree, tree->root, budget, 0);
  ExpandPlusMinus(tree, budget);
}

bool Equivalent(CompareContext& context) {
  Comparer comparer(context);
  return comparer.Equal(Ref{&context.gold, context.gold.root}, Ref{&context.pred, context.pred.root});
}

}  // namespace rl::rewards::math::internal

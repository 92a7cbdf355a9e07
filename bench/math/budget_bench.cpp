// Worst cases of rl::rewards::math::Verifier::Check: hostile answers of up to about 100 KB (huge
// exponents, long digit strings, many numbers, deep nesting, big factorials and powers,
// matrices, large sets) with the CPU time each takes and the verdict it gets. The verdict
// must come from the node and bit budgets, far below the time budget: a shape whose time
// approaches time_budget_ms is a budget that does not charge for its work.
//
//   build/bench/math/math_budget_bench [--reps 3] [--filter substring] [--time-budget-ms 50]
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "rewards/math/verify.h"
#include "tests/math/long_inputs.h"

namespace {

struct Shape {
  std::string name, completion, gold;
  std::vector<std::string> choices = {};  // multiple-choice labels, when the shape needs them
};

using rl::rewards::math::testing::Boxed;
using rl::rewards::math::testing::Join;
using rl::rewards::math::testing::Repeat;
using rl::rewards::math::testing::ThreadCpuMillis;

std::vector<Shape> Shapes() {
  auto n = [](size_t k) { return std::to_string(1000 + k % 9000); };
  auto sym = [](size_t k) { return "x_{" + std::to_string(k) + "}"; };
  std::string list20k = Join(20000, ",", n);
  const std::string prose =
      "We compute $12 \\cdot 7 = 84$ and then \\[ x^2 - 19x + 84 = 0, \\] so the roots are 7 and "
      "12; the result is not yet final, since 0.5 of the cases remain.\n";
  std::string digits16k(16000, '7');
  std::string matrix =
      "\\begin{pmatrix}" +
      Join(60, "\\\\",
           [](size_t) { return Join(60, "&", [](size_t) { return std::string("7"); }); }) +
      "\\end{pmatrix}";
  std::vector<Shape> shapes = {
      {"8e99999", Boxed("8e99999"), "1"},
      {"1e-99999", Boxed("1e-99999"), "0"},
      {"sum of 100 x 8e99999", Boxed(Join(100, "+", [](size_t) { return std::string("8e99999"); })),
       "1"},
      {"product of 100 x 8e99999",
       Boxed(Join(100, "\\cdot ", [](size_t) { return std::string("8e99999"); })), "1"},
      {"list of 100 x 8e99999",
       Boxed(Join(100, ",", [](size_t) { return std::string("8e99999"); })), "1"},
      {"10k x 1.5e19000 summed",
       Boxed(Join(10000, "+", [](size_t) { return std::string("1.5e19000"); })), "1"},
      {"1e-9000 times 100 27-digit decimals",  // verify_fuzz: a long denominator's remainders
       Boxed("1e-9000" + Join(100, "", [](size_t k) {
               return std::string("\\cdot 0.").append(27, char('3' + k % 5));
             })),
       "1"},
      {"10k x 1e-19000 listed",
       Boxed(Join(10000, ",", [](size_t) { return std::string("1e-19000"); })), "1"},
      {"20k numbers listed vs same", Boxed(list20k), list20k},
      {"20k numbers listed vs 1", Boxed(list20k), "1"},
      {"20k numbers as a set", Boxed("\\{" + list20k + "\\}"), "\\{1, 2\\}"},
      {"20k numbers summed", Boxed(Join(20000, "+", n)), "1"},
      {"20k numbers multiplied", Boxed(Join(20000, "\\cdot ", n)), "1"},
      {"20k numbers in prose", Join(20000, " ", n), "1"},
      {"20k decimals listed vs same",
       Boxed(Join(12000, ",", [](size_t k) { return "0." + std::to_string(1000 + k); })),
       Join(12000, ",", [](size_t k) { return "0." + std::to_string(1000 + k); })},
      {"16k-digit number", Boxed(digits16k), "1"},
      {"6 x 16k-digit numbers multiplied",
       Boxed(Join(6, "\\cdot ", [&](size_t) { return digits16k; })), "1"},
      {"16k-digit decimal vs 16k-digit", Boxed("0." + digits16k), "0." + digits16k + "1"},
      {"1k-digit numbers multiplied",
       Boxed(Join(90, "\\cdot ", [](size_t) { return std::string(1000, '9'); })), "1"},
      {"1k-digit fractions summed",
       Boxed(Join(45, "+",
                  [](size_t k) {
                    return "\\frac{" + std::string(1000, '9') + "}{" + std::string(999 - k, '7') +
                           "}";
                  })),
       "1"},
      {"thousands separators", Boxed("1" + Repeat(",000", 4000)), "1"},
      {"repeating decimals",
       Boxed(
           Join(3000, "+", [](size_t) { return std::string("0.\\overline{123456789012345678}"); })),
       "1"},
      {"long repeating head", Boxed("0." + std::string(16000, '1') + "\\overline{3}"), "1"},
      {"base literals", Boxed(Join(5000, "+", [](size_t) { return std::string("1011_2"); })), "1"},
      {"2^{65000}", Boxed("2^{65000}"), "1"},
      {"2^{2^{20}}", Boxed("2^{2^{20}}"), "1"},
      {"many 3^{41000}", Boxed(Join(1000, "+", [](size_t) { return std::string("3^{41000}"); })),
       "1"},
      {"3^{41000}/2^{64000} summed",
       Boxed(Join(200, "+", [](size_t) { return std::string("\\frac{3^{41000}}{2^{64000}}"); })),
       "1"},
      {"3^{20000}/5^{14000} vs 7^{11000}/11^{9000}", Boxed("\\frac{3^{20000}}{5^{14000}}"),
       "\\frac{7^{11000}}{11^{9000}}"},
      {"many 4000!", Boxed(Join(2000, "+", [](size_t) { return std::string("4000!"); })), "1"},
      {"many binom{9000}{4500}",
       Boxed(Join(2000, "+", [](size_t) { return std::string("\\binom{9000}{4500}"); })), "1"},
      {"(10^{100})!", Boxed("(10^{100})!"), "3"},
      {"binom{10^6}{500000}", Boxed("\\binom{1000000}{500000}"), "1"},
      {"sum of 10^{60000} terms", Boxed("\\sum_{k=1}^{100000} 10^{60000}"), "1"},
      {"sum to 100000", Boxed("\\sum_{k=1}^{100000} k^{3}"), "1"},
      {"product to 5000", Boxed("\\prod_{k=1}^{5000} k"), "1"},
      {"nested sums", Boxed("\\sum_{i=1}^{1000}\\sum_{j=1}^{1000} i j"), "1"},
      {"deep parentheses", Boxed(Repeat("(", 150) + "1" + Repeat(")", 150)), "1"},
      {"deep fractions", Boxed(Repeat("\\frac{1}{1+", 150) + "1" + Repeat("}", 150)), "1"},
      {"60x60 matrix squared", Boxed(matrix + matrix), "1"},
      {"300x300 matrix",
       Boxed("\\begin{pmatrix}" +
             Join(300, "\\\\", [](size_t) { return Join(300, "&", [](size_t) { return "1"; }); }) +
             "\\end{pmatrix}"),
       "1"},
      {"60x60 matrix cubed", Boxed(matrix + matrix + matrix), "1"},
      {"3000 symbolic set vs same",
       Boxed("\\{" + Join(3000, ",", [](size_t k) { return "x+" + std::to_string(k); }) + "\\}"),
       "\\{" + Join(3000, ",", [](size_t k) { return "x+" + std::to_string(3000 - k); }) + "\\}"},
      {"10k distinct symbols", Boxed(Join(10000, "+", sym)), Join(10000, "+", sym)},
      {"10k distinct symbols vs 1", Boxed(Join(10000, "+", sym)), "1"},
      {"10k sines",
       Boxed(Join(10000, "+", [](size_t k) { return "\\sin " + std::to_string(k % 90 + 1); })),
       Join(10000, "+", [](size_t k) { return "\\sin " + std::to_string(k % 90 + 1); }) + "+0"},
      {"sines with x",
       Boxed(
           Join(8000, "+", [](size_t k) { return "\\sin(" + std::to_string(k % 90 + 1) + "x)"; })),
       Join(8000, "+", [](size_t k) { return "\\sin(" + std::to_string(k % 90 + 1) + "x)"; }) +
           "+0"},
      {"floor i plus big (canonical)", Boxed("\\lfloor i \\rfloor + 1e19000"),
       "\\lfloor i \\rfloor + 1e19000+0"},
      {"big box then 5000 boxes", Boxed(std::string(50000, 'x')) + Repeat("\\boxed{1}", 5000), "1"},
      {"nested subscripts",
       Boxed(Repeat("x_{", 40) + Join(20000, "+", [](size_t) { return std::string("1"); }) +
             Repeat("}", 40)),
       "1"},
      {"nested overlines",
       Boxed(Repeat("\\overline{", 40) + Join(20000, "+", [](size_t) { return std::string("1"); }) +
             Repeat("}", 40)),
       "1"},
      {"inequality chain",
       Boxed(Join(3000, "<", [](size_t k) { return k % 2 ? "x" : std::to_string(k); })),
       Join(3000, "<", [](size_t k) { return k % 2 ? "x" : std::to_string(k); })},
      {"union of intervals",
       Boxed(Join(
           3000, "\\cup ",
           [](size_t k) { return "(" + std::to_string(k) + "," + std::to_string(k) + ".5)"; })),
       Join(3000, "\\cup ",
            [](size_t k) {
              return "(" + std::to_string(2999 - k) + "," + std::to_string(2999 - k) + ".5)";
            })},
      {"plus-minus list",
       Boxed(Join(3000, ",", [](size_t) { return std::string("1\\pm 2\\pm 3 \\pm 4 \\pm 5"); })),
       "1"},
      {"relation chain", Boxed(Repeat("x=", 20000) + "1"), Repeat("x=", 20000) + "2"},
      {"x^ and 100000 minus signs", Boxed("x^" + Repeat("-", 100000) + "1"), "1"},
      {"20000 plus-minus signs", Boxed(Repeat("1\\pm ", 20000) + "1"), "1"},
      {"nested text",
       Boxed(Repeat("\\text{", 8) + Join(15000, " ", [](size_t) { return std::string("12"); }) +
             Repeat("}", 8)),
       "1"},
      {"100k of 1+", Boxed(Repeat("1+", 50000) + "1"), "50001"},
      {"1 MiB of digits", Boxed(std::string(1 << 20, '7')), "1"},
      {"math envs", Repeat("$x$ and ", 12000), "x"},
      {"500 KB reasoning, boxed", Repeat(prose, 500000 / prose.size()) + Boxed("\\frac{3}{4}"),
       "0.75"},
      {"500 KB reasoning, last number", Repeat(prose, 500000 / prose.size()) + " so 42.", "42"},
      {"unicode answer", Boxed(Repeat("\xc3\xa9", 40000)), "1"},
      // Answer markers and the phrase after them (the extractor's own scans).
      {"20k numbers, then an 8 KB anchor phrase",
       Join(20000, " ", n) + "\nThe answer is: " + Join(1600, "+", n), "1"},
      {"20k numbers, then an anchor of fractions",
       Join(20000, " ", n) + "\nThe answer is " +
           Join(700, "+", [](size_t k) { return "\\frac{" + std::to_string(k) + "}{7}"; }),
       "1"},
      {"12k answer words", Repeat("answer ", 12000), "1"},
      {"12k '# Answer' headings", Repeat("# Answer\n", 12000), "1"},
      {"20k GSM8K answer lines", Join(20000, "\n", [&](size_t k) { return "#### " + n(k); }),
       "1"},
      {"20k boxes of the same answer", Repeat("\\boxed{7} ", 20000), "7"},
      {"20k numbers, a box, 20k numbers", Join(20000, " ", n) + Boxed("5") + Join(20000, " ", n),
       "5"},
      {"3000 touching intervals merged",
       Boxed(Join(3000, "\\cup ",
                  [](size_t k) {
                    return "[" + std::to_string(k) + "," + std::to_string(k + 1) + "]";
                  })),
       "[0,3000]"},
      {"long text answer", Boxed("\\text{" + Repeat("word ", 20000) + "}"),
       "\\text{" + Repeat("word ", 20000) + "}x"},
      {"choices in a long completion", Repeat("A B C D ", 12000), "B", {"A", "B", "C", "D"}},
      {"100 square roots reversed",
       Boxed(Join(100, ",", [](size_t k) { return "\\sqrt{" + std::to_string(100 - k) + "}"; })),
       Join(100, ",", [](size_t k) { return "\\sqrt{" + std::to_string(k + 1) + "}"; })},
      {"60 numbers reversed", Boxed(Join(60, ",", [](size_t k) { return std::to_string(k + 1); })),
       Join(60, ",", [](size_t k) { return std::to_string(60 - k); })},
      {"decimal vs big exact", Boxed("1.5"),
       "\\frac{" + std::string(15000, '3') + "}{" + std::string(14999, '2') + "}"},
      // Issue 15's forms: a bare answer read in the gold's base, a rounded decimal against a
      // long exact gold, piecewise definitions, a limit that states its value.
      {"4000-digit answer in the gold's base", Boxed(Repeat("10", 2000)), "1011_2"},
      {"40-place decimal vs 3000-digit fraction", Boxed("0." + std::string(40, '3')),
       "\\frac{" + std::string(3000, '1') + "}{" + std::string(3001, '3') + "}"},
      {"2000 cases pieces reversed",
       Boxed("\\begin{cases}" +
             Join(2000, "\\\\",
                  [](size_t k) { return std::to_string(k) + " & x = " + std::to_string(k); }) +
             "\\end{cases}"),
       "\\begin{cases}" +
           Join(2000, "\\\\",
                [](size_t k) {
                  return std::to_string(1999 - k) + " & x = " + std::to_string(1999 - k);
                }) +
           "\\end{cases}"},
      {"10 KB limit stating its value",
       Boxed("\\lim_{x \\to 0}" + Repeat("(x+1)", 2000) + " = 1"), "1"},
  };
  return shapes;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 3;
  std::string filter;
  rl::rewards::math::VerifierOptions options;
  CLI::App app{"math verifier worst cases: CPU time and verdict of hostile answers"};
  app.add_option("--reps", reps, "repetitions (the median is printed)")->check(CLI::PositiveNumber);
  app.add_option("--filter", filter, "only shapes whose name contains this");
  app.add_option("--time-budget-ms", options.time_budget_ms,
                 "the CPU-time backstop (raise it to see what the other budgets allow)");
  app.add_option("--node-budget", options.node_budget, "the node budget");
  CLI11_PARSE(app, argc, argv);
  double worst = 0;
  double worst_20k = 0;  // the 100 KB-class shapes of 20,000 numbers: target 5 ms
  for (const Shape& shape : Shapes()) {
    if (!filter.empty() && shape.name.find(filter) == std::string::npos) continue;
    rl::rewards::math::VerifierOptions shape_options = options;
    shape_options.choices = shape.choices;
    shape_options.choices_ignore_case = !shape.choices.empty();
    rl::rewards::math::Verifier verifier(shape_options);
    std::vector<double> ms;
    rl::rewards::math::CheckResult r;
    for (int rep = 0; rep < reps; ++rep) {
      double t0 = ThreadCpuMillis();
      r = verifier.Check(shape.completion, shape.gold);
      ms.push_back(ThreadCpuMillis() - t0);
    }
    std::sort(ms.begin(), ms.end());
    double median = ms[ms.size() / 2];
    worst = std::max(worst, median);
    if (shape.name.starts_with("20k numbers")) worst_20k = std::max(worst_20k, median);
    std::printf("%-44s %8zu B %9.3f ms %8lld nodes %6.1f ns/node  %-18s %s\n", shape.name.c_str(),
                shape.completion.size() + shape.gold.size(), median,
                static_cast<long long>(r.nodes),
                median * 1e6 / static_cast<double>(std::max<int64_t>(r.nodes, 1)),
                std::string(ToString(r.verdict)).c_str(), r.detail.c_str());
  }
  std::printf("20k-number shapes (about 100 KB): worst median %.3f ms (target: at most 5 ms)\n",
              worst_20k);
  std::printf("worst median CPU time: %.3f ms (time budget %.0f ms, node budget %lld)\n", worst,
              options.time_budget_ms, static_cast<long long>(options.node_budget));
  return 0;
}

// rl/data/fraction_task.h: a built-in synthetic reasoning task with checkable answers.
//
// Problems are sums of two fractions with a common denominator, "Compute 3/8 + 1/8.". The
// gold answer is the exact sum written in one of the forms the accuracy rule must treat as
// equal — a reduced fraction "1/2", LaTeX "\frac{1}{2}", a decimal "0.5" when it terminates,
// an integer "2" — so a policy answering "4/8" is right against any of them.
//
// Each training example also carries an SFT trace in R1 form,
//   <think>3 + 1 = 4, the denominator stays 8.</think><answer>4/8</answer>
// written by a simulated teacher that, in a share `teacher_slip_rate` of its traces, makes the
// classic slip of adding the denominators too:
//   <think>3 + 1 = 4, 8 + 8 = 16.</think><answer>4/16</answer>
// A policy fine-tuned on these traces answers well-formed but often wrong; rule-based RL can
// then raise its accuracy by rewarding the sums that are right — the point of the quickstart.
//
// The held-out split: the distinct problems (a, c, b) are shuffled with the seed and the first
// `num_eval` are kept for evaluation only; training examples are drawn from the rest.
// Everything is a pure function of the options (same seed, same task, on any platform).
#pragma once

#include <cstdint>
#include <vector>

#include "rl/data/dataset.h"

namespace rl::data {

struct FractionTaskOptions {
  uint64_t seed = 0;
  int64_t num_train = 4000;
  int64_t num_eval = 200;
  int64_t max_numerator = 9;     // numerators 1..max_numerator
  int64_t max_denominator = 9;   // denominators 2..max_denominator
  double teacher_slip_rate = 0.5;
};

struct FractionTask {
  std::vector<Example> train;  // prompt, gold answer, SFT trace
  std::vector<Example> eval;   // held out: prompt, gold answer, a correct trace
};

// Throws DataError when the options are out of range or num_eval leaves fewer distinct
// problems for training than for evaluation.
FractionTask GenerateFractionTask(const FractionTaskOptions& options);

// The exact value p/q written in the given form (0: reduced fraction, 1: \frac, 2: decimal
// when it terminates, else reduced fraction), integers as integers. Exposed for tests.
std::string WriteRational(int64_t p, int64_t q, int form);

}  // namespace rl::data

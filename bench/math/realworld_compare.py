#!/usr/bin/env python3
"""Agreement with the source labels of tests/math/realworld/realworld.jsonl, side by side:
our verifier (through `rl score`, accuracy.math with default options, as a training run scores)
and Hugging Face Math-Verify, verify(parse(gold), parse(completion)) with the default
extraction configs (Math-Verify's documented call), or with --call trl the completion parsed as
TRL's accuracy_reward parses it (LaTeX only, boxed first, an anchor required). Not run by CI.

    python3 bench/math/realworld_compare.py --rl build/cli/rl [--call trl] [--list] [--rows-out rows.jsonl]

Math-Verify must be importable (its package, or its source and latex2sympy2_extended's on
PYTHONPATH with an ANTLR runtime that one of latex2sympy2_extended's generated parsers matches).
A row that Math-Verify raises on counts as "not correct", as it does in a reward function.
"""
import argparse
import collections
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile

ACCURACY_ONLY = "rules:\n  - {name: accuracy.math, weight: 1}\n"


def ours(rl, data):
    """Our verdict per row id: True when `rl score` calls the answer correct."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = os.path.join(tmp, "accuracy.yaml")
        out = os.path.join(tmp, "scored.jsonl")
        with open(spec, "w") as f:
            f.write(ACCURACY_ONLY)
        subprocess.run([rl, "score", "--rewards", spec, "--input", data, "--output", out,
                        "--answer-key", "gold"], check=True, stderr=subprocess.DEVNULL)
        with open(out) as f:
            return {r["id"]: r["verdict"] == "correct" for r in map(json.loads, f)}


def _init_worker(gold_as_latex, call):
    global parse, verify, wrap_gold, parse_completion
    sys.setrecursionlimit(10000)  # sympy recurses deeply on long expressions
    from latex2sympy2_extended import NormalizationConfig
    from math_verify import LatexExtractionConfig, parse, verify
    wrap_gold = gold_as_latex
    parse_completion = parse
    if call == "trl":
        # trl/rewards/accuracy_rewards.py (accuracy_reward, TRL v1.x): the completion read as
        # LaTeX only, \boxed first, no reading without an anchor, the first match.
        config = [LatexExtractionConfig(normalization_config=NormalizationConfig(units=True),
                                        boxed_match_priority=0, try_extract_without_anchor=False)]
        parse_completion = lambda text: parse(text, extraction_config=config,
                                              extraction_mode="first_match")


def _math_verify_row(row):
    gold = row["gold"]
    if wrap_gold and "$" not in gold and "\\boxed" not in gold:
        gold = f"${gold}$"
    try:
        return row["id"], bool(verify(parse(gold), parse_completion(row["completion"]))), ""
    except Exception as e:  # a reward function scores these 0
        return row["id"], False, type(e).__name__


def math_verify(rows, jobs, gold_as_latex, call):
    """Math-Verify's verdict per row id. Each worker is a process: Math-Verify's timeouts
    use signals, which only a main thread receives."""
    with multiprocessing.Pool(jobs, initializer=_init_worker, initargs=(gold_as_latex, call)) as pool:
        results = pool.map(_math_verify_row, rows, chunksize=16)
    errors = collections.Counter(e for _, _, e in results if e)
    if errors:
        print(f"Math-Verify raised on {sum(errors.values())} rows: {dict(errors)}")
    return {i: v for i, v, _ in results}


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rl", default=os.path.join(root, "build", "cli", "rl"), help="the rl program")
    ap.add_argument("--data", default=os.path.join(root, "tests", "math", "realworld",
                                                   "realworld.jsonl"))
    ap.add_argument("--jobs", type=int, default=os.cpu_count(), help="Math-Verify processes")
    ap.add_argument("--gold-as-latex", action="store_true",
                    help="give Math-Verify each plain gold as $gold$ (its LaTeX reading: "
                         "'A', '[1, 0, 1]' and 'f(n)=n' are then parsed; the default call "
                         "reads a plain gold as an expression and often fails on these)")
    ap.add_argument("--call", choices=["default", "trl"], default="default",
                    help="default: parse() with its default configs, as Math-Verify's README "
                         "calls it; trl: the completion parsed as TRL's accuracy_reward does")
    ap.add_argument("--list", action="store_true", help="print the rows each verifier disagrees on")
    ap.add_argument("--rows-out", help="write every row's label and both verdicts here (JSONL)")
    args = ap.parse_args()

    with open(args.data) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    our = ours(args.rl, args.data)
    theirs = math_verify(rows, args.jobs, args.gold_as_latex, args.call)

    groups = collections.defaultdict(lambda: [0, 0, 0, 0])  # rows, correct labels, ours, theirs
    for r in rows:
        for key in [(r["family"], r["model"], r["dataset"]), ("all", "", "")]:
            g = groups[key]
            g[0] += 1
            g[1] += r["label"]
            g[2] += our[r["id"]] == r["label"]
            g[3] += theirs[r["id"]] == r["label"]
    print(f"{'family':<10} {'model':<32} {'dataset':<14} {'rows':>5} {'correct':>7} "
          f"{'ours':>7} {'Math-Verify':>11}")
    for (family, model, dataset), (n, pos, a, b) in sorted(groups.items(),
                                                          key=lambda kv: kv[0][0] == "all"):
        print(f"{family:<10} {model:<32} {dataset:<14} {n:>5} {pos:>7} "
              f"{100 * a / n:>6.2f}% {100 * b / n:>10.2f}%")
    both = sum(our[r["id"]] != r["label"] and theirs[r["id"]] != r["label"] for r in rows)
    print(f"rows both verifiers disagree with the label on: {both}")

    if args.list:
        for name, verdicts in [("ours", our), ("Math-Verify", theirs)]:
            print(f"\n{name} disagrees with the label on:")
            for r in rows:
                if verdicts[r["id"]] != r["label"]:
                    print(f"  {r['id']}  label={r['label']}")
    if args.rows_out:
        with open(args.rows_out, "w") as f:
            for r in rows:
                f.write(json.dumps({"id": r["id"], "label": r["label"], "ours": our[r["id"]],
                                    "math_verify": theirs[r["id"]]}) + "\n")


if __name__ == "__main__":
    main()

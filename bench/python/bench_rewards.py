#!/usr/bin/env python3
"""Items per second scoring the same completions, side by side in one run: in process from
Python (rl_rewards: a batch on one thread and on all cores, and one sample per call as verl's
per-sample compute_score does), our HTTP server (`rl serve`, started here on a loopback port:
/v1/score in batches, and /get_reward one sample per request from concurrent clients as current
OpenRLHF sends them), and Hugging Face Math-Verify called the way TRL's examples call it,
verify(parse(gold), parse(completion)) with the default extraction configs, one sample at a time
in one process. Each figure is the median of --reps runs.

    python3 bench/python/bench_rewards.py [--build build] [--data realworld] [--items 2363] [--reps 3]

--data examples (default): examples/data/completions.jsonl (40 hand-written rows: chat prompts,
think and answer blocks, right and wrong answers, some long and repetitive) repeated to --items,
scored with the r1 reward (format.think_answer + accuracy.math).
--data realworld: tests/math/realworld/realworld.jsonl (2,363 real chain-of-thought completions
of GSM8K, MATH, MathVista and ProcessBench problems with their gold answers, no think/answer
tags), repeated or cut to --items, scored with accuracy.math alone, which is what Math-Verify
decides.

Math-Verify runs in a child process of --math-verify-python (default: this interpreter), which
must import math_verify (its package, or its source and latex2sympy2_extended's on PYTHONPATH
with an ANTLR runtime one of latex2sympy2_extended's generated parsers matches; the child
inherits this environment). When it cannot, its rows say why and the rest is measured anyway.
A call that raises counts as not correct, as a TRL reward function that catches it scores it.
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


ACCURACY_ONLY = "rules:\n  - {name: accuracy.math, weight: 1}\n"


def load_rows(data, items):
    """Rows {"prompt", "completion", "answer"}, repeated or cut to `items`."""
    if data == "realworld":
        path = os.path.join(ROOT, "tests", "math", "realworld", "realworld.jsonl")
        with open(path, encoding="utf-8") as f:
            rows = [{"prompt": "", "completion": r["completion"], "answer": r["gold"], "label": r["label"]}
                    for r in map(json.loads, f)]
    else:
        with open(os.path.join(ROOT, "examples", "data", "completions.jsonl"), encoding="utf-8") as f:
            rows = [{"prompt": r["prompt"], "completion": r["completion"], "answer": gold(r),
                     "completion_tokens": r.get("completion_tokens")}
                    for r in (json.loads(line) for line in f if line.strip())]
    return [rows[i % len(rows)] for i in range(items)]


def median_rate(run, items, reps):
    rates = []
    for _ in range(reps):
        start = time.perf_counter()
        run()
        rates.append(items / (time.perf_counter() - start))
    return statistics.median(rates)


def gold(row):
    answer = row.get("answer")
    return str(answer) if isinstance(answer, (int, float)) else answer


class Server:
    """`rl serve` on an ephemeral loopback port serving `spec` as its default reward, stopped
    with SIGTERM on exit."""

    def __init__(self, rl, spec):
        self.tmp = tempfile.TemporaryDirectory()
        port_file = os.path.join(self.tmp.name, "port")
        self.process = subprocess.Popen(
            [rl, "--log-level", "warn", "serve", "--config", os.path.join(ROOT, "configs", "reward_server.yaml"),
             "--rewards", f"bench={spec}", "--default-reward", "bench",
             # Real data has golds our verifier cannot read: /get_reward answers 422 for them
             # by default, and OpenRLHF cannot take a null reward.
             "--on-unscorable", "zero",
             "--port", "0", "--port-file", port_file, "--summary-interval-s", "0"])
        for _ in range(400):
            if os.path.exists(port_file) and os.path.getsize(port_file) > 0:
                break
            if self.process.poll() is not None:
                raise RuntimeError("rl serve exited before listening")
            time.sleep(0.05)
        with open(port_file, encoding="utf-8") as f:
            self.port = int(f.read())

    def close(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.tmp.cleanup()


def post(connection, path, body):
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path}: HTTP {response.status} {response.reason}")
    return json.loads(data)


def http_batches(port, rows, batch, clients):
    chunks = [rows[i:i + batch] for i in range(0, len(rows), batch)]

    def send(part):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            for chunk in part:
                items = [{"completion": r["completion"], "answer": r["answer"], "prompt": r["prompt"]}
                         for r in chunk]
                post(connection, "/v1/score", {"items": items})
        finally:
            connection.close()

    parts = [chunks[k::clients] for k in range(clients)]
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, parts))


def http_single(port, rows, clients):
    # One sample per request with keep-alive connections, as OpenRLHF's rollout workers send.
    def send(part):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            for r in part:
                post(connection, "/get_reward", {"query": [r["prompt"] + r["completion"]], "prompts": [r["prompt"]],
                                                 "labels": [r["answer"] or "0"]})
        finally:
            connection.close()

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, [rows[k::clients] for k in range(clients)]))


def math_verify_worker(rows_file, reps):
    """In the child: Math-Verify's median items/s over `reps` runs and its verdicts, as JSON on
    stdout. Exits 3 with the reason on stderr when math_verify does not import."""
    try:
        from math_verify import parse, verify
    except Exception as e:  # any failure to import: ANTLR runtime mismatch, missing sympy, ...
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(3)
    sys.setrecursionlimit(10000)  # sympy recurses deeply on long expressions
    with open(rows_file, encoding="utf-8") as f:
        rows = json.load(f)
    correct = []

    def run():
        correct.clear()
        for gold_answer, completion in rows:
            try:
                correct.append(bool(verify(parse(gold_answer), parse(completion))))
            except Exception:
                correct.append(False)

    rate = median_rate(run, len(rows), reps)
    json.dump({"rate": rate, "correct": sum(correct), "version": _version()}, sys.stdout)


def _version():
    import importlib.metadata
    try:
        return importlib.metadata.version("math-verify")
    except importlib.metadata.PackageNotFoundError:
        return "(source)"  # imported from a source tree, not installed


def math_verify_rate(python, rows, reps):
    """Math-Verify's figures from a child process of `python`: (rate, correct, version), or a
    string saying why there are none."""
    # A row without a gold gets "": parse finds nothing in it and verify says False.
    golds = [r["answer"] or "" for r in rows]
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as f:
        json.dump([[g, r["completion"]] for g, r in zip(golds, rows)], f)
        f.flush()
        child = subprocess.run([python, os.path.abspath(__file__), "--math-verify-worker", f.name,
                                "--reps", str(reps)], capture_output=True, text=True)
    if child.returncode != 0:
        reason = child.stderr.strip().splitlines()[-1] if child.stderr.strip() else f"exit {child.returncode}"
        return f"skipped: math_verify does not run under {python} ({reason})"
    out = json.loads(child.stdout)
    return out["rate"], out["correct"], out["version"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), help="build folder (rl and python/)")
    parser.add_argument("--data", choices=["examples", "realworld"], default="examples",
                        help="the completions scored (see above)")
    parser.add_argument("--items", type=int, default=4096)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--math-verify-python", default=sys.executable,
                        help="the interpreter that runs Math-Verify (default: this one)")
    parser.add_argument("--math-verify-items", type=int, default=0,
                        help="Math-Verify scores only the first N items (0: all): it is slow")
    parser.add_argument("--no-math-verify", action="store_true", help="leave Math-Verify out")
    parser.add_argument("--math-verify-worker", metavar="ROWS_JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.math_verify_worker:
        math_verify_worker(args.math_verify_worker, args.reps)
        return
    # As scripts/test does: libgomp's busy waiting makes the all-cores batch slower than one
    # thread on a shared machine. Read when the module loads libgomp, and by the server.
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    sys.path.insert(0, os.path.join(args.build, "python"))
    import rl_rewards

    rows = load_rows(args.data, args.items)
    completions = [r["completion"] for r in rows]
    prompts = [r["prompt"] for r in rows]
    answers = [r["answer"] for r in rows]
    tokens = [r.get("completion_tokens") for r in rows]
    spec_dir = tempfile.TemporaryDirectory()
    if args.data == "realworld":
        spec, spec_name = os.path.join(spec_dir.name, "accuracy.yaml"), "accuracy.math alone"
        with open(spec, "w", encoding="utf-8") as f:
            f.write(ACCURACY_ONLY)
    else:
        spec, spec_name = os.path.join(ROOT, "configs", "rewards", "r1.yaml"), "r1 reward"
    reward = rl_rewards.Reward.from_yaml(spec)
    figures = []

    def in_process(threads):
        return reward.score(completions, answers=answers, prompts=prompts, completion_tokens=tokens,
                            threads=threads)

    def per_call():
        for c, a, p in zip(completions, answers, prompts):
            reward.score([c], answers=[a], prompts=[p], threads=1)

    figures.append(("python in process, one batch, 1 thread", median_rate(lambda: in_process(1), args.items, args.reps)))
    figures.append((f"python in process, one batch, all cores ({os.cpu_count()})",
                    median_rate(lambda: in_process(0), args.items, args.reps)))
    figures.append(("python in process, one sample per call", median_rate(per_call, args.items, args.reps)))
    ours_correct = sum(r.verdict == "correct" for r in in_process(0))

    server = Server(os.path.join(args.build, "cli", "rl"), spec)
    try:
        figures.append((f"rl serve /v1/score, batches of 256, {args.clients} clients",
                        median_rate(lambda: http_batches(server.port, rows, 256, args.clients), args.items, args.reps)))
        figures.append(("rl serve /v1/score, batches of 256, 1 client",
                        median_rate(lambda: http_batches(server.port, rows, 256, 1), args.items, args.reps)))
        figures.append((f"rl serve /get_reward, 1 sample per request, {args.clients} clients",
                        median_rate(lambda: http_single(server.port, rows, args.clients), args.items, args.reps)))
    finally:
        server.close()
        spec_dir.cleanup()

    mv_rows = rows[:args.math_verify_items] if args.math_verify_items > 0 else rows
    mv = "left out (--no-math-verify)" if args.no_math_verify else \
        math_verify_rate(args.math_verify_python, mv_rows, args.reps)

    source = ("tests/math/realworld/realworld.jsonl" if args.data == "realworld"
              else "examples/data/completions.jsonl")
    print(f"{spec_name}, {args.items} completions ({source}, repeated or cut), median of {args.reps} runs")
    mv_name = "Math-Verify, verify(parse(gold), parse(completion)), 1 process"
    if not isinstance(mv, str):
        mv_name = mv_name.replace("Math-Verify", f"Math-Verify {mv[2]}")
    width = max(len(name) for name, _ in figures + [(mv_name, 0)])
    for name, rate in figures:
        print(f"  {name:<{width}} {rate:>12,.0f} items/s")
    if isinstance(mv, str):
        print(f"  {mv_name:<{width}} {mv}")
    else:
        print(f"  {mv_name:<{width}} {mv[0]:>12,.1f} items/s" +
              (f"  (first {len(mv_rows)} items)" if len(mv_rows) < len(rows) else ""))
    # That both really decided: how many each calls correct (and the source labels, when known).
    labels = sum(bool(r["label"]) for r in rows) if "label" in rows[0] else None
    print(f"said correct: ours {ours_correct}/{len(rows)}" +
          ("" if isinstance(mv, str) else f", Math-Verify {mv[1]}/{len(mv_rows)}") +
          ("" if labels is None else f"; correct by the source labels: {labels}/{len(rows)}"))


if __name__ == "__main__":
    main()

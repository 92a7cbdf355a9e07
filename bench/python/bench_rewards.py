#!/usr/bin/env python3
"""Items per second scoring the same completions with the r1 reward, side by side in one run:
in process from Python (rl_rewards: a batch on one thread and on all cores, and one sample per
call as verl's per-sample compute_score does) against our HTTP server (`rl serve`, started
here on a loopback port: /v1/score in batches, and /get_reward one sample per request from
concurrent clients as current OpenRLHF sends them). Each figure is the median of --reps runs.

    python3 bench/python/bench_rewards.py [--build build] [--items 4096] [--reps 5]

The completions are examples/data/completions.jsonl (40 hand-written rows: chat prompts, think
and answer blocks, right and wrong answers, some long and repetitive) repeated to --items.
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


def load_rows(items):
    with open(os.path.join(ROOT, "examples", "data", "completions.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
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
    """`rl serve` on an ephemeral loopback port, stopped with SIGTERM on exit."""

    def __init__(self, rl):
        self.tmp = tempfile.TemporaryDirectory()
        port_file = os.path.join(self.tmp.name, "port")
        self.process = subprocess.Popen(
            [rl, "--log-level", "warn", "serve", "--config", os.path.join(ROOT, "configs", "reward_server.yaml"),
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
                items = [{"completion": r["completion"], "answer": gold(r), "prompt": r["prompt"]} for r in chunk]
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
                                                 "labels": [gold(r) or "0"]})
        finally:
            connection.close()

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, [rows[k::clients] for k in range(clients)]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), help="build folder (rl and python/)")
    parser.add_argument("--items", type=int, default=4096)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    args = parser.parse_args()
    # As scripts/test does: libgomp's busy waiting makes the all-cores batch slower than one
    # thread on a shared machine. Read when the module loads libgomp, and by the server.
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    sys.path.insert(0, os.path.join(args.build, "python"))
    import rl_rewards

    rows = load_rows(args.items)
    completions = [r["completion"] for r in rows]
    prompts = [r["prompt"] for r in rows]
    answers = [gold(r) for r in rows]
    tokens = [r.get("completion_tokens") for r in rows]
    reward = rl_rewards.load("r1")
    figures = []

    def in_process(threads):
        reward.score(completions, answers=answers, prompts=prompts, completion_tokens=tokens, threads=threads)

    def per_call():
        for c, a, p in zip(completions, answers, prompts):
            reward.score([c], answers=[a], prompts=[p], threads=1)

    figures.append(("python in process, one batch, 1 thread", median_rate(lambda: in_process(1), args.items, args.reps)))
    figures.append((f"python in process, one batch, all cores ({os.cpu_count()})",
                    median_rate(lambda: in_process(0), args.items, args.reps)))
    figures.append(("python in process, one sample per call", median_rate(per_call, args.items, args.reps)))

    server = Server(os.path.join(args.build, "cli", "rl"))
    try:
        figures.append((f"rl serve /v1/score, batches of 256, {args.clients} clients",
                        median_rate(lambda: http_batches(server.port, rows, 256, args.clients), args.items, args.reps)))
        figures.append(("rl serve /v1/score, batches of 256, 1 client",
                        median_rate(lambda: http_batches(server.port, rows, 256, 1), args.items, args.reps)))
        figures.append((f"rl serve /get_reward, 1 sample per request, {args.clients} clients",
                        median_rate(lambda: http_single(server.port, rows, args.clients), args.items, args.reps)))
    finally:
        server.close()

    print(f"r1 reward, {args.items} completions (examples/data/completions.jsonl repeated), "
          f"median of {args.reps} runs")
    for name, rate in figures:
        print(f"  {name:<58} {rate:>12,.0f} items/s")


if __name__ == "__main__":
    main()

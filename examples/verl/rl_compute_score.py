#!/usr/bin/env python3
"""verl `compute_score` backed by `rl serve` (POST /v1/score). Standard library only.

verl's default reward manager calls, per sample,

    compute_score(data_source, solution_str, ground_truth, extra_info)

and its batch reward manager (reward_model.reward_manager=batch) calls once per batch

    compute_score_batch(data_sources=..., solution_strs=..., ground_truths=..., extra_infos=...)

Both return {"score": reward, "acc": 1.0 when the answer check said correct else 0.0};
verl uses "score" as the reward and logs the other keys. verl needs a number for every
sample, so a sample the rules cannot score raises RewardServerError (naming the sample and
why) unless RL_REWARD_ON_UNSCORABLE=zero, which scores it 0.0. Configure with
RL_REWARD_URL (default http://127.0.0.1:8000), RL_REWARD_NAME (a named reward) and
RL_SERVE_TOKEN (bearer token).

    python3 examples/verl/rl_compute_score.py [http://127.0.0.1:8000]   # self-check
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request


class RewardServerError(RuntimeError):
    pass


def _score_items(items, retries=5, timeout=120.0):
    url = os.environ.get("RL_REWARD_URL", "http://127.0.0.1:8000").rstrip("/")
    body = {"items": items}
    if os.environ.get("RL_REWARD_NAME"):
        body["reward"] = os.environ["RL_REWARD_NAME"]
    headers = {"Content-Type": "application/json"}
    if os.environ.get("RL_SERVE_TOKEN"):
        headers["Authorization"] = "Bearer " + os.environ["RL_SERVE_TOKEN"]
    data = json.dumps(body).encode()
    last = None
    for attempt in range(retries):
        request = urllib.request.Request(url + "/v1/score", data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.load(response)["results"]
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}: {json.load(e).get('error', '')}"
            if e.code not in (408, 429, 500, 502, 503, 504):
                break
        except OSError as e:
            last = str(e)
        time.sleep(min(5.0, 0.1 * 2 ** attempt))
    raise RewardServerError(f"reward server {url}: /v1/score failed: {last}")


def _to_verl(result, index):
    if result["reward"] is None:
        if os.environ.get("RL_REWARD_ON_UNSCORABLE", "error") != "zero":
            raise RewardServerError(
                f"sample {index} could not be scored: {result['status']} ({result.get('detail', '')}); "
                "set RL_REWARD_ON_UNSCORABLE=zero to score such samples 0")
        return {"score": 0.0, "acc": 0.0}
    return {"score": float(result["reward"]), "acc": 1.0 if result["verdict"] == "correct" else 0.0}


def _item(solution_str, ground_truth):
    item = {"completion": solution_str}
    if ground_truth is not None:
        item["answer"] = ground_truth if isinstance(ground_truth, (str, int, float)) else str(ground_truth)
    return item


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    return _to_verl(_score_items([_item(solution_str, ground_truth)])[0], 0)


def compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos=None, **kwargs):
    results = _score_items([_item(s, g) for s, g in zip(solution_strs, ground_truths)])
    return [_to_verl(r, i) for i, r in enumerate(results)]


def _self_check():
    right = "<think>12 * 12 = 144</think><answer>144</answer>"
    wrong = "<think>12 * 12 = 124</think><answer>124</answer>"
    assert compute_score("math", right, "144") == {"score": 2.0, "acc": 1.0}
    assert compute_score("math", wrong, "144") == {"score": 1.0, "acc": 0.0}
    batch = compute_score_batch(["math"] * 3, [right, wrong, right], ["144", "144", "144"], [{}] * 3)
    assert [b["score"] for b in batch] == [2.0, 1.0, 2.0], batch
    try:
        compute_score("math", right, None)
        raise AssertionError("expected RewardServerError")
    except RewardServerError as e:
        assert "missing_gold" in str(e), e
    os.environ["RL_REWARD_ON_UNSCORABLE"] = "zero"
    assert compute_score("math", right, None) == {"score": 0.0, "acc": 0.0}
    print(f"verl: compute_score and compute_score_batch: {batch}: ok")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        os.environ["RL_REWARD_URL"] = sys.argv[1]
    _self_check()

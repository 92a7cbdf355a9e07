#!/usr/bin/env python3
"""verl `compute_score` backed by `rl serve` (POST /v1/score). Standard library only.

verl's reward loop (NaiveRewardManager.run_single in
verl/experimental/reward_loop/reward_manager/naive.py, verl b178a3cd) calls, per sample,

    compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...,
                  **custom_reward_function.reward_kwargs)

awaiting it when it is a coroutine function (use compute_score_async then). ground_truth may
be a list of acceptable answers (a numpy array from parquet), sent as such. extra_info's
"prompt" (reward_kwargs prompt_key), the prompt the policy saw, is forwarded so that a
template that opened <think> is seen. Both return {"score": reward, "acc": 1.0 when the answer
check said correct else 0.0}; verl trains on "score" and logs the other keys. verl needs a
number for every sample, so a sample the rules cannot score raises RewardServerError (naming
why) unless on_unscorable=zero, which scores it 0.0. reward_kwargs (or the environment):
url (RL_REWARD_URL, default http://127.0.0.1:8000), reward (RL_REWARD_NAME), token
(RL_SERVE_TOKEN), on_unscorable (RL_REWARD_ON_UNSCORABLE), prompt_key. In process, without a
server: rl_rewards.verl.

    python3 examples/verl/rl_compute_score.py [http://127.0.0.1:8000]   # self-check
"""
import asyncio
import json
import os
import sys
import time
import urllib.error
import urllib.request


class RewardServerError(RuntimeError):
    pass


def _setting(kwargs, key, variable, default=None):
    return kwargs.get(key) or os.environ.get(variable) or default


def _score_items(items, kwargs, retries=5, timeout=120.0):
    url = _setting(kwargs, "url", "RL_REWARD_URL", "http://127.0.0.1:8000").rstrip("/")
    body = {"items": items}
    name = _setting(kwargs, "reward", "RL_REWARD_NAME")
    if name:
        body["reward"] = name
    headers = {"Content-Type": "application/json"}
    token = _setting(kwargs, "token", "RL_SERVE_TOKEN")
    if token:
        headers["Authorization"] = "Bearer " + token
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


def _item(solution_str, ground_truth, extra_info, kwargs):
    item = {"completion": solution_str}
    if hasattr(ground_truth, "tolist"):  # numpy arrays and scalars from parquet rows
        ground_truth = ground_truth.tolist()
    if isinstance(ground_truth, tuple):
        ground_truth = list(ground_truth)
    if ground_truth is not None:
        item["answer"] = ground_truth
    prompt = (extra_info or {}).get(kwargs.get("prompt_key", "prompt"))
    if isinstance(prompt, list) and prompt and prompt[-1].get("role") == "assistant":
        prompt = prompt[-1]["content"]  # messages: only a prefilled assistant turn is known
    if isinstance(prompt, str):
        item["prompt"] = prompt
    return item


def _to_verl(result, kwargs):
    if result["reward"] is None:
        if _setting(kwargs, "on_unscorable", "RL_REWARD_ON_UNSCORABLE", "error") != "zero":
            raise RewardServerError(
                f"sample could not be scored: {result['status']} ({result.get('detail', '')}); "
                "set on_unscorable=zero to score such samples 0")
        return {"score": 0.0, "acc": 0.0}
    return {"score": float(result["reward"]), "acc": 1.0 if result["verdict"] == "correct" else 0.0}


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    item = _item(solution_str, ground_truth, extra_info, kwargs)
    return _to_verl(_score_items([item], kwargs)[0], kwargs)


async def compute_score_async(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    return await asyncio.to_thread(compute_score, data_source, solution_str, ground_truth,
                                   extra_info, **kwargs)


def _self_check():
    right = "<think>12 * 12 = 144</think><answer>144</answer>"
    wrong = "<think>12 * 12 = 124</think><answer>124</answer>"
    assert compute_score("math", right, "144") == {"score": 2.0, "acc": 1.0}
    assert compute_score("math", wrong, "144") == {"score": 1.0, "acc": 0.0}
    # As verl's reward loop calls it: keywords, extra_info with the prompt, list golds.
    thought = "12 * 12 = 144</think><answer>144</answer>"
    prompt = "<|im_start|>assistant\n<think>\n"
    assert compute_score(data_source="math", solution_str=thought, ground_truth=["12^2", "144"],
                         extra_info={"prompt": prompt, "num_turns": None}) == {"score": 2.0, "acc": 1.0}
    assert compute_score(data_source="math", solution_str=thought, ground_truth="144",
                         extra_info={}) == {"score": 1.0, "acc": 1.0}  # format 0: no prompt
    assert asyncio.run(compute_score_async(data_source="math", solution_str=right, ground_truth="144",
                                           extra_info={})) == {"score": 2.0, "acc": 1.0}
    try:
        compute_score("math", right, None)
        raise AssertionError("expected RewardServerError")
    except RewardServerError as e:
        assert "missing_gold" in str(e), e
    assert compute_score("math", right, None, on_unscorable="zero") == {"score": 0.0, "acc": 0.0}
    print("verl: compute_score and compute_score_async: ok")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        os.environ["RL_REWARD_URL"] = sys.argv[1]
    _self_check()

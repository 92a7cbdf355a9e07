#!/usr/bin/env python3
"""Speaks OpenRLHF's remote-reward protocol to `rl serve`, exactly as OpenRLHF does.

OpenRLHF (--reward.remote_url / --remote_rm_url) POSTs, with Content-Type: application/json,

    {"query": [prompt + completion, ...],   # decoded with special tokens kept
     "prompts": [prompt, ...],
     "labels": [gold answer, ...]}

and reads "rewards" (the training reward), "scores" (used by dynamic filtering) and
"extra_logs" (logged per key). Current OpenRLHF sends one sample per request, many requests
at once; older versions send the whole rollout batch in one request. This script does both
and checks the answers. Standard library only.

    python3 examples/openrlhf/openrlhf_request.py [http://127.0.0.1:8000]
"""
import concurrent.futures
import json
import os
import sys
import time
import urllib.error
import urllib.request


def chatml_prompt(question):
    # What Qwen2.5-Instruct's chat template renders (OpenRLHF --apply_chat_template).
    return ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\n" + question + "<|im_end|>\n<|im_start|>assistant\n")


def post_get_reward(url, queries, prompts, labels, tries=5):
    """POSTs like OpenRLHF's request_api_wrapper: retry on errors, then raise."""
    data = json.dumps({"query": queries, "prompts": prompts, "labels": labels}).encode()
    last = None
    for _ in range(tries):
        request = urllib.request.Request(url + "/get_reward", data=data,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=180) as response:
                return json.load(response)
        except urllib.error.HTTPError as e:
            body = json.load(e)
            # OpenRLHF's aiohttp reports only the status line ("422, message='...'"): the
            # server's reason phrase carries the same message as the body.
            assert e.reason == body["error"][:1024], (e.reason, body["error"])
            if e.code < 500:  # the request itself is wrong: retrying will not help
                raise RuntimeError(f"HTTP {e.code}: {body['error']}") from None
            last = f"HTTP {e.code}: {body['error']}"
        except OSError as e:
            last = str(e)
        time.sleep(1)
    raise RuntimeError(f"reward server failed {tries} times: {last}")


def main():
    url = (sys.argv[1] if len(sys.argv) > 1 else
           os.environ.get("RL_REWARD_URL", "http://127.0.0.1:8000")).rstrip("/")
    prompt = chatml_prompt("What is 3/4 + 1/8? Put the final answer in <answer></answer>.")
    completions = [
        "<think>3/4 is 6/8, plus 1/8 is 7/8.</think><answer>\\frac{7}{8}</answer><|im_end|>",
        "<think>3/4 + 1/8 = 4/12.</think><answer>\\frac{1}{3}</answer><|im_end|>",
        "<think>6/8 + 1/8</think><answer>0.875</answer><|im_end|><|endoftext|>",
    ]
    queries = [prompt + c for c in completions]
    prompts = [prompt] * len(queries)
    labels = ["7/8"] * len(queries)

    # Older OpenRLHF: the whole batch in one request.
    batch = post_get_reward(url, queries, prompts, labels)
    assert batch["rewards"] == [2.0, 1.0, 2.0], batch
    assert batch["scores"] == [1.0, 0.0, 1.0], batch
    assert batch["extra_logs"]["format.think_answer"] == [1.0, 1.0, 1.0], batch
    assert batch["extra_logs"]["accuracy.math"] == [1.0, 0.0, 1.0], batch

    # Current OpenRLHF: one sample per request, many at once. Same rewards.
    many = [(queries[i % 3], prompts[i % 3], labels[i % 3]) for i in range(48)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda s: post_get_reward(url, [s[0]], [s[1]], [s[2]]), many))
    for i, answer in enumerate(answers):
        assert answer["rewards"] == [batch["rewards"][i % 3]], (i, answer)

    # Left padding decoded with special tokens kept is skipped before the prompt.
    padded = post_get_reward(url, ["<|endoftext|>" * 3 + queries[0]], [prompt], ["7/8"])
    assert padded["rewards"] == [2.0], padded

    # A list as a label: several acceptable answers, the best result counts.
    listed = post_get_reward(url, queries[:2], prompts[:2], [["0.875", "7/8"], ["1/3", "7/8"]])
    assert listed["rewards"] == [2.0, 2.0], listed

    # A sample that cannot be scored (no label) is an error naming it, never a silent 0.
    try:
        post_get_reward(url, queries[:2], prompts[:2], ["7/8", ""])
        raise AssertionError("expected HTTP 422")
    except RuntimeError as e:
        assert "HTTP 422" in str(e) and "sample 1: missing_gold" in str(e), e

    print(f"openrlhf: {len(many) + 2} requests, rewards {batch['rewards']}, scores {batch['scores']}: ok")


if __name__ == "__main__":
    main()

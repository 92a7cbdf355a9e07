#!/usr/bin/env python3
"""A TRL reward function backed by `rl serve` (POST /v1/score). Standard library only.

    from trl import GRPOTrainer
    from rl_reward import make_reward_func

    reward = make_reward_func("http://127.0.0.1:8000", answer_key="answer")
    trainer = GRPOTrainer(model=..., reward_funcs=[reward], train_dataset=dataset, ...)

TRL calls reward(prompts=..., completions=..., completion_ids=..., **columns) with the
dataset's other columns as keyword lists (GRPOTrainer._calculate_rewards, TRL v1.9.0,
a785283c). Everything that reaches the rules is forwarded: the prompt (a string as it is; chat
messages: only a final assistant message, the start of the completion, is known, so a
template that opens <think> itself needs prefilled_think: always in the server's spec, or the
in-process adapter rl_rewards.trl with the tokenizer), the completion (a string or the last
message's content), the token count (len of completion_ids, for the length rules), and the
gold from `answer_key` (a string, a number or a list of acceptable answers). The function
returns list[float | None]: None for a sample the rules could not score (TRL leaves it out),
never a made-up 0. Requests are sent concurrently in chunks; a request that still fails after
`retries` attempts raises, so a broken server stops training instead of silently training on
zeros. In process, without a server, and with one TRL line per rule: rl_rewards.trl.

    python3 examples/trl/rl_reward.py [http://127.0.0.1:8000]   # self-check against a server
"""
import concurrent.futures
import json
import os
import random
import sys
import time
import urllib.error
import urllib.request


class RewardServerError(RuntimeError):
    pass


def _text(completion):
    if isinstance(completion, str):
        return completion
    # Conversational: the assistant's last message.
    return completion[-1]["content"] if completion else ""


def _prompt(prompt):
    if isinstance(prompt, str):
        return prompt
    # Conversational: the server cannot render the chat template; a final assistant message
    # is the prefix the completion continues (a prefilled "<think>").
    if prompt and prompt[-1].get("role") == "assistant":
        return prompt[-1]["content"]
    return None


def _post(url, body, token, timeout, retries):
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    last = None
    for attempt in range(retries):
        request = urllib.request.Request(url + "/v1/score", data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as e:
            message = json.load(e).get("error", "")
            last = f"HTTP {e.code}: {message}"
            if e.code not in (408, 429, 500, 502, 503, 504):
                break  # the request is wrong: retrying will not help
            delay = float(e.headers.get("Retry-After", 0) or 0)
        except OSError as e:
            last, delay = str(e), 0.0
        backoff = min(5.0, 0.1 * 2 ** attempt)
        time.sleep(max(delay, backoff / 2 + random.uniform(0, backoff / 2)))
    raise RewardServerError(f"reward server {url}: /v1/score failed: {last}")


def make_reward_func(url=None, answer_key="answer", reward=None, token=None,
                     chunk_size=64, max_workers=8, timeout=120.0, retries=5):
    """Returns a TRL reward function scoring with the server's rules.

    url: where `rl serve` listens (default: $RL_REWARD_URL or http://127.0.0.1:8000).
    answer_key: the dataset column with the gold answer.
    reward: a named reward of the server (default: the server's default).
    token: bearer token (default: $RL_SERVE_TOKEN when set).
    """
    url = (url or os.environ.get("RL_REWARD_URL", "http://127.0.0.1:8000")).rstrip("/")
    token = token if token is not None else os.environ.get("RL_SERVE_TOKEN")

    def rl_reward(completions, prompts=None, completion_ids=None, **kwargs):
        answers = kwargs.get(answer_key)
        items = []
        for i, completion in enumerate(completions):
            item = {"completion": _text(completion)}
            if answers is not None and answers[i] is not None:
                item["answer"] = list(answers[i]) if isinstance(answers[i], tuple) else answers[i]
            prompt = _prompt(prompts[i]) if prompts is not None else None
            if prompt is not None:
                item["prompt"] = prompt
            if completion_ids is not None:
                item["completion_tokens"] = len(completion_ids[i])
            items.append(item)
        chunks = [items[i:i + chunk_size] for i in range(0, len(items), chunk_size)]

        def score(chunk):
            body = {"items": chunk}
            if reward:
                body["reward"] = reward
            results = _post(url, body, token, timeout, retries)["results"]
            if len(results) != len(chunk):
                raise RewardServerError(f"expected {len(chunk)} results, got {len(results)}")
            return [r["reward"] for r in results]

        with concurrent.futures.ThreadPoolExecutor(max_workers=max_workers) as pool:
            return [r for rewards in pool.map(score, chunks) for r in rewards]

    rl_reward.__name__ = f"rl_{reward or 'reward'}"  # TRL logs rewards/<function name>
    return rl_reward


def _self_check(url):
    reward = make_reward_func(url, chunk_size=3)
    completions = [
        "<think>2+2</think><answer>4</answer>",
        [{"role": "assistant", "content": "<think>2+2</think><answer>5</answer>"}],
        "<think>2+2</think><answer>4</answer>",
    ] * 5
    answers = ["4", "4", None] * 5
    scores = reward(prompts=["What is 2+2?"] * 15, completions=completions, answer=answers)
    assert scores == [2.0, 1.0, None] * 5, scores
    # As TRL calls it: completion_ids, other columns, a prompt whose template opened <think>,
    # message prompts ending in a prefilled assistant turn, and a list of acceptable answers.
    thought = "2+2</think><answer>4</answer>"
    prefix = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "<think>"}]
    scores = reward(prompts=["<|im_start|>assistant\n<think>\n", prefix, "What is 2+2?"],
                    completions=[thought, [{"role": "assistant", "content": thought}], thought],
                    completion_ids=[[1, 2], [1, 2], [1, 2]], answer=[["four", "4"], "4", "4"],
                    trainer_state=None, log_extra=None, log_metric=None)
    assert scores == [2.0, 2.0, 1.0], scores
    tags = make_reward_func(url, reward="open_r1")(completions=completions[:2], answer=["4", "4"])
    assert len(tags) == 2 and all(isinstance(s, float) for s in tags), tags
    try:
        make_reward_func(url, reward="no_such_reward")(completions=["x"], answer=["1"])
        raise AssertionError("expected RewardServerError")
    except RewardServerError as e:
        assert "unknown reward 'no_such_reward'" in str(e), e
    if os.environ.get("RL_SERVE_TOKEN"):  # the server requires a token: none means 401
        try:
            make_reward_func(url, token="")(completions=["x"], answer=["1"])
            raise AssertionError("expected HTTP 401")
        except RewardServerError as e:
            assert "HTTP 401" in str(e), e
    print(f"trl: {len(scores)} completions scored concurrently: {scores[:3]}: ok")


if __name__ == "__main__":
    _self_check(sys.argv[1] if len(sys.argv) > 1 else None)

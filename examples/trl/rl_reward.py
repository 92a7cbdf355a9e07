#!/usr/bin/env python3
"""TRL reward functions backed by `rl serve` (POST /v1/score), one per rule. Standard library only.

    from trl import GRPOTrainer
    from rl_reward import make_reward_funcs

    reward_funcs = make_reward_funcs("http://127.0.0.1:8000", answer_key="answer")
    trainer = GRPOTrainer(model=..., reward_funcs=reward_funcs, train_dataset=dataset, ...)

make_reward_funcs asks the server (GET /health) for the rules of its reward and their weights,
and returns one function per rule, named after it, returning the rule's weighted value: TRL
logs rewards/<rule>/mean for each (rewards/format.think_answer/mean, ...) and its sum of the
functions (GRPOConfig.reward_weights left at 1) is the server's total, as with the in-process
rl_rewards.trl. The functions of one make_reward_funcs() call post a batch once: the first
called scores it and the others read its results (TRL passes the same list objects to every
reward function of a step, so the batch is recognised by their identity).

TRL calls each function as reward(prompts=..., completions=..., completion_ids=..., **columns)
with the dataset's other columns as keyword lists (GRPOTrainer._calculate_rewards, TRL v1.9.0,
a785283c). Everything that reaches the rules is forwarded: the prompt (a string as it is; chat
messages: only a final assistant message, the start of the completion, is known, so a
template that opens <think> itself needs prefilled_think: always in the server's spec, or the
in-process adapter rl_rewards.trl with the tokenizer), the completion (a string or the last
message's content), the token count (len of completion_ids, for the length rules), and the
gold from `answer_key` (a string, a number or a list of acceptable answers). A function returns
list[float | None]: None for a sample the rules could not score (no total: TRL leaves the row
out), never a made-up 0. With TRL's log_extra, the completions table gets each sample's
verdict, extracted answer and status. Requests are sent concurrently in chunks; a request that
still fails after `retries` attempts raises, so a broken server stops training instead of
silently training on zeros.

    python3 examples/trl/rl_reward.py [http://127.0.0.1:8000]   # self-check against a server
"""
import concurrent.futures
import json
import os
import random
import sys
import threading
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


def _request(url, path, body, token, timeout, retries):
    """GET `path` when body is None, else POST it as JSON; the answer's JSON."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if token:
        headers["Authorization"] = "Bearer " + token
    last = None
    for attempt in range(retries):
        request = urllib.request.Request(url + path, data=data, headers=headers)
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
    raise RewardServerError(f"reward server {url}: {path} failed: {last}")


def _server_rules(url, reward, token, timeout, retries):
    """(rule, weight) of the server's reward `reward` (None: its default), in spec order."""
    health = _request(url, "/health", None, token, timeout, retries)
    name = reward or health["default_reward"]
    for served in health["rewards"]:
        if served["name"] == name:
            return [(rule["name"], float(rule["weight"])) for rule in served["spec"]["rules"]]
    known = ", ".join(r["name"] for r in health["rewards"])
    raise RewardServerError(f"reward server {url}: unknown reward '{name}' (it serves {known})")


class _BatchPoster:
    """Posts a batch once for all the rule functions of one make_reward_funcs() call: the last
    batch's lists are kept (so their ids cannot be reused by new lists) and compared by
    identity, under a lock so that concurrent callers wait for one scoring."""

    def __init__(self, url, answer_key, reward, token, chunk_size, max_workers, timeout, retries):
        self.url, self.answer_key, self.reward, self.token = url, answer_key, reward, token
        self.chunk_size, self.max_workers = chunk_size, max_workers
        self.timeout, self.retries = timeout, retries
        self._lock = threading.Lock()
        self._key = None
        self._results = None

    def results(self, prompts, completions, completion_ids, kwargs):
        answers = kwargs.get(self.answer_key)
        key = (completions, prompts, completion_ids, answers)
        with self._lock:
            if self._key is not None and all(a is b for a, b in zip(key, self._key)):
                return self._results, False
            results = self._score(prompts, completions, completion_ids, answers)
            self._key, self._results = key, results
            return results, True

    def _score(self, prompts, completions, completion_ids, answers):
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
        chunks = [items[i:i + self.chunk_size] for i in range(0, len(items), self.chunk_size)]

        def score(chunk):
            body = {"items": chunk}
            if self.reward:
                body["reward"] = self.reward
            results = _request(self.url, "/v1/score", body, self.token, self.timeout,
                               self.retries)["results"]
            if len(results) != len(chunk):
                raise RewardServerError(f"expected {len(chunk)} results, got {len(results)}")
            return results

        with concurrent.futures.ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            return [r for results in pool.map(score, chunks) for r in results]


def _rule_values(results, rule, weight):
    # A rule's weighted value; None for a sample with no total. With a total, a rule that could
    # not score was scored 0 by the spec (on_unscorable: zero).
    out = []
    for r in results:
        if r["reward"] is None:
            out.append(None)
        else:
            value = r["components"].get(rule)
            out.append(weight * value if value is not None else 0.0)
    return out


def _rule_function(poster, rule, weight):
    def function(prompts=None, completions=None, completion_ids=None, **kwargs):
        results, fresh = poster.results(prompts, completions, completion_ids, kwargs)
        log_extra = kwargs.get("log_extra")
        if fresh and log_extra is not None:
            for column in ("verdict", "extracted", "status"):
                log_extra(column, [r[column] for r in results])
        return _rule_values(results, rule, weight)

    # TRL names a function's metrics after __name__ (trl.trainer.utils.get_callable_name).
    function.__name__ = function.__qualname__ = rule
    return function


def make_reward_funcs(url=None, answer_key="answer", reward=None, token=None,
                      chunk_size=64, max_workers=8, timeout=120.0, retries=5):
    """One TRL reward function per rule of the server's reward, in spec order. The server must
    be up: its rules are read now (GET /health).

    url: where `rl serve` listens (default: $RL_REWARD_URL or http://127.0.0.1:8000).
    answer_key: the dataset column with the gold answer.
    reward: a named reward of the server (default: the server's default).
    token: bearer token (default: $RL_SERVE_TOKEN when set).
    """
    url = (url or os.environ.get("RL_REWARD_URL", "http://127.0.0.1:8000")).rstrip("/")
    token = token if token is not None else os.environ.get("RL_SERVE_TOKEN")
    rules = _server_rules(url, reward, token, timeout, retries)
    poster = _BatchPoster(url, answer_key, reward, token, chunk_size, max_workers, timeout, retries)
    return [_rule_function(poster, rule, weight) for rule, weight in rules]


def _items_scored(url, token):
    """Items the server has answered on /v1/score (its Prometheus counter)."""
    headers = {"Authorization": "Bearer " + token} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url + "/metrics", headers=headers)) as r:
        lines = r.read().decode().splitlines()
    return sum(int(line.split()[-1]) for line in lines
               if line.startswith('rl_server_items_total{endpoint="/v1/score"'))


def _call_all(funcs, **kwargs):
    # As GRPOTrainer._calculate_rewards does: every function with the same list objects.
    return {f.__name__: f(**kwargs) for f in funcs}


def _self_check(url):
    url = (url or os.environ.get("RL_REWARD_URL", "http://127.0.0.1:8000")).rstrip("/")
    token = os.environ.get("RL_SERVE_TOKEN")
    funcs = make_reward_funcs(url, chunk_size=3)
    assert [f.__name__ for f in funcs] == ["format.think_answer", "accuracy.math"], funcs
    completions = [
        "<think>2+2</think><answer>4</answer>",
        [{"role": "assistant", "content": "<think>2+2</think><answer>5</answer>"}],
        "<think>2+2</think><answer>4</answer>",
    ] * 5
    answers = ["4", "4", None] * 5
    before = _items_scored(url, token)
    scores = _call_all(funcs, prompts=["What is 2+2?"] * 15, completions=completions, answer=answers)
    assert scores == {"format.think_answer": [1.0, 1.0, None] * 5,
                      "accuracy.math": [1.0, 0.0, None] * 5}, scores
    assert _items_scored(url, token) - before == 15, "both rules' functions posted the batch"
    # As TRL calls them: completion_ids, other columns, log_extra, a prompt whose template
    # opened <think>, message prompts ending in a prefilled assistant turn, and a list of
    # acceptable answers.
    thought = "2+2</think><answer>4</answer>"
    prefix = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "<think>"}]
    logged = {}
    scores = _call_all(funcs, prompts=["<|im_start|>assistant\n<think>\n", prefix, "What is 2+2?"],
                       completions=[thought, [{"role": "assistant", "content": thought}], thought],
                       completion_ids=[[1, 2], [1, 2], [1, 2]], answer=[["four", "4"], "4", "4"],
                       trainer_state=None, log_extra=logged.__setitem__, log_metric=None)
    assert scores == {"format.think_answer": [1.0, 1.0, 0.0], "accuracy.math": [1.0, 1.0, 1.0]}, scores
    assert logged["verdict"] == ["correct"] * 3 and logged["extracted"] == ["4"] * 3, logged
    assert logged["status"] == ["ok"] * 3, logged
    # A named reward with weights other than 1; its length rule needs the token count.
    onevision = make_reward_funcs(url, reward="onevision")
    short_and_long = _call_all(onevision, completions=["<think>a</think><answer>4</answer>"] * 2,
                               completion_ids=[[7] * 12, [7] * 4000], answer=["4", "4"])
    assert list(short_and_long) == ["format.tags", "accuracy.math", "length.soft_overlong",
                                    "repetition.ngram"], short_and_long
    assert short_and_long["format.tags"] == [0.5, 0.5], short_and_long  # weight 0.5
    overlong = short_and_long["length.soft_overlong"]
    assert overlong[0] == 0.0 and overlong[1] < 0.0, short_and_long
    try:
        make_reward_funcs(url, reward="no_such_reward")
        raise AssertionError("expected RewardServerError")
    except RewardServerError as e:
        assert "unknown reward 'no_such_reward'" in str(e), e
    if token:  # the server requires a token: none means 401
        try:
            make_reward_funcs(url, token="")[0](completions=["x"], answer=["1"])
            raise AssertionError("expected HTTP 401")
        except RewardServerError as e:
            assert "HTTP 401" in str(e), e
    print(f"trl: one function per rule {[f.__name__ for f in funcs]}, "
          f"{len(completions)} completions scored once: ok")


if __name__ == "__main__":
    _self_check(sys.argv[1] if len(sys.argv) > 1 else None)

"""rl_rewards.verl called exactly as verl calls a custom reward function.

From verl at commit b178a3cd56f58b2d502255daba591e92833930a7:
- get_custom_reward_fn (verl/trainer/ppo/reward.py) loads custom_reward_function.path
  ("pkg://rl_rewards.verl" goes through importlib.import_module) and wraps the function:
      partial(_call_with_kwargs, raw_fn, reward_kwargs)          # plain function
      partial(_call_with_kwargs_async, raw_fn, reward_kwargs)    # coroutine function
  where _call_with_kwargs(raw_fn, extra_kwargs, *args, **kwargs) calls
  raw_fn(*args, **{**kwargs, **extra_kwargs}).
- NaiveRewardManager.run_single (verl/experimental/reward_loop/reward_manager/naive.py) calls
      self.compute_score(data_source=..., solution_str=response_str, ground_truth=ground_truth,
                         extra_info=extra_info)
  awaited when inspect.iscoroutinefunction(self.compute_score), else in the loop's executor;
  extra_info gets "num_turns" and "rollout_reward_scores" added.
`wrap` and `run_single` below are those steps.
"""
import asyncio
import importlib
import inspect
from functools import partial

import numpy as np
import pytest

import rl_rewards


def _call_with_kwargs(raw_fn, extra_kwargs, *args, **kwargs):
    return raw_fn(*args, **{**kwargs, **extra_kwargs})


async def _call_with_kwargs_async(raw_fn, extra_kwargs, *args, **kwargs):
    return await raw_fn(*args, **{**kwargs, **extra_kwargs})


def wrap(name, reward_kwargs):
    module = importlib.import_module("rl_rewards.verl")  # what "pkg://rl_rewards.verl" loads
    raw_fn = getattr(module, name)
    if not inspect.iscoroutinefunction(raw_fn):
        return partial(_call_with_kwargs, raw_fn, dict(reward_kwargs))
    return partial(_call_with_kwargs_async, raw_fn, dict(reward_kwargs))


def run_single(compute_score, response_str, ground_truth, extra_info):
    extra_info = dict(extra_info)
    extra_info["num_turns"] = None
    extra_info["rollout_reward_scores"] = {}

    async def run():
        loop = asyncio.get_running_loop()
        # NaiveRewardManager decides on the wrapped function: a partial of the async wrapper is
        # a coroutine function to inspect (Python 3.8+ unwraps partials).
        if inspect.iscoroutinefunction(compute_score):
            return await compute_score(data_source="openai/gsm8k", solution_str=response_str,
                                       ground_truth=ground_truth, extra_info=extra_info)
        return await loop.run_in_executor(None, lambda: compute_score(
            data_source="openai/gsm8k", solution_str=response_str, ground_truth=ground_truth,
            extra_info=extra_info))

    return asyncio.run(run())


RIGHT = "<think>12 * 12 = 144</think><answer>144</answer>"
WRONG = "<think>12 * 12 = 124</think><answer>124</answer>"
THOUGHT_ONLY = "12 * 12 = 144\n</think>\n<answer>144</answer>"


@pytest.mark.parametrize("name", ["compute_score", "compute_score_async"])
def test_scores_with_the_spec_from_reward_kwargs(name):
    fn = wrap(name, {"spec": "r1"})
    assert run_single(fn, RIGHT, "144", {"index": 0}) == {
        "score": 2.0, "acc": 1.0, "format.think_answer": 1.0, "accuracy.math": 1.0}
    assert run_single(fn, WRONG, "144", {"index": 1})["score"] == 1.0
    assert run_single(fn, WRONG, "144", {})["acc"] == 0.0


@pytest.mark.parametrize("name", ["compute_score", "compute_score_async"])
def test_prompt_from_extra_info_sees_a_prefilled_think(name):
    fn = wrap(name, {"spec": "r1"})
    prompt = "<|im_start|>user\nWhat is 12 * 12?<|im_end|>\n<|im_start|>assistant\n<think>\n"
    assert run_single(fn, THOUGHT_ONLY, "144", {"prompt": prompt})["format.think_answer"] == 1.0
    assert run_single(fn, THOUGHT_ONLY, "144", {})["format.think_answer"] == 0.0
    messages = [{"role": "user", "content": "What is 12 * 12?"}, {"role": "assistant", "content": "<think>\n"}]
    assert run_single(wrap(name, {"spec": "r1", "prompt_key": "raw_prompt"}), THOUGHT_ONLY, "144",
                      {"raw_prompt": messages})["format.think_answer"] == 1.0


def test_list_ground_truths_numpy_and_numbers():
    fn = wrap("compute_score", {"spec": "r1"})
    # verl's parquet rows give lists as numpy arrays.
    assert run_single(fn, RIGHT, np.array(["12^2", "144"], dtype=object), {})["acc"] == 1.0
    assert run_single(fn, RIGHT, ["100", "144"], {})["acc"] == 1.0
    assert run_single(fn, RIGHT, 144, {})["acc"] == 1.0
    assert run_single(fn, RIGHT, np.array([143, 145]), {})["acc"] == 0.0


@pytest.mark.parametrize("name", ["compute_score", "compute_score_async"])
def test_unscorable_raises_naming_why_unless_zero(name):
    with pytest.raises(rl_rewards.verl.UnscorableError,
                       match=r"sample 0 could not be scored: invalid_gold \(accuracy.math: .*on_unscorable=zero"):
        run_single(wrap(name, {"spec": "r1"}), RIGHT, "\\frac{", {})
    assert run_single(wrap(name, {"spec": "r1", "on_unscorable": "zero"}), RIGHT, None, {}) == {
        "score": 0.0, "acc": 0.0, "format.think_answer": 1.0, "accuracy.math": 0.0}


def test_spec_as_a_mapping_and_extra_kwargs_verl_adds():
    spec = {"rules": [{"name": "accuracy.math", "weight": 3}]}
    fn = wrap("compute_score", {"spec": spec})
    assert run_single(fn, RIGHT, "144", {}) == {"score": 3.0, "acc": 1.0, "accuracy.math": 1.0}
    # With a reward model router verl adds two more keyword arguments: ignored.
    assert rl_rewards.verl.compute_score("d", RIGHT, "144", {}, reward_router_address="x:1",
                                         reward_model_tokenizer=None)["score"] == 2.0
    with pytest.raises(ValueError, match="on_unscorable: expected 'error' or 'zero'"):
        rl_rewards.verl.compute_score("d", RIGHT, "144", {}, on_unscorable="skip")

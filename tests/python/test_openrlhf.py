"""rl_rewards.openrlhf called exactly as OpenRLHF calls a reward_func file.

From OpenRLHF at commit 3c3be6234e0cb353e76bb8019947db9dfe99fca7, openrlhf/utils/agent.py,
SingleTurnAgentExecutor:
- __init__: a --reward.remote_url ending in ".py" is loaded as
      spec = importlib.util.spec_from_file_location("reward_func", path)
      reward_module = importlib.util.module_from_spec(spec); spec.loader.exec_module(reward_module)
      self.reward_func = reward_module.reward_func
- execute: query = hf_tokenizer.decode(prompt_ids + action_ids, skip_special_tokens=False), then
      await asyncio.gather(asyncio.to_thread(self.reward_func, [query], [prompt], [label]))
  and reads rewards_info.get("rewards"), .get("scores") (or rewards), .get("extra_logs").
"""
import asyncio
import importlib.util
import os

import pytest

import rl_rewards.openrlhf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_reward_func(path):
    spec = importlib.util.spec_from_file_location("reward_func", path)
    reward_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reward_module)
    return reward_module.reward_func


def fetch(reward_func, queries, prompts, labels):
    async def run():
        return await asyncio.gather(*(asyncio.to_thread(reward_func, [q], [p], [l])
                                      for q, p, l in zip(queries, prompts, labels)))
    return asyncio.run(run())


PROMPT = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
          "What is 3/4 + 1/8?<|im_end|>\n<|im_start|>assistant\n")
THINKING_PROMPT = PROMPT + "<think>\n"


@pytest.mark.parametrize("path", [rl_rewards.openrlhf.__file__,
                                  os.path.join(ROOT, "examples", "openrlhf", "reward_func.py")])
def test_loaded_from_its_file_like_openrlhf(path, monkeypatch):
    monkeypatch.setenv("RL_REWARDS_SPEC", os.path.join(ROOT, "configs", "rewards", "r1.yaml"))
    reward_func = load_reward_func(path)
    queries = [PROMPT + "<think>6/8 + 1/8</think><answer>\\frac{7}{8}</answer><|im_end|>",
               PROMPT + "<think>4/12</think><answer>\\frac{1}{3}</answer><|im_end|><|endoftext|>",
               "<|endoftext|>" * 2 + THINKING_PROMPT + "6/8 + 1/8\n</think><answer>0.875</answer><|im_end|>"]
    prompts = [PROMPT, PROMPT, THINKING_PROMPT]
    labels = ["7/8", "7/8", ["0.875", "7/8"]]
    answers = fetch(reward_func, queries, prompts, labels)
    assert [a["rewards"] for a in answers] == [[2.0], [1.0], [2.0]]
    assert [a["scores"] for a in answers] == [[1.0], [0.0], [1.0]]
    assert [a["extra_logs"] for a in answers] == [
        {"format.think_answer": [1.0], "accuracy.math": [1.0]},
        {"format.think_answer": [1.0], "accuracy.math": [0.0]},
        {"format.think_answer": [1.0], "accuracy.math": [1.0]}]


def test_a_batch_and_numbers_as_labels():
    reward_func = rl_rewards.openrlhf.make_reward_func("r1")
    out = reward_func([PROMPT + "<think>t</think><answer>42</answer>"] * 2, [PROMPT] * 2, [42, 41])
    assert out == {"rewards": [2.0, 1.0], "scores": [1.0, 0.0],
                   "extra_logs": {"format.think_answer": [1.0, 1.0], "accuracy.math": [1.0, 0.0]}}


def test_unscorable_samples_raise_a_clear_error_or_score_zero():
    reward_func = rl_rewards.openrlhf.make_reward_func("r1")
    with pytest.raises(rl_rewards.openrlhf.UnscorableError,
                       match=r"sample 0 could not be scored: missing_gold \(accuracy.math: .*\)\. OpenRLHF needs"):
        reward_func([PROMPT + "<think>t</think><answer>4</answer>"], [PROMPT], [""])
    with pytest.raises(rl_rewards.openrlhf.UnscorableError, match="sample 0 could not be scored: prompt_not_found"):
        reward_func(["something else entirely"], [PROMPT], ["4"])
    zero = rl_rewards.openrlhf.make_reward_func("r1", on_unscorable="zero")
    assert zero([PROMPT + "<think>t</think><answer>4</answer>"], [PROMPT], [None]) == {
        "rewards": [0.0], "scores": [0.0], "extra_logs": {"format.think_answer": [1.0], "accuracy.math": [0.0]}}


def test_the_query_is_split_as_the_server_splits_it():
    # No prompt given: what follows the last assistant marker.
    out = rl_rewards.openrlhf.make_reward_func("r1")(
        [PROMPT + "<think>t</think><answer>\\frac{7}{8}</answer>"], [None], ["0.875"])
    assert out["rewards"] == [2.0]

"""verl: a custom reward function, sync or async, scored in process.

    python3 -m verl.trainer.main_ppo ... \\
      custom_reward_function.path=pkg://rl_rewards.verl \\
      custom_reward_function.name=compute_score \\
      +custom_reward_function.reward_kwargs.spec=r1      # or a path to a spec YAML

(name=compute_score_async for the async variant). How verl calls it, at verl commit
b178a3cd56f58b2d502255daba591e92833930a7: the reward loop's NaiveRewardManager.run_single
(verl/experimental/reward_loop/reward_manager/naive.py) calls, per sample,

    compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)

awaiting it when it is a coroutine function, else in a thread of the loop's executor;
get_custom_reward_fn (verl/trainer/ppo/reward.py) wraps the function so that
custom_reward_function.reward_kwargs are added as keyword arguments. solution_str is the
response decoded without special tokens; ground_truth is the row's reward_model.ground_truth
(a string, a number, or a list: a numpy array when read from parquet); extra_info the row's
extra_info plus num_turns and rollout_reward_scores. verl trains on "score" and logs the other
keys of the returned dict, which must be the same for every sample.

reward_kwargs read here:
  spec            a path, a shipped spec's name or a mapping (default "r1"); compiled once
  prompt_key      the extra_info key holding the prompt the policy saw (default "prompt"): a
                  string, or chat messages of which only a final assistant message (a prefilled
                  "<think>\\n") is known; without it the spec's prefilled_think decides
  on_unscorable   "error" (default): a sample the rules cannot score raises UnscorableError
                  naming it and why; "zero": it scores 0.0
Other keyword arguments verl passes (reward_router_address, ...) are ignored.

Returned: {"score": the total, "acc": 1.0 when the answer check said correct (a reward without
one: its total clamped to [0, 1]), and one key per rule with its own value (0.0 when it could
not score)}.
"""
import asyncio
import functools
import json

import rl_rewards
from rl_rewards import _hosts
from rl_rewards._hosts import UnscorableError

__all__ = ["compute_score", "compute_score_async", "UnscorableError"]


@functools.lru_cache(maxsize=32)
def _compiled(key):
    # verl calls a plain function per sample: compiling the spec (its regexes) on every call
    # would cost more than scoring. Keyed by the spec's text; a Reward is immutable.
    kind, text = key
    return rl_rewards.load(json.loads(text) if kind == "dict" else text)


def _reward(spec):
    if isinstance(spec, rl_rewards.Reward):
        return spec
    if isinstance(spec, str):
        return _compiled(("name", spec))
    plain = rl_rewards._plain(spec)
    if not isinstance(plain, dict):
        raise TypeError(f"reward_kwargs.spec: expected a path, a shipped spec's name or a mapping, "
                        f"got {type(spec).__name__}")
    return _compiled(("dict", json.dumps(plain, sort_keys=True)))


def _score(solution_str, ground_truth, extra_info, reward_kwargs):
    reward = _reward(reward_kwargs.get("spec", "r1"))
    on_unscorable = reward_kwargs.get("on_unscorable", "error")
    if on_unscorable not in ("error", "zero"):
        raise ValueError(f"reward_kwargs.on_unscorable: expected 'error' or 'zero', got {on_unscorable!r}")
    prompt = None
    if extra_info:
        key = reward_kwargs.get("prompt_key", "prompt")
        prompt = _hosts.prompt_text(extra_info.get(key), f"extra_info[{key!r}]")
    result = reward.score([solution_str], answers=[_hosts.golds(ground_truth)],
                          prompts=[prompt], threads=1)[0]
    if result.reward is None and on_unscorable == "error":
        raise UnscorableError(_hosts.unscorable_message(
            0, result, "verl", "custom_reward_function.reward_kwargs.on_unscorable=zero"))
    out = {"score": float(result.reward or 0.0), "acc": _hosts.filter_score(result)}
    for rule, value in result.components.items():
        out[rule] = 0.0 if value is None else float(value)
    return out


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **reward_kwargs):
    """verl's per-sample reward: {"score", "acc", <rule>: value}. See the module's doc."""
    return _score(solution_str, ground_truth, extra_info, reward_kwargs)


async def compute_score_async(data_source, solution_str, ground_truth, extra_info=None, **reward_kwargs):
    """compute_score as a coroutine, which verl awaits on its reward loop: the scoring runs in a
    worker thread without the GIL, so the loop goes on with other samples meanwhile."""
    return await asyncio.to_thread(_score, solution_str, ground_truth, extra_info, reward_kwargs)

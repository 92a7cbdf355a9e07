"""rl_rewards: the project's rule-based rewards in Python, in process, no server.

    import rl_rewards

    reward = rl_rewards.load("r1")                      # a spec shipped with the package
    reward = rl_rewards.Reward.from_yaml("configs/rewards/r1.yaml")
    reward = rl_rewards.Reward.from_dict({"rules": [{"name": "accuracy.math"}]})

    results = reward.score(
        ["<think>2+2 is 4</think><answer>4</answer><|im_end|>"],
        answers=["4"],             # optional: per completion a string, a number, None, or a
                                   # list of acceptable answers (the best result counts)
        prompts=None,              # optional: the prompts as the policy saw them (a prompt
                                   # ending with <think> means the completion starts inside it)
        completion_tokens=None,    # optional: token counts, for the length rules
        threads=0)                 # scoring threads, 0: all cores
    r = results[0]
    r.reward      # the weighted total, or None when a rule could not score (spec: on_unscorable)
    r.components  # {"format.think_answer": 1.0, "accuracy.math": 1.0}, None for a rule that could not
    r.status      # "ok", "missing_gold", "missing_token_count", "invalid_gold", "budget_exceeded", ...
    r.verdict     # the answer check: "correct", "incorrect", "no_answer", ... or None without one
    r.extracted   # the answer taken from the completion, or None
    r.detail      # why, when status is not "ok"
    r.to_dict()   # the JSON form `rl serve` and `rl score` write

    rl_rewards.math.verify("\\frac{1}{2}", "0.5")        # True
    rl_rewards.math.check("\\frac{1}{2}", "x = 0.4")    # CheckResult: verdict, extracted, detail, ...

Spec format and rules: rewards/reward.h (the same YAML files as `rl score` and `rl serve`).
Errors: a spec that does not compile raises SpecError (a ValueError) with the C++ message
("r1.yaml:7: key 'rules[1].weight': expected a number, got a string"); wrong argument types
raise TypeError and wrong lengths ValueError, naming the argument and item ("answers[2]: ...").
A sample that cannot be scored is never an exception: its result says why.

Threads: Reward.score and rl_rewards.math.check release the GIL while they score, and a batch
is scored on up to `threads` cores (ScoreBatch), so Python threads score in parallel. A Reward
is immutable: share one between threads.

Adapters for trainers: rl_rewards.trl, rl_rewards.verl, rl_rewards.openrlhf.
"""
import os as _os

from ._core import Reward, Result, SpecError
from . import math

__all__ = ["Reward", "Result", "SpecError", "load", "SPECS", "math"]

_SPEC_DIR = _os.path.join(_os.path.dirname(__file__), "specs")

# The reward specs shipped with the package (the project's configs/rewards/*.yaml), by name.
SPECS = {
    name[: -len(".yaml")]: _os.path.join(_SPEC_DIR, name)
    for name in sorted(_os.listdir(_SPEC_DIR)) if name.endswith(".yaml")
} if _os.path.isdir(_SPEC_DIR) else {}


def load(spec):
    """A Reward from whatever names one: a Reward (returned as is), a dict (the spec itself), a
    path to a YAML spec, or the name of a spec shipped with the package (SPECS: "r1",
    "open_r1", "onevision"). Mappings that are not dicts (OmegaConf's DictConfig) and their
    nested lists are read as plain data."""
    if isinstance(spec, Reward):
        return spec
    if isinstance(spec, (str, _os.PathLike)):
        path = _os.fspath(spec)
        if _os.path.isfile(path):
            return Reward.from_yaml(path)
        if path in SPECS:
            return Reward.from_yaml(SPECS[path])
        raise SpecError(f"spec: '{path}' is neither a file nor a shipped spec "
                        f"(expected a path or one of {', '.join(SPECS)})")
    plain = _plain(spec)
    if isinstance(plain, dict):
        return Reward.from_dict(plain)
    raise TypeError(f"spec: expected a Reward, a dict, a path or a shipped spec's name, "
                    f"got {type(spec).__name__}")


def _plain(value):
    """Mappings and sequences as dicts and lists, recursively (config objects into plain data)."""
    from collections.abc import Mapping, Sequence
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [_plain(v) for v in value]
    return value

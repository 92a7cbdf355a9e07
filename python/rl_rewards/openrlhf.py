"""OpenRLHF: a reward_func for --reward.remote_url path/to/reward_func.py, scored in process.

    python3 -m openrlhf.cli.train_ppo_ray ... --data.label_key answer \\
      --reward.remote_url "$(python3 -c 'import rl_rewards.openrlhf as m; print(m.__file__)')"

or a reward_func.py of your own (examples/openrlhf/reward_func.py):

    from rl_rewards.openrlhf import make_reward_func
    reward_func = make_reward_func("configs/rewards/r1.yaml")

How OpenRLHF calls it, at OpenRLHF commit 3c3be6234e0cb353e76bb8019947db9dfe99fca7
(openrlhf/utils/agent.py, SingleTurnAgentExecutor): a --reward.remote_url ending in ".py" is
loaded with importlib.util.spec_from_file_location (so this file imports the package by its
absolute name) and its `reward_func` called, one sample at a time, in a worker thread:

    asyncio.to_thread(reward_func, [query], [prompt], [label])

query is prompt + response decoded with special tokens kept, prompt the dataset's prompt (chat
template applied with --data.apply_chat_template, so a template's prefilled <think> ends it),
label the --data.label_key column (a string, a number or a list of acceptable answers). The
returned "rewards" train, "scores" feed dynamic filtering, "extra_logs" are logged; OpenRLHF
reads each as one value per sample, lists as /get_reward sends them.

The module's reward_func reads its spec from $RL_REWARDS_SPEC (a path or a shipped spec's name,
default "r1") and $RL_REWARDS_ON_UNSCORABLE ("error", default, or "zero"). A sample the rules
cannot score raises UnscorableError naming it and why (OpenRLHF logs the message and the
sample gets no reward), or scores 0 under "zero", as `rl serve`'s /get_reward does.
"""
import functools
import os

import rl_rewards
from rl_rewards import _core, _hosts
from rl_rewards._hosts import UnscorableError

__all__ = ["make_reward_func", "reward_func", "UnscorableError"]


def make_reward_func(spec="r1", on_unscorable="error", threads=0):
    """A reward_func(queries, prompts, labels, **kwargs) for OpenRLHF scoring with `spec` (a
    path, a shipped spec's name, a dict or a Reward). on_unscorable: "error" raises
    UnscorableError, "zero" scores such samples 0."""
    if on_unscorable not in ("error", "zero"):
        raise ValueError(f"on_unscorable: expected 'error' or 'zero', got {on_unscorable!r}")
    reward = rl_rewards.load(spec)
    rules = reward.rule_names

    def reward_func(queries, prompts, labels, **kwargs):
        n = len(queries)
        for name, column in (("prompts", prompts), ("labels", labels)):
            if column is not None and len(column) != n:
                raise ValueError(f"{name}: expected {n} items (as many as queries), got {len(column)}")
        split_prompts, completions, unlocated = [], [], set()
        for i, query in enumerate(queries):
            prompt = prompts[i] if prompts is not None else None
            # Where the completion starts, as /get_reward finds it (rewards/server/handlers.h).
            split = _core.split_openrlhf_query(query, prompt if isinstance(prompt, str) else "")
            if split is None:
                unlocated.add(i)
                split = ("", "")
            split_prompts.append(split[0])
            completions.append(split[1])
        answers = [_hosts.golds(label) for label in labels] if labels is not None else None
        results = reward.score(completions, answers=answers, prompts=split_prompts, threads=threads)
        if unlocated and on_unscorable == "error":
            raise UnscorableError(f"sample {min(unlocated)} could not be scored: prompt_not_found (the "
                                  "query does not start with its prompt and has no assistant marker)")
        rewards, scores, logs = [], [], {rule: [] for rule in rules}
        for i, result in enumerate(results):
            scorable = result.reward is not None and i not in unlocated
            if not scorable and on_unscorable == "error":
                raise UnscorableError(_hosts.unscorable_message(
                    i, result, "OpenRLHF", "RL_REWARDS_ON_UNSCORABLE=zero (make_reward_func(on_unscorable='zero'))"))
            rewards.append(result.reward if scorable else 0.0)
            scores.append(_hosts.filter_score(result) if scorable else 0.0)
            components = result.components
            for rule in rules:
                value = components.get(rule) if i not in unlocated else None
                logs[rule].append(0.0 if value is None else value)
        return {"rewards": rewards, "scores": scores, "extra_logs": logs}

    return reward_func


@functools.lru_cache(maxsize=8)
def _configured(spec, on_unscorable):
    # Compiled once per configuration, on the first call: importing the module (as OpenRLHF does
    # in every rollout worker) reads no environment and compiles nothing.
    return make_reward_func(spec, on_unscorable)


def reward_func(queries, prompts, labels, **kwargs):
    """OpenRLHF's reward_func with the spec of $RL_REWARDS_SPEC (default "r1") and
    $RL_REWARDS_ON_UNSCORABLE (default "error"). See the module's doc."""
    configured = _configured(os.environ.get("RL_REWARDS_SPEC", "r1"),
                             os.environ.get("RL_REWARDS_ON_UNSCORABLE", "error"))
    return configured(queries, prompts, labels, **kwargs)

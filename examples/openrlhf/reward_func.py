"""OpenRLHF's custom reward file, scored in process by the rl_rewards package:

    python3 -m openrlhf.cli.train_ppo_ray ... --data.label_key answer \
      --reward.remote_url examples/openrlhf/reward_func.py

OpenRLHF loads this file and calls reward_func(queries, prompts, labels) per sample (see
python/rl_rewards/openrlhf.py). The spec: $RL_REWARDS_SPEC (a spec YAML, or r1, open_r1,
onevision), default r1. A sample that cannot be scored raises an error naming it;
RL_REWARDS_ON_UNSCORABLE=zero scores it 0 instead. Needs the package importable: build the
project (PYTHONPATH=build/python) or `pip install --no-build-isolation ./python`.
"""
from rl_rewards.openrlhf import reward_func  # noqa: F401  (OpenRLHF looks up this name)

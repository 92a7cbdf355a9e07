"""rl_rewards.trl called exactly as TRL's GRPOTrainer calls reward functions.

The call, from GRPOTrainer._calculate_rewards (trl/trainer/grpo_trainer.py, TRL v1.9.0, commit
a785283c0ea7395092fc5bd60fc38e7f4d972003):

    keys = [key for key in inputs[0] if key not in ["prompt", "completion", "completion_ids"]]
    reward_kwargs = {key: [example[key] for example in inputs] for key in keys}
    reward_kwargs["trainer_state"] = self.state
    reward_kwargs["log_extra"] = self._log_completion_extra
    reward_kwargs["log_metric"] = self._log_metric
    output_reward_func = reward_func(prompts=prompts, completions=completions,
                                     completion_ids=completion_ids_list, **reward_kwargs)
    # async functions: await func(prompts=..., ...) for all of them in asyncio.gather

and the metric name from trl.trainer.utils.get_callable_name (func.__name__). `calculate_rewards`
below is that code without torch, so that a wrong keyword or shape fails here as in TRL.
"""
import asyncio
import inspect
import json
import os
from collections import defaultdict

import pytest

from rl_rewards import trl as rl_trl

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class TrainerLogs:
    """GRPOTrainer's _log_completion_extra and _log_metric: what they record."""

    def __init__(self):
        self.extra = defaultdict(list)
        self.metrics = defaultdict(list)

    def log_extra(self, column, values):
        self.extra[column].extend(values)

    def log_metric(self, name, value):
        self.metrics[name].append(value)


def calculate_rewards(reward_funcs, inputs, prompts, completions, completion_ids_list, logs):
    keys = [key for key in inputs[0] if key not in ["prompt", "completion", "completion_ids"]]
    reward_kwargs = {key: [example[key] for example in inputs] for key in keys}
    reward_kwargs["trainer_state"] = object()
    reward_kwargs["log_extra"] = logs.log_extra
    reward_kwargs["log_metric"] = logs.log_metric
    columns = {}
    async_funcs = []
    for func in reward_funcs:
        name = getattr(func, "__name__", type(func).__name__)
        if inspect.iscoroutinefunction(func):
            async_funcs.append((name, func))
        else:
            output = func(prompts=prompts, completions=completions, completion_ids=completion_ids_list,
                          **reward_kwargs)
            columns[name] = [r if r is not None else float("nan") for r in output]

    async def gather():
        async def invoke(name, func):
            output = await func(prompts=prompts, completions=completions,
                                completion_ids=completion_ids_list, **reward_kwargs)
            return name, [r if r is not None else float("nan") for r in output]
        return await asyncio.gather(*(invoke(n, f) for n, f in async_funcs))

    if async_funcs:
        columns.update(dict(asyncio.run(gather())))
    return columns


def nan_to_none(column):
    return [None if v != v else v for v in column]


# A DeepSeek-R1-Distill-style turn: the generation prompt opens the think block.
R1_DISTILL_PROMPT = "<｜begin▁of▁sentence｜><｜User｜>What is 6 * 7?<｜Assistant｜><think>\n"
THOUGHT_ONLY = "6 * 7 = 42.\n</think>\n<answer>42</answer>"
FULL = "<think>6 * 7 = 42.</think>\n<answer>42</answer>"


def test_one_function_per_rule_named_after_it():
    funcs = rl_trl.reward_funcs("r1")
    assert [f.__name__ for f in funcs] == ["format.think_answer", "accuracy.math"]
    assert not any(inspect.iscoroutinefunction(f) for f in funcs)
    assert all(inspect.iscoroutinefunction(f) for f in rl_trl.async_reward_funcs("r1"))


def test_standard_prompts_with_prefilled_think_and_completion_ids():
    inputs = [{"prompt": R1_DISTILL_PROMPT, "solution": "42"},
              {"prompt": R1_DISTILL_PROMPT, "solution": "42"},
              {"prompt": "Plain prompt. ", "solution": "41"}]
    prompts = [x["prompt"] for x in inputs]
    completions = [THOUGHT_ONLY, THOUGHT_ONLY.replace("42</answer>", "41</answer>"), FULL]
    logs = TrainerLogs()
    columns = calculate_rewards(rl_trl.reward_funcs("r1"), inputs, prompts, completions,
                                [[1] * 12, [1] * 12, [1] * 14], logs)
    # The prompt ends with <think>: the completion starts inside the thought, format holds.
    assert columns["format.think_answer"] == [1.0, 1.0, 1.0]
    assert columns["accuracy.math"] == [1.0, 0.0, 0.0]
    assert logs.extra["verdict"] == ["correct", "incorrect", "incorrect"]
    assert logs.extra["extracted"] == ["42", "41", "42"]
    assert logs.extra["status"] == ["ok"] * 3
    assert logs.metrics["rl_rewards/unscorable"] == [0.0]  # logged once per batch, not per rule


def test_completion_ids_feed_the_length_rules(tmp_path):
    spec = {"rules": [{"name": "format.think_answer"},
                      {"name": "length.soft_overlong", "weight": 2,
                       "params": {"max_length": 100, "cache_length": 20}}]}
    inputs = [{"prompt": "p", "answer": "1"}] * 2
    columns = calculate_rewards(rl_trl.reward_funcs(spec), inputs, ["p", "p"], [FULL, FULL],
                                [list(range(10)), list(range(90))], TrainerLogs())
    assert columns["length.soft_overlong"] == [0.0, pytest.approx(-1.0)]  # weight 2 * -0.5


def test_conversational_prompts_and_completions():
    messages = [{"role": "user", "content": "What is 6 * 7?"}]
    prefix = messages + [{"role": "assistant", "content": "<think>\n"}]
    inputs = [{"prompt": prefix, "answer": 42}, {"prompt": messages, "answer": "42"}]
    completions = [[{"role": "assistant", "content": THOUGHT_ONLY}],
                   [{"role": "assistant", "content": [{"type": "text", "text": FULL}]}]]
    columns = calculate_rewards(rl_trl.reward_funcs("r1"), inputs, [x["prompt"] for x in inputs],
                                completions, [[1], [1]], TrainerLogs())
    # A final assistant message is the start of the completion: <think> was prefilled there.
    assert columns["format.think_answer"] == [1.0, 1.0]
    assert columns["accuracy.math"] == [1.0, 1.0]


class JinjaChatTokenizer:
    """A tokenizer's apply_chat_template(conversation, tokenize=False, add_generation_prompt=...,
    continue_final_message=..., **kwargs) as transformers renders it: Jinja2's sandbox with
    trim_blocks and lstrip_blocks. The template is the part of DeepSeek-R1-Distill's that matters
    here: its generation prompt opens the think block."""

    TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}<｜User｜>"
                "{{ m['content'] }}{% endif %}{% endfor %}"
                "{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}")

    def __init__(self):
        from jinja2.sandbox import ImmutableSandboxedEnvironment
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        self.template = env.from_string(self.TEMPLATE)
        self.calls = []

    def apply_chat_template(self, conversation, tokenize=True, add_generation_prompt=False,
                            continue_final_message=False, **kwargs):
        assert tokenize is False
        self.calls.append(dict(add_generation_prompt=add_generation_prompt,
                               continue_final_message=continue_final_message, **kwargs))
        return self.template.render(messages=conversation, add_generation_prompt=add_generation_prompt,
                                    bos_token="<｜begin▁of▁sentence｜>", **kwargs)


def test_message_prompts_rendered_by_the_tokenizer_template():
    pytest.importorskip("jinja2")
    tokenizer = JinjaChatTokenizer()
    messages = [{"role": "user", "content": "What is 6 * 7?"}]
    inputs = [{"prompt": messages, "solution": "42"}] * 2
    funcs = rl_trl.reward_funcs("r1", tokenizer=tokenizer, chat_template_kwargs={"enable_thinking": True})
    columns = calculate_rewards(funcs, inputs, [messages, messages],
                                [[{"role": "assistant", "content": THOUGHT_ONLY}]] * 2, None, TrainerLogs())
    assert columns["format.think_answer"] == [1.0, 1.0]
    assert tokenizer.calls[0] == {"add_generation_prompt": True, "continue_final_message": False,
                                  "enable_thinking": True}
    # Without the tokenizer the template's <think> is unknown and the spec's auto says "not open".
    columns = calculate_rewards(rl_trl.reward_funcs("r1"), inputs, [messages, messages],
                                [[{"role": "assistant", "content": THOUGHT_ONLY}]] * 2, None, TrainerLogs())
    assert columns["format.think_answer"] == [0.0, 0.0]


def test_unscorable_rows_are_none_for_every_rule_and_list_golds():
    inputs = [{"prompt": "p", "solution": None}, {"prompt": "p", "solution": ["7", "42"]},
              {"prompt": "p", "solution": "\\frac{"}]
    logs = TrainerLogs()
    columns = calculate_rewards(rl_trl.reward_funcs("r1"), inputs, ["p"] * 3, [FULL] * 3,
                                [[1]] * 3, logs)
    assert nan_to_none(columns["format.think_answer"]) == [None, 1.0, None]
    assert nan_to_none(columns["accuracy.math"]) == [None, 1.0, None]
    assert logs.extra["status"] == ["missing_gold", "ok", "invalid_gold"]
    assert logs.metrics["rl_rewards/unscorable"] == [pytest.approx(2 / 3)]


def test_on_unscorable_zero_keeps_the_other_rules():
    with open(os.path.join(ROOT, "configs", "rewards", "r1.yaml"), encoding="utf-8") as f:
        assert "on_unscorable: skip" in f.read()
    spec = {"on_unscorable": "zero", "rules": [{"name": "format.think_answer"}, {"name": "accuracy.math"}]}
    columns = calculate_rewards(rl_trl.reward_funcs(spec), [{"prompt": "p", "solution": None}], ["p"],
                                [FULL], [[1]], TrainerLogs())
    assert columns == {"format.think_answer": [1.0], "accuracy.math": [0.0]}


def test_async_variant_gathered_like_trl():
    inputs = [{"prompt": R1_DISTILL_PROMPT, "solution": "42"}] * 3
    logs = TrainerLogs()
    columns = calculate_rewards(rl_trl.async_reward_funcs("r1"), inputs, [R1_DISTILL_PROMPT] * 3,
                                [THOUGHT_ONLY, FULL, "no tags"], [[1]] * 3, logs)
    assert columns["format.think_answer"] == [1.0, 0.0, 0.0]
    assert columns["accuracy.math"] == [1.0, 1.0, 0.0]
    assert len(logs.extra["verdict"]) == 3  # the batch was scored once for both rules


def test_a_new_batch_is_scored_again():
    funcs = rl_trl.reward_funcs("r1")
    first = calculate_rewards(funcs, [{"prompt": "p", "solution": "42"}], ["p"], [FULL], [[1]], TrainerLogs())
    second = calculate_rewards(funcs, [{"prompt": "p", "solution": "41"}], ["p"], [FULL], [[1]], TrainerLogs())
    assert first["accuracy.math"] == [1.0] and second["accuracy.math"] == [0.0]


def test_mismatched_columns_name_the_column():
    with pytest.raises(ValueError, match="solution: expected 2 items"):
        rl_trl.reward_funcs("r1")[0](prompts=["p", "p"], completions=[FULL, FULL], completion_ids=None,
                                     solution=["1"])
    with pytest.raises(TypeError, match=r"completions\[0\]: expected a string or a list of chat messages"):
        rl_trl.reward_funcs("r1")[0](prompts=None, completions=[json], completion_ids=None)

"""TRL's GRPOTrainer: one reward function per rule of a spec, scored in process.

    from rl_rewards.trl import reward_funcs
    trainer = GRPOTrainer(model=..., reward_funcs=reward_funcs("r1", tokenizer=tokenizer),
                          train_dataset=dataset, args=GRPOConfig(...))

How TRL calls a reward function (GRPOTrainer._calculate_rewards in trl/trainer/grpo_trainer.py,
TRL v1.9.0, commit a785283c0ea7395092fc5bd60fc38e7f4d972003):

    reward_func(prompts=prompts, completions=completions, completion_ids=completion_ids_list,
                **reward_kwargs)

reward_kwargs holds every other dataset column as a list (one item per completion) plus
trainer_state, log_extra(column, values) and log_metric(name, value); an `async def` function
is awaited instead, all of them gathered on TRL's event loop. TRL names a function's metrics
rewards/<__name__>/mean and /std, sums the functions' values times GRPOConfig.reward_weights
(default 1), treats None as missing (nansum), and leaves out of the advantages a row for which
every function returned None.

So each function here is named after its rule and returns the rule's weighted value, so that
TRL's sum is the spec's total and its log has one line per rule. A sample the spec leaves
unscorable (no gold, an unreadable gold, a missing token count: its result has no total)
gets None from every function, so TRL drops the row instead of training on the other rules.

What each argument becomes:
  prompts           strings are the prompt text; chat messages are rendered by `tokenizer`'s chat
                    template with the generation prompt (pass TRL's processing class, and
                    chat_template_kwargs as in GRPOConfig), so a template that opens <think>
                    (DeepSeek-R1-Distill, Qwen3 thinking variants) is seen; without a tokenizer
                    only a final assistant message (a prefix to continue) is known, and the
                    spec's prefilled_think (always | never) should say what the template does
  completions       strings, or messages (the last one's content)
  completion_ids    token counts for the length rules
  solution, answer  the gold: the first of `answer_keys` present among the columns; a string,
                    a number, None, or a list of acceptable answers
  log_extra         when TRL passes it: columns "verdict", "extracted" and "status"
  log_metric        when TRL passes it: "rl_rewards/unscorable", the fraction without a total

The functions of one reward_funcs() call score a batch once: the first called scores every
rule and the others read its results (the batch is recognised by the identity of the lists
TRL passes to all of them).
"""
import asyncio
import threading

import rl_rewards
from rl_rewards import _hosts

__all__ = ["reward_funcs", "async_reward_funcs"]


class _BatchScorer:
    """Scores a batch once for all the rule functions of one reward_funcs() call.

    TRL passes the same list objects to every reward function of a step. The last batch's
    lists are kept (so their ids cannot be reused by new lists) and compared by identity; a
    lock makes threads that ask for the same batch wait for one scoring instead of repeating
    it (the async functions run their scoring in worker threads at once)."""

    def __init__(self, reward, answer_keys, tokenizer, chat_template_kwargs, threads):
        self.reward = reward
        self.answer_keys = tuple(answer_keys)
        self.tokenizer = tokenizer
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.threads = threads
        self._lock = threading.Lock()
        self._key = None
        self._results = None

    def _render(self, messages):
        # As TRL renders a conversational prompt for generation; a final assistant message is
        # continued rather than closed (continue_final_message), as TRL's prefix prompts are.
        last_is_assistant = bool(messages) and messages[-1].get("role") == "assistant"
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=not last_is_assistant,
            continue_final_message=last_is_assistant, **self.chat_template_kwargs)

    def results(self, prompts, completions, completion_ids, kwargs):
        gold_key = next((k for k in self.answer_keys if k in kwargs), None)
        gold_column = kwargs.get(gold_key) if gold_key else None
        key = (completions, prompts, completion_ids, gold_column)
        with self._lock:
            if self._key is not None and all(a is b for a, b in zip(key, self._key)):
                return self._results, False
            results = self._score(prompts, completions, completion_ids, gold_key, gold_column)
            self._key, self._results = key, results
            return results, True

    def _score(self, prompts, completions, completion_ids, gold_key, gold_column):
        n = len(completions)
        for name, column in (("prompts", prompts), ("completion_ids", completion_ids),
                             (gold_key, gold_column)):
            if column is not None and len(column) != n:
                raise ValueError(f"{name}: expected {n} items (as many as completions), got {len(column)}")
        render = self._render if self.tokenizer is not None else None
        texts = [_hosts.completion_text(c, f"completions[{i}]") for i, c in enumerate(completions)]
        prompt_texts = None
        if prompts is not None:
            prompt_texts = [_hosts.prompt_text(p, f"prompts[{i}]", render) for i, p in enumerate(prompts)]
        tokens = [len(ids) for ids in completion_ids] if completion_ids is not None else None
        answers = [_hosts.golds(g) for g in gold_column] if gold_column is not None else None
        return self.reward.score(texts, answers=answers, prompts=prompt_texts,
                                 completion_tokens=tokens, threads=self.threads)


def _log(results, log_extra, log_metric):
    if log_extra is not None:
        log_extra("verdict", [r.verdict for r in results])
        log_extra("extracted", [r.extracted for r in results])
        log_extra("status", [r.status for r in results])
    if log_metric is not None and results:
        log_metric("rl_rewards/unscorable", sum(r.reward is None for r in results) / len(results))


def _rule_values(results, rule, weight):
    # A rule's weighted value; None for a sample with no total. With a total, a rule that could
    # not score was scored 0 by the spec (on_unscorable: zero).
    out = []
    for r in results:
        if r.reward is None:
            out.append(None)
        else:
            value = r.components.get(rule)
            out.append(weight * value if value is not None else 0.0)
    return out


def _rules(reward):
    return [(rule["name"], float(rule.get("weight", 1.0))) for rule in reward.spec["rules"]]


def _named(function, rule):
    # TRL reads __name__ for its metric names (trl.trainer.utils.get_callable_name).
    function.__name__ = rule
    function.__qualname__ = rule
    return function


def reward_funcs(spec="r1", *, tokenizer=None, chat_template_kwargs=None,
                 answer_keys=("solution", "answer"), threads=0):
    """One TRL reward function per rule of `spec` (a path, a shipped spec's name, a dict or a
    Reward; see rl_rewards.load), in spec order. `tokenizer` renders chat-message prompts (TRL's
    processing class); `answer_keys` are the dataset columns tried for the gold, in order;
    `threads` scoring threads (0: all cores)."""
    reward = rl_rewards.load(spec)
    scorer = _BatchScorer(reward, answer_keys, tokenizer, chat_template_kwargs, threads)
    return [_sync_function(scorer, rule, weight) for rule, weight in _rules(reward)]


def _sync_function(scorer, rule, weight):
    def function(prompts=None, completions=None, completion_ids=None, **kwargs):
        results, fresh = scorer.results(prompts, completions, completion_ids, kwargs)
        if fresh:
            _log(results, kwargs.get("log_extra"), kwargs.get("log_metric"))
        return _rule_values(results, rule, weight)
    return _named(function, rule)


def _async_function(scorer, rule, weight):
    async def function(prompts=None, completions=None, completion_ids=None, **kwargs):
        results, fresh = await asyncio.to_thread(scorer.results, prompts, completions,
                                                 completion_ids, kwargs)
        if fresh:
            _log(results, kwargs.get("log_extra"), kwargs.get("log_metric"))
        return _rule_values(results, rule, weight)
    return _named(function, rule)


def async_reward_funcs(spec="r1", *, tokenizer=None, chat_template_kwargs=None,
                       answer_keys=("solution", "answer"), threads=0):
    """reward_funcs as `async def` functions, which TRL gathers on its event loop: the scoring
    runs in a worker thread without the GIL, so the loop and other async rewards (an LLM judge)
    go on meanwhile."""
    reward = rl_rewards.load(spec)
    scorer = _BatchScorer(reward, answer_keys, tokenizer, chat_template_kwargs, threads)
    return [_async_function(scorer, rule, weight) for rule, weight in _rules(reward)]

"""rl_rewards.math: is an answer mathematically equal to the gold? (rewards/math/verify.h)

    from rl_rewards.math import verify, check

    verify("\\frac{1}{2}", "The answer is $0.5$.")   # True: gold first, then the prediction
    r = check("\\frac{1}{2}", "so x = \\boxed{0.4}")
    r.verdict         # "correct", "incorrect", "no_answer", "unparseable_answer",
                      # "invalid_gold" or "budget_exceeded"
    r.extracted       # "0.4": the answer taken from the prediction
    r.pred_canonical, r.gold_canonical, r.detail, r.nodes

The prediction may be a whole completion: its final answer is extracted (<answer> block,
\\boxed{}, "the answer is ...", ...). The check is bounded by counted work, so the same inputs
get the same verdict on any machine; it never raises for any text and releases the GIL.
"""
from ._core import math as _core_math

CheckResult = _core_math.CheckResult
check = _core_math.check
verify = _core_math.verify

__all__ = ["CheckResult", "check", "verify"]

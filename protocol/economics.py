"""Sizing stakes and sampling rates: the deterrence condition in numbers.

A solver that cheats on ``m`` of a result's ``n`` checkpoint intervals (skips them, or computes them
wrong) saves roughly ``m / n`` of the training cost. Each verifier re-executes ``k = ceil(rate * n)``
intervals drawn without replacement by a choice the solver cannot predict (the verifier daemon's
``keccak(secret || blockhash)``), so it misses every bad interval with the hypergeometric probability
``C(n - m, k) / C(n, k)``. With ``v`` independent verifiers the cheat survives only if all of them
miss. Deterrence needs

    stake * P(detect) > gain,       i.e.   stake > gain / P(detect),

since a caught solver loses its locked stake through the dispute game (which an honest challenger
always wins). A verifier keeps checking only while it pays: its expected reward from the slash
(its beneficiary share, when there is a cheat to catch) must cover the re-execution it does on
every result. These functions are what `notebooks/02_economics.ipynb` plots.
"""

from __future__ import annotations

from math import ceil, comb


def samples(n_intervals: int, rate: float) -> int:
    """Intervals one verifier re-executes at sampling ``rate`` (at least one, at most all)."""
    if n_intervals < 1:
        raise ValueError(f"a result has at least one interval, got {n_intervals}")
    if not 0 < rate <= 1:
        raise ValueError(f"sampling rate must be in (0, 1], got {rate}")
    return max(1, min(n_intervals, ceil(rate * n_intervals)))


def p_detect_one(n_intervals: int, bad: int, k: int) -> float:
    """P(one verifier sampling ``k`` of ``n`` intervals hits at least one of ``bad`` wrong ones)."""
    if not 0 <= bad <= n_intervals:
        raise ValueError(f"bad intervals must be in [0, {n_intervals}], got {bad}")
    if bad == 0:
        return 0.0
    if k > n_intervals - bad:
        return 1.0
    return 1.0 - comb(n_intervals - bad, k) / comb(n_intervals, k)


def p_detect(n_intervals: int, bad: int, rate: float, verifiers: int = 1) -> float:
    """P(at least one of ``verifiers`` independent verifiers catches the cheat)."""
    if verifiers < 1:
        raise ValueError("at least one verifier")
    miss = 1.0 - p_detect_one(n_intervals, bad, samples(n_intervals, rate))
    return 1.0 - miss**verifiers


def min_stake(gain: float, detect: float) -> float:
    """The least stake that makes cheating a losing bet: stake * P(detect) > gain."""
    if detect <= 0:
        return float("inf")
    return gain / detect


def verifier_profit(task_cost: float, rate: float, stake: float, beneficiary_bps: int, cheat_prob: float,
                    detect_one: float) -> float:
    """Expected profit per result of one verifier: reward share of a caught cheat minus its re-execution."""
    reward = cheat_prob * detect_one * stake * beneficiary_bps / 10_000
    return reward - rate * task_cost


def verifier_min_stake(task_cost: float, rate: float, beneficiary_bps: int, cheat_prob: float,
                       n_intervals: int, bad: int) -> float:
    """The stake behind a result at which a verifier sampling at ``rate`` breaks even.

    Catching a single bad interval has probability about ``rate``, and so does the cost of looking
    (``rate * task_cost``): the rate cancels, and what decides whether verifying pays is the stake
    at risk times the share a verifier gets times how often solvers cheat.
    """
    d = p_detect_one(n_intervals, bad, samples(n_intervals, rate))
    if d == 0 or cheat_prob == 0 or beneficiary_bps == 0:
        return float("inf")
    return rate * task_cost / (cheat_prob * d * beneficiary_bps / 10_000)

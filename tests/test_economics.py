"""The deterrence arithmetic behind stakes and sampling rates."""

from __future__ import annotations

import random

import pytest

from protocol.economics import min_stake, p_detect, p_detect_one, samples, verifier_min_stake, verifier_profit


def test_p_detect_one_matches_simulation() -> None:
    rng = random.Random(7)
    n, bad, k = 30, 3, 5
    hits = 0
    trials = 20_000
    for _ in range(trials):
        bad_set = set(rng.sample(range(n), bad))
        hits += any(i in bad_set for i in rng.sample(range(n), k))
    assert abs(hits / trials - p_detect_one(n, bad, k)) < 0.01


def test_p_detect_edges() -> None:
    assert p_detect_one(10, 0, 10) == 0.0
    assert p_detect_one(10, 1, 10) == 1.0
    assert p_detect_one(10, 6, 5) == 1.0  # pigeonhole
    assert p_detect(6, 1, 1.0) == 1.0
    assert p_detect(100, 1, 0.1, verifiers=2) == pytest.approx(1 - 0.9**2)
    assert samples(7, 0.01) == 1 and samples(7, 1.0) == 7
    with pytest.raises(ValueError):
        samples(7, 0.0)
    with pytest.raises(ValueError):
        p_detect_one(5, 6, 1)


def test_deterrence_and_verifier_incentive() -> None:
    d = p_detect(60, 1, 0.25, verifiers=2)
    stake = min_stake(gain=1.0, detect=d)
    assert stake * d == pytest.approx(1.0) and stake > 1.0
    assert min_stake(1.0, 0.0) == float("inf")
    # Re-executing everything costs the whole task; a big enough stake pays for it.
    assert verifier_profit(1.0, 1.0, 100.0, 5_000, 0.05, 1.0) == pytest.approx(1.5)
    s = verifier_min_stake(1.0, 0.25, 5_000, 0.05, 20, 1)
    d = p_detect_one(20, 1, samples(20, 0.25))
    assert verifier_profit(1.0, 0.25, s, 5_000, 0.05, d) == pytest.approx(0.0, abs=1e-12)
    assert verifier_min_stake(1.0, 0.25, 5_000, 0.0, 20, 1) == float("inf")

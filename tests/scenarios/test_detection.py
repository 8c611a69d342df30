"""A dishonest solver daemon corrupts one scalar of one op at one step; a verifier daemon that
re-executes the sampled intervals finds the exact checkpoint interval. Op 6 of a digits-MLP step is
the backward matmul giving the output layer's weight gradient; its element 2 is non-zero at step 7 (a
corrupted zero, such as element 5 there, comes out subnormal and is flushed away by the next op).
(The game that follows the finding is played in tests/scenarios/test_disputes.py.)"""

from __future__ import annotations

import pytest

from protocol.agents.submitter import post
from protocol.agents.verifier import sample_intervals
from protocol.chain.market import Market, TaskStatus

from .conftest import STAKE_WAIT, Devnet, small_spec

ETH = 10**18
pytestmark = pytest.mark.slow


def test_sampling_is_deterministic_distinct_and_secret_dependent() -> None:
    a = sample_intervals(b"s" * 32, b"h" * 32, 100, 0.1)
    assert a == sample_intervals(b"s" * 32, b"h" * 32, 100, 0.1)
    assert len(a) == len(set(a)) == 10 and all(0 <= i < 100 for i in a)
    assert a != sample_intervals(b"t" * 32, b"h" * 32, 100, 0.1)
    assert sample_intervals(b"s" * 32, b"h" * 32, 3, 0.01) != []


def test_verifier_finds_the_corrupted_interval(devnet: Devnet) -> None:
    spec = small_spec(devnet.dir)
    devnet.spawn("cheater", ["solver", "--store", str(devnet.dir / "cheater"), "--db",
                             str(devnet.dir / "cheater.db"), "--stake", "1", "--inject", "7:6:2"], key_index=2)
    devnet.spawn("verifier", ["verifier", "--db", str(devnet.dir / "verifier.db"), "--sample-rate", "1"],
                 key_index=4)
    sub = Market(devnet.chain, devnet.deployment, devnet.node.keys[1])
    devnet.wait_for(lambda: sub.free_stake(devnet.node.accounts[2]) == ETH, STAKE_WAIT, "the solver's stake")
    tid = post(sub, str(spec), ETH, ETH // 2, ETH // 100,
               dict(bid_window=20, reveal_window=8, training_window=600, challenge_window=60))
    devnet.wait_for(lambda: sub.status(tid) == TaskStatus.RESULT_SUBMITTED, 240, "the result")
    devnet.wait_for(lambda: "event=finding" in devnet.log("verifier"), 120, "the verifier's finding")
    log = devnet.log("verifier")
    assert "kind=mismatch interval=1 " in log, log  # step 7 lies in checkpoint interval 1 (steps 5..10)

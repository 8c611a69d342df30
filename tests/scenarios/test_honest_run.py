"""Honest run: two solver daemons (separate processes) bid on a posted task; the winner trains,
commits progress and its result; after the challenge window it is paid; the submitter client
verifies the returned model against the committed roots. Every wei is accounted for."""

from __future__ import annotations

import pytest

from protocol.agents.submitter import post, verify_result
from protocol.chain.market import Market, TaskStatus

from .conftest import STAKE_WAIT, Devnet, small_spec

ETH = 10**18
pytestmark = pytest.mark.slow


def test_honest_run_paid_out_and_verified(devnet: Devnet) -> None:
    spec = small_spec(devnet.dir)
    for i, name in ((2, "solver-a"), (3, "solver-b")):
        devnet.spawn(name, ["solver", "--store", str(devnet.dir / name / "store"),
                            "--db", str(devnet.dir / name / "state.db"), "--stake", "1"], key_index=i)
    sub = Market(devnet.chain, devnet.deployment, devnet.node.keys[1])
    windows = dict(bid_window=20, reveal_window=8, training_window=600, challenge_window=8)
    # Solvers need their stake deposited before the commit window closes.
    devnet.wait_for(lambda: sum(sub.free_stake(devnet.node.accounts[i]) for i in (2, 3)) == 2 * ETH, STAKE_WAIT, "stakes")
    tid = post(sub, str(spec), ETH, ETH // 2, ETH // 100, windows)
    devnet.wait_for(lambda: sub.status(tid) == TaskStatus.COMPLETED, 240, "the task to complete")
    t = sub.task(tid)
    assert t.solver in (devnet.node.accounts[2], devnet.node.accounts[3])
    assert t.progressCheckpoints == 5  # S_0, S_5, ..., S_20
    v = verify_result(sub, tid)
    assert v.final_state_root == bytes(t.finalStateRoot)
    winner = "solver-a" if t.solver == devnet.node.accounts[2] else "solver-b"
    devnet.wait_for(lambda: sub.payments(t.solver) == 0, 30, "the winner to withdraw its payment")
    assert "event=sent action=submitResult" in devnet.log(winner)
    # Both solvers bid the same share; the auction's second price equals the winning price.
    assert t.agreedPrice == t.winningPrice == ETH // 2
    acct = sub.accounted()
    assert acct["market_balance"] == acct["market_accounted"]
    assert acct["stake_manager_balance"] == acct["stake_manager_accounted"] == 2 * ETH

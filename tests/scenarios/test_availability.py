"""Withheld artifacts of a right result, as separate daemon processes on a real chain.

The solver trains correctly but serves none of its artifacts. The verifier cannot fetch the manifest,
replays the whole task itself, finds the committed trace root right, and so has nothing a dispute
game could prove: it demands part of the data on chain instead (a range of chunks of one tensor of
the final state, drawn with its secret). Either

* the solver answers from its own store (``--withhold``): the chunks are on chain, the answer's gas
  is paid from the bond and the rest returns to the verifier; the task completes and the solver is
  paid; or
* it does not (``--withhold all``): when the response window ends the verifier claims the demand,
  the solver is slashed, the verifier gets its bond back and the beneficiary's share.

Every wei is accounted for.
"""

from __future__ import annotations

import pytest

from protocol.agents.submitter import verify_result
from protocol.chain.availability import Availability, Status
from protocol.chain.market import TaskStatus
from protocol.commit import LocalStore, TensorCommitment
from protocol.errors import VerigradError

from .conftest import (
    AVAILABILITY_WINDOW,
    FAST_WINDOWS,
    GAME_BOND,
    START_BALANCE,
    Devnet,
    assert_solvent,
    spend,
    start_task,
)
from .test_cheats import assert_slashed_for, verifier

pytestmark = pytest.mark.slow
ETH = 10**18


def test_withheld_data_of_a_right_result_is_demanded_and_answered_on_chain(devnet: Devnet) -> None:
    verifier(devnet)
    sub, tid, _ = start_task(devnet, ["--withhold"], windows=FAST_WINDOWS)
    av = Availability(devnet.chain, devnet.deployment.availability, devnet.node.keys[4])
    devnet.wait_for(lambda: av.challenge_count() == 1, 120, "the availability demand")
    devnet.wait_for(lambda: av.status(1) == Status.ANSWERED, 60, "the solver's answer")
    vlog = devnet.log("verifier")
    assert "kind=unavailable" in vlog and "event=replaying_all" in vlog and "event=result_right" in vlog, vlog
    assert "action=challenge:" not in vlog  # no dispute game: the result is right
    with pytest.raises(VerigradError):
        verify_result(sub, tid)  # the artifact store still serves nothing
    # The demanded chunks of the final state are on chain: exactly the solver's bytes.
    c, ev = av.get(1), av.answered(1)
    assert ev is not None and int(c.checkpoint) == 4  # S_20 of a 20-step task checkpointed every 5
    store = LocalStore(devnet.dir / "solver")
    digest = store.get_json(_manifest(devnet, tid))["checkpoints"][-1]["digest"]
    tensors = list(store.get_tensors(digest).values())
    tc = TensorCommitment(tensors[int(c.tensor)])
    first = int(c.firstChunk)
    assert b"".join(ev["chunks"]) == b"".join(tc.chunks[first:first + int(c.count)])
    refund, returned = int(ev["refund"]), int(ev["returned"])
    assert refund > 0 and refund + returned == GAME_BOND

    solver, verifier_addr, submitter = devnet.node.accounts[2], devnet.node.accounts[4], devnet.node.accounts[1]
    devnet.wait_for(lambda: sub.status(tid) == TaskStatus.COMPLETED, 120, "the task to complete")
    devnet.wait_for(lambda: sub.payments(solver) == 0 and av.credit_of(solver) == 0, 30, "the solver's withdrawals")
    devnet.wait_for(lambda: av.credit_of(verifier_addr) == 0, 30, "the verifier's withdrawal")
    t = sub.task(tid)
    if sub.payments() > 0:  # a single bidder is paid the whole payment (no second price below it)
        sub.withdraw_payments()
    assert devnet.chain.balance(submitter) == START_BALANCE - int(t.agreedPrice) - spend(devnet, submitter)
    assert devnet.chain.balance(solver) == START_BALANCE - ETH + int(t.agreedPrice) + refund - spend(devnet, solver)
    assert devnet.chain.balance(verifier_addr) == START_BALANCE - refund - spend(devnet, verifier_addr)
    assert devnet.chain.balance(devnet.deployment.availability) == 0
    assert_solvent(devnet, sub)


def test_withheld_data_never_answered_slashes_the_solver(devnet: Devnet) -> None:
    verifier(devnet)
    sub, tid, _ = start_task(devnet, ["--withhold", "all"], windows=FAST_WINDOWS)
    av = Availability(devnet.chain, devnet.deployment.availability, devnet.node.keys[4])
    devnet.wait_for(lambda: av.challenge_count() == 1, 120, "the availability demand")
    devnet.wait_for(lambda: av.status(1) == Status.UNANSWERED, AVAILABILITY_WINDOW + 60, "the verifier's claim")
    devnet.wait_for(lambda: "event=reward_claimed" in devnet.log("verifier"), 30, "the verifier's reward")
    verifier_addr = devnet.node.accounts[4]
    devnet.wait_for(lambda: av.credit_of(verifier_addr) == 0, 30, "the verifier's bond back")
    assert "event=withholding" in devnet.log("solver")
    assert "action=availability:1:answer" not in devnet.log("solver")
    assert sub.task(tid).failure == 2  # DisputeLost
    assert_slashed_for(devnet, sub, tid, verifier_addr)  # the verifier: its bond back and the beneficiary's share
    assert devnet.chain.balance(devnet.deployment.availability) == 0


def _manifest(devnet: Devnet, tid: int) -> str:
    """The solver's manifest digest (from its artifact URI on chain: the store behind it is empty)."""
    from protocol.chain.market import Market

    return str(Market(devnet.chain, devnet.deployment, devnet.node.keys[1]).task(tid).artifactURI).partition("#")[2]

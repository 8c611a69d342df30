"""Withheld artifacts of a right result, as separate daemon processes on a real chain.

The solver trains correctly but serves none of its artifacts. The verifier cannot fetch the manifest,
replays the whole task itself, finds the committed trace root right, and so has nothing a dispute
game could prove: it demands part of the data on chain instead (a range of chunks of one tensor of
the final state, drawn with its secret). Either

* the solver answers from its own store (``--withhold``): the chunks are on chain, each answer's gas
  is paid from its bond and the rest returns to the challenger; the task completes and the solver is
  paid. The submitter, run as ``verigrad submit --demand-data``, demands the whole model the same
  way and rebuilds it from the chain; or
* it does not (``--withhold all``): when the response window ends the verifier claims the demand,
  the solver is slashed, the verifier gets its bond back and the beneficiary's share.

Every wei is accounted for.
"""

from __future__ import annotations

import pytest

from protocol.agents.submitter import verify_result
from protocol.chain.availability import Availability, Status
from protocol.chain.market import Market, TaskStatus
from protocol.commit import LocalStore, TensorCommitment
from protocol.errors import VerigradError

from .conftest import (
    FAST_WINDOWS,
    GAME_BOND,
    STAKE_WAIT,
    START_BALANCE,
    Devnet,
    assert_solvent,
    small_spec,
    solver_command,
    spend,
    start_task,
)
from .test_cheats import assert_slashed_for, verifier

pytestmark = pytest.mark.slow
ETH = 10**18
SILENT_WINDOW = 20  # seconds to answer, where nobody will: the scenario need not wait longer


def test_withheld_model_is_demanded_and_answered_on_chain(devnet: Devnet) -> None:
    """The submitter runs ``verigrad submit --demand-data``: it cannot fetch the model, so it demands
    every chunk of the final parameters (7 demands); the verifier demands its own sample. The solver
    daemon answers all eight from its store; the submitter rebuilds the model from the chain."""
    verifier(devnet)
    devnet.spawn("solver", solver_command(devnet, ["--withhold"]), key_index=2)
    solver, submitter, verifier_addr = devnet.node.accounts[2], devnet.node.accounts[1], devnet.node.accounts[4]
    sub = Market(devnet.chain, devnet.deployment, devnet.node.keys[1])
    devnet.wait_for(lambda: sub.free_stake(solver) == ETH, STAKE_WAIT, "the solver's stake")
    windows = [f"--{k.replace('_', '-')}={v}" for k, v in FAST_WINDOWS.items()]
    devnet.spawn("submitter", ["submit", str(small_spec(devnet.dir)), "--payment", "1", "--stake", "0.5",
                               *windows, "--demand-data"], key_index=1)
    av = Availability(devnet.chain, devnet.deployment.availability, devnet.node.keys[4])
    devnet.wait_for(lambda: "event=bonds_withdrawn" in devnet.log("submitter"), 240, "the submitter to finish")
    tid = 1
    assert sub.status(tid) == TaskStatus.COMPLETED
    slog, vlog = devnet.log("submitter"), devnet.log("verifier")
    assert "event=model_unavailable" in slog and "event=verified_from_chain" in slog and "tensors=4" in slog, slog
    assert "kind=unavailable" in vlog and "event=replaying_all" in vlog and "event=result_right" in vlog, vlog
    assert "action=challenge:" not in vlog  # no dispute game: the result is right
    with pytest.raises(VerigradError):
        verify_result(sub, tid)  # the artifact store still serves nothing
    ids = list(range(1, av.challenge_count() + 1))
    assert len(ids) == 8 and all(av.status(c) == Status.ANSWERED for c in ids)
    # Every answered range is exactly the solver's bytes of its final state.
    store = LocalStore(devnet.dir / "solver")
    digest = store.get_json(_manifest(devnet, tid))["checkpoints"][-1]["digest"]
    tensors = list(store.get_tensors(digest).values())
    refunds: dict[str, int] = {submitter: 0, verifier_addr: 0}
    for cid in ids:
        c, ev = av.get(cid), av.answered(cid)
        assert ev is not None and int(c.checkpoint) == 4  # S_20 of a 20-step task checkpointed every 5
        first = int(c.firstChunk)
        assert b"".join(ev["chunks"]) == b"".join(TensorCommitment(tensors[int(c.tensor)]).chunks[first:first + 32])
        assert int(ev["refund"]) > 0 and int(ev["refund"]) + int(ev["returned"]) == GAME_BOND
        refunds[c.challenger] += int(ev["refund"])

    devnet.wait_for(lambda: sub.payments(solver) == 0 and av.credit_of(solver) == 0, 30, "the solver's withdrawals")
    devnet.wait_for(lambda: av.credit_of(verifier_addr) == 0, 30, "the verifier's withdrawal")
    t = sub.task(tid)
    total = sum(refunds.values())
    assert devnet.chain.balance(submitter) == (START_BALANCE - int(t.agreedPrice) - refunds[submitter]
                                               - spend(devnet, submitter))
    assert devnet.chain.balance(solver) == START_BALANCE - ETH + int(t.agreedPrice) + total - spend(devnet, solver)
    assert devnet.chain.balance(verifier_addr) == START_BALANCE - refunds[verifier_addr] - spend(devnet, verifier_addr)
    assert devnet.chain.balance(devnet.deployment.availability) == 0
    assert_solvent(devnet, sub)


@pytest.mark.parametrize("devnet", [{"availability_window": SILENT_WINDOW}], indirect=True)
def test_withheld_data_never_answered_slashes_the_solver(devnet: Devnet) -> None:
    verifier(devnet)
    sub, tid, _ = start_task(devnet, ["--withhold", "all"], windows=FAST_WINDOWS)
    av = Availability(devnet.chain, devnet.deployment.availability, devnet.node.keys[4])
    devnet.wait_for(lambda: av.challenge_count() == 1, 120, "the availability demand")
    devnet.wait_for(lambda: av.status(1) == Status.UNANSWERED, SILENT_WINDOW + 60, "the verifier's claim")
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
    return str(Market(devnet.chain, devnet.deployment, devnet.node.keys[1]).task(tid).artifactURI).partition("#")[2]

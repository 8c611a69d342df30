"""Dispute scenarios with daemon processes on anvil (one block a second).

* a cheating solver daemon (one corrupted scalar of a forward op, of a backward op or of the
  optimizer update at step 7) against a verifier daemon: the result is challenged, bisected level by
  level to that op and element and the solver slashed; the verifier gets its bond back and half the
  stake, the submitter its payment;
* a false challenge against an honest solver daemon: the challenger (played from the test) loses and
  its bond goes to the solver;
* a stalled party loses on time: a solver daemon killed mid-game, a challenger that never answers;
* a daemon killed mid-game and restarted on the same database resumes from the chain, still wins and
  sends nothing twice: the verifier once at level 2, an honest solver facing a false challenge at
  three random points of the game.

Every scenario checks the money to the wei and that no contract holds a wei it does not account for.
"""

from __future__ import annotations

import random
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from protocol.agents.db import AgentDB
from protocol.agents.solver import resolve_spec
from protocol.chain.dispute import DisputeGame, GameStatus, Party, Phase
from protocol.chain.market import Market, TaskStatus
from protocol.commit.errors import StoreError
from protocol.dispute.player import ChallengerPlayer, NoScalarBackend, TraceSource
from protocol.trace import Replayer

from .conftest import (
    FAST_WINDOWS,
    GAME_BOND,
    GAME_CLOCK,
    PAYMENT,
    STAKE,
    START_BALANCE,
    Devnet,
    assert_solvent,
    solver_command,
    spend,
    start_task,
)

ETH = 10**18
FAULT = "7:6:2"  # a non-zero element of the weight gradient (a corrupted zero is flushed away downstream)
pytestmark = pytest.mark.slow


# One corrupted scalar at step 7 in each part of a digits-MLP step (python -m protocol.trace digits-mlp
# --steps 20 --step 7 lists the 25 ops): op 2 is the forward linear giving the logits, op 6 the
# backward matmul giving the output layer's weight gradient, op 20 the AdamW update of that weight.
# Each element is non-zero there, so the flipped bit reaches the next state.
# A game that ends on a timeout need not wait a full minute per party.
SHORT_CLOCK = 25

FAULTS = {"forward": (2, 2), "backward": (6, 2), "optimizer": (20, 2)}


@pytest.mark.parametrize("where", list(FAULTS))
def test_cheating_solver_is_challenged_bisected_and_slashed(devnet: Devnet, where: str) -> None:
    op, element = FAULTS[where]
    verifier = devnet.node.accounts[4]
    # The verifier watches from the start (its start-up overlaps the auction).
    devnet.spawn("verifier", ["verifier", "--db", str(devnet.dir / "verifier.db"), "--sample-rate", "1"],
                 key_index=4)
    sub, tid, _ = start_task(devnet, ["--inject", f"7:{op}:{element}"], windows=FAST_WINDOWS)
    game = DisputeGame(devnet.chain, devnet.deployment.dispute_game, devnet.node.keys[4])
    devnet.wait_for(lambda: game.game_count() == 1, 120, "the challenge")
    devnet.wait_for(lambda: "event=game_over" in devnet.log("verifier"), 6 * GAME_CLOCK, "the end of the game")
    devnet.wait_for(lambda: "event=reward_claimed" in devnet.log("verifier"), 30, "the verifier's reward")
    g = game.get(1)
    assert GameStatus(g.status) == GameStatus.CHALLENGER_WON
    assert int(g.pin) == 1 or int(g.checkpoint) == 1  # pinned at the interval its re-execution found
    # The game's op is 1-based (leaf j of level 3 is the log after op j - 1).
    assert (int(g.trainingStep), int(g.op), int(g.flatIndex)) == (7, op + 1, element)
    assert [e["level"] for e in game.events(1, "LevelCommitted")][:3] == [1, 2, 3]
    assert [e["level"] for e in game.events(1, "LevelCommitted")] == [1, 2, 3, 4]
    assert not game.events(1, "TimedOut")
    (checked,) = game.events(1, "OneStepChecked")  # the contract recomputed one step of the element
    assert checked["computed"] != checked["claimed"]
    assert sub.status(tid) == TaskStatus.FAILED
    assert sub.payments() == PAYMENT  # the escrow, credited back when the task failed
    sub.withdraw_payments()
    share = STAKE * 5_000 // 10_000
    start = 10_000 * ETH
    assert devnet.chain.balance(verifier) == start + share - spend(devnet, verifier)
    assert sub.locked_stake(devnet.node.accounts[2]) == 0
    submitter = devnet.node.accounts[1]
    assert devnet.chain.balance(submitter) == start - spend(devnet, submitter)  # the payment came back
    assert_solvent(devnet, sub)
    log = devnet.log("verifier")
    assert "move=choose" in log and "move=nameOutput" in log, log


def honest_challenger(devnet: Devnet, tid: int, gid: int, key: int, **kw: Any) -> ChallengerPlayer:
    """A challenger played from the test process over the task's published artifacts."""
    sub = Market(devnet.chain, devnet.deployment, devnet.node.keys[key])
    t = sub.task(tid)
    store_dir, _, digest = str(t.artifactURI).partition("#")
    from protocol.agents.http_store import open_any

    store = open_any(store_dir)
    manifest = store.get_json(digest)  # type: ignore[attr-defined]
    spec = resolve_spec(str(t.specURI))
    roots = [bytes.fromhex(c["state_root"][2:]) for c in manifest["checkpoints"]]
    honest = TraceSource(Replayer(spec, store=store, manifest=manifest), roots, spec.checkpoint_interval)
    game = DisputeGame(devnet.chain, devnet.deployment.dispute_game, devnet.node.keys[key])
    return ChallengerPlayer(game, gid, AgentDB(":memory:"), honest, None, None, NoScalarBackend(), **kw)


def test_false_challenge_against_an_honest_solver_loses_the_bond(devnet: Devnet) -> None:
    sub, tid, _ = start_task(devnet, [])
    game = DisputeGame(devnet.chain, devnet.deployment.dispute_game, devnet.node.keys[5])
    challenger, solver = devnet.node.accounts[5], devnet.node.accounts[2]
    solver_before = devnet.chain.balance(solver) + spend(devnet, solver)
    gid = game.challenge(tid)
    # A challenger with no case: it names an element beyond the disputed output, which the solver
    # daemon refutes with rejectOutput (no one-step check needed).
    cp = honest_challenger(devnet, tid, gid, 5, name=lambda op: 10**6)
    devnet.wait_for(lambda: cp.act() is None and cp.done(), 4 * GAME_CLOCK, "the end of the game")
    assert GameStatus(game.status(gid)) == GameStatus.SOLVER_WON
    assert game.events(gid, "OutputRejected")
    devnet.wait_for(lambda: "event=game_over" in devnet.log("solver"), 30, "the solver's withdrawal")
    assert devnet.chain.balance(challenger) == 10_000 * ETH - GAME_BOND - spend(devnet, challenger)
    assert devnet.chain.balance(solver) + spend(devnet, solver) == solver_before + GAME_BOND
    assert sub.status(tid) == TaskStatus.RESULT_SUBMITTED  # the result stands; it finalizes as usual
    assert_solvent(devnet, sub)


@pytest.mark.parametrize("devnet", [{"clock": SHORT_CLOCK}], indirect=True, ids=["clock25"])
def test_stalled_challenger_loses_on_time(devnet: Devnet) -> None:
    sub, tid, _ = start_task(devnet, [], windows=FAST_WINDOWS)
    game = DisputeGame(devnet.chain, devnet.deployment.dispute_game, devnet.node.keys[5])
    gid = game.challenge(tid)  # and never moves again
    devnet.wait_for(lambda: game.phase(gid) == Phase.CHOOSE, 60, "the solver's first reveal")
    devnet.wait_for(lambda: game.status(gid) == GameStatus.SOLVER_WON, 2 * GAME_CLOCK, "the timeout")
    assert [e["loser"] for e in game.events(gid, "TimedOut")] == [Party.CHALLENGER]
    devnet.wait_for(lambda: game.credit_of(devnet.node.accounts[2]) == 0, 30, "the solver's withdrawal")
    assert_solvent(devnet, sub)


@pytest.mark.parametrize("devnet", [{"clock": SHORT_CLOCK}], indirect=True, ids=["clock25"])
def test_stalled_solver_loses_on_time(devnet: Devnet) -> None:
    sub, tid, _ = start_task(devnet, ["--inject", FAULT, "--no-serve"], windows=FAST_WINDOWS)
    solver_proc = devnet.procs[0]
    solver_proc.send_signal(signal.SIGKILL)  # the cheater goes silent before any game
    solver_proc.wait()
    devnet.procs.remove(solver_proc)
    devnet.spawn("verifier", ["verifier", "--db", str(devnet.dir / "verifier.db"), "--sample-rate", "1"],
                 key_index=4)
    game = DisputeGame(devnet.chain, devnet.deployment.dispute_game, devnet.node.keys[4])
    devnet.wait_for(lambda: game.game_count() == 1, 120, "the challenge")
    devnet.wait_for(lambda: "event=game_over" in devnet.log("verifier"), 3 * GAME_CLOCK, "the timeout")
    assert GameStatus(game.status(1)) == GameStatus.CHALLENGER_WON
    assert [e["loser"] for e in game.events(1, "TimedOut")] == [Party.SOLVER]
    assert Phase(game.get(1).phase) == Phase.NONE and int(game.get(1).level) == 1  # it never defended
    assert sub.status(tid) == TaskStatus.FAILED
    assert sub.locked_stake(devnet.node.accounts[2]) == 0
    assert_solvent(devnet, sub)


def test_verifier_killed_mid_game_resumes_and_sends_nothing_twice(devnet: Devnet) -> None:
    """The verifier daemon is SIGKILLed in the middle of the game and restarted on the same database:
    it resumes from the chain, still wins, and every transaction it ever sent is one recorded action."""
    sub, tid, _ = start_task(devnet, ["--inject", FAULT])
    args = ["verifier", "--db", str(devnet.dir / "verifier.db"), "--sample-rate", "1"]
    first = devnet.spawn("verifier", args, key_index=4)
    game = DisputeGame(devnet.chain, devnet.deployment.dispute_game, devnet.node.keys[4])
    devnet.wait_for(lambda: game.game_count() == 1 and int(game.get(1).level) >= 2, 180, "level 2 of the game")
    first.send_signal(signal.SIGKILL)
    first.wait()
    devnet.procs.remove(first)
    killed_at = game.get(1)
    (devnet.dir / "verifier-first.log").write_text(devnet.log("verifier"))
    devnet.spawn("verifier", args, key_index=4)
    devnet.wait_for(lambda: "event=game_over" in devnet.log("verifier"), 6 * GAME_CLOCK, "the end of the game")
    devnet.wait_for(lambda: "event=reward_claimed" in devnet.log("verifier"), 30, "the verifier's last action")
    assert int(killed_at.level) >= 2 and GameStatus(killed_at.status) == GameStatus.IN_PROGRESS
    assert GameStatus(game.status(1)) == GameStatus.CHALLENGER_WON
    assert game.events(1, "OneStepChecked") and not game.events(1, "TimedOut")
    me = devnet.node.accounts[4]
    sent = [tx for n in range(devnet.chain.w3.eth.block_number + 1)
            for tx in devnet.chain.w3.eth.get_block(n, full_transactions=True)["transactions"] if tx["from"] == me]
    db = AgentDB(devnet.dir / "verifier.db")
    # A move begun before the kill and found on chain after the restart is done without a hash.
    done = db.conn.execute("SELECT COUNT(*) FROM actions WHERE status='done'").fetchone()[0]
    assert len(sent) == done  # one transaction per recorded move: nothing re-sent after the restart
    assert all(devnet.chain.w3.eth.get_transaction_receipt(tx["hash"])["status"] == 1 for tx in sent)
    assert_solvent(devnet, sub)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _levels(game: DisputeGame, gid: int) -> list[int]:
    return [int(e["level"]) for e in game.events(gid, "LevelCommitted")]


# Where the honest solver is killed in the game: once each point is reached, after a seeded random
# delay (the game goes on meanwhile, so the kill may land in the middle of its next move).
SOLVER_KILLS: list[tuple[str, Callable[[DisputeGame, int], bool]]] = [
    ("its first reveal", lambda game, gid: bool(game.events(gid, "LeavesRevealed"))),
    ("commitSteps (level 2)", lambda game, gid: 2 in _levels(game, gid)),
    ("commitOps (level 3)", lambda game, gid: 3 in _levels(game, gid)),
]
# Each restart spends seconds of the solver's clock (a fresh process warms its engine up and replays
# its run before it moves), several times that on a loaded machine: a clock with room for three.
RESTART_CLOCK = 180


@pytest.mark.parametrize("devnet", [{"clock": RESTART_CLOCK}], indirect=True, ids=[f"clock{RESTART_CLOCK}"])
def test_honest_solver_killed_at_random_points_of_a_game_still_wins_and_sends_nothing_twice(devnet: Devnet) -> None:
    """An honest solver daemon facing a false challenge is SIGKILLed at three points of the game (each
    shifted by a seeded random delay) and restarted on the same database and store every time: it
    resumes from the chain, wins, is paid, and every transaction its key sent is one recorded action."""
    rng = random.Random(20261122)
    # The artifacts are served on one port through every restart (their URI is on chain). A challenge
    # window about as long as the game with its restarts: the task finalizes soon after the game
    # (the challenge itself goes out seconds after the result, ten or more on a loaded machine).
    port = ["--serve-port", str(free_port())]
    sub, tid, _ = start_task(devnet, port, windows=dict(FAST_WINDOWS, challenge_window=45))
    game = DisputeGame(devnet.chain, devnet.deployment.dispute_game, devnet.node.keys[5])
    challenger, solver, submitter = (devnet.node.accounts[i] for i in (5, 2, 1))
    gid = game.challenge(tid)
    cp = honest_challenger(devnet, tid, gid, 5, name=lambda op: 10**6)  # no case: rejected by the solver

    def challenge() -> str | None:
        try:
            return cp.act()
        except StoreError:
            return "wait"  # the solver's artifacts are not served while it is down: next time

    def playing(cond: Callable[[], bool]) -> Callable[[], bool]:
        """A wait condition that makes the challenger's moves as well."""
        return lambda: challenge() is None and cond()

    proc, name = devnet.procs[0], "solver"
    killed = []
    for n, (what, reached) in enumerate(SOLVER_KILLS, 1):
        # Each daemon makes a move of its own before it is killed (a point reached during its
        # predecessor's restart does not count twice).
        moved = lambda name=name: "event=sent action=game:" in devnet.log(name)  # noqa: E731
        devnet.wait_for(playing(lambda reached=reached, moved=moved: reached(game, gid) and moved()), 120, what)
        end = time.monotonic() + rng.uniform(0.0, 1.5)
        while time.monotonic() < end:
            challenge()
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        devnet.procs.remove(proc)
        killed.append((what, game.get(gid)))
        name = f"solver-{n}"
        proc = devnet.spawn(name, solver_command(devnet, port), key_index=2)
    devnet.wait_for(playing(cp.done), 4 * 60, "the end of the game")
    assert GameStatus(game.status(gid)) == GameStatus.SOLVER_WON
    for (what, g), level in zip(killed, (1, 2, 3), strict=True):
        assert GameStatus(g.status) == GameStatus.IN_PROGRESS and int(g.level) >= level, (what, g)
    assert game.events(gid, "OutputRejected") and not game.events(gid, "TimedOut")
    assert _levels(game, gid) == [1, 2, 3]
    # The result stands: the restarted daemon finalizes the task and withdraws its pay.
    db = AgentDB(devnet.dir / "solver.db")
    unsettled = lambda: db.conn.execute("SELECT key FROM actions WHERE status != 'done'").fetchall()  # noqa: E731
    devnet.wait_for(lambda: sub.status(tid) == TaskStatus.COMPLETED and sub.payments(solver) == 0
                    and game.credit_of(solver) == 0 and not unsettled(), 90, "the solver's payment")
    # Every transaction the solver's key sent is one recorded action: nothing went out twice across
    # the restarts (a move sent just before a kill is found on chain and recorded, never repeated).
    sent = [tx for n in range(devnet.chain.w3.eth.block_number + 1)
            for tx in devnet.chain.w3.eth.get_block(n, full_transactions=True)["transactions"] if tx["from"] == solver]
    rows = db.conn.execute("SELECT key, status, tx FROM actions").fetchall()
    assert not unsettled(), rows
    assert len(sent) == len(rows), (len(sent), rows)
    hashes = {tx["hash"].hex().removeprefix("0x") for tx in sent}
    recorded = [h.removeprefix("0x") for _, _, h in rows if h]
    assert len(set(recorded)) == len(recorded) and set(recorded) <= hashes, rows
    assert all(devnet.chain.w3.eth.get_transaction_receipt(tx["hash"])["status"] == 1 for tx in sent)
    moves = [k for k, _, _ in rows if k.startswith(f"game:{gid}:")]
    # Its reveals, and defendTrace, commitSteps, commitOps, openOp, rejectOutput, resolve, withdraw.
    assert len(moves) == len(game.events(gid, "LeavesRevealed")) + 7, moves
    assert f"game:{gid}:withdraw:{solver}" in moves
    # The money, to the wei: the challenger's bond went to the solver, the agreed price to the solver,
    # the rest of the payment back to the submitter; no contract holds a wei it cannot account for.
    price = int(sub.task(tid).agreedPrice)
    if sub.payments() > 0:  # a sole bidder is agreed the whole payment: no refund then
        sub.withdraw_payments()
    assert devnet.chain.balance(challenger) == START_BALANCE - GAME_BOND - spend(devnet, challenger)
    held = sub.free_stake(solver) + sub.locked_stake(solver)
    assert held == ETH and sub.locked_stake(solver) == 0
    assert devnet.chain.balance(solver) + spend(devnet, solver) + held == START_BALANCE + price + GAME_BOND
    assert devnet.chain.balance(submitter) + spend(devnet, submitter) == START_BALANCE - price
    assert_solvent(devnet, sub)

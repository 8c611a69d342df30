"""Dishonest solver daemons other than a corrupted op (protocol/agents/dishonest.py), against verifier
daemons on anvil (one block a second):

* a state that does not follow from training -- one scalar altered after a step inside an interval,
  a corrupt checkpoint, a lazy solver that skips every odd step, one that resubmits S_0 -- is found
  by re-execution, challenged and bisected to the step; at level 3 the solver cannot show an op log
  from S_t to its S_t+1 (the contract checks the link), so it loses on time and is slashed;
* two verifiers challenge the same result at once: two independent games; the first decided slashes
  the solver (once), the other is closed and its bond returned;
* a solver that withholds its artifacts: the verifier replays the whole task, challenges, and has the
  disputed output's chunks opened on chain; the solver is slashed.

Every scenario checks the money to the wei and that no contract holds a wei it does not account for.
"""

from __future__ import annotations

import pytest

from protocol.agents.submitter import verify_result
from protocol.chain.dispute import DisputeGame, GameStatus, Party
from protocol.chain.market import Market, TaskStatus
from protocol.errors import VerigradError

from .conftest import (
    FAST_WINDOWS,
    GAME_BOND,
    PAYMENT,
    STAKE,
    START_BALANCE,
    Devnet,
    assert_solvent,
    spend,
    start_task,
)

pytestmark = pytest.mark.slow
CLOCK = 25  # seconds per party: the solver's moves down to level 3 take about ten
INTERVAL = 5  # small_spec: 20 steps, a checkpoint every 5
SHARE = STAKE * 5_000 // 10_000  # the beneficiary's half of a slashed stake
FAULT = "7:6:2"


def verifier(devnet: Devnet, name: str = "verifier", key: int = 4) -> None:
    devnet.spawn(name, ["verifier", "--db", str(devnet.dir / f"{name}.db"), "--sample-rate", "1"], key_index=key)


def assert_slashed_for(devnet: Devnet, sub: Market, tid: int, beneficiary: str) -> None:
    """The task failed: the submitter has its payment back, ``beneficiary`` its share of the stake,
    the solver lost the task's stake and nothing else; every other wei is where the contracts say."""
    assert sub.status(tid) == TaskStatus.FAILED
    assert sub.payments() == PAYMENT
    sub.withdraw_payments()
    submitter = devnet.node.accounts[1]
    assert devnet.chain.balance(submitter) == START_BALANCE - spend(devnet, submitter)
    assert devnet.chain.balance(beneficiary) == START_BALANCE + SHARE - spend(devnet, beneficiary)
    solver = devnet.node.accounts[2]
    assert sub.locked_stake(solver) == 0 and sub.free_stake(solver) == 10**18 - STAKE  # it staked 1 ETH
    # Its bid bond came back (the daemon withdraws it): its wallet is down by the stake and gas only.
    devnet.wait_for(lambda: sub.payments(solver) == 0, 30, "the solver's withdrawal")
    assert devnet.chain.balance(solver) == START_BALANCE - 10**18 - spend(devnet, solver)
    assert_solvent(devnet, sub)


# Each mode, and the step whose S_t -> S_t+1 the game ends on: the state altered after step 7; checkpoint
# 2 (after step 10) altered, i.e. after step 9; odd steps skipped (step 1 is the first); no step done.
MODES = {
    "corrupt-step": (["--corrupt-step", "7"], 7),
    "corrupt-checkpoint": (["--corrupt-checkpoint", "2"], 9),
    "lazy-skip": (["--lazy", "skip"], 1),
    "lazy-initial": (["--lazy", "initial"], 0),
}


@pytest.mark.parametrize("devnet", [{"clock": CLOCK}], indirect=True, ids=[f"clock{CLOCK}"])
@pytest.mark.parametrize("mode", list(MODES))
def test_state_that_does_not_follow_from_training_is_slashed(devnet: Devnet, mode: str) -> None:
    args, step = MODES[mode]
    verifier(devnet)  # watching from the start: its start-up overlaps the auction
    sub, tid, _ = start_task(devnet, args, windows=FAST_WINDOWS)
    me = devnet.node.accounts[4]
    game = DisputeGame(devnet.chain, devnet.deployment.dispute_game, devnet.node.keys[4])
    devnet.wait_for(lambda: game.game_count() == 1, 120, "the challenge")
    devnet.wait_for(lambda: "event=game_over" in devnet.log("verifier"), 6 * CLOCK, "the end of the game")
    devnet.wait_for(lambda: "event=reward_claimed" in devnet.log("verifier"), 30, "the verifier's reward")
    g = game.get(1)
    assert GameStatus(g.status) == GameStatus.CHALLENGER_WON
    assert f"pin={step // INTERVAL}" in devnet.log("verifier")  # the interval its re-execution found wrong
    assert int(g.checkpoint) == step // INTERVAL
    # Bisected to the step; level 3 never committed: no op log of an honest step ends at the claim.
    assert [e["level"] for e in game.events(1, "LevelCommitted")] == [1, 2]
    assert int(g.checkpoint) * INTERVAL + int(g.lo) == step and int(g.hi) == int(g.lo) + 1
    assert [e["loser"] for e in game.events(1, "TimedOut")] == [Party.SOLVER]
    assert "event=reverted action=game:1:commitOps" in devnet.log("solver"), devnet.log("solver")
    assert_slashed_for(devnet, sub, tid, me)
    assert devnet.chain.balance(devnet.deployment.dispute_game) == 0  # the bond went back


def test_two_verifiers_challenge_at_once(devnet: Devnet) -> None:
    """Two games on one result, played at once by two verifier daemons against one cheating solver
    daemon: the first one decided slashes the solver; the other, still undecided, is closed by its
    challenger (``closeAfterFailure``; had it been decided too, the market would answer Closed) and
    its bond goes back: no second slash, no reward for the second."""
    verifier(devnet, "verifier-a", key=4)
    sub, tid, _ = start_task(devnet, ["--inject", FAULT], windows=FAST_WINDOWS)
    a, b = devnet.node.accounts[4], devnet.node.accounts[5]
    game = DisputeGame(devnet.chain, devnet.deployment.dispute_game, devnet.node.keys[4])
    # The second verifier comes in while the first game is being played (a few seconds behind it):
    # when the first game slashes the solver, the second is usually still undecided and is closed.
    devnet.wait_for(lambda: game.game_count() == 1, 120, "the first challenge")
    verifier(devnet, "verifier-b", key=5)
    devnet.wait_for(lambda: game.game_count() == 2, 120, "the second challenge")
    assert GameStatus(game.status(1)) == GameStatus.IN_PROGRESS  # both games open at once
    for name in ("verifier-a", "verifier-b"):
        devnet.wait_for(lambda name=name: "event=game_over" in devnet.log(name), 6 * 60, f"{name}'s game to end")
    resolved = {gid: game.events(gid, "GameResolved") for gid in (1, 2)}
    assert all(len(r) == 1 for r in resolved.values()), resolved
    by_answer = {int(r[0]["disputeStatus"]): (gid, r[0]) for gid, r in resolved.items()}
    assert sorted(by_answer) == [3, 4], by_answer  # one SolverLost (3), one Closed (4)
    won_gid, won = by_answer[3]
    closed_gid, closed = by_answer[4]
    winner = str(game.get(won_gid).challenger)
    other = str(game.get(closed_gid).challenger)
    assert {winner, other} == {a, b}
    assert won["payee"] == winner and closed["payee"] == other and won["bond"] == closed["bond"] == GAME_BOND
    assert GameStatus(game.status(won_gid)) == GameStatus.CHALLENGER_WON
    # Closed early by its challenger, or decided later against the solver: either way nothing more.
    assert GameStatus(game.status(closed_gid)) in (GameStatus.CLOSED, GameStatus.CHALLENGER_WON)
    market = devnet.chain.contract("TaskMarket", devnet.deployment.task_market)
    assert len(market.events.TaskFailed().get_logs(from_block=devnet.deployment.block)) == 1
    name = "verifier-a" if winner == a else "verifier-b"
    devnet.wait_for(lambda: "event=reward_claimed" in devnet.log(name), 30, "the winner's reward")
    other_name = "verifier-b" if name == "verifier-a" else "verifier-a"
    devnet.wait_for(lambda: game.credit_of(other) == 0, 30, f"{other_name}'s bond withdrawn")
    assert devnet.chain.balance(other) == START_BALANCE - spend(devnet, other)  # its bond came back, no reward
    assert_slashed_for(devnet, sub, tid, winner)
    assert devnet.chain.balance(devnet.deployment.dispute_game) == 0


def test_withholding_solver_is_challenged_from_a_whole_replay_and_slashed(devnet: Devnet) -> None:
    """A cheating solver that serves none of its artifacts (``--withhold``; one corrupted scalar of the
    backward matmul at step 7). The verifier cannot fetch the manifest, so it has no checkpoint of
    the solver's to start from: it trains the whole task itself, finds that its checkpoint roots do
    not rebuild the committed trace root, and challenges unpinned. It compares every revealed
    checkpoint with its own, bisects down to the op, and, without the solver's output to name an
    element from, has chunks of it opened on chain (``requestChunk``/``openChunk``) until one differs;
    the contract recomputes that element and the solver is slashed."""
    verifier(devnet)
    sub, tid, _ = start_task(devnet, ["--inject", FAULT, "--withhold"], windows=FAST_WINDOWS)
    game = DisputeGame(devnet.chain, devnet.deployment.dispute_game, devnet.node.keys[4])
    devnet.wait_for(lambda: game.game_count() == 1, 120, "the challenge")
    devnet.wait_for(lambda: "event=game_over" in devnet.log("verifier"), 6 * 60, "the end of the game")
    devnet.wait_for(lambda: "event=reward_claimed" in devnet.log("verifier"), 30, "the verifier's reward")
    log = devnet.log("verifier")
    assert "kind=unavailable" in log and "event=replaying_all" in log, log
    with pytest.raises(VerigradError):
        verify_result(sub, tid)  # nobody can fetch the model
    g = game.get(1)
    assert GameStatus(g.status) == GameStatus.CHALLENGER_WON
    assert "action=challenge:1 " in log and "pin=None" in log  # unpinned: it knew no interval of the solver's
    assert (int(g.trainingStep), int(g.op), int(g.flatIndex)) == (7, 7, 2)
    assert game.events(1, "ChunkOpened")  # the element was found in chunks the solver opened on chain
    (checked,) = game.events(1, "OneStepChecked")
    assert checked["computed"] != checked["claimed"]
    assert not game.events(1, "TimedOut")
    assert_slashed_for(devnet, sub, tid, devnet.node.accounts[4])
    assert devnet.chain.balance(devnet.deployment.dispute_game) == 0

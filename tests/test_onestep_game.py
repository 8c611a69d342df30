"""Gas of the bottom of a real game with the soft-float verifier.

Plays the cheating solver's game of ``tests/test_dispute_play.py`` (a fault in the backward matmul
of step 7 of a 20-step digits-mlp run; the same arena, players and fixtures) to the end and reads
the receipts of the level-4 moves: ``registerOp``, ``commitScalar`` and the one-step check
``DisputeGame.step``, which calls ``ScalarStepVerifier.step``.
"""

from __future__ import annotations

from typing import Any

from test_dispute_play import (  # the arena of the game tests: one place builds it
    CLOCK,
    chain,  # noqa: F401 (fixture)
    make_arena,
    runs,  # noqa: F401 (fixture)
    solver_output_of,
    sources,
)

from protocol.agents.db import AgentDB
from protocol.chain.client import Chain
from protocol.chain.dispute import GameStatus
from protocol.dispute.player import ChallengerPlayer, SolverPlayer, find_anchor, play


def _gas_of(c: Chain, logs: list[Any]) -> int:
    (log,) = logs
    return int(c.w3.eth.get_transaction_receipt(log["transactionHash"])["gasUsed"])


def test_onestep_game_level4_gas(chain: Chain, runs: dict[str, Any]) -> None:  # noqa: F811 (fixtures)
    a = make_arena(chain, runs, "faulty")
    own, honest = sources(a)
    anchor = find_anchor(honest.replayer, own.checkpoint_roots, a.spec.checkpoint_interval)
    g_ch = a.game(a.challenger)
    gid = g_ch.challenge(a.task_id)
    sp = SolverPlayer(a.game(a.solver), gid, AgentDB(":memory:"), own, a.backend)
    cp = ChallengerPlayer(g_ch, gid, AgentDB(":memory:"), honest, anchor, solver_output_of(own), a.backend)
    play([sp, cp], advance=lambda: chain.advance(CLOCK + 1))
    assert GameStatus(g_ch.get(gid).status) == GameStatus.CHALLENGER_WON
    events = g_ch.game.events
    step_gas = _gas_of(chain, events.OneStepChecked().get_logs(argument_filters={"gameId": gid}, from_block=0))
    level4 = [e for e in events.LevelCommitted().get_logs(argument_filters={"gameId": gid}, from_block=0)
              if e["args"]["level"] == 4]
    commit_gas = _gas_of(chain, level4)
    verifier = chain.contract("ScalarStepVerifier", g_ch.verifier_address())
    register_gas = _gas_of(chain, verifier.events.OpRegistered().get_logs(from_block=0)[-1:])
    g = g_ch.get(gid)
    print(f"DisputeGame.step {step_gas} (from leaf {g.lo} of {g.size}), commitScalar {commit_gas}, "
          f"registerOp {register_gas} (receipts' gasUsed)")
    assert step_gas <= 250_000

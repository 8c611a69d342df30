"""Gas of the bottom of a real game with the soft-float verifier.

Plays the cheating solver's game of ``tests/test_dispute_play.py`` (a fault in the backward matmul
of step 7 of a 20-step digits-mlp run; the same arena, players and fixtures) to the end and reads
the receipts of the level-4 moves: ``registerOp``, ``commitScalar`` and the one-step check
``DisputeGame.step``, which calls ``ScalarStepVerifier.step``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from test_dispute_play import (  # the arena of the game tests: one place builds it
    CLOCK,
    make_arena,
    runs,  # noqa: F401 (fixture)
    solver_output_of,
    sources,
)

from protocol.agents.db import AgentDB
from protocol.chain.client import Chain
from protocol.chain.dispute import GameStatus
from protocol.dispute.player import ChallengerPlayer, SolverPlayer, find_anchor, play
from protocol.spec import load_spec
from protocol.train import Fault, train

REPO = Path(__file__).resolve().parents[1]
GPT_FAULT = "1:14:37"  # step 1, op 14 (the block's GELU), element 37


def _gas_of(c: Chain, logs: list[Any]) -> int:
    (log,) = logs
    return int(c.w3.eth.get_transaction_receipt(log["transactionHash"])["gasUsed"])


def _play_faulty(c: Chain, task_runs: dict[str, Any]) -> tuple[Any, int]:
    """The faulty run's task challenged by an honest challenger and played to the end by both players."""
    a = make_arena(c, task_runs, "faulty")
    own, honest = sources(a)
    anchor = find_anchor(honest.replayer, own.checkpoint_roots, a.spec.checkpoint_interval)
    g_ch = a.game(a.challenger)
    gid = g_ch.challenge(a.task_id)
    sp = SolverPlayer(a.game(a.solver), gid, AgentDB(":memory:"), own, a.backend)
    cp = ChallengerPlayer(g_ch, gid, AgentDB(":memory:"), honest, anchor, solver_output_of(own), a.backend)
    play([sp, cp], advance=lambda: c.advance(CLOCK + 1))
    return g_ch, gid


def test_onestep_game_level4_gas(chain: Chain, runs: dict[str, Any]) -> None:  # noqa: F811 (fixture)
    g_ch, gid = _play_faulty(chain, runs)
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


@pytest.fixture(scope="module")
def gpt_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A shrunk tiny-gpt task (2 steps, a checkpoint every step, batch 2, d_model 16) trained honestly
    and with a fault in GELU element 37 of step 1 (op 14)."""
    d = tmp_path_factory.mktemp("gpt-runs")
    text = (REPO / "protocol" / "specs" / "tiny-gpt.toml").read_text()
    for key, value in (("steps", 2), ("checkpoint_interval", 1), ("batch_size", 2), ("d_model", 16)):
        text = re.sub(rf"(?m)^{key} = \d+", f"{key} = {value}", text)
    path = d / "tiny-gpt-dispute.toml"
    path.write_text(text)
    spec = load_spec(str(path))
    out: dict[str, Any] = {"spec_path": path, "spec": spec}
    for name, fault in (("honest", None), ("faulty", Fault.parse(GPT_FAULT))):
        res = train(spec, out_dir=d / name, fault=fault, progress=False)
        out[name] = (res, d / name, fault)
    return out


def test_onestep_game_tiny_gpt_gelu_fault(chain: Chain, gpt_runs: dict[str, Any]) -> None:
    """The whole game over a tiny-gpt run whose solver corrupted one GELU element: the challenger
    descends to that op and element, and the soft-float verifier's one-step check (a template
    program) decides against the solver."""
    g_ch, gid = _play_faulty(chain, gpt_runs)
    g = g_ch.get(gid)
    assert GameStatus(g.status) == GameStatus.CHALLENGER_WON
    assert not g_ch.events(gid, "TimedOut")  # decided by the one-step check
    (checked,) = g_ch.game.events.OneStepChecked().get_logs(argument_filters={"gameId": gid}, from_block=0)
    fault = Fault.parse(GPT_FAULT)
    print(f"tiny-gpt GELU fault: DisputeGame.step {_gas_of(chain, [checked])} gas (receipt's gasUsed)")
    assert (g.trainingStep, g.op, g.flatIndex) == (fault.step, fault.op + 1, fault.element)

"""Python plays both sides of the dispute game on anvil over a real training trace.

A digits-MLP task of 20 steps (checkpoints every 5) is trained by the solver with one corrupted scalar
in op 6 of step 7 — the backward matmul giving the output layer's weight gradient — and submitted.
The challenger replays from the solver's last good checkpoint and the game descends all four levels
(checkpoints, steps, ops, the element's scalar program) to the contract's one-step check, which names
exactly that op and element; the solver is slashed. Over the same run without the fault, a challenger
that disagrees where it should agree loses at every level it lies at, and its bond goes to the solver.
Every balance is checked to the wei (gas included) and every contract stays solvent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from protocol.agents.db import AgentDB
from protocol.agents.solver import initial_root
from protocol.chain.client import Chain
from protocol.chain.deploy import Deployment, Params, deploy_all
from protocol.chain.dispute import DisputeGame, GameStatus, Phase
from protocol.chain.market import Market, TaskParams, TaskStatus, sole_bidder_task
from protocol.dispute.layout import task_graph_root
from protocol.dispute.onestep import OneStepBackend
from protocol.dispute.player import (
    ChallengerPlayer,
    NoScalarBackend,
    ScalarBackend,
    SolverPlayer,
    TraceSource,
    find_anchor,
    play,
)
from protocol.spec import load_spec, spec_hash
from protocol.trace import Replayer
from protocol.train import Fault, train

ETH = 10**18
BOND = ETH // 10
STAKE = ETH // 2
PAYMENT = ETH
CLOCK = 600
# Step 7, op 6 (the backward matmul giving the output layer's weight gradient), element 2. Element 2
# of that gradient is non-zero at step 7; a corrupted zero (a dead hidden unit, e.g. element 5) comes
# out as a subnormal that the next op flushes to zero, and the run's states never differ.
FAULT = "7:6:2"
ELEMENT = 2

pytestmark = pytest.mark.slow
DIGITS = Path(__file__).resolve().parents[1] / "protocol" / "specs" / "digits-mlp.toml"


def small_spec(tmp: Path, steps: int = 20, interval: int = 5) -> Path:
    """The digits-mlp reference spec shortened to ``steps`` steps (as tests/scenarios does)."""
    text = DIGITS.read_text()
    text = re.sub(r"(?m)^steps = \d+", f"steps = {steps}", text)
    text = re.sub(r"(?m)^checkpoint_interval = \d+", f"checkpoint_interval = {interval}", text)
    text = re.sub(r'(?m)^name = ".*"', 'name = "digits-dispute"', text, count=1)
    path = tmp / "digits-dispute.toml"
    path.write_text(text)
    return path


@dataclass
class Arena:
    """A task with a submitted result on anvil, a DisputeGame, and the parties' keys."""

    chain: Chain
    deployment: Deployment
    game_address: str
    submitter: Market
    solver: Market
    challenger: Market
    task_id: int
    manifest: dict[str, Any]
    store: Path
    spec: Any
    fault: Fault | None
    backend: ScalarBackend

    def game(self, m: Market) -> DisputeGame:
        return DisputeGame(self.chain, self.game_address, m.key)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The honest and the faulty run of the small spec, trained once for the module."""
    d = tmp_path_factory.mktemp("runs")
    spec_path = small_spec(d)
    spec = load_spec(str(spec_path))
    out: dict[str, Any] = {"spec_path": spec_path, "spec": spec}
    for name, fault in (("honest", None), ("faulty", Fault.parse(FAULT))):
        res = train(spec, out_dir=d / name, fault=fault, progress=False)
        out[name] = (res, d / name, fault)
    return out


def make_arena(chain: Chain, runs: dict[str, Any], which: str) -> Arena:
    keys = chain.dev_keys
    params = Params(unbonding_delay=3600, dispute_timeout=4 * CLOCK, dispute_bond=BOND, dispute_degree=4,
                    dispute_clock=CLOCK)
    deployment = deploy_all(chain, keys[0], params)  # with the soft-float verifier and the game
    submitter = Market(chain, deployment, keys[1])
    solver = submitter.with_key(keys[2])
    challenger = submitter.with_key(keys[4])
    spec = runs["spec"]
    result, store, fault = runs[which]
    params = TaskParams(spec_hash=bytes.fromhex(spec_hash(spec)[2:]), initial_state_root=initial_root(spec),
                        op_graph_root=task_graph_root(spec),
                        spec_uri=str(runs["spec_path"]), required_stake=STAKE, bid_bond=ETH // 100,
                        bid_window=100, reveal_window=100, training_window=3600, challenge_window=3600,
                        steps=spec.steps, checkpoint_interval=spec.checkpoint_interval)
    solver.deposit(STAKE)
    tid = sole_bidder_task(submitter, solver, params, PAYMENT, PAYMENT // 2)
    solver.submit_result(tid, result.trace_root, spec.steps, result.final_state_root,
                         f"{store}#{result.manifest_digest}")
    assert submitter.status(tid) == TaskStatus.RESULT_SUBMITTED
    solver.withdraw_payments()  # its bid bond, back after the reveal: settled before the game
    manifest = json.loads((store / "manifest.json").read_text())
    return Arena(chain, deployment, deployment.dispute_game, submitter, solver, challenger, tid, manifest, store, spec,
                 fault, OneStepBackend())


def sources(a: Arena) -> tuple[TraceSource, TraceSource]:
    """The solver's own replay (with its fault) and the challenger's honest one from the solver's store."""
    from protocol.commit import LocalStore

    roots = [bytes.fromhex(c["state_root"][2:]) for c in a.manifest["checkpoints"]]
    store = LocalStore(a.store)
    c = a.spec.checkpoint_interval
    own = TraceSource(Replayer(a.spec, fault=a.fault, store=store, manifest=a.manifest), roots, c)
    honest = TraceSource(Replayer(a.spec, store=store, manifest=a.manifest), roots, c)
    return own, honest


def solver_output_of(own: TraceSource) -> Any:
    """The solver's op output as its artifacts would serve it (its own replay)."""
    return lambda step, op: own.level3(step).trace.records[op - 1].output


def balances(a: Arena) -> dict[str, int]:
    """Every party's ETH plus the gas it has spent: two of these differ by exactly what it was paid or paid."""
    return {m.address: a.chain.balance(m.address) + gas(a, m) for m in (a.submitter, a.solver, a.challenger)}


def gas(a: Arena, m: Market) -> int:
    return a.chain.gas_spent.get(m.address, 0)


def settle_everyone(a: Arena) -> None:
    """Everyone pulls what the market and StakeManager credited them."""
    for m in (a.submitter, a.solver, a.challenger):
        if m.payments() > 0:
            m.withdraw_payments()
        if m.proceeds() > 0:
            m.claim_proceeds()


def assert_solvent(a: Arena) -> None:
    acc = a.submitter.accounted()
    assert acc["stake_manager_balance"] == acc["stake_manager_accounted"]
    assert acc["market_balance"] == acc["market_accounted"]
    assert a.game(a.submitter).solvent()


def test_dispute_play_cheater_is_caught_at_the_one_step_check(chain: Chain, runs: dict[str, Any]) -> None:
    a = make_arena(chain, runs, "faulty")
    own, honest = sources(a)
    anchor = find_anchor(honest.replayer, own.checkpoint_roots, a.spec.checkpoint_interval)
    assert anchor == 1  # step 7 lies in checkpoint interval 1 (steps 5..10)
    before = balances(a)
    g_ch = a.game(a.challenger)
    gid = g_ch.challenge(a.task_id)
    db_s, db_c = AgentDB(":memory:"), AgentDB(":memory:")
    sp = SolverPlayer(a.game(a.solver), gid, db_s, own, a.backend)
    cp = ChallengerPlayer(g_ch, gid, db_c, honest, anchor, solver_output_of(own), a.backend)
    moves = play([sp, cp], advance=lambda: chain.advance(CLOCK + 1))
    game = g_ch.get(gid)
    assert GameStatus(game.status) == GameStatus.CHALLENGER_WON
    assert not g_ch.events(gid, "TimedOut")  # decided by the check, not the clock
    (checked,) = g_ch.events(gid, "OneStepChecked")
    assert checked["computed"] != checked["claimed"]
    assert game.trainingStep == 7 and game.op == 7  # level-3 leaf 7 is the log after op 6
    assert game.flatIndex == ELEMENT
    levels = [e["level"] for e in g_ch.events(gid, "LevelCommitted")]
    assert levels == [1, 2, 3, 4]
    settle_everyone(a)
    after = balances(a)
    share = STAKE * int(a.deployment.params["beneficiary_bps"]) // 10_000
    assert after[a.challenger.address] == before[a.challenger.address] + share
    assert a.solver.locked_stake() == 0 and a.solver.free_stake() == 0
    assert after[a.submitter.address] == before[a.submitter.address] + PAYMENT
    assert a.submitter.status(a.task_id) == TaskStatus.FAILED
    assert moves >= 12
    assert_solvent(a)


def test_dispute_play_stalled_solver_loses_on_time(chain: Chain, runs: dict[str, Any]) -> None:
    """Levels 1-3 over the real faulty trace; the solver then stops answering and is slashed on time."""
    a = make_arena(chain, runs, "faulty")
    own, honest = sources(a)
    anchor = find_anchor(honest.replayer, own.checkpoint_roots, a.spec.checkpoint_interval)
    before = balances(a)
    g_ch = a.game(a.challenger)
    gid = g_ch.challenge(a.task_id, anchor)  # the pinned checkpoint pair: one reveal at level 1
    sp = SolverPlayer(a.game(a.solver), gid, AgentDB(":memory:"), own, NoScalarBackend())
    cp = ChallengerPlayer(g_ch, gid, AgentDB(":memory:"), honest, anchor, solver_output_of(own), NoScalarBackend())
    play([sp, cp], advance=lambda: chain.advance(CLOCK + 1))
    game = g_ch.get(gid)
    assert GameStatus(game.status) == GameStatus.CHALLENGER_WON
    # The game got down to the disputed op and the named element before the solver stalled.
    assert game.trainingStep == 7 and game.op == 7 and game.flatIndex == ELEMENT
    opened = g_ch.events(gid, "OpOpened")
    assert len(opened) == 1 and opened[0]["op"] == 7
    assert [e["loser"] for e in g_ch.events(gid, "TimedOut")] == [1]  # Party.Solver
    settle_everyone(a)
    after = balances(a)
    share = STAKE * int(a.deployment.params["beneficiary_bps"]) // 10_000
    assert after[a.challenger.address] == before[a.challenger.address] + share
    assert after[a.submitter.address] == before[a.submitter.address] + PAYMENT
    assert after[a.solver.address] == before[a.solver.address]
    assert a.solver.locked_stake() == 0 and a.solver.free_stake() == 0
    assert a.submitter.status(a.task_id) == TaskStatus.FAILED
    assert_solvent(a)


def _liar_at(level: int) -> Any:
    """Disagrees with the first revealed leaf at ``level`` (where it should agree). Every level-3 leaf
    of an honest step agrees, so below a lie it still has to pick an op: it steers to the backward
    matmul (level-3 leaf 7), an op kind the one-step verifier covers."""

    def liar(lvl: int, positions: list[int], leaves: list[bytes], honest: int) -> int | None:
        if lvl == level:
            return 0
        if lvl == 3:
            return sum(1 for p in positions if p <= 6)  # the sub-interval holding the pair (6, 7)
        return None

    return liar


@pytest.mark.parametrize("lie_level", [1, 2, 3, 4])
def test_dispute_play_lying_challenger_loses_its_bond(chain: Chain, runs: dict[str, Any], lie_level: int) -> None:
    a = make_arena(chain, runs, "honest")
    own, honest = sources(a)
    before = balances(a)
    g_ch = a.game(a.challenger)
    gid = g_ch.challenge(a.task_id)
    sp = SolverPlayer(a.game(a.solver), gid, AgentDB(":memory:"), own, a.backend)
    cp = ChallengerPlayer(g_ch, gid, AgentDB(":memory:"), honest, None, solver_output_of(own), a.backend,
                          liar=_liar_at(lie_level))
    play([sp, cp], advance=lambda: chain.advance(CLOCK + 1))
    assert GameStatus(g_ch.status(gid)) == GameStatus.SOLVER_WON
    assert not g_ch.events(gid, "TimedOut")
    (checked,) = g_ch.events(gid, "OneStepChecked")
    assert checked["computed"] == checked["claimed"]
    after = balances(a)
    assert after[a.challenger.address] == before[a.challenger.address] - BOND
    assert after[a.solver.address] == before[a.solver.address] + BOND
    assert a.submitter.status(a.task_id) == TaskStatus.RESULT_SUBMITTED
    assert a.solver.locked_stake() == STAKE
    assert_solvent(a)


def test_dispute_play_challenger_naming_a_missing_element_loses(chain: Chain, runs: dict[str, Any]) -> None:
    """Over the honest run, a challenger that names an element beyond the output is refuted by
    ``rejectOutput`` (no level 4 needed) and its bond goes to the solver."""
    a = make_arena(chain, runs, "honest")
    own, honest = sources(a)
    before = balances(a)
    g_ch = a.game(a.challenger)
    gid = g_ch.challenge(a.task_id)
    sp = SolverPlayer(a.game(a.solver), gid, AgentDB(":memory:"), own, NoScalarBackend())
    cp = ChallengerPlayer(g_ch, gid, AgentDB(":memory:"), honest, None, solver_output_of(own), NoScalarBackend(),
                          name=lambda op: 10**9)
    play([sp, cp], advance=lambda: chain.advance(CLOCK + 1))
    assert GameStatus(g_ch.status(gid)) == GameStatus.SOLVER_WON
    (rejected,) = g_ch.events(gid, "OutputRejected")
    assert rejected["flatIndex"] == 10**9
    # An honest trace agrees everywhere: the honest chooser walks to the last checkpoint, step and op.
    game = g_ch.get(gid)
    assert game.trainingStep == a.spec.steps - 1
    after = balances(a)
    assert after[a.challenger.address] == before[a.challenger.address] - BOND
    assert after[a.solver.address] == before[a.solver.address] + BOND
    assert_solvent(a)


def test_dispute_play_restarted_players_never_send_twice(chain: Chain, runs: dict[str, Any]) -> None:
    """Trackers rebuilt from scratch before every move (a daemon killed between moves) finish the game
    from the chain alone, and the database keys make every move exactly one transaction."""
    a = make_arena(chain, runs, "faulty")
    own, honest = sources(a)
    anchor = find_anchor(honest.replayer, own.checkpoint_roots, a.spec.checkpoint_interval)
    g_ch, g_s = a.game(a.challenger), a.game(a.solver)
    gid = g_ch.challenge(a.task_id, anchor)
    db_s, db_c = AgentDB(":memory:"), AgentDB(":memory:")
    for _ in range(60):
        sp = SolverPlayer(g_s, gid, db_s, own, NoScalarBackend())
        cp = ChallengerPlayer(g_ch, gid, db_c, honest, anchor, solver_output_of(own), NoScalarBackend())
        if sp.done() and cp.done():
            break
        if not any([sp.act(), cp.act()]):
            chain.advance(CLOCK + 1)
    assert GameStatus(g_ch.status(gid)) == GameStatus.CHALLENGER_WON
    assert db_s.count_done(f"game:{gid}:reveal") == len(g_ch.events(gid, "LeavesRevealed"))
    assert db_c.count_done(f"game:{gid}:choose") == len(g_ch.events(gid, "IntervalChosen"))
    # A tracker handed an old snapshot of the game sends nothing: the key of that move is done.
    stale = g_ch.get(gid)._replace(status=1, phase=int(Phase.NAME_OUTPUT))
    sent = ChallengerPlayer(g_ch, gid, db_c, honest, anchor, solver_output_of(own), NoScalarBackend())._send(
        stale, "nameOutput", lambda: g_ch.name_output(gid, 0, 0))
    assert not sent


def test_dispute_play_phases_follow_the_contract(chain: Chain, runs: dict[str, Any]) -> None:
    """Each tracker move leaves the game in the next phase of the table in docs/DISPUTE.md."""
    a = make_arena(chain, runs, "faulty")
    own, honest = sources(a)
    g_ch = a.game(a.challenger)
    gid = g_ch.challenge(a.task_id)
    sp = SolverPlayer(a.game(a.solver), gid, AgentDB(":memory:"), own, NoScalarBackend())
    cp = ChallengerPlayer(g_ch, gid, AgentDB(":memory:"), honest,
                          find_anchor(honest.replayer, own.checkpoint_roots, 5), solver_output_of(own),
                          NoScalarBackend())
    seen = [g_ch.phase(gid)]
    for _ in range(40):
        if g_ch.phase(gid) == Phase.COMMIT_SCALAR:
            break
        for p in (sp, cp):
            if p.act() is not None:
                seen.append(g_ch.phase(gid))
    assert seen[0] == Phase.DEFEND_TRACE and seen[-1] == Phase.COMMIT_SCALAR
    order = [Phase.COMMIT_STEPS, Phase.COMMIT_OPS, Phase.OPEN_OP, Phase.NAME_OUTPUT]
    assert [p for p in seen if p in order] == order


def _to_phase(players: list[Any], game: DisputeGame, gid: int, phase: Phase, limit: int = 80) -> None:
    """Let the players move until the game waits in ``phase``."""
    for _ in range(limit):
        if game.phase(gid) == phase:
            return
        if not any(p.act() is not None for p in players):
            raise AssertionError(f"game {gid} stalled before {phase.name}")
    raise AssertionError(f"game {gid} did not reach {phase.name}")


def _forged_level3(l3: Any, first_entries: list[bytes]) -> Any:
    """Level 3 of a step whose log starts with ``first_entries`` instead and then has the same ops."""
    from protocol.commit import OpLog, SequenceTree
    from protocol.dispute.player import Level3, op_leaf

    log = OpLog(first_entries)
    for op in l3.trace.ops:
        log.append_op([op.output_id])
    leaves = [op_leaf(r, s) for r, s in zip(log.op_roots, log.op_sizes, strict=True)]
    return Level3(l3.trace, log, log.op_sizes, SequenceTree(leaves))


def test_dispute_play_step_layout_and_inputs_are_the_tasks(chain: Chain, runs: dict[str, Any]) -> None:
    """Over the real faulty run, down to level 3 at step 7: the solver cannot commit a log that reads
    another step's batch, nor an op count or designated entries of its choosing; its true step goes
    through and the game ends at the one-step check as before."""
    from dataclasses import replace

    from protocol.chain import errors
    from protocol.dispute.graph import graph_root as descriptors_root
    from protocol.dispute.graph import op_graph
    from protocol.dispute.layout import graph_commitment, input_row_leaf

    a = make_arena(chain, runs, "faulty")
    own, honest = sources(a)
    anchor = find_anchor(honest.replayer, own.checkpoint_roots, a.spec.checkpoint_interval)
    g_s, g_ch = a.game(a.solver), a.game(a.challenger)
    gid = g_ch.challenge(a.task_id, anchor)
    sp = SolverPlayer(g_s, gid, AgentDB(":memory:"), own, a.backend)
    cp = ChallengerPlayer(g_ch, gid, AgentDB(":memory:"), honest, anchor, solver_output_of(own), a.backend)
    _to_phase([sp, cp], g_ch, gid, Phase.COMMIT_OPS)
    step = 7
    graph, layout = own.task()
    task_root = graph_commitment(graph, layout.layout_hash)
    assert bytes(g_ch.get(gid).opGraphRoot) == task_root
    assert graph == descriptors_root(op_graph(a.spec))
    # The layout is every step's: the real traces of the disputed interval have it.
    for t in range(5, 10):
        layout.check_trace(honest.level3(t).trace)
    l3 = own.level3(step)
    n_state, n_first = layout.state_size, l3.sizes[0]
    assert (layout.num_ops, n_state, n_first) == (len(l3.trace.ops), 13, 16)
    assert layout.rows[step] != layout.rows[step + 1]  # another step, another batch
    honest_c = sp.ops_commitment(step)

    # Step 8's batch in step 7's log, claimed as row 7: the table's row 7 is another.
    first = list(l3.trace.log_ids[:n_state]) + list(layout.rows[step + 1])
    forged = _forged_level3(l3, first)
    sp.own._levels3[step] = forged
    c = replace(sp.ops_commitment(step), input_ids=list(layout.rows[step + 1]))
    with pytest.raises(errors.NotInTree) as exc:
        g_s.commit_ops(gid, c)
    assert exc.value.values == {"root": layout.inputs_root, "position": step, "size": a.spec.steps,
                                "leaf": input_row_leaf(step, layout.rows[step + 1])}
    # ... nor as row 8 with row 8's own proof: the leaf carries its step.
    with pytest.raises(errors.NotInTree):
        g_s.commit_ops(gid, replace(c, inputs_proof=layout.row_proof(step + 1)))
    sp.own._levels3[step] = l3

    # Designated entries of the solver's choosing (two moments swapped), or one op fewer.
    swapped = list(honest_c.designated)
    swapped[4], swapped[5] = swapped[5], swapped[4]
    for bad in (replace(honest_c, designated=swapped), replace(honest_c, size=honest_c.size - 1)):
        with pytest.raises(errors.GraphMismatch) as exc:
            g_s.commit_ops(gid, bad)
        assert exc.value.values["expected"] == task_root and exc.value.values["computed"] != task_root

    # The true step: level 3 starts, the verifier gets the descriptors' root.
    play([sp, cp], advance=lambda: chain.advance(CLOCK + 1))
    game = g_ch.get(gid)
    assert GameStatus(game.status) == GameStatus.CHALLENGER_WON
    assert game.firstLogSize == n_first and bytes(game.opGraphRoot) == graph
    assert game.trainingStep == step and game.op == 7 and game.flatIndex == ELEMENT
    assert [e["level"] for e in g_ch.events(gid, "LevelCommitted")] == [1, 2, 3, 4]
    assert_solvent(a)


def test_dispute_play_withheld_output_is_opened_on_chain(chain: Chain, runs: dict[str, Any]) -> None:
    """The solver serves no disputed output: the challenger has chunks of it opened on chain, follows
    the opened paths to the faulty chunk, names the faulty element and wins at the one-step check."""
    a = make_arena(chain, runs, "faulty")
    own, honest = sources(a)
    anchor = find_anchor(honest.replayer, own.checkpoint_roots, a.spec.checkpoint_interval)
    g_ch = a.game(a.challenger)
    gid = g_ch.challenge(a.task_id, anchor)
    sp = SolverPlayer(a.game(a.solver), gid, AgentDB(":memory:"), own, a.backend)
    cp = ChallengerPlayer(g_ch, gid, AgentDB(":memory:"), honest, anchor, None, a.backend)
    play([sp, cp], advance=lambda: chain.advance(CLOCK + 1))
    game = g_ch.get(gid)
    assert GameStatus(game.status) == GameStatus.CHALLENGER_WON
    assert not g_ch.events(gid, "TimedOut")
    requested = [e["chunkIndex"] for e in g_ch.events(gid, "ChunkRequested")]
    opened = g_ch.events(gid, "ChunkOpened")
    assert requested and [e["chunkIndex"] for e in opened] == requested
    assert requested[-1] == ELEMENT * 4 // 256  # the chunk holding the faulty element, opened last
    assert game.chunkRequests == len(requested) and game.flatIndex == ELEMENT
    (checked,) = g_ch.events(gid, "OneStepChecked")
    assert checked["computed"] != checked["claimed"]
    assert_solvent(a)


def test_dispute_play_solver_withholding_an_opening_loses_on_time(chain: Chain, runs: dict[str, Any]) -> None:
    """A solver that does not open the requested chunk on chain is slashed on time."""

    class Withholding(SolverPlayer):
        def move(self, g: Any, phase: Phase) -> str | None:
            return None if phase == Phase.OPEN_CHUNK else super().move(g, phase)

    a = make_arena(chain, runs, "faulty")
    own, honest = sources(a)
    anchor = find_anchor(honest.replayer, own.checkpoint_roots, a.spec.checkpoint_interval)
    g_ch = a.game(a.challenger)
    gid = g_ch.challenge(a.task_id, anchor)
    sp = Withholding(a.game(a.solver), gid, AgentDB(":memory:"), own, NoScalarBackend())
    cp = ChallengerPlayer(g_ch, gid, AgentDB(":memory:"), honest, anchor, None, NoScalarBackend())
    play([sp, cp], advance=lambda: chain.advance(CLOCK + 1))
    assert GameStatus(g_ch.status(gid)) == GameStatus.CHALLENGER_WON
    assert [e["loser"] for e in g_ch.events(gid, "TimedOut")] == [1]  # Party.Solver
    assert len(g_ch.events(gid, "ChunkRequested")) == 1 and not g_ch.events(gid, "ChunkOpened")
    assert a.submitter.status(a.task_id) == TaskStatus.FAILED
    assert_solvent(a)


def _reshaped_level3(l3: Any, op: int) -> Any:
    """Level 3 of a step whose op ``op`` (0-based) wrote its output flattened: the same elements under
    another shape, so another id in the log; every other entry (S_t+1's included) is unchanged."""
    from dataclasses import replace

    from protocol.commit import OpLog, SequenceTree, TensorCommitment
    from protocol.dispute.player import Level3, op_leaf

    tr = l3.trace
    flat = tr.records[op].output.detach().reshape(-1)
    new_id = TensorCommitment(flat).id
    entry = tr.ops[op].output
    ops = [replace(o, output_id=new_id) if o.index == tr.ops[op].index else o for o in tr.ops]
    records = [replace(r, output=flat) if i == op else r for i, r in enumerate(tr.records)]
    log_ids = list(tr.log_ids)
    log_ids[entry] = new_id
    forged = replace(tr, ops=ops, records=records, log_ids=log_ids)
    log = OpLog(log_ids[: len(tr.start_names)])
    for o in ops:
        log.append_op([o.output_id])
    leaves = [op_leaf(r, s) for r, s in zip(log.op_roots, log.op_sizes, strict=True)]
    return Level3(forged, log, log.op_sizes, SequenceTree(leaves))


@pytest.mark.parametrize("served", [True, False], ids=["served", "opened"])
def test_dispute_play_wrong_output_shape_is_rejected_by_header(chain: Chain, runs: dict[str, Any],
                                                               served: bool) -> None:
    """The faulty solver's op 6 at step 7 writes its weight gradient flattened: the challenger proves
    the op's descriptor and the solver's output header (read from its artifacts, or from the chunk the
    solver opened on chain) and wins at once with rejectHeader, without a level 4."""
    from protocol.commit import TensorCommitment
    from protocol.dispute.graph import op_graph

    a = make_arena(chain, runs, "faulty")
    own, honest = sources(a)
    anchor = find_anchor(honest.replayer, own.checkpoint_roots, a.spec.checkpoint_interval)
    step, op = 7, 6
    own._levels3[step] = _reshaped_level3(own.level3(step), op)
    theirs = own.level3(step).trace.records[op].output
    g_ch = a.game(a.challenger)
    gid = g_ch.challenge(a.task_id, anchor)
    sp = SolverPlayer(a.game(a.solver), gid, AgentDB(":memory:"), own, a.backend)
    cp = ChallengerPlayer(g_ch, gid, AgentDB(":memory:"), honest, anchor,
                          solver_output_of(own) if served else None, a.backend)
    play([sp, cp], advance=lambda: chain.advance(CLOCK + 1))
    game = g_ch.get(gid)
    assert GameStatus(game.status) == GameStatus.CHALLENGER_WON
    assert not g_ch.events(gid, "TimedOut") and not g_ch.events(gid, "OutputNamed")
    assert game.trainingStep == step and game.op == op + 1
    assert [e["level"] for e in g_ch.events(gid, "LevelCommitted")] == [1, 2, 3]
    descriptor = op_graph(a.spec)[op]
    assert len(descriptor.out_shape) == 2
    (rejected,) = g_ch.events(gid, "HeaderRejected")
    assert tuple(rejected["shape"]) == tuple(theirs.shape) == (TensorCommitment(theirs).numel,)
    assert tuple(rejected["expectedShape"]) == descriptor.out_shape
    assert rejected["dtype"] == rejected["expectedDtype"] == 1  # float32: only the shape differs
    assert [e["chunkIndex"] for e in g_ch.events(gid, "ChunkOpened")] == ([] if served else [0])
    (log,) = g_ch.game.events.HeaderRejected().get_logs(argument_filters={"gameId": gid}, from_block=0)
    gas_used = int(chain.w3.eth.get_transaction_receipt(log["transactionHash"])["gasUsed"])
    print(f"rejectHeader gas: {gas_used}")  # docs/DISPUTE.md, "Gas"
    assert gas_used < 120_000
    assert a.submitter.status(a.task_id) == TaskStatus.FAILED
    assert_solvent(a)

"""One dispute played end to end on a real chain, recorded move by move.

What the dispute benchmark (``benchmarks/dispute_e2e.py``) measures and what the walkthrough notebook
(``notebooks/01_dispute_walkthrough.ipynb``) draws come from here, so both show the same game:

1. :func:`train_runs` trains a spec twice with the reproducible engine: honestly (the task's cost,
   the baseline a dispute is compared with) and with one corrupted scalar of one op at one step
   (:class:`protocol.train.Fault`), the cheating solver's run that gets submitted;
2. :func:`post_task` deploys the contracts as ``verigrad demo`` does, posts the task with the
   payment in escrow, runs the sealed-bid auction and has the cheater submit its result;
3. :func:`record_dispute` lets the verifier re-execute the intervals in order until one does not
   end at the solver's checkpoint (:func:`protocol.dispute.player.find_anchor`), then challenges
   pinned at that interval, and the project's two players (:class:`SolverPlayer`,
   :class:`ChallengerPlayer`) play every move down to the contract's one-step check, settle and
   withdraw. After each move the receipts it produced are read back from the chain (gas as paid,
   ``gasUsed``) and the game is read as the contract stores it.

The :class:`DisputeRecord` keeps every move (party, name, gas, wall time, where the game stood), the
path of the bisection through the four levels as the contract's events tell it (which leaves were
revealed at each level and which interval was chosen), the game's outcome, and the baselines: the
honest training time and the time to re-execute the disputed checkpoint interval once.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from eth_utils import function_abi_to_4byte_selector
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.logs import DISCARD

from protocol.agents.db import AgentDB
from protocol.agents.solver import initial_root
from protocol.chain.client import Chain
from protocol.chain.compile import artifact
from protocol.chain.deploy import Deployment, Params, deploy_all
from protocol.chain.dispute import DisputeGame, GameStatus, Phase
from protocol.chain.market import Market, TaskParams, sole_bidder_task
from protocol.commit import LocalStore
from protocol.dispute.layout import task_graph_root
from protocol.dispute.player import (
    ChallengerPlayer,
    GamePlayer,
    PlayError,
    SolverPlayer,
    TraceSource,
    find_anchor,
)
from protocol.spec import TaskSpec, spec_hash
from protocol.trace import Replayer
from protocol.train import Fault, TrainResult, train

ETH = 10**18
#: What ``verigrad demo`` deploys and posts: the default game (degree 4, bond 0.1 ETH, clocks of a
#: quarter of the dispute timeout), 1 ETH of stake locked by the winner, 2 ETH of payment.
DEMO_PARAMS = Params(unbonding_delay=3600)
STAKE = ETH
PAYMENT = 2 * ETH
#: The op the cheater corrupts: op 6 of a digits-mlp step, the backward matmul that gives the output
#: layer's weight gradient.
FAULT_OP = 6
LEVEL_NAMES = {1: "checkpoints", 2: "steps", 3: "ops", 4: "scalar program"}


# ------------------------------------------------------------------------------------------ the runs


def sized_spec(spec: TaskSpec, steps: int, interval: int) -> TaskSpec:
    """``spec`` with another number of steps and checkpoint interval (a different trace size)."""
    return dataclasses.replace(spec, steps=steps, checkpoint_interval=interval)


def fault_step(spec: TaskSpec) -> int:
    """A step inside the middle checkpoint interval: the verifier has to re-execute half the run to
    find it, and level 1 is not decided by its first or last leaf."""
    c = spec.checkpoint_interval
    return (spec.steps // c // 2) * c + (3 * c) // 5


@dataclass
class Runs:
    """The honest and the cheating run of one spec, each in its own artifact directory."""

    spec: TaskSpec
    fault: Fault
    honest: TrainResult
    faulty: TrainResult

    @property
    def store_dir(self) -> Path:
        """The cheater's artifact directory (what it serves and what the verifier re-executes from)."""
        return Path(str(self.faulty.out_dir))

    def manifest(self) -> dict[str, Any]:
        return dict(json.loads((self.store_dir / "manifest.json").read_text()))


def train_runs(spec: TaskSpec, out_dir: str | Path, step: int | None = None, op: int = FAULT_OP,
               element: int | None = None) -> Runs:
    """Train ``spec`` honestly, then with one corrupted scalar of op ``op`` at ``step``.

    Without ``element``, the corrupted element is the first non-zero one of the honest output: a
    corrupted zero (the gradient of a dead hidden unit) comes out as a subnormal that the next op
    flushes to zero, and the run would not change at all.
    """
    out = Path(out_dir)
    step = fault_step(spec) if step is None else step
    honest = train(spec, out_dir=out / "honest", progress=False)
    if element is None:
        manifest = json.loads((out / "honest" / "manifest.json").read_text())
        replayer = Replayer(spec, store=LocalStore(out / "honest"), manifest=manifest)
        flat = replayer.op_trace(step).records[op].output.detach().reshape(-1)
        element = int((flat != 0).nonzero()[0].item())
    fault = Fault(step, op, element)
    faulty = train(spec, out_dir=out / "faulty", fault=fault, progress=False)
    return Runs(spec, fault, honest, faulty)


# ------------------------------------------------------------------------------------------ the task


@dataclass
class Task:
    """A deployment with one task whose result (the cheater's) is submitted and open to challenge."""

    chain: Chain
    deployment: Deployment
    submitter: Market
    solver: Market
    challenger: Market
    task_id: int
    runs: Runs

    def game(self, m: Market) -> DisputeGame:
        return DisputeGame(self.chain, self.deployment.dispute_game, m.key)


def post_task(chain: Chain, keys: list[str], runs: Runs, params: Params = DEMO_PARAMS) -> Task:
    """Fresh contracts (``keys[0]`` deploys); ``keys[1]`` posts, ``keys[2]`` wins the auction and
    submits the cheating run, ``keys[3]`` is the verifier."""
    spec = runs.spec
    d = deploy_all(chain, keys[0], params)
    submitter = Market(chain, d, keys[1])
    solver, challenger = submitter.with_key(keys[2]), submitter.with_key(keys[3])
    tp = TaskParams(spec_hash=bytes.fromhex(spec_hash(spec).removeprefix("0x")), initial_state_root=initial_root(spec),
                    op_graph_root=task_graph_root(spec), spec_uri=f"builtin:{spec.name}", required_stake=STAKE,
                    bid_bond=ETH // 100, bid_window=60, reveal_window=60, training_window=3600,
                    challenge_window=3600, steps=spec.steps, checkpoint_interval=spec.checkpoint_interval)
    solver.deposit(STAKE)
    tid = sole_bidder_task(submitter, solver, tp, PAYMENT, PAYMENT // 2)
    r = runs.faulty
    solver.submit_result(tid, r.trace_root, spec.steps, r.final_state_root,
                         f"{runs.store_dir.resolve().as_uri()}#{r.manifest_digest}")
    solver.withdraw_payments()  # the bid bond, back after the reveal: settled before any dispute
    return Task(chain, d, submitter, solver, challenger, tid, runs)


# ------------------------------------------------------------------------------------------ the record


@dataclass(frozen=True)
class Tx:
    """One transaction as its receipt tells it."""

    contract: str
    function: str
    sender: str
    gas: int


@dataclass
class Move:
    """One action of a party: the transactions it sent and where the game stood after them."""

    party: str  # solver, challenger or submitter
    name: str  # challenge, defendTrace, reveal, choose, ..., resolve, withdraw, claimProceeds, refund
    txs: list[Tx]
    seconds: float  # the party's wall time for the move: its replay work and its transactions
    level: int  # the game's level when the move was made (0 after the game)
    phase: str
    lo: int = 0  # the game's interval after the move
    hi: int = 0
    positions: list[int] = field(default_factory=list)  # leaves revealed by the move

    @property
    def gas(self) -> int:
        return sum(t.gas for t in self.txs)


@dataclass
class Round:
    """One query of a level: the revealed positions and the interval the challenger chose."""

    positions: list[int]
    lo: int
    hi: int


@dataclass
class Level:
    """One level of the bisection as the contract's events tell it."""

    level: int
    size: int  # leaves the solver committed
    rounds: list[Round]

    @property
    def name(self) -> str:
        return LEVEL_NAMES[self.level]

    @property
    def pair(self) -> tuple[int, int]:
        """The adjacent pair the level ended on: the challenger agrees with the first leaf only."""
        r = self.rounds[-1]
        return r.lo, r.hi


@dataclass
class DisputeRecord:
    """A dispute played to the end: moves, levels, outcome and the times to compare it with."""

    spec: TaskSpec
    fault: Fault
    losses_honest: list[float]
    losses_faulty: list[float]
    train_s: float  # the honest run: what the task costs
    detect_s: float  # the verifier's re-execution, interval by interval, until the mismatch
    reexec_s: float  # re-executing the disputed checkpoint interval once
    anchor: int  # the last checkpoint the verifier accepts (the game is pinned there)
    wall_s: float  # from the challenge to the last withdrawal (see :func:`record_dispute`)
    rpc_s: float  # of wall_s: the parties' JSON-RPC requests (the node executing and mining included)
    record_s: float  # of wall_s: this record's own reads after each move (receipts, the game)
    moves: list[Move]
    levels: list[Level]
    status: GameStatus
    checkpoint: int  # level 1's agreed leaf: the disputed interval starts at checkpoint * interval
    training_step: int
    op: int  # level-3 index (the op's record index + 1)
    op_name: str
    element: int
    op_names: list[str]  # every op of the disputed step, in order (level-3 leaf j follows op j)
    program: list[str]  # the element's scalar program (level-4 leaf m follows instruction m)
    checked_step: int  # the program step the contract executed
    computed: bytes
    claimed: bytes

    @property
    def local_s(self) -> float:
        """Of wall_s: the parties' own work: replaying their runs, building leaves and proofs, signing."""
        return self.wall_s - self.rpc_s - self.record_s

    def party_moves(self, *parties: str) -> list[Move]:
        return [m for m in self.moves if m.party in parties]

    @property
    def gas_total(self) -> int:
        """Gas of every transaction of the two parties, challenge to withdrawals."""
        return sum(m.gas for m in self.party_moves("solver", "challenger"))

    def gas_of(self, party: str) -> int:
        return sum(m.gas for m in self.party_moves(party))

    def summary(self) -> dict[str, Any]:
        parties = self.party_moves("solver", "challenger")
        return {
            "spec": self.spec.name, "steps": self.spec.steps, "interval": self.spec.checkpoint_interval,
            "fault": f"{self.fault.step}:{self.fault.op}:{self.fault.element}",
            "leaves": {lv.name: lv.size for lv in self.levels},
            "moves": len(parties),
            "transactions": sum(len(m.txs) for m in parties),
            "gas_total": self.gas_total,
            "gas_solver": self.gas_of("solver"), "gas_challenger": self.gas_of("challenger"),
            "gas_max_move": max(m.gas for m in parties),
            "wall_s": round(self.wall_s, 2),
            "wall_split_s": {"rpc": round(self.rpc_s, 2), "local": round(self.local_s, 2),
                             "record": round(self.record_s, 2)},
            "train_s": round(self.train_s, 2), "reexec_s": round(self.reexec_s, 2),
            "detect_s": round(self.detect_s, 2),
            "wall_over_train": round(self.wall_s / self.train_s, 2),
            "wall_over_reexec": round(self.wall_s / self.reexec_s, 2),
            "status": self.status.name,
            "decided_at": {"step": self.training_step, "op": self.op, "op_name": self.op_name,
                           "element": self.element, "program_step": self.checked_step},
        }


class _TimedProvider(HTTPProvider):
    """JSON-RPC over HTTP, adding up the time of every request (the node's work and the round trip)."""

    rpc_s = 0.0

    def make_request(self, method: Any, params: Any) -> Any:
        t = time.perf_counter()
        try:
            return super().make_request(method, params)
        finally:
            self.rpc_s += time.perf_counter() - t


class _Receipts:
    """Reads back the transactions mined since a block, named by the contract function they called."""

    CONTRACTS = ("DisputeGame", "ScalarStepVerifier", "TaskMarket", "StakeManager")

    def __init__(self, chain: Chain, d: Deployment) -> None:
        self.w3 = chain.w3
        addresses = {"DisputeGame": d.dispute_game, "ScalarStepVerifier": d.step_verifier,
                     "TaskMarket": d.task_market, "StakeManager": d.stake_manager}
        self.names: dict[str, str] = {str(self.w3.to_checksum_address(a)): n for n, a in addresses.items()}
        self.selectors: dict[tuple[str, bytes], str] = {}
        for name in self.CONTRACTS:
            for item in artifact(name).abi:
                if item.get("type") == "function":
                    self.selectors[(name, bytes(function_abi_to_4byte_selector(cast(Any, item))))] = item["name"]
        self.game = chain.contract("DisputeGame", d.dispute_game)

    def block(self) -> int:
        return int(self.w3.eth.block_number)

    def since(self, block: int) -> tuple[list[Tx], list[int]]:
        """Transactions of the blocks after ``block``, and the positions any of them revealed."""
        txs, positions = [], []
        for n in range(block + 1, self.block() + 1):
            for item in self.w3.eth.get_block(n)["transactions"]:
                h = cast(HexBytes, item)
                tx, receipt = self.w3.eth.get_transaction(h), self.w3.eth.get_transaction_receipt(h)
                contract = self.names.get(str(tx["to"]), str(tx["to"]))
                data = bytes(tx["input"])
                function = self.selectors.get((contract, data[:4]), data[:4].hex())
                txs.append(Tx(contract, function, str(tx["from"]), int(receipt["gasUsed"])))
                for ev in self.game.events.LeavesRevealed().process_receipt(receipt, errors=DISCARD):
                    positions += [int(p) for p in ev["args"]["positions"]]
        return txs, positions


def record_dispute(task: Task) -> DisputeRecord:
    """The verifier finds the wrong interval, challenges, and both players play to the end.

    ``wall_s`` runs from the challenge transaction to the last withdrawal: every move of both
    players with the replays each needs (the interval's state roots at level 2, the op trace of the
    disputed step at level 3, the element's scalar program at level 4, built by each party from
    its own run), the op registration and the one-step check, the settlement (``resolve``: slash,
    refund, bond) and the withdrawals of the bond, the slash share and the submitter's refund. The
    verifier's search for the wrong interval comes before the challenge and is ``detect_s``.
    """
    chain, runs = task.chain, task.runs
    spec, c = runs.spec, runs.spec.checkpoint_interval
    manifest = runs.manifest()
    roots = [bytes.fromhex(cp["state_root"][2:]) for cp in manifest["checkpoints"]]
    store = LocalStore(runs.store_dir)

    def replayer(fault: Fault | None = None) -> Replayer:
        return Replayer(spec, fault=fault, store=store, manifest=manifest)

    t0 = time.perf_counter()
    anchor = find_anchor(replayer(), roots, c)
    detect_s = time.perf_counter() - t0
    if anchor is None:
        raise PlayError(f"fault {runs.fault} did not change the run: no interval to dispute")
    t0 = time.perf_counter()
    replayer().interval(anchor * c)
    reexec_s = time.perf_counter() - t0

    receipts = _Receipts(chain, task.deployment)
    # The parties' own connection: every JSON-RPC request they make (transactions, receipts, reads of
    # the game and of its events) is timed; the rest of their time is their own work.
    provider = _TimedProvider(chain.url, request_kwargs={"timeout": 30})
    parties = Chain(Web3(provider), chain.url, chain.dev_keys)
    game_address = task.deployment.dispute_game
    game_c = DisputeGame(parties, game_address, task.challenger.key)
    view = DisputeGame(chain, game_address, task.challenger.key)  # this record's own reads
    moves: list[Move] = []
    record_s = 0.0

    def snapshot() -> Any:
        nonlocal record_s
        t = time.perf_counter()
        g = view.get(gid)
        record_s += time.perf_counter() - t
        return g

    def since(block: int) -> tuple[list[Tx], list[int]]:
        nonlocal record_s
        t = time.perf_counter()
        out = receipts.since(block)
        record_s += time.perf_counter() - t
        return out

    def timed(party: str, name: str, action: Any) -> Any:
        block, t = receipts.block(), time.perf_counter()
        out = action()
        seconds = time.perf_counter() - t
        txs, positions = since(block)
        moves.append(Move(party, name, txs, seconds, 0, "NONE" if name == "challenge" else "ENDED",
                          positions=positions))
        return out

    start = time.perf_counter()
    gid = timed("challenger", "challenge", lambda: game_c.challenge(task.task_id, anchor))
    own = TraceSource(replayer(runs.fault), roots, c)
    honest = TraceSource(replayer(), roots, c)
    players: list[tuple[str, GamePlayer]] = [
        ("solver", SolverPlayer(game_c.with_key(task.solver.key), gid, AgentDB(":memory:"), own)),
        ("challenger", ChallengerPlayer(game_c, gid, AgentDB(":memory:"), honest, anchor,
                                        lambda step, op: own.level3(step).trace.records[op - 1].output)),
    ]
    while not all(p.done() for _, p in players):
        moved = False
        for party, p in players:
            g = snapshot()
            level = int(g.level)
            phase = Phase(g.phase).name if GameStatus(g.status) == GameStatus.IN_PROGRESS else "ENDED"
            block, t = receipts.block(), time.perf_counter()
            name = p.act()
            if name is None:
                continue
            seconds = time.perf_counter() - t
            txs, positions = since(block)
            if not txs:
                raise PlayError(f"game {gid}: the {party}'s {name} sent nothing (reverted)")
            after = snapshot()
            moves.append(Move(party, name, txs, seconds, level, phase, int(after.lo), int(after.hi), positions))
            moved = True
        if not moved:
            raise PlayError(f"game {gid}: neither party can move")
    challenger, submitter = (Market(parties, task.deployment, m.key) for m in (task.challenger, task.submitter))
    if challenger.proceeds() > 0:
        timed("challenger", "claimProceeds", challenger.claim_proceeds)
    if submitter.payments() > 0:
        timed("submitter", "refund", submitter.withdraw_payments)
    wall_s = time.perf_counter() - start

    g = game_c.get(gid)
    step, op, element = int(g.trainingStep), int(g.op), int(g.flatIndex)
    trace = own.level3(step).trace
    program = own.replayer.scalar_trace(step, op - 1, element, trace=trace).program
    (checked,) = game_c.events(gid, "OneStepChecked") or [{"step": -1, "computed": b"", "claimed": b""}]
    return DisputeRecord(
        spec=spec, fault=runs.fault, losses_honest=list(runs.honest.losses), losses_faulty=list(runs.faulty.losses),
        train_s=runs.honest.seconds, detect_s=detect_s, reexec_s=reexec_s, anchor=anchor, wall_s=wall_s,
        rpc_s=provider.rpc_s, record_s=record_s,
        moves=moves, levels=levels_of(game_c, gid), status=GameStatus(g.status), checkpoint=int(g.checkpoint),
        training_step=step, op=op, op_name=trace.ops[op - 1].name, element=element,
        op_names=[o.name for o in trace.ops], program=[str(i) for i in program],
        checked_step=int(checked["step"]), computed=bytes(checked["computed"]), claimed=bytes(checked["claimed"]),
    )


def levels_of(game: DisputeGame, gid: int) -> list[Level]:
    """The bisection's path from the game's events: each level's size, reveals and choices."""
    levels = {int(e["level"]): Level(int(e["level"]), int(e["size"]), [])
              for e in game.events(gid, "LevelCommitted")}
    reveals = game.events(gid, "LeavesRevealed")
    chosen = game.events(gid, "IntervalChosen")
    if len(reveals) != len(chosen):
        raise PlayError(f"game {gid}: {len(reveals)} reveals but {len(chosen)} choices")
    for r, ch in zip(reveals, chosen, strict=True):
        levels[int(r["level"])].rounds.append(Round([int(p) for p in r["positions"]], int(ch["lo"]), int(ch["hi"])))
    return [levels[k] for k in sorted(levels)]

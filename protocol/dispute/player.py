"""Playing the dispute game from Python: one tracker per game that reads the phase and makes one move.

Each :class:`SolverPlayer` / :class:`ChallengerPlayer` owns one game id and nothing else. Its only
state is what it can recompute: the game's phase, level and interval come from the contract on every
call of :meth:`GamePlayer.act`, never from memory, so a tracker built afresh after a crash continues
exactly where the chain is (BOLD's "one tracker per game" style). What a party knows about the
trace comes from replaying training with the very code that trained (:class:`protocol.trace.Replayer`):

* the **solver** replays its own run (with its fault, when it is the cheating one: a cheater defends its
  lie as well as it can) and reveals leaves with proofs from the same trees it committed:
  level 1 the checkpoint roots of its manifest, level 2 ``Replayer.interval``, level 3
  ``Replayer.op_trace`` (leaf j = ``opLeaf(logRoot, logSize)``), level 4 the scalar program of the
  named element (:class:`ScalarBackend`);
* the **challenger** starts from the solver's last checkpoint that it accepts (the ``anchor``: fetched
  and checked against its committed root), replays honestly from there, and at every reveal picks the
  first sub-interval whose right end differs from its own leaf. The ends of every interval are leaves
  it agrees / disagrees with, so the game can only end at a step whose inputs it accepts.

Every transaction goes through :func:`protocol.agents.common.send_once` with a key that names the
move and the interval it answers (``game:7:reveal:L2:0-5``), so a restarted daemon never sends a move
twice; a key's "already done" check is a read of the game (has it moved past that interval?).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from eth_utils import keccak

from protocol.agents.common import logfmt, send_once
from protocol.agents.db import AgentDB
from protocol.chain.dispute import (
    ChunkOpening,
    DisputeGame,
    GameStatus,
    HeaderOpening,
    OpsCommitment,
    Party,
    Phase,
    ScalarCommitment,
    turn,
)
from protocol.commit import CHUNK_BYTES, OpLog, SequenceTree, TensorCommitment
from protocol.commit.hashing import leaf_hash
from protocol.commit.merkle import inclusion_path, root_from_inclusion
from protocol.commit.tensor import DTYPES, dtype_from_code, num_chunks, tensor_id_from_root
from protocol.dispute import availability
from protocol.dispute.graph import OpDescriptor, graph_of_trace, leaf_hashes
from protocol.dispute.layout import StepLayout, border, task_commitment
from protocol.errors import VerigradError
from protocol.trace import OpTrace, Replayer

log_default = logging.getLogger("verigrad.dispute")


class PlayError(VerigradError):
    """A party cannot make the move the game waits for (missing data, a trace that does not match)."""


def op_leaf(log_root: bytes, log_size: int) -> bytes:
    """Level 3's leaf: keccak256(abi.encode(logRoot, logSize)), as ``Bisection.opLeaf``."""
    return keccak(log_root + log_size.to_bytes(32, "big"))


def query_positions(lo: int, hi: int, k: int) -> list[int]:
    """The k-ary query's interior points of [lo, hi] (``Bisection.queryPositions``)."""
    n = hi - lo
    if n <= 1:
        return []
    if n <= k:
        return list(range(lo + 1, hi))
    return [lo + n * i // k for i in range(1, k)]


def first_disagreement(positions: list[int], leaves: list[bytes], agrees: Callable[[int, bytes], bool]) -> int:
    """Sub-interval to choose: the first one whose right end the challenger disagrees with.

    Its left end is then agreed (the interval's lo, or a revealed leaf it agreed with); if it agrees
    with every revealed leaf, the last sub-interval, whose right end is the interval's hi.
    """
    for i, (p, leaf) in enumerate(zip(positions, leaves, strict=True)):
        if not agrees(p, leaf):
            return i
    return len(positions)


# ------------------------------------------------------------------------------------------ level 4


@dataclass(frozen=True)
class ScalarContext:
    """What level 4 starts from: the agreed op log, the disputed op and the named element."""

    step: int  # training step t
    op: int  # level-3 index of the disputed op (its record index is op - 1)
    entry: int  # log entry of the named output tensor
    flat_index: int
    log_root: bytes
    log_size: int
    spec_hash: bytes


class ScalarProgram(Protocol):
    """Level 4 of one element: its leaves R_0..R_M and the proofs the verifier asks for."""

    leaves: list[bytes]

    def commitment(self, output_proof: list[bytes]) -> ScalarCommitment:
        """The ``commitScalar`` argument (root, end proofs, output opening)."""
        ...

    def step_proof(self, m: int) -> bytes:
        """The ``step`` proof from leaf m (opens R_m and every operand step m reads)."""
        ...


class ScalarBackend(Protocol):
    """Builds level 4 for the deployed one-step verifier from a replayed op trace."""

    def program(self, replayer: Replayer, trace: OpTrace, log: OpLog, ctx: ScalarContext) -> ScalarProgram | None:
        """The element's program, or None when this backend cannot express it (the party then stalls)."""
        ...


class NoScalarBackend:
    """A deployment whose verifier's programs no Python backend builds: level 4 cannot be played."""

    def program(self, replayer: Replayer, trace: OpTrace, log: OpLog, ctx: ScalarContext) -> ScalarProgram | None:
        return None


def default_backend() -> ScalarBackend:
    """The soft-float verifier's backend (protocol.dispute.onestep) when it is installed."""
    try:
        from protocol.dispute.onestep import OneStepBackend
    except ImportError:
        return NoScalarBackend()
    return OneStepBackend()  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------ level data


@dataclass
class Level3:
    """One step's op trace as level 3's tree, with the log that proves entries and consistency."""

    trace: OpTrace
    log: OpLog
    sizes: list[int]  # log size at each op boundary (index 0 the start)
    tree: SequenceTree

    @classmethod
    def of(cls, trace: OpTrace) -> Level3:
        n_start = len(trace.start_names)
        log = OpLog(trace.log_ids[:n_start])
        for op in trace.ops:
            log.append_op([op.output_id])
        sizes = log.op_sizes
        leaves = [op_leaf(r, s) for r, s in zip(log.op_roots, sizes, strict=True)]
        return cls(trace, log, sizes, SequenceTree(leaves))


@dataclass
class TraceSource:
    """A party's view of one run: a replayer (own run or honest re-execution) and its caches."""

    replayer: Replayer
    checkpoint_roots: list[bytes]
    interval_: int
    _levels2: dict[int, SequenceTree] = field(default_factory=dict)
    _levels3: dict[int, Level3] = field(default_factory=dict)
    _task: tuple[bytes, StepLayout] | None = None

    def task(self) -> tuple[bytes, StepLayout]:
        """The task's op descriptors' root and step layout, from an honest replay of the spec (what
        the task's ``opGraphRoot`` commits, whatever this run did)."""
        if self._task is None:
            self._task = task_commitment(self.replayer.spec)
        return self._task

    def level1(self) -> SequenceTree:
        # The trace root is the same RFC 9162 tree as TraceTree's (what the solver committed).
        return SequenceTree(self.checkpoint_roots)

    def level2(self, checkpoint: int) -> SequenceTree:
        if checkpoint not in self._levels2:
            iv = self.replayer.interval(checkpoint * self.interval_)
            self._levels2[checkpoint] = SequenceTree(iv.state_roots)
        return self._levels2[checkpoint]

    def level3(self, step: int) -> Level3:
        if step not in self._levels3:
            self._levels3[step] = Level3.of(self.replayer.op_trace(step))
        return self._levels3[step]


# ------------------------------------------------------------------------------------------ players


class GamePlayer:
    """What both sides share: the read of the game, idempotent sends, timeouts, settlement."""

    party: Party

    def __init__(self, game: DisputeGame, gid: int, db: AgentDB, backend: ScalarBackend | None = None,
                 log: logging.Logger | None = None) -> None:
        self.game = game
        self.gid = gid
        self.db = db
        self.backend = backend if backend is not None else default_backend()
        self.log = log or log_default
        self.k = game.degree()

    # -- bookkeeping ---------------------------------------------------------------------------------
    def _snapshot(self, g: Any) -> tuple[int, int, int, int, int]:
        return (int(g.status), int(g.phase), int(g.level), int(g.lo), int(g.hi))

    def _send(self, g: Any, move: str, send: Callable[[], Any], **fields: Any) -> bool:
        """Send ``move`` once for the game's current (level, interval); done once the game moved on."""
        snap = self._snapshot(g)
        key = f"game:{self.gid}:{move}:L{g.level}:{g.lo}-{g.hi}"
        return send_once(self.db, key, lambda: self._snapshot(self.game.get(self.gid)) != snap, send, self.log,
                         game=self.gid, **fields)

    # -- the loop --------------------------------------------------------------------------------------
    def done(self) -> bool:
        """The game is settled and nothing is left to withdraw."""
        g = self.game.get(self.gid)
        return GameStatus(g.status) not in (GameStatus.NONE, GameStatus.IN_PROGRESS) and self.game.credit_of() == 0

    def act(self) -> str | None:
        """Make this party's next move if it has one; returns the move's name (or None: nothing to do)."""
        g = self.game.get(self.gid)
        status = GameStatus(g.status)
        if status == GameStatus.NONE:
            raise PlayError(f"game {self.gid} does not exist")
        if status != GameStatus.IN_PROGRESS:
            if self.game.credit_of() > 0:
                send_once(self.db, f"game:{self.gid}:withdraw:{self.game.address}",
                          lambda: self.game.credit_of() == 0, self.game.withdraw, self.log, game=self.gid)
                return "withdraw"
            return None
        phase = Phase(g.phase)
        if phase == Phase.RESOLVE:
            # Anyone may settle; the winner does (it is owed the bond or the slash), so the two parties
            # never race the same transaction.
            winner = Party.CHALLENGER if g.solverLost else Party.SOLVER
            if winner != self.party:
                return None
            self._send(g, "resolve", lambda: self.game.resolve(self.gid))
            return "resolve"
        mover = turn(phase)
        if mover != self.party:
            party, remaining = self.game.clock_of(self.gid)
            # clockOf says 0 once the time is used up; the contract wants it exceeded, so a claim in
            # that very second reverts (ClockNotExpired), is marked failed and is retried next tick.
            if party != self.party and remaining == 0 and self._send(
                    g, "claimTimeout", lambda: self.game.claim_timeout(self.gid), against=party.name):
                return "claimTimeout"
            return None
        return self.move(g, phase)

    def move(self, g: Any, phase: Phase) -> str | None:
        raise NotImplementedError


class SolverPlayer(GamePlayer):
    """The defender: reveals and links the leaves of its own run, from its own replay."""

    party = Party.SOLVER

    def __init__(self, game: DisputeGame, gid: int, db: AgentDB, own: TraceSource,
                 backend: ScalarBackend | None = None, log: logging.Logger | None = None) -> None:
        super().__init__(game, gid, db, backend, log)
        self.own = own

    def _tree(self, g: Any) -> SequenceTree:
        level = int(g.level)
        if level == 1:
            return self.own.level1()
        if level == 2:
            return self.own.level2(int(g.checkpoint))
        if level == 3:
            return self.own.level3(int(g.trainingStep)).tree
        program = self._program(g)
        if program is None:
            raise PlayError(f"game {self.gid}: no level-4 program")
        return SequenceTree(program.leaves)

    def _program(self, g: Any) -> ScalarProgram | None:
        l3 = self.own.level3(int(g.trainingStep))
        ctx = ScalarContext(int(g.trainingStep), int(g.op), int(g.outputEntry), int(g.flatIndex), bytes(g.logRoot),
                            int(g.logSize), bytes(g.specHash))
        return self.backend.program(self.own.replayer, l3.trace, l3.log, ctx)

    def move(self, g: Any, phase: Phase) -> str | None:
        gid = self.gid
        if phase == Phase.DEFEND_TRACE:
            t = self.own.level1()
            first, last = t.inclusion_proof(0).siblings, t.inclusion_proof(t.size - 1).siblings
            self._send(g, "defendTrace", lambda: self.game.defend_trace(gid, first, last))
            return "defendTrace"
        if phase == Phase.REVEAL:
            tree = self._tree(g)
            positions = self.game.pending_positions(gid)
            leaves = [tree.leaf(p) for p in positions]
            proofs = [list(tree.inclusion_proof(p).siblings) for p in positions]
            self._send(g, "reveal", lambda: self.game.reveal(gid, leaves, proofs), positions=positions)
            return "reveal"
        if phase == Phase.COMMIT_STEPS:
            cp = int(g.lo)
            tree = self.own.level2(cp)
            first, last = tree.inclusion_proof(0).siblings, tree.inclusion_proof(tree.size - 1).siblings
            self._send(g, "commitSteps", lambda: self.game.commit_steps(gid, tree.root, first, last), checkpoint=cp)
            return "commitSteps"
        if phase == Phase.COMMIT_OPS:
            step = int(g.checkpoint) * int(g.checkpointInterval) + int(g.lo)
            c = self.ops_commitment(step)
            self._send(g, "commitOps", lambda: self.game.commit_ops(gid, c), step=step, ops=c.size - 1)
            return "commitOps"
        if phase == Phase.OPEN_OP:
            l3 = self.own.level3(int(g.trainingStep))
            lo, hi = int(g.lo), int(g.hi)
            pre_size, post_size = l3.sizes[lo], l3.sizes[hi]
            pre_root, post_root = l3.log.root_at(pre_size), l3.log.root_at(post_size)
            cons = list(l3.log.consistency_proof(pre_size, post_size).path)
            self._send(g, "openOp", lambda: self.game.open_op(gid, pre_root, pre_size, post_root, post_size, cons),
                       op=hi, name=l3.trace.ops[hi - 1].name)
            return "openOp"
        if phase == Phase.COMMIT_SCALAR:
            return self._commit_scalar(g)
        if phase == Phase.OPEN_CHUNK:
            o = self.chunk_opening(g)
            self._send(g, f"openChunk{int(g.chunkRequests)}", lambda: self.game.open_chunk(gid, o),
                       chunk=int(g.flatIndex))
            return "openChunk"
        return None

    def chunk_opening(self, g: Any) -> ChunkOpening:
        """The requested chunk (``g.flatIndex`` while the phase is OpenChunk) of the disputed output,
        with its path and the tensor's id proven in the disputed log; only the header when the tensor
        has no such chunk."""
        l3 = self.own.level3(int(g.trainingStep))
        entry, post_size, j = int(g.logSize), int(g.nextLogSize), int(g.flatIndex)
        tc = TensorCommitment(l3.trace.records[int(g.op) - 1].output.detach().cpu())
        chunk, path = b"", []
        if j < tc.num_chunks:
            chunk = tc.chunk(j)
            path = list(tc.element_proof(j * CHUNK_BYTES // DTYPES[tc.dtype][1]).siblings)
        return ChunkOpening(l3.trace.log_ids[entry], list(l3.log.inclusion_proof(entry, post_size).siblings),
                            DTYPES[tc.dtype][0], list(tc.shape), tc.root, chunk, path)

    def ops_commitment(self, step: int) -> OpsCommitment:
        """Level 3 of ``step`` with the links of its ends to S_t (consistency) and S_t+1 (designation)."""
        l3 = self.own.level3(step)
        tr, log, tree = l3.trace, l3.log, l3.tree
        n = tree.size
        first_size, last_size = l3.sizes[0], l3.sizes[-1]
        designated = [pos for _, pos in tr.next_state]
        graph_root, layout = self.own.task()
        return OpsCommitment(
            root=tree.root, size=n, graph_root=graph_root, inputs_root=layout.inputs_root,
            state_size=tr.state_size, state_border=border(tr.log_ids, tr.state_size),
            input_ids=list(tr.log_ids[tr.state_size:first_size]), inputs_rows=len(layout.rows),
            inputs_proof=layout.row_proof(step),
            first_proof=list(tree.inclusion_proof(0).siblings),
            last_log_root=log.root_at(last_size), last_log_size=last_size,
            last_proof=list(tree.inclusion_proof(n - 1).siblings),
            designated=designated,
            designated_ids=[tr.log_ids[p] for p in designated],
            designated_proofs=[list(log.inclusion_proof(p, last_size).siblings) for p in designated],
        )

    def _commit_scalar(self, g: Any) -> str | None:
        gid = self.gid
        l3 = self.own.level3(int(g.trainingStep))
        entry, flat = int(g.outputEntry), int(g.flatIndex)
        out_id = l3.trace.log_ids[entry]
        post_size = int(g.nextLogSize)
        out_proof = list(l3.log.inclusion_proof(entry, post_size).siblings)
        record = l3.trace.records[int(g.op) - 1]
        tc = TensorCommitment(record.output.detach().cpu())
        if tc.id != out_id:
            raise PlayError(f"game {gid}: replayed output of op {int(g.op)} is not log entry {entry}")
        if flat >= tc.numel:
            from protocol.commit.tensor import DTYPES

            self._send(g, "rejectOutput", lambda: self.game.reject_output(
                gid, out_id, out_proof, DTYPES[tc.dtype][0], list(tc.shape), tc.root), element=flat, numel=tc.numel)
            return "rejectOutput"
        program = self._program(g)
        if program is None:
            self.log.warning(logfmt(event="cannot_commit_scalar", game=gid, op=int(g.op), element=flat,
                                    reason="no level-4 backend for this verifier"))
            return None
        self._register(g, program)
        c = program.commitment(out_proof)
        self._send(g, "commitScalar", lambda: self.game.commit_scalar(gid, c), steps=len(program.leaves) - 1)
        return "commitScalar"


    def _register(self, g: Any, program: ScalarProgram) -> None:
        """Registers the disputed op with a verifier that needs it before ``commitScalar`` (the
        soft-float one: ``programLength`` and ``initialState`` see only the game's context)."""
        args = getattr(program, "register_args", None)
        if args is None:
            return
        root, descriptor, size, proof = args()
        verifier = self.game.chain.contract("ScalarStepVerifier", self.game.verifier_address())
        op = int(g.op) - 1

        def registered() -> bool:
            return bool(self.game.chain.call(verifier.functions.isRegistered(root, op)))

        send_once(self.db, f"registerOp:{root.hex()}:{op}", registered,
                  lambda: self.game.chain.transact(verifier.functions.registerOp(root, descriptor, size, proof),
                                                   key=self.game.key), self.log, game=self.gid, op=op)


Liar = Callable[[int, list[int], list[bytes], int], int | None]


class ChallengerPlayer(GamePlayer):
    """The challenger: compares each revealed leaf with its honest re-execution from its anchor.

    ``anchor`` is the last checkpoint index the challenger accepts (the solver's checkpoint there was
    fetched and matches its committed root); the honest trace below it is replayed from there.
    ``liar`` (tests only) overrides choices: called with (level, positions, leaves, honest index),
    it returns another index, or None to keep the honest one; ``name`` overrides the named element.
    """

    party = Party.CHALLENGER

    def __init__(self, game: DisputeGame, gid: int, db: AgentDB, honest: TraceSource, anchor: int | None,
                 solver_output: Callable[[int, int], torch.Tensor | None] | None = None,
                 backend: ScalarBackend | None = None, log: logging.Logger | None = None,
                 liar: Liar | None = None, name: Callable[[int], int] | None = None) -> None:
        super().__init__(game, gid, db, backend, log)
        self.honest = honest
        self.anchor = anchor
        self.solver_output = solver_output
        self.liar = liar
        self.name_override = name
        self.max_chunk_requests = int(self.game.chain.call(self.game.game.functions.MAX_CHUNK_REQUESTS()))
        self._descriptors: list[OpDescriptor] | None = None

    # -- opinions ------------------------------------------------------------------------------------------
    def agrees(self, g: Any, position: int, leaf: bytes) -> bool:
        """Whether the challenger's own trace has ``leaf`` at ``position`` of the current level."""
        level = int(g.level)
        if level == 1:
            # Up to the anchor, the solver's checkpoints are accepted (checked against their roots);
            # beyond it, the challenger has replayed a different state.
            return self.anchor is None or position <= self.anchor
        if level == 2:
            return self.honest.level2(int(g.checkpoint)).leaf(position) == leaf
        if level == 3:
            mine = self.honest.level3(int(g.trainingStep)).tree
            return position < mine.size and mine.leaf(position) == leaf
        program = self._program(g)
        if program is None:
            raise PlayError(f"game {self.gid}: no level-4 program to compare with")
        return position < len(program.leaves) and program.leaves[position] == leaf

    def _program(self, g: Any) -> ScalarProgram | None:
        l3 = self.honest.level3(int(g.trainingStep))
        ctx = ScalarContext(int(g.trainingStep), int(g.op), int(g.outputEntry), int(g.flatIndex), bytes(g.logRoot),
                            int(g.logSize), bytes(g.specHash))
        return self.backend.program(self.honest.replayer, l3.trace, l3.log, ctx)

    def move(self, g: Any, phase: Phase) -> str | None:
        gid = self.gid
        if phase == Phase.CHOOSE:
            positions, leaves = self.game.revealed(gid)
            expected = self._pinned(g) if g.pinned else query_positions(int(g.lo), int(g.hi), self.k)
            if positions != expected:
                raise PlayError(f"game {gid}: revealed positions {positions}, the interval asks {expected}")
            index = first_disagreement(positions, leaves, lambda p, leaf: self.agrees(g, p, leaf))
            if self.liar is not None:
                lie = self.liar(int(g.level), positions, leaves, index)
                index = index if lie is None else lie
            self._send(g, "choose", lambda: self.game.choose(gid, index), level=int(g.level), index=index,
                       positions=positions)
            return "choose"
        if phase == Phase.NAME_OUTPUT:
            header = self.header_rejection(g)
            if header is not None:
                self._send(g, "rejectHeader", lambda: self.game.reject_header(gid, header), dtype=header.dtype,
                           shape=header.shape)
                return "rejectHeader"
            request = self.chunk_request(g)
            if request is not None:
                self._send(g, f"requestChunk{int(g.chunkRequests)}", lambda: self.game.request_chunk(gid, request),
                           chunk=request)
                return "requestChunk"
            entry, flat = self.disputed_element(g)
            self._send(g, "nameOutput", lambda: self.game.name_output(gid, entry, flat), entry=entry, element=flat)
            return "nameOutput"
        if phase == Phase.STEP:
            program = self._program(g)
            if program is None:
                self.log.warning(logfmt(event="cannot_step", game=gid, reason="no level-4 backend for this verifier"))
                return None
            proof = program.step_proof(int(g.lo))
            self._send(g, "step", lambda: self.game.step(gid, proof), step=int(g.lo))
            return "step"
        return None

    @staticmethod
    def _pinned(g: Any) -> list[int]:
        lo, hi, p = int(g.lo), int(g.hi), int(g.pin)
        return [x for x in (p, p + 1) if lo < x < hi]

    def _theirs(self, g: Any) -> torch.Tensor | None:
        """The solver's disputed output from its artifacts, if they serve it."""
        return self.solver_output(int(g.trainingStep), int(g.op)) if self.solver_output is not None else None

    def _openings_move(self, g: Any) -> availability.Move:
        mine = self.honest.level3(int(g.trainingStep)).trace.records[int(g.op) - 1].output.detach().cpu()
        openings = [availability.Opening.of_event(e) for e in self.game.events(self.gid, "ChunkOpened")]
        left = self.max_chunk_requests - int(g.chunkRequests)
        return availability.next_move(TensorCommitment(mine), openings, left)

    def _their_header(self, g: Any) -> tuple[int, tuple[int, ...], bytes] | None:
        """The solver's disputed output's (dtype code, shape, chunk root): from its artifacts, else from
        a chunk it opened on chain (the root follows from the chunk and its path); None if neither."""
        theirs = self._theirs(g)
        if theirs is not None:
            tc = TensorCommitment(theirs.detach().cpu())
            return DTYPES[tc.dtype][0], tuple(tc.shape), tc.root
        for o in map(availability.Opening.of_event, self.game.events(self.gid, "ChunkOpened")):
            if o.chunk:
                count = num_chunks(dtype_from_code(o.dtype), o.shape)
                return o.dtype, o.shape, root_from_inclusion(leaf_hash(o.chunk), o.index, count, o.path)
        return None

    def header_rejection(self, g: Any) -> HeaderOpening | None:
        """The ``rejectHeader`` opening when the solver's disputed output has a dtype or shape other than
        the op's descriptor (every op writes float32), else None.

        The solver's id is proven in its disputed log from the agreed log (the challenger's own first
        ``logSize`` entries) with the id appended: the log must then have the game's root."""
        header = self._their_header(g)
        if header is None:
            return None
        dtype, shape, chunk_root = header
        l3 = self.honest.level3(int(g.trainingStep))
        graph = self._graph(l3.trace)
        op = int(g.op) - 1
        d = graph[op]
        if dtype == DTYPES["float32"][0] and shape == d.out_shape:
            return None
        entry = int(g.logSize)
        tensor_id = tensor_id_from_root(dtype_from_code(dtype), shape, chunk_root)
        log = OpLog(list(l3.trace.log_ids[:entry]) + [tensor_id])
        if log.root != bytes(g.nextLogRoot):
            self.log.warning(logfmt(event="header_unproven", game=self.gid, op=int(g.op),
                                    reason="the solver's output is not its disputed log's entry"))
            return None
        return HeaderOpening(d.encode(), len(graph), inclusion_path(leaf_hashes(graph), op), tensor_id,
                             list(log.inclusion_proof(entry).siblings), dtype, list(shape), chunk_root)

    def _graph(self, trace: OpTrace) -> list[OpDescriptor]:
        """The task's op descriptors (the same for every step), from the honest replay."""
        if self._descriptors is None:
            self._descriptors = graph_of_trace(trace, self.honest.replayer.spec)
        return self._descriptors

    def chunk_request(self, g: Any) -> int | None:
        """The chunk of the disputed output to have the solver open on chain, or None to name now.

        Only when the solver's artifacts do not serve its output (``solver_output`` gives None): then
        each opening's path leads to a differing chunk (:mod:`protocol.dispute.availability`)."""
        if self.name_override is not None or self._theirs(g) is not None:
            return None
        move = self._openings_move(g)
        return move.value if move.kind == "request" else None

    def disputed_element(self, g: Any) -> tuple[int, int]:
        """The log entry and the first element where the solver's output differs from the honest one.

        The solver's tensor comes from its artifacts (``solver_output``), checked against the disputed
        log entry's id; without it, from the chunks the solver opened on chain (``requestChunk``).
        """
        op = int(g.op)
        entry = int(g.logSize)  # every op of a step appends exactly one output
        if self.name_override is not None:
            return entry, self.name_override(op)
        mine = self.honest.level3(int(g.trainingStep)).trace.records[op - 1].output.detach().cpu()
        theirs = self._theirs(g)
        if theirs is None:
            move = self._openings_move(g)
            if move.guess:
                self.log.warning(logfmt(event="guess_element", game=self.gid, op=op,
                                        reason="no differing element among the opened chunks"))
            return entry, move.value
        if tuple(theirs.shape) != tuple(mine.shape):
            self.log.warning(logfmt(event="guess_element", game=self.gid, op=op,
                                    reason="the solver's output has another shape"))
            return entry, 0
        a = mine.reshape(-1)
        b = theirs.detach().cpu().reshape(-1)
        if a.dtype == torch.float32:
            a, b = a.view(torch.int32), b.view(torch.int32)
        diff = (a != b).nonzero()
        return entry, int(diff[0].item()) if diff.numel() else 0


def find_anchor(replayer: Replayer, checkpoint_roots: list[bytes], interval: int) -> int | None:
    """The first checkpoint index i whose interval, replayed honestly from the solver's checkpoint i
    (checked against its committed root), does not end at the solver's checkpoint i + 1."""
    for i in range(len(checkpoint_roots) - 1):
        iv = replayer.interval(i * interval)
        if iv.state_roots[0] != checkpoint_roots[i]:
            return max(0, i - 1)
        if iv.state_roots[-1] != checkpoint_roots[i + 1]:
            return i
    return None


def play(players: list[GamePlayer], advance: Callable[[], None] | None = None, max_rounds: int = 500) -> int:
    """Let the players move in turn until each is done; returns the number of moves made.

    ``advance`` is called on a round where nobody could move (a stalled party): a test moves the
    chain's clock forward there so that timeouts become claimable.
    """
    moves = 0
    for _ in range(max_rounds):
        if all(p.done() for p in players):
            return moves
        moved = False
        for p in players:
            if p.act() is not None:
                moves += 1
                moved = True
        if not moved:
            if advance is None:
                raise PlayError("no party can move and no clock to advance")
            advance()
    raise PlayError(f"game not over after {max_rounds} rounds")

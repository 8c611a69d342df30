"""Level 4 for the soft-float one-step verifier (``contracts/src/verifiers/ScalarStepVerifier.sol``).

For one output element of one op of a training step this module gives what both parties need at the
bottom of the dispute game, in exactly the contract's encodings:

* the **leaves** R_0 .. R_M: ``keccak256(abi.encode(uint256 m, uint32[] regs))``, the register file
  after m instructions of the element's canonical program (RepOps' own kernel on the tracing
  backend: ``OpRecord.scalar_trace``), R_0 all zero. A party that claims output bits ``out`` commits
  the program's states with the last state's result register set to ``out`` (for an honest party
  that changes nothing; a faulty one must, or ``outputMatches`` rejects its commitment);
* the **step proof** from leaf m: the registers of R_m, the op's descriptor with its proof against
  the task's ``opGraphRoot`` (``protocol.dispute.graph``), for every input element instruction m
  reads, its tensor id proven at the descriptor's entry of the agreed log and its chunk and path,
  and, for an op whose descriptor commits template programs, the template leaf of instruction m
  with its path (for adamw and sgd, the step's learning rate and bias corrections with their path
  in the op's step table);
* the **output opening** for ``commitScalar``: the final registers and the output element's chunk;
* the **registration** arguments of the op (``registerOp``), which must precede ``commitScalar``
  (``programLength`` and ``initialState`` only see the game's context).

Use::

    graph = graph_of_trace(trace, spec)                           # the task's op graph
    prog = ElementProgram.build(trace, op_index, element, graph, spec)   # op_index: 0-based record index
    prog.leaves                      # R_0 .. R_M (what the trace's own output claims)
    prog.honest_leaves               # the same with the recomputed result (what the verifier gives)
    prog.step_proof(m)               # bytes for verifier.step / DisputeGame.step
    prog.output_opening()            # bytes for ScalarCommitment.outputOpening
    prog.commitment(output_proof)    # protocol.chain.dispute.ScalarCommitment
    prog.register_args()             # (opGraphRoot, descriptor, graphSize, proof) for registerOp

:class:`OneStepBackend` adapts this to the player's ``ScalarBackend`` protocol
(``protocol.dispute.player``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi import encode as abi_encode

from protocol.commit import OpLog, SequenceTree, TensorCommitment
from protocol.commit.hashing import hash_bytes
from protocol.dispute.graph import (
    STEP_TABLE_KINDS,
    TEMPLATE_KINDS,
    ZERO_ROOT,
    OpDescriptor,
    committed_program,
    descriptor_proof,
    graph_of_trace,
    graph_root,
    step_table,
)
from protocol.errors import VerigradError
from protocol.repops import isa
from protocol.repops.isa import In, Instr, Opcode

#: Op kinds whose programs the ScalarStepVerifier derives from the descriptor.
DERIVED_KINDS = frozenset({"matmul", "linear", "linear_nobias", "sum_rows", "mean", "relu", "relu_backward", "add",
                           "sub", "mul", "scale", "adam_m", "adam_v"})

#: Op kinds the deployed ScalarStepVerifier covers (others revert UnsupportedOp): derived programs,
#: template programs (``protocol.dispute.template``) and the optimizers with a step table. Every
#: kind of ``graph.KIND_IDS``.
SUPPORTED_KINDS = DERIVED_KINDS | TEMPLATE_KINDS | STEP_TABLE_KINDS

OPENING_TYPE = "(bytes32,bytes32[],bytes,bytes32[])"
"""ABI type of ``ScalarStepVerifier.Opening``: tensorId, logProof, chunk, chunkProof."""

STEP_PROOF_TYPES = ["uint32[]", "bytes", "uint256", "bytes32[]", OPENING_TYPE + "[]", "bytes"]
"""ABI types of a ``step`` proof: registers, descriptor, graph size, graph proof, input openings, and the
program opening: a template leaf with its path, an optimizer's step constants with theirs, or nothing
for derived programs."""


class OneStepError(VerigradError):
    """A level-4 proof that cannot be built (an op the verifier does not cover, a bad index)."""


def state_leaf(m: int, regs: Sequence[int]) -> bytes:
    """Level 4's leaf m: ``keccak256(abi.encode(m, regs))`` with regs a ``uint32[]``."""
    return hash_bytes(abi_encode(["uint256", "uint32[]"], [m, [r & 0xFFFFFFFF for r in regs]]))


def supported(kind: str) -> bool:
    """Whether the on-chain verifier has programs for op kind ``kind``."""
    return kind in SUPPORTED_KINDS


def covered(d: OpDescriptor) -> bool:
    """Whether the verifier can check op ``d``: a supported kind, with its template programs or its
    step table committed where the kind needs them."""
    if not supported(d.kind):
        return False
    return d.kind not in TEMPLATE_KINDS | STEP_TABLE_KINDS or d.program_root != ZERO_ROOT


def uncovered(graph: Sequence[OpDescriptor]) -> list[OpDescriptor]:
    """The ops of a graph the verifier cannot check. A dishonest challenger can steer a game onto
    any op, and on one of these the solver could not commit level 4: a solver should bid only on a
    task whose graph has none (docs/DISPUTE.md, "What an uncovered op means")."""
    return [d for d in graph if not covered(d)]


@dataclass
class ElementProgram:
    """The program of element ``element`` of op ``op`` (0-based) of one step's op trace."""

    trace: Any  # protocol.trace.OpTrace
    op: int
    element: int
    program: list[Instr]
    states: list[list[int]]  # states[m]: registers after m instructions (states[0] all zero)
    claimed: int  # the output element as recorded in the trace (what its owner claims)
    graph: list[OpDescriptor]
    log: OpLog  # the agreed log: the step's log before the op
    spec: Any = None  # the task spec (adamw's step table needs its schedule)
    _inputs: dict[int, TensorCommitment] = field(default_factory=dict, repr=False)
    _graph_proof: Any = field(default=None, repr=False)
    _root: bytes | None = field(default=None, repr=False)

    @classmethod
    def build(cls, trace: Any, op: int, element: int, graph: list[OpDescriptor], spec: Any = None) -> ElementProgram:
        """Level 4 of ``element`` of op ``op`` of ``trace`` (a ``protocol.trace.OpTrace`` with records);
        ``graph`` is the task's op graph (``graph_of_trace(trace, spec)``); ``spec`` is needed for
        adamw's step proofs."""
        if not 0 <= op < len(trace.records):
            raise OneStepError(f"step {trace.step} has {len(trace.records)} ops, no op {op}")
        rec = trace.records[op]
        if not supported(rec.op):
            raise OneStepError(f"op {op} is a {rec.op!r}: the on-chain verifier has no program for it yet")
        st = rec.scalar_trace(element)
        # A committed program's state has the op's register count (registers it never writes stay 0).
        width = max(st.nregs, graph[op].program_registers)
        program = list(st.program)
        states = [[0] * width] + [list(s) + [0] * (width - len(s)) for s in st.states]
        d = graph[op]
        if d.kind in TEMPLATE_KINDS:
            # The element's program is its class's template, relocated; a shorter class's is padded
            # at the front with no-ops (states stay all zero). It must be exactly the kernel's.
            tp = committed_program(d, dict(rec.attrs))
            pad = tp.padding(element)
            relocated = tp.program(element)
            if relocated[pad:] != program:
                raise OneStepError(f"op {op} ({d.kind}) element {element}: the template is not the kernel's program")
            program = relocated
            states = [[0] * width] * pad + states
        claimed = st.expected if st.expected is not None else st.result
        n_start = len(trace.start_names)
        log = OpLog(trace.log_ids[: n_start + op])
        return cls(trace, op, element, program, states, claimed, graph, log, spec=spec)

    # -- the game's view ---------------------------------------------------------------------------

    @property
    def game_op(self) -> int:
        """The game's op number (level 3's leaf index): record index + 1."""
        return self.op + 1

    @property
    def log_size(self) -> int:
        """Entries of the agreed log (the op writes entry ``log_size``)."""
        return self.log.size

    @property
    def output_entry(self) -> int:
        return self.trace.ops[self.op].output

    @property
    def length(self) -> int:
        """M: the program's number of instructions (level 4 has M + 1 leaves)."""
        return len(self.program)

    @property
    def result_register(self) -> int:
        return self.program[-1].dst

    @property
    def honest_leaves(self) -> list[bytes]:
        """R_0 .. R_M as the program computes them (what the verifier's steps reproduce)."""
        return [state_leaf(m, regs) for m, regs in enumerate(self.states)]

    @property
    def leaves(self) -> list[bytes]:
        """R_0 .. R_M of the trace's owner: the last state holds the element the trace recorded."""
        return self.honest_leaves[:-1] + [state_leaf(self.length, self.final_registers)]

    @property
    def final_registers(self) -> list[int]:
        regs = list(self.states[-1])
        regs[self.result_register] = self.claimed
        return regs

    def step_context(self, spec_hash: bytes, op_graph_root: bytes | None = None, m: int = 0) -> tuple[Any, ...]:
        """``IOneStepVerifier.StepContext`` for a direct call of the verifier, as a web3 tuple."""
        return (spec_hash, op_graph_root if op_graph_root is not None else self.graph_root,
                self.trace.step, self.log.root, self.log_size, self.game_op, self.output_entry, self.element, m)

    # -- proofs ------------------------------------------------------------------------------------

    def descriptor(self) -> OpDescriptor:
        return self.graph[self.op]

    @property
    def graph_root(self) -> bytes:
        """The task's ``opGraphRoot`` (computed once)."""
        if self._root is None:
            self._root = graph_root(self.graph)
        return self._root

    def _descriptor_proof(self) -> Any:
        """The descriptor's proof against the graph root (computed once: it hashes the whole graph)."""
        if self._graph_proof is None:
            self._graph_proof = descriptor_proof(self.graph, self.op)
        return self._graph_proof

    def register_args(self) -> tuple[bytes, bytes, int, list[bytes]]:
        """``ScalarStepVerifier.registerOp(opGraphRoot, descriptor, graphSize, proof)`` arguments."""
        proof = self._descriptor_proof()
        return self.graph_root, self.descriptor().encode(), proof.size, list(proof.siblings)

    def _input(self, slot: int) -> TensorCommitment:
        tc = self._inputs.get(slot)
        if tc is None:
            tc = TensorCommitment(self.trace.records[self.op].inputs[slot].detach().cpu())
            self._inputs[slot] = tc
        return tc

    def _opening(self, slot: int, flat: int) -> tuple[bytes, list[bytes], bytes, list[bytes]]:
        entry = self.trace.ops[self.op].inputs[slot]
        tc = self._input(slot)
        if tc.id != self.trace.log_ids[entry]:
            raise OneStepError(f"input {slot} of op {self.op} is not log entry {entry}")
        ep = tc.element_proof(flat)
        log_proof = self.log.inclusion_proof(entry, self.log_size)
        return (tc.id, list(log_proof.siblings), ep.chunk, list(ep.siblings))

    def reads(self, m: int) -> list[tuple[int, int]]:
        """(slot, flat index) of each input element instruction m reads, in the proof's order."""
        ins = self.program[m]
        out = [(s.slot, s.flat) for s in ins.srcs if isinstance(s, In)]
        if ins.op == Opcode.LOAD:
            regs = self.states[m]
            vals = [isa.operand_value(s, regs, lambda a, b: self._input(a).element_bits(b)) for s in ins.srcs]
            out.append((vals[0], vals[1]))
        return out

    def step_proof(self, m: int) -> bytes:
        """The ``step`` proof from leaf m (0 <= m < M)."""
        if not 0 <= m < self.length:
            raise OneStepError(f"the program has {self.length} steps, no step {m}")
        proof = self._descriptor_proof()
        openings = [self._opening(slot, flat) for slot, flat in self.reads(m)]
        d = self.descriptor()
        return abi_encode(
            STEP_PROOF_TYPES,
            [self.states[m], d.encode(), proof.size, list(proof.siblings), openings, self.program_opening(m)],
        )

    def program_opening(self, m: int) -> bytes:
        """What instruction m is read from besides the descriptor (empty for derived programs)."""
        d = self.descriptor()
        attrs = dict(self.trace.records[self.op].attrs)
        if d.kind in STEP_TABLE_KINDS:
            if self.spec is None:
                raise OneStepError(f"op {self.op} ({d.kind}): its step proofs need the task spec (step table)")
            return step_table(self.spec, attrs, d.kind).opening(self.trace.step)
        if d.committed:
            return committed_program(d, attrs).opening(self.element, m)
        return b""

    def output_opening(self) -> bytes:
        """``ScalarCommitment.outputOpening``: final registers, output shape, the element's chunk and path."""
        out = TensorCommitment(self.trace.records[self.op].output.detach().cpu())
        ep = out.element_proof(self.element)
        return abi_encode(["uint32[]", "uint32[]", "bytes", "bytes32[]"],
                          [self.final_registers, list(out.shape), ep.chunk, list(ep.siblings)])

    def commitment(self, output_proof: list[bytes]) -> Any:
        """``commitScalar``'s argument over :attr:`leaves`; ``output_proof`` proves the output tensor
        id at the named entry of the disputed log (the game checks it)."""
        from protocol.chain.dispute import ScalarCommitment

        tree = SequenceTree(self.leaves)
        _, first = tree.reveal(0)
        last_leaf, last = tree.reveal(self.length)
        out_id = self.trace.log_ids[self.output_entry]
        return ScalarCommitment(tree.root, list(first.siblings), last_leaf, list(last.siblings), out_id,
                                list(output_proof), self.output_opening())


class OneStepBackend:
    """The player's level-4 backend for the ScalarStepVerifier (``protocol.dispute.player.ScalarBackend``)."""

    def __init__(self) -> None:
        self._graphs: dict[int, list[OpDescriptor]] = {}

    def program(self, replayer: Any, trace: Any, log: Any, ctx: Any) -> ElementProgram | None:
        """Level 4 of the named element, or None for an op kind the verifier does not cover."""
        op = int(ctx.op) - 1
        if not 0 <= op < len(trace.records) or not supported(trace.records[op].op):
            return None
        graph = self._graphs.get(trace.step)
        if graph is None:
            graph = graph_of_trace(trace, replayer.spec)
            self._graphs[trace.step] = graph
        return ElementProgram.build(trace, op, int(ctx.flat_index), graph, replayer.spec)

"""The op graph of a training step and its commitment (``opGraphRoot`` of a task).

The one-step verifier must know, for the disputed op of a step, which program each output element
runs and where its operands come from, without taking a party's word for it. Both follow from the
op graph: for every op of the step, in canonical order, its kind, its attributes, the log entries it
reads with their dtypes and shapes, and the log entry it writes. The graph is the same for every
step of a task (the op log of every step starts with the same tensors and the model runs the same
ops), so one root over it, fixed when the task is posted, serves every step.

Descriptor ``j`` (the op with index j in the step) is the ABI encoding of::

    (uint256 index, uint256 kind, uint256[] attrs, uint256[] inputs, uint256[] dtypes,
     uint32[][] shapes, uint32[] outShape, uint256 output,
     bytes32 programRoot, uint256 programLength, uint256 programRegisters)

``kind`` is the op's number in :data:`KIND_IDS`; ``attrs`` are the op's step-invariant attributes
in sorted name order (bools and ints as themselves, floats as their binary32 bits); ``inputs`` are
log entries; ``dtypes`` the TensorCommit dtype codes of those entries (1 float32, 2 int32, 3 int64);
``shapes`` their shapes; ``output`` the log entry the op writes. The index inside the descriptor
binds it to its position: an inclusion proof then needs no trusted tree size.

For most kinds the verifier derives each element's program from these fields. For the kinds in
:data:`TEMPLATE_KINDS` (the transformer ops, cross-entropy, GELU, exp, ...: long programs, some
with immediates that depend on the element) the descriptor commits *template programs*
(``protocol.dispute.template``): for each class of elements the program of the class's first
element, with how every operand moves with the element's coordinates; ``programRoot`` is the RFC
9162 root over those template leaves, ``programLength`` the (padded) length of every element's
program and ``programRegisters`` the most registers any uses, the result in register 0. Programs do
not depend on the data, so anyone recomputes this root from the shapes; a solver checks it with the
rest of the graph before bidding. For derived kinds the three fields are zero.

``adamw`` and ``sgd`` read values that change by step (the learning rate; for adamw also Adam's
bias corrections and lr * weight decay; RepOps immediates). Their descriptor's ``programRoot``
commits them for every step of the task instead: for adamw leaf t = ``abi.encode(uint256 t, uint32
lr, uint32 bc1, uint32 bc2, uint32 lrwd)`` (binary32 bits, as ``optim.adam_constants`` computes them
for Adam step t + 1 and ``spec.learning_rate(t)``), for sgd leaf t = ``abi.encode(uint256 t, uint32
lr)``, so the graph is still the same for every step; ``programLength`` and ``programRegisters`` are
its program's (adamw 44 and 10, sgd 2 and 1).

The root is the RFC 9162 keccak Merkle root (``MerkleLog``-compatible) over the descriptors as leaf
data: ``leaf_j = keccak256(0x00 || descriptor_j)``.

Attributes that vary by step (``lr`` and ``step`` of the optimizer ops: the learning-rate schedule
and Adam's bias corrections) are left out of the descriptor, so the root is the same for every step;
the step tables above carry them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from protocol.commit.hashing import leaf_hash
from protocol.commit.merkle import (
    InclusionProof,
    inclusion_path,
    inclusion_path_from_levels,
    merkle_root,
    root_from_inclusion,
    tree_levels,
)
from protocol.commit.tensor import DTYPES
from protocol.dispute.template import TEMPLATE_KINDS, TemplateProgram, template_program
from protocol.errors import VerigradError
from protocol.repops.ops import scalar_program
from protocol.repops.policy import f32_bits
from protocol.spec import TaskSpec

#: Op kind numbers shared with the verifier's programs (contracts/src/verifiers/programs/OpKinds.sol).
#: Part of the protocol: never renumber.
KIND_IDS: dict[str, int] = {
    "matmul": 1, "linear": 2, "linear_nobias": 3, "relu": 4, "relu_backward": 5,
    "cross_entropy": 6, "cross_entropy_backward": 7, "mean": 8, "sum_rows": 9, "add": 10,
    "adam_m": 11, "adam_v": 12, "adamw": 13, "sgd": 14, "sub": 15, "mul": 16, "scale": 17,
    "exp": 18, "log": 19, "sqrt": 20, "tanh": 21, "erf": 22, "gelu": 23, "gelu_backward": 24,
    "softmax": 25, "softmax_backward": 26, "log_softmax": 27, "log_softmax_backward": 28,
    "layernorm_stats": 29, "layernorm_apply": 30, "layernorm_backward": 31, "layernorm_dgamma": 32,
    "embedding": 33, "embedding_backward": 34, "attn_scores": 35, "attn_apply": 36,
    "attn_dprobs": 37, "attn_dqkv": 38,
}  # fmt: skip

#: Kinds whose descriptors commit template programs instead of the verifier deriving them.
COMMITTED_KINDS = TEMPLATE_KINDS

ZERO_ROOT = b"\x00" * 32

#: Kinds whose step-varying immediates come from a per-step table in the descriptor.
STEP_TABLE_KINDS = frozenset({"adamw", "sgd"})

#: Attributes whose value changes from step to step: never part of a descriptor.
STEP_VARYING_ATTRS = frozenset({"lr", "step"})

DESCRIPTOR_TYPES = ["uint256", "uint256", "uint256[]", "uint256[]", "uint256[]", "uint32[][]", "uint32[]", "uint256",
                    "bytes32", "uint256", "uint256"]
"""ABI types of a descriptor's fields, in order (the contract decodes the same tuple)."""

_TORCH_DTYPES = {torch.float32: "float32", torch.int32: "int32", torch.int64: "int64"}


class GraphError(VerigradError):
    """An op graph that cannot be built or a descriptor that does not check."""


@dataclass(frozen=True)
class OpDescriptor:
    """Op ``index`` of a step: what the verifier needs to derive its elements' programs."""

    index: int
    kind: str
    attrs: tuple[int, ...]
    inputs: tuple[int, ...]
    dtypes: tuple[int, ...]
    shapes: tuple[tuple[int, ...], ...]
    out_shape: tuple[int, ...]
    output: int
    program_root: bytes = ZERO_ROOT
    program_length: int = 0
    program_registers: int = 0

    @property
    def committed(self) -> bool:
        """Whether this descriptor commits its elements' programs (see the module doc)."""
        return self.program_root != ZERO_ROOT and self.kind not in STEP_TABLE_KINDS

    @property
    def kind_id(self) -> int:
        """The op kind's protocol number."""
        return KIND_IDS[self.kind]

    def encode(self) -> bytes:
        """The descriptor's ABI encoding: the leaf data of the op graph tree."""
        return abi_encode(
            DESCRIPTOR_TYPES,
            [self.index, self.kind_id, list(self.attrs), list(self.inputs), list(self.dtypes),
             [list(s) for s in self.shapes], list(self.out_shape), self.output, self.program_root,
             self.program_length, self.program_registers],
        )

    @classmethod
    def decode(cls, data: bytes) -> OpDescriptor:
        """Inverse of :meth:`encode` (rejects unknown kind numbers)."""
        (index, kind_id, attrs, inputs, dtypes, shapes, out_shape, output, root, length,
         registers) = abi_decode(DESCRIPTOR_TYPES, data)
        names = {v: k for k, v in KIND_IDS.items()}
        if kind_id not in names:
            raise GraphError(f"unknown op kind number {kind_id}")
        return cls(index, names[kind_id], tuple(attrs), tuple(inputs), tuple(dtypes),
                   tuple(tuple(s) for s in shapes), tuple(out_shape), output, bytes(root), length, registers)


@dataclass(frozen=True)
class StepTable:
    """An optimizer op's step-varying immediates for every step of a task, as a Merkle tree (see the
    module doc): adamw rows are (lr, bc1, bc2, lrwd) bits, sgd rows (lr,)."""

    rows: list[tuple[int, ...]]  # bits per training step
    levels: list[list[bytes]]

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def opening(self, step: int) -> bytes:
        """``programOpening`` of a step proof at training step ``step``."""
        path = inclusion_path_from_levels(self.levels, step)
        row = self.rows[step]
        return abi_encode(["uint32"] * len(row) + ["uint256", "bytes32[]"], [*row, len(self.rows), path])


def step_row(spec: TaskSpec, attrs: dict[str, Any], step: int) -> tuple[int, int, int, int]:
    """(lr, bc1, bc2, lrwd) bits of training step ``step`` (0-based), as run_step gives them to adamw."""
    from protocol.repops.optim import adam_constants
    from protocol.spec import learning_rate

    lr = learning_rate(spec, step)
    c = adam_constants({**attrs, "lr": float(lr), "step": step + 1})
    return f32_bits(lr), f32_bits(c["bc1"]), f32_bits(c["bc2"]), f32_bits(c["lrwd"])


def _table_leaf(step: int, row: tuple[int, ...]) -> bytes:
    return leaf_hash(abi_encode(["uint256"] + ["uint32"] * len(row), [step, *row]))


def step_table(spec: TaskSpec, attrs: dict[str, Any], kind: str = "adamw") -> StepTable:
    """The step table of an adamw (or sgd) op with (step-invariant) attributes ``attrs``."""
    from protocol.spec import learning_rate

    if kind == "sgd":
        rows: list[tuple[int, ...]] = [(f32_bits(learning_rate(spec, t)),) for t in range(spec.steps)]
    else:
        rows = [step_row(spec, attrs, t) for t in range(spec.steps)]
    return StepTable(rows, tree_levels([_table_leaf(t, r) for t, r in enumerate(rows)]))


def committed_program(d: OpDescriptor, attrs: dict[str, Any]) -> TemplateProgram:
    """The template tree of a descriptor of a :data:`TEMPLATE_KINDS` kind (cached per op shape).

    ``attrs`` are the op's full attributes (what its kernel reads)."""
    return template_program(d.kind, d.shapes, attrs)


def attr_words(attrs: dict[str, Any]) -> tuple[int, ...]:
    """An op's step-invariant attributes as words, in sorted name order (floats as binary32 bits)."""
    words = []
    for name in sorted(attrs):
        if name in STEP_VARYING_ATTRS:
            continue
        v = attrs[name]
        if isinstance(v, bool):
            words.append(int(v))
        elif isinstance(v, int):
            if v < 0:
                raise GraphError(f"attribute {name} = {v}: negative integers are not descriptor words")
            words.append(v)
        elif isinstance(v, float):
            words.append(f32_bits(v))
        else:
            raise GraphError(f"attribute {name} has a {type(v).__name__} value; descriptors take bool, int, float")
    return tuple(words)


def _dtype_code(t: torch.Tensor) -> int:
    name = _TORCH_DTYPES.get(t.dtype)
    if name is None:
        raise GraphError(f"a log tensor has dtype {t.dtype}; the log holds float32, int32 and int64")
    return DTYPES[name][0]


def graph_of_trace(trace: Any, spec: TaskSpec) -> list[OpDescriptor]:
    """The descriptors of the ops of one step's op trace (``protocol.trace.OpTrace``) of ``spec``."""
    out = []
    for entry, rec in zip(trace.ops, trace.records, strict=True):
        if rec.op not in KIND_IDS:
            raise GraphError(f"op {entry.index} is a {rec.op!r}, which has no kind number")
        d = OpDescriptor(
            index=entry.index, kind=rec.op, attrs=attr_words(dict(rec.attrs)), inputs=tuple(entry.inputs),
            dtypes=tuple(_dtype_code(t) for t in rec.inputs),
            shapes=tuple(tuple(int(d) for d in t.shape) for t in rec.inputs),
            out_shape=tuple(int(d) for d in rec.output.shape), output=entry.output,
        )  # fmt: skip
        if rec.op in TEMPLATE_KINDS:
            if any(k in STEP_VARYING_ATTRS for k in rec.attrs):
                raise GraphError(f"op {entry.index} ({rec.op}) reads step-varying attributes; its programs differ by step")
            prog = committed_program(d, dict(rec.attrs))
            d = dataclasses.replace(d, program_root=prog.root, program_length=prog.length,
                                    program_registers=prog.registers)
        elif rec.op in STEP_TABLE_KINDS:
            table = step_table(spec, dict(rec.attrs), rec.op)
            if rec.op == "adamw":
                from protocol.repops.optim import adam_constants

                c = adam_constants(dict(rec.attrs))
                recorded: tuple[int, ...] = (f32_bits(rec.attrs["lr"]), f32_bits(c["bc1"]), f32_bits(c["bc2"]),
                                             f32_bits(c["lrwd"]))
                steps_ok = rec.attrs["step"] == trace.step + 1
            else:
                recorded, steps_ok = (f32_bits(rec.attrs["lr"]),), True
            if table.rows[trace.step] != recorded or not steps_ok:
                raise GraphError(f"op {entry.index} ({rec.op}): the step's immediates are not the spec's schedule")
            program, nregs = scalar_program(rec.op, [list(s) for s in d.shapes], dict(rec.attrs), 0)
            d = dataclasses.replace(d, program_root=table.root, program_length=len(program), program_registers=nregs)
        out.append(d)
    return out


def op_graph(spec: TaskSpec, trace: Any = None) -> list[OpDescriptor]:
    """The op graph of ``spec``'s training step, in canonical op order.

    Recorded from step 0 of an honest replay (``trace`` may give an op trace of any step instead:
    the graph is the same for every step, which the tests check).
    """
    if trace is None:
        from protocol.trace import Replayer  # a replay is only needed when no trace is given

        trace = Replayer(spec).op_trace(0)
    return graph_of_trace(trace, spec)


def leaf_hashes(graph: Sequence[OpDescriptor]) -> list[bytes]:
    """The tree's leaf hashes, ``keccak256(0x00 || descriptor)``."""
    return [leaf_hash(d.encode()) for d in graph]


def graph_root(graph: Sequence[OpDescriptor]) -> bytes:
    """The RFC 9162 root over the descriptors."""
    if not graph:
        raise GraphError("an op graph has at least one op")
    return merkle_root(leaf_hashes(graph))


def op_graph_root(spec: TaskSpec, trace: Any = None) -> bytes:
    """``opGraphRoot`` of a task with spec ``spec``."""
    return graph_root(op_graph(spec, trace))


def descriptor_proof(graph: Sequence[OpDescriptor], index: int) -> InclusionProof:
    """Inclusion proof of descriptor ``index`` against :func:`graph_root`."""
    if not 0 <= index < len(graph):
        raise GraphError(f"op {index} out of range: the graph has {len(graph)} ops")
    return InclusionProof(index, len(graph), tuple(inclusion_path(leaf_hashes(graph), index)))


def verify_descriptor(root: bytes, descriptor: bytes, proof: InclusionProof) -> OpDescriptor:
    """The decoded descriptor if ``descriptor`` is op ``proof.index`` of the graph ``root``, else raise."""
    d = OpDescriptor.decode(descriptor)
    if d.index != proof.index:
        raise GraphError(f"descriptor says op {d.index}, the proof is for op {proof.index}")
    if root_from_inclusion(leaf_hash(descriptor), proof.index, proof.size, proof.siblings) != root:
        raise GraphError(f"descriptor of op {proof.index} is not in the graph {root.hex()}")
    return d

"""RepOps: reproducible float32 operators with canonical scalar programs.

Training with these functions gives the same bits on every CPU and GPU: every op is built from
IEEE-754 binary32 + - * / (no fused multiply-add), comparisons, selects and integer operations on
the float bits, with every reduction in a fixed order, and NaNs canonicalised (docs/REPOPS.md).
Each output element of each op is defined by a straight-line program over a tiny instruction set
(:mod:`protocol.repops.isa`); the dispute game bisects such a program and the contract re-executes
one instruction of it.

Typical use::

    from protocol import repops
    repops.check_policy(device)
    with repops.Tape(observer=on_op, inject=repops.Fault(op_index=7, element=3)) as tape:
        h = repops.relu(repops.linear(x, w1, b1))
        ...
    rec = tape.records[7]
    tr = rec.scalar_trace(3)        # program, register file after each step, tr.matches
    repops.compute(rec.op, rec.inputs, rec.attrs)   # an honest recomputation of the op

Public pieces:

- policy: :func:`check_policy`, :func:`canonicalize`, :data:`CANONICAL_NAN_BITS`, :class:`RepOpsError`.
- ISA: :class:`Opcode`, :class:`Instr`, :class:`Reg`, :class:`In`, :class:`Imm`, :func:`step`, :func:`run`.
- ops: :func:`compute` (name, inputs, attrs) -> output, :func:`trace` (..., element) ->
  :class:`ScalarTrace`, :func:`scalar_program` (name, input shapes, attrs, element) -> (program,
  nregs) without data, :data:`OPS` (the registry by name).
- recording: :class:`Tape`, :class:`OpRecord`, :class:`Fault`, :func:`current_tape`.
- training functions (:mod:`protocol.repops.functional`): linear/matmul and their backward, add,
  sub, mul, scale, sum_rows, mean, relu, gelu, softmax, log_softmax, cross_entropy, layernorm,
  embedding, causal attention and their backward passes, sgd_step, adamw_step, sqrt/exp/log/tanh/erf.
"""

from protocol.repops.backend import StepConstants, step_constants
from protocol.repops.functional import (
    adamw_step,
    add,
    attention,
    attention_backward,
    cross_entropy,
    cross_entropy_backward,
    embedding,
    embedding_backward,
    erf,
    exp,
    gelu,
    gelu_backward,
    layernorm,
    layernorm_backward,
    linear,
    linear_backward,
    log,
    log_softmax,
    log_softmax_backward,
    matmul,
    mean,
    mul,
    relu,
    relu_backward,
    scale,
    sgd_step,
    softmax,
    softmax_backward,
    sqrt,
    sub,
    sum_rows,
    tanh,
)
from protocol.repops.isa import Imm, In, Instr, Opcode, Reg, run, step
from protocol.repops.ops import OPS, ScalarTrace, compute, scalar_program, trace
from protocol.repops.policy import (
    CANONICAL_NAN_BITS,
    PolicyError,
    RepOpsError,
    canonicalize,
    check_policy,
    f32_bits,
    is_canonical,
)
from protocol.repops.tape import Fault, OpRecord, Tape, apply, corrupt, current_tape

VERSION = "repops-1"
"""Identifies the op definitions and scalar programs; a task spec names the version it trains with."""

__all__ = [
    "CANONICAL_NAN_BITS", "OPS", "VERSION", "Fault", "Imm", "In", "Instr", "OpRecord", "Opcode", "PolicyError",
    "Reg", "RepOpsError", "ScalarTrace", "StepConstants", "Tape", "adamw_step", "add", "apply", "attention", "attention_backward", "canonicalize", "check_policy",
    "compute", "corrupt", "cross_entropy", "cross_entropy_backward", "current_tape", "embedding", "embedding_backward", "erf", "exp", "f32_bits", "gelu",
    "gelu_backward", "is_canonical", "layernorm", "layernorm_backward", "linear", "linear_backward", "log", "log_softmax", "log_softmax_backward", "matmul", "mean", "mul",
    "relu", "relu_backward", "run", "scalar_program", "scale", "sgd_step", "softmax", "softmax_backward", "sqrt", "step", "step_constants", "sub",
    "sum_rows", "tanh", "trace",
]  # fmt: skip

"""The RepOps scalar instruction set and its one-step evaluator.

Every op's output element is defined by a straight-line program over this instruction set. The
dispute game narrows a disagreement down to one instruction of one such program, and the on-chain
arbiter re-executes that instruction in soft-float; :func:`step` here is the reference for that
re-execution. The opcode numbers are part of the protocol (the contract uses the same ones).

Registers hold uint32 bit patterns. An operand is a register (:class:`Reg`), an element of one of the
op's input tensors addressed by (input slot, flat row-major index) (:class:`In`), or a uint32
immediate (:class:`Imm`). Float instructions read their operands as binary32 and write a binary32
result with every NaN replaced by the canonical NaN ``0x7FC00000``; integer instructions work on the
raw 32 bits. Programs are straight-line (no jumps): data-dependent choices are SELECTs, so the
instruction list of an element depends only on the op, its attributes, the input shapes and the
element, never on the data.

The evaluator uses numpy float32 scalars, whose + - * / are the IEEE-754 binary32 operations with
round to nearest even and gradual underflow.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

import numpy as np

from protocol.repops.policy import MASK32, RepOpsError, bits_f32, canon_bits


class Opcode(IntEnum):
    """Opcode numbers shared with the on-chain arbiter. Never renumber."""

    FADD = 0x01  # a + b
    FSUB = 0x02  # a - b
    FMUL = 0x03  # a * b
    FDIV = 0x04  # a / b
    FMULADD = 0x05  # c + (a * b): two roundings (an FMUL, then an FADD); operands (c, a, b)
    FNEG = 0x06  # -a (sign flip, then NaN canonicalised)
    FABS = 0x07  # |a| (sign cleared, then NaN canonicalised)
    FMIN = 0x08  # b if b < a else a
    FMAX = 0x09  # b if a < b else a
    FLT = 0x10  # 1 if a < b else 0 (IEEE: false when either is NaN)
    FLE = 0x11  # 1 if a <= b else 0
    FEQ = 0x12  # 1 if a == b else 0 (-0 == +0; NaN != NaN)
    SELECT = 0x13  # a if c != 0 else b; operands (c, a, b); bits copied unchanged
    I2F = 0x18  # int32 (two's complement) -> binary32, round to nearest even
    F2I = 0x19  # binary32 -> int32, round half to even; NaN -> 0; saturates to [-2^31, 2^31 - 1]
    IADD = 0x20  # (a + b) mod 2^32
    ISUB = 0x21  # (a - b) mod 2^32
    IMUL = 0x22  # (a * b) mod 2^32
    AND = 0x23
    OR = 0x24
    XOR = 0x25
    SHL = 0x26  # (a << (b & 31)) mod 2^32
    SHR = 0x27  # a >> (b & 31), logical
    SAR = 0x28  # a >> (b & 31), arithmetic (a read as int32)
    IEQ = 0x29  # 1 if a == b else 0 (raw bits)
    ILT = 0x2A  # 1 if int32(a) < int32(b) else 0 (signed)
    LOAD = 0x30  # element b (an index, uint32) of input tensor number a (an immediate slot)


ARITY: dict[Opcode, int] = {
    Opcode.FADD: 2, Opcode.FSUB: 2, Opcode.FMUL: 2, Opcode.FDIV: 2, Opcode.FMULADD: 3,
    Opcode.FNEG: 1, Opcode.FABS: 1, Opcode.FMIN: 2, Opcode.FMAX: 2,
    Opcode.FLT: 2, Opcode.FLE: 2, Opcode.FEQ: 2, Opcode.SELECT: 3,
    Opcode.I2F: 1, Opcode.F2I: 1,
    Opcode.IADD: 2, Opcode.ISUB: 2, Opcode.IMUL: 2, Opcode.AND: 2, Opcode.OR: 2, Opcode.XOR: 2,
    Opcode.SHL: 2, Opcode.SHR: 2, Opcode.SAR: 2, Opcode.IEQ: 2, Opcode.ILT: 2,
    Opcode.LOAD: 2,
}  # fmt: skip

FLOAT_RESULT = frozenset(
    {Opcode.FADD, Opcode.FSUB, Opcode.FMUL, Opcode.FDIV, Opcode.FMULADD, Opcode.FNEG, Opcode.FABS,
     Opcode.FMIN, Opcode.FMAX, Opcode.I2F}
)  # fmt: skip
"""Opcodes whose result is a binary32 value and is therefore NaN-canonicalised."""


class Reg(NamedTuple):
    """Operand: register number ``n``."""

    n: int


class In(NamedTuple):
    """Operand: element ``flat`` (flat row-major index) of the op's input tensor number ``slot``."""

    slot: int
    flat: int


class Imm(NamedTuple):
    """Operand: a uint32 immediate (a float constant's bits or an integer)."""

    bits: int


Operand = Reg | In | Imm


@dataclass(frozen=True)
class Instr:
    """One instruction: ``regs[dst] = op(*srcs)``."""

    op: Opcode
    dst: int
    srcs: tuple[Operand, ...]

    def __str__(self) -> str:
        def fmt(o: Operand) -> str:
            if isinstance(o, Reg):
                return f"r{o.n}"
            if isinstance(o, In):
                return f"in{o.slot}[{o.flat}]"
            return f"#{o.bits:08x}"

        return f"r{self.dst} = {self.op.name} " + ", ".join(fmt(s) for s in self.srcs)

    def encode(self) -> bytes:
        """Fixed 21-byte encoding: opcode u8, dst u16, then three operands of (kind u8, slot u8, value u32).

        kind: 0 none, 1 register (value = number), 2 input (slot, value = flat index), 3 immediate.
        Big-endian, so a contract can slice it with shifts.
        """
        out = struct.pack(">BH", int(self.op), self.dst)
        for i in range(3):
            if i >= len(self.srcs):
                out += struct.pack(">BBI", 0, 0, 0)
                continue
            o = self.srcs[i]
            if isinstance(o, Reg):
                out += struct.pack(">BBI", 1, 0, o.n)
            elif isinstance(o, In):
                out += struct.pack(">BBI", 2, o.slot, o.flat)
            else:
                out += struct.pack(">BBI", 3, 0, o.bits)
        return out

    @staticmethod
    def decode(data: bytes) -> Instr:
        """Inverse of :meth:`encode`; rejects unknown opcodes, operand kinds and wrong arity."""
        if len(data) != 21:
            raise RepOpsError(f"an encoded instruction is 21 bytes, got {len(data)}")
        op_code, dst = struct.unpack(">BH", data[:3])
        try:
            op = Opcode(op_code)
        except ValueError:
            raise RepOpsError(f"unknown opcode {op_code:#04x}") from None
        srcs: list[Operand] = []
        for i in range(3):
            kind, slot, value = struct.unpack(">BBI", data[3 + 6 * i : 9 + 6 * i])
            if kind == 0:
                continue
            if kind == 1:
                srcs.append(Reg(value))
            elif kind == 2:
                srcs.append(In(slot, value))
            elif kind == 3:
                srcs.append(Imm(value))
            else:
                raise RepOpsError(f"operand {i} has unknown kind {kind}")
        if len(srcs) != ARITY[op]:
            raise RepOpsError(f"{op.name} takes {ARITY[op]} operands, the encoding has {len(srcs)}")
        return Instr(op, dst, tuple(srcs))


def _f(bits: int) -> np.float32:
    return bits_f32(bits)


def _fb(x: np.float32) -> int:
    return canon_bits(int(np.array(x, dtype=np.float32).view(np.uint32)))


def _i32(bits: int) -> int:
    bits &= MASK32
    return bits - (1 << 32) if bits & 0x80000000 else bits


def _f2i(bits: int) -> int:
    x = _f(bits)
    if x != x:
        return 0
    r = float(np.rint(x))  # round half to even, exact
    if r >= 2147483648.0:
        return 0x7FFFFFFF
    if r < -2147483648.0:
        return 0x80000000
    return int(r) & MASK32


def execute(op: Opcode, vals: Sequence[int]) -> int:
    """The result bits of ``op`` applied to operand bit patterns ``vals`` (LOAD excluded: see :func:`step`)."""
    with np.errstate(all="ignore"):
        if op == Opcode.FADD:
            return _fb(_f(vals[0]) + _f(vals[1]))
        if op == Opcode.FSUB:
            return _fb(_f(vals[0]) - _f(vals[1]))
        if op == Opcode.FMUL:
            return _fb(_f(vals[0]) * _f(vals[1]))
        if op == Opcode.FDIV:
            return _fb(_f(vals[0]) / _f(vals[1]))
        if op == Opcode.FMULADD:
            prod = _f(vals[1]) * _f(vals[2])  # rounded to binary32 here: two roundings, never fused
            return _fb(_f(vals[0]) + prod)
        if op == Opcode.FNEG:
            return canon_bits(vals[0] ^ 0x80000000)
        if op == Opcode.FABS:
            return canon_bits(vals[0] & 0x7FFFFFFF)
        if op == Opcode.FMIN:
            return canon_bits(vals[1] if _f(vals[1]) < _f(vals[0]) else vals[0])
        if op == Opcode.FMAX:
            return canon_bits(vals[1] if _f(vals[0]) < _f(vals[1]) else vals[0])
        if op == Opcode.FLT:
            return int(bool(_f(vals[0]) < _f(vals[1])))
        if op == Opcode.FLE:
            return int(bool(_f(vals[0]) <= _f(vals[1])))
        if op == Opcode.FEQ:
            return int(bool(_f(vals[0]) == _f(vals[1])))
        if op == Opcode.SELECT:
            return (vals[1] if vals[0] & MASK32 else vals[2]) & MASK32
        if op == Opcode.I2F:
            return _fb(np.float32(_i32(vals[0])))  # int32 is exact in float64; one rounding to binary32
        if op == Opcode.F2I:
            return _f2i(vals[0])
    a = vals[0] & MASK32
    b = vals[1] & MASK32
    if op == Opcode.IADD:
        return (a + b) & MASK32
    if op == Opcode.ISUB:
        return (a - b) & MASK32
    if op == Opcode.IMUL:
        return (a * b) & MASK32
    if op == Opcode.AND:
        return a & b
    if op == Opcode.OR:
        return a | b
    if op == Opcode.XOR:
        return a ^ b
    if op == Opcode.SHL:
        return (a << (b & 31)) & MASK32
    if op == Opcode.SHR:
        return a >> (b & 31)
    if op == Opcode.SAR:
        return (_i32(a) >> (b & 31)) & MASK32
    if op == Opcode.IEQ:
        return int(a == b)
    if op == Opcode.ILT:
        return int(_i32(a) < _i32(b))
    raise RepOpsError(f"execute: opcode {op!r} is not a pure operation")


ReadInput = Callable[[int, int], int]
"""``read_input(slot, flat_index) -> bits`` of an op's input element (int tensors give int32 bits)."""


def operand_value(o: Operand, regs: Sequence[int], read_input: ReadInput) -> int:
    """The bits an operand denotes in register state ``regs``."""
    if isinstance(o, Reg):
        return regs[o.n]
    if isinstance(o, In):
        return read_input(o.slot, o.flat) & MASK32
    return o.bits & MASK32


def step(instr: Instr, regs: Sequence[int], read_input: ReadInput) -> list[int]:
    """Execute one instruction: the register file after ``instr`` given the one before it.

    This is the function the on-chain arbiter mirrors: one scalar step from proven operands.
    """
    if len(instr.srcs) != ARITY[instr.op]:
        raise RepOpsError(f"{instr.op.name} takes {ARITY[instr.op]} operands, got {len(instr.srcs)}")
    vals = [operand_value(o, regs, read_input) for o in instr.srcs]
    if instr.op == Opcode.LOAD:
        result = read_input(vals[0], vals[1]) & MASK32
    else:
        result = execute(instr.op, vals)
    out = list(regs)
    out[instr.dst] = result
    return out


def run(program: Sequence[Instr], nregs: int, read_input: ReadInput) -> list[list[int]]:
    """Run a program from all-zero registers; the register file after every step (one per instruction)."""
    regs = [0] * nregs
    states = []
    for ins in program:
        regs = step(ins, regs, read_input)
        states.append(regs)
    return states

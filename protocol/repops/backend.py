"""Two interpreters for one kernel: vectorised torch, and instrumented scalar tracing.

Every RepOps kernel is written once, against the small interface below (``k.add``, ``k.muladd``,
``k.select``, ...), in array style: values are arrays over output elements, reductions are Python
loops over the reduction index. Run with :class:`TorchBackend`, a kernel computes all output elements
at once with elementwise float32 torch operations (which are bit-exact on every device). Run with
:class:`TraceBackend`, the same kernel, on the inputs restricted to what one output element depends
on, records one instruction of :mod:`protocol.repops.isa` per lane per call and evaluates it with the
reference evaluator; :meth:`TraceBackend.program` then cuts out the instructions one element needs.
So the canonical scalar program of an element is, by construction, what the torch code computes:
there is no second implementation that could drift.

Torch values are float32 tensors (floats), int32 tensors holding the bits (integers) or bool
tensors (comparison results, the ISA's 0/1). NaNs inside a torch kernel may carry any payload;
they are canonicalised whenever float bits are read as integers (:meth:`TorchBackend.bits`) and on
every op output. That is equivalent to canonicalising after every instruction, as the evaluator does,
because no float instruction's non-NaN result depends on a NaN payload.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from protocol.repops import isa
from protocol.repops.isa import Imm, In, Instr, Opcode, Operand, Reg
from protocol.repops.policy import CANONICAL_NAN_BITS, MASK32, RepOpsError, f32_bits

_TWO32 = 1 << 32


# --------------------------------------------------------------------------------------------------
# Torch (vectorised)
# --------------------------------------------------------------------------------------------------


_CONSTS: dict[tuple[torch.device, int], torch.Tensor] = {}
"""Constant tensors by (device, bits), shared by all kernels (constants are never written to)."""
_F32_BITS: dict[tuple[float, float], int] = {}
_BITWISE_SELECT_MIN = 8192


def _s32(n: int) -> int:
    """A uint32 value as the int32 with the same bits."""
    n &= MASK32
    return n - _TWO32 if n & 0x80000000 else n


class StepConstants:
    """Constants that change from step to step (AdamW's learning rate and bias corrections) held in
    device memory, so that a CUDA graph captured at one step replays every step.

    Kernels ask for them with ``k.step_const(name, x)``. With no ``StepConstants`` active that is
    ``k.const(x)``. While one is active (:func:`step_constants`), it records each name's value for
    the current step (one value per name and step, checked), and once :meth:`bind` has given it a
    device buffer it hands out 0-dim views of that buffer instead of cached constants: a capture then
    reads the constants from the buffer, and :meth:`fill` writes the next step's values there before
    each replay. The arithmetic is the same either way: a 0-dim float32 tensor operand on the device,
    holding the same bits.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self.bits: dict[str, int] = {}
        self.buffer: torch.Tensor | None = None

    def begin_step(self) -> None:
        """Forget the last step's values (names and buffer stay)."""
        self.bits = {}

    def lookup(self, k: TorchBackend, name: str, x: float) -> torch.Tensor:
        bits = f32_bits(x)
        if self.bits.setdefault(name, bits) != bits:
            raise RepOpsError(f"step constant {name!r} has two values in one step")
        if self.buffer is None:
            if name not in self.names:
                self.names.append(name)
            return k.const_bits(bits)
        if name not in self.names:
            raise RepOpsError(f"step constant {name!r} was not seen before the buffer was bound")
        return self.buffer[self.names.index(name)]

    def bind(self, device: torch.device) -> None:
        """Allocate the device buffer (one float32 per name seen so far) and fill it with this step's values."""
        self.buffer = torch.zeros(len(self.names), dtype=torch.float32, device=device)
        self.fill({n: self.bits[n] for n in self.names}, as_bits=True)

    def fill(self, values: dict[str, Any], as_bits: bool = False, non_blocking: bool = False) -> None:
        """Write one step's values (floats, rounded to binary32; or their bits) into the buffer.

        ``non_blocking``: from pinned host memory, ordered on the current stream (the host does not
        wait; torch keeps the pinned block until the copy has run)."""
        if self.buffer is None:
            raise RepOpsError("step constants: no buffer bound")
        if set(values) != set(self.names):
            raise RepOpsError(f"step constants: expected {sorted(self.names)}, got {sorted(values)}")
        bits = [int(values[n]) if as_bits else f32_bits(values[n]) for n in self.names]
        host = torch.tensor([_s32(b) for b in bits], dtype=torch.int32).view(torch.float32)
        if non_blocking and self.buffer.is_cuda:
            host = host.pin_memory()
        self.buffer.copy_(host, non_blocking=non_blocking)
        self.bits = {n: b & MASK32 for n, b in zip(self.names, bits, strict=True)}


_STEP_CONSTANTS: contextvars.ContextVar[StepConstants | None] = contextvars.ContextVar(
    "repops_step_constants", default=None)


@contextlib.contextmanager
def step_constants(slots: StepConstants) -> Iterator[StepConstants]:
    """Route ``k.step_const`` through ``slots`` within the block (see :class:`StepConstants`)."""
    token = _STEP_CONSTANTS.set(slots)
    try:
        yield slots
    finally:
        _STEP_CONSTANTS.reset(token)


class TorchBackend:
    """Executes a kernel over all output elements with elementwise float32 torch operations.

    Only operations that are exact and the same on CPU and CUDA are used: IEEE-754 binary32 + - * /
    on same-device tensors (never a CPU-scalar divisor: CUDA turns ``x / scalar`` into a
    multiplication by the reciprocal), comparisons, ``torch.round`` and int32 arithmetic and bit
    operations on the float bits (two's complement, so int32 wrap-around is the ISA's mod 2^32).
    Integer values are int32 tensors holding the register bits; conditions are bool tensors.
    SELECT is done on the bits, ``b ^ ((a ^ b) & -c)``, which is exact and, on CPU, several times
    faster than ``torch.where``.
    """

    tracing = False

    def __init__(self, device: torch.device, inputs: Sequence[torch.Tensor], coords: Any):
        """``coords``: the domain coordinates, or a function making them (built on first use)."""
        self.device = device
        self._inputs = list(inputs)
        self._coords = coords
        self.view_shapes: list[tuple[int, ...]] = []
        self.out_numel = 0
        self._nan = self.const_bits(CANONICAL_NAN_BITS)

    @property
    def coords(self) -> list[torch.Tensor]:
        if callable(self._coords):
            self._coords = list(self._coords())
        return self._coords

    # constants and static (coordinate-derived) values ------------------------------------------
    def const_bits(self, bits: int) -> torch.Tensor:
        key = (self.device, bits)
        t = _CONSTS.get(key)
        if t is None:
            t = torch.tensor(_s32(bits), dtype=torch.int32, device=self.device).view(torch.float32)
            _CONSTS[key] = t
        return t

    def const(self, x: float) -> torch.Tensor:
        """A float32 constant (``x`` rounded to binary32), as a 0-dim tensor on the device."""
        key = (x, math.copysign(1.0, x))  # -0.0 == 0.0 as a plain key
        bits = _F32_BITS.get(key)
        if bits is None:
            bits = f32_bits(x)
            if x == x:
                _F32_BITS[key] = bits
        return self.const_bits(bits)

    def step_const(self, name: str, x: float) -> torch.Tensor:
        """A float32 constant that changes from step to step (:class:`StepConstants`); ``const(x)``
        unless step constants are active."""
        slots = _STEP_CONSTANTS.get()
        return self.const(x) if slots is None else slots.lookup(self, name, x)

    def int_const(self, n: int) -> torch.Tensor:
        """An int32 constant (0-dim, on the device, cached like the float constants)."""
        return self.const_bits(n & MASK32).view(torch.int32)

    @property
    def capturing(self) -> bool:
        """True while a CUDA graph is being captured: nothing may read device values on the host."""
        return self.device.type == "cuda" and torch.cuda.is_current_stream_capturing()

    def imm(self, n: int) -> int:
        """An integer immediate (its bits as a Python int32)."""
        return _s32(n)

    def static_int(self, a: Any) -> torch.Tensor:
        """Integers known from coordinates alone (immediates in a scalar program)."""
        return torch.as_tensor(a, device=self.device).to(torch.int32)

    def static_cond(self, a: Any) -> torch.Tensor:
        """A condition known from coordinates alone (a 0/1 immediate in a scalar program)."""
        return torch.as_tensor(a, dtype=torch.bool, device=self.device)

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        """The same values in contiguous memory (no arithmetic): keeps every step of a loop a dense pass."""
        return x.contiguous()

    def cat(self, xs: Sequence[torch.Tensor], dim: int) -> torch.Tensor:
        shape = torch.broadcast_shapes(*[x.shape for x in xs])
        return torch.cat([x.expand(shape) if x.shape != shape else x for x in xs], dim=dim)

    def load(self, slot: int, index: torch.Tensor) -> torch.Tensor:
        """Element ``index`` (flat) of input ``slot``: the only data-dependent addressing (LOAD)."""
        return self._inputs[slot].reshape(-1).take(index.to(torch.int64))

    # reinterpretation ------------------------------------------------------------------------------
    def bits(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.int32:
            return x
        if x.dtype == torch.bool:
            return x.to(torch.int32)
        return self._canon(x).view(torch.int32)

    def fl(self, v: torch.Tensor) -> torch.Tensor:
        return v if v.dtype == torch.float32 else v.view(torch.float32)

    def _canon(self, x: torch.Tensor) -> torch.Tensor:
        return self.select(x != x, self._nan, x)

    # float arithmetic ------------------------------------------------------------------------------
    def add(self, a, b):
        return a + b

    def sub(self, a, b):
        return a - b

    def mul(self, a, b):
        return a * b

    def div(self, a, b):
        return a / b

    def muladd(self, c, a, b):
        """c + a*b with two roundings: the product is materialised in float32 first (never fused)."""
        return c + a * b

    def accumulate(self, acc, a, b, upto: int):
        """acc[:upto] += a*b (or += a): in place, acc being a kernel-owned running sum.

        The product is materialised (rounded to float32) before the add: two roundings, never fused.
        """
        head = acc if upto == acc.shape[0] else acc[:upto]
        head.add_(a if b is None else a * b)
        return acc

    def neg(self, a):
        return -a

    def abs(self, a):
        return a.abs()

    def fmin(self, a, b):
        return self.select(b < a, b, a)

    def fmax(self, a, b):
        return self.select(a < b, b, a)

    def lt(self, a, b):
        return a < b

    def le(self, a, b):
        return a <= b

    def eq(self, a, b):
        return a == b

    def select(self, c, a, b):
        """a where c else b (bits copied): ``torch.where`` on GPU and for small CPU tensors, else on the
        bits, b ^ ((a ^ b) & -c), which CPU torch runs several times faster than ``torch.where``."""
        if c.dtype != torch.bool:
            c = c != 0
        if not isinstance(a, torch.Tensor):
            a = self.int_const(a)
        if not isinstance(b, torch.Tensor):
            b = self.int_const(b)
        if self.device.type != "cpu" or max(a.numel(), b.numel(), c.numel()) < _BITWISE_SELECT_MIN:
            return torch.where(c, a, b)
        is_float = a.dtype == torch.float32
        ai = a.view(torch.int32) if is_float else a
        bi = b.view(torch.int32) if b.dtype == torch.float32 else b
        out = bi ^ ((ai ^ bi) & -c.to(torch.int32))
        return out.view(torch.float32) if is_float else out

    def i2f(self, v):
        return self.bits(v).to(torch.float32)

    def f2i(self, x):
        r = torch.round(x)  # round half to even: exact, so identical on every device
        r = self.select(r != r, self.const(0.0), r)
        v = r.clamp(-2147483648.0, 2147483520.0).to(torch.int32)
        return self.select(r >= 2147483648.0, self.int_const(0x7FFFFFFF), v)

    # integer arithmetic on bit patterns -------------------------------------------------------------
    def _i(self, a):
        return self.bits(a) if isinstance(a, torch.Tensor) else a

    def iadd(self, a, b):
        return self._i(a) + self._i(b)

    def isub(self, a, b):
        return self._i(a) - self._i(b)

    def imul(self, a, b):
        return self._i(a) * self._i(b)

    def and_(self, a, b):
        return self._i(a) & self._i(b)

    def or_(self, a, b):
        return self._i(a) | self._i(b)

    def xor(self, a, b):
        return self._i(a) ^ self._i(b)

    def shl(self, a, s: int):
        return self._i(a) << (s & 31)

    def shr(self, a, s: int):
        s &= 31
        v = self._i(a)
        return v if s == 0 else (v >> s) & ((1 << (32 - s)) - 1)

    def sar(self, a, s: int):
        return self._i(a) >> (s & 31)

    def ieq(self, a, b):
        return self._i(a) == self._i(b)

    def ilt(self, a, b):
        return self._i(a) < self._i(b)

    def finish(self, out: torch.Tensor) -> torch.Tensor:
        """The op's output tensor: float32 with canonical NaNs (on CPU, skipped when there is no NaN)."""
        if out.dtype == torch.float32:
            if self.device.type == "cpu" and not bool(torch.isnan(out).any()):
                return out
            return self._canon(out)
        if out.dtype == torch.bool:
            return out.to(torch.float32)
        raise RepOpsError(f"kernel returned a {out.dtype} tensor; op outputs are float32")


# --------------------------------------------------------------------------------------------------
# Tracing (one element, instrumented)
# --------------------------------------------------------------------------------------------------


class TArr:
    """An array of scalar operands (the trace backend's value): refs (Operand) and their bit values."""

    __slots__ = ("refs", "vals")

    def __init__(self, refs: np.ndarray, vals: np.ndarray):
        self.refs = refs
        self.vals = vals

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.refs.shape)

    @property
    def ndim(self) -> int:
        return self.refs.ndim

    def __getitem__(self, idx: Any) -> TArr:
        r = self.refs[idx]
        if not isinstance(r, np.ndarray):
            return _scalar(r, int(self.vals[idx]))
        return TArr(r, self.vals[idx])

    def transpose(self, a: int, b: int) -> TArr:
        return TArr(np.swapaxes(self.refs, a, b), np.swapaxes(self.vals, a, b))

    def reshape(self, *shape: Any) -> TArr:
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        return TArr(self.refs.reshape(shape), self.vals.reshape(shape))

    def permute(self, *dims: int) -> TArr:
        return TArr(self.refs.transpose(dims), self.vals.transpose(dims))

    def unsqueeze(self, d: int) -> TArr:
        return TArr(np.expand_dims(self.refs, d), np.expand_dims(self.vals, d))


def _scalar(ref: Operand, val: int) -> TArr:
    r = np.empty((), dtype=object)
    r[()] = ref
    return TArr(r, np.array(val, dtype=np.int64))


class TraceBackend:
    """Executes a kernel on restricted inputs, recording every scalar instruction it performs.

    Each lane of each call becomes one SSA node (an instruction whose destination is a fresh value),
    evaluated with :func:`protocol.repops.isa.execute` — the reference evaluator, not torch.
    """

    tracing = True

    def __init__(self, inputs: Sequence[torch.Tensor], coords: Sequence[Any]):
        self._bits = [_tensor_bits_np(t) for t in inputs]
        self.coords = [np.asarray(c, dtype=np.int64) for c in coords]
        self.view_shapes: list[tuple[int, ...]] = []
        self.out_numel = 0
        self.nodes: list[tuple[Opcode, tuple[Operand, ...]]] = []
        self.values: list[int] = []

    def read_input(self, slot: int, index: int) -> int:
        flat = self._bits[slot]
        if not 0 <= index < flat.size:
            raise RepOpsError(f"input {slot} has {flat.size} elements; index {index} is out of range")
        return int(flat[index])

    def input(self, slot: int, flat_index: np.ndarray) -> TArr:
        """Input ``slot`` at the given flat indices (an int array of any shape) as operands."""
        fi = np.asarray(flat_index, dtype=np.int64)
        refs = np.empty(fi.shape, dtype=object)
        for pos, f in np.ndenumerate(fi):
            refs[pos] = In(slot, int(f))
        return TArr(refs, self._bits[slot][fi].astype(np.int64))

    # constants and static values ------------------------------------------------------------------
    def const_bits(self, bits: int) -> TArr:
        return _scalar(Imm(bits & MASK32), bits & MASK32)

    def const(self, x: float) -> TArr:
        return self.const_bits(f32_bits(x))

    def step_const(self, name: str, x: float) -> TArr:
        return self.const(x)

    capturing = False

    def imm(self, n: int) -> TArr:
        return self.const_bits(n & MASK32)

    def static_int(self, a: Any) -> TArr:
        a = np.asarray(a, dtype=np.int64) & MASK32
        refs = np.empty(a.shape, dtype=object)
        for pos, v in np.ndenumerate(a):
            refs[pos] = Imm(int(v))
        return TArr(refs, a)

    def static_cond(self, a: Any) -> TArr:
        return self.static_int(np.asarray(a, dtype=bool).astype(np.int64))

    def layout(self, x: TArr) -> TArr:
        return x

    def cat(self, xs: Sequence[TArr], dim: int) -> TArr:
        shape = np.broadcast_shapes(*[x.shape for x in xs])
        refs = [np.broadcast_to(x.refs, shape) for x in xs]
        vals = [np.broadcast_to(x.vals, shape) for x in xs]
        return TArr(np.concatenate(refs, axis=dim), np.concatenate(vals, axis=dim))

    # recording ------------------------------------------------------------------------------------
    def _emit(self, op: Opcode, *args: Any) -> TArr:
        arrs = [a if isinstance(a, TArr) else self.imm(int(a)) for a in args]
        shape = np.broadcast_shapes(*[a.shape for a in arrs])
        refs = [np.broadcast_to(a.refs, shape).ravel() for a in arrs]
        vals = [np.broadcast_to(a.vals, shape).ravel() for a in arrs]
        n = len(refs[0])
        out_refs = np.empty(n, dtype=object)
        out_vals = np.empty(n, dtype=np.int64)
        for i in range(n):
            srcs = tuple(r[i] for r in refs)
            vs = [int(v[i]) for v in vals]
            if op == Opcode.LOAD:
                val = self.read_input(vs[0], vs[1])
            else:
                val = isa.execute(op, vs)
            out_refs[i] = Reg(len(self.nodes))
            out_vals[i] = val
            self.nodes.append((op, srcs))
            self.values.append(val)
        return TArr(out_refs.reshape(shape), out_vals.reshape(shape))

    def load(self, slot: int, index: TArr) -> TArr:
        return self._emit(Opcode.LOAD, self.imm(slot), index)

    def bits(self, x: TArr) -> TArr:
        return x

    def fl(self, v: TArr) -> TArr:
        return v

    def add(self, a, b):
        return self._emit(Opcode.FADD, a, b)

    def sub(self, a, b):
        return self._emit(Opcode.FSUB, a, b)

    def mul(self, a, b):
        return self._emit(Opcode.FMUL, a, b)

    def div(self, a, b):
        return self._emit(Opcode.FDIV, a, b)

    def muladd(self, c, a, b):
        return self._emit(Opcode.FMULADD, c, a, b)

    def accumulate(self, acc, a, b, upto: int):
        """acc[:upto] <- acc[:upto] + a*b (FMULADD) or + a (FADD); the rest unchanged."""
        head = acc if upto == acc.shape[0] else acc[:upto]
        head = self.add(head, a) if b is None else self.muladd(head, a, b)
        return head if upto == acc.shape[0] else self.cat([head, acc[upto:]], 0)

    def neg(self, a):
        return self._emit(Opcode.FNEG, a)

    def abs(self, a):
        return self._emit(Opcode.FABS, a)

    def fmin(self, a, b):
        return self._emit(Opcode.FMIN, a, b)

    def fmax(self, a, b):
        return self._emit(Opcode.FMAX, a, b)

    def lt(self, a, b):
        return self._emit(Opcode.FLT, a, b)

    def le(self, a, b):
        return self._emit(Opcode.FLE, a, b)

    def eq(self, a, b):
        return self._emit(Opcode.FEQ, a, b)

    def select(self, c, a, b):
        return self._emit(Opcode.SELECT, c, a, b)

    def i2f(self, v):
        return self._emit(Opcode.I2F, v)

    def f2i(self, x):
        return self._emit(Opcode.F2I, x)

    def iadd(self, a, b):
        return self._emit(Opcode.IADD, a, b)

    def isub(self, a, b):
        return self._emit(Opcode.ISUB, a, b)

    def imul(self, a, b):
        return self._emit(Opcode.IMUL, a, b)

    def and_(self, a, b):
        return self._emit(Opcode.AND, a, b)

    def or_(self, a, b):
        return self._emit(Opcode.OR, a, b)

    def xor(self, a, b):
        return self._emit(Opcode.XOR, a, b)

    def shl(self, a, s: int):
        return self._emit(Opcode.SHL, a, s & 31)

    def shr(self, a, s: int):
        return self._emit(Opcode.SHR, a, s & 31)

    def sar(self, a, s: int):
        return self._emit(Opcode.SAR, a, s & 31)

    def ieq(self, a, b):
        return self._emit(Opcode.IEQ, a, b)

    def ilt(self, a, b):
        return self._emit(Opcode.ILT, a, b)

    # program extraction ---------------------------------------------------------------------------
    def _deps(self, n: int) -> list[int]:
        """Register operands of node n, distinct, latest-recorded first."""
        return sorted({s.n for s in self.nodes[n][1] if isinstance(s, Reg)}, reverse=True)

    def program(self, ref: Operand) -> tuple[list[Instr], int]:
        """The straight-line program computing ``ref``, register-allocated; returns (program, nregs).

        Keeps only the instructions ``ref`` depends on, ordered by a post-order walk from the result
        (register operands latest-recorded first, each value computed once, just before its first
        use), and gives each
        value the lowest register free at its definition, so e.g. a matmul element's running sum
        lives in one register. A result that is an input or immediate (a copy) becomes a
        single ``OR x, 0``.
        """
        if not isinstance(ref, Reg):
            return [Instr(Opcode.OR, 0, (ref, Imm(0)))], 1
        # Post-order depth-first walk from the result: every value is computed right before its first
        # use, which keeps few values live (e.g. the xhat of each row of a layer-norm weight gradient
        # is made just before it is accumulated). Operands are visited latest-recorded first, so a
        # long chain (a running sum) is walked before the short side values that join it.
        order: list[int] = []
        done: set[int] = set()
        stack: list[tuple[int, int]] = [(ref.n, 0)]
        while stack:
            n, i = stack.pop()
            deps = self._deps(n)
            while i < len(deps) and deps[i] in done:
                i += 1
            if i == len(deps):
                if n not in done:
                    done.add(n)
                    order.append(n)
                continue
            stack.append((n, i + 1))
            stack.append((deps[i], 0))
        last_use: dict[int, int] = {}
        for pos, n in enumerate(order):
            for s in self.nodes[n][1]:
                if isinstance(s, Reg):
                    last_use[s.n] = pos
        reg_of: dict[int, int] = {}
        free: list[int] = []
        nregs = 0
        prog: list[Instr] = []
        for pos, n in enumerate(order):
            op, srcs = self.nodes[n]
            mapped = tuple(Reg(reg_of[s.n]) if isinstance(s, Reg) else s for s in srcs)
            for used in {s.n for s in srcs if isinstance(s, Reg)}:
                if last_use[used] == pos:
                    free.append(reg_of[used])
            if free:
                free.sort()
                dst = free.pop(0)
            else:
                dst = nregs
                nregs += 1
            reg_of[n] = dst
            prog.append(Instr(op, dst, mapped))
        return prog, nregs


def _tensor_bits_np(t: torch.Tensor) -> np.ndarray:
    """Flat uint32 bits of a tensor: float32 as its bit pattern, integer tensors as int32 two's complement."""
    t = t.detach().to("cpu").contiguous().reshape(-1)
    if t.dtype == torch.float32:
        return t.view(torch.int32).numpy().view(np.uint32)
    if t.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        return (t.to(torch.int64).numpy() & MASK32).astype(np.uint32)
    raise RepOpsError(f"unsupported input dtype {t.dtype}; RepOps reads float32 and integer tensors")

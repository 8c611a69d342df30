"""Running RepOps operators: vectorised on torch, or traced for one output element.

Each op is an :class:`OpDef`: how its inputs are viewed (transposes and reshapes, no arithmetic),
the shape of its output, its kernel (written once against the backend interface of
:mod:`protocol.repops.backend`), and which input elements one output element can depend on (so a
scalar trace runs the kernel on a small slice instead of the whole tensor). The definitions live in
:mod:`~protocol.repops.linalg`, :mod:`~protocol.repops.nn` and :mod:`~protocol.repops.optim`
(forward passes, explicit backward passes and optimizer updates are all ops); reduction orders in
:mod:`~protocol.repops.reduce`; docs/REPOPS.md lists the canonical scalar program of every op.

Use :func:`compute` to run an op (the public functions in :mod:`protocol.repops` wrap it and record
it on the active :class:`~protocol.repops.tape.Tape`) and :func:`trace` for the scalar trace of one
output element.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from protocol.repops import fastcpu, fastcuda, isa
from protocol.repops.backend import TArr, TorchBackend, TraceBackend
from protocol.repops.isa import Instr
from protocol.repops.policy import MASK32, RepOpsError, bits_f32, f32_bits

Attrs = dict[str, Any]
Index = tuple[Any, ...]


# --------------------------------------------------------------------------------------------------
# view helpers: the same call on a torch tensor or on a numpy array of flat input indices
# --------------------------------------------------------------------------------------------------


def swap(x: Any, a: int, b: int) -> Any:
    return np.swapaxes(x, a, b) if isinstance(x, np.ndarray) else x.transpose(a, b)


def perm(x: Any, dims: Sequence[int]) -> Any:
    return x.transpose(tuple(dims)) if isinstance(x, np.ndarray) else x.permute(*dims)


@functools.lru_cache(maxsize=4096)
def f32(x: float) -> np.float32:
    """x rounded to binary32 (cached: attribute constants recur every step)."""
    return bits_f32(f32_bits(x))


@dataclass(frozen=True)
class OpDef:
    """One operator.

    views(inputs, attrs): the kernel's views of the inputs (transpose/reshape/permute only).
    domain(view_shapes, attrs): the shape the kernel computes over; its row-major order is the
        output's (the output tensor has shape ``out_shape`` with the same number of elements).
    kernel(k, views, attrs): the computation, against backend ``k``; ``k.coords`` are the domain
        coordinates (broadcastable integer arrays), ``k.view_shapes`` the unrestricted view shapes
        and ``k.out_numel`` the full output size (a traced kernel sees restricted views: sizes it
        needs must come from there).
    restrict(pos, view_shapes, attrs): for domain position ``pos``, an index tuple per view (None:
        the whole view) covering every element that position can depend on, and the domain dims
        that are pinned to ``pos`` (the others are kept whole).
    """

    name: str
    n_inputs: int
    int_inputs: tuple[int, ...]
    views: Callable[[list[Any], Attrs], list[Any]]
    domain: Callable[[list[tuple[int, ...]], Attrs], tuple[int, ...]]
    kernel: Callable[[Any, list[Any], Attrs], Any]
    restrict: Callable[
        [tuple[int, ...], list[tuple[int, ...]], Attrs], tuple[list[Index | None], tuple[int, ...]]
    ]
    out_shape: Callable[[list[tuple[int, ...]], Attrs], tuple[int, ...]] | None = None
    view_slots: tuple[int, ...] | None = None
    """Input slot each view reads (default: view i is input i)."""
    torch_kernel: Callable[[TorchBackend, list[Any], Attrs], Any] | None = None
    """An equivalent vectorised formulation used instead of ``kernel`` on torch; tests prove it
    bit-equal to the traced ``kernel``. Only where the direct loop is far too slow."""


OPS: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    OPS[op.name] = op
    return op


def identity_views(xs: list[Any], attrs: Attrs) -> list[Any]:
    return list(xs)


# --------------------------------------------------------------------------------------------------
# running an op
# --------------------------------------------------------------------------------------------------


def _check_inputs(op: OpDef, inputs: Sequence[torch.Tensor]) -> None:
    if len(inputs) != op.n_inputs:
        raise RepOpsError(f"{op.name} takes {op.n_inputs} inputs, got {len(inputs)}")
    dev = inputs[0].device
    for i, t in enumerate(inputs):
        if not isinstance(t, torch.Tensor):
            raise RepOpsError(f"{op.name}: input {i} is a {type(t).__name__}, not a tensor")
        if t.device != dev:
            raise RepOpsError(f"{op.name}: input {i} is on {t.device}, input 0 on {dev}")
        if i in op.int_inputs:
            if t.dtype not in (torch.int64, torch.int32):
                raise RepOpsError(f"{op.name}: input {i} must be int64/int32 indices, got {t.dtype}")
        elif t.dtype != torch.float32:
            raise RepOpsError(f"{op.name}: input {i} must be float32, got {t.dtype}")


def _coords(shape: tuple[int, ...], device: torch.device) -> list[torch.Tensor]:
    n = len(shape)
    return [
        torch.arange(s, device=device, dtype=torch.int64).reshape([1] * d + [s] + [1] * (n - d - 1))
        for d, s in enumerate(shape)
    ]


def get_op(name: str) -> OpDef:
    op = OPS.get(name)
    if op is None:
        raise RepOpsError(f"unknown op {name!r}; known: {sorted(OPS)}")
    return op


def compute(name: str, inputs: Sequence[torch.Tensor], attrs: Attrs | None = None) -> torch.Tensor:
    """Run op ``name`` on ``inputs`` (vectorised torch) and return its float32 output."""
    op = get_op(name)
    attrs = dict(attrs or {})
    _check_inputs(op, inputs)
    ins = [t.to(torch.int32) if i in op.int_inputs else t for i, t in enumerate(inputs)]
    views = op.views(ins, attrs)
    shapes = [tuple(v.shape) for v in views]
    dom = tuple(op.domain(shapes, attrs))
    k = TorchBackend(inputs[0].device, ins, lambda: _coords(dom, inputs[0].device))
    k.view_shapes = shapes
    k.out_numel = math.prod(dom)
    oshape = tuple(op.out_shape(shapes, attrs)) if op.out_shape else dom
    if k.device.type == "cpu" and name in fastcpu.KERNELS:
        fast = fastcpu.compute(name, views, attrs, k.out_numel)
        if fast is not None:  # the same bits as the kernel below, one fused C++ loop (fastcpu.py)
            return fast.reshape(oshape)
    elif k.device.type == "cuda" and name in fastcuda.KERNELS:
        fast = fastcuda.compute(name, views, attrs, k)
        if fast is not None:  # the same bits as the kernel below, one CUDA kernel (fastcuda.py)
            return fast.reshape(oshape)
    fn = op.torch_kernel or op.kernel
    out = fn(k, views, attrs)
    out = k.finish(out)
    if tuple(out.shape) != dom:
        out = out.expand(dom)
    out = out.contiguous()
    return out.reshape(oshape)


@dataclass
class ScalarTrace:
    """The canonical scalar program of one output element and its execution.

    ``states[m]`` is the register file after instruction ``m``; ``result`` (bits) is the value of the
    last instruction's destination, which must equal the element of the op's output (``expected``,
    when known). ``reads`` lists the (slot, flat index) input elements the program reads statically.
    """

    op: str
    attrs: Attrs
    element: int
    program: list[Instr]
    nregs: int
    states: list[list[int]]
    result: int
    expected: int | None = None

    @property
    def matches(self) -> bool:
        """True when the recomputed element equals the recorded one (or nothing was recorded)."""
        return self.expected is None or self.expected == self.result

    @property
    def reads(self) -> list[tuple[int, int]]:
        seen: dict[tuple[int, int], None] = {}
        for ins in self.program:
            for s in ins.srcs:
                if isinstance(s, isa.In):
                    seen[(s.slot, s.flat)] = None
        return list(seen)

    def value(self, m: int) -> int:
        """Bits written by instruction ``m``."""
        return self.states[m][self.program[m].dst]


def trace(
    name: str,
    inputs: Sequence[torch.Tensor],
    attrs: Attrs | None,
    element: int,
    expected: torch.Tensor | None = None,
) -> ScalarTrace:
    """The scalar trace of output element ``element`` (flat, row-major) of op ``name`` on ``inputs``.

    Runs the op's own kernel with the tracing backend on the slice of the inputs that element can
    depend on, cuts out its program, then re-executes that program with :func:`isa.run`.
    """
    op = get_op(name)
    attrs = dict(attrs or {})
    _check_inputs(op, inputs)
    cpu = [t.detach().to("cpu") for t in inputs]
    flat_views = op.views([np.arange(t.numel(), dtype=np.int64).reshape(tuple(t.shape)) for t in cpu], attrs)
    shapes = [tuple(v.shape) for v in flat_views]
    dom = tuple(op.domain(shapes, attrs))
    total = int(np.prod(dom)) if dom else 1
    if not 0 <= element < total:
        raise RepOpsError(f"{name}: element {element} out of range for an output of {total} elements")
    pos = tuple(int(p) for p in np.unravel_index(element, dom)) if dom else ()
    idxs, pinned = op.restrict(pos, shapes, attrs)
    coords = []
    rpos = []
    for d, s in enumerate(dom):
        shape = [1] * len(dom)
        if d in pinned:
            coords.append(np.array([pos[d]], dtype=np.int64).reshape(shape))
            rpos.append(0)
        else:
            shape[d] = s
            coords.append(np.arange(s, dtype=np.int64).reshape(shape))
            rpos.append(pos[d])
    k = TraceBackend(cpu, coords)
    k.view_shapes = shapes
    k.out_numel = total
    views = []
    slots = op.view_slots or tuple(range(len(flat_views)))
    for slot, fv, ix in zip(slots, flat_views, idxs, strict=True):
        views.append(k.input(slot, fv if ix is None else fv[ix]))
    out: TArr = op.kernel(k, views, attrs)
    rdom = tuple(1 if d in pinned else s for d, s in enumerate(dom))
    ref = np.broadcast_to(out.refs, rdom)[tuple(rpos)]
    program, nregs = k.program(ref)
    states = isa.run(program, nregs, k.read_input)
    result = states[-1][program[-1].dst]
    exp_bits = None
    if expected is not None:
        exp_bits = int(expected.detach().reshape(-1)[element].to("cpu").view(torch.int32)) & MASK32
    return ScalarTrace(name, attrs, element, program, nregs, states, result, exp_bits)


def scalar_program(
    name: str, shapes: Sequence[Sequence[int]], attrs: Attrs | None, element: int
) -> tuple[list[Instr], int]:
    """The canonical program (instructions, number of registers) of one output element, from shapes.

    Programs never depend on the data, so this traces the op on zero inputs of the given shapes
    (integer inputs as zeros too); the result equals ``trace(...).program`` for any real inputs.
    """
    op = get_op(name)
    if len(shapes) != op.n_inputs:
        raise RepOpsError(f"{name} takes {op.n_inputs} inputs, got {len(shapes)} shapes")
    zeros = [
        torch.zeros(tuple(s), dtype=torch.int64 if i in op.int_inputs else torch.float32)
        for i, s in enumerate(shapes)
    ]
    tr = trace(name, zeros, attrs, element)
    return tr.program, tr.nregs


# --------------------------------------------------------------------------------------------------
# restrictions shared by many ops
# --------------------------------------------------------------------------------------------------


def pin_all(pos: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(range(len(pos)))


def bcast_index(pos: tuple[int, ...], shape: tuple[int, ...]) -> Index:
    """Index (keeping dims) of the element of a view of ``shape`` broadcast against domain pos."""
    off = len(pos) - len(shape)
    return tuple(
        slice(0, 1) if s == 1 else slice(pos[off + d], pos[off + d] + 1) for d, s in enumerate(shape)
    )


def rows_restrict(pos: tuple[int, ...], shapes: list[tuple[int, ...]], attrs: Attrs):
    """Row ops: pin every domain dim but the last; inputs of the domain's rank are cut to the row."""
    n = len(pos)
    idxs: list[Index | None] = []
    for s in shapes:
        if len(s) == n:
            idxs.append(tuple(slice(p, p + 1) for p in pos[:-1]) + (slice(None),))
        else:
            idxs.append(None)
    return idxs, tuple(range(n - 1))


def elementwise_restrict(pos, shapes, attrs):
    return [bcast_index(pos, s) for s in shapes], pin_all(pos)


def same_shape(shapes, attrs):
    return shapes[0]


# The op definitions register themselves on import; importing them here makes ``OPS`` complete for
# anyone who imports this module.
from protocol.repops import linalg, nn, optim  # noqa: E402, F401

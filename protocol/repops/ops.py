"""The RepOps operators: one kernel per op, run vectorised on torch or traced for one element.

Each op is an :class:`OpDef`: how its inputs are viewed (transposes and reshapes, no arithmetic),
the shape of its output, its kernel (written once against the backend interface of
:mod:`protocol.repops.backend`), and which input elements one output element can depend on (so a
scalar trace runs the kernel on a small slice instead of the whole tensor). Forward passes, explicit
backward passes and optimizer updates are all ops; docs/REPOPS.md lists the canonical scalar program
of every one. All reductions are Python loops over the reduction index, in increasing index order,
starting from +0.0 unless said otherwise.

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

from protocol.repops import fmath, isa
from protocol.repops.backend import TArr, TorchBackend, TraceBackend
from protocol.repops.isa import Instr
from protocol.repops.policy import MASK32, RepOpsError, bits_f32, f32_bits

Attrs = dict[str, Any]
Index = tuple[Any, ...]


# --------------------------------------------------------------------------------------------------
# view helpers: the same call on a torch tensor or on a numpy array of flat input indices
# --------------------------------------------------------------------------------------------------


def _swap(x: Any, a: int, b: int) -> Any:
    return np.swapaxes(x, a, b) if isinstance(x, np.ndarray) else x.transpose(a, b)


def _perm(x: Any, dims: Sequence[int]) -> Any:
    return x.transpose(tuple(dims)) if isinstance(x, np.ndarray) else x.permute(*dims)


@functools.lru_cache(maxsize=4096)
def _f32(x: float) -> np.float32:
    """x rounded to binary32 (cached: attribute constants recur every step)."""
    return bits_f32(f32_bits(x))


def pow_f32(base: float, n: int) -> float:
    """base**n in binary32 by square-and-multiply (bits of n from the lowest), every product rounded.

    Used for Adam's bias corrections: deterministic everywhere, unlike ``pow`` from a math library.
    """
    result = np.float32(1.0)
    b = _f32(base)
    while n > 0:
        if n & 1:
            result = np.float32(result * b)
        b = np.float32(b * b)
        n >>= 1
    return float(result)


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


def _register(op: OpDef) -> OpDef:
    OPS[op.name] = op
    return op


def _identity_views(xs: list[Any], attrs: Attrs) -> list[Any]:
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
    fn = op.torch_kernel or op.kernel
    out = fn(k, views, attrs)
    out = k.finish(out)
    if tuple(out.shape) != dom:
        out = out.expand(dom)
    out = out.contiguous()
    oshape = tuple(op.out_shape(shapes, attrs)) if op.out_shape else dom
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
# shared kernel pieces
# --------------------------------------------------------------------------------------------------


CHUNK = 64
"""Chunk length of reductions in ops that compute at least :data:`WIDE` output elements."""
WIDE = 16384


def chunking(n: int, m: int) -> tuple[int, int]:
    """How a reduction of n terms, in an op computing m output elements, is ordered: (c, L).

    Terms are cut into c chunks of L = ceil(n / c) consecutive terms (the last may be shorter). Each
    chunk is summed sequentially from +0 (acc <- acc + term), then the chunk sums are added left to
    right: ((s_0 + s_1) + s_2) + ... For wide ops (m >= WIDE, memory-bound when vectorised)
    c = ceil(n / CHUNK), so n <= 64 is the plain sequential sum; for narrow ops (launch-bound)
    c = ceil(sqrt(n)), which minimises the number of vectorised steps L + c - 1. The order depends
    only on the shapes, so it is the same on every device.
    """
    if n <= 1:
        return 1, max(n, 1)
    if m >= WIDE:
        c = -(-n // CHUNK)
    else:
        c = math.isqrt(n - 1) + 1
    return c, -(-n // c)


def _front(x: Any) -> Any:
    """Move the last axis to the front (a view)."""
    return x.permute(x.ndim - 1, *range(x.ndim - 1))


def _fixed_sum(k: Any, a: Any, b: Any = None) -> Any:
    """sum over the last axis of a (of a*b if b is given; a and b broadcast), in the :func:`chunking`
    order; products are rounded before they are added (FMULADD). Keeps the last axis with size 1.

    The running chunk sums are held with the chunk axis first, so each step is one contiguous
    elementwise pass over (chunks, *output).
    """
    n = a.shape[-1]
    c, length = chunking(n, k.out_numel)
    af = k.layout(_front(a))
    bf = None if b is None else k.layout(_front(b))
    acc: Any = None
    for j in range(length):
        aj = af[j::length]
        bj = None if bf is None else bf[j::length]
        if acc is None:
            acc = k.add(k.const(0.0), aj) if bj is None else k.muladd(k.const(0.0), aj, bj)
        else:
            acc = k.accumulate(acc, aj, bj, aj.shape[0])
    total = acc[0]
    for p in range(1, c):
        total = k.add(total, acc[p])
    return total.unsqueeze(-1)


def _dot(k: Any, a: Any, b: Any) -> Any:
    """sum_t a[..., i, t] * b[..., t, j] over t (a (..., M, K), b (..., K, N)) in the chunked order."""
    return _fixed_sum(k, a.unsqueeze(-2), b.transpose(-1, -2).unsqueeze(-3))[..., 0]


def _row_max(k: Any, x: Any) -> Any:
    """max over the last axis (kept, size 1) as a pairwise tree: each level replaces the values
    (v_0, v_1, v_2, ...) by (FMAX(v_0, v_1), FMAX(v_2, v_3), ...), an odd last value carried over
    unchanged, until one is left. FMAX keeps its left operand on ties, so without NaNs the result is
    the leftmost maximal element, exactly as a left-to-right scan would give."""
    m = x
    n = x.shape[-1]
    while n > 1:
        half = n // 2
        pairs = k.fmax(m[..., 0 : 2 * half : 2], m[..., 1 : 2 * half : 2])
        m = k.cat([pairs, m[..., n - 1 : n]], -1) if n % 2 else pairs
        n = half + n % 2
    return m


def _row_sum(k: Any, x: Any) -> Any:
    """sum over the last axis (kept, size 1) in the chunked order."""
    return _fixed_sum(k, x)


def _softmax_rows(k: Any, x: Any) -> tuple[Any, Any, Any]:
    """(m, e, s): row max, e = exp(x - m), s = row sum of e."""
    m = _row_max(k, x)
    e = fmath.exp(k, k.sub(x, m))
    return m, e, _row_sum(k, e)


def _pin_all(pos: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(range(len(pos)))


def _bcast_index(pos: tuple[int, ...], shape: tuple[int, ...]) -> Index:
    """Index (keeping dims) of the element of a view of ``shape`` broadcast against domain pos."""
    off = len(pos) - len(shape)
    return tuple(
        slice(0, 1) if s == 1 else slice(pos[off + d], pos[off + d] + 1) for d, s in enumerate(shape)
    )


def _rows_restrict(pos: tuple[int, ...], shapes: list[tuple[int, ...]], attrs: Attrs):
    """Row ops: pin every domain dim but the last; inputs of the domain's rank are cut to the row."""
    n = len(pos)
    idxs: list[Index | None] = []
    for s in shapes:
        if len(s) == n:
            idxs.append(tuple(slice(p, p + 1) for p in pos[:-1]) + (slice(None),))
        else:
            idxs.append(None)
    return idxs, tuple(range(n - 1))


def _elementwise_restrict(pos, shapes, attrs):
    return [_bcast_index(pos, s) for s in shapes], _pin_all(pos)


def _same_shape(shapes, attrs):
    return shapes[0]


# --------------------------------------------------------------------------------------------------
# matmul / linear / reductions
# --------------------------------------------------------------------------------------------------


def _matmul_views(xs, attrs):
    a, b = xs
    if attrs.get("ta"):
        a = _swap(a, -1, -2)
    if attrs.get("tb"):
        b = _swap(b, -1, -2)
    return [a, b]


def _matmul_domain(shapes, attrs):
    a, b = shapes
    if len(a) < 2 or a[:-2] != b[:-2] or a[-1] != b[-2] or a[-1] < 1:
        raise RepOpsError(f"matmul: incompatible shapes {a} @ {b} (after transposes {attrs})")
    return a[:-1] + (b[-1],)


def _matmul_restrict(pos, shapes, attrs):
    lead = tuple(slice(p, p + 1) for p in pos[:-2])
    i, j = pos[-2], pos[-1]
    return [lead + (slice(i, i + 1), slice(None)), lead + (slice(None), slice(j, j + 1))], _pin_all(pos)


_register(OpDef(
    "matmul", 2, (), _matmul_views, _matmul_domain,
    kernel=lambda k, v, a: _dot(k, v[0], v[1]),
    restrict=_matmul_restrict,
))  # fmt: skip


def _linear_views(xs, attrs):
    out = [xs[0], _swap(xs[1], -1, -2)]
    return out + list(xs[2:])


def _linear_domain(shapes, attrs):
    x, wt = shapes[0], shapes[1]
    if len(x) != 2 or len(wt) != 2 or x[1] != wt[0] or x[1] < 1:
        raise RepOpsError(f"linear: x {x} and weight {wt[::-1]} are incompatible (want x (R, K), w (N, K))")
    if len(shapes) == 3 and shapes[2] != (wt[1],):
        raise RepOpsError(f"linear: bias shape {shapes[2]} should be ({wt[1]},)")
    return (x[0], wt[1])


def _linear_kernel(k, v, attrs):
    acc = _dot(k, v[0], v[1])
    return k.add(acc, v[2]) if len(v) == 3 else acc


def _linear_restrict(pos, shapes, attrs):
    i, j = pos
    idx: list[Index | None] = [(slice(i, i + 1), slice(None)), (slice(None), slice(j, j + 1))]
    if len(shapes) == 3:
        idx.append((slice(j, j + 1),))
    return idx, (0, 1)


_register(OpDef("linear", 3, (), _linear_views, _linear_domain, _linear_kernel, _linear_restrict))
_register(OpDef("linear_nobias", 2, (), _linear_views, _linear_domain, _linear_kernel, _linear_restrict))


def _sum_rows_domain(shapes, attrs):
    if len(shapes[0]) != 2:
        raise RepOpsError(f"sum_rows: want a 2-D input, got {shapes[0]}")
    return (shapes[0][1],)


def _sum_rows_kernel(k, v, attrs):
    return _fixed_sum(k, v[0].transpose(0, 1))[..., 0]


_register(OpDef(
    "sum_rows", 1, (), _identity_views, _sum_rows_domain, _sum_rows_kernel,
    restrict=lambda pos, s, a: ([(slice(None), slice(pos[0], pos[0] + 1))], (0,)),
))  # fmt: skip


def _mean_kernel(k, v, attrs):
    x = v[0].reshape(-1)
    return k.div(_fixed_sum(k, x)[0], k.const(float(x.shape[0])))


_register(OpDef(
    "mean", 1, (), _identity_views, lambda s, a: (), _mean_kernel,
    restrict=lambda pos, s, a: ([None], ()),
))  # fmt: skip


# --------------------------------------------------------------------------------------------------
# elementwise
# --------------------------------------------------------------------------------------------------


def _bin_domain(shapes, attrs):
    a, b = shapes
    if len(b) > len(a) or any(sb not in (1, sa) for sa, sb in zip(a[len(a) - len(b) :], b, strict=True)):
        raise RepOpsError(f"second operand of shape {b} does not broadcast to {a}")
    return a


for _name, _fn in (("add", "add"), ("sub", "sub"), ("mul", "mul")):
    _register(OpDef(
        _name, 2, (), _identity_views, _bin_domain,
        kernel=(lambda f: lambda k, v, a: getattr(k, f)(v[0], v[1]))(_fn),
        restrict=_elementwise_restrict,
    ))  # fmt: skip

_register(OpDef(
    "scale", 1, (), _identity_views, _same_shape,
    kernel=lambda k, v, a: k.mul(v[0], k.const(a["c"])),
    restrict=_elementwise_restrict,
))  # fmt: skip

_register(OpDef(
    "relu", 1, (), _identity_views, _same_shape,
    kernel=lambda k, v, a: k.fmax(v[0], k.const(0.0)),
    restrict=_elementwise_restrict,
))  # fmt: skip

_register(OpDef(
    "relu_backward", 2, (), _identity_views, _same_shape,
    kernel=lambda k, v, a: k.select(k.lt(k.const(0.0), v[0]), v[1], k.const(0.0)),
    restrict=_elementwise_restrict,
))  # fmt: skip

GELU_C = 0.044715
GELU_K = 0.7978845608028654  # sqrt(2/pi)


def _gelu_parts(k, x):
    """(x2, e, s): x2 = x*x, u = sqrt(2/pi) * (x + 0.044715*x^3), e = exp(-2u), s = 1 / (1 + e).

    0.5 * (1 + tanh(u)) = 1 / (1 + exp(-2u)), so GELU's tanh form is x * s: one exp, no branches, no
    cancellation (1 + e >= 1), and exactly 0 * sign for very negative x (e = inf).
    """
    x2 = k.mul(x, x)
    inner = k.muladd(x, k.const(GELU_C), k.mul(x2, x))  # x + c*x^3
    e = fmath.exp(k, k.mul(k.const(-2.0 * GELU_K), inner))
    return x2, e, k.div(k.const(1.0), k.add(k.const(1.0), e))


def _gelu_kernel(k, v, attrs):
    x = v[0]
    _, _, s = _gelu_parts(k, x)
    return k.mul(x, s)


def _gelu_backward_kernel(k, v, attrs):
    """dy * (s + x * (2 * s * (min(e, 2^100) * s)) * u'), u' = sqrt(2/pi) * (1 + 3c x^2).

    e*s is 1 - s without cancellation; e is capped so that e = inf, s = 0 gives 0 rather than NaN.
    """
    x, dy = v
    x2, e, s = _gelu_parts(k, x)
    du = k.mul(k.const(GELU_K), k.muladd(k.const(1.0), k.const(3.0 * GELU_C), x2))
    ds = k.mul(k.mul(k.const(2.0), s), k.mul(k.fmin(e, k.const(2.0**100)), s))
    return k.mul(dy, k.add(s, k.mul(k.mul(x, ds), du)))


_register(OpDef("gelu", 1, (), _identity_views, _same_shape, _gelu_kernel, _elementwise_restrict))
_register(
    OpDef("gelu_backward", 2, (), _identity_views, _same_shape, _gelu_backward_kernel, _elementwise_restrict)
)


# --------------------------------------------------------------------------------------------------
# softmax family
# --------------------------------------------------------------------------------------------------


def _softmax_kernel(k, v, attrs):
    _, e, s = _softmax_rows(k, v[0])
    return k.div(e, s)


def _log_softmax_kernel(k, v, attrs):
    x = v[0]
    m, _, s = _softmax_rows(k, x)
    return k.sub(k.sub(x, m), fmath.log(k, s))


def _softmax_backward_kernel(k, v, attrs):
    p, dp = v
    return k.mul(p, k.sub(dp, _fixed_sum(k, dp, p)))


_register(OpDef("softmax", 1, (), _identity_views, _same_shape, _softmax_kernel, _rows_restrict))
_register(OpDef("log_softmax", 1, (), _identity_views, _same_shape, _log_softmax_kernel, _rows_restrict))
_register(
    OpDef("softmax_backward", 2, (), _identity_views, _same_shape, _softmax_backward_kernel, _rows_restrict)
)


def _log_softmax_backward_kernel(k, v, attrs):
    logp, dy = v
    return k.sub(dy, k.mul(fmath.exp(k, logp), _row_sum(k, dy)))


_register(OpDef(
    "log_softmax_backward", 2, (), _identity_views, _same_shape, _log_softmax_backward_kernel, _rows_restrict,
))  # fmt: skip


def _ce_domain(shapes, attrs):
    z, t = shapes
    if len(z) != 2 or t != (z[0],):
        raise RepOpsError(f"cross_entropy: logits {z} and targets {t} (want (B, V) and (B,))")
    return (z[0],)


def _ce_kernel(k, v, attrs):
    z, tgt = v
    n_cls = z.shape[-1]
    m, _, s = _softmax_rows(k, z)
    lse = k.add(m, fmath.log(k, s))
    idx = k.iadd(k.imul(k.static_int(k.coords[0].reshape(-1, 1)), k.imm(n_cls)), tgt.reshape(-1, 1))
    picked = k.load(0, idx)
    return k.sub(lse, picked).reshape(-1)


_register(OpDef(
    "cross_entropy", 2, (1,), _identity_views, _ce_domain, _ce_kernel,
    restrict=lambda pos, s, a: ([(slice(pos[0], pos[0] + 1), slice(None)), (slice(pos[0], pos[0] + 1),)], (0,)),
))  # fmt: skip


def _ce_bwd_domain(shapes, attrs):
    z, t, g = shapes
    _ce_domain([z, t], attrs)
    if g != ():
        raise RepOpsError(f"cross_entropy_backward: dloss must be a scalar tensor, got shape {g}")
    return z


def _ce_bwd_kernel(k, v, attrs):
    z, tgt, dloss = v
    g = k.div(dloss, k.const(float(attrs["batch"])))
    _, e, s = _softmax_rows(k, z)
    p = k.div(e, s)
    hit = k.ieq(tgt.reshape(-1, 1), k.static_int(k.coords[1]))
    return k.mul(k.select(hit, k.sub(p, k.const(1.0)), p), g)


_register(OpDef(
    "cross_entropy_backward", 3, (1,), _identity_views, _ce_bwd_domain, _ce_bwd_kernel,
    restrict=lambda pos, s, a: (
        [(slice(pos[0], pos[0] + 1), slice(None)), (slice(pos[0], pos[0] + 1),), None], (0,)
    ),
))  # fmt: skip


# --------------------------------------------------------------------------------------------------
# optimizers
# --------------------------------------------------------------------------------------------------


def _sgd_kernel(k, v, attrs):
    p, g = v
    return k.sub(p, k.mul(k.const(attrs["lr"]), g))


def _adam_m_kernel(k, v, attrs):
    m, g = v
    b1 = _f32(attrs["beta1"])
    return k.add(k.mul(k.const(b1), m), k.mul(k.const(float(np.float32(1.0) - b1)), g))


def _adam_v_kernel(k, v, attrs):
    vv, g = v
    b2 = _f32(attrs["beta2"])
    return k.add(k.mul(k.const(b2), vv), k.mul(k.const(float(np.float32(1.0) - b2)), k.mul(g, g)))


def adam_constants(attrs: Attrs) -> dict[str, float]:
    """The binary32 constants of the AdamW parameter update for step ``attrs['step']`` (1-based)."""
    t = int(attrs["step"])
    if t < 1:
        raise RepOpsError(f"adamw: step counts from 1, got {t}")
    one = np.float32(1.0)
    bc1 = float(one - np.float32(pow_f32(attrs["beta1"], t)))
    bc2 = float(one - np.float32(pow_f32(attrs["beta2"], t)))
    lrwd = float(_f32(attrs["lr"]) * _f32(attrs.get("weight_decay", 0.0)))
    return {"bc1": bc1, "bc2": bc2, "lrwd": lrwd}


def _adamw_kernel(k, v, attrs):
    p, m, vv = v
    c = adam_constants(attrs)
    mhat = k.div(m, k.const(c["bc1"]))
    vhat = k.div(vv, k.const(c["bc2"]))
    upd = k.div(mhat, k.add(fmath.sqrt(k, vhat), k.const(attrs["eps"])))
    decayed = k.sub(p, k.mul(k.const(c["lrwd"]), p))
    return k.sub(decayed, k.mul(k.const(attrs["lr"]), upd))


def _all_same_domain(shapes, attrs):
    for s in shapes[1:]:
        if s != shapes[0]:
            raise RepOpsError(f"shapes differ: {shapes}")
    return shapes[0]


_register(OpDef("sgd", 2, (), _identity_views, _all_same_domain, _sgd_kernel, _elementwise_restrict))
_register(OpDef("adam_m", 2, (), _identity_views, _all_same_domain, _adam_m_kernel, _elementwise_restrict))
_register(OpDef("adam_v", 2, (), _identity_views, _all_same_domain, _adam_v_kernel, _elementwise_restrict))
_register(OpDef("adamw", 3, (), _identity_views, _all_same_domain, _adamw_kernel, _elementwise_restrict))


def _sqrt_kernel(k, v, attrs):
    return fmath.sqrt(k, v[0])


for _fname in ("sqrt", "exp", "log", "tanh", "erf"):
    _register(OpDef(
        _fname, 1, (), _identity_views, _same_shape,
        kernel=(lambda f: lambda k, v, a: getattr(fmath, f)(k, v[0]))(_fname),
        restrict=_elementwise_restrict,
    ))  # fmt: skip


# --------------------------------------------------------------------------------------------------
# layer norm (over the last dim of a 2-D input)
# --------------------------------------------------------------------------------------------------


def _ln_check(shapes, attrs):
    x = shapes[0]
    if len(x) != 2:
        raise RepOpsError(f"layer norm takes a 2-D input (rows, features), got {x}")
    return x


def _ln_stats_kernel(k, v, attrs):
    x = v[0]
    n = k.const(float(x.shape[-1]))
    mu = k.div(_row_sum(k, x), n)
    d = k.sub(x, mu)
    var = k.div(_fixed_sum(k, d, d), n)
    rstd = k.div(k.const(1.0), fmath.sqrt(k, k.add(var, k.const(attrs["eps"]))))
    return k.cat([mu, rstd], -1)


_register(OpDef(
    "layernorm_stats", 1, (), _identity_views,
    domain=lambda s, a: (_ln_check(s, a)[0], 2),
    kernel=_ln_stats_kernel,
    restrict=lambda pos, s, a: ([(slice(pos[0], pos[0] + 1), slice(None))], (0,)),
))  # fmt: skip


def _xhat(k, x, stats):
    return k.mul(k.sub(x, stats[..., 0:1]), stats[..., 1:2])


def _ln_apply_kernel(k, v, attrs):
    x, stats, gamma, beta = v
    return k.add(k.mul(_xhat(k, x, stats), gamma), beta)


def _ln_apply_restrict(pos, shapes, attrs):
    r, j = pos
    rows = slice(r, r + 1)
    col = slice(j, j + 1)
    return [(rows, col), (rows, slice(None)), (col,), (col,)], (0, 1)


_register(OpDef(
    "layernorm_apply", 4, (), _identity_views, lambda s, a: _ln_check(s, a), _ln_apply_kernel, _ln_apply_restrict,
))  # fmt: skip


def _ln_backward_kernel(k, v, attrs):
    x, stats, gamma, dy = v
    n = k.const(float(x.shape[-1]))
    xhat = _xhat(k, x, stats)
    dxhat = k.mul(dy, gamma)
    a = k.div(_row_sum(k, dxhat), n)
    b = k.div(_fixed_sum(k, dxhat, xhat), n)
    return k.mul(k.sub(k.sub(dxhat, a), k.mul(xhat, b)), stats[..., 1:2])


_register(OpDef(
    "layernorm_backward", 4, (), _identity_views, lambda s, a: _ln_check(s, a), _ln_backward_kernel, _rows_restrict,
))  # fmt: skip


def _ln_dgamma_kernel(k, v, attrs):
    x, stats, dy = v
    xhat = _xhat(k, x, stats)
    return _fixed_sum(k, dy.transpose(0, 1), xhat.transpose(0, 1))[..., 0]


_register(OpDef(
    "layernorm_dgamma", 3, (), _identity_views,
    domain=lambda s, a: (_ln_check(s, a)[1],),
    kernel=_ln_dgamma_kernel,
    restrict=lambda pos, s, a: (
        [(slice(None), slice(pos[0], pos[0] + 1)), None, (slice(None), slice(pos[0], pos[0] + 1))], (0,)
    ),
))  # fmt: skip


# --------------------------------------------------------------------------------------------------
# embedding
# --------------------------------------------------------------------------------------------------


def _emb_domain(shapes, attrs):
    ids, w = shapes
    if len(ids) != 1 or len(w) != 2:
        raise RepOpsError(f"embedding: ids {ids} must be 1-D and the table {w} 2-D")
    return (ids[0], w[1])


def _emb_kernel(k, v, attrs):
    ids, w = v
    n_rows, dim = w.shape
    if not k.tracing and ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n_rows):
        raise RepOpsError(
            f"embedding: ids must lie in [0, {n_rows}), got [{int(ids.min())}, {int(ids.max())}]"
        )
    idx = k.iadd(k.imul(ids.reshape(-1, 1), k.imm(dim)), k.static_int(k.coords[1]))
    return k.load(1, idx)


_register(OpDef(
    "embedding", 2, (0,), _identity_views, _emb_domain, _emb_kernel,
    restrict=lambda pos, s, a: ([(slice(pos[0], pos[0] + 1),), (slice(0, 1), slice(None))], (0, 1)),
))  # fmt: skip


def _emb_bwd_domain(shapes, attrs):
    ids, dy = shapes
    if len(ids) != 1 or len(dy) != 2 or dy[0] != ids[0]:
        raise RepOpsError(f"embedding_backward: ids {ids} and dy {dy} (want (P,) and (P, D))")
    return (int(attrs["num_embeddings"]), dy[1])


def _emb_bwd_kernel(k, v, attrs):
    """acc <- SELECT(ids[p] == row, acc + dy[p, j], acc) for p ascending, from +0."""
    ids, dy = v
    row = k.static_int(k.coords[0])
    acc = k.const(0.0)
    for p in range(dy.shape[0]):
        acc = k.select(k.ieq(ids[p], row), k.add(acc, dy[p : p + 1, :]), acc)
    return acc


def _emb_bwd_torch(k, v, attrs):
    """The same sums, skipping the SELECTs that keep acc (exact identities): for each table row, the
    dy rows of its occurrences are added in increasing position order, one occurrence rank at a time."""
    ids, dy = v
    n_rows = int(attrs["num_embeddings"])
    dim = dy.shape[1]
    acc = torch.zeros((n_rows, dim), dtype=torch.float32, device=dy.device)
    if ids.numel() == 0:
        return acc
    if int(ids.min()) < 0 or int(ids.max()) >= n_rows:
        raise RepOpsError(f"embedding_backward: ids must lie in [0, {n_rows})")
    ids = ids.to(torch.int64)
    sorted_ids, order = torch.sort(ids, stable=True)
    counts = torch.bincount(ids, minlength=n_rows)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(ids.numel(), device=ids.device) - starts[sorted_ids]
    depth = int(counts.max())
    table = torch.full((n_rows, depth), -1, dtype=torch.int64, device=ids.device)
    table[sorted_ids, rank] = order
    valid = table >= 0
    table = table.clamp(min=0)
    for r in range(depth):
        g = dy.index_select(0, table[:, r])
        acc = torch.where(valid[:, r : r + 1], acc + g, acc)
    return acc


_register(OpDef(
    "embedding_backward", 2, (0,), _identity_views, _emb_bwd_domain, _emb_bwd_kernel,
    restrict=lambda pos, s, a: ([None, (slice(None), slice(pos[1], pos[1] + 1))], (0, 1)),
    torch_kernel=_emb_bwd_torch,
))  # fmt: skip


# --------------------------------------------------------------------------------------------------
# causal self-attention (qkv packed as (B*T, 3*D): [q heads | k heads | v heads], D = H*Dh)
# --------------------------------------------------------------------------------------------------


def _qkv5(x, attrs):
    b, h = int(attrs["batch"]), int(attrs["n_head"])
    rows, cols = x.shape
    if rows % b or cols % (3 * h):
        raise RepOpsError(f"qkv of shape {(rows, cols)} does not split into batch {b}, 3 x {h} heads")
    return x.reshape(b, rows // b, 3, h, cols // (3 * h))


def _heads(x, attrs):
    """(B*T, D) -> (B, T, H, Dh)."""
    b, h = int(attrs["batch"]), int(attrs["n_head"])
    rows, cols = x.shape
    return x.reshape(b, rows // b, h, cols // h)


def attn_scale(head_dim: int) -> float:
    """1/sqrt(head_dim) rounded to binary32 (Python's correctly rounded sqrt, then one division)."""
    return float(_f32(1.0 / math.sqrt(head_dim)))


def _scores_views(xs, attrs):
    q5 = _qkv5(xs[0], attrs)
    return [_perm(q5[:, :, 0], (0, 2, 1, 3)), _perm(q5[:, :, 1], (0, 2, 3, 1))]


def _scores_kernel(k, v, attrs):
    q, kt = v
    s = k.mul(_dot(k, q, kt), k.const(attn_scale(k.view_shapes[0][-1])))
    causal = k.static_cond(k.coords[3] <= k.coords[2])
    return k.select(causal, s, k.neg(fmath._inf(k)))


_register(OpDef(
    "attn_scores", 1, (), _scores_views, _matmul_domain, _scores_kernel, _matmul_restrict, view_slots=(0, 0),
))  # fmt: skip


def _apply_views(xs, attrs):
    p, qkv = xs
    return [_perm(p, (0, 2, 1, 3)), _qkv5(qkv, attrs)[:, :, 2]]


def _apply_domain(shapes, attrs):
    a, vv = shapes
    if a[:3] != (vv[0], vv[0 + 1], vv[2]) or a[3] != vv[1]:
        raise RepOpsError(f"attn_apply: probabilities {a} (as B,T,H,S) and values {vv} disagree")
    return vv


def _sum_lane(k, a, b):
    """out[b, i, h, d] = sum_t a[b, i, h, t] * m[b, t, h, d] (a (B, I, H, T), m (B, T, H, Dh))."""
    return _fixed_sum(k, a.unsqueeze(-2), _perm(b, (0, 2, 3, 1)).unsqueeze(1))[..., 0]


def _apply_kernel(k, v, attrs):
    return _sum_lane(k, v[0], v[1])


def _apply_restrict(pos, shapes, attrs):
    b, t, h, d = pos
    return [
        (slice(b, b + 1), slice(t, t + 1), slice(h, h + 1), slice(None)),
        (slice(b, b + 1), slice(None), slice(h, h + 1), slice(d, d + 1)),
    ], (0, 1, 2, 3)


_register(OpDef(
    "attn_apply", 2, (), _apply_views, _apply_domain, _apply_kernel, _apply_restrict,
    out_shape=lambda s, a: (s[1][0] * s[1][1], s[1][2] * s[1][3]),
))  # fmt: skip


def _dprobs_views(xs, attrs):
    dy, qkv = xs
    return [_perm(_heads(dy, attrs), (0, 2, 1, 3)), _perm(_qkv5(qkv, attrs)[:, :, 2], (0, 2, 3, 1))]


_register(OpDef(
    "attn_dprobs", 2, (), _dprobs_views, _matmul_domain,
    kernel=lambda k, v, a: _dot(k, v[0], v[1]),
    restrict=_matmul_restrict,
))  # fmt: skip


def _dqkv_views(xs, attrs):
    ds, qkv, p, dy = xs
    q5 = _qkv5(qkv, attrs)
    return [
        _perm(ds, (0, 2, 1, 3)),  # [b, t, h, s] = dS[b, h, t, s]
        q5[:, :, 1],  # k as (B, S, H, Dh)
        _perm(ds, (0, 3, 1, 2)),  # [b, s, h, t] = dS[b, h, t, s]
        q5[:, :, 0],  # q as (B, T, H, Dh)
        _perm(p, (0, 3, 1, 2)),  # [b, s, h, t] = P[b, h, t, s]
        _heads(dy, attrs),  # dy as (B, T, H, Dh)
    ]


def _dqkv_domain(shapes, attrs):
    kk = shapes[1]
    return (kk[0], kk[1], 3, kk[2], kk[3])


def _dqkv_kernel(k, v, attrs):
    a1, kk, a2, q, a3, dy = v
    sc = k.const(attn_scale(k.view_shapes[1][-1]))
    dq = k.mul(_sum_lane(k, a1, kk), sc)
    dk = k.mul(_sum_lane(k, a2, q), sc)
    dv = _sum_lane(k, a3, dy)
    return k.cat([dq.unsqueeze(2), dk.unsqueeze(2), dv.unsqueeze(2)], 2)


def _dqkv_restrict(pos, shapes, attrs):
    b, t, _, h, d = pos
    row = (slice(b, b + 1), slice(t, t + 1), slice(h, h + 1), slice(None))
    col = (slice(b, b + 1), slice(None), slice(h, h + 1), slice(d, d + 1))
    return [row, col, row, col, row, col], (0, 1, 3, 4)


_register(OpDef(
    "attn_dqkv", 4, (), _dqkv_views, _dqkv_domain, _dqkv_kernel, _dqkv_restrict,
    out_shape=lambda s, a: (s[1][0] * s[1][1], 3 * s[1][2] * s[1][3]),
    view_slots=(0, 1, 0, 1, 2, 3),
))  # fmt: skip

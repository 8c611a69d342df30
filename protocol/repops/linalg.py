"""Op definitions: matmul, linear, sums and means, elementwise arithmetic, activations, and the
elementary functions as ops. Each ``register(OpDef(...))`` defines one op (docs/REPOPS.md §6)."""

from __future__ import annotations

from protocol.repops import fmath
from protocol.repops.ops import (
    Index,
    OpDef,
    elementwise_restrict,
    identity_views,
    pin_all,
    register,
    same_shape,
    swap,
)
from protocol.repops.policy import RepOpsError
from protocol.repops.reduce import dot, fixed_sum

# --------------------------------------------------------------------------------------------------
# matmul / linear / reductions
# --------------------------------------------------------------------------------------------------


def _matmul_views(xs, attrs):
    a, b = xs
    if attrs.get("ta"):
        a = swap(a, -1, -2)
    if attrs.get("tb"):
        b = swap(b, -1, -2)
    return [a, b]


def matmul_domain(shapes, attrs):
    a, b = shapes
    if len(a) < 2 or a[:-2] != b[:-2] or a[-1] != b[-2] or a[-1] < 1:
        raise RepOpsError(f"matmul: incompatible shapes {a} @ {b} (after transposes {attrs})")
    return a[:-1] + (b[-1],)


def matmul_restrict(pos, shapes, attrs):
    lead = tuple(slice(p, p + 1) for p in pos[:-2])
    i, j = pos[-2], pos[-1]
    return [lead + (slice(i, i + 1), slice(None)), lead + (slice(None), slice(j, j + 1))], pin_all(pos)


register(OpDef(
    "matmul", 2, (), _matmul_views, matmul_domain,
    kernel=lambda k, v, a: dot(k, v[0], v[1]),
    restrict=matmul_restrict,
))  # fmt: skip


def _linear_views(xs, attrs):
    out = [xs[0], swap(xs[1], -1, -2)]
    return out + list(xs[2:])


def _linear_domain(shapes, attrs):
    x, wt = shapes[0], shapes[1]
    if len(x) != 2 or len(wt) != 2 or x[1] != wt[0] or x[1] < 1:
        raise RepOpsError(f"linear: x {x} and weight {wt[::-1]} are incompatible (want x (R, K), w (N, K))")
    if len(shapes) == 3 and shapes[2] != (wt[1],):
        raise RepOpsError(f"linear: bias shape {shapes[2]} should be ({wt[1]},)")
    return (x[0], wt[1])


def _linear_kernel(k, v, attrs):
    acc = dot(k, v[0], v[1])
    return k.add(acc, v[2]) if len(v) == 3 else acc


def _linear_restrict(pos, shapes, attrs):
    i, j = pos
    idx: list[Index | None] = [(slice(i, i + 1), slice(None)), (slice(None), slice(j, j + 1))]
    if len(shapes) == 3:
        idx.append((slice(j, j + 1),))
    return idx, (0, 1)


register(OpDef("linear", 3, (), _linear_views, _linear_domain, _linear_kernel, _linear_restrict))
register(OpDef("linear_nobias", 2, (), _linear_views, _linear_domain, _linear_kernel, _linear_restrict))


def _sum_rows_domain(shapes, attrs):
    if len(shapes[0]) != 2:
        raise RepOpsError(f"sum_rows: want a 2-D input, got {shapes[0]}")
    return (shapes[0][1],)


def _sum_rows_kernel(k, v, attrs):
    return fixed_sum(k, v[0].transpose(0, 1))[..., 0]


register(OpDef(
    "sum_rows", 1, (), identity_views, _sum_rows_domain, _sum_rows_kernel,
    restrict=lambda pos, s, a: ([(slice(None), slice(pos[0], pos[0] + 1))], (0,)),
))  # fmt: skip


def _mean_kernel(k, v, attrs):
    x = v[0].reshape(-1)
    return k.div(fixed_sum(k, x)[0], k.const(float(x.shape[0])))


register(OpDef(
    "mean", 1, (), identity_views, lambda s, a: (), _mean_kernel,
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
    register(OpDef(
        _name, 2, (), identity_views, _bin_domain,
        kernel=(lambda f: lambda k, v, a: getattr(k, f)(v[0], v[1]))(_fn),
        restrict=elementwise_restrict,
    ))  # fmt: skip

register(OpDef(
    "scale", 1, (), identity_views, same_shape,
    kernel=lambda k, v, a: k.mul(v[0], k.const(a["c"])),
    restrict=elementwise_restrict,
))  # fmt: skip

register(OpDef(
    "relu", 1, (), identity_views, same_shape,
    kernel=lambda k, v, a: k.fmax(v[0], k.const(0.0)),
    restrict=elementwise_restrict,
))  # fmt: skip

register(OpDef(
    "relu_backward", 2, (), identity_views, same_shape,
    kernel=lambda k, v, a: k.select(k.lt(k.const(0.0), v[0]), v[1], k.const(0.0)),
    restrict=elementwise_restrict,
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


register(OpDef("gelu", 1, (), identity_views, same_shape, _gelu_kernel, elementwise_restrict))
register(
    OpDef("gelu_backward", 2, (), identity_views, same_shape, _gelu_backward_kernel, elementwise_restrict)
)


for _fname in ("sqrt", "exp", "log", "tanh", "erf"):
    register(OpDef(
        _fname, 1, (), identity_views, same_shape,
        kernel=(lambda f: lambda k, v, a: getattr(fmath, f)(k, v[0]))(_fname),
        restrict=elementwise_restrict,
    ))  # fmt: skip

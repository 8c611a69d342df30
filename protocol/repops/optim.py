"""Op definitions: optimizer updates (SGD, AdamW). Each ``register(OpDef(...))`` defines one op."""

from __future__ import annotations

import numpy as np

from protocol.repops import fmath
from protocol.repops.ops import (
    Attrs,
    OpDef,
    elementwise_restrict,
    f32,
    identity_views,
    register,
)
from protocol.repops.policy import RepOpsError

# --------------------------------------------------------------------------------------------------
# optimizers
# --------------------------------------------------------------------------------------------------


def _sgd_kernel(k, v, attrs):
    p, g = v
    return k.sub(p, k.mul(k.step_const("sgd.lr", attrs["lr"]), g))


def _adam_m_kernel(k, v, attrs):
    m, g = v
    b1 = f32(attrs["beta1"])
    return k.add(k.mul(k.const(b1), m), k.mul(k.const(float(np.float32(1.0) - b1)), g))


def _adam_v_kernel(k, v, attrs):
    vv, g = v
    b2 = f32(attrs["beta2"])
    return k.add(k.mul(k.const(b2), vv), k.mul(k.const(float(np.float32(1.0) - b2)), k.mul(g, g)))


def pow_f32(base: float, n: int) -> float:
    """base**n in binary32 by square-and-multiply (bits of n from the lowest), every product rounded.

    Used for Adam's bias corrections: deterministic everywhere, unlike ``pow`` from a math library.
    """
    result = np.float32(1.0)
    b = f32(base)
    while n > 0:
        if n & 1:
            result = np.float32(result * b)
        b = np.float32(b * b)
        n >>= 1
    return float(result)


def adam_constants(attrs: Attrs) -> dict[str, float]:
    """The binary32 constants of the AdamW parameter update for step ``attrs['step']`` (1-based)."""
    t = int(attrs["step"])
    if t < 1:
        raise RepOpsError(f"adamw: step counts from 1, got {t}")
    one = np.float32(1.0)
    bc1 = float(one - np.float32(pow_f32(attrs["beta1"], t)))
    bc2 = float(one - np.float32(pow_f32(attrs["beta2"], t)))
    lrwd = float(f32(attrs["lr"]) * f32(attrs.get("weight_decay", 0.0)))
    return {"bc1": bc1, "bc2": bc2, "lrwd": lrwd}


def adamw_step_constants(attrs: Attrs) -> dict[str, float]:
    """The constants of the ``adamw`` update that change from step to step, by the names its kernel
    gives them (``k.step_const``): what a replayed CUDA graph must be given for step ``attrs['step']``."""
    c = adam_constants(attrs)
    return {"adamw.bc1": c["bc1"], "adamw.bc2": c["bc2"], "adamw.lrwd": c["lrwd"], "adamw.lr": attrs["lr"]}


def _adamw_kernel(k, v, attrs):
    p, m, vv = v
    c = adamw_step_constants(attrs)
    mhat = k.div(m, k.step_const("adamw.bc1", c["adamw.bc1"]))
    vhat = k.div(vv, k.step_const("adamw.bc2", c["adamw.bc2"]))
    upd = k.div(mhat, k.add(fmath.sqrt(k, vhat), k.const(attrs["eps"])))
    decayed = k.sub(p, k.mul(k.step_const("adamw.lrwd", c["adamw.lrwd"]), p))
    return k.sub(decayed, k.mul(k.step_const("adamw.lr", c["adamw.lr"]), upd))


def _all_same_domain(shapes, attrs):
    for s in shapes[1:]:
        if s != shapes[0]:
            raise RepOpsError(f"shapes differ: {shapes}")
    return shapes[0]


register(OpDef("sgd", 2, (), identity_views, _all_same_domain, _sgd_kernel, elementwise_restrict))
register(OpDef("adam_m", 2, (), identity_views, _all_same_domain, _adam_m_kernel, elementwise_restrict))
register(OpDef("adam_v", 2, (), identity_views, _all_same_domain, _adam_v_kernel, elementwise_restrict))
register(OpDef("adamw", 3, (), identity_views, _all_same_domain, _adamw_kernel, elementwise_restrict))

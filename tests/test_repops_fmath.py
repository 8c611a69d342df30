"""Elementary functions: accuracy against float64 over dense sweeps, special values, trace agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from protocol.repops import fmath, ops
from protocol.repops.backend import TorchBackend
from protocol.repops.policy import CANONICAL_NAN_BITS, f32_bits

# Worst case measured over these sweeps (docs/REPOPS.md records the same numbers); the bound
# asserted is the documented one.
ULP_BOUND = {"sqrt": 1.0, "exp": 1.5, "log": 1.0, "tanh": 2.0, "erf": 2.0}


def run(fn: str, x: np.ndarray) -> np.ndarray:
    k = TorchBackend(torch.device("cpu"), [], [])
    return getattr(fmath, fn)(k, torch.from_numpy(x)).numpy()


def ulp_error(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|y - ref| in units of the binary32 ulp at ref (ref in float64), for finite ref and y."""
    r32 = np.abs(ref).astype(np.float32)
    ulp = np.spacing(r32).astype(np.float64)
    ulp = np.maximum(ulp, 2.0**-149)
    return np.abs(y.astype(np.float64) - ref) / ulp


def sweep(fn: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = 400_000
    if fn == "exp":
        x = rng.uniform(-103.0, 88.7, n)
    elif fn in ("tanh", "erf"):
        x = np.concatenate([rng.uniform(-12, 12, n // 2), rng.uniform(-1, 1, n // 2)])
    else:  # positive floats over every binade, subnormals included
        bits = rng.integers(1, 0x7F800000, n, dtype=np.int64).astype(np.uint32)
        x = bits.view(np.float32).astype(np.float64)
    return x.astype(np.float32)


REFS = {
    "sqrt": np.sqrt,
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
    "erf": np.vectorize(math.erf, otypes=[float]),
}


@pytest.mark.parametrize("fn", list(REFS))
def test_accuracy_within_documented_ulps(fn: str) -> None:
    x = sweep(fn)
    y = run(fn, x)
    ref = REFS[fn](x.astype(np.float64))
    with np.errstate(over="ignore"):
        fits = np.abs(ref) < float(np.finfo(np.float32).max)
    err = ulp_error(y[fits], ref[fits])
    worst = float(err.max())
    assert worst <= ULP_BOUND[fn], f"{fn}: worst {worst:.3f} ulp at x={x[fits][err.argmax()]!r}"
    assert worst > 0.0  # the sweep really compared something


def bits_of(y: np.ndarray) -> list[int]:
    return [int(v) for v in y.view(np.uint32)]


INF, NAN = float("inf"), float("nan")


@pytest.mark.parametrize(
    ("fn", "x", "want"),
    [
        ("sqrt", 0.0, 0.0), ("sqrt", -0.0, -0.0), ("sqrt", INF, INF), ("sqrt", -1.0, NAN), ("sqrt", NAN, NAN),
        ("sqrt", -INF, NAN), ("sqrt", 4.0, 2.0), ("sqrt", 2.0**-148, 2.0**-74), ("sqrt", 2.0**-149, 2.0**-74.5),
        ("exp", 0.0, 1.0), ("exp", -0.0, 1.0), ("exp", -INF, 0.0), ("exp", INF, INF), ("exp", NAN, NAN),
        ("exp", 89.0, INF), ("exp", 88.72283, None), ("exp", -103.5, None),
        ("exp", -104.0, 0.0), ("exp", -87.3, None), ("exp", 1.0, None),
        ("log", 1.0, 0.0), ("log", 0.0, -INF), ("log", -0.0, -INF), ("log", -1.0, NAN), ("log", INF, INF),
        ("log", NAN, NAN), ("log", 2.0**-149, None), ("log", 3.4028235e38, None),
        ("tanh", 0.0, 0.0), ("tanh", -0.0, -0.0), ("tanh", INF, 1.0), ("tanh", -INF, -1.0), ("tanh", NAN, NAN),
        ("tanh", 20.0, 1.0), ("tanh", -0.5, None), ("tanh", 1e-30, None), ("tanh", 2.0**-140, 2.0**-140),
        ("erf", 0.0, 0.0), ("erf", -0.0, -0.0), ("erf", INF, 1.0), ("erf", -INF, -1.0), ("erf", NAN, NAN),
        ("erf", 3.95, 1.0), ("erf", 0.999, None), ("erf", 1.0, None), ("erf", -2.2, None), ("erf", 1e-30, None),
    ],
)  # fmt: skip
def test_special_values(fn: str, x: float, want: float | None) -> None:
    xa = np.array([x], dtype=np.float32)
    got = run(fn, xa)
    if want is None:  # a finite value: the float64 reference at the binary32 input
        want = float(REFS[fn](xa.astype(np.float64))[0])
    want32 = np.array([want], dtype=np.float32)
    if math.isnan(want):
        assert bits_of(got) == [CANONICAL_NAN_BITS]
    elif want == 0.0 or math.isinf(want):
        assert bits_of(got) == bits_of(want32)  # exact, sign included
    else:
        assert float(ulp_error(got, np.array([want]))[0]) <= ULP_BOUND[fn]
    # the traced scalar program computes the same bits
    t = torch.from_numpy(xa)
    tr = ops.trace(fn, [t], None, 0, expected=ops.compute(fn, [t]))
    assert tr.matches and tr.result == bits_of(got)[0]


@pytest.mark.parametrize("fn", list(REFS))
def test_trace_agrees_with_torch_on_edge_and_random_inputs(fn: str) -> None:
    rng = np.random.default_rng(7)
    edge = [
        0.0,
        -0.0,
        2.0**-149,
        -(2.0**-149),
        1.1754942e-38,
        1.0,
        -1.0,
        0.55,
        0.5499999,
        88.7,
        -103.9,
        1e30,
        -1e30,
        INF,
        -INF,
    ]
    x = np.concatenate([np.array(edge), rng.standard_normal(10) * 10]).astype(np.float32)
    t = torch.from_numpy(x)
    out = ops.compute(fn, [t])
    for e in range(len(x)):
        tr = ops.trace(fn, [t], None, e, expected=out)
        assert tr.matches, (fn, x[e], hex(tr.result), hex(tr.expected or 0))


def test_f32_constants_are_what_the_docs_say() -> None:
    assert f32_bits(math.log2(math.e)) == fmath.LOG2E
    assert f32_bits(math.sqrt(2.0)) == fmath.SQRT2
    hi = np.float32(np.array(fmath.EXP_LN2_HI, dtype=np.uint32).view(np.float32))
    assert int(hi.view(np.uint32)) & 0xFF == 0  # n * LN2_HI is exact for |n| < 2^8

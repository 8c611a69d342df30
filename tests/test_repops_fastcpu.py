"""The CPU fast path (protocol/repops/fastcpu.py) gives the torch kernels' bits, op by op.

Every op with a fast kernel is run twice on the same inputs, through the C++ loop and with the fast
path disabled (the vectorised torch kernel, which is the canonical scalar program by construction),
and the outputs must agree bit for bit: random values, and values built from zeros of both signs,
subnormals, +-inf, NaN, +-3e38 and ordinary numbers, at shapes that take every branch of
``reduce.chunking`` (narrow and wide ops, K below, at and above one chunk, a short last chunk) and the
C++ tiling (row counts not a multiple of 4, column counts above one 64-wide tile).
"""

from __future__ import annotations

import contextlib

import pytest
import torch

from protocol.repops import fastcpu, ops
from protocol.repops.reduce import WIDE, chunking

pytestmark = pytest.mark.skipif(not fastcpu.available(), reason="RepOps CPU fast path could not be built")

EDGE = torch.tensor(
    [0.0, -0.0, 1e-45, -1e-45, 1e-40, -3e-39, 1.1754942e-38, float("inf"), float("-inf"), float("nan"),
     3e38, -3e38, 1.0, -1.0, 0.5, 2.0, 1e-20, 88.7, -88.7, 104.0, -104.0, 20.0, -20.0, 1e10, -1e10],
    dtype=torch.float32,
)  # fmt: skip


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(torch.int32)


def _both(
    name: str, inputs: list[torch.Tensor], attrs: dict | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    fast = ops.compute(name, inputs, attrs)
    with fastcpu.disabled():
        ref = ops.compute(name, inputs, attrs)
    return fast, ref


def _assert_same(name: str, inputs: list[torch.Tensor], attrs: dict | None = None) -> None:
    fast, ref = _both(name, inputs, attrs)
    assert fast.shape == ref.shape and fast.dtype == ref.dtype
    diff = (_bits(fast) != _bits(ref)).nonzero()
    assert diff.numel() == 0, f"{name}: {diff.shape[0]} elements differ, first at {diff[0].tolist()}"


def _mixed(shape: tuple[int, ...], seed: int, edge_frac: float = 0.2) -> torch.Tensor:
    """Random normal values with a fraction replaced by edge cases (zeros, subnormals, inf, NaN, ...)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * torch.exp(torch.randn(shape, generator=g))
    pick = torch.rand(shape, generator=g) < edge_frac
    idx = torch.randint(0, EDGE.numel(), shape, generator=g)
    return torch.where(pick, EDGE[idx], x)


def _randn(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------------------------------
# the fast path is really taken, and off means off
# --------------------------------------------------------------------------------------------------


def test_compute_uses_fast_kernel_succeeds() -> None:
    a, b = _randn((5, 7), 0), _randn((7, 3), 1)
    assert fastcpu.compute("matmul", [a, b], {}, 15) is not None
    with fastcpu.disabled():
        assert fastcpu.compute("matmul", [a, b], {}, 15) is None
    assert fastcpu.compute("tanh", [a], {}, 35) is None


def test_dot_detects_changed_order_succeeds() -> None:
    """The check can fail: a sum in another order (one chunk) differs from the chunked one here."""
    g = torch.Generator().manual_seed(3)
    a = torch.randn(1, 1, 1000, generator=g) * 1e4
    b = torch.randn(1, 1000, 1, generator=g)
    mod = fastcpu.load()
    c, length = chunking(1000, 1)
    chunked = mod.dot(a, b, fastcpu._EMPTY, c, length, -1, False)
    sequential = mod.dot(a, b, fastcpu._EMPTY, 1, 1000, -1, False)
    assert _bits(chunked).item() != _bits(sequential).item()
    assert _bits(chunked).item() == _bits(ops.compute("matmul", [a[0], b[0]])).item()


# --------------------------------------------------------------------------------------------------
# matmul / linear / sum_rows: every chunking branch
# --------------------------------------------------------------------------------------------------

NARROW_K = [1, 2, 3, 5, 17, 63, 64, 65, 100, 257]


@pytest.mark.parametrize("kk", NARROW_K)
def test_matmul_narrow_matches_torch_succeeds(kk: int) -> None:
    m, n = 6, 67  # 6 rows: one full block of 4 and a partial one; 67 columns: two tiles
    assert m * n < WIDE
    _assert_same("matmul", [_mixed((m, kk), kk), _mixed((kk, n), kk + 1)])
    _assert_same("matmul", [_randn((m, kk), kk), _randn((kk, n), kk + 1)])


@pytest.mark.parametrize("kk", [1, 2, 63, 64, 65, 127, 130, 200])
def test_matmul_wide_matches_torch_succeeds(kk: int) -> None:
    m, n = 129, 130
    assert m * n >= WIDE
    _assert_same("matmul", [_mixed((m, kk), 10 + kk, 0.02), _mixed((kk, n), 20 + kk, 0.02)])
    _assert_same("matmul", [_randn((m, kk), kk), _randn((kk, n), kk + 1)])


@pytest.mark.parametrize("ta,tb", [(False, True), (True, False), (True, True)])
def test_matmul_transposes_and_batches_match_torch_succeeds(ta: bool, tb: bool) -> None:
    a = _mixed((2, 3, 9, 13), 5)  # (B, H, M, K) or (B, H, K, M) transposed
    b = _mixed((2, 3, 13, 11), 6)
    if ta:
        a = a.transpose(-1, -2).contiguous()
    if tb:
        b = b.transpose(-1, -2).contiguous()
    _assert_same("matmul", [a, b], {"ta": ta, "tb": tb})


@pytest.mark.parametrize("r,kk,n", [(1, 1, 1), (7, 33, 5), (64, 64, 10), (130, 64, 128), (200, 70, 96)])
def test_linear_matches_torch_succeeds(r: int, kk: int, n: int) -> None:
    x, w, b = _mixed((r, kk), r), _mixed((n, kk), kk), _mixed((n,), n)
    _assert_same("linear", [x, w, b])
    _assert_same("linear_nobias", [x, w])
    _assert_same("linear", [_randn((r, kk), 1), _randn((n, kk), 2), _randn((n,), 3)])


@pytest.mark.parametrize("r,n", [(1, 1), (2, 3), (64, 10), (65, 67), (300, 64), (1000, 17)])
def test_sum_rows_matches_torch_succeeds(r: int, n: int) -> None:
    _assert_same("sum_rows", [_mixed((r, n), r + n)])
    _assert_same("sum_rows", [_randn((r, n), r)])


# --------------------------------------------------------------------------------------------------
# optimizer updates
# --------------------------------------------------------------------------------------------------

ADAM = {"lr": 3e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}


@pytest.mark.parametrize("step", [1, 2, 7, 1000])
def test_adam_ops_match_torch_succeeds(step: int) -> None:
    attrs = dict(ADAM, step=step)
    shape = (37, 29)
    p, g, m = _mixed(shape, 1), _mixed(shape, 2), _mixed(shape, 3)
    v = _mixed(shape, 4).abs()
    _assert_same("adam_m", [m, g], attrs)
    _assert_same("adam_v", [v, g], attrs)
    _assert_same("adamw", [p, m, v], attrs)
    _assert_same("adamw", [p, m, _mixed(shape, 5)], attrs)  # negative v: sqrt's NaN branch
    small = _randn(shape, 6) * 1e-30  # tiny moments: sqrt of subnormals
    _assert_same("adamw", [p, small, small * small], attrs)


def test_adamw_constants_match_torch_succeeds() -> None:
    attrs = {"lr": 0.1, "beta1": 0.5, "beta2": 0.75, "eps": 1e-3, "weight_decay": 0.0, "step": 3}
    p, m, v = _randn((1000,), 1), _randn((1000,), 2), _randn((1000,), 3).abs()
    _assert_same("adam_m", [m, p], attrs)
    _assert_same("adam_v", [v, p], attrs)
    _assert_same("adamw", [p, m, v], attrs)


# --------------------------------------------------------------------------------------------------
# GELU (own exp inside)
# --------------------------------------------------------------------------------------------------


def test_gelu_edge_values_match_torch_succeeds() -> None:
    sweep = torch.linspace(-120.0, 120.0, 9001)
    ulp_walk = torch.arange(-(2**15), 2**15, dtype=torch.int32).view(torch.float32)  # subnormals, +-0
    x = torch.cat([EDGE, sweep, ulp_walk, _mixed((3001,), 7), _randn((3001,), 8) * 4])
    dy = _mixed(tuple(x.shape), 9)
    _assert_same("gelu", [x])
    _assert_same("gelu_backward", [x, dy])
    _assert_same("gelu_backward", [x, torch.ones_like(x)])


def test_gelu_odd_shapes_match_torch_succeeds() -> None:
    for shape in [(1,), (3, 5), (17, 129), (2, 3, 4, 5)]:
        x = _mixed(shape, len(shape))
        _assert_same("gelu", [x])
        _assert_same("gelu_backward", [x, _randn(shape, 1)])


# --------------------------------------------------------------------------------------------------
# plain elementwise ops and the embedding lookup
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,bshape", [((1,), (1,)), ((7, 5), (7, 5)), ((7, 5), (5,)), ((3, 4, 9), (4, 1)), ((999,), (1,))]
)
def test_elementwise_ops_match_torch_succeeds(shape: tuple[int, ...], bshape: tuple[int, ...]) -> None:
    a, b = _mixed(shape, 1, 0.3), _mixed(bshape, 2, 0.3)
    for name in ("add", "sub", "mul"):
        _assert_same(name, [a, b])
    full = _mixed(shape, 3, 0.3)
    _assert_same("relu_backward", [a, full])
    _assert_same("sgd", [a, full], {"lr": 0.1})
    _assert_same("sgd", [a, full], {"lr": 3e-39})
    _assert_same("relu", [a])
    for c in (0.5, -3.0, 1e-30, 3e38, float("inf")):
        _assert_same("scale", [a], {"c": c})


def test_embedding_matches_torch_succeeds() -> None:
    table = _mixed((11, 7), 1, 0.3)
    ids = torch.tensor([0, 10, 3, 3, 0, 5])
    _assert_same("embedding", [ids, table])


def test_embedding_bad_id_keeps_torch_error_reverts() -> None:
    from protocol.repops.policy import RepOpsError

    with pytest.raises(RepOpsError):
        ops.compute("embedding", [torch.tensor([0, 11]), _randn((11, 7), 0)])


# --------------------------------------------------------------------------------------------------
# softmax family, cross-entropy, mean (row max tree, own exp/log, chunked row sums)
# --------------------------------------------------------------------------------------------------

ROW_SHAPES = [(1, 1), (3, 2), (5, 7), (4, 64), (6, 65), (2, 3, 129), (130, 130)]  # the last one is wide


@pytest.mark.parametrize("shape", ROW_SHAPES)
def test_softmax_family_matches_torch_succeeds(shape: tuple[int, ...]) -> None:
    for x in (_mixed(shape, 1), _randn(shape, 2) * 10, _mixed(shape, 3, 0.6)):
        _assert_same("softmax", [x])
        _assert_same("log_softmax", [x])
        p = ops.compute("softmax", [_randn(shape, 4)])
        _assert_same("softmax_backward", [p, x])
        _assert_same("softmax_backward", [x, _randn(shape, 5)])
        _assert_same("log_softmax_backward", [x, _randn(shape, 6)])
        _assert_same("log_softmax_backward", [-x.abs(), x])


@pytest.mark.parametrize("rows,classes", [(1, 1), (3, 2), (9, 10), (64, 65), (300, 64)])
def test_cross_entropy_matches_torch_succeeds(rows: int, classes: int) -> None:
    g = torch.Generator().manual_seed(rows)
    tgt = torch.randint(0, classes, (rows,), generator=g)
    for z in (_mixed((rows, classes), classes), _randn((rows, classes), 1) * 30):
        _assert_same("cross_entropy", [z, tgt])
        for dloss in (torch.tensor(1.0), torch.tensor(-0.0), torch.tensor(3e38), torch.tensor(float("nan"))):
            _assert_same("cross_entropy_backward", [z, tgt, dloss], {"batch": rows})


def test_cross_entropy_bad_target_keeps_torch_error_reverts() -> None:
    from protocol.repops.policy import RepOpsError

    z, tgt = _randn((2, 3), 0), torch.tensor([0, 3])
    with pytest.raises((RepOpsError, IndexError, RuntimeError)):
        ops.compute("cross_entropy", [z, tgt])


@pytest.mark.parametrize("n", [1, 2, 63, 64, 65, 1000, 20000])
def test_mean_matches_torch_succeeds(n: int) -> None:
    _assert_same("mean", [_mixed((n,), n, 0.01)])
    _assert_same("mean", [_randn((n,), n).reshape(1, n)])


# --------------------------------------------------------------------------------------------------
# layer norm and embedding gradient
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows,n", [(1, 1), (3, 2), (8, 17), (65, 64), (130, 130), (300, 70)])
def test_layernorm_ops_match_torch_succeeds(rows: int, n: int) -> None:
    for x in (_randn((rows, n), 1) * 3 + 1, _mixed((rows, n), 2, 0.05)):
        gamma, beta, dy = _mixed((n,), 3, 0.1), _mixed((n,), 4, 0.1), _mixed((rows, n), 5, 0.05)
        for eps in (1e-5, 0.0):
            _assert_same("layernorm_stats", [x], {"eps": eps})
        stats = ops.compute("layernorm_stats", [x], {"eps": 1e-5})
        _assert_same("layernorm_apply", [x, stats, gamma, beta])
        _assert_same("layernorm_backward", [x, stats, gamma, dy])
        _assert_same("layernorm_dgamma", [x, stats, dy])


@pytest.mark.parametrize("positions,vocab,dim", [(1, 1, 1), (7, 3, 5), (64, 65, 32), (300, 20, 17)])
def test_embedding_backward_matches_torch_succeeds(positions: int, vocab: int, dim: int) -> None:
    ids = torch.randint(0, vocab, (positions,), generator=torch.Generator().manual_seed(positions))
    _assert_same("embedding_backward", [ids, _mixed((positions, dim), dim)], {"num_embeddings": vocab})
    _assert_same("embedding_backward", [ids, _randn((positions, dim), 1)], {"num_embeddings": vocab + 2})


# --------------------------------------------------------------------------------------------------
# causal self-attention
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "batch,t,heads,dh", [(1, 1, 1, 1), (2, 5, 3, 4), (2, 16, 2, 8), (1, 33, 1, 65), (4, 64, 2, 16)]
)
def test_attention_ops_match_torch_succeeds(batch: int, t: int, heads: int, dh: int) -> None:
    attrs = {"batch": batch, "n_head": heads}
    qkv = _randn((batch * t, 3 * heads * dh), 1)
    qkv_edge = _mixed((batch * t, 3 * heads * dh), 2, 0.05)
    dy = _mixed((batch * t, heads * dh), 3, 0.05)
    for x in (qkv, qkv_edge):
        _assert_same("attn_scores", [x], attrs)
        scores = ops.compute("attn_scores", [x], attrs)
        probs = ops.compute("softmax", [scores])
        _assert_same("attn_apply", [probs, x], attrs)
        _assert_same("attn_dprobs", [dy, x], attrs)
        dprobs = ops.compute("attn_dprobs", [dy, x], attrs)
        dscores = ops.compute("softmax_backward", [probs, dprobs])
        _assert_same("attn_dqkv", [dscores, x, probs, dy], attrs)
        _assert_same("attn_dqkv", [_mixed(tuple(probs.shape), 4, 0.1), x, probs, dy], attrs)


# --------------------------------------------------------------------------------------------------
# whole training runs: the same trace roots with and without the fast path
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "steps"), [("digits-mlp", 6), ("tiny-gpt", 3)])
def test_train_roots_same_with_and_without_fast_path_succeeds(name: str, steps: int) -> None:
    from protocol.spec import load_spec
    from protocol.train import train

    spec = load_spec(name).with_steps(steps)
    fast = train(spec, progress=False)
    with fastcpu.disabled():
        ref = train(spec, progress=False)
    assert fast.trace_root == ref.trace_root
    assert fast.final_state_root == ref.final_state_root


# --------------------------------------------------------------------------------------------------
# the baseline-ISA build (CPUs without AVX2 run it): same bits, in a fresh process
# --------------------------------------------------------------------------------------------------

_BASELINE_SCRIPT = """
import sys
import torch
from protocol.repops import fastcpu, ops
assert fastcpu.available() and "-DREPOPS_BASELINE_ONLY" in fastcpu.cflags()
g = torch.Generator().manual_seed(0)
edge = torch.tensor([0.0, -0.0, 1e-45, -1e-40, float("inf"), float("-inf"), float("nan"), 3e38, -3e38, 88.7, -104.0])
def mixed(*shape):
    x = torch.randn(shape, generator=g) * 4
    pick = torch.rand(shape, generator=g) < 0.1
    return torch.where(pick, edge[torch.randint(0, edge.numel(), shape, generator=g)], x)
qkv = mixed(2 * 9, 3 * 2 * 5)
cases = [
    ("matmul", [mixed(6, 70), mixed(70, 37)], {}),
    ("linear", [mixed(130, 65), mixed(131, 65), mixed(131)], {}),
    ("gelu", [mixed(1001)], {}),
    ("gelu_backward", [mixed(1001), mixed(1001)], {}),
    ("softmax", [mixed(7, 35)], {}),
    ("cross_entropy_backward", [mixed(7, 35), torch.randint(0, 35, (7,), generator=g), torch.tensor(1.0)], {"batch": 7}),
    ("adamw", [mixed(99), mixed(99), mixed(99).abs()], {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1, "step": 2}),
    ("attn_scores", [qkv], {"batch": 2, "n_head": 2}),
]
for name, ins, attrs in cases:
    fast = ops.compute(name, ins, attrs)
    with fastcpu.disabled():
        ref = ops.compute(name, ins, attrs)
    if not torch.equal(fast.view(torch.int32), ref.view(torch.int32)):
        sys.exit(f"{name}: baseline build differs")
print("ok")
"""


@pytest.mark.slow
def test_baseline_isa_build_matches_torch_succeeds() -> None:
    """Builds the loops without the AVX2 clones (one more compile, ~40 s) and checks them."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, VERIGRAD_FASTCPU_ISA="baseline")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", _BASELINE_SCRIPT],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


def test_no_compiler_falls_back_with_one_warning_succeeds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With a compiler that fails, ops still run (torch kernels) and one warning says why."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import warnings, torch\n"
        "from protocol.repops import fastcpu, ops\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    a = ops.compute('gelu', [torch.linspace(-3, 3, 50)])\n"
        "    b = ops.compute('matmul', [torch.ones(3, 4), torch.ones(4, 2)])\n"
        "assert not fastcpu.available()\n"
        "with fastcpu.disabled():\n"
        "    assert torch.equal(a, ops.compute('gelu', [torch.linspace(-3, 3, 50)]))\n"
        "msgs = [str(x.message) for x in w if 'fast path' in str(x.message)]\n"
        "assert len(msgs) == 1 and float(b[0, 0]) == 4.0, msgs\n"
        "print('ok')\n"
    )
    env = dict(os.environ, CXX="/bin/false", VERIGRAD_FASTCPU_BUILD=str(tmp_path))
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize(
    "name,inputs",
    [
        ("sum_rows", [torch.zeros(0, 3)]),
        ("layernorm_stats", [torch.zeros(4, 0)]),
        ("matmul", [torch.zeros(0, 3), torch.zeros(3, 2)]),
        ("gelu", [torch.zeros(0)]),
    ],
)
def test_empty_inputs_behave_as_torch_succeeds(name: str, inputs: list[torch.Tensor]) -> None:
    """Empty inputs take the torch kernel: the same output, or the same error, with the fast path on."""
    attrs = {"eps": 1e-5} if name == "layernorm_stats" else None
    outcomes = []
    for off in (False, True):
        with fastcpu.disabled() if off else contextlib.nullcontext():
            try:
                outcomes.append(("ok", _bits(ops.compute(name, inputs, attrs)).tolist()))
            except Exception as e:  # noqa: BLE001 - the error type is what is compared
                outcomes.append(("error", type(e).__name__))
    assert outcomes[0] == outcomes[1]

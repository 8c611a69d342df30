"""The GPU paths give the torch kernels' bits: the CUDA fast path (protocol/repops/fastcuda.py) op by
op, and CUDA-graph training (protocol.train.CudaGraphSteps) against op-by-op training and the CPU.

Needs a CUDA device (skipped elsewhere): run it on the GPU machine, with the cross-device test.
Every op with a CUDA kernel runs twice on the same inputs, through that kernel and through the torch
kernels (the canonical scalar program by construction), and the outputs must agree bit for bit, on
random values and on values built from zeros of both signs, subnormals, +-inf, NaN and +-3e38, at
shapes that take every branch of ``reduce.chunking``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch

from protocol.repops import fastcuda, ops
from protocol.repops.reduce import WIDE
from protocol.spec import load_spec
from protocol.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")
EDGE = torch.tensor(
    [0.0, -0.0, 1e-45, -1e-45, 1e-40, -3e-39, 1.1754942e-38, float("inf"), float("-inf"), float("nan"),
     3e38, -3e38, 1.0, -1.0, 0.5, 2.0, 1e-20, 88.7, -88.7, 1e10, -1e10],
    dtype=torch.float32,
)  # fmt: skip


@contextlib.contextmanager
def _torch_kernels() -> Iterator[None]:
    before = fastcuda._enabled
    fastcuda._enabled = False
    try:
        yield
    finally:
        fastcuda._enabled = before


def _mixed(shape: tuple[int, ...], seed: int, edge_frac: float = 0.2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * torch.exp(torch.randn(shape, generator=g))
    pick = torch.rand(shape, generator=g) < edge_frac
    idx = torch.randint(0, EDGE.numel(), shape, generator=g)
    return torch.where(pick, EDGE[idx], x).to(CUDA)


def _randn(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(CUDA)


def _assert_same(name: str, inputs: list[torch.Tensor], attrs: dict | None = None) -> None:
    fast = ops.compute(name, inputs, attrs)
    with _torch_kernels():
        ref = ops.compute(name, inputs, attrs)
    assert fast.shape == ref.shape and fast.dtype == ref.dtype
    diff = (fast.contiguous().view(torch.int32) != ref.contiguous().view(torch.int32)).nonzero()
    assert diff.numel() == 0, f"{name}: {diff.shape[0]} elements differ, first at {diff[0].tolist()}"


def test_fast_path_is_built_succeeds() -> None:
    assert fastcuda.available()


@pytest.mark.parametrize("kk", [1, 2, 3, 17, 63, 64, 65, 257])
def test_matmul_matches_torch_succeeds(kk: int) -> None:
    _assert_same("matmul", [_mixed((6, kk), kk), _mixed((kk, 67), kk + 1)])
    _assert_same("matmul", [_randn((129, kk), kk), _randn((kk, 130), kk + 1)])  # wide: 64-term chunks
    assert 129 * 130 >= WIDE


@pytest.mark.parametrize("ta,tb", [(False, True), (True, False), (True, True)])
def test_matmul_transposes_and_batches_match_torch_succeeds(ta: bool, tb: bool) -> None:
    a, b = _mixed((2, 3, 9, 13), 5), _mixed((2, 3, 13, 11), 6)
    if ta:
        a = a.transpose(-1, -2).contiguous()
    if tb:
        b = b.transpose(-1, -2).contiguous()
    _assert_same("matmul", [a, b], {"ta": ta, "tb": tb})


@pytest.mark.parametrize("r,kk,n", [(1, 1, 1), (7, 33, 5), (130, 64, 128), (200, 70, 96)])
def test_linear_and_sum_rows_match_torch_succeeds(r: int, kk: int, n: int) -> None:
    x, w, b = _mixed((r, kk), r), _mixed((n, kk), kk), _mixed((n,), n)
    _assert_same("linear", [x, w, b])
    _assert_same("linear_nobias", [x, w])
    _assert_same("sum_rows", [x])


@pytest.mark.parametrize("positions,vocab,dim", [(1, 1, 1), (7, 3, 5), (512, 65, 32)])
def test_embedding_backward_matches_torch_succeeds(positions: int, vocab: int, dim: int) -> None:
    ids = torch.randint(0, vocab, (positions,), generator=torch.Generator().manual_seed(positions)).to(CUDA)
    _assert_same("embedding_backward", [ids, _mixed((positions, dim), dim)], {"num_embeddings": vocab})


@pytest.mark.parametrize("batch,t,heads,dh", [(1, 1, 1, 1), (2, 5, 3, 4), (16, 32, 2, 16), (1, 33, 1, 65)])
def test_attention_ops_match_torch_succeeds(batch: int, t: int, heads: int, dh: int) -> None:
    attrs = {"batch": batch, "n_head": heads}
    dy = _mixed((batch * t, heads * dh), 3, 0.05)
    for x in (_randn((batch * t, 3 * heads * dh), 1), _mixed((batch * t, 3 * heads * dh), 2, 0.05)):
        _assert_same("attn_scores", [x], attrs)
        probs = ops.compute("softmax", [ops.compute("attn_scores", [x], attrs)])
        _assert_same("attn_apply", [probs, x], attrs)
        _assert_same("attn_dprobs", [dy, x], attrs)
        dscores = ops.compute("softmax_backward", [probs, ops.compute("attn_dprobs", [dy, x], attrs)])
        _assert_same("attn_dqkv", [dscores, x, probs, dy], attrs)


@pytest.mark.parametrize("step", [1, 2, 10, 1000])
def test_adam_ops_match_torch_succeeds(step: int) -> None:
    attrs = {"lr": 0.01, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "weight_decay": 0.01, "step": step}
    p, g, m = _mixed((37, 65), 1), _mixed((37, 65), 2), _mixed((37, 65), 3)
    for v in (_mixed((37, 65), 4).abs(), _mixed((37, 65), 5), _randn((37, 65), 6).abs() * 1e-40):
        _assert_same("adam_m", [m, g], attrs)
        _assert_same("adam_v", [v, g], attrs)
        _assert_same("adamw", [p, m, v], attrs)  # sqrt of subnormals, zeros, inf, negatives, NaN


@pytest.mark.parametrize(("name", "steps"), [("digits-mlp", 12), ("tiny-gpt", 4)])
def test_graph_training_equals_op_by_op_and_cpu_succeeds(name: str, steps: int, monkeypatch, recwarn) -> None:  # type: ignore[no-untyped-def]
    spec = load_spec(name).with_steps(steps)
    graphs = train(spec, device="cuda", progress=False)
    assert not [w for w in recwarn if "CUDA graphs off" in str(w.message)]  # the graph path ran
    monkeypatch.setenv("VERIGRAD_CUDA_GRAPHS", "0")
    eager = train(spec, device="cuda", progress=False)
    with _torch_kernels():
        torch_kernels = train(spec, device="cuda", progress=False)
    cpu = train(spec, device="cpu", progress=False)
    assert graphs.trace_root == eager.trace_root == torch_kernels.trace_root == cpu.trace_root
    assert graphs.losses == eager.losses == cpu.losses

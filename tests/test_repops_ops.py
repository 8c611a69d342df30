"""RepOps ops: gradients against torch autograd in float64, scalar programs against the vectorised
torch code bit for bit (random and edge-case inputs), determinism across thread counts, the tape."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from protocol import repops as R
from protocol.repops import ops, reduce
from protocol.repops.backend import TorchBackend
from protocol.repops.policy import CANONICAL_NAN_BITS

# float32 RepOps against float64 autograd: relative 1e-4 and absolute 1e-5 for values of order 1
# (the ops' own rounding is ~1e-7 relative; reductions of up to 64 terms and exp/log/tanh of a few
# ulps stay far inside).
TOL = {"rtol": 1e-4, "atol": 1e-5}


def close(ours: torch.Tensor, ref: torch.Tensor) -> None:
    torch.testing.assert_close(ours.double(), ref.detach().double(), **TOL)


def g64(*ts: torch.Tensor) -> list[torch.Tensor]:
    return [t.detach().double().requires_grad_(True) for t in ts]


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen)


# --------------------------------------------------------------------------------------------------
# forward and backward against autograd (float64)
# --------------------------------------------------------------------------------------------------


def test_linear_forward_backward_match_autograd() -> None:
    x, w, b, dy = randn(6, 5, seed=1), randn(4, 5, seed=2), randn(4, seed=3), randn(6, 4, seed=4)
    y = R.linear(x, w, b)
    dx, dw, db = R.linear_backward(x, w, dy)
    xr, wr, br = g64(x, w, b)
    yr = xr @ wr.T + br
    yr.backward(dy.double())
    close(y, yr)
    close(dx, xr.grad)
    close(dw, wr.grad)
    close(db, br.grad)
    close(R.linear(x, w), xr @ wr.T)


def test_matmul_transposes_and_batches() -> None:
    a, b = randn(2, 3, 4, seed=1), randn(2, 5, 4, seed=2)
    close(R.matmul(a, b, tb=True), a.double() @ b.double().transpose(-1, -2))
    c = randn(2, 4, 3, seed=3)
    close(R.matmul(c, b, ta=True, tb=True), c.double().transpose(-1, -2) @ b.double().transpose(-1, -2))
    with pytest.raises(R.RepOpsError, match="incompatible"):
        R.matmul(a, b)


@pytest.mark.parametrize("act", ["relu", "gelu"])
def test_activations_match_autograd(act: str) -> None:
    x, dy = randn(7, 9, seed=5) * 3, randn(7, 9, seed=6)
    (xr,) = g64(x)
    ref = torch.relu(xr) if act == "relu" else F.gelu(xr, approximate="tanh")
    ref.backward(dy.double())
    fwd = getattr(R, act)(x)
    bwd = getattr(R, f"{act}_backward")(x, dy)
    close(fwd, ref)
    close(bwd, xr.grad)


def test_gelu_saturates_without_nan() -> None:
    x = torch.tensor([-30.0, -12.0, 12.0, 30.0])
    y, dx = R.gelu(x), R.gelu_backward(x, torch.ones_like(x))
    assert not bool(torch.isnan(y).any()) and not bool(torch.isnan(dx).any())
    assert y[:2].abs().max() == 0.0 and torch.equal(y[2:], x[2:])
    assert dx[:2].abs().max() == 0.0 and torch.equal(dx[2:], torch.ones(2))


def test_softmax_family_matches_autograd() -> None:
    x, dy = randn(5, 11, seed=7) * 4, randn(5, 11, seed=8)
    (xr,) = g64(x)
    p = torch.softmax(xr, -1)
    p.backward(dy.double())
    ours = R.softmax(x)
    close(ours, p)
    close(R.softmax_backward(ours, dy), xr.grad)
    close(R.log_softmax(x), torch.log_softmax(x.double(), -1))
    (xr2,) = g64(x)
    torch.log_softmax(xr2, -1).backward(dy.double())
    close(R.log_softmax_backward(R.log_softmax(x), dy), xr2.grad)


def test_cross_entropy_matches_autograd() -> None:
    z, t = randn(8, 10, seed=9) * 3, torch.randint(0, 10, (8,), generator=torch.Generator().manual_seed(1))
    (zr,) = g64(z)
    loss = F.cross_entropy(zr, t)
    loss.backward()
    ours = R.cross_entropy(z, t)
    assert ours.shape == ()
    close(ours, loss)
    close(R.cross_entropy_backward(z, t), zr.grad)


def test_layernorm_matches_autograd() -> None:
    x, g, b, dy = randn(6, 16, seed=10) * 2 + 1, randn(16, seed=11), randn(16, seed=12), randn(6, 16, seed=13)
    xr, gr, br = g64(x, g, b)
    ref = F.layer_norm(xr, (16,), gr, br, eps=1e-5)
    ref.backward(dy.double())
    y, stats = R.layernorm(x, g, b, eps=1e-5)
    dx, dg, db = R.layernorm_backward(x, stats, g, dy)
    close(y, ref)
    close(dx, xr.grad)
    close(dg, gr.grad)
    close(db, br.grad)


def test_embedding_matches_autograd() -> None:
    ids = torch.tensor([3, 1, 3, 0, 3, 6, 1])
    table, dy = randn(7, 4, seed=14), randn(7, 4, seed=15)
    (tr,) = g64(table)
    ref = F.embedding(ids, tr)
    ref.backward(dy.double())
    close(R.embedding(ids, table), ref)
    close(R.embedding_backward(ids, dy, 7), tr.grad)
    with pytest.raises(R.RepOpsError, match="ids must lie"):
        R.embedding(torch.tensor([7]), table)


def test_attention_matches_autograd() -> None:
    bsz, t, h, dh = 2, 6, 2, 4
    qkv, dy = randn(bsz * t, 3 * h * dh, seed=16), randn(bsz * t, h * dh, seed=17)
    (qr,) = g64(qkv)
    q, k, v = qr.reshape(bsz, t, 3, h, dh).unbind(2)
    ref = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
    )
    ref = ref.transpose(1, 2).reshape(bsz * t, h * dh)
    ref.backward(dy.double())
    y, probs = R.attention(qkv, bsz, h)
    close(y, ref)
    close(R.attention_backward(qkv, probs, dy, bsz, h), qr.grad)


def test_adamw_and_sgd_match_torch_optimizers() -> None:
    p, g = randn(5, 3, seed=18), randn(5, 3, seed=19)
    m, v = torch.zeros_like(p), torch.zeros_like(p)
    pr = p.double().clone().requires_grad_(True)
    opt = torch.optim.AdamW([pr], lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    cur = p
    for step in (1, 2, 3):
        pr.grad = g.double() * step
        opt.step()
        cur, m, v = R.adamw_step(
            cur, g * step, m, v, step, lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1
        )
    close(cur, pr)
    close(R.sgd_step(p, g, 0.1), p.double() - 0.1 * g.double())


# --------------------------------------------------------------------------------------------------
# scalar programs agree bit for bit with the vectorised code
# --------------------------------------------------------------------------------------------------

SPECIALS = [0.0, -0.0, 1e-40, -1e-45, float("inf"), float("-inf"), float("nan"), 3e38, -3e38, 1e-30]


def spiky(*shape: int, seed: int) -> torch.Tensor:
    """Random normals with a few zeros, subnormals, infinities, NaNs and huge values mixed in."""
    x = randn(*shape, seed=seed).reshape(-1)
    gen = np.random.default_rng(seed)
    pos = gen.choice(x.numel(), size=min(len(SPECIALS), x.numel() // 3), replace=False)
    for i, p in enumerate(pos):
        x[int(p)] = SPECIALS[i]
    return R.canonicalize(x.reshape(shape))


def _cases(seed: int, edge: bool) -> list[tuple[str, list[torch.Tensor], dict]]:
    f = (lambda *s, k: spiky(*s, seed=seed + k)) if edge else (lambda *s, k: randn(*s, seed=seed + k))
    x = f(5, 6, k=1)
    ids = torch.tensor([2, 0, 2, 4, 1, 2])
    tg = torch.tensor([1, 0, 5, 3, 2])
    st = ops.compute("layernorm_stats", [x], {"eps": 1e-5})
    qkv = f(2 * 4, 3 * 2 * 3, k=2)
    a_attn = {"batch": 2, "n_head": 2}
    probs = ops.compute("softmax", [ops.compute("attn_scores", [qkv], a_attn)])
    dy_attn = f(8, 6, k=3)
    adam = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01, "step": 7}
    return [
        ("matmul", [x, f(6, 4, k=4)], {}),
        ("matmul", [x, f(5, 3, k=4)], {"ta": True}),
        ("linear", [x, f(3, 6, k=5), f(3, k=6)], {}),
        ("sum_rows", [x], {}),
        ("mean", [x], {}),
        ("add", [x, f(6, k=7)], {}),
        ("sub", [x, f(5, 1, k=7)], {}),
        ("mul", [x, f(5, 6, k=8)], {}),
        ("scale", [x], {"c": 0.125}),
        ("relu", [x], {}),
        ("relu_backward", [x, f(5, 6, k=9)], {}),
        ("gelu", [x], {}),
        ("gelu_backward", [x, f(5, 6, k=9)], {}),
        ("softmax", [x], {}),
        ("log_softmax", [x], {}),
        ("softmax_backward", [ops.compute("softmax", [x]), f(5, 6, k=10)], {}),
        ("log_softmax_backward", [ops.compute("log_softmax", [x]), f(5, 6, k=10)], {}),
        ("cross_entropy", [x, tg], {}),
        ("cross_entropy_backward", [x, tg, torch.tensor(1.0)], {"batch": 5}),
        ("layernorm_stats", [x], {"eps": 1e-5}),
        ("layernorm_apply", [x, st, f(6, k=11), f(6, k=12)], {}),
        ("layernorm_backward", [x, st, f(6, k=11), f(5, 6, k=13)], {}),
        ("layernorm_dgamma", [x, st, f(5, 6, k=13)], {}),
        ("embedding", [ids, f(5, 3, k=14)], {}),
        ("embedding_backward", [ids, f(6, 3, k=15)], {"num_embeddings": 5}),
        ("attn_scores", [qkv], a_attn),
        ("attn_apply", [probs, qkv], a_attn),
        ("attn_dprobs", [dy_attn, qkv], a_attn),
        ("attn_dqkv", [f(2, 2, 4, 4, k=16), qkv, probs, dy_attn], a_attn),
        ("sgd", [x, f(5, 6, k=17)], {"lr": 0.1}),
        ("adam_m", [x, f(5, 6, k=17)], adam),
        ("adam_v", [x.abs(), f(5, 6, k=17)], adam),
        ("adamw", [x, f(5, 6, k=17), f(5, 6, k=18).abs()], adam),
    ]


CASE_NAMES = [f"{c[0]}-{i}" for i, c in enumerate(_cases(0, False))]


@pytest.mark.parametrize("edge", [False, True], ids=["random", "edge"])
@pytest.mark.parametrize("case", range(len(CASE_NAMES)), ids=CASE_NAMES)
def test_scalar_program_matches_vectorised_output(case: int, edge: bool) -> None:
    name, inputs, attrs = _cases(100 + case, edge)[case]
    out = ops.compute(name, inputs, attrs)
    assert R.is_canonical(out)
    rng = np.random.default_rng(case)
    elements = {0, out.numel() - 1} | {int(e) for e in rng.choice(out.numel(), size=min(4, out.numel()))}
    for e in sorted(elements):
        tr = ops.trace(name, inputs, attrs, e, expected=out)
        assert tr.matches, f"{name} element {e}: program gives {tr.result:#010x}, torch {tr.expected:#010x}"
        # replaying the program step by step reproduces the recorded register files
        assert tr.states[-1][tr.program[-1].dst] == tr.result


@pytest.mark.parametrize(
    ("name", "inputs", "attrs"),
    [
        ("matmul", [randn(3, 130, seed=40), randn(130, 2, seed=41)], {}),  # narrow: 12 chunks of 11 (last 9)
        (
            "linear",
            [randn(128, 130, seed=42), randn(128, 130, seed=43), randn(128, seed=44)],
            {},
        ),  # wide: 44+44+42
        ("sum_rows", [randn(100, 3, seed=45)], {}),  # 10 x 10
        ("mean", [randn(13, 11, seed=46)], {}),  # 143 terms: 12 chunks of 12 (last 11)
        ("softmax", [randn(2, 65, seed=47)], {}),  # row sums over 65: 9 chunks of 8 (last 1)
        ("layernorm_dgamma", [randn(70, 4, seed=48), torch.rand(70, 2) + 0.5, randn(70, 4, seed=49)], {}),
    ],
    ids=["matmul-130", "linear-130-wide", "sum_rows-100", "mean-143", "softmax-65", "dgamma-70"],
)
def test_chunked_reductions_match_their_scalar_programs(name: str, inputs: list, attrs: dict) -> None:
    out = ops.compute(name, inputs, attrs)
    for e in {0, out.numel() // 2, out.numel() - 1}:
        tr = ops.trace(name, inputs, attrs, e, expected=out)
        assert tr.matches, (name, e)


@pytest.mark.parametrize(("n", "m", "want"), [(64, 10**6, (1, 64)), (65, 10**6, (2, 33)), (512, 10**6, (8, 64)),
                                              (64, 1, (8, 8)), (130, 6, (12, 11)), (10, 640, (4, 3)), (1, 5, (1, 1))])  # fmt: skip
def test_chunking_rule(n: int, m: int, want: tuple[int, int]) -> None:
    assert reduce.chunking(n, m) == want
    c, length = want
    assert (c - 1) * length < n <= c * length


@pytest.mark.parametrize(("rows", "n"), [(1, 130), (128, 130)], ids=["narrow", "wide"])
def test_chunked_order_is_the_documented_one(rows: int, n: int) -> None:
    # Chunk p covers terms [p*L, min(n, (p+1)*L)), summed from +0; chunk sums added left to right.
    x = randn(1, n, seed=50)
    w = torch.ones(rows, n)
    c, length = reduce.chunking(n, rows)
    xs = x.reshape(-1).numpy()
    parts = []
    for p in range(c):
        acc = np.float32(0.0)
        for t in range(p * length, min(n, (p + 1) * length)):
            acc = np.float32(acc + np.float32(xs[t] * np.float32(1.0)))
        parts.append(acc)
    want = parts[0]
    for part in parts[1:]:
        want = np.float32(want + part)
    assert R.linear(x, w)[0, 0].item() == float(want)


def test_row_max_tree_keeps_the_leftmost_maximum() -> None:
    # Ties (here -0 and +0) resolve to the leftmost maximal element, as a left-to-right scan would.
    x = torch.tensor([[-0.0, 0.0, -1.0, -0.0, -2.0], [0.0, -0.0, -3.0, -1.0, 0.0]])
    k = TorchBackend(torch.device("cpu"), [], [])
    m = reduce.row_max(k, x).view(torch.int32).reshape(-1).tolist()
    assert m == [-(2**31), 0]  # -0 (first of row 0), +0 (first of row 1)
    y = randn(7, 13, seed=60)
    assert torch.equal(reduce.row_max(k, y).reshape(-1), y.max(dim=1).values)


def test_every_registered_op_is_covered() -> None:
    covered = {c[0] for c in _cases(0, False)} | {"linear_nobias", "sqrt", "exp", "log", "tanh", "erf"}
    assert covered == set(ops.OPS)


def test_programs_do_not_depend_on_the_data() -> None:
    for case in range(len(CASE_NAMES)):
        name, a_in, attrs = _cases(1, False)[case]
        _, b_in, _ = _cases(2, True)[case]
        e = ops.compute(name, a_in, attrs).numel() // 2
        pa = ops.trace(name, a_in, attrs, e).program
        pb = ops.trace(name, b_in, attrs, e).program
        assert pa == pb, name
        assert ops.scalar_program(name, [t.shape for t in a_in], attrs, e)[0] == pa, name


def test_nan_input_gives_canonical_nan_downstream() -> None:
    x = torch.tensor([[1.0, float("nan")], [0.0, float("inf")]])
    w = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    y = R.linear(x, w)  # y[1, 1] = 0*1 + inf*0: inf * 0 is NaN too
    bits = y.view(torch.int32).reshape(-1).tolist()
    assert bits[0] == CANONICAL_NAN_BITS and bits[3] == CANONICAL_NAN_BITS and bits[2] == 0x7F800000


# --------------------------------------------------------------------------------------------------
# determinism, tape, faults
# --------------------------------------------------------------------------------------------------


def _mini_step(threads: int) -> list[torch.Tensor]:
    torch.set_num_threads(threads)
    x, w, b = randn(64, 96, seed=20), randn(200, 96, seed=21), randn(200, seed=22)
    g, be = randn(200, seed=23), randn(200, seed=24)
    tg = torch.randint(0, 200, (64,), generator=torch.Generator().manual_seed(3))
    h = R.linear(x, w, b)
    n, st = R.layernorm(R.gelu(h), g, be)
    loss = R.cross_entropy(n, tg)
    dn = R.cross_entropy_backward(n, tg)
    dh, _, _ = R.layernorm_backward(R.gelu(h), st, g, dn)
    _, dw, db = R.linear_backward(x, w, R.gelu_backward(h, dh))
    p, m, v = R.adamw_step(w, dw, torch.zeros_like(w), torch.zeros_like(w), 1, 1e-3, weight_decay=0.1)
    return [h, n, loss, dn, dh, dw, db, p, m, v]


def test_same_bits_with_one_and_two_threads() -> None:
    before = torch.get_num_threads()
    try:
        one = _mini_step(1)
        two = _mini_step(2)
    finally:
        torch.set_num_threads(before)
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a.view(torch.int32), b.view(torch.int32))


def _tiny_graph() -> torch.Tensor:
    x, w, b = randn(4, 3, seed=30), randn(5, 3, seed=31), randn(5, seed=32)
    h = R.relu(R.linear(x, w, b))
    return R.cross_entropy(h, torch.tensor([0, 1, 2, 3]))


def test_tape_records_ops_in_order_with_inputs_and_outputs() -> None:
    seen = []
    with R.Tape(observer=seen.append) as tape:
        loss = _tiny_graph()
    assert [r.op for r in tape.records] == ["linear", "relu", "cross_entropy", "mean"]
    assert [r.index for r in tape.records] == [0, 1, 2, 3] and seen == tape.records
    assert tape.records[1].inputs[0] is tape.records[0].output
    assert torch.equal(tape.records[-1].output, loss)
    assert R.current_tape() is None
    for rec in tape.records:
        assert torch.equal(rec.recompute(), rec.output)
        assert rec.scalar_trace(rec.output.numel() - 1).matches


def test_fault_changes_exactly_one_element_and_what_depends_on_it() -> None:
    with R.Tape() as clean:
        _tiny_graph()
    with R.Tape(inject=R.Fault(op_index=0, element=6)) as bad:
        _tiny_graph()
    diff0 = (clean.records[0].output.view(torch.int32) != bad.records[0].output.view(torch.int32)).reshape(-1)
    assert diff0.nonzero().reshape(-1).tolist() == [6]
    assert bad.records[0].faulted and not bad.records[1].faulted
    # relu of the faulted element and its row's loss differ downstream
    diff1 = (clean.records[1].output.view(torch.int32) != bad.records[1].output.view(torch.int32)).reshape(-1)
    assert diff1.nonzero().reshape(-1).tolist() in ([6], [])
    assert not bad.records[0].scalar_trace(6).matches
    assert bad.records[0].scalar_trace(5).matches
    assert bad.records[1].scalar_trace(6).matches  # relu itself is honest on its (wrong) input


def test_tape_without_keep_streams_only() -> None:
    seen = []
    with R.Tape(observer=seen.append, keep=False) as tape:
        _tiny_graph()
    assert tape.records == [] and len(tape) == 4 and len(seen) == 4


def test_bad_inputs_raise_repops_errors() -> None:
    with pytest.raises(R.RepOpsError, match="float32"):
        R.relu(torch.zeros(3, dtype=torch.float64))
    with pytest.raises(R.RepOpsError, match="unknown op"):
        R.compute("conv", [torch.zeros(1)])
    with pytest.raises(R.RepOpsError, match="out of range"):
        R.trace("relu", [torch.zeros(3)], None, 3)
    with pytest.raises(R.RepOpsError, match="step counts from 1"):
        R.adamw_step(torch.zeros(1), torch.zeros(1), torch.zeros(1), torch.zeros(1), 0, 1e-3)


def test_check_policy_accepts_this_cpu() -> None:
    R.check_policy("cpu")

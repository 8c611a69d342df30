"""Micro-benchmark of RepOps against plain torch float32 on this CPU (one thread).

Times a 256^3 matmul, and one full training step (forward, explicit backward, AdamW) of an MLP
classifier and of a two-layer character transformer, each with RepOps and with plain torch
(autograd, default kernels). RepOps runs with the CPU fast path (protocol/repops/fastcpu.py) when it
is built; ``torch_kernels_ms`` is the same RepOps work with the fast path off (same bits), timed in
the same run. Prints one JSON object on the last line.

    .venv/bin/python benchmarks/repops_ops.py [--quick]
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from protocol import repops as R
from protocol.repops import fastcpu


def without_fast_path(fn: Callable[[], object], repeat: int) -> float:
    """best_of(fn) with every op on its torch kernel."""
    with fastcpu.disabled():
        return best_of(fn, repeat)


def best_of(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def matmul_case(n: int, repeat: int) -> dict[str, float]:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    t_rep = best_of(lambda: R.matmul(a, b), repeat)
    t_slow = without_fast_path(lambda: R.matmul(a, b), repeat)
    t_ref = best_of(lambda: a @ b, repeat)
    return _result(t_rep, t_slow, t_ref)


def _result(t_rep: float, t_slow: float, t_ref: float) -> dict[str, float]:
    return {
        "repops_ms": t_rep * 1e3, "torch_kernels_ms": t_slow * 1e3, "torch_ms": t_ref * 1e3, "ratio": t_rep / t_ref,
    }  # fmt: skip


# --------------------------------------------------------------------------------------------------
# MLP: 64 -> 128 -> 10, batch 64, ReLU, cross-entropy, AdamW
# --------------------------------------------------------------------------------------------------


def mlp_case(repeat: int) -> dict[str, float]:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 64, generator=g), torch.randint(0, 10, (64,), generator=g)
    params = [
        torch.randn(128, 64, generator=g) * 0.1,
        torch.zeros(128),
        torch.randn(10, 128, generator=g) * 0.1,
        torch.zeros(10),
    ]
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]

    def rep_step() -> None:
        w1, b1, w2, b2 = params
        h = R.linear(x, w1, b1)
        a = R.relu(h)
        z = R.linear(a, w2, b2)
        R.cross_entropy(z, y)
        dz = R.cross_entropy_backward(z, y)
        da, dw2, db2 = R.linear_backward(a, w2, dz)
        dh = R.relu_backward(h, da)
        _, dw1, db1 = R.linear_backward(x, w1, dh)
        for p, gr, (m, v) in zip(params, [dw1, db1, dw2, db2], moments, strict=True):
            R.adamw_step(p, gr, m, v, 1, 1e-3, weight_decay=0.01)

    ref_params = [p.clone().requires_grad_(True) for p in params]
    opt = torch.optim.AdamW(ref_params, lr=1e-3, weight_decay=0.01)

    def ref_step() -> None:
        w1, b1, w2, b2 = ref_params
        loss = F.cross_entropy(F.linear(torch.relu(F.linear(x, w1, b1)), w2, b2), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    t_rep = best_of(rep_step, repeat)
    t_slow = without_fast_path(rep_step, repeat)
    t_ref = best_of(ref_step, repeat)
    return _result(t_rep, t_slow, t_ref)


# --------------------------------------------------------------------------------------------------
# tiny GPT: vocab 65, context 64, width 64, 4 heads, 2 layers, batch 8
# --------------------------------------------------------------------------------------------------

V, T, D, H, L, B = 65, 64, 64, 4, 2, 8


def gpt_params(g: torch.Generator) -> dict[str, torch.Tensor]:
    p = {"wte": torch.randn(V, D, generator=g) * 0.02, "wpe": torch.randn(T, D, generator=g) * 0.02}
    for i in range(L):
        p[f"{i}.ln1g"], p[f"{i}.ln1b"] = torch.ones(D), torch.zeros(D)
        p[f"{i}.wqkv"], p[f"{i}.bqkv"] = torch.randn(3 * D, D, generator=g) * 0.02, torch.zeros(3 * D)
        p[f"{i}.wo"], p[f"{i}.bo"] = torch.randn(D, D, generator=g) * 0.02, torch.zeros(D)
        p[f"{i}.ln2g"], p[f"{i}.ln2b"] = torch.ones(D), torch.zeros(D)
        p[f"{i}.wfc"], p[f"{i}.bfc"] = torch.randn(4 * D, D, generator=g) * 0.02, torch.zeros(4 * D)
        p[f"{i}.wpr"], p[f"{i}.bpr"] = torch.randn(D, 4 * D, generator=g) * 0.02, torch.zeros(D)
    p["lnfg"], p["lnfb"] = torch.ones(D), torch.zeros(D)
    return p


def gpt_rep_step(p: dict[str, torch.Tensor], idx: torch.Tensor, tgt: torch.Tensor, st: dict) -> torch.Tensor:
    pos = torch.arange(T).repeat(B)
    x = R.add(R.embedding(idx, p["wte"]), R.embedding(pos, p["wpe"]))
    saved = []
    for i in range(L):
        n1, s1 = R.layernorm(x, p[f"{i}.ln1g"], p[f"{i}.ln1b"])
        qkv = R.linear(n1, p[f"{i}.wqkv"], p[f"{i}.bqkv"])
        att, probs = R.attention(qkv, B, H)
        x1 = R.add(x, R.linear(att, p[f"{i}.wo"], p[f"{i}.bo"]))
        n2, s2 = R.layernorm(x1, p[f"{i}.ln2g"], p[f"{i}.ln2b"])
        f = R.linear(n2, p[f"{i}.wfc"], p[f"{i}.bfc"])
        gl = R.gelu(f)
        x2 = R.add(x1, R.linear(gl, p[f"{i}.wpr"], p[f"{i}.bpr"]))
        saved.append((x, n1, s1, qkv, att, probs, x1, n2, s2, f, gl))
        x = x2
    nf, sf = R.layernorm(x, p["lnfg"], p["lnfb"])
    logits = R.linear(nf, p["wte"])
    loss = R.cross_entropy(logits, tgt)
    grads: dict[str, torch.Tensor] = {}
    dlog = R.cross_entropy_backward(logits, tgt)
    dnf, grads["wte"], _ = R.linear_backward(nf, p["wte"], dlog, bias=False)
    dx, grads["lnfg"], grads["lnfb"] = R.layernorm_backward(x, sf, p["lnfg"], dnf)
    for i in reversed(range(L)):
        x0, n1, s1, qkv, att, probs, x1, n2, s2, f, gl = saved[i]
        dgl, grads[f"{i}.wpr"], grads[f"{i}.bpr"] = R.linear_backward(gl, p[f"{i}.wpr"], dx)
        df = R.gelu_backward(f, dgl)
        dn2, grads[f"{i}.wfc"], grads[f"{i}.bfc"] = R.linear_backward(n2, p[f"{i}.wfc"], df)
        dln2, grads[f"{i}.ln2g"], grads[f"{i}.ln2b"] = R.layernorm_backward(x1, s2, p[f"{i}.ln2g"], dn2)
        dx1 = R.add(dx, dln2)
        datt, grads[f"{i}.wo"], grads[f"{i}.bo"] = R.linear_backward(att, p[f"{i}.wo"], dx1)
        dqkv = R.attention_backward(qkv, probs, datt, B, H)
        dn1, grads[f"{i}.wqkv"], grads[f"{i}.bqkv"] = R.linear_backward(n1, p[f"{i}.wqkv"], dqkv)
        dln1, grads[f"{i}.ln1g"], grads[f"{i}.ln1b"] = R.layernorm_backward(x0, s1, p[f"{i}.ln1g"], dn1)
        dx = R.add(dx1, dln1)
    grads["wte"] = R.add(grads["wte"], R.embedding_backward(idx, dx, V))
    grads["wpe"] = R.embedding_backward(pos, dx, T)
    st["t"] = st.get("t", 0) + 1
    for name, w in p.items():
        m, v = st.setdefault(name, (torch.zeros_like(w), torch.zeros_like(w)))
        p[name], m, v = R.adamw_step(w, grads[name], m, v, st["t"], 3e-4, weight_decay=0.01)
        st[name] = (m, v)
    return loss


def gpt_ref_step(
    p: dict[str, torch.Tensor], idx: torch.Tensor, tgt: torch.Tensor, opt: torch.optim.Optimizer
) -> torch.Tensor:
    pos = torch.arange(T)
    x = (p["wte"][idx.view(B, T)] + p["wpe"][pos]).view(B * T, D)
    for i in range(L):
        n1 = F.layer_norm(x, (D,), p[f"{i}.ln1g"], p[f"{i}.ln1b"])
        q, k, v = F.linear(n1, p[f"{i}.wqkv"], p[f"{i}.bqkv"]).view(B, T, 3, H, D // H).unbind(2)
        att = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
        )
        x = x + F.linear(att.transpose(1, 2).reshape(B * T, D), p[f"{i}.wo"], p[f"{i}.bo"])
        n2 = F.layer_norm(x, (D,), p[f"{i}.ln2g"], p[f"{i}.ln2b"])
        x = x + F.linear(
            F.gelu(F.linear(n2, p[f"{i}.wfc"], p[f"{i}.bfc"]), approximate="tanh"),
            p[f"{i}.wpr"],
            p[f"{i}.bpr"],
        )
    logits = F.linear(F.layer_norm(x, (D,), p["lnfg"], p["lnfb"]), p["wte"])
    loss = F.cross_entropy(logits, tgt)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def gpt_case(repeat: int) -> dict[str, float]:
    g = torch.Generator().manual_seed(0)
    p = gpt_params(g)
    idx, tgt = torch.randint(0, V, (B * T,), generator=g), torch.randint(0, V, (B * T,), generator=g)
    st: dict = {}
    rp = {k: v.clone() for k, v in p.items()}
    t_rep = best_of(lambda: gpt_rep_step(rp, idx, tgt, st), repeat)
    t_slow = without_fast_path(lambda: gpt_rep_step(rp, idx, tgt, st), repeat)
    ref = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    opt = torch.optim.AdamW(list(ref.values()), lr=3e-4, weight_decay=0.01)
    t_ref = best_of(lambda: gpt_ref_step(ref, idx, tgt, opt), repeat)
    return _result(t_rep, t_slow, t_ref)


def main() -> None:
    quick = "--quick" in sys.argv
    torch.set_num_threads(1)
    R.check_policy("cpu")
    rep = 2 if quick else 5
    result = {
        "device": "cpu",
        "threads": 1,
        "fastcpu": fastcpu.available(),
        "matmul_256": matmul_case(256, rep),
        "mlp_step": mlp_case(rep),
        "gpt_step": gpt_case(1 if quick else 3),
    }
    for name in ("matmul_256", "mlp_step", "gpt_step"):
        r = result[name]
        print(
            f"{name:12s} repops {r['repops_ms']:9.2f} ms   torch {r['torch_ms']:8.2f} ms   ratio {r['ratio']:6.1f}"
            f"   (without the fast path {r['torch_kernels_ms']:9.2f} ms)"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()

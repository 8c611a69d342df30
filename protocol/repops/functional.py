"""The RepOps functions training code calls: forward ops, their explicit backward ops, optimizers.

Each function is one or more recorded ops (see :func:`protocol.repops.tape.apply`); the op names in
the docstrings are the ones that appear in op-level traces. Tensors are float32 (indices int64),
on any device; results are bit-identical across devices and thread counts. No torch autograd.
"""

from __future__ import annotations

import torch

from protocol.repops.tape import apply

Tensor = torch.Tensor


# linear algebra ------------------------------------------------------------------------------------


def matmul(a: Tensor, b: Tensor, ta: bool = False, tb: bool = False) -> Tensor:
    """``op(a) @ op(b)`` over matching leading batch dims, op = transpose of the last two dims if set.

    Op ``matmul``: out[..., i, j] = sum over k ascending from +0 of a[..., i, k] * b[..., k, j].
    """
    return apply("matmul", [a, b], {"ta": bool(ta), "tb": bool(tb)})


def linear(x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
    """``x @ w.T + b`` with x (R, K), w (N, K), b (N,). Ops ``linear`` / ``linear_nobias``."""
    if b is None:
        return apply("linear_nobias", [x, w])
    return apply("linear", [x, w, b])


def linear_backward(
    x: Tensor, w: Tensor, dy: Tensor, bias: bool = True
) -> tuple[Tensor, Tensor, Tensor | None]:
    """(dx, dw, db) of :func:`linear`: dx = dy @ w, dw = dy.T @ x (a fixed-order sum over the batch
    rows), db = column sums of dy (``sum_rows``)."""
    dx = matmul(dy, w)
    dw = matmul(dy, x, ta=True)
    db = sum_rows(dy) if bias else None
    return dx, dw, db


def sum_rows(x: Tensor) -> Tensor:
    """Column sums of a 2-D tensor, rows added in order from +0. Op ``sum_rows``."""
    return apply("sum_rows", [x])


def mean(x: Tensor) -> Tensor:
    """Mean of all elements (row-major order from +0, then one division). Op ``mean``, a 0-dim tensor."""
    return apply("mean", [x])


# elementwise ---------------------------------------------------------------------------------------


def add(a: Tensor, b: Tensor) -> Tensor:
    """a + b, b broadcast to a's shape. Op ``add``."""
    return apply("add", [a, b])


def sub(a: Tensor, b: Tensor) -> Tensor:
    """a - b, b broadcast to a's shape. Op ``sub``."""
    return apply("sub", [a, b])


def mul(a: Tensor, b: Tensor) -> Tensor:
    """a * b, b broadcast to a's shape. Op ``mul``."""
    return apply("mul", [a, b])


def scale(x: Tensor, c: float) -> Tensor:
    """x * c for a constant c (rounded to binary32). Op ``scale``."""
    return apply("scale", [x], {"c": float(c)})


def relu(x: Tensor) -> Tensor:
    """max(x, 0) as FMAX(x, +0): NaN propagates, relu(-0) = -0. Op ``relu``."""
    return apply("relu", [x])


def relu_backward(x: Tensor, dy: Tensor) -> Tensor:
    """dy where x > 0, else +0. Op ``relu_backward``."""
    return apply("relu_backward", [x, dy])


def gelu(x: Tensor) -> Tensor:
    """GELU, tanh form: 0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x^3))). Op ``gelu``."""
    return apply("gelu", [x])


def gelu_backward(x: Tensor, dy: Tensor) -> Tensor:
    """dy * d gelu/dx (tanh form). Op ``gelu_backward``."""
    return apply("gelu_backward", [x, dy])


# softmax and losses --------------------------------------------------------------------------------


def softmax(x: Tensor) -> Tensor:
    """Softmax over the last dim: m = row max, e = exp(x - m), s = row sum of e, e / s. Op ``softmax``."""
    return apply("softmax", [x])


def softmax_backward(p: Tensor, dp: Tensor) -> Tensor:
    """dx = p * (dp - sum_t dp_t p_t) for p = softmax(x). Op ``softmax_backward``."""
    return apply("softmax_backward", [p, dp])


def log_softmax(x: Tensor) -> Tensor:
    """(x - m) - log(s) over the last dim. Op ``log_softmax``."""
    return apply("log_softmax", [x])


def log_softmax_backward(logp: Tensor, dy: Tensor) -> Tensor:
    """dx = dy - exp(logp) * sum_t dy_t for logp = log_softmax(x). Op ``log_softmax_backward``."""
    return apply("log_softmax_backward", [logp, dy])


def cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean over the batch of -log softmax(logits)[target]: a 0-dim tensor.

    Ops ``cross_entropy`` (per row: m + log(s) - logits[target]) then ``mean`` (rows in order).
    """
    return mean(apply("cross_entropy", [logits, targets]))


def cross_entropy_backward(logits: Tensor, targets: Tensor, dloss: Tensor | None = None) -> Tensor:
    """d loss / d logits = (softmax - onehot) * (dloss / B). Op ``cross_entropy_backward``."""
    if dloss is None:
        dloss = torch.ones((), dtype=torch.float32, device=logits.device)
    return apply("cross_entropy_backward", [logits, targets, dloss], {"batch": int(logits.shape[0])})


# optimizers ----------------------------------------------------------------------------------------


def sgd_step(p: Tensor, g: Tensor, lr: float) -> Tensor:
    """p - lr * g. Op ``sgd``."""
    return apply("sgd", [p, g], {"lr": float(lr)})


def adamw_step(
    p: Tensor,
    g: Tensor,
    m: Tensor,
    v: Tensor,
    step: int,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """One AdamW update (decoupled weight decay); ``step`` counts from 1. Returns (p', m', v').

    Ops ``adam_m``: m' = b1*m + (1-b1)*g; ``adam_v``: v' = b2*v + (1-b2)*(g*g); ``adamw``:
    p' = (p - (lr*wd)*p) - lr * ((m'/bc1) / (sqrt(v'/bc2) + eps)), bc = 1 - beta^step computed in
    binary32 by square-and-multiply, lr*wd rounded once.
    """
    attrs = {
        "lr": float(lr), "beta1": float(beta1), "beta2": float(beta2), "eps": float(eps),
        "weight_decay": float(weight_decay), "step": int(step),
    }  # fmt: skip
    m2 = apply("adam_m", [m, g], attrs)
    v2 = apply("adam_v", [v, g], attrs)
    p2 = apply("adamw", [p, m2, v2], attrs)
    return p2, m2, v2


# elementary functions as ops -----------------------------------------------------------------------


def sqrt(x: Tensor) -> Tensor:
    """RepOps square root (see fmath.sqrt). Op ``sqrt``."""
    return apply("sqrt", [x])


def exp(x: Tensor) -> Tensor:
    """RepOps exp. Op ``exp``."""
    return apply("exp", [x])


def log(x: Tensor) -> Tensor:
    """RepOps natural log. Op ``log``."""
    return apply("log", [x])


def tanh(x: Tensor) -> Tensor:
    """RepOps tanh. Op ``tanh``."""
    return apply("tanh", [x])


def erf(x: Tensor) -> Tensor:
    """RepOps error function. Op ``erf``."""
    return apply("erf", [x])


# layer norm ----------------------------------------------------------------------------------------


def layernorm(x: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Layer norm over the last dim of x (R, N). Returns (y, stats); keep stats for the backward pass.

    Ops ``layernorm_stats`` -> stats (R, 2) = [mean, rstd] with mean = (sum x)/N,
    var = (sum (x - mean)^2)/N, rstd = 1 / sqrt(var + eps); ``layernorm_apply`` ->
    y = ((x - mean) * rstd) * gamma + beta.
    """
    stats = apply("layernorm_stats", [x], {"eps": float(eps)})
    return apply("layernorm_apply", [x, stats, gamma, beta]), stats


def layernorm_backward(x: Tensor, stats: Tensor, gamma: Tensor, dy: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(dx, dgamma, dbeta) of :func:`layernorm`.

    Ops ``layernorm_backward``: xhat = (x - mean) * rstd, g = dy * gamma, a = (sum g)/N,
    b = (sum g*xhat)/N, dx = ((g - a) - xhat*b) * rstd; ``layernorm_dgamma``: sum over rows of
    dy*xhat; ``sum_rows``: dbeta.
    """
    dx = apply("layernorm_backward", [x, stats, gamma, dy])
    dgamma = apply("layernorm_dgamma", [x, stats, dy])
    return dx, dgamma, sum_rows(dy)


# embedding -----------------------------------------------------------------------------------------


def embedding(ids: Tensor, table: Tensor) -> Tensor:
    """Rows of ``table`` (V, D) picked by int ids (P,): a LOAD of table[ids[p]*D + j]. Op ``embedding``."""
    return apply("embedding", [ids, table])


def embedding_backward(ids: Tensor, dy: Tensor, num_embeddings: int) -> Tensor:
    """d table: for each row v, the dy rows of positions p with ids[p] == v added in increasing p from +0.

    Op ``embedding_backward`` (scalar program: acc <- SELECT(ids[p] == v, acc + dy[p, j], acc) for
    every p).
    """
    return apply("embedding_backward", [ids, dy], {"num_embeddings": int(num_embeddings)})


# causal self-attention -----------------------------------------------------------------------------


def attention(qkv: Tensor, batch: int, n_head: int) -> tuple[Tensor, Tensor]:
    """Causal multi-head self-attention on packed ``qkv`` (B*T, 3*D) = [q | k | v], heads contiguous.

    Returns (y (B*T, D), probs (B, H, T, T)); keep probs for the backward pass. Ops ``attn_scores``:
    S = (sum_d q*k) * (1/sqrt(Dh)), -inf above the diagonal; ``softmax``; ``attn_apply``:
    y = sum over all s of P*v (masked terms are exact zeros).
    """
    a = {"batch": int(batch), "n_head": int(n_head)}
    probs = softmax(apply("attn_scores", [qkv], a))
    return apply("attn_apply", [probs, qkv], a), probs


def attention_backward(qkv: Tensor, probs: Tensor, dy: Tensor, batch: int, n_head: int) -> Tensor:
    """d qkv of :func:`attention` given dy (B*T, D).

    Ops ``attn_dprobs``: dP = sum_d dy*v; ``softmax_backward``: dS; ``attn_dqkv``: dq = (sum_s dS*k)*scale,
    dk = (sum_t dS*q)*scale, dv = sum_t P*dy, packed like qkv.
    """
    a = {"batch": int(batch), "n_head": int(n_head)}
    dprobs = apply("attn_dprobs", [dy, qkv], a)
    dscores = softmax_backward(probs, dprobs)
    return apply("attn_dqkv", [dscores, qkv, probs, dy], a)

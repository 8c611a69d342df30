"""Op definitions: softmax family, cross-entropy, layer norm, embedding and causal self-attention,
with their backward passes. Each ``register(OpDef(...))`` defines one op (docs/REPOPS.md §6)."""

from __future__ import annotations

import math

import torch

from protocol.repops import fmath
from protocol.repops.linalg import matmul_domain, matmul_restrict
from protocol.repops.ops import (
    OpDef,
    f32,
    identity_views,
    perm,
    register,
    rows_restrict,
    same_shape,
)
from protocol.repops.policy import RepOpsError
from protocol.repops.reduce import dot, fixed_sum, row_sum, softmax_rows

# --------------------------------------------------------------------------------------------------
# softmax family
# --------------------------------------------------------------------------------------------------


def _softmax_kernel(k, v, attrs):
    _, e, s = softmax_rows(k, v[0])
    return k.div(e, s)


def _log_softmax_kernel(k, v, attrs):
    x = v[0]
    m, _, s = softmax_rows(k, x)
    return k.sub(k.sub(x, m), fmath.log(k, s))


def _softmax_backward_kernel(k, v, attrs):
    p, dp = v
    return k.mul(p, k.sub(dp, fixed_sum(k, dp, p)))


register(OpDef("softmax", 1, (), identity_views, same_shape, _softmax_kernel, rows_restrict))
register(OpDef("log_softmax", 1, (), identity_views, same_shape, _log_softmax_kernel, rows_restrict))
register(
    OpDef("softmax_backward", 2, (), identity_views, same_shape, _softmax_backward_kernel, rows_restrict)
)


def _log_softmax_backward_kernel(k, v, attrs):
    logp, dy = v
    return k.sub(dy, k.mul(fmath.exp(k, logp), row_sum(k, dy)))


register(OpDef(
    "log_softmax_backward", 2, (), identity_views, same_shape, _log_softmax_backward_kernel, rows_restrict,
))  # fmt: skip


def _ce_domain(shapes, attrs):
    z, t = shapes
    if len(z) != 2 or t != (z[0],):
        raise RepOpsError(f"cross_entropy: logits {z} and targets {t} (want (B, V) and (B,))")
    return (z[0],)


def _ce_kernel(k, v, attrs):
    z, tgt = v
    n_cls = z.shape[-1]
    m, _, s = softmax_rows(k, z)
    lse = k.add(m, fmath.log(k, s))
    idx = k.iadd(k.imul(k.static_int(k.coords[0].reshape(-1, 1)), k.imm(n_cls)), tgt.reshape(-1, 1))
    picked = k.load(0, idx)
    return k.sub(lse, picked).reshape(-1)


register(OpDef(
    "cross_entropy", 2, (1,), identity_views, _ce_domain, _ce_kernel,
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
    _, e, s = softmax_rows(k, z)
    p = k.div(e, s)
    hit = k.ieq(tgt.reshape(-1, 1), k.static_int(k.coords[1]))
    return k.mul(k.select(hit, k.sub(p, k.const(1.0)), p), g)


register(OpDef(
    "cross_entropy_backward", 3, (1,), identity_views, _ce_bwd_domain, _ce_bwd_kernel,
    restrict=lambda pos, s, a: (
        [(slice(pos[0], pos[0] + 1), slice(None)), (slice(pos[0], pos[0] + 1),), None], (0,)
    ),
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
    mu = k.div(row_sum(k, x), n)
    d = k.sub(x, mu)
    var = k.div(fixed_sum(k, d, d), n)
    rstd = k.div(k.const(1.0), fmath.sqrt(k, k.add(var, k.const(attrs["eps"]))))
    return k.cat([mu, rstd], -1)


register(OpDef(
    "layernorm_stats", 1, (), identity_views,
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


register(OpDef(
    "layernorm_apply", 4, (), identity_views, lambda s, a: _ln_check(s, a), _ln_apply_kernel, _ln_apply_restrict,
))  # fmt: skip


def _ln_backward_kernel(k, v, attrs):
    x, stats, gamma, dy = v
    n = k.const(float(x.shape[-1]))
    xhat = _xhat(k, x, stats)
    dxhat = k.mul(dy, gamma)
    a = k.div(row_sum(k, dxhat), n)
    b = k.div(fixed_sum(k, dxhat, xhat), n)
    return k.mul(k.sub(k.sub(dxhat, a), k.mul(xhat, b)), stats[..., 1:2])


register(OpDef(
    "layernorm_backward", 4, (), identity_views, lambda s, a: _ln_check(s, a), _ln_backward_kernel, rows_restrict,
))  # fmt: skip


def _ln_dgamma_kernel(k, v, attrs):
    x, stats, dy = v
    xhat = _xhat(k, x, stats)
    return fixed_sum(k, dy.transpose(0, 1), xhat.transpose(0, 1))[..., 0]


register(OpDef(
    "layernorm_dgamma", 3, (), identity_views,
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
    if not k.tracing and not k.capturing and ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n_rows):
        raise RepOpsError(
            f"embedding: ids must lie in [0, {n_rows}), got [{int(ids.min())}, {int(ids.max())}]"
        )
    idx = k.iadd(k.imul(ids.reshape(-1, 1), k.imm(dim)), k.static_int(k.coords[1]))
    return k.load(1, idx)


register(OpDef(
    "embedding", 2, (0,), identity_views, _emb_domain, _emb_kernel,
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
    if k.capturing:  # no host reads while a CUDA graph is captured: the canonical loop itself
        return _emb_bwd_kernel(k, v, attrs)
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


register(OpDef(
    "embedding_backward", 2, (0,), identity_views, _emb_bwd_domain, _emb_bwd_kernel,
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
    return float(f32(1.0 / math.sqrt(head_dim)))


def _scores_views(xs, attrs):
    q5 = _qkv5(xs[0], attrs)
    return [perm(q5[:, :, 0], (0, 2, 1, 3)), perm(q5[:, :, 1], (0, 2, 3, 1))]


def _scores_kernel(k, v, attrs):
    q, kt = v
    s = k.mul(dot(k, q, kt), k.const(attn_scale(k.view_shapes[0][-1])))
    causal = k.static_cond(k.coords[3] <= k.coords[2])
    return k.select(causal, s, k.neg(fmath.inf(k)))


register(OpDef(
    "attn_scores", 1, (), _scores_views, matmul_domain, _scores_kernel, matmul_restrict, view_slots=(0, 0),
))  # fmt: skip


def _apply_views(xs, attrs):
    p, qkv = xs
    return [perm(p, (0, 2, 1, 3)), _qkv5(qkv, attrs)[:, :, 2]]


def _apply_domain(shapes, attrs):
    a, vv = shapes
    if a[:3] != (vv[0], vv[0 + 1], vv[2]) or a[3] != vv[1]:
        raise RepOpsError(f"attn_apply: probabilities {a} (as B,T,H,S) and values {vv} disagree")
    return vv


def _sum_lane(k, a, b):
    """out[b, i, h, d] = sum_t a[b, i, h, t] * m[b, t, h, d] (a (B, I, H, T), m (B, T, H, Dh))."""
    return fixed_sum(k, a.unsqueeze(-2), perm(b, (0, 2, 3, 1)).unsqueeze(1))[..., 0]


def _apply_kernel(k, v, attrs):
    return _sum_lane(k, v[0], v[1])


def _apply_restrict(pos, shapes, attrs):
    b, t, h, d = pos
    return [
        (slice(b, b + 1), slice(t, t + 1), slice(h, h + 1), slice(None)),
        (slice(b, b + 1), slice(None), slice(h, h + 1), slice(d, d + 1)),
    ], (0, 1, 2, 3)


register(OpDef(
    "attn_apply", 2, (), _apply_views, _apply_domain, _apply_kernel, _apply_restrict,
    out_shape=lambda s, a: (s[1][0] * s[1][1], s[1][2] * s[1][3]),
))  # fmt: skip


def _dprobs_views(xs, attrs):
    dy, qkv = xs
    return [perm(_heads(dy, attrs), (0, 2, 1, 3)), perm(_qkv5(qkv, attrs)[:, :, 2], (0, 2, 3, 1))]


register(OpDef(
    "attn_dprobs", 2, (), _dprobs_views, matmul_domain,
    kernel=lambda k, v, a: dot(k, v[0], v[1]),
    restrict=matmul_restrict,
))  # fmt: skip


def _dqkv_views(xs, attrs):
    ds, qkv, p, dy = xs
    q5 = _qkv5(qkv, attrs)
    return [
        perm(ds, (0, 2, 1, 3)),  # [b, t, h, s] = dS[b, h, t, s]
        q5[:, :, 1],  # k as (B, S, H, Dh)
        perm(ds, (0, 3, 1, 2)),  # [b, s, h, t] = dS[b, h, t, s]
        q5[:, :, 0],  # q as (B, T, H, Dh)
        perm(p, (0, 3, 1, 2)),  # [b, s, h, t] = P[b, h, t, s]
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


register(OpDef(
    "attn_dqkv", 4, (), _dqkv_views, _dqkv_domain, _dqkv_kernel, _dqkv_restrict,
    out_shape=lambda s, a: (s[1][0] * s[1][1], 3 * s[1][2] * s[1][3]),
    view_slots=(0, 1, 0, 1, 2, 3),
))  # fmt: skip

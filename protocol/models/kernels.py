"""Deterministic float32 kernels the reference models are written with.

Every kernel here is built only from IEEE-754 binary32 + - * /, comparisons, selects, exact
rounding-to-integer and integer operations on the float's bits, evaluated as separate elementwise
tensor operations (never fused, so no FMA contraction), and every reduction uses one fixed order:

**tree order** -- ``tree_sum(v[0..n))`` adds adjacent pairs level by level,
``v'[i] = v[2i] + v[2i+1]``, an odd last element carried unchanged to the next level, until one value
is left. This order is what the scalar programs of ``protocol.trace`` replay element by element.

Those operations round identically on every IEEE device (DESIGN §2), so the kernels give the same bits
on any CPU and on CUDA. Transcendentals are computed here from those operations:

* ``exp``: Cody-Waite range reduction ``x = n ln2 + r`` (``n`` = round(x log2 e)), a degree-7
  Taylor polynomial on ``|r| <= 0.35`` in Horner form, and a scale by ``2**n`` built from the exponent
  bits in two steps (so subnormal results underflow gradually). Max error 2 ulp against float64 on
  [-87, 88] (``tests/test_train_kernels.py`` measures it).
* ``log``: exponent/mantissa split on the bits (subnormals pre-scaled by 2**23), mantissa folded to
  [sqrt(1/2), sqrt(2)), ``log(1+f) = 2 atanh(s)``, ``s = f/(2+f)``, odd polynomial in ``s``. 2 ulp.
* ``rsqrt``/``sqrt``: exponent-halving initial guess from the bits, then four Newton steps; 2 ulp.
* ``tanh(u) = 1 - 2 / (exp(2u) + 1)`` (absolute error below 2**-23, which is what GELU needs).

NaN policy: inputs are finite in training; ``exp`` saturates to +inf above 88.72 and to 0 below
-103.97, ``log`` of a negative number or NaN returns the canonical quiet NaN 0x7FC00000 and of 0
returns -inf.
"""

from __future__ import annotations

import torch

F32 = torch.float32
CANONICAL_NAN_BITS = 0x7FC00000

# ----------------------------------------------------------------------------------------------
# Reductions and matrix products in tree order
# ----------------------------------------------------------------------------------------------


def tree_sum(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Sum along ``dim`` in tree order (adjacent pairs, odd tail carried), dimension removed.

    A last-dim sum first moves the dim to the front (a copy), so each level adds contiguous blocks
    rather than every other element; the layout changes only speed, never which values are added.
    """
    dim = dim % x.dim()
    n = x.shape[dim]
    if n == 0:
        shape = list(x.shape)
        del shape[dim]
        return torch.zeros(shape, dtype=x.dtype, device=x.device)
    if dim == x.dim() - 1 and dim > 0:
        x = x.movedim(dim, 0).contiguous()
        dim = 0
    while n > 1:
        half = n // 2
        pairs = x.narrow(dim, 0, 2 * half).unflatten(dim, (half, 2))
        s = pairs.select(dim + 1, 0) + pairs.select(dim + 1, 1)
        if n % 2:
            s = torch.cat([s, x.narrow(dim, n - 1, 1)], dim)
        x = s
        n = x.shape[dim]
    return x.squeeze(dim)


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` over the last two dims (leading dims batched): ``c[m,n] = tree_sum_k(a[m,k]*b[k,n])``.

    The products are exact-rounded float32 multiplications, then one tree-order sum over k.
    """
    return tree_sum(a.unsqueeze(-1) * b.unsqueeze(-3), dim=-2)


# ----------------------------------------------------------------------------------------------
# Elementary functions from + - * / and bit operations
# ----------------------------------------------------------------------------------------------

_LOG2E = 1.44269502
_LN2_HI = 0.693145751953125  # 11 significant bits: n * _LN2_HI is exact for |n| < 2**13
_LN2_LO = 1.428606765330187e-06
_EXP_MAX = 88.72283935546875
_EXP_MIN = -103.97207641601562
_EXP_COEF = (1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5, 1.0, 1.0)


def _c(x: float, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(x, dtype=F32, device=like.device)


def _pow2(n: torch.Tensor) -> torch.Tensor:
    """``2**n`` for integer-valued float32 ``n`` in [-126, 127], from the exponent bits."""
    bits = (n.to(torch.int32) + 127) << 23
    return bits.view(F32)


def canonical_nan(like: torch.Tensor) -> torch.Tensor:
    """The one NaN every kernel returns (quiet, positive, payload 0)."""
    return torch.tensor(CANONICAL_NAN_BITS, dtype=torch.int32, device=like.device).view(F32)


def exp(x: torch.Tensor) -> torch.Tensor:
    """e**x in float32 (see the module docstring for the algorithm)."""
    xc = torch.clamp(x, _EXP_MIN, _EXP_MAX)
    n = torch.round(xc * _c(_LOG2E, x))
    r = (xc - n * _c(_LN2_HI, x)) - n * _c(_LN2_LO, x)
    p = _c(_EXP_COEF[0], x).expand_as(r)
    for coef in _EXP_COEF[1:]:
        p = p * r + _c(coef, x)
    # 2**n in two factors so that n down to -150 scales gradually into the subnormals.
    n1 = torch.clamp(n, -126.0, 127.0)
    n2 = torch.clamp(n - n1, -126.0, 0.0)
    y = (p * _pow2(n1)) * _pow2(n2)
    y = torch.where(x > _EXP_MAX, _c(float("inf"), x), y)
    y = torch.where(x < _EXP_MIN, _c(0.0, x), y)
    return torch.where(torch.isnan(x), canonical_nan(x), y)


_LOG_COEF = (2.0 / 9, 2.0 / 7, 2.0 / 5, 2.0 / 3, 2.0)  # 2 atanh(s) = 2s + 2s^3/3 + ... (odd powers)
_SQRT2 = 1.41421353816986083984375


def log(x: torch.Tensor) -> torch.Tensor:
    """Natural logarithm in float32 (see the module docstring)."""
    sub = x < 1.1754943508222875e-38
    xs = torch.where(sub, x * _c(8388608.0, x), x)  # 2**23: normalises positive subnormals exactly
    bits = xs.view(torch.int32)
    e = ((bits >> 23) & 0xFF) - 127
    m = ((bits & 0x007FFFFF) | 0x3F800000).view(F32)  # mantissa in [1, 2)
    big = m > _SQRT2
    m = torch.where(big, m * _c(0.5, x), m)
    e = e + big.to(torch.int32) - torch.where(sub, 23, 0).to(torch.int32)
    f = m - _c(1.0, x)
    s = f / (_c(2.0, x) + f)
    z = s * s
    p = _c(_LOG_COEF[0], x).expand_as(z)
    for coef in _LOG_COEF[1:]:
        p = p * z + _c(coef, x)
    ef = e.to(F32)
    y = (ef * _c(_LN2_HI, x) + (ef * _c(_LN2_LO, x) + s * p))
    y = torch.where(x == 0, _c(float("-inf"), x), y)
    y = torch.where(x == float("inf"), x, y)
    return torch.where((x < 0) | torch.isnan(x), canonical_nan(x), y)


def rsqrt(x: torch.Tensor) -> torch.Tensor:
    """1/sqrt(x) for x > 0 (x = 0 gives +inf): bit-level initial guess, four Newton steps."""
    bits = x.view(torch.int32)
    y = (0x5F3759DF - (bits >> 1)).view(F32)
    half = _c(0.5, x) * x
    three_halves = _c(1.5, x)
    for _ in range(4):
        y = y * (three_halves - half * y * y)
    y = torch.where(x == 0, _c(float("inf"), x), y)
    return torch.where((x < 0) | torch.isnan(x), canonical_nan(x), y)


def sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt(x) for x >= 0: ``x * rsqrt(x)`` then one Newton correction ``(y + x/y) / 2``."""
    y = x * rsqrt(x)
    y = (y + x / y) * _c(0.5, x)
    y = torch.where(x == 0, x, y)
    y = torch.where(x == float("inf"), x, y)
    return torch.where((x < 0) | torch.isnan(x), canonical_nan(x), y)


def tanh(u: torch.Tensor) -> torch.Tensor:
    """tanh(u) = 1 - 2/(exp(2u) + 1), saturating cleanly at +-1."""
    one = _c(1.0, u)
    return one - _c(2.0, u) / (exp(u + u) + one)


# ----------------------------------------------------------------------------------------------
# Network kernels (each returns one tensor)
# ----------------------------------------------------------------------------------------------

_GELU_K = 0.7978845834732056  # sqrt(2/pi) in float32
_GELU_C = 0.044714998453855515  # 0.044715 in float32


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``x @ w + b`` over the last dim of ``x`` (leading dims flattened): ``w`` is ``[in, out]``.

    Element ``y[n, o] = tree_sum_k(x[n, k] * w[k, o]) + b[o]``.
    """
    y = matmul(x.reshape(-1, x.shape[-1]), w) + b
    return y.reshape(*x.shape[:-1], w.shape[1])


def linear_grad_w(x: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """dW = x^T dy over all rows (leading dims flattened): ``dw[i, o] = tree_sum_n(x[n, i] * dy[n, o])``."""
    return matmul(x.reshape(-1, x.shape[-1]).t(), dy.reshape(-1, dy.shape[-1]))


def linear_grad_x(dy: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """dx = dy W^T: ``dx[n, i] = tree_sum_o(dy[n, o] * w[i, o])``."""
    y = matmul(dy.reshape(-1, dy.shape[-1]), w.t())
    return y.reshape(*dy.shape[:-1], w.shape[0])


def add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Elementwise sum with broadcasting (residual connections, position embeddings)."""
    return a + b


def sum_batch(x: torch.Tensor) -> torch.Tensor:
    """Tree-order sum over dim 0 (the position-embedding gradient: a sum over the batch)."""
    return tree_sum(x, 0)


def increment(step: torch.Tensor) -> torch.Tensor:
    """The step counter's update (int64)."""
    return step + 1


def relu(x: torch.Tensor) -> torch.Tensor:
    """max(x, 0) as a select (+0 for x <= 0)."""
    return torch.where(x > 0, x, _c(0.0, x))


def relu_backward(x: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """dy where x > 0, else +0."""
    return torch.where(x > 0, dy, _c(0.0, x))


def _gelu_inner(x: torch.Tensor) -> torch.Tensor:
    return _c(_GELU_K, x) * (x + _c(_GELU_C, x) * (x * x * x))


def gelu(x: torch.Tensor) -> torch.Tensor:
    """tanh-approximated GELU: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    t = tanh(_gelu_inner(x))
    return _c(0.5, x) * x * (_c(1.0, x) + t)


def gelu_backward(x: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """dy * d gelu/dx, with the derivative of the same tanh approximation."""
    t = tanh(_gelu_inner(x))
    one = _c(1.0, x)
    dinner = _c(_GELU_K, x) * (one + _c(3.0 * _GELU_C, x) * (x * x))
    d = _c(0.5, x) * (one + t) + _c(0.5, x) * x * ((one - t * t) * dinner)
    return dy * d


def softmax_lastdim(s: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim: exact max, exp(s - max), tree-order sum, one division."""
    mx = s.amax(dim=-1, keepdim=True)  # max is exact and order-independent
    e = exp(s - mx)
    return e / tree_sum(e, -1).unsqueeze(-1)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows (all leading dims flattened) of ``logsumexp(row) - row[target]``, 0-dim."""
    logits = logits.reshape(-1, logits.shape[-1])
    mx = logits.amax(dim=-1, keepdim=True)
    sh = logits - mx
    lse = log(tree_sum(exp(sh), -1))
    picked = sh.gather(-1, targets.reshape(-1, 1).long()).squeeze(-1)
    losses = lse - picked
    return tree_sum(losses, 0) / _c(float(losses.shape[0]), logits)


def cross_entropy_backward(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """d(mean loss)/d logits = (softmax - onehot) / rows, in the shape of ``logits``."""
    flat = logits.reshape(-1, logits.shape[-1])
    p = softmax_lastdim(flat)
    onehot = torch.zeros_like(p).scatter_(-1, targets.reshape(-1, 1).long(), 1.0)
    return ((p - onehot) / _c(float(flat.shape[0]), flat)).reshape(logits.shape)


def accuracy_count(logits: torch.Tensor, targets: torch.Tensor) -> int:
    """Rows whose arg-max (first maximum) is the target: exact, for reporting only."""
    flat = logits.reshape(-1, logits.shape[-1])
    return int((flat.argmax(dim=-1) == targets.reshape(-1).long()).sum().item())


_LN_EPS = 9.999999747378752e-06  # 1e-5 in float32


def _ln_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    d = _c(float(x.shape[-1]), x)
    mean = tree_sum(x, -1).unsqueeze(-1) / d
    xc = x - mean
    var = tree_sum(xc * xc, -1).unsqueeze(-1) / d
    return xc, rsqrt(var + _c(_LN_EPS, x))


def layer_norm(x: torch.Tensor, g: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(x - mean) * rsqrt(var + 1e-5) * g + b over the last dim (biased variance)."""
    xc, r = _ln_stats(x)
    return (xc * r) * g + b


def layer_norm_backward_x(x: torch.Tensor, g: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """dx = r * (dxh - mean(dxh) - xh * mean(dxh * xh)), with dxh = dy * g."""
    xc, r = _ln_stats(x)
    xh = xc * r
    dxh = dy * g
    d = _c(float(x.shape[-1]), x)
    m1 = tree_sum(dxh, -1).unsqueeze(-1) / d
    m2 = tree_sum(dxh * xh, -1).unsqueeze(-1) / d
    return r * ((dxh - m1) - xh * m2)


def layer_norm_backward_g(x: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """dg = tree-sum over rows of dy * xh (rows = all leading dims flattened)."""
    xc, r = _ln_stats(x)
    xh = xc * r
    return tree_sum((dy * xh).reshape(-1, x.shape[-1]), 0)


def sum_rows(x: torch.Tensor) -> torch.Tensor:
    """Tree-order sum over all leading dims flattened (a bias gradient)."""
    return tree_sum(x.reshape(-1, x.shape[-1]), 0)


def embedding(idx: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Row gather (exact)."""
    return table[idx.long()]


def embedding_backward(idx: torch.Tensor, dy: torch.Tensor, rows: int) -> torch.Tensor:
    """d table: for each vocabulary row, the tree-order sum over positions n of [idx[n]==row]*dy[n].

    Written as ``onehot(idx)^T @ dy`` (products are exact 0 or dy), never as atomics.
    """
    flat = idx.long().reshape(-1)
    onehot = torch.zeros(flat.shape[0], rows, dtype=F32, device=dy.device)
    onehot.scatter_(1, flat.unsqueeze(1), 1.0)
    return matmul(onehot.t(), dy.reshape(-1, dy.shape[-1]))


def causal_attention(qkv: torch.Tensor, n_head: int) -> torch.Tensor:
    """Multi-head causal self-attention from packed ``qkv`` [B, T, 3d] to [B, T, d]."""
    q, k, v, scale = _split_heads(qkv, n_head)
    p = _attn_probs(q, k, scale)
    out = matmul(p, v)  # [B, H, T, hd]
    b, h, t, hd = out.shape
    return out.permute(0, 2, 1, 3).reshape(b, t, h * hd)


def causal_attention_backward(qkv: torch.Tensor, dout: torch.Tensor, n_head: int) -> torch.Tensor:
    """d qkv of :func:`causal_attention` (probabilities recomputed, as the forward computed them)."""
    q, k, v, scale = _split_heads(qkv, n_head)
    p = _attn_probs(q, k, scale)
    b, t, d = dout.shape
    do = dout.reshape(b, t, n_head, d // n_head).permute(0, 2, 1, 3)
    dv = matmul(p.transpose(-1, -2), do)
    dp = matmul(do, v.transpose(-1, -2))
    ds = p * (dp - tree_sum(dp * p, -1).unsqueeze(-1))
    dq = matmul(ds, k) * scale
    dk = matmul(ds.transpose(-1, -2), q) * scale
    merged = [g.permute(0, 2, 1, 3).reshape(b, t, d) for g in (dq, dk, dv)]
    return torch.cat(merged, dim=-1)


def _split_heads(qkv: torch.Tensor, n_head: int) -> tuple[torch.Tensor, ...]:
    b, t, d3 = qkv.shape
    d = d3 // 3
    hd = d // n_head
    q, k, v = (qkv[..., i * d : (i + 1) * d].reshape(b, t, n_head, hd).permute(0, 2, 1, 3)
               for i in range(3))
    scale = rsqrt(_c(float(hd), qkv))
    return q, k, v, scale


def _attn_probs(q: torch.Tensor, k: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    t = q.shape[-2]
    s = matmul(q, k.transpose(-1, -2)) * scale
    mask = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
    s = torch.where(mask, _c(float("-inf"), q), s)
    return softmax_lastdim(s)


# ----------------------------------------------------------------------------------------------
# AdamW (decoupled weight decay), one tensor per kernel
# ----------------------------------------------------------------------------------------------


def adam_m(m: torch.Tensor, g: torch.Tensor, beta1: float) -> torch.Tensor:
    """m' = beta1 m + (1 - beta1) g."""
    return _c(beta1, m) * m + _c(1.0 - beta1, m) * g


def adam_v(v: torch.Tensor, g: torch.Tensor, beta2: float) -> torch.Tensor:
    """v' = beta2 v + (1 - beta2) g^2."""
    return _c(beta2, v) * v + _c(1.0 - beta2, v) * (g * g)


def adamw_update(p: torch.Tensor, m: torch.Tensor, v: torch.Tensor, lr: float, wd: float, eps: float,
                 bc1: float, bc2: float) -> torch.Tensor:
    """p' = p - lr (wd p + (m / bc1) / (sqrt(v / bc2) + eps)), bc_i = 1 - beta_i**t."""
    mhat = m / _c(bc1, p)
    vhat = v / _c(bc2, p)
    upd = mhat / (sqrt(vhat) + _c(eps, p)) + _c(wd, p) * p
    return p - _c(lr, p) * upd


#: Every op a training step may issue, by the name the tape records. This vocabulary is the contract
#: between the training engine and the scalar programs of ``protocol.repops``: an op record
#: ``(name, inputs, attrs)`` means ``KERNELS[name](*inputs, **attrs)``.
KERNELS = {
    "linear": linear,
    "linear_grad_w": linear_grad_w,
    "linear_grad_x": linear_grad_x,
    "add": add,
    "sum_rows": sum_rows,
    "sum_batch": sum_batch,
    "relu": relu,
    "relu_backward": relu_backward,
    "gelu": gelu,
    "gelu_backward": gelu_backward,
    "cross_entropy": cross_entropy,
    "cross_entropy_backward": cross_entropy_backward,
    "layer_norm": layer_norm,
    "layer_norm_backward_x": layer_norm_backward_x,
    "layer_norm_backward_g": layer_norm_backward_g,
    "embedding": embedding,
    "embedding_backward": embedding_backward,
    "causal_attention": causal_attention,
    "causal_attention_backward": causal_attention_backward,
    "adam_m": adam_m,
    "adam_v": adam_v,
    "adamw_update": adamw_update,
    "increment": increment,
}

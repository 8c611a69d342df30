"""Fixed-order reductions shared by the op kernels: chunked sums, dot products, row maxima.

Every reduction in RepOps goes through :func:`fixed_sum` (sums, dot products) or :func:`row_max`, so
the summation order is defined in exactly one place (docs/REPOPS.md §4).
"""

from __future__ import annotations

import math
from typing import Any

from protocol.repops import fmath

CHUNK = 64
"""Chunk length of reductions in ops that compute at least :data:`WIDE` output elements."""
WIDE = 16384


def chunking(n: int, m: int) -> tuple[int, int]:
    """How a reduction of n terms, in an op computing m output elements, is ordered: (c, L).

    Terms are cut into c chunks of L = ceil(n / c) consecutive terms (the last may be shorter). Each
    chunk is summed sequentially from +0 (acc <- acc + term), then the chunk sums are added left to
    right: ((s_0 + s_1) + s_2) + ... For wide ops (m >= WIDE, memory-bound when vectorised)
    c = ceil(n / CHUNK), so n <= 64 is the plain sequential sum; for narrow ops (launch-bound)
    c = ceil(sqrt(n)), which minimises the number of vectorised steps L + c - 1. The order depends
    only on the shapes, so it is the same on every device.
    """
    if n <= 1:
        return 1, max(n, 1)
    if m >= WIDE:
        c = -(-n // CHUNK)
    else:
        c = math.isqrt(n - 1) + 1
    return c, -(-n // c)


def front(x: Any) -> Any:
    """Move the last axis to the front (a view)."""
    return x.permute(x.ndim - 1, *range(x.ndim - 1))


def fixed_sum(k: Any, a: Any, b: Any = None) -> Any:
    """sum over the last axis of a (of a*b if b is given; a and b broadcast), in the :func:`chunking`
    order; products are rounded before they are added (FMULADD). Keeps the last axis with size 1.

    The running chunk sums are held with the chunk axis first, so each step is one contiguous
    elementwise pass over (chunks, *output).
    """
    n = a.shape[-1]
    c, length = chunking(n, k.out_numel)
    af = k.layout(front(a))
    bf = None if b is None else k.layout(front(b))
    acc: Any = None
    for j in range(length):
        aj = af[j::length]
        bj = None if bf is None else bf[j::length]
        if acc is None:
            acc = k.add(k.const(0.0), aj) if bj is None else k.muladd(k.const(0.0), aj, bj)
        else:
            acc = k.accumulate(acc, aj, bj, aj.shape[0])
    total = acc[0]
    for p in range(1, c):
        total = k.add(total, acc[p])
    return total.unsqueeze(-1)


def dot(k: Any, a: Any, b: Any) -> Any:
    """sum_t a[..., i, t] * b[..., t, j] over t (a (..., M, K), b (..., K, N)) in the chunked order."""
    return fixed_sum(k, a.unsqueeze(-2), b.transpose(-1, -2).unsqueeze(-3))[..., 0]


def row_max(k: Any, x: Any) -> Any:
    """max over the last axis (kept, size 1) as a pairwise tree: each level replaces the values
    (v_0, v_1, v_2, ...) by (FMAX(v_0, v_1), FMAX(v_2, v_3), ...), an odd last value carried over
    unchanged, until one is left. FMAX keeps its left operand on ties, so without NaNs the result is
    the leftmost maximal element, exactly as a left-to-right scan would give."""
    m = x
    n = x.shape[-1]
    while n > 1:
        half = n // 2
        pairs = k.fmax(m[..., 0 : 2 * half : 2], m[..., 1 : 2 * half : 2])
        m = k.cat([pairs, m[..., n - 1 : n]], -1) if n % 2 else pairs
        n = half + n % 2
    return m


def row_sum(k: Any, x: Any) -> Any:
    """sum over the last axis (kept, size 1) in the chunked order."""
    return fixed_sum(k, x)


def softmax_rows(k: Any, x: Any) -> tuple[Any, Any, Any]:
    """(m, e, s): row max, e = exp(x - m), s = row sum of e."""
    m = row_max(k, x)
    e = fmath.exp(k, k.sub(x, m))
    return m, e, row_sum(k, e)

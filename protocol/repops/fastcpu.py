"""Optional CPU fast path: fused C++ loops for the hottest ops, bit-identical to the torch kernels.

The torch kernels of :mod:`protocol.repops.backend` run one elementwise pass per instruction of the
canonical scalar program (a matmul is K/64 + 64 passes over an M x N x K/64 tensor, AdamW ~40 passes
per parameter tensor). The loops in ``csrc/fastcpu.cpp`` run, per output element, the very same
sequence of float32 operations, in one pass, with the reduction order taken from
:func:`protocol.repops.reduce.chunking`. Compiled with ``-ffp-contract=off`` and without fast-math,
each + - * / is one IEEE-754 binary32 operation, so the bits are those of the torch path; the tests in
``tests/test_repops_fast*.py`` check that for every op here on random and edge-case inputs.

The extension is built on first use with :func:`torch.utils.cpp_extension.load` (gcc and ninja),
cached under ``build/repops_fastcpu/<source hash>`` at the repository root (or under
``$VERIGRAD_FASTCPU_BUILD``), and reused by later processes. If it cannot be built, one warning is
printed and every op keeps its torch kernel. ``VERIGRAD_REPOPS_FASTCPU=0`` turns it off; :func:`disabled` does so within a block (tests).
Only CPU tensors take this path: CUDA keeps the torch kernels, and scalar tracing
(:class:`~protocol.repops.backend.TraceBackend`) never comes here.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import platform
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from protocol.repops.policy import f32_bits
from protocol.repops.reduce import chunking

_CSRC = Path(__file__).resolve().parent / "csrc" / "fastcpu.cpp"
_REPO = Path(__file__).resolve().parents[2]
CFLAGS = ["-O2", "-ftree-vectorize", "-fno-fast-math", "-ffp-contract=off", "-fno-unsafe-math-optimizations"]
"""Compiler flags. IEEE semantics: no contraction into FMA, no reassociation, no flush-to-zero (all
of fast-math is off). ``-ftree-vectorize`` only runs independent output elements side by side: GCC
never reassociates float arithmetic without ``-fassociative-math``. No ``-march=native``: the build
cache must not depend on the CPU it was made on."""


def cflags() -> list[str]:
    """:data:`CFLAGS`, plus ``-DREPOPS_BASELINE_ONLY`` when ``VERIGRAD_FASTCPU_ISA=baseline``: then only
    the baseline-ISA loops are built, not the AVX2 clones (so tests can run them on an AVX2 machine)."""
    extra = ["-DREPOPS_BASELINE_ONLY"] if os.environ.get("VERIGRAD_FASTCPU_ISA") == "baseline" else []
    return CFLAGS + extra


_SUPPORTED_MACHINES = ("x86_64", "AMD64", "aarch64", "arm64")
"""Architectures whose float arithmetic is plain binary32 in C++ (SSE2 / NEON; never x87)."""

_state: dict[str, Any] = {"module": None, "tried": False, "build_s": None}
_lock = threading.Lock()
_enabled = os.environ.get("VERIGRAD_REPOPS_FASTCPU", "1") not in ("0", "false", "no", "off")


def build_dir() -> Path:
    """Root of the build cache (created if missing); each source version builds in its own subfolder."""
    d = Path(os.environ.get("VERIGRAD_FASTCPU_BUILD", _REPO / "build" / "repops_fastcpu"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _staged_source() -> tuple[str, Path]:
    """(module name, source path): the source is read once and copied into a folder named after its
    hash, which is then compiled. So a build never mixes versions of the file (an edit during another
    process's build cannot leave a stale object that looks up to date), and versions never collide."""
    text = _CSRC.read_bytes()
    digest = hashlib.sha256(text + " ".join(cflags()).encode()).hexdigest()[:16]
    folder = build_dir() / digest
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / "fastcpu.cpp"
    if not src.exists() or src.read_bytes() != text:
        tmp = folder / f".fastcpu.{os.getpid()}.cpp"
        tmp.write_bytes(text)
        tmp.replace(src)
    return f"repops_fastcpu_{digest}", src


def load() -> Any | None:
    """The compiled extension module, building it on first call; None (after one warning) if it cannot
    be built or the fast path is off."""
    if not _enabled:
        return None
    if _state["tried"]:
        return _state["module"]
    with _lock:
        if not _state["tried"]:
            _state["module"] = _build()
            _state["tried"] = True
    return _state["module"]


def _build() -> Any | None:
    if platform.machine() not in _SUPPORTED_MACHINES:
        warnings.warn(f"RepOps CPU fast path off: untested architecture {platform.machine()}", stacklevel=3)
        return None
    try:
        from torch.utils import cpp_extension

        t0 = time.perf_counter()
        name, src = _staged_source()
        mod = cpp_extension.load(
            name=name,
            sources=[str(src)],
            extra_cflags=cflags(),
            build_directory=str(src.parent),
            verbose=False,
        )
        _state["build_s"] = time.perf_counter() - t0
        return mod
    except Exception as e:  # noqa: BLE001 - any build failure means: keep the torch kernels
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        warnings.warn(f"RepOps CPU fast path unavailable ({first}); using the torch kernels", stacklevel=3)
        return None


def available() -> bool:
    """True when the fast path is on and built (builds it if needed)."""
    return load() is not None


def build_seconds() -> float | None:
    """Seconds the build (or the cache check) took in this process, None before it ran."""
    return _state["build_s"]


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run a block with the torch kernels only (to compare the two paths)."""
    global _enabled
    saved = _enabled
    _enabled = False
    try:
        yield
    finally:
        _enabled = saved


# --------------------------------------------------------------------------------------------------
# op kernels: (module, views, attrs, out_numel) -> output in the op's domain shape, or None to decline
# --------------------------------------------------------------------------------------------------

Kernel = Callable[[Any, list[torch.Tensor], dict[str, Any], int], torch.Tensor | None]


def _dense(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous()


@functools.lru_cache(maxsize=4096)
def _bits_arg(x: float) -> int:
    """A constant as the kernels' ``k.const`` rounds it: binary32 bits (NaN canonical). Cached: the same
    constants recur every step."""
    return f32_bits(x)


@functools.lru_cache(maxsize=1024)
def _adam_bits(lr: float, beta1: float, beta2: float, eps: float, wd: float, step: int) -> tuple[int, ...]:
    """Bits of the AdamW update's constants (bc1, bc2, eps, lr*wd, lr), as optim.adam_constants makes them."""
    from protocol.repops.optim import adam_constants

    c = adam_constants(
        {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": wd, "step": step}
    )
    return tuple(_bits_arg(x) for x in (c["bc1"], c["bc2"], eps, c["lrwd"], lr))


def _matmul(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    a, b = v
    lead = tuple(a.shape[:-2])
    m, kk, n = a.shape[-2], a.shape[-1], b.shape[-1]
    c, length = chunking(kk, out_numel)
    out = mod.dot(_dense(a).reshape(-1, m, kk), _dense(b).reshape(-1, kk, n), _EMPTY, c, length, -1, False)
    return out.reshape(lead + (m, n))


def _linear(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    x, wt = v[0], v[1]
    r, kk = x.shape
    n = wt.shape[1]
    c, length = chunking(kk, out_numel)
    bias = _dense(v[2]) if len(v) == 3 else _EMPTY
    out = mod.dot(_dense(x).reshape(1, r, kk), _dense(wt).reshape(1, kk, n), bias, c, length, -1, False)
    return out.reshape(r, n)


def _sum_rows(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    x = v[0]
    c, length = chunking(x.shape[0], out_numel)
    return mod.colsum(_dense(x), c, length)


@functools.lru_cache(maxsize=256)
def _beta_bits(beta: float) -> tuple[int, int]:
    """Bits of b and of 1 - b (computed in binary32), as optim's adam_m / adam_v kernels make them."""
    b = np.float32(beta)
    return f32_bits(b), f32_bits(np.float32(1.0) - b)


def _adam_m(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    return mod.adam_m(_dense(v[0]), _dense(v[1]), *_beta_bits(float(attrs["beta1"])))


def _adam_v(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    return mod.adam_v(_dense(v[0]), _dense(v[1]), *_beta_bits(float(attrs["beta2"])))


def _adamw(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    key = (attrs["lr"], attrs["beta1"], attrs["beta2"], attrs["eps"], attrs.get("weight_decay", 0.0))
    consts = _adam_bits(*(float(x) for x in key), int(attrs["step"]))
    p, m, vv = (_dense(t) for t in v)
    return mod.adamw(p, m, vv, *consts)


def _gelu(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    return mod.gelu(_dense(v[0]))


def _gelu_backward(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    return mod.gelu_backward(_dense(v[0]), _dense(v[1]))


def _rows(x: torch.Tensor, out_numel: int) -> tuple[int, int]:
    """The chunking of a reduction over the last axis of ``x`` in an op of ``out_numel`` elements."""
    return chunking(x.shape[-1], out_numel)


def _softmax(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    return mod.softmax(_dense(v[0]), *_rows(v[0], out_numel), 0)


def _log_softmax(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    return mod.softmax(_dense(v[0]), *_rows(v[0], out_numel), 1)


def _softmax_backward(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    return mod.softmax_backward(_dense(v[0]), _dense(v[1]), *_rows(v[0], out_numel))


def _log_softmax_backward(
    mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int
) -> torch.Tensor:
    return mod.log_softmax_backward(_dense(v[0]), _dense(v[1]), *_rows(v[0], out_numel))


def _targets_in_range(t: torch.Tensor, n: int) -> bool:
    """Targets the fast loop can index directly; others take the torch kernel (and its errors)."""
    return t.numel() == 0 or (int(t.min()) >= 0 and int(t.max()) < n)


def _cross_entropy(
    mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int
) -> torch.Tensor | None:
    z, tgt = v
    if not _targets_in_range(tgt, z.shape[1]):
        return None
    return mod.cross_entropy(_dense(z), _dense(tgt), *_rows(z, out_numel))


def _cross_entropy_backward(
    mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int
) -> torch.Tensor:
    z, tgt, dloss = v
    batch = _bits_arg(float(attrs["batch"]))
    return mod.cross_entropy_backward(_dense(z), _dense(tgt), _dense(dloss), batch, *_rows(z, out_numel))


def _layernorm_stats(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    x = v[0]
    n = _bits_arg(float(x.shape[-1]))
    return mod.layernorm_stats(_dense(x), n, _bits_arg(attrs["eps"]), *_rows(x, out_numel))


def _layernorm_apply(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    return mod.layernorm_apply(*(_dense(t) for t in v))


def _layernorm_backward(
    mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int
) -> torch.Tensor:
    x, stats, gamma, dy = (_dense(t) for t in v)
    return mod.layernorm_backward(x, stats, gamma, dy, _bits_arg(float(x.shape[-1])), *_rows(x, out_numel))


def _layernorm_dgamma(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    x, stats, dy = (_dense(t) for t in v)
    return mod.layernorm_dgamma(x, stats, dy, *chunking(x.shape[0], out_numel))


def _embedding_backward(
    mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int
) -> torch.Tensor | None:
    ids, dy = v
    n_rows = int(attrs["num_embeddings"])
    if not _targets_in_range(ids, n_rows):
        return None
    return mod.embedding_backward(_dense(ids), _dense(dy), n_rows)


def _mean(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor | None:
    x = v[0]
    n = x.numel()
    if n == 0:
        return None
    return mod.mean(_dense(x), _bits_arg(float(n)), *chunking(n, out_numel))


# attention: batched products over (B, H) with the chunked order of the whole op ---------------------


def _bh(x: torch.Tensor) -> torch.Tensor:
    """(B, T, H, D) -> (B*H, T, D), dense."""
    b, t, h, d = x.shape
    return x.permute(0, 2, 1, 3).reshape(b * h, t, d).contiguous()


def _attn_scores(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    from protocol.repops.nn import attn_scale

    q, kt = v  # (B, H, T, Dh), (B, H, Dh, S)
    b, h, t, dh = q.shape
    s = kt.shape[-1]
    c, length = chunking(dh, out_numel)
    out = mod.dot(
        _dense(q).reshape(b * h, t, dh), _dense(kt).reshape(b * h, dh, s), _EMPTY, c, length,
        _bits_arg(attn_scale(dh)), True,
    )  # fmt: skip
    return out.reshape(b, h, t, s)


def _attn_apply(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    p, vv = v  # p as (B, T, H, S), values (B, S, H, Dh); out (B, T, H, Dh)
    b, t, h, s = p.shape
    dh = vv.shape[-1]
    c, length = chunking(s, out_numel)
    out = mod.dot(_bh(p), _bh(vv), _EMPTY, c, length, -1, False)  # (B*H, T, Dh)
    return out.reshape(b, h, t, dh).permute(0, 2, 1, 3)


def _attn_dqkv(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    from protocol.repops.nn import attn_scale

    a1, kk, a2, q, a3, dy = v  # a1 [b,t,h,s] = dS, a2 [b,s,h,t] = dS, a3 [b,s,h,t] = P
    b, t, h, dh = q.shape
    c, length = chunking(a1.shape[-1], out_numel)
    sc = _bits_arg(attn_scale(dh))
    dq = mod.dot(_bh(a1), _bh(kk), _EMPTY, c, length, sc, False)
    dk = mod.dot(_bh(a2), _bh(q), _EMPTY, c, length, sc, False)
    dv = mod.dot(_bh(a3), _bh(dy), _EMPTY, c, length, -1, False)
    out = torch.stack([dq, dk, dv], 0).reshape(3, b, h, t, dh)
    return out.permute(1, 3, 0, 2, 4)  # (B, T, 3, H, Dh)


def _broadcast(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return _dense(b if b.shape == a.shape else b.expand(a.shape))


def _binary(kind: int) -> Kernel:
    def run(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
        return mod.binary(_dense(v[0]), _broadcast(v[0], v[1]), kind, 0)

    return run


def _sgd(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    return mod.binary(_dense(v[0]), _dense(v[1]), 3, _bits_arg(float(attrs["lr"])))


def _relu_backward(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    return mod.binary(_dense(v[0]), _dense(v[1]), 4, 0)


def _scale(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    return mod.unary(_dense(v[0]), 0, _bits_arg(float(attrs["c"])))


def _relu(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor:
    return mod.unary(_dense(v[0]), 1, 0)


def _embedding(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], out_numel: int) -> torch.Tensor | None:
    ids, table = v
    if not _targets_in_range(ids, table.shape[0]):
        return None
    return mod.embedding(_dense(ids), _dense(table))


_EMPTY = torch.empty(0, dtype=torch.float32)

KERNELS: dict[str, Kernel] = {
    "matmul": _matmul,
    "linear": _linear,
    "linear_nobias": _linear,
    "sum_rows": _sum_rows,
    "adam_m": _adam_m,
    "adam_v": _adam_v,
    "adamw": _adamw,
    "gelu": _gelu,
    "gelu_backward": _gelu_backward,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "softmax_backward": _softmax_backward,
    "log_softmax_backward": _log_softmax_backward,
    "cross_entropy": _cross_entropy,
    "cross_entropy_backward": _cross_entropy_backward,
    "layernorm_stats": _layernorm_stats,
    "layernorm_apply": _layernorm_apply,
    "layernorm_backward": _layernorm_backward,
    "layernorm_dgamma": _layernorm_dgamma,
    "embedding_backward": _embedding_backward,
    "mean": _mean,
    "attn_scores": _attn_scores,
    "attn_apply": _attn_apply,
    "attn_dprobs": _matmul,
    "attn_dqkv": _attn_dqkv,
    "add": _binary(0),
    "sub": _binary(1),
    "mul": _binary(2),
    "sgd": _sgd,
    "relu_backward": _relu_backward,
    "scale": _scale,
    "relu": _relu,
    "embedding": _embedding,
}
"""The ops with a fast path, by op name (each checked bit for bit against its torch kernel)."""


def compute(
    name: str, views: list[torch.Tensor], attrs: dict[str, Any], out_numel: int
) -> torch.Tensor | None:
    """Op ``name`` on its (CPU, float32) views through the fast path, in the op's domain shape; None
    when the op has no fast kernel or the extension is unavailable (the caller runs the torch kernel)."""
    fn = KERNELS.get(name)
    if fn is None or out_numel == 0 or any(v.numel() == 0 for v in views):
        return None  # empty inputs (a sum of no terms, ...) keep the torch kernel's behaviour
    mod = load()
    if mod is None:
        return None
    return fn(mod, views, attrs, out_numel)


def main() -> int:
    """Build (or load) the extension now and say how long it took, so that a training run does not pay
    for the first build: ``python -c "from protocol.repops import fastcpu; fastcpu.main()"``."""
    ok = available()
    secs = build_seconds()
    where = _staged_source()[1].parent if ok else None
    print(
        f"RepOps CPU fast path: {'built' if ok else 'unavailable'}"
        + (f" in {secs:.1f} s at {where}" if ok and secs is not None else "")
    )
    return 0 if ok else 1

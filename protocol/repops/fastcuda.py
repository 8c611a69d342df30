"""Optional GPU fast path: the fixed-order reductions (matmul, linear, sums, attention products,
embedding gradients) as single CUDA kernels, bit-identical to the torch kernels.

On a GPU the torch kernels of :mod:`protocol.repops.backend` run a matmul as K/c + c elementwise
passes, each a few kernel launches; ``csrc/cudakern.cu`` runs, per output element, the very same
sequence of binary32 operations in one thread: products rounded (``__fmul_rn``) and then added
(``__fadd_rn``), which CUDA never fuses into an FMA, compiled with ``-fmad=false`` and without fast
math. The kernels have the signatures of the CPU fast path's (``csrc/fastcpu.cpp``), so the same
op wrappers (:mod:`protocol.repops.fastcpu`) drive both. Cross-device runs pin the result: a CUDA
training run's roots must equal the CPU's (tests/test_train_crossdevice.py, run on a GPU machine).

Built on first use on a CUDA machine with :func:`torch.utils.cpp_extension.load` (nvcc and ninja),
cached under ``build/repops_cuda/<source hash>`` (or ``$VERIGRAD_FASTCUDA_BUILD``). If it cannot be
built, one warning is printed and the torch kernels run. ``VERIGRAD_REPOPS_FASTCUDA=0`` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from protocol.repops import fastcpu
from protocol.repops.backend import TorchBackend

_CSRC = Path(__file__).resolve().parent / "csrc" / "cudakern.cu"
_REPO = Path(__file__).resolve().parents[2]
CUDA_FLAGS = ["-O3", "-fmad=false", "--prec-div=true", "--prec-sqrt=true", "--ftz=false"]
"""nvcc flags: no FMA contraction, IEEE division and square root, subnormals kept (no fast math)."""

_DECLARATIONS = """
at::Tensor dot(const at::Tensor& a, const at::Tensor& b, const at::Tensor& bias, int64_t c, int64_t L,
               int64_t scale_bits, bool causal);
at::Tensor colsum(const at::Tensor& x, int64_t c, int64_t L);
at::Tensor embedding_backward(const at::Tensor& ids, const at::Tensor& dy, int64_t num_embeddings);
at::Tensor adam_moment(const at::Tensor& mv, const at::Tensor& g, int64_t b_bits, int64_t omb_bits, int64_t kind);
at::Tensor adamw(const at::Tensor& p, const at::Tensor& m, const at::Tensor& v, const at::Tensor& bc1,
                 const at::Tensor& bc2, const at::Tensor& lrwd, const at::Tensor& lr, int64_t eps_bits);
"""

_state: dict[str, Any] = {"module": None, "tried": False, "build_s": None}
_lock = threading.Lock()
_enabled = os.environ.get("VERIGRAD_REPOPS_FASTCUDA", "1") not in ("0", "false", "no", "off")


def load() -> Any | None:
    """The compiled extension, building it on first call; None if it is off or cannot be built."""
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
    if not torch.cuda.is_available():
        return None
    try:
        from torch.utils import cpp_extension

        t0 = time.perf_counter()
        text = _CSRC.read_text()
        digest = hashlib.sha256((text + " ".join(CUDA_FLAGS)).encode()).hexdigest()[:16]
        folder = Path(os.environ.get("VERIGRAD_FASTCUDA_BUILD", _REPO / "build" / "repops_cuda")) / digest
        folder.mkdir(parents=True, exist_ok=True)
        mod = cpp_extension.load_inline(
            name=f"repops_fastcuda_{digest}",
            cpp_sources=[_DECLARATIONS],
            cuda_sources=[text],
            functions=["dot", "colsum", "embedding_backward", "adam_moment", "adamw"],
            extra_cuda_cflags=CUDA_FLAGS,
            build_directory=str(folder),
            verbose=False,
        )
        _state["build_s"] = time.perf_counter() - t0
        return mod
    except Exception as e:  # noqa: BLE001 - any build failure means: keep the torch kernels
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        warnings.warn(f"RepOps GPU fast path unavailable ({first}); using the torch kernels", stacklevel=3)
        return None


def available() -> bool:
    """True when the GPU fast path is on and built (builds it if needed)."""
    return load() is not None


def build_seconds() -> float | None:
    """Seconds the build took in this process (None if it was not built here)."""
    return _state["build_s"]


Kernel = Callable[[Any, list[torch.Tensor], dict[str, Any], TorchBackend], torch.Tensor]


def _shared(name: str) -> Kernel:
    """The CPU fast path's wrapper for op ``name`` (the CUDA module has the same functions)."""
    cpu = fastcpu.KERNELS[name]

    def run(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], k: TorchBackend) -> torch.Tensor:
        out = cpu(mod, v, attrs, k.out_numel)
        assert out is not None
        return out

    return run


def _embedding_backward(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], k: TorchBackend) -> torch.Tensor:
    ids, dy = v
    return mod.embedding_backward(ids.to(torch.int32).contiguous(), dy.contiguous(), int(attrs["num_embeddings"]))


def _adam_moment(kind: int, beta: str) -> Kernel:
    def run(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], k: TorchBackend) -> torch.Tensor:
        return mod.adam_moment(v[0].contiguous(), v[1].contiguous(), *fastcpu._beta_bits(float(attrs[beta])), kind)

    return run


def _adamw(mod: Any, v: list[torch.Tensor], attrs: dict[str, Any], k: TorchBackend) -> torch.Tensor:
    """The step constants come as the kernel's ``k.step_const`` tensors (cached constants, or views of
    the buffer a captured CUDA graph reads), never as values baked into the launch."""
    from protocol.repops.optim import adamw_step_constants  # optim imports ops, which imports this module

    c = adamw_step_constants(attrs)
    consts = [k.step_const(n, c[n]) for n in ("adamw.bc1", "adamw.bc2", "adamw.lrwd", "adamw.lr")]
    p, m, vv = (t.contiguous() for t in v)
    return mod.adamw(p, m, vv, *consts, fastcpu._bits_arg(float(attrs["eps"])))


KERNELS: dict[str, Kernel] = {
    **{name: _shared(name) for name in (
        "matmul", "linear", "linear_nobias", "sum_rows", "attn_scores", "attn_apply", "attn_dprobs", "attn_dqkv")},
    "embedding_backward": _embedding_backward,
    "adam_m": _adam_moment(0, "beta1"),
    "adam_v": _adam_moment(1, "beta2"),
    "adamw": _adamw,
}  # fmt: skip
"""The ops with a GPU fast path, by op name."""


def compute(name: str, views: list[torch.Tensor], attrs: dict[str, Any], k: TorchBackend) -> torch.Tensor | None:
    """Op ``name`` on its (CUDA, float32) views through the GPU fast path, in the op's domain shape;
    None when the op has none or the extension is unavailable (the caller runs the torch kernel)."""
    fn = KERNELS.get(name)
    if fn is None or k.out_numel == 0 or any(v.numel() == 0 for v in views):
        return None
    mod = load()
    if mod is None:
        return None
    return fn(mod, views, attrs, k)

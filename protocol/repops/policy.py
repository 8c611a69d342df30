"""The float policy every RepOps computation follows, on every device.

IEEE-754 binary32, round to nearest even, gradual underflow (subnormals are kept, never flushed),
signed zeros and infinities as IEEE-754 says, and one NaN: every NaN a float operation produces is
replaced by the canonical quiet NaN ``0x7FC00000``. Hardware does not agree on NaN bits (x86 gives
``0xFFC00000`` for ``0 * inf``, CUDA ``0x7FFFFFFF``), so without canonicalisation two honest parties
would hash different tensors. The on-chain arbiter follows the same policy.

Settings that would break bit-exact replay are checked here: TF32 matmuls (we never call matmul, but a
caller's flags must not leak), flush-to-zero of subnormals, and anything that is not float32.
"""

from __future__ import annotations

import struct

import numpy as np
import torch

from protocol.errors import VerigradError

CANONICAL_NAN_BITS = 0x7FC00000
"""The single NaN bit pattern RepOps produces (positive sign, quiet bit, zero payload)."""

MASK32 = 0xFFFFFFFF
SIGN_BIT = 0x80000000
EXP_MASK = 0x7F800000
FRAC_MASK = 0x007FFFFF
POS_INF_BITS = 0x7F800000
NEG_INF_BITS = 0xFF800000


class RepOpsError(VerigradError):
    """Something a RepOps caller did wrong (bad shape, dtype, attribute, op name or element)."""


class PolicyError(RepOpsError):
    """The process or device is configured in a way that breaks bit-exact replay."""


def f32_bits(x: float | np.floating) -> int:
    """The binary32 bit pattern of ``x`` rounded to float32 (round to nearest even), NaN canonical."""
    bits = int(np.array(x, dtype=np.float32).view(np.uint32))
    return canon_bits(bits)


def bits_f32(bits: int) -> np.float32:
    """The float32 whose bit pattern is ``bits`` (0 <= bits < 2**32)."""
    return np.float32(np.array(bits & MASK32, dtype=np.uint32).view(np.float32)[()])


def bits_to_float(bits: int) -> float:
    """The Python float (exact) of a binary32 bit pattern."""
    return float(struct.unpack("<f", struct.pack("<I", bits & MASK32))[0])


def is_nan_bits(bits: int) -> bool:
    """True when ``bits`` encodes a NaN (exponent all ones, fraction non-zero)."""
    return (bits & EXP_MASK) == EXP_MASK and (bits & FRAC_MASK) != 0


def canon_bits(bits: int) -> int:
    """``bits`` with any NaN replaced by the canonical NaN."""
    return CANONICAL_NAN_BITS if is_nan_bits(bits) else bits & MASK32


def tensor_bits(t: torch.Tensor) -> torch.Tensor:
    """The bit patterns of a float32 tensor as an int32 tensor (a view, no copy where possible)."""
    if t.dtype != torch.float32:
        raise RepOpsError(f"expected a float32 tensor, got {t.dtype}")
    return t.contiguous().view(torch.int32)


def canonical_nan_like(t: torch.Tensor) -> torch.Tensor:
    """A 0-dim float32 tensor on ``t``'s device holding the canonical NaN bits.

    Built from the integer bit pattern, never from a float literal, so no conversion can change it.
    """
    return torch.tensor(CANONICAL_NAN_BITS, dtype=torch.int32, device=t.device).view(torch.float32)


def canonicalize(t: torch.Tensor) -> torch.Tensor:
    """Return ``t`` (float32) with every NaN replaced by the canonical NaN (a new tensor)."""
    if t.dtype != torch.float32:
        raise RepOpsError(f"expected a float32 tensor, got {t.dtype}")
    return torch.where(t != t, canonical_nan_like(t), t)


def is_canonical(t: torch.Tensor) -> bool:
    """True when every NaN in the float32 tensor ``t`` has the canonical bit pattern."""
    nan = t != t
    if not bool(nan.any()):
        return True
    return bool((tensor_bits(t)[nan] == CANONICAL_NAN_BITS).all())


def check_policy(device: torch.device | str = "cpu") -> None:
    """Fail loudly when this process would not follow the float policy on ``device``.

    Turns TF32 off (it only affects matmul/conv, which RepOps never calls, but a caller's setting must
    not leak into anything else), then probes the device: subnormals must survive a multiply and an
    add (no flush-to-zero, e.g. from ``torch.set_flush_denormal(True)``), and float32 division must be
    the IEEE one. A handful of tiny kernels: cheap enough to call before every run.
    """
    dev = torch.device(device)
    key = str(dev)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    tiny = torch.tensor([1, 3], dtype=torch.int32, device=dev).view(torch.float32)  # 2^-149, 3*2^-149
    one = torch.ones(2, dtype=torch.float32, device=dev)
    prod = tensor_bits(tiny * one).cpu().tolist()
    summ = tensor_bits(tiny + tiny).cpu().tolist()
    if prod != [1, 3] or summ != [2, 6]:
        raise PolicyError(
            f"subnormals are flushed on {key} (2^-149 * 1 gave bits {prod}, 2^-149 + 2^-149 gave {summ}); "
            "call torch.set_flush_denormal(False)"
        )
    q = torch.tensor([1.0], device=dev) / torch.tensor([3.0], device=dev)
    if int(tensor_bits(q).cpu()[0]) != 0x3EAAAAAB:
        raise PolicyError(f"float32 division on {key} is not IEEE round-to-nearest (1/3 gave {q.item()!r})")

"""Deterministic initial weights: the same float32 bits on every machine, from the spec's seed.

torch.randn is not an option: its generator and its float conversion may change between torch
versions and devices. Here a tensor's values come from SplitMix64 over a counter (numpy uint64
arithmetic, which wraps modulo 2**64 exactly like the reference), turned into float32 with exact
integer-to-float steps only:

* ``u = top 24 bits of the 64-bit output``; ``x = (u - 2**23) / 2**23`` is exact in float32 and
  uniform on [-1, 1) in steps of 2**-23;
* the tensor is ``x * scale`` with ``scale`` a float32 constant: one correctly rounded float32
  multiplication per element, identical in numpy and on any IEEE device.
"""

from __future__ import annotations

import numpy as np
import torch

from protocol.spec import GOLDEN, derive_seed, f32

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix64_stream(seed: int, n: int) -> np.ndarray:
    """The first ``n`` SplitMix64 outputs of ``seed`` as uint64 (vectorised over the counter)."""
    with np.errstate(over="ignore"):
        idx = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(seed) + idx * np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def uniform_tensor(seed: int, label: str, shape: tuple[int, ...], scale: float) -> torch.Tensor:
    """float32 tensor uniform on [-scale, scale) for the named parameter ``label`` of the task."""
    n = int(np.prod(shape)) if shape else 1
    bits = splitmix64_stream(derive_seed(seed, "init", label), n)
    u = (bits >> np.uint64(40)).astype(np.int64) - (1 << 23)
    x = u.astype(np.float32) / np.float32(1 << 23)  # exact: |u| <= 2**23 and a power-of-two divisor
    y = x * np.float32(f32(scale))
    return torch.from_numpy(y.reshape(shape).copy())


def constant_tensor(shape: tuple[int, ...], value: float) -> torch.Tensor:
    """float32 tensor filled with ``value`` (rounded to float32)."""
    return torch.full(shape, f32(value), dtype=torch.float32)

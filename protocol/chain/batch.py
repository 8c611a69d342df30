"""ABI calldata for batched eth_calls over large arrays, encoded with numpy.

web3's ABI encoder handles one value at a time; the differential soft-float tests and the gas
benchmark send tens of thousands of 32-bit operands per call, where a vectorised encoding of the
(static) layout ``f(T0[], T1[], ...)`` is orders of magnitude faster.
"""

from __future__ import annotations

import numpy as np


def encode_uint_arrays(selector: bytes, arrays: list[np.ndarray]) -> bytes:
    """Calldata of ``f(T0[], T1[], ...)`` for equally long arrays of 32-bit-or-smaller unsigned elements."""
    n = len(arrays[0])
    head = bytearray(selector)
    offset = 32 * len(arrays)
    for _ in arrays:
        head += offset.to_bytes(32, "big")
        offset += 32 * (n + 1)
    for arr in arrays:
        words = np.zeros((n, 8), dtype=">u4")
        words[:, 7] = arr
        head += n.to_bytes(32, "big") + words.tobytes()
    return bytes(head)

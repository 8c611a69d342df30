"""The C++ keccak-256 and chunk root (protocol/repops/csrc/fastcpu.cpp) that checkpoint commits use
when the RepOps CPU extension is built give exactly pysha3's hashes and the Python tree's roots."""

from __future__ import annotations

import numpy as np
import pytest
import sha3

from protocol.commit import state_commitment
from protocol.commit import tensor as T
from protocol.commit.merkle import merkle_root
from protocol.commit.state import fast_state_root
from protocol.repops import fastcpu

pytestmark = pytest.mark.skipif(not fastcpu.available(), reason="RepOps CPU extension could not be built")

# Lengths around the keccak rate (136 bytes, less one for a prefixed leaf) and the 256-byte chunk.
LENGTHS = [0, 1, 2, 31, 32, 33, 64, 65, 134, 135, 136, 137, 255, 256, 257, 271, 272, 273, 511, 512, 513, 1000]


def _data(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("n", LENGTHS)
def test_keccak_matches_pysha3_succeeds(n: int) -> None:
    mod = fastcpu.load()
    for seed in range(3):
        data = _data(n, seed)
        assert mod.keccak_256(data) == sha3.keccak_256(data).digest()


@pytest.mark.parametrize("chunks", [0, 1, 2, 3, 4, 5, 7, 8, 9, 63, 64, 65, 100, 1000])
@pytest.mark.parametrize("tail", [0, 1, 4, 255])
def test_chunk_root_matches_python_tree_succeeds(chunks: int, tail: int) -> None:
    data = _data(chunks * T.CHUNK_BYTES + tail, chunks * 7 + tail)
    python = merkle_root(T.chunk_leaf_hashes(data))
    assert T.native_chunk_root() is not None
    assert T.data_chunk_root(data) == python
    assert fastcpu.load().chunk_root(data, T.CHUNK_BYTES) == python


def test_one_flipped_bit_changes_the_root_reverts() -> None:
    data = bytearray(_data(10 * T.CHUNK_BYTES + 3, 1))
    root = T.data_chunk_root(bytes(data))
    data[5 * T.CHUNK_BYTES + 17] ^= 0x10
    assert T.data_chunk_root(bytes(data)) != root
    assert T.data_chunk_root(bytes(data)) == merkle_root(T.chunk_leaf_hashes(bytes(data)))


def test_tensor_ids_equal_with_and_without_the_extension_succeeds(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    arrays = [np.zeros((0, 3), np.float32), np.array(12, np.int64), np.arange(24, dtype=np.int32).reshape(2, 3, 4),
              np.random.default_rng(0).standard_normal((128, 64)).astype(np.float32)]
    fast = [T.tensor_id(a) for a in arrays]
    monkeypatch.setitem(T._NATIVE, "chunk_root", None)
    assert [T.tensor_id(a) for a in arrays] == fast


def test_state_root_matches_the_commitment_layer_succeeds() -> None:
    rng = np.random.default_rng(3)
    tensors = [
        ("w", rng.standard_normal((128, 64)).astype(np.float32)),
        ("b", np.array([0.0, -0.0, np.inf, np.nan, 1e-45], np.float32)),
        ("empty", np.zeros((0, 3), np.float32)),
        ("ids", rng.integers(-5, 5, (7, 3)).astype(np.int32)),
        ("step", np.array(12, np.int64)),
        ("scalar", np.array(1.5, np.float32)),
        ("odd", rng.standard_normal(1000 * 64 + 3).astype(np.float32)),
    ]
    for k in range(len(tensors) + 1):  # every prefix: 0 .. 7 leaves, odd and even tree sizes
        assert T.native_state_root([t for _, t in tensors[:k]]) == state_commitment(tensors[:k]).root
        assert fast_state_root(tensors[:k]) == state_commitment(tensors[:k]).root
    swapped = [tensors[1], tensors[0], *tensors[2:]]
    assert fast_state_root(swapped) != fast_state_root(tensors)


def test_state_root_refuses_what_the_commitment_layer_refuses_reverts() -> None:
    from protocol.commit import CommitError

    with pytest.raises(CommitError):
        fast_state_root([("a", np.zeros(2, np.float32)), ("a", np.zeros(2, np.float32))])
    with pytest.raises(CommitError):
        fast_state_root([("a", np.zeros(2, np.float64))])


def test_prepared_state_root_ignores_later_writes_succeeds(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import torch

    from protocol.commit.state import prepare_state_root

    tensors = [("w", torch.randn(64, 33)), ("step", torch.tensor(3.0))]
    original = tensors[0][1].clone()
    want = state_commitment([(n, t.clone()) for n, t in tensors]).root
    for native in (True, False):
        if not native:
            monkeypatch.setitem(T._NATIVE, "state_root", None)
        run = prepare_state_root(tensors)
        tensors[0][1].add_(1.0)  # a later step overwrites the buffer
        assert run() == want
        tensors[0][1].copy_(original)

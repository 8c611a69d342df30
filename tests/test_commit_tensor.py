"""Tensor commitments: byte layout, ids that move with every bit and the shape, element proofs."""

from __future__ import annotations

import struct

import numpy as np
import pymerkle
import pytest
import torch

from protocol.commit import CHUNK_BYTES, TensorCommitment, tensor_id, tensor_id_from_root
from protocol.commit.errors import CommitError, ProofError
from protocol.commit.hashing import EMPTY_ROOT, hash_bytes
from protocol.commit.tensor import ElementProof, chunk_root, tensor_bytes


def test_tensor_bytes_are_big_endian_bits_row_major() -> None:
    t = torch.tensor([[1.0, -2.0], [0.5, float("inf")]], dtype=torch.float32)
    data, dtype, shape = tensor_bytes(t)
    assert dtype == "float32" and shape == (2, 2)
    assert data == struct.pack(">4f", 1.0, -2.0, 0.5, float("inf"))
    # A transposed (non-contiguous) view commits in its own row-major order.
    data_t, _, shape_t = tensor_bytes(t.t())
    assert shape_t == (2, 2) and data_t == struct.pack(">4f", 1.0, 0.5, -2.0, float("inf"))


def test_tensor_id_layout_is_exact() -> None:
    t = torch.arange(100, dtype=torch.float32).reshape(4, 25)
    data, _, _ = tensor_bytes(t)
    tree = pymerkle.InmemoryTree("keccak_256")
    for i in range(0, len(data), CHUNK_BYTES):
        tree.append_entry(data[i : i + CHUNK_BYTES])
    root = tree.get_root()
    assert chunk_root(t) == root
    preimage = b"\x02" + bytes([1, 2]) + (4).to_bytes(4, "big") + (25).to_bytes(4, "big") + root
    assert tensor_id(t) == hash_bytes(preimage) == tensor_id_from_root("float32", (4, 25), root)


@pytest.mark.parametrize("numel", [0, 1, 63, 64, 65, 640, 1000, 4097])
def test_chunk_root_matches_pymerkle(numel: int) -> None:
    gen = torch.Generator().manual_seed(numel)
    t = torch.randn(numel, generator=gen)
    data, _, _ = tensor_bytes(t)
    tree = pymerkle.InmemoryTree("keccak_256")
    for i in range(0, len(data), CHUNK_BYTES):
        tree.append_entry(data[i : i + CHUNK_BYTES])
    expected = tree.get_root() if numel else EMPTY_ROOT
    assert chunk_root(t) == expected
    assert TensorCommitment(t).root == expected


def test_tensor_id_changes_with_every_single_bit() -> None:
    gen = torch.Generator().manual_seed(1)
    t = torch.randn(3, 70, generator=gen)
    base = tensor_id(t)
    bits = t.view(torch.int32).flatten()
    seen = {base}
    for i in range(bits.numel()):
        for b in range(32):
            flipped = bits.clone()
            flipped[i] ^= torch.tensor(1 << b if b < 31 else -(1 << 31), dtype=torch.int32)
            seen.add(tensor_id(flipped.view(torch.float32).reshape(3, 70)))
    assert len(seen) == 1 + bits.numel() * 32


def test_tensor_id_changes_with_shape_and_dtype() -> None:
    t = torch.arange(12, dtype=torch.float32)
    ids = {tensor_id(t), tensor_id(t.reshape(3, 4)), tensor_id(t.reshape(4, 3)), tensor_id(t.reshape(1, 12))}
    ids.add(tensor_id(t.reshape(12, 1)))
    ids.add(tensor_id(t.view(torch.int32)))  # same bits, other dtype
    assert len(ids) == 6
    # -0.0 and +0.0 compare equal as floats but are different bits.
    assert tensor_id(torch.tensor([0.0])) != tensor_id(torch.tensor([-0.0]))


def test_tensor_id_numpy_equals_torch_and_scalar_and_empty() -> None:
    a = np.linspace(-1, 1, 300, dtype=np.float32).reshape(10, 30)
    assert tensor_id(a) == tensor_id(torch.from_numpy(a))
    assert tensor_id(torch.tensor(7, dtype=torch.int64)) == tensor_id_from_root(
        "int64", (), hash_bytes(b"\x00" + (7).to_bytes(8, "big"))
    )
    assert tensor_id(torch.zeros(0, 5)) == tensor_id_from_root("float32", (0, 5), EMPTY_ROOT)


def test_tensor_id_rejects_unsupported_dtypes() -> None:
    for t in (
        torch.zeros(3, dtype=torch.float64),
        torch.zeros(3, dtype=torch.bfloat16),
        torch.zeros(3, dtype=torch.bool),
    ):
        with pytest.raises(CommitError):
            tensor_id(t)


def test_element_proof_every_element_verifies() -> None:
    gen = torch.Generator().manual_seed(2)
    t = torch.randn(7, 41, generator=gen)  # 287 elements: 5 chunks, the last one short
    c = TensorCommitment(t)
    assert c.num_chunks == 5 and c.id == tensor_id(t)
    assert [len(x) for x in c.chunks] == [256, 256, 256, 256, 124] and b"".join(c.chunks) == c.data
    flat = t.flatten()
    for i in range(t.numel()):
        proof = c.element_proof(i)
        bits = proof.verify(c.id)
        assert struct.unpack(">f", bits.to_bytes(4, "big"))[0] == flat[i].item()
        assert bits == c.element_bits(i)


def test_element_proof_tampered_fails() -> None:
    gen = torch.Generator().manual_seed(3)
    t = torch.randn(300, generator=gen)
    c = TensorCommitment(t)
    proof = c.element_proof(130)
    other = c.element_proof(10)
    chunk = bytearray(proof.chunk)
    chunk[(130 * 4) % CHUNK_BYTES] ^= 0x01
    bad_sib = bytearray(proof.siblings[0])
    bad_sib[5] ^= 0x10
    fields = proof.__dict__
    bads = [
        ElementProof(**{**fields, "chunk": bytes(chunk)}),
        ElementProof(**{**fields, "siblings": (bytes(bad_sib),) + proof.siblings[1:]}),
        ElementProof(**{**fields, "flat_index": 10}),  # another element, this element's chunk
        ElementProof(**{**fields, "flat_index": 130 + 64}),
        ElementProof(**{**fields, "shape": (301,)}),
        ElementProof(**{**fields, "shape": (10, 30)}),
        ElementProof(**{**fields, "dtype": "int32"}),
        ElementProof(**{**fields, "chunk": proof.chunk[:-4]}),
        ElementProof(**{**other.__dict__, "flat_index": 130}),
        ElementProof(**{**fields, "flat_index": 300}),
    ]
    for bad in bads:
        with pytest.raises(ProofError):
            bad.verify(c.id)
    with pytest.raises(ProofError):
        proof.verify(tensor_id(t + 1))


def test_element_proof_json_carries_contract_arguments() -> None:
    c = TensorCommitment(torch.ones(2, 3))
    obj = c.element_proof(4).to_json()
    assert obj["dtype_code"] == 1 and obj["shape"] == [2, 3] and obj["chunk_index"] == 0
    assert bytes.fromhex(obj["chunk"][2:]) == struct.pack(">6f", *([1.0] * 6))


def test_element_proof_json_roundtrip_and_malformed() -> None:
    c = TensorCommitment(torch.arange(100, dtype=torch.int64).reshape(10, 10))
    proof = c.element_proof(77)
    back = ElementProof.from_json(proof.to_json())
    assert back == proof and back.verify(c.id) == 77
    with pytest.raises(ProofError):
        ElementProof.from_json({**proof.to_json(), "dtype": "float64"})
    with pytest.raises(ProofError):
        ElementProof.from_json({**proof.to_json(), "siblings": ["0x12"]})
    with pytest.raises(ProofError):
        ElementProof.from_json({"dtype": "float32"})

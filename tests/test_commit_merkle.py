"""RFC 9162 tree maths: the fast paths agree with pymerkle, and every proof fails when tampered."""

from __future__ import annotations

import hashlib

import pymerkle
import pytest

from protocol.commit.errors import CommitError, ProofError
from protocol.commit.hashing import EMPTY_ROOT, hash_bytes, leaf_hash, node_hash
from protocol.commit.merkle import (
    AppendOnlyTree,
    ConsistencyProof,
    InclusionProof,
    consistency_path,
    inclusion_path,
    merkle_root,
    root_before_append,
    root_from_inclusion,
    split_point,
    verify_append,
)


def _values(n: int, salt: bytes = b"") -> list[bytes]:
    return [hashlib.sha256(salt + i.to_bytes(4, "big")).digest() for i in range(n)]


def _pymerkle_tree(values: list[bytes]) -> pymerkle.InmemoryTree:
    tree = pymerkle.InmemoryTree("keccak_256")
    for v in values:
        tree.append_entry(v)
    return tree


def _reference_root(hashes: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH, written recursively as the RFC states it."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = split_point(len(hashes))
    return node_hash(_reference_root(hashes[:k]), _reference_root(hashes[k:]))


def test_hashing_is_keccak_with_rfc9162_prefixes() -> None:
    # keccak-256("") is Ethereum's well-known empty hash (differs from NIST SHA3-256's).
    assert EMPTY_ROOT.hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert leaf_hash(b"ab") == hash_bytes(b"\x00ab")
    assert node_hash(b"\x11" * 32, b"\x22" * 32) == hash_bytes(b"\x01" + b"\x11" * 32 + b"\x22" * 32)


@pytest.mark.parametrize("n", list(range(0, 34)) + [63, 64, 65, 100, 257])
def test_merkle_root_matches_pymerkle_and_rfc(n: int) -> None:
    values = _values(n)
    hashes = [leaf_hash(v) for v in values]
    expected = _pymerkle_tree(values).get_root() if n else EMPTY_ROOT
    assert merkle_root(hashes) == expected
    assert _reference_root(hashes) == expected
    assert AppendOnlyTree(values).root == expected


def test_inclusion_proofs_all_positions_verify_and_match_pymerkle() -> None:
    for n in range(1, 20):
        values = _values(n)
        hashes = [leaf_hash(v) for v in values]
        tree = AppendOnlyTree(values)
        for size in range(1, n + 1):
            root = tree.root_at(size)
            for i in range(size):
                proof = tree.inclusion_proof(i, size)
                assert list(proof.siblings) == inclusion_path(hashes[:size], i)
                proof.verify(values[i], root)
                # pymerkle verifies its own proof of the same leaf.
                pymerkle.verify_inclusion(hashes[i], root, tree.pymerkle_inclusion_proof(i, size))


def _tampered_inclusion(proof: InclusionProof) -> list[InclusionProof]:
    out = [
        InclusionProof(proof.index, proof.size * 2, proof.siblings) if proof.size > 1 else None,
        InclusionProof(proof.index, proof.size // 2, proof.siblings) if proof.size > 3 else None,
        InclusionProof(proof.index + 1, proof.size, proof.siblings),
        InclusionProof(proof.index - 1, proof.size, proof.siblings) if proof.index else None,
        InclusionProof(proof.index, proof.size, proof.siblings + (b"\x00" * 32,)),
        InclusionProof(proof.index, proof.size, proof.siblings[:-1]) if proof.siblings else None,
    ]
    for k in range(len(proof.siblings)):
        flipped = bytearray(proof.siblings[k])
        flipped[k % 32] ^= 1
        out.append(
            InclusionProof(
                proof.index, proof.size, proof.siblings[:k] + (bytes(flipped),) + proof.siblings[k + 1 :]
            )
        )
    return [p for p in out if p is not None]


def test_inclusion_proof_tampered_fails() -> None:
    for n in (1, 2, 3, 5, 8, 13):
        values = _values(n)
        tree = AppendOnlyTree(values)
        for i in range(n):
            proof = tree.inclusion_proof(i)
            for bad in _tampered_inclusion(proof):
                if bad.index == proof.index and bad.size == proof.size and bad.siblings == proof.siblings:
                    continue
                with pytest.raises(ProofError):
                    bad.verify(values[i], tree.root)
            with pytest.raises(ProofError):
                proof.verify(values[(i + 1) % n] if n > 1 else b"\x07" * 32, tree.root)


def test_inclusion_proof_wrong_size_never_opens_another_value() -> None:
    # RFC 9162 paths do not bind the tree size on their own: leaf 0 of a 3-leaf tree has the same
    # path as leaf 0 of a 4-leaf tree whose right subtree hash equals leaf 2's hash. The size must come
    # from the commitment (the contracts store it beside the root), never from the prover. What a
    # path does bind is the value at the index: no other value verifies, whatever size is claimed.
    values = _values(13)
    tree = AppendOnlyTree(values)
    for i in range(13):
        proof = tree.inclusion_proof(i)
        for size in range(1, 40):
            bad = InclusionProof(i, size, proof.siblings)
            with pytest.raises(ProofError):
                bad.verify(b"\x5a" * 32, tree.root)
            try:
                bad.verify(values[i], tree.root)
            except ProofError:
                continue
            # Accepted only where the path has the same shape: same number of siblings, same sides.
            assert len(inclusion_path([b"\x00" * 32] * size, i)) == len(proof.siblings)
    # A size that changes the shape is rejected.
    proof = tree.inclusion_proof(2)
    with pytest.raises(ProofError):
        InclusionProof(2, 4, proof.siblings).verify(values[2], tree.root)
    with pytest.raises(ProofError):
        InclusionProof(2, 20, proof.siblings).verify(values[2], tree.root)


def test_consistency_proofs_every_pair_verify_and_match_pymerkle() -> None:
    for n in range(1, 22):
        values = _values(n, b"c")
        hashes = [leaf_hash(v) for v in values]
        tree = AppendOnlyTree(values)
        for m in range(1, n + 1):
            proof = tree.consistency_proof(m)
            proof.verify(tree.root_at(m), tree.root)
            pm = tree.pymerkle_consistency_proof(m)
            pymerkle.verify_consistency(tree.root_at(m), tree.root, pm)
            # RFC 9162 proofs are at most ceil(log2 n) + 1 nodes.
            assert len(proof.path) <= max(n - 1, 1).bit_length() + 1
            assert list(proof.path) == consistency_path(hashes, m, n)


def test_consistency_proof_tampered_fails() -> None:
    for n in range(2, 14):
        values = _values(n, b"t")
        tree = AppendOnlyTree(values)
        for m in range(1, n):
            proof = tree.consistency_proof(m)
            old, new = tree.root_at(m), tree.root
            bads = [
                # (m, n + 1) can pass for the same reason as an inclusion path's size: sizes come from
                # the commitment. Sizes that change the path's shape must fail:
                ConsistencyProof(m, 2 * n, proof.path),
                ConsistencyProof(m + 1, n, proof.path),
                ConsistencyProof(m - 1, n, proof.path) if m > 1 else None,
                ConsistencyProof(m, n, proof.path[:-1]),
                ConsistencyProof(m, n, proof.path + (b"\x00" * 32,)),
            ]
            for k in range(len(proof.path)):
                flipped = bytearray(proof.path[k])
                flipped[0] ^= 0x80
                bads.append(ConsistencyProof(m, n, proof.path[:k] + (bytes(flipped),) + proof.path[k + 1 :]))
            for bad in bads:
                if bad is None:
                    continue
                with pytest.raises(ProofError):
                    bad.verify(old, new)
            with pytest.raises(ProofError):
                proof.verify(tree.root_at(m - 1) if m > 1 else b"\x01" * 32, new)
            # A rewritten history: a different leaf inside the old part.
            forged = AppendOnlyTree(values[: m - 1] + [b"\x09" * 32] + values[m:])
            with pytest.raises(ProofError):
                forged.consistency_proof(m).verify(old, forged.root)


def test_consistency_equal_sizes() -> None:
    tree = AppendOnlyTree(_values(5))
    proof = tree.consistency_proof(5)
    assert proof.path == ()
    proof.verify(tree.root, tree.root)
    with pytest.raises(ProofError):
        proof.verify(tree.root, tree.root_at(4))


def test_root_from_inclusion_rejects_out_of_range() -> None:
    with pytest.raises(ProofError):
        root_from_inclusion(b"\x00" * 32, 3, 3, [])
    with pytest.raises(ProofError):
        root_from_inclusion(b"\x00" * 32, 0, 0, [])


def test_tree_bounds_raise_commit_error() -> None:
    tree = AppendOnlyTree(_values(3))
    with pytest.raises(CommitError):
        tree.inclusion_proof(3)
    with pytest.raises(CommitError):
        tree.consistency_proof(0)
    with pytest.raises(CommitError):
        tree.append(b"short")
    assert AppendOnlyTree().root == EMPTY_ROOT


def test_proof_json_and_abi_roundtrip() -> None:
    tree = AppendOnlyTree(_values(11))
    proof = tree.inclusion_proof(6)
    assert InclusionProof.from_json(proof.to_json()) == proof
    enc = proof.abi_encode()
    assert int.from_bytes(enc[0:32], "big") == 6
    assert int.from_bytes(enc[32:64], "big") == 11
    assert int.from_bytes(enc[64:96], "big") == 96  # offset of the dynamic array
    assert int.from_bytes(enc[96:128], "big") == len(proof.siblings)
    assert enc[128:] == b"".join(proof.siblings)
    cproof = tree.consistency_proof(4)
    assert ConsistencyProof.from_json(cproof.to_json()) == cproof
    with pytest.raises(ProofError):
        InclusionProof.from_json({"index": 0, "size": 1, "siblings": ["0x1234"]})


def test_append_proof_every_size_verifies() -> None:
    values = _values(40, b"a")
    tree = AppendOnlyTree(values)
    for m in range(40):
        proof = tree.append_proof(m)
        assert root_before_append(proof.siblings) == tree.root_at(m)
        verify_append(tree.root_at(m), tree.root_at(m + 1), m, leaf_hash(values[m]), proof.siblings)


def test_append_proof_tampered_fails() -> None:
    values = _values(12, b"b")
    tree = AppendOnlyTree(values)
    for m in range(12):
        proof = tree.append_proof(m)
        old, new, leaf = tree.root_at(m), tree.root_at(m + 1), leaf_hash(values[m])
        with pytest.raises(ProofError):
            verify_append(old, new, m, leaf_hash(b"\x33" * 32), proof.siblings)
        with pytest.raises(ProofError):
            verify_append(tree.root_at(m - 1) if m else b"\x00" * 32, new, m, leaf, proof.siblings)
        # (The old size, like every tree size, comes from the commitment: see the size test above.)
        for k in range(len(proof.siblings)):
            bad = proof.siblings[:k] + (bytes(32),) + proof.siblings[k + 1 :]
            with pytest.raises(ProofError):
                verify_append(old, new, m, leaf, bad)
        if m:
            # A new root whose history differs from the old root's is not an append to it.
            forged = AppendOnlyTree([b"\x44" * 32] + values[1 : m + 1])
            with pytest.raises(ProofError):
                verify_append(old, forged.root, m, leaf, forged.append_proof(m).siblings)

"""RFC 9162 Merkle trees: pymerkle-backed append-only trees, fast bulk roots, and proof objects.

Two paths build the same trees (tests/test_commit_merkle.py checks they agree with pymerkle):

* ``AppendOnlyTree`` wraps ``pymerkle.InmemoryTree``: O(log n) appends with the current root read off
  the root node, inclusion proofs against any past size and consistency proofs between two sizes.
  The trace, the op log and the game's sequences use it.
* ``merkle_root`` / ``inclusion_path`` work on a list of leaf hashes level by level (an odd node at the
  end of a level is promoted unchanged, which is RFC 9162's split at the largest power of two). A
  tensor of the tiny GPT has tens of thousands of chunks; building pymerkle nodes for each would
  cost more than hashing the data itself, and a checkpoint commits every tensor.

Proofs are positional (index and tree size, never sorted pairs): in a trace, leaf order is the claim.
Indices are zero-based here and on chain (pymerkle counts from one; the conversion lives in this
module only).

Proof encodings for contracts (docs/COMMITMENTS.md §Proofs):

* inclusion: ``(uint256 index, uint256 size, bytes32[] siblings)``, siblings bottom-up, exactly the
  RFC 9162 §2.1.3 audit path;
* consistency: ``(uint256 oldSize, uint256 newSize, bytes32[] path)``, exactly RFC 9162 §2.1.4.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pymerkle

from protocol.commit.errors import CommitError, ProofError
from protocol.commit.hashing import (
    DIGEST_SIZE,
    EMPTY_ROOT,
    PYMERKLE_ALGORITHM,
    leaf_hash,
    node_hash,
)

# ---------------------------------------------------------------------------------------------------
# Tree maths over leaf hashes
# ---------------------------------------------------------------------------------------------------


def split_point(n: int) -> int:
    """Largest power of two strictly below ``n`` (n >= 2): where RFC 9162 splits a tree of n leaves."""
    if n < 2:
        raise CommitError(f"a tree of {n} leaves has no split point")
    return 1 << ((n - 1).bit_length() - 1)


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 root of the given leaf hashes, computed level by level without building nodes."""
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])  # promoted unchanged: its sibling subtree does not exist yet
        level = nxt
    return level[0]


def tree_levels(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """All levels of the tree, leaves first, root last (for many proofs out of one big tree)."""
    levels = [list(leaf_hashes)]
    while len(levels[-1]) > 1:
        level = levels[-1]
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        levels.append(nxt)
    return levels


def inclusion_path_from_levels(levels: Sequence[Sequence[bytes]], index: int) -> list[bytes]:
    """RFC 9162 audit path of leaf ``index`` from precomputed ``tree_levels``, bottom-up."""
    size = len(levels[0])
    if not 0 <= index < size:
        raise CommitError(f"leaf index {index} out of range for a tree of {size} leaves")
    path = []
    i = index
    for level in levels[:-1]:
        sibling = i ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        i >>= 1
    return path


def inclusion_path(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 9162 audit path of leaf ``index``, bottom-up."""
    return inclusion_path_from_levels(tree_levels(leaf_hashes), index)


def consistency_path(leaf_hashes: Sequence[bytes], old_size: int, new_size: int | None = None) -> list[bytes]:
    """RFC 9162 §2.1.4.1 consistency proof between the first ``old_size`` and ``new_size`` leaves."""
    n = len(leaf_hashes) if new_size is None else new_size
    if not 0 < old_size <= n <= len(leaf_hashes):
        raise CommitError(f"no consistency proof from size {old_size} to {n} (tree has {len(leaf_hashes)})")

    def subproof(m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        width = hi - lo
        if m == width:
            return [] if complete else [merkle_root(leaf_hashes[lo:hi])]
        k = split_point(width)
        if m <= k:
            return subproof(m, lo, lo + k, complete) + [merkle_root(leaf_hashes[lo + k : hi])]
        return subproof(m - k, lo + k, hi, False) + [merkle_root(leaf_hashes[lo : lo + k])]

    return subproof(old_size, 0, n, True)


def root_from_inclusion(leaf: bytes, index: int, size: int, siblings: Sequence[bytes]) -> bytes:
    """Root implied by an RFC 9162 audit path (§2.1.3.2); raises ``ProofError`` if malformed.

    This is the algorithm ``MerkleLog.sol`` implements, step for step.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} out of range for tree size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in siblings:
        if sn == 0:
            raise ProofError(f"inclusion path too long: {len(siblings)} siblings for index {index} of {size}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:  # climb past levels where this node was promoted
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion path too short: {len(siblings)} siblings for index {index} of {size}")
    return r


def root_before_append(siblings: Sequence[bytes]) -> bytes:
    """Root of the tree of m leaves, from the audit path of leaf m in the tree of m + 1 leaves.

    Leaf m is the last leaf, so every sibling on its path lies to its left, and they are exactly the
    roots of the complete subtrees the m-leaf tree decomposes into, smallest first: folding them
    right to left rebuilds the old root.
    """
    if not siblings:
        return EMPTY_ROOT
    r = siblings[0]
    for s in siblings[1:]:
        r = node_hash(s, r)
    return r


def verify_append(
    old_root: bytes, new_root: bytes, old_size: int, leaf: bytes, siblings: Sequence[bytes]
) -> None:
    """Raise ``ProofError`` unless ``new_root`` is ``old_root``'s tree with one leaf hash appended.

    One audit path proves both sides: the leaf is the last of the new tree, and the same siblings
    fold into the old root. This is the one-step check of an append-only log (an op appends its
    output id) and of a trace progress commitment extended by one checkpoint.
    """
    if root_from_inclusion(leaf, old_size, old_size + 1, siblings) != new_root:
        raise ProofError(f"the leaf is not entry {old_size} of the new root")
    if root_before_append(siblings) != old_root:
        raise ProofError(f"the new root's first {old_size} entries are not the old root")


def verify_consistency_path(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]
) -> None:
    """Check an RFC 9162 §2.1.4.2 consistency proof; raises ``ProofError`` unless it holds.

    This is the algorithm ``MerkleLog.sol`` implements, step for step.
    """
    if not 0 < old_size <= new_size:
        raise ProofError(f"no consistency between sizes {old_size} and {new_size}")
    if old_size == new_size:
        if path:
            raise ProofError("a consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError("equal sizes but different roots")
        return
    nodes = list(path)
    if old_size & (old_size - 1) == 0:  # the old tree is a complete subtree: its root starts the walk
        nodes.insert(0, old_root)
    if not nodes:
        raise ProofError("empty consistency path")
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            raise ProofError(f"consistency path too long ({len(path)} nodes for {old_size} -> {new_size})")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency path too short ({len(path)} nodes for {old_size} -> {new_size})")
    if fr != old_root:
        raise ProofError(f"consistency proof does not lead to the old root at size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not lead to the new root at size {new_size}")


# ---------------------------------------------------------------------------------------------------
# Proof objects and their contract encoding
# ---------------------------------------------------------------------------------------------------


def _check_digest(value: bytes, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != DIGEST_SIZE:
        raise CommitError(f"{what} must be {DIGEST_SIZE} bytes, got {value!r:.80}")
    return bytes(value)


def _abi_words(*ints: int) -> bytes:
    return b"".join(i.to_bytes(32, "big") for i in ints)


@dataclass(frozen=True)
class InclusionProof:
    """Leaf ``index`` (zero-based) is in the tree of ``size`` leaves: RFC 9162 audit path, bottom-up."""

    index: int
    size: int
    siblings: tuple[bytes, ...]

    def root_for_leaf_hash(self, leaf: bytes) -> bytes:
        """The root this proof implies for a leaf hash."""
        return root_from_inclusion(leaf, self.index, self.size, self.siblings)

    def verify_hash(self, leaf: bytes, root: bytes) -> None:
        """Raise ``ProofError`` unless the leaf *hash* sits at ``index`` under ``root``."""
        if self.root_for_leaf_hash(leaf) != root:
            raise ProofError(f"inclusion proof of leaf {self.index} of {self.size} does not match the root")

    def verify(self, data: bytes, root: bytes) -> None:
        """Raise ``ProofError`` unless leaf *data* (hashed as ``H(0x00||data)``) sits at ``index``."""
        self.verify_hash(leaf_hash(data), root)

    def to_abi(self) -> tuple[int, int, list[bytes]]:
        """``(index, size, siblings)`` as web3 takes ``(uint256, uint256, bytes32[])``."""
        return (self.index, self.size, list(self.siblings))

    def abi_encode(self) -> bytes:
        """Standard ABI encoding of the tuple ``(uint256 index, uint256 size, bytes32[] siblings)``."""
        head = _abi_words(self.index, self.size, 3 * 32)
        return head + _abi_words(len(self.siblings)) + b"".join(self.siblings)

    def to_json(self) -> dict[str, Any]:
        """JSON form: hex strings with a 0x prefix."""
        return {"index": self.index, "size": self.size, "siblings": ["0x" + s.hex() for s in self.siblings]}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> InclusionProof:
        """Inverse of ``to_json``; raises ``ProofError`` on a malformed object."""
        try:
            sibs = tuple(
                _check_digest(bytes.fromhex(s.removeprefix("0x")), "sibling") for s in obj["siblings"]
            )
            return cls(int(obj["index"]), int(obj["size"]), sibs)
        except (KeyError, TypeError, ValueError, CommitError) as err:
            raise ProofError(f"malformed inclusion proof: {err}") from err


@dataclass(frozen=True)
class ConsistencyProof:
    """The tree of ``new_size`` leaves extends the tree of ``old_size`` leaves (RFC 9162 §2.1.4)."""

    old_size: int
    new_size: int
    path: tuple[bytes, ...]

    def verify(self, old_root: bytes, new_root: bytes) -> None:
        """Raise ``ProofError`` unless ``new_root`` extends ``old_root`` at the stated sizes."""
        verify_consistency_path(self.old_size, self.new_size, old_root, new_root, self.path)

    def to_abi(self) -> tuple[int, int, list[bytes]]:
        """``(oldSize, newSize, path)`` as web3 takes ``(uint256, uint256, bytes32[])``."""
        return (self.old_size, self.new_size, list(self.path))

    def abi_encode(self) -> bytes:
        """Standard ABI encoding of ``(uint256 oldSize, uint256 newSize, bytes32[] path)``."""
        head = _abi_words(self.old_size, self.new_size, 3 * 32)
        return head + _abi_words(len(self.path)) + b"".join(self.path)

    def to_json(self) -> dict[str, Any]:
        """JSON form: hex strings with a 0x prefix."""
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "path": ["0x" + p.hex() for p in self.path],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ConsistencyProof:
        """Inverse of ``to_json``; raises ``ProofError`` on a malformed object."""
        try:
            path = tuple(_check_digest(bytes.fromhex(s.removeprefix("0x")), "path node") for s in obj["path"])
            return cls(int(obj["old_size"]), int(obj["new_size"]), path)
        except (KeyError, TypeError, ValueError, CommitError) as err:
            raise ProofError(f"malformed consistency proof: {err}") from err


# ---------------------------------------------------------------------------------------------------
# pymerkle-backed append-only tree
# ---------------------------------------------------------------------------------------------------


_Tree = TypeVar("_Tree", bound="AppendOnlyTree")


class AppendOnlyTree:
    """An RFC 9162 tree of 32-byte values (roots, tensor ids) that only grows.

    Leaves are the values themselves; the tree hashes each as ``H(0x00 || value)``. Backed by
    pymerkle's ``InmemoryTree``; the leaf hashes are also kept in a plain list, from which the RFC 9162
    consistency paths for contracts are cut (pymerkle's own consistency proofs carry a different,
    longer path layout, and are checked too).
    """

    def __init__(self, values: Iterable[bytes] = ()) -> None:
        self._tree = pymerkle.InmemoryTree(PYMERKLE_ALGORITHM)
        self._values: list[bytes] = []
        self.extend(values)

    # -- growing -------------------------------------------------------------------------------------

    def append(self, value: bytes) -> int:
        """Append one 32-byte value; returns its zero-based index."""
        value = _check_digest(value, "leaf value")
        self._tree.append_entry(value)
        self._values.append(value)
        return len(self._values) - 1

    def extend(self, values: Iterable[bytes]) -> int:
        """Append values in order; returns the new size."""
        for v in values:
            self.append(v)
        return len(self._values)

    # -- reading -------------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._values)

    def __len__(self) -> int:
        return len(self._values)

    @property
    def root(self) -> bytes:
        """Current root (``EMPTY_ROOT`` while empty)."""
        return self._tree.get_root() if self._values else EMPTY_ROOT

    def root_at(self, size: int) -> bytes:
        """Root of the first ``size`` leaves (any past size)."""
        if not 0 <= size <= self.size:
            raise CommitError(f"size {size} out of range (tree has {self.size} leaves)")
        return self._tree.get_root(size) if size else EMPTY_ROOT

    def value(self, index: int) -> bytes:
        """The 32-byte value at ``index``."""
        if not 0 <= index < self.size:
            raise CommitError(f"leaf index {index} out of range (tree has {self.size} leaves)")
        return self._values[index]

    @property
    def values(self) -> list[bytes]:
        """A copy of all values in order."""
        return list(self._values)

    def to_json(self) -> dict[str, Any]:
        """``{"size", "root", "values"}`` with 0x-prefixed hex: enough to rebuild the tree after a restart."""
        return {
            "size": self.size,
            "root": "0x" + self.root.hex(),
            "values": ["0x" + v.hex() for v in self._values],
        }

    @classmethod
    def from_json(cls: type[_Tree], obj: dict[str, Any]) -> _Tree:
        """Rebuild a tree saved with ``to_json``; raises ``CommitError`` unless it has the saved root."""
        try:
            values = [bytes.fromhex(v.removeprefix("0x")) for v in obj["values"]]
            root = bytes.fromhex(obj["root"].removeprefix("0x"))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise CommitError(f"malformed tree: {err}") from err
        tree = cls()
        tree.extend(values)
        if tree.root != root:
            raise CommitError(f"the saved values give root 0x{tree.root.hex()}, not the saved 0x{root.hex()}")
        return tree

    # -- proving -------------------------------------------------------------------------------------

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        """Proof that leaf ``index`` is in the tree of ``size`` leaves (default: now)."""
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise CommitError(f"no inclusion proof of leaf {index} at size {size} (tree has {self.size})")
        pm = self._tree.prove_inclusion(index + 1, size)
        # pymerkle's path is [leaf hash, siblings bottom-up]; the contract takes the siblings only.
        return InclusionProof(index, size, tuple(pm.path[1:]))

    def pymerkle_inclusion_proof(self, index: int, size: int | None = None) -> pymerkle.InclusionProof:
        """pymerkle's own proof object (for cross-checks and pymerkle-speaking peers)."""
        size = self.size if size is None else size
        try:
            return self._tree.prove_inclusion(index + 1, size)
        except pymerkle.InvalidChallenge as err:
            raise CommitError(f"no inclusion proof of leaf {index} at size {size}: {err}") from err

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """RFC 9162 proof that the tree at ``new_size`` (default: now) extends the tree at ``old_size``."""
        new_size = self.size if new_size is None else new_size
        hashes = [leaf_hash(v) for v in self._values[:new_size]]
        return ConsistencyProof(old_size, new_size, tuple(consistency_path(hashes, old_size, new_size)))

    def append_proof(self, index: int) -> InclusionProof:
        """Proof that the tree at size ``index + 1`` is the tree at size ``index`` plus leaf ``index``.

        Check with ``verify_append(root_at(index), root_at(index + 1), index, leaf_hash, proof.siblings)``
        (Solidity: ``MerkleLog.verifyAppend``).
        """
        return self.inclusion_proof(index, index + 1)

    def pymerkle_consistency_proof(
        self, old_size: int, new_size: int | None = None
    ) -> pymerkle.ConsistencyProof:
        """pymerkle's own consistency proof object."""
        new_size = self.size if new_size is None else new_size
        try:
            return self._tree.prove_consistency(old_size, new_size)
        except pymerkle.InvalidChallenge as err:
            raise CommitError(f"no consistency proof from {old_size} to {new_size}: {err}") from err


def verify_inclusion(value: bytes, root: bytes, proof: InclusionProof) -> None:
    """Raise ``ProofError`` unless the 32-byte ``value`` is leaf ``proof.index`` of the tree ``root``."""
    proof.verify(value, root)


def verify_consistency(old_root: bytes, new_root: bytes, proof: ConsistencyProof) -> None:
    """Raise ``ProofError`` unless ``new_root`` extends ``old_root`` at the proof's sizes."""
    proof.verify(old_root, new_root)

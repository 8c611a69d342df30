"""The append-only op log of one training step (level 3 of the game).

The log starts with the ids of S_t's tensors and of the step's batch, then receives the ids of each
op's outputs in canonical graph order. After op j its root commits to *every* tensor that any later op
may read, so "the challenger agrees with leaf j" means "all inputs of op j+1 are right" (DESIGN §3).
Level 3's sequence is ``op_roots``: the log root after the start and after each op.

Appending is one pymerkle append per tensor id (O(log n) hashes, the root read off the root node),
so a step of a few thousand ops costs milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable

from protocol.commit.errors import CommitError
from protocol.commit.merkle import AppendOnlyTree, InclusionProof


class OpLog(AppendOnlyTree):
    """Append-only log of tensor ids with the root after every append and the op boundaries."""

    def __init__(self, initial_ids: Iterable[bytes] = ()) -> None:
        self._roots: list[bytes] = []
        super().__init__()
        for tid in initial_ids:
            self.append(tid)
        self._op_sizes: list[int] = [self.size]  # the log's start is op boundary 0

    def append(self, value: bytes) -> int:
        """Append one tensor id; records the root after it. Returns the entry's index."""
        index = super().append(value)
        self._roots.append(self._tree.get_root())
        return index

    def append_op(self, output_ids: Iterable[bytes]) -> bytes:
        """Append the output ids of one op and close it; returns the log root after the op."""
        for tid in output_ids:
            self.append(tid)
        if self.size == self._op_sizes[-1]:
            raise CommitError("an op must append at least one output id")
        self._op_sizes.append(self.size)
        return self.root

    def root_after(self, size: int) -> bytes:
        """Root after the first ``size`` entries (recorded at append time, O(1))."""
        if not 0 < size <= self.size:
            return self.root_at(size)
        return self._roots[size - 1]

    @property
    def roots(self) -> list[bytes]:
        """Root after every append: ``roots[k]`` is the root at size ``k + 1``."""
        return list(self._roots)

    @property
    def op_sizes(self) -> list[int]:
        """Log size at each op boundary: index 0 is the start (state + batch), then after each op."""
        return list(self._op_sizes)

    @property
    def op_roots(self) -> list[bytes]:
        """Level 3's leaves: the log root at the start and after each op."""
        return [self.root_after(s) for s in self._op_sizes]

    def op_inclusion_proof(self, index: int, op: int) -> InclusionProof:
        """Proof of entry ``index`` against the log root after op ``op`` (0 = the start)."""
        if not 0 <= op < len(self._op_sizes):
            raise CommitError(f"op boundary {op} out of range ({len(self._op_sizes)} boundaries)")
        return self.inclusion_proof(index, self._op_sizes[op])

    @staticmethod
    def verify_entry(root: bytes, tensor_id: bytes, proof: InclusionProof) -> None:
        """Raise ``ProofError`` unless ``tensor_id`` is entry ``proof.index`` of the log ``root``."""
        proof.verify(tensor_id, root)

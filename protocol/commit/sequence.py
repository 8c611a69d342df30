"""Sequence commitments for the levels of the dispute game.

At every level the solver commits to a list of 32-byte leaves (checkpoint state roots, per-step state
roots, op-log roots, scalar-program commitments) and later reveals leaf i with a positional RFC 9162
inclusion proof. ``SequenceTree`` is that commitment; ``TraceTree`` and ``OpLog`` are the same tree
with the extra bookkeeping of their level.
"""

from __future__ import annotations

from collections.abc import Iterable

from protocol.commit.merkle import AppendOnlyTree, InclusionProof


class SequenceTree(AppendOnlyTree):
    """RFC 9162 commitment to an ordered list of 32-byte leaves (``root``, ``inclusion_proof(i)``)."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        super().__init__(leaves)

    def leaf(self, index: int) -> bytes:
        """Leaf ``index`` (the 32-byte value, not its hash)."""
        return self.value(index)

    def reveal(self, index: int) -> tuple[bytes, InclusionProof]:
        """Leaf ``index`` with its proof against the current root: one move of the bisection."""
        return self.value(index), self.inclusion_proof(index)

    @staticmethod
    def verify_leaf(root: bytes, leaf: bytes, proof: InclusionProof) -> None:
        """Raise ``ProofError`` unless ``leaf`` is entry ``proof.index`` of the sequence ``root``."""
        proof.verify(leaf, root)


def sequence_root(leaves: Iterable[bytes]) -> bytes:
    """Root of a list of 32-byte leaves."""
    return SequenceTree(leaves).root

"""The checkpoint trace: an append-only RFC 9162 tree over S_0, S_c, S_2c, ... (level 1 of the game).

While training, the solver appends each checkpoint's state root and may post the current root on
chain as a progress commitment; each later root comes with a consistency proof that it extends the
previous one, so a solver cannot rewrite history it has already committed to.
"""

from __future__ import annotations

from collections.abc import Iterable

from protocol.commit.merkle import AppendOnlyTree, ConsistencyProof, InclusionProof


class TraceTree(AppendOnlyTree):
    """Checkpoint state roots in order; leaf k is the state after step ``k * checkpoint_interval``."""

    def __init__(self, state_roots: Iterable[bytes] = ()) -> None:
        super().__init__(state_roots)

    def append_checkpoint(self, state_root: bytes) -> bytes:
        """Append one checkpoint state root; returns the new trace root (the progress commitment)."""
        self.append(state_root)
        return self.root

    @staticmethod
    def verify_inclusion(root: bytes, state_root: bytes, proof: InclusionProof) -> None:
        """Raise ``ProofError`` unless ``state_root`` is checkpoint ``proof.index`` of the trace ``root``."""
        proof.verify(state_root, root)

    @staticmethod
    def verify_consistency(old_root: bytes, new_root: bytes, proof: ConsistencyProof) -> None:
        """Raise ``ProofError`` unless the trace ``new_root`` extends ``old_root``."""
        proof.verify(old_root, new_root)

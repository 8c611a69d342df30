"""The Solidity test vectors are exactly what the Python commitment layer produces today."""

from __future__ import annotations

from protocol.commit import vectors


def test_committed_vectors_match_python() -> None:
    text = vectors.render(vectors.build())
    assert vectors.OUTPUT.read_text() == text, "stale vectors: run `python -m protocol.commit.vectors`"


def test_vector_blobs_have_the_documented_sizes() -> None:
    blobs = vectors.build()
    assert len(blobs["LEAVES"]) == 32 * vectors.N_LEAVES
    assert len(blobs["ROOTS"]) == 32 * (vectors.N_LEAVES + 1)
    assert len(blobs["DEPTH20"]) == 32 + 4 + 4 + 20 * 32 + 32

"""The challenger's search for a differing chunk of a withheld output (protocol.dispute.availability).

The solver's openings are simulated exactly as ``openChunk`` emits them (the chunk and its RFC 9162
path in the solver's chunk tree); the game's side of the move is tested in
contracts/test/dispute/DisputeGame.t.sol and, over a real trace, in tests/test_dispute_play.py.
"""

from __future__ import annotations

import math

import pytest
import torch

from protocol.commit import TensorCommitment
from protocol.commit.merkle import merkle_root
from protocol.dispute.availability import Opening, next_move, path_ranges


def _opening(theirs: TensorCommitment, j: int) -> Opening:
    chunk, path = b"", ()
    if j < theirs.num_chunks:
        chunk = theirs.chunk(j)
        path = tuple(theirs.element_proof(j * 64).siblings)
    return Opening(j, 1, tuple(theirs.shape), chunk, path)


def _search(mine: TensorCommitment, theirs: TensorCommitment, budget: int = 32) -> tuple[int, list[int]]:
    openings: list[Opening] = []
    while True:
        move = next_move(mine, openings, budget - len(openings))
        if move.kind == "name":
            assert not move.guess
            return move.value, [o.index for o in openings]
        openings.append(_opening(theirs, move.value))


def test_path_ranges_cover_the_tree() -> None:
    for size in range(1, 40):
        for index in range(size):
            ranges = path_ranges(index, size)
            covered = sorted([(index, index + 1), *ranges])
            assert covered[0][0] == 0 and covered[-1][1] == size
            assert all(a[1] == b[0] for a, b in zip(covered, covered[1:], strict=False))
            assert len(ranges) == len(TensorCommitment(torch.zeros(64 * size)).element_proof(64 * index).siblings)


def test_path_ranges_nodes_are_the_path() -> None:
    t = TensorCommitment(torch.arange(64 * 13, dtype=torch.float32))
    hashes = t.chunk_hashes
    for j in range(13):
        path = t.element_proof(64 * j).siblings
        assert [merkle_root(hashes[lo:hi]) for lo, hi in path_ranges(j, 13)] == list(path)


@pytest.mark.parametrize("chunks, faulty", [(1, 0), (13, 0), (13, 12), (16, 9), (100, 77), (257, 256)])
def test_next_move_finds_the_faulty_element(chunks: int, faulty: int) -> None:
    honest = torch.arange(64 * chunks, dtype=torch.float32)
    lied = honest.clone()
    element = faulty * 64 + 5
    lied[element] += 1.0
    named, opened = _search(TensorCommitment(honest), TensorCommitment(lied))
    assert named == element
    assert opened[-1] == faulty
    assert len(opened) <= 1 + math.ceil(math.log2(chunks))


def test_next_move_first_differing_element_of_the_chunk() -> None:
    honest = torch.zeros(64 * 4)
    lied = honest.clone()
    lied[64 * 3 + 10] = 1.0
    lied[64 * 3 + 20] = 2.0
    assert _search(TensorCommitment(honest), TensorCommitment(lied))[0] == 64 * 3 + 10


def test_next_move_without_budget_or_with_another_shape_guesses() -> None:
    mine = TensorCommitment(torch.zeros(64 * 4))
    assert next_move(mine, [], 0).guess
    other = TensorCommitment(torch.zeros(64 * 2))
    move = next_move(mine, [_opening(other, 0)], 5)
    assert move.kind == "name" and move.guess

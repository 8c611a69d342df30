"""Naming a differing element when the solver withholds its disputed output (``requestChunk``).

After ``openOp`` the challenger must name an element of the solver's output that differs from its
own. When the solver's artifacts do not serve that tensor, the challenger asks the game to make the
solver open chunks of it on chain (``requestChunk`` / ``openChunk``; a solver that cannot loses on
time). Each opening carries the chunk's RFC 9162 path, i.e. the solver's chunk-tree nodes beside it,
and every node covers a known range of chunks. A node that differs from the challenger's own node
over the same range holds a differing chunk, so the next request is the first chunk of the
smallest such range: that opening either shows a differing chunk or a smaller differing node
inside the range. The search ends within ``1 + log2(chunks)`` openings (``MAX_CHUNK_REQUESTS`` in
the game is 32).

:func:`next_move` is pure: it reads the openings so far (``ChunkOpened`` events) and the challenger's
own output tensor, and says which chunk to ask for next or which element to name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from protocol.commit import CHUNK_BYTES, TensorCommitment
from protocol.commit.merkle import merkle_root, split_point
from protocol.commit.tensor import DTYPES, dtype_from_code


@dataclass(frozen=True)
class Opening:
    """One ``ChunkOpened`` event: chunk ``index`` of the solver's output (empty if it has none)."""

    index: int
    dtype: int
    shape: tuple[int, ...]
    chunk: bytes
    path: tuple[bytes, ...]

    @classmethod
    def of_event(cls, args: dict) -> Opening:  # type: ignore[type-arg]
        return cls(int(args["chunkIndex"]), int(args["dtype"]), tuple(int(d) for d in args["shape"]),
                   bytes(args["chunk"]), tuple(bytes(p) for p in args["chunkProof"]))


@dataclass(frozen=True)
class Move:
    """``request`` chunk ``value``, or ``name`` element ``value`` (``guess``: no differing element found)."""

    kind: str  # "request" | "name"
    value: int
    guess: bool = False


def path_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf range [lo, hi) covered by each node of the RFC 9162 audit path of leaf ``index`` in
    a tree of ``size`` leaves, bottom-up (the order of the path's siblings)."""

    def rec(lo: int, hi: int) -> list[tuple[int, int]]:
        n = hi - lo
        if n == 1:
            return []
        k = split_point(n)
        if index - lo < k:
            return rec(lo, lo + k) + [(lo + k, hi)]
        return rec(lo + k, hi) + [(lo, lo + k)]

    if not 0 <= index < size:
        return []
    return rec(0, size)


def next_move(mine: TensorCommitment, openings: Sequence[Opening], requests_left: int) -> Move:
    """The challenger's next move at NameOutput without the solver's tensor off chain."""
    width = DTYPES[mine.dtype][1]
    per_chunk = CHUNK_BYTES // width
    hashes = mine.chunk_hashes
    opened = {o.index for o in openings}
    candidates: list[tuple[int, int]] = []
    for o in openings:
        if dtype_from_code(o.dtype) != mine.dtype or o.shape != tuple(mine.shape):
            # A wrong dtype or shape is rejected by its header (ChallengerPlayer.header_rejection,
            # docs/DISPUTE.md "Wrong header"); only when no opened chunk gives the header is it a guess.
            return Move("name", 0, guess=True)
        if o.chunk and o.index < mine.num_chunks:
            theirs, own = o.chunk, mine.chunk(o.index)
            if theirs != own:
                k = next(i for i in range(0, len(own), width) if theirs[i:i + width] != own[i:i + width])
                return Move("name", o.index * per_chunk + k // width)
            for (lo, hi), node in zip(path_ranges(o.index, mine.num_chunks), o.path, strict=False):
                if node != merkle_root(hashes[lo:hi]):
                    candidates.append((lo, hi))
    if not openings:
        return Move("request", 0) if requests_left > 0 else Move("name", 0, guess=True)
    for lo, hi in sorted(candidates, key=lambda r: r[1] - r[0]):
        for j in range(lo, hi):
            if j not in opened and requests_left > 0:
                return Move("request", j)
    return Move("name", 0, guess=True)

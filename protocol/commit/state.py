"""Training-state commitment S_t: the RFC 9162 root over the ordered ids of every tensor the next step reads.

The caller fixes names and order (parameters, optimizer moments, the step counter as a tensor, ...);
the root commits to the order and the tensors, not to the names, so the list a task spec derives must
be the same on every machine. Names are kept beside the ids so that a dispute can say "leaf 3 is
``fc1.weight``" and prove it with ``StateCommitment.inclusion_proof``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from protocol.commit.errors import CommitError
from protocol.commit.merkle import AppendOnlyTree, InclusionProof
from protocol.commit.tensor import TensorCommitment, prepare_native_state_root, tensor_id


def _id_of(value: Any) -> bytes:
    """A tensor id from a tensor, a ``TensorCommitment`` or an already computed 32-byte id."""
    if isinstance(value, TensorCommitment):
        return value.id
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 32:
            raise CommitError(f"a precomputed tensor id must be 32 bytes, got {len(value)}")
        return bytes(value)
    return tensor_id(value)


@dataclass
class StateCommitment:
    """S_t with the ordered names and ids it was built from."""

    names: list[str]
    ids: list[bytes]
    tree: AppendOnlyTree = field(repr=False)

    @property
    def root(self) -> bytes:
        """The state root S_t."""
        return self.tree.root

    def position(self, name: str) -> int:
        """Leaf index of tensor ``name``."""
        try:
            return self.names.index(name)
        except ValueError:
            raise CommitError(f"no tensor named {name!r} in this state") from None

    def to_json(self) -> dict[str, Any]:
        """``{"root", "names", "ids"}`` with 0x-prefixed hex, for manifests and verifiers."""
        return {
            "root": "0x" + self.root.hex(),
            "names": list(self.names),
            "ids": ["0x" + i.hex() for i in self.ids],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> StateCommitment:
        """Rebuild from ``to_json``; raises ``CommitError`` if the ids do not give the stated root."""
        try:
            names = [str(n) for n in obj["names"]]
            ids = [bytes.fromhex(i.removeprefix("0x")) for i in obj["ids"]]
            root = bytes.fromhex(obj["root"].removeprefix("0x"))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise CommitError(f"malformed state commitment: {err}") from err
        commitment = state_commitment(zip(names, ids, strict=True))
        if commitment.root != root:
            raise CommitError(f"state ids give root 0x{commitment.root.hex()}, not the stated 0x{root.hex()}")
        return commitment

    def inclusion_proof(self, name_or_index: str | int) -> InclusionProof:
        """Proof that a tensor's id is the given leaf of S_t."""
        index = self.position(name_or_index) if isinstance(name_or_index, str) else name_or_index
        return self.tree.inclusion_proof(index)


def state_commitment(named_tensors: Iterable[tuple[str, Any]]) -> StateCommitment:
    """Commit to an ordered list of ``(name, tensor | TensorCommitment | id)``."""
    names: list[str] = []
    ids: list[bytes] = []
    for name, value in named_tensors:
        if name in names:
            raise CommitError(f"tensor name {name!r} appears twice in the state")
        names.append(name)
        ids.append(_id_of(value))
    return StateCommitment(names, ids, AppendOnlyTree(ids))


def state_root(named_tensors: Iterable[tuple[str, Any]]) -> bytes:
    """S_t: the root over the ids of the ordered ``(name, tensor)`` list."""
    return state_commitment(named_tensors).root


def fast_state_root(named_tensors: Iterable[tuple[str, Any]]) -> bytes:
    """:func:`state_root` of a list of tensors (not ids or commitments), in one C++ call that releases
    the GIL when the RepOps CPU extension is built (``tensor.native_state_root``), else as
    :func:`state_root`: what a training loop commits at every checkpoint."""
    return prepare_state_root(named_tensors)()


def prepare_state_root(named_tensors: Iterable[tuple[str, Any]]) -> Callable[[], bytes]:
    """:func:`fast_state_root` in two parts, for a commit on another thread: this call takes private
    copies of the tensors' bytes (its Python work, which holds the GIL), the function it returns
    computes the root from them (in C++ without the GIL when the extension is built). Later changes
    to the tensors do not reach the root."""
    items = list(named_tensors)
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise CommitError(f"tensor name {dup!r} appears twice in the state")
    if not any(isinstance(v, (TensorCommitment, bytes, bytearray)) for _, v in items):
        run = prepare_native_state_root([v for _, v in items])
        if run is not None:
            return run
    copies = [(n, v.detach().clone() if hasattr(v, "detach") else np.array(v, copy=True) if isinstance(v, np.ndarray)
               else v) for n, v in items]  # fmt: skip
    return lambda: state_commitment(copies).root

"""Typed client of the deployed AvailabilityChallenge (contracts/src/AvailabilityChallenge.sol).

A bonded demand for chunks of one tensor of one committed checkpoint of a result; anyone holding the
data answers on chain (paid its gas from the bond), or the solver is slashed once the response
window ends (docs/DISPUTE.md, "Availability challenges"). One method per contract function, like
:mod:`protocol.chain.dispute`. Building a demand's layout and an answer from a state's tensors is
:func:`state_layout` and :func:`chunk_answer`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from web3.logs import DISCARD
from web3.types import TxReceipt

from protocol.chain.client import Chain

MAX_CHUNKS = 32
"""``AvailabilityChallenge.MAX_CHUNKS``: most chunks one demand may ask for."""


class Status(enum.IntEnum):
    """``IAvailabilityChallenge.Status``."""

    NONE = 0
    OPEN = 1
    ANSWERED = 2
    UNANSWERED = 3


@dataclass(frozen=True)
class StateLayout:
    """``IAvailabilityChallenge.StateLayout``: the step layout opened against the task's opGraphRoot."""

    graph_root: bytes
    num_ops: int
    state_size: int
    designated: list[int]
    inputs_root: bytes

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.graph_root, self.num_ops, self.state_size, list(self.designated), self.inputs_root)


@dataclass(frozen=True)
class ChunkAnswer:
    """``IAvailabilityChallenge.ChunkAnswer``."""

    state_root: bytes
    trace_proof: list[bytes]
    tensor_id: bytes
    id_proof: list[bytes]
    dtype: int
    shape: list[int]
    chunk_root: bytes
    chunks: list[bytes]
    chunk_proofs: list[list[bytes]]

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.state_root, self.trace_proof, self.tensor_id, self.id_proof, self.dtype, self.shape,
                self.chunk_root, self.chunks, self.chunk_proofs)


def state_layout(spec: Any) -> StateLayout:
    """The layout a demand on a task of ``spec`` opens (the preimage of its opGraphRoot's second half)."""
    from protocol.dispute.layout import task_commitment

    root, layout = task_commitment(spec)
    return StateLayout(root, layout.num_ops, layout.state_size, list(layout.designated), layout.inputs_root)


def chunk_answer(checkpoint_roots: Sequence[bytes], checkpoint: int, tensors: Sequence[Any], tensor: int,
                 first: int, count: int) -> ChunkAnswer:
    """The answer to a demand for chunks [first, first + count) of tensor ``tensor`` of checkpoint
    ``checkpoint``, from the run's checkpoint roots and that checkpoint's tensors in state order."""
    from protocol.commit import TensorCommitment, TraceTree, state_commitment

    trace = TraceTree(list(checkpoint_roots))
    state = state_commitment((str(i), t) for i, t in enumerate(tensors))
    if state.root != checkpoint_roots[checkpoint]:
        raise ValueError(f"the tensors given are not checkpoint {checkpoint}'s state")
    tc = TensorCommitment(tensors[tensor])
    end = min(first + count, tc.num_chunks)
    idx = range(first, max(first, end))
    return ChunkAnswer(
        state_root=checkpoint_roots[checkpoint],
        trace_proof=list(trace.inclusion_proof(checkpoint).siblings),
        tensor_id=tc.id,
        id_proof=list(state.inclusion_proof(tensor).siblings),
        dtype=tc.dtype_code,
        shape=list(tc.shape),
        chunk_root=tc.root,
        chunks=[tc.chunk(i) for i in idx],
        chunk_proofs=[tc.chunk_proof(i) for i in idx],
    )


class Availability:
    """The AvailabilityChallenge of one deployment, used with one private key."""

    def __init__(self, chain: Chain, address: str, key: str) -> None:
        self.chain = chain
        self.key = key
        self.address = Account.from_key(key).address
        self.contract = chain.contract("AvailabilityChallenge", address)

    def _tx(self, fn: Any, value: int = 0) -> TxReceipt:
        return self.chain.transact(fn, key=self.key, value=value)

    def challenge_receipt(self, task_id: int, checkpoint: int, tensor: int, first: int, count: int,
                          layout: StateLayout) -> TxReceipt:
        """Posts the bond and demands the chunks; returns the receipt."""
        return self._tx(self.contract.functions.challenge(task_id, checkpoint, tensor, first, count,
                                                          layout.as_tuple()), value=self.bond())

    def challenge(self, task_id: int, checkpoint: int, tensor: int, first: int, count: int,
                  layout: StateLayout) -> int:
        """As :meth:`challenge_receipt`, returning the new challenge's id."""
        receipt = self.challenge_receipt(task_id, checkpoint, tensor, first, count, layout)
        (event,) = self.contract.events.AvailabilityChallenged().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["challengeId"])

    def answer(self, cid: int, a: ChunkAnswer) -> TxReceipt:
        return self._tx(self.contract.functions.answer(cid, a.as_tuple()))

    def claim_unanswered(self, cid: int) -> TxReceipt:
        return self._tx(self.contract.functions.claimUnanswered(cid))

    def withdraw(self) -> TxReceipt:
        return self._tx(self.contract.functions.withdraw())

    # ---------------------------------------------------------------- views
    def get(self, cid: int) -> Any:
        """The challenge as stored (``IAvailabilityChallenge.Challenge`` as a named tuple)."""
        return self.chain.call(self.contract.functions.getChallenge(cid))

    def status(self, cid: int) -> Status:
        return Status(self.get(cid).status)

    def events(self, name: str, from_block: int = 0, **filters: Any) -> list[dict[str, Any]]:
        """Decoded ``name`` events, filtered on indexed arguments (``challengeId``, ``taskId``, ...)."""
        ev = getattr(self.contract.events, name)()
        return [dict(e["args"]) for e in ev.get_logs(argument_filters=filters or None, from_block=from_block)]

    def challenges_of(self, task_id: int, challenger: str) -> list[int]:
        """Ids of the demands ``challenger`` made on ``task_id``."""
        return [int(e["challengeId"]) for e in
                self.events("AvailabilityChallenged", taskId=task_id, challenger=challenger)]

    def answered(self, cid: int) -> dict[str, Any] | None:
        """The ``ChunksAnswered`` event of ``cid`` (the chunks, the tensor's header, refund), or None."""
        found = self.events("ChunksAnswered", challengeId=cid)
        return found[0] if found else None

    def bond(self) -> int:
        return int(self.chain.call(self.contract.functions.bond()))

    def response_window(self) -> int:
        return int(self.chain.call(self.contract.functions.responseWindow()))

    def challenge_count(self) -> int:
        return int(self.chain.call(self.contract.functions.challengeCount()))

    def credit_of(self, who: str | None = None) -> int:
        return int(self.chain.call(self.contract.functions.creditOf(who or self.address)))

    def totals(self) -> tuple[int, int]:
        """The bonds of open demands and the credits owed."""
        return (int(self.chain.call(self.contract.functions.totalBonds())),
                int(self.chain.call(self.contract.functions.totalCredits())))

    def solvent(self) -> bool:
        """Its balance is exactly the bonds of open demands plus the credits owed."""
        return self.chain.balance(self.contract.address) == sum(self.totals())

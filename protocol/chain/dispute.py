"""Typed client of the deployed DisputeGame (contracts/src/DisputeGame.sol, docs/DISPUTE.md).

One method per contract function, signed with the caller's key, results as named tuples and reverts
as typed exceptions, like :mod:`protocol.chain.market`. Which move to make, and with which leaves and
proofs, is decided by :mod:`protocol.dispute.player`; this module only speaks the ABI.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from web3.logs import DISCARD  # receipts also carry other contracts' events: skip them, no warning
from web3.types import TxReceipt

from protocol.chain.client import Chain

NO_PIN = 2**256 - 1


class GameStatus(enum.IntEnum):
    """``IDisputeGame.GameStatus``."""

    NONE = 0
    IN_PROGRESS = 1
    SOLVER_WON = 2
    CHALLENGER_WON = 3
    CLOSED = 4


class Phase(enum.IntEnum):
    """``IDisputeGame.Phase``: what the game waits for."""

    NONE = 0
    DEFEND_TRACE = 1
    REVEAL = 2
    CHOOSE = 3
    COMMIT_STEPS = 4
    COMMIT_OPS = 5
    OPEN_OP = 6
    NAME_OUTPUT = 7
    COMMIT_SCALAR = 8
    STEP = 9
    RESOLVE = 10
    OPEN_CHUNK = 11


class Party(enum.IntEnum):
    """``IDisputeGame.Party``."""

    NONE = 0
    SOLVER = 1
    CHALLENGER = 2


SOLVER_PHASES = frozenset({Phase.DEFEND_TRACE, Phase.REVEAL, Phase.COMMIT_STEPS, Phase.COMMIT_OPS, Phase.OPEN_OP,
                           Phase.COMMIT_SCALAR, Phase.OPEN_CHUNK})
CHALLENGER_PHASES = frozenset({Phase.CHOOSE, Phase.NAME_OUTPUT, Phase.STEP})


def turn(phase: Phase) -> Party:
    """Whose clock runs in ``phase`` (mirrors ``DisputeGame._turn``)."""
    if phase in CHALLENGER_PHASES:
        return Party.CHALLENGER
    if phase in SOLVER_PHASES:
        return Party.SOLVER
    return Party.NONE


@dataclass(frozen=True)
class OpsCommitment:
    """``IDisputeGame.OpsCommitment``: level 3's root and the links of its ends to S_t and S_t+1, with the
    opening of the task's op graph commitment (descriptors' root and step layout, ``protocol.dispute.layout``)."""

    root: bytes
    size: int
    graph_root: bytes
    inputs_root: bytes
    state_size: int
    state_border: list[bytes]
    input_ids: list[bytes]
    inputs_rows: int
    inputs_proof: list[bytes]
    first_proof: list[bytes]
    last_log_root: bytes
    last_log_size: int
    last_proof: list[bytes]
    designated: list[int]
    designated_ids: list[bytes]
    designated_proofs: list[list[bytes]]

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.root, self.size, self.graph_root, self.inputs_root, self.state_size, self.state_border,
                self.input_ids, self.inputs_rows, self.inputs_proof, self.first_proof, self.last_log_root,
                self.last_log_size, self.last_proof, self.designated, self.designated_ids, self.designated_proofs)


@dataclass(frozen=True)
class ChunkOpening:
    """``IDisputeGame.ChunkOpening``: a chunk of the disputed output, opened against the disputed log."""

    tensor_id: bytes
    id_proof: list[bytes]
    dtype: int
    shape: list[int]
    chunk_root: bytes
    chunk: bytes
    chunk_proof: list[bytes]

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.tensor_id, self.id_proof, self.dtype, self.shape, self.chunk_root, self.chunk, self.chunk_proof)


@dataclass(frozen=True)
class HeaderOpening:
    """``IDisputeGame.HeaderOpening``: the disputed op's descriptor, proven against the graph root, and
    the solver's output header (dtype, shape, chunk root), proven against the disputed log."""

    descriptor: bytes
    graph_size: int
    graph_proof: list[bytes]
    tensor_id: bytes
    id_proof: list[bytes]
    dtype: int
    shape: list[int]
    chunk_root: bytes

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.descriptor, self.graph_size, self.graph_proof, self.tensor_id, self.id_proof, self.dtype,
                self.shape, self.chunk_root)


@dataclass(frozen=True)
class ScalarCommitment:
    """``IDisputeGame.ScalarCommitment``: level 4's root and its links to the op log and the element."""

    root: bytes
    first_proof: list[bytes]
    last_leaf: bytes
    last_proof: list[bytes]
    output_tensor_id: bytes
    output_proof: list[bytes]
    output_opening: bytes

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.root, self.first_proof, self.last_leaf, self.last_proof, self.output_tensor_id,
                self.output_proof, self.output_opening)


class DisputeGame:
    """The DisputeGame of one deployment, used with one private key."""

    def __init__(self, chain: Chain, address: str, key: str) -> None:
        self.chain = chain
        self.key = key
        self.address = Account.from_key(key).address
        self.game = chain.contract("DisputeGame", address)

    def with_key(self, key: str) -> DisputeGame:
        return DisputeGame(self.chain, self.game.address, key)

    def _tx(self, fn: Any, value: int = 0) -> TxReceipt:
        return self.chain.transact(fn, key=self.key, value=value)

    # ---------------------------------------------------------------- opening
    def challenge(self, task_id: int, pin: int = NO_PIN) -> int:
        """Posts the bond and opens a game on ``task_id``; returns the game id."""
        (event,) = self.game.events.GameCreated().process_receipt(
            self.challenge_receipt(task_id, pin), errors=DISCARD)
        return int(event["args"]["gameId"])

    def challenge_receipt(self, task_id: int, pin: int = NO_PIN) -> TxReceipt:
        """As :meth:`challenge`, returning the receipt (for ``send_once``, which logs the transaction)."""
        return self._tx(self.game.functions.challenge(task_id, pin), value=self.bond())

    # ---------------------------------------------------------------- solver
    def defend_trace(self, gid: int, first_proof: Sequence[bytes], last_proof: Sequence[bytes]) -> TxReceipt:
        return self._tx(self.game.functions.defendTrace(gid, list(first_proof), list(last_proof)))

    def reveal(self, gid: int, leaves: Sequence[bytes], proofs: Sequence[Sequence[bytes]]) -> TxReceipt:
        return self._tx(self.game.functions.reveal(gid, list(leaves), [list(p) for p in proofs]))

    def commit_steps(self, gid: int, root: bytes, first_proof: Sequence[bytes],
                     last_proof: Sequence[bytes]) -> TxReceipt:
        return self._tx(self.game.functions.commitSteps(gid, root, list(first_proof), list(last_proof)))

    def commit_ops(self, gid: int, c: OpsCommitment) -> TxReceipt:
        return self._tx(self.game.functions.commitOps(gid, c.as_tuple()))

    def open_op(self, gid: int, pre_root: bytes, pre_size: int, post_root: bytes, post_size: int,
                consistency: Sequence[bytes]) -> TxReceipt:
        return self._tx(self.game.functions.openOp(gid, pre_root, pre_size, post_root, post_size, list(consistency)))

    def commit_scalar(self, gid: int, c: ScalarCommitment) -> TxReceipt:
        return self._tx(self.game.functions.commitScalar(gid, c.as_tuple()))

    def open_chunk(self, gid: int, o: ChunkOpening) -> TxReceipt:
        return self._tx(self.game.functions.openChunk(gid, o.as_tuple()))

    def reject_output(self, gid: int, output_tensor_id: bytes, output_proof: Sequence[bytes], dtype: int,
                      shape: Sequence[int], chunk_root: bytes) -> TxReceipt:
        return self._tx(self.game.functions.rejectOutput(gid, output_tensor_id, list(output_proof), dtype,
                                                         list(shape), chunk_root))

    # ---------------------------------------------------------------- challenger
    def choose(self, gid: int, index: int) -> TxReceipt:
        return self._tx(self.game.functions.choose(gid, index))

    def pinpoint(self, gid: int, index: int, position: int) -> TxReceipt:
        return self._tx(self.game.functions.pinpoint(gid, index, position))

    def name_output(self, gid: int, entry: int, flat_index: int) -> TxReceipt:
        return self._tx(self.game.functions.nameOutput(gid, entry, flat_index))

    def request_chunk(self, gid: int, chunk_index: int) -> TxReceipt:
        return self._tx(self.game.functions.requestChunk(gid, chunk_index))

    def reject_header(self, gid: int, h: HeaderOpening) -> TxReceipt:
        return self._tx(self.game.functions.rejectHeader(gid, h.as_tuple()))

    def step(self, gid: int, proof: bytes) -> TxReceipt:
        return self._tx(self.game.functions.step(gid, proof))

    # ---------------------------------------------------------------- endings
    def claim_timeout(self, gid: int) -> TxReceipt:
        return self._tx(self.game.functions.claimTimeout(gid))

    def resolve(self, gid: int) -> TxReceipt:
        return self._tx(self.game.functions.resolve(gid))

    def close_after_failure(self, gid: int) -> TxReceipt:
        return self._tx(self.game.functions.closeAfterFailure(gid))

    def withdraw(self) -> TxReceipt:
        return self._tx(self.game.functions.withdraw())

    # ---------------------------------------------------------------- views
    def get(self, gid: int) -> Any:
        """The game as stored (``IDisputeGame.Game`` as a named tuple)."""
        return self.chain.call(self.game.functions.getGame(gid))

    def phase(self, gid: int) -> Phase:
        return Phase(self.get(gid).phase)

    def status(self, gid: int) -> GameStatus:
        return GameStatus(self.get(gid).status)

    def pending_positions(self, gid: int) -> list[int]:
        return [int(p) for p in self.chain.call(self.game.functions.pendingPositions(gid))]

    def clock_of(self, gid: int) -> tuple[Party, int]:
        party, remaining = self.chain.call(self.game.functions.clockOf(gid))
        return Party(party), int(remaining)

    def revealed(self, gid: int) -> tuple[list[int], list[bytes]]:
        """Positions and leaves of the last reveal of game ``gid`` (its last ``LeavesRevealed`` event).

        Storage keeps them in slots the ABI does not expose; the event is the public record.
        """
        logs = self.game.events.LeavesRevealed().get_logs(argument_filters={"gameId": gid}, from_block=0)
        if not logs:
            return [], []
        args = logs[-1]["args"]
        return [int(p) for p in args["positions"]], [bytes(x) for x in args["leaves"]]

    def events(self, gid: int, name: str, from_block: int = 0) -> list[dict[str, Any]]:
        """Decoded ``name`` events of game ``gid`` (every game event indexes ``gameId``)."""
        ev = getattr(self.game.events, name)()
        return [dict(e["args"]) for e in ev.get_logs(argument_filters={"gameId": gid}, from_block=from_block)]

    def verifier_address(self) -> str:
        return str(self.chain.call(self.game.functions.verifier()))

    def games_of(self, task_id: int, challenger: str) -> list[int]:
        """Ids of the games ``challenger`` opened on ``task_id`` (from ``GameCreated``; both indexed)."""
        logs = self.game.events.GameCreated().get_logs(
            argument_filters={"taskId": task_id, "challenger": challenger}, from_block=0)
        return [int(e["args"]["gameId"]) for e in logs]

    def bond(self) -> int:
        return int(self.chain.call(self.game.functions.bond()))

    def degree(self) -> int:
        return int(self.chain.call(self.game.functions.degree()))

    def clock(self) -> int:
        return int(self.chain.call(self.game.functions.clock()))

    def game_count(self) -> int:
        return int(self.chain.call(self.game.functions.gameCount()))

    def credit_of(self, who: str | None = None) -> int:
        return int(self.chain.call(self.game.functions.creditOf(who or self.address)))

    def totals(self) -> tuple[int, int]:
        bonds, credits = self.chain.call(self.game.functions.totals())
        return int(bonds), int(credits)

    def solvent(self) -> bool:
        """The game's invariant: its balance is exactly the bonds in play plus the credits owed."""
        bonds, credits = self.totals()
        return self.chain.balance(self.game.address) == bonds + credits

"""The daemons' side of availability challenges (contracts/src/AvailabilityChallenge.sol).

A verifier that cannot fetch a result's artifacts, and finds by replaying the whole task that the
result is right, has nothing a dispute game could prove: what it lacks is the data. It demands it on
chain instead (:meth:`AvailabilityDesk.demand`): a range of chunks of one tensor of one committed
checkpoint, chosen with its secret so the solver cannot tell in advance which part it must keep. The
solver answers from its own store with the chunks and their proofs up to the trace root (paid its
gas from the bond); a demand left unanswered past its response window is claimed by the
challenger, and the market slashes the solver.

Both daemons watch ``AvailabilityChallenged`` events through their event watcher and record each
demand they are a party to (kind ``avail``); each tick advances every open one from the chain's
state, through ``send_once`` keys, so a daemon killed at any point neither loses a demand nor sends
an answer or a claim twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak

from protocol.agents.common import logfmt, send_once
from protocol.agents.db import AgentDB
from protocol.chain.availability import MAX_CHUNKS, Availability, ChunkAnswer, StateLayout, Status
from protocol.chain.client import Chain
from protocol.commit.tensor import num_chunks


@dataclass(frozen=True)
class TensorSlot:
    """One tensor of a task's training state: its name, dtype and shape, and whether the model's
    parameter (the rest are optimizer state and the step counter)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    param: bool

    @property
    def chunks(self) -> int:
        return num_chunks(self.dtype, self.shape)


def state_template(spec: Any) -> list[TensorSlot]:
    """The tensors of every state of ``spec`` in state order (every checkpoint has S_0's)."""
    import torch

    from protocol.commit.tensor import tensor_bytes
    from protocol.models import build_model
    from protocol.spec import open_dataset
    from protocol.train import initial_state

    model = build_model(spec, open_dataset(spec))
    params = {name for name, _ in model.param_shapes()}
    return [TensorSlot(name, *tensor_bytes(value)[1:], param=name in params)
            for name, value in initial_state(model, torch.device("cpu")).items()]


def choose_chunks(secret: bytes, block_hash: bytes, shapes: list[tuple[str, tuple[int, ...]]]) -> tuple[int, int]:
    """(tensor, first chunk) of a demand: a chunk drawn uniformly from every chunk of the state by
    ``keccak(secret || block_hash || "availability")``, so larger tensors are asked for more often.

    ``shapes`` lists the state's tensors as (dtype name, shape), in state order.
    """
    counts = [num_chunks(dtype, shape) for dtype, shape in shapes]
    total = sum(counts)
    if total == 0:
        return 0, 0
    pick = int.from_bytes(keccak(secret + block_hash + b"availability"), "big") % total
    for j, n in enumerate(counts):
        if pick < n:
            return j, pick
        pick -= n
    raise AssertionError("unreachable: pick < total")


class AvailabilityDesk:
    """One daemon's availability demands: discovery from events, answers or claims per tick."""

    def __init__(self, chain: Chain, address: str, key: str, db: AgentDB, log: logging.Logger) -> None:
        self.chain = chain
        self.av = Availability(chain, address, key)
        self.me = self.av.address
        self.db = db
        self.log = log

    @property
    def contract(self) -> Any:
        return self.av.contract

    def on_event(self, name: str, args: dict[str, Any]) -> None:
        """Records a demand this daemon is a party to (idempotent)."""
        if name != "AvailabilityChallenged":
            return
        cid = int(args["challengeId"])
        role = "solver" if args["solver"] == self.me else "challenger" if args["challenger"] == self.me else None
        if role is None or self.db.get("avail", cid) is not None:
            return
        doc = {"task": int(args["taskId"]), "role": role, "state": "open", "checkpoint": int(args["checkpoint"]),
               "tensor": int(args["tensor"]), "first": int(args["firstChunk"]), "count": int(args["count"]),
               "deadline": int(args["deadline"])}
        self.db.put("avail", cid, doc)
        self.log.warning(logfmt(event="availability_demand", challenge=cid, task=doc["task"], role=role,
                                checkpoint=doc["checkpoint"], tensor=doc["tensor"], first=doc["first"],
                                count=doc["count"], deadline=doc["deadline"]))

    def open(self) -> list[tuple[int, dict[str, Any]]]:
        return [(int(c), rec) for c, rec in self.db.all("avail") if rec.get("state") == "open"]

    def finished(self) -> int:
        return sum(1 for _, rec in self.db.all("avail") if rec.get("state") == "done")

    def demand(self, task_id: int, checkpoint: int, tensor: int, first: int, layout: StateLayout) -> None:
        """Posts the bond and demands chunks [first, first + MAX_CHUNKS) of tensor ``tensor`` of checkpoint
        ``checkpoint`` of ``task_id``'s result (one demand per task: a restart finds it on chain)."""
        send_once(self.db, f"availability:{task_id}", lambda: bool(self.av.challenges_of(task_id, self.me)),
                  lambda: self.av.challenge_receipt(task_id, checkpoint, tensor, first, MAX_CHUNKS, layout),
                  self.log, task=task_id, checkpoint=checkpoint, tensor=tensor, first=first)
        for cid in self.av.challenges_of(task_id, self.me):
            c = self.av.get(cid)
            self.on_event("AvailabilityChallenged", {
                "challengeId": cid, "taskId": task_id, "solver": c.solver, "challenger": c.challenger,
                "checkpoint": c.checkpoint, "tensor": c.tensor, "firstChunk": c.firstChunk, "count": c.count,
                "deadline": c.deadline})

    def tick(self, answer: Callable[[int, dict[str, Any]], ChunkAnswer | None] | None = None) -> None:
        """Advances every open demand. ``answer(cid, rec)`` builds a solver's answer (None: none to give)."""
        for cid, rec in self.open():
            self._advance(cid, rec, answer)
        credit = self.av.credit_of()
        if credit > 0 or self.db.action(f"availability:withdraw:{self.finished()}") is not None:
            # One withdrawal per finished demand at most (the key counts them); pending ones resolve.
            send_once(self.db, f"availability:withdraw:{self.finished()}", lambda: self.av.credit_of() == 0,
                      self.av.withdraw, self.log, amount=credit)

    def _advance(self, cid: int, rec: dict[str, Any],
                 answer: Callable[[int, dict[str, Any]], ChunkAnswer | None] | None) -> None:
        c = self.av.get(cid)
        status = Status(c.status)
        if status == Status.OPEN:
            now = self.chain.now()
            if rec["role"] == "solver" and answer is not None and now < int(c.deadline):
                a = answer(cid, rec)
                if a is not None:
                    send_once(self.db, f"availability:{cid}:answer", lambda: self.av.status(cid) != Status.OPEN,
                              lambda: self.av.answer(cid, a), self.log, challenge=cid, chunks=len(a.chunks))
            elif rec["role"] == "challenger" and now >= int(c.deadline):
                send_once(self.db, f"availability:{cid}:claim", lambda: self.av.status(cid) != Status.OPEN,
                          lambda: self.av.claim_unanswered(cid), self.log, challenge=cid, task=rec["task"])
            return
        ans = self.av.answered(cid) if status == Status.ANSWERED else None
        self.db.update("avail", cid, state="done", status=status.name)
        if ans is not None:
            self.log.warning(logfmt(event="availability_answered", challenge=cid, task=rec["task"], role=rec["role"],
                                    chunks=len(ans["chunks"]), refund=ans["refund"], returned=ans["returned"]))
        else:
            self.log.warning(logfmt(event="availability_unanswered", challenge=cid, task=rec["task"],
                                    role=rec["role"]))

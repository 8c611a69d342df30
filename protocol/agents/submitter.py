"""The submitter client: post a task from a spec, follow it, and verify what comes back.

Posting computes the two things the chain must fix about the spec: its hash and the root of the
initial state S_0 its seed gives (where a dispute's first level starts). Following prints each
status change. Verifying fetches the manifest named by the result's artifact URI, checks that it
commits to the on-chain trace root and final state root, fetches the final checkpoint (every byte
checked against its digest) and recomputes its state root: only a model that matches the chain
is handed back.

A solver may deliver a right result and serve nothing. While the challenge window is open the
submitter can then demand its model on chain (:func:`demand_model`: every chunk of the final state's
parameter tensors, in ranges of 32, through the AvailabilityChallenge): the solver answers each demand
with the chunks and their proofs, or is slashed and the payment refunded. :func:`model_from_chain`
reassembles the parameters from the answers and checks each against the tensor id the contract proved
to be in the committed final state.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from protocol.agents.availability import TensorSlot, state_template
from protocol.agents.common import logfmt
from protocol.agents.http_store import open_any
from protocol.chain.availability import MAX_CHUNKS, Availability, Status
from protocol.chain.errors import ContractRevert
from protocol.chain.market import Market, TaskParams, TaskStatus
from protocol.errors import VerigradError


class VerificationError(VerigradError):
    """The artifacts of a result do not match what the solver committed on chain."""


@dataclass(frozen=True)
class Verified:
    trace_root: bytes
    final_state_root: bytes
    tensors: dict[str, Any]
    manifest: dict[str, Any]


def post(m: Market, spec_ref: str, payment: int, required_stake: int, bid_bond: int, windows: dict[str, int],
         steps: int | None = None) -> int:
    from protocol.agents.solver import initial_root, resolve_spec
    from protocol.dispute.layout import task_graph_root
    from protocol.spec import spec_hash

    uri = spec_ref if ":" in spec_ref and not spec_ref.startswith("/") else f"builtin:{spec_ref}"
    spec = resolve_spec(uri)
    if steps is not None and steps != spec.steps:
        raise VerigradError(f"the spec fixes {spec.steps} steps; post a spec file with steps = {steps} instead")
    params = TaskParams(
        spec_hash=bytes.fromhex(spec_hash(spec).removeprefix("0x")),
        initial_state_root=initial_root(spec),
        op_graph_root=task_graph_root(spec),
        spec_uri=uri,
        required_stake=required_stake,
        bid_bond=bid_bond,
        steps=spec.steps,
        checkpoint_interval=spec.checkpoint_interval,
        **windows,
    )
    return m.post_task(params, payment)


def follow(m: Market, task_id: int, log: logging.Logger, timeout: float = 3600.0, poll: float = 0.5,
           on_result: Any = None, on_tick: Any = None) -> TaskStatus:
    """Print every status change until the task settles; returns the final status. ``on_result()`` is
    called once when the result is on chain (its challenge window open), ``on_tick()`` every poll."""
    last = None
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = m.status(task_id)
        if status != last:
            t = m.task(task_id)
            log.info(logfmt(event="status", task=task_id, status=status.name, solver=t.solver,
                            open_disputes=t.openDisputes))
            last = status
            if status == TaskStatus.RESULT_SUBMITTED and on_result is not None:
                on_result()
        if status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED):
            return status
        if on_tick is not None:
            on_tick()
        time.sleep(poll)
    raise VerigradError(f"task {task_id} did not settle within {timeout:.0f} s (last status {last})")


def verify_result(m: Market, task_id: int) -> Verified:
    """Fetch the result's artifacts and check them against the chain; raise VerificationError if off."""
    from protocol.commit import state_root

    t = m.task(task_id)
    if not t.artifactURI:
        raise VerificationError(f"task {task_id} has no result yet")
    url, _, manifest_digest = t.artifactURI.partition("#")
    if not manifest_digest:
        raise VerificationError(f"artifact URI {t.artifactURI!r} names no manifest (expected URL#digest)")
    store = open_any(url)
    manifest = store.get_json(manifest_digest)  # type: ignore[attr-defined]
    if manifest["trace_root"] != "0x" + bytes(t.traceRoot).hex():
        raise VerificationError(f"manifest trace root {manifest['trace_root']} is not the committed one")
    if manifest["final_state_root"] != "0x" + bytes(t.finalStateRoot).hex():
        raise VerificationError("manifest final state root is not the committed one")
    last = manifest["checkpoints"][-1]
    tensors = store.get_tensors(last["digest"], as_torch=True)  # type: ignore[attr-defined]
    root = state_root(list(tensors.items()))
    if root != bytes(t.finalStateRoot):
        raise VerificationError(f"final checkpoint hashes to 0x{root.hex()}, the chain says "
                                f"0x{bytes(t.finalStateRoot).hex()}")
    return Verified(bytes(t.traceRoot), bytes(t.finalStateRoot), tensors, manifest)


def _final_state_template(m: Market, task_id: int) -> tuple[Any, list[TensorSlot]]:
    """The task's spec and the tensors of its states (the final one has S_0's, in order)."""
    from protocol.agents.solver import task_spec

    spec = task_spec(m.task(task_id))
    return spec, state_template(spec)


def demand_model(m: Market, avail: Availability, task_id: int, log: logging.Logger) -> list[int]:
    """Demand every chunk of the final state's parameter tensors on chain (ranges already demanded by
    this account are not demanded again); returns the ids of the demands on the task."""
    from protocol.chain.availability import state_layout

    t = m.task(task_id)
    spec, slots = _final_state_template(m, task_id)
    checkpoint = int(t.steps) // int(t.checkpointInterval)
    mine = avail.challenges_of(task_id, avail.address)
    have = {(int(c.checkpoint), int(c.tensor), int(c.firstChunk)) for c in map(avail.get, mine)}
    layout = state_layout(spec)
    for j, slot in enumerate(slots):
        if not slot.param:
            continue
        for first in range(0, slot.chunks, MAX_CHUNKS):
            if (checkpoint, j, first) in have:
                continue
            cid = avail.challenge(task_id, checkpoint, j, first, MAX_CHUNKS, layout)
            log.info(logfmt(event="demanded", task=task_id, demand=cid, tensor=slot.name, first=first))
            mine.append(cid)
    return mine


def settle_demands(m: Market, avail: Availability, task_id: int, log: logging.Logger) -> bool:
    """Claims this account's demands on the task left unanswered past their deadline (the solver is
    slashed by the first); True once none of them is open."""
    now = m.chain.now()
    open_ = False
    for cid in avail.challenges_of(task_id, avail.address):
        c = avail.get(cid)
        if Status(c.status) != Status.OPEN:
            continue
        if now < int(c.deadline):
            open_ = True
            continue
        try:
            avail.claim_unanswered(cid)
        except ContractRevert as exc:  # claimed by someone else meanwhile: read again next time
            log.info(logfmt(event="claim_skipped", task=task_id, demand=cid, reason=str(exc)))
            open_ = True
            continue
        log.warning(logfmt(event="demand_unanswered", task=task_id, demand=cid, action="claimed"))
    return not open_


def model_from_chain(m: Market, avail: Availability, task_id: int) -> dict[str, Any]:
    """The final model's parameters, from the answers to demands on the task (anyone's): each tensor
    rebuilt from its chunks and checked against the id the contract proved in the final state."""
    import numpy as np
    import torch

    from protocol.commit.tensor import DTYPES, dtype_from_code, tensor_id

    t = m.task(task_id)
    _, slots = _final_state_template(m, task_id)
    checkpoint = int(t.steps) // int(t.checkpointInterval)
    chunks: dict[int, dict[int, bytes]] = {}
    headers: dict[int, tuple[bytes, int, tuple[int, ...]]] = {}
    for ev in avail.events("AvailabilityChallenged", taskId=task_id):
        cid = int(ev["challengeId"])
        if int(ev["checkpoint"]) != checkpoint or avail.status(cid) != Status.ANSWERED:
            continue
        ans = avail.answered(cid)
        assert ans is not None
        j = int(ev["tensor"])
        headers[j] = (bytes(ans["tensorId"]), int(ans["dtype"]), tuple(int(d) for d in ans["shape"]))
        for i, chunk in enumerate(ans["chunks"]):
            chunks.setdefault(j, {})[int(ans["firstChunk"]) + i] = bytes(chunk)
    out: dict[str, Any] = {}
    for j, slot in enumerate(slots):
        if not slot.param:
            continue
        name, dtype, shape, n = slot.name, slot.dtype, slot.shape, slot.chunks
        missing = [i for i in range(n) if i not in chunks.get(j, {})]
        if missing:
            raise VerificationError(f"tensor {name} (position {j}): chunks {missing[0]}..{missing[-1]} of {n} "
                                    "are not on chain; demand them with `verigrad submit --demand-data` "
                                    "while the challenge window is open")
        tid_, code, got_shape = headers[j]
        if dtype_from_code(code) != dtype or got_shape != shape:
            raise VerificationError(f"tensor {name}: the chain has {dtype_from_code(code)}{list(got_shape)}, "
                                    f"the spec gives {dtype}{list(shape)}")
        data = b"".join(chunks[j][i] for i in range(n))
        bits = np.frombuffer(data, dtype=DTYPES[dtype][2])  # big-endian element bits (docs/COMMITMENTS.md)
        host = bits.astype(bits.dtype.newbyteorder("=")).view(np.dtype(dtype)).reshape(shape)
        tensor = torch.from_numpy(host.copy())
        if tensor_id(tensor) != tid_:
            raise VerificationError(f"tensor {name}: the chunks on chain do not hash to its proven id")
        out[name] = tensor
    return out

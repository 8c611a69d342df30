"""The submitter client: post a task from a spec, follow it, and verify what comes back.

Posting computes the two things the chain must fix about the spec: its hash and the root of the
initial state S_0 its seed gives (where a dispute's first level starts). Following prints each
status change. Verifying fetches the manifest named by the result's artifact URI, checks that it
commits to the on-chain trace root and final state root, fetches the final checkpoint (every byte
checked against its digest) and recomputes its state root: only a model that matches the chain
is handed back.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from protocol.agents.common import logfmt
from protocol.agents.http_store import open_any
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


def follow(m: Market, task_id: int, log: logging.Logger, timeout: float = 3600.0, poll: float = 0.5) -> TaskStatus:
    """Print every status change until the task settles; returns the final status."""
    last = None
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = m.status(task_id)
        if status != last:
            t = m.task(task_id)
            log.info(logfmt(event="status", task=task_id, status=status.name, solver=t.solver,
                            open_disputes=t.openDisputes))
            last = status
        if status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED):
            return status
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

"""What every daemon shares: structured logs, the run loop with clean shutdown, idempotent sends."""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from protocol.agents.db import AgentDB
from protocol.chain.errors import ContractRevert, RpcUnavailable

ETH = 10**18


def logfmt(**fields: Any) -> str:
    """``key=value`` pairs, quoted when needed: one event per line, easy to grep and to parse."""
    parts = []
    for k, v in fields.items():
        s = f"{v:.6g}" if isinstance(v, float) else str(v)
        if not s or any(c in s for c in ' ="'):
            s = '"' + s.replace('"', '\\"') + '"'
        parts.append(f"{k}={s}")
    return " ".join(parts)


def make_logger(name: str, verbose: bool = False) -> logging.Logger:
    logger = logging.getLogger(f"verigrad.{name}")
    if not logger.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(asctime)s " + name + " %(levelname)s %(message)s", "%H:%M:%S"))
        logger.addHandler(h)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    return logger


class Stopper:
    """Set by SIGTERM / SIGINT so the loop finishes its current tick and exits cleanly."""

    def __init__(self) -> None:
        self.stopped = False

    def install(self) -> Stopper:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopped = True

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stopped and time.monotonic() < end:
            time.sleep(min(0.1, end - time.monotonic()))


def run_loop(tick: Callable[[], None], stopper: Stopper, interval: float, log: logging.Logger,
             max_backoff: float = 30.0) -> None:
    """Call ``tick`` every ``interval`` seconds until stopped; back off exponentially while the RPC is down."""
    backoff = interval
    while not stopper.stopped:
        try:
            tick()
            backoff = interval
        except RpcUnavailable as exc:
            log.warning(logfmt(event="rpc_unavailable", error=str(exc), retry_in=backoff))
            stopper.sleep(backoff)
            backoff = min(max_backoff, backoff * 2)
            continue
        stopper.sleep(interval)


def guarded(log: logging.Logger, task: int, work: Callable[[], Any]) -> None:
    """One task's trouble (a revert, a bad artifact, a bug) is logged and retried next tick; it never
    stops the daemon's other tasks. An unreachable RPC still goes to the run loop's backoff."""
    try:
        work()
    except RpcUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 (logged with its type; the loop goes on)
        log.exception(logfmt(event="error", task=task, error=type(exc).__name__, detail=str(exc)))


def send_once(db: AgentDB, key: str, already_done: Callable[[], bool], send: Callable[[], Any],
              log: logging.Logger, **fields: Any) -> bool:
    """Send an action at most once, even across crashes.

    The key is recorded before sending; if the daemon died after that, ``already_done()`` (a read of
    chain state) decides whether the transaction landed. A revert is logged with its typed error and
    the key marked failed, so the state machine can choose another move on its next tick.
    """
    prior = db.action(key)
    if prior is not None and prior[0] == "done":
        return False
    if already_done():
        db.finish_action(key, None)
        return False
    db.begin_action(key)
    try:
        receipt = send()
    except ContractRevert as exc:
        db.finish_action(key, None, status="failed")
        log.warning(logfmt(event="reverted", action=key, error=type(exc).__name__, detail=str(exc), **fields))
        return False
    tx = receipt["transactionHash"].hex() if receipt is not None else None
    db.finish_action(key, tx)
    log.info(logfmt(event="sent", action=key, tx=tx, **fields))
    return True

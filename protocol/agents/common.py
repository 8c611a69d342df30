"""What every daemon shares: structured logs, the run loop with clean shutdown, idempotent sends, and
the settling of actions a crash left pending."""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from web3 import Web3

from protocol.agents.db import AgentDB
from protocol.chain.client import Chain
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


class Repeats:
    """Quiets what one place logs again and again: a move the contract reverts on every tick, a task
    that fails the same way each time it is retried. The first line is logged in full; identical
    repeats from the same ``site`` are only counted, with a line every ``every`` repeats and one when
    the message changes or the trouble clears (:meth:`clear`), so a stuck daemon writes a few lines,
    not one per tick."""

    def __init__(self, every: int = 30) -> None:
        self.every = every
        self._last: dict[str, tuple[str, int]] = {}

    def log(self, log: logging.Logger, level: int, site: str, message: str, exc_info: bool = False) -> bool:
        """Logs ``message`` unless it repeats the last one from ``site``; True if it was written."""
        last = self._last.get(site)
        if last is not None and last[0] == message:
            n = last[1] + 1
            self._last[site] = (message, n)
            if n % self.every == 0:
                log.log(level, logfmt(event="repeated", site=site, times=n))
            return False
        self._ended(log, site)
        self._last[site] = (message, 1)
        log.log(level, message, exc_info=exc_info)
        return True

    def clear(self, log: logging.Logger, site: str) -> None:
        """``site`` is over its trouble: how many times the last message came, if more than once."""
        self._ended(log, site)
        self._last.pop(site, None)

    def _ended(self, log: logging.Logger, site: str) -> None:
        last = self._last.get(site)
        if last is not None and last[1] > 1:
            log.info(logfmt(event="repeats_ended", site=site, times=last[1]))


_REPEATS: dict[str, Repeats] = {}


def repeats(log: logging.Logger) -> Repeats:
    """The :class:`Repeats` of one daemon's logger."""
    return _REPEATS.setdefault(log.name, Repeats())


def guarded(log: logging.Logger, task: int, work: Callable[[], Any]) -> None:
    """One task's trouble (a revert, a bad artifact, a bug) is logged and retried next tick; it never
    stops the daemon's other tasks. An unreachable RPC still goes to the run loop's backoff. The same
    error on tick after tick is logged once, then counted (:class:`Repeats`)."""
    site = f"task:{task}"
    try:
        work()
    except RpcUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 (logged with its type; the loop goes on)
        repeats(log).log(log, logging.ERROR, site,
                         logfmt(event="error", task=task, error=type(exc).__name__, detail=str(exc)), exc_info=True)
        return
    repeats(log).clear(log, site)


def send_once(db: AgentDB, key: str, already_done: Callable[[], bool], send: Callable[[], Any],
              log: logging.Logger, **fields: Any) -> bool:
    """Send an action at most once, even across crashes.

    The key is recorded before sending; if the daemon died after that, ``already_done()`` (a read of
    chain state) decides whether the transaction landed. A revert is logged with its typed error and
    the key marked failed, so the state machine can choose another move on its next tick (the same
    revert again is only counted: :class:`Repeats`).
    """
    prior = db.action(key)
    if prior is not None and prior[0] == "done":
        return False
    if already_done():
        db.finish_action(key, None)
        repeats(log).clear(log, key)
        return False
    db.begin_action(key)
    try:
        receipt = send()
    except ContractRevert as exc:
        db.finish_action(key, None, status="failed")
        # A move the contract rejects each tick (a state it cannot commit) is logged once, then counted.
        repeats(log).log(log, logging.WARNING, key, logfmt(event="reverted", action=key, error=type(exc).__name__,
                                                           detail=str(exc), **fields))
        return False
    tx = receipt["transactionHash"].hex() if receipt is not None else None
    db.finish_action(key, tx)
    repeats(log).clear(log, key)
    log.info(logfmt(event="sent", action=key, tx=tx, **fields))
    return True


def bind_sender(db: AgentDB, chain: Chain, address: str) -> None:
    """Make ``db`` record, with every action it begins, the nonce the action's transaction will carry
    (the account's pending nonce: a daemon is the only sender for its key and sends one at a time)
    and the head block, so that :func:`resolve_pending` can settle it after a crash."""
    w3 = chain.w3
    who = Web3.to_checksum_address(address)
    db.bind_sender(lambda: chain._rpc(lambda: (int(w3.eth.get_transaction_count(who, "pending")),
                                                int(w3.eth.block_number))))


def resolve_pending(db: AgentDB, chain: Chain, address: str, log: logging.Logger, wait: float = 30.0) -> dict[str, str]:
    """Settle, from chain state, every action a crash left pending; call it before the daemon sends.

    A daemon killed between sending a transaction and recording its receipt leaves the action
    pending, and the state machine may never come back to that key (the chain made the retry
    unnecessary), so the database would say forever that it does not know. At start-up nothing else
    is in flight, so the account's nonce decides it: if the chain's nonce has passed the one recorded
    with the action, its transaction was mined, and it is found in the blocks since the action began
    (done with its hash, or failed if it reverted); if not, and nothing is waiting in the pool either,
    the transaction never went out (failed: the state machine may choose the move again). An action
    recorded without a nonce (a database from before nonces were kept) is marked failed as well;
    ``send_once`` reads the chain before it sends again, so that never sends it twice either.
    Returns key -> the status given.
    """
    w3 = chain.w3
    who = Web3.to_checksum_address(address)
    settled: dict[str, str] = {}
    pending = db.pending_actions()
    if not pending:
        return settled
    end = time.monotonic() + wait
    while True:
        mined = int(chain._rpc(lambda: w3.eth.get_transaction_count(who, "latest")))
        queued = int(chain._rpc(lambda: w3.eth.get_transaction_count(who, "pending")))
        if queued == mined or time.monotonic() >= end:
            break
        time.sleep(0.5)  # a transaction of ours is still in the pool: let it be mined first
    head = int(chain._rpc(lambda: w3.eth.block_number))
    for key, nonce, block in pending:
        tx: str | None = None
        status = "failed"
        if nonce is not None and nonce < mined:
            found = _find_tx(chain, address, nonce, block if block is not None else 0, head)
            if found is not None:
                tx, ok = found
                status = "done" if ok else "failed"
            else:
                status = "done"  # mined (the nonce moved on) but not in the blocks scanned
        db.finish_action(key, tx, status=status)
        settled[key] = status
        log.warning(logfmt(event="pending_resolved", action=key, status=status, tx=tx, nonce=nonce))
    return settled


def _find_tx(chain: Chain, address: str, nonce: int, first: int, last: int) -> tuple[str, bool] | None:
    """(hash, succeeded) of ``address``'s transaction with ``nonce`` mined in blocks [first, last]."""
    w3 = chain.w3
    want = address.lower()
    for n in range(max(0, first), last + 1):
        block = chain._rpc(lambda n=n: w3.eth.get_block(n, full_transactions=True))
        for tx in block["transactions"]:
            if str(tx["from"]).lower() == want and int(tx["nonce"]) == nonce:
                receipt = chain._rpc(lambda h=tx["hash"]: w3.eth.get_transaction_receipt(h))
                return bytes(tx["hash"]).hex(), int(receipt["status"]) == 1
    return None

"""An event watcher over a persisted block cursor with a confirmation lag.

``poll()`` returns the decoded events of the contracts it watches in the blocks after the saved
cursor, up to ``head - confirmations``, in (block, log index) order; ``commit(events)`` saves the
cursor after the caller has persisted what it derived from them, so an event is never lost and at
worst seen twice (handlers are idempotent). A chain whose head went below the cursor (a restarted
devnet, a reorg deeper than the lag) rewinds the cursor to the head and rescans.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from web3.contract import Contract

from protocol.agents.db import AgentDB
from protocol.chain.client import Chain

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    name: str
    address: str
    block: int
    log_index: int
    args: dict[str, Any]


class EventWatcher:
    def __init__(
        self,
        chain: Chain,
        contracts: list[Contract],
        db: AgentDB,
        name: str = "events",
        confirmations: int = 0,
        start_block: int = 0,
        batch: int = 2_000,
    ) -> None:
        self.chain = chain
        self.db = db
        self.name = name
        self.confirmations = confirmations
        self.start_block = start_block
        self.batch = batch
        self.by_address = {c.address: c for c in contracts}
        self._topics: dict[tuple[str, bytes], Any] = {}
        for c in contracts:
            for ev in c.events:  # type: ignore[attr-defined]
                event = ev()
                self._topics[(c.address, bytes.fromhex(str(event.topic).removeprefix("0x")))] = event
        self._pending_to: int | None = None

    def poll(self) -> list[Event]:
        head = int(self.chain._rpc(lambda: self.chain.w3.eth.block_number))
        cursor = self.db.cursor(self.name, self.start_block - 1)
        if cursor > head:
            log.warning("chain head %d is below the saved cursor %d: rescanning from the head", head, cursor)
            cursor = max(self.start_block - 1, head - self.confirmations - 1)
            self.db.set_cursor(self.name, cursor)
        to = min(head - self.confirmations, cursor + self.batch)
        if to <= cursor:
            self._pending_to = None
            return []
        logs = self.chain._rpc(
            lambda: self.chain.w3.eth.get_logs(
                {"address": list(self.by_address), "fromBlock": cursor + 1, "toBlock": to}
            )
        )
        out: list[Event] = []
        for entry in sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"])):
            if not entry["topics"]:
                continue
            event = self._topics.get((entry["address"], bytes(entry["topics"][0])))
            if event is None:
                continue
            decoded = event.process_log(entry)
            out.append(Event(decoded["event"], entry["address"], int(entry["blockNumber"]),
                             int(entry["logIndex"]), dict(decoded["args"])))
        self._pending_to = to
        return out

    def commit(self) -> None:
        """Advance the cursor past the blocks of the last ``poll`` (after handling their events)."""
        if self._pending_to is not None:
            self.db.set_cursor(self.name, self._pending_to)
            self._pending_to = None

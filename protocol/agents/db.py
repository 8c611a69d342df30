"""A daemon's persistent memory: block cursor, per-task/per-game records and sent actions, in sqlite.

Why sqlite: atomic commits survive SIGKILL at any instant, and it is in the standard library. Three
tables:

- ``cursor``: the last block whose events were fully handled, per watcher;
- ``records``: a JSON document per (kind, id) — a task the daemon bids on, a game it plays — holding
  what the chain cannot tell it again (a bid's salt, where its artifacts are);
- ``actions``: every transaction the daemon decided to send, keyed by an idempotency key such as
  ``commitBid:7``. A key is written *before* the transaction is sent and marked done after its receipt;
  on restart a pending key is resolved by looking at the chain, never by blindly re-sending: with a
  sender bound (:meth:`AgentDB.bind_sender`), a key also records the account's next nonce and the
  head block when it was begun, which is how :func:`protocol.agents.common.resolve_pending` finds
  out at start-up whether the transaction of an action left pending by a crash landed.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS cursor (name TEXT PRIMARY KEY, block INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL,
                                    PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS actions (key TEXT PRIMARY KEY, status TEXT NOT NULL, tx TEXT,
                                    created REAL NOT NULL, updated REAL NOT NULL,
                                    nonce INTEGER, block INTEGER);
"""
#: Columns added after the first release of the schema (an older database gains them on open).
ADDED_COLUMNS = {"actions": [("nonce", "INTEGER"), ("block", "INTEGER")]}


class AgentDB:
    """One daemon's sqlite file (``:memory:`` for tests)."""

    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)
        for table, columns in ADDED_COLUMNS.items():
            have = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns:
                if name not in have:
                    self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
        # () -> (next nonce of the daemon's account, head block): set by bind_sender.
        self._sender: Callable[[], tuple[int, int]] | None = None

    def bind_sender(self, where: Callable[[], tuple[int, int]]) -> None:
        """Record, with every action begun from now on, the nonce its transaction will carry and the
        head block: ``where()`` returns both (the account's pending nonce, the block number)."""
        self._sender = where

    # -------------------------------------------------------------- cursor
    def cursor(self, name: str, default: int) -> int:
        row = self.conn.execute("SELECT block FROM cursor WHERE name=?", (name,)).fetchone()
        return int(row[0]) if row else default

    def set_cursor(self, name: str, block: int) -> None:
        self.conn.execute(
            "INSERT INTO cursor(name, block) VALUES(?, ?) ON CONFLICT(name) DO UPDATE SET block=excluded.block",
            (name, block),
        )

    # -------------------------------------------------------------- records
    def get(self, kind: str, id_: int | str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT doc FROM records WHERE kind=? AND id=?", (kind, str(id_))).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, kind: str, id_: int | str, doc: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO records(kind, id, doc) VALUES(?, ?, ?) ON CONFLICT(kind, id) DO UPDATE SET doc=excluded.doc",
            (kind, str(id_), json.dumps(doc, sort_keys=True)),
        )

    def update(self, kind: str, id_: int | str, **fields: Any) -> dict[str, Any]:
        doc = self.get(kind, id_) or {}
        doc.update(fields)
        self.put(kind, id_, doc)
        return doc

    def all(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        rows = self.conn.execute("SELECT id, doc FROM records WHERE kind=? ORDER BY CAST(id AS INTEGER)", (kind,))
        return [(r[0], json.loads(r[1])) for r in rows]

    # -------------------------------------------------------------- actions
    def action(self, key: str) -> tuple[str, str | None] | None:
        row = self.conn.execute("SELECT status, tx FROM actions WHERE key=?", (key,)).fetchone()
        return (row[0], row[1]) if row else None

    def begin_action(self, key: str) -> None:
        now = time.time()
        nonce, block = self._sender() if self._sender is not None else (None, None)
        self.conn.execute(
            "INSERT INTO actions(key, status, tx, created, updated, nonce, block) "
            "VALUES(?, 'pending', NULL, ?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET status='pending', updated=excluded.updated, nonce=excluded.nonce, "
            "block=excluded.block",
            (key, now, now, nonce, block),
        )

    def pending_actions(self) -> list[tuple[str, int | None, int | None]]:
        """(key, nonce, block) of every action begun and never finished, oldest first."""
        rows = self.conn.execute("SELECT key, nonce, block FROM actions WHERE status='pending' ORDER BY created")
        return [(r[0], r[1], r[2]) for r in rows]

    def finish_action(self, key: str, tx: str | None, status: str = "done") -> None:
        self.conn.execute("UPDATE actions SET status=?, tx=?, updated=? WHERE key=?", (status, tx, time.time(), key))

    def count_done(self, prefix: str = "") -> int:
        row = self.conn.execute(
            "SELECT COUNT(*) FROM actions WHERE status='done' AND key LIKE ?", (prefix + "%",)
        ).fetchone()
        return int(row[0])

    def close(self) -> None:
        self.conn.close()

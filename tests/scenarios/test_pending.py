"""Actions a crash left pending are settled from chain state when a daemon starts.

A daemon records an action before it sends its transaction and marks it done after the receipt. A
kill in between leaves it pending; when the chain already made the move unnecessary, the state
machine never returns to that key. :func:`protocol.agents.common.resolve_pending` settles every
such action at start-up from the nonce recorded with it: the one that went out is done with its
transaction's hash, the one that reverted on chain and the one that never went out are failed.
"""

from __future__ import annotations

import logging

import pytest

from protocol.agents.common import bind_sender, resolve_pending
from protocol.agents.db import AgentDB
from protocol.chain.errors import ContractRevert
from protocol.chain.market import Market

from .conftest import Devnet

ETH = 10**18
pytestmark = pytest.mark.slow


def test_pending_actions_are_settled_from_the_chain_at_start_up(devnet: Devnet) -> None:
    path = devnet.dir / "agent.db"
    me = devnet.node.accounts[2]
    m = Market(devnet.chain, devnet.deployment, devnet.node.keys[2])
    db = AgentDB(path)
    bind_sender(db, devnet.chain, me)
    # 1. sent and mined, the daemon killed before it recorded the receipt
    db.begin_action("deposit:1")
    receipt = m.deposit(ETH)
    # 2. sent and reverted when mined (gas given: no estimate stops it before it goes out)
    db.begin_action("withdrawPayments:7")
    with pytest.raises(ContractRevert):
        devnet.chain.transact(m.market.functions.withdrawPayments(), key=m.key, gas=200_000)
    # 3. begun, killed before anything went out
    db.begin_action("commitBid:9")
    # 4. finished normally: left alone
    db.begin_action("deposit:0")
    db.finish_action("deposit:0", "0xabc")
    assert [k for k, _, _ in db.pending_actions()] == ["deposit:1", "withdrawPayments:7", "commitBid:9"]
    db.close()

    restarted = AgentDB(path)  # a new process on the same file
    settled = resolve_pending(restarted, devnet.chain, me, logging.getLogger("test"))
    assert settled == {"deposit:1": "done", "withdrawPayments:7": "failed", "commitBid:9": "failed"}
    assert restarted.action("deposit:1") == ("done", receipt["transactionHash"].hex())
    reverted = restarted.action("withdrawPayments:7")
    assert reverted is not None and reverted[0] == "failed" and reverted[1] is not None
    assert devnet.chain.w3.eth.get_transaction_receipt("0x" + reverted[1].removeprefix("0x"))["status"] == 0
    assert restarted.action("commitBid:9") == ("failed", None)
    assert restarted.action("deposit:0") == ("done", "0xabc")
    assert restarted.pending_actions() == []
    assert resolve_pending(restarted, devnet.chain, me, logging.getLogger("test")) == {}
    # Exactly two transactions went out from the account: the deposit and the reverted withdrawal.
    assert devnet.chain.w3.eth.get_transaction_count(me) == 2
    assert m.free_stake() == ETH


def test_an_older_database_gains_the_nonce_columns(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE actions (key TEXT PRIMARY KEY, status TEXT NOT NULL, tx TEXT, "
                 "created REAL NOT NULL, updated REAL NOT NULL)")
    conn.execute("INSERT INTO actions VALUES ('commitBid:1', 'pending', NULL, 0, 0)")
    conn.commit()
    conn.close()
    db = AgentDB(path)
    assert db.pending_actions() == [("commitBid:1", None, None)]

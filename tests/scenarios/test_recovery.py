"""Crash recovery: a solver daemon SIGKILLed at random moments and restarted still delivers and
never sends an action twice; a devnet node restarted mid-task is waited out and the task completes."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from protocol.agents.db import AgentDB
from protocol.agents.submitter import post
from protocol.chain.client import Chain
from protocol.chain.deploy import Params, deploy_all
from protocol.chain.devnet import Anvil
from protocol.chain.market import Market, TaskStatus

from .conftest import REPO, STAKE_WAIT, Devnet, small_spec

ETH = 10**18
WINDOWS = dict(bid_window=20, reveal_window=8, training_window=600, challenge_window=8)
pytestmark = pytest.mark.slow


def solver_args(d: Path) -> list[str]:
    return ["solver", "--store", str(d / "store"), "--db", str(d / "state.db"), "--stake", "1"]


def test_solver_sigkilled_at_random_points_delivers_once(devnet: Devnet) -> None:
    spec = small_spec(devnet.dir)
    sdir = devnet.dir / "solver"
    proc = devnet.spawn("solver-0", solver_args(sdir), key_index=2)
    sub = Market(devnet.chain, devnet.deployment, devnet.node.keys[1])
    me = devnet.node.accounts[2]
    devnet.wait_for(lambda: sub.free_stake(me) == ETH, STAKE_WAIT, "the solver's stake")
    tid = post(sub, str(spec), ETH, ETH // 2, ETH // 100, WINDOWS)
    rng = random.Random(20261122)
    bid = lambda: devnet.chain.call(sub.market.functions.getBid(tid, me)).status  # noqa: E731
    # Kill at moments that matter (each shifted by a random delay): after the sealed bid, after the
    # reveal, in the middle of training (after the first progress commitment), after the result.
    moments = [
        ("bid committed", lambda: bid() >= 1),
        ("bid revealed", lambda: bid() >= 2),
        ("training", lambda: sub.task(tid).progressCheckpoints >= 2),
        ("result submitted", lambda: sub.status(tid) == TaskStatus.RESULT_SUBMITTED),
    ]
    kills = 0
    for what, reached in moments:
        devnet.wait_for(reached, 240, what)
        time.sleep(rng.uniform(0.0, 1.5))
        if sub.status(tid) == TaskStatus.COMPLETED:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        devnet.procs.remove(proc)
        kills += 1
        proc = devnet.spawn(f"solver-{kills}", solver_args(sdir), key_index=2)
    assert kills >= 3
    devnet.wait_for(lambda: sub.status(tid) == TaskStatus.COMPLETED and sub.payments(me) == 0, 180,
                    "completion and withdrawal")
    # Every transaction the solver's key ever sent is one recorded action: nothing went out twice.
    db = AgentDB(sdir / "state.db")
    # The running daemon records the withdrawal's receipt just after it is mined: wait for that, so
    # what is still pending below is only what a killed daemon left and the next one did not settle.
    pending = lambda: db.conn.execute("SELECT key FROM actions WHERE status = 'pending'").fetchall()  # noqa: E731
    devnet.wait_for(lambda: not pending(), 30, "the daemon recording its last receipt")
    rows = db.conn.execute("SELECT key, status, tx FROM actions").fetchall()
    assert not [k for k, s, _ in rows if s == "failed" and not k.startswith("closeAuction")], rows
    # An action a killed daemon left pending (sent, receipt not recorded) was settled from the chain
    # when the next one started: it is done with its transaction's hash, or failed if none went out.
    assert not [k for k, s, _ in rows if s == "pending"], rows
    nonce = devnet.chain.w3.eth.get_transaction_count(me)
    hashes = [tx for _, s, tx in rows if s == "done" and tx]
    assert len(set(hashes)) == len(hashes)
    for h in hashes:
        r = devnet.chain.w3.eth.get_transaction_receipt("0x" + h.removeprefix("0x"))
        assert r["status"] == 1 and r["from"] == me
    failed = [k for k, s, _ in rows if s == "failed"]  # a closeAuction that lost the race may have been mined
    assert len(hashes) <= nonce <= len(hashes) + len(failed), (nonce, rows)
    m = devnet.deployment
    market = devnet.chain.contract("TaskMarket", m.task_market)
    frm = m.block
    assert len(market.events.BidCommitted().get_logs(from_block=frm)) == 1
    assert len(market.events.ResultSubmitted().get_logs(from_block=frm)) == 1
    counts = [e["args"]["numCheckpoints"] for e in market.events.ProgressCommitted().get_logs(from_block=frm)]
    assert counts == sorted(set(counts)) and counts[-1] == 5


def test_node_restarted_mid_task_daemon_recovers(tmp_path: Path) -> None:
    state = tmp_path / "anvil-state.json"
    node = Anvil(accounts=10, block_time=1, state_path=str(state)).start()
    procs: list[subprocess.Popen[str]] = []
    try:
        chain = Chain.connect(node.rpc_url)
        d = deploy_all(chain, node.keys[0], Params(unbonding_delay=3600, dispute_timeout=3600))
        d.save(tmp_path / "deployments")
        log = open(tmp_path / "solver.log", "w")  # noqa: SIM115 (closed below)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "protocol.cli", *solver_args(tmp_path / "solver"), "--deployments",
             str(tmp_path / "deployments")],
            stdout=log, stderr=subprocess.STDOUT, text=True, cwd=REPO,
            env={**__import__("os").environ, "VERIGRAD_KEY": node.keys[2], "VERIGRAD_RPC": node.rpc_url},
        ))
        sub = Market(chain, d, node.keys[1])
        end = time.monotonic() + STAKE_WAIT
        while sub.free_stake(node.accounts[2]) < ETH:
            assert time.monotonic() < end, "no stake"
            time.sleep(0.3)
        tid = post(sub, str(small_spec(tmp_path)), ETH, ETH // 2, ETH // 100, WINDOWS)
        end = time.monotonic() + 60
        while chain.call(sub.market.functions.getBid(tid, node.accounts[2])).status == 0:
            assert time.monotonic() < end, "no bid"
            time.sleep(0.3)
        node.stop()  # dumps the chain state to the file
        time.sleep(4)  # the daemon sees the RPC gone and backs off
        node = Anvil(port=node.port, accounts=10, block_time=1, state_path=str(state)).start()
        chain = Chain.connect(node.rpc_url)
        sub = Market(chain, d, node.keys[1])
        end = time.monotonic() + 240
        while sub.status(tid) != TaskStatus.COMPLETED:
            assert procs[0].poll() is None, (tmp_path / "solver.log").read_text()
            assert time.monotonic() < end, (tmp_path / "solver.log").read_text()
            time.sleep(0.5)
        assert "rpc_unavailable" in (tmp_path / "solver.log").read_text()
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        node.stop()

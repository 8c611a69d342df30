"""``verigrad demo`` end to end: three daemon processes on anvil, the outcome read back from the chain.

The demo runs on an anvil the test owns, so that the chain outlives it: every task, the game, each
party's money (to the wei, gas included) and every contract's balance are then read from the chain,
not from what the demo printed. Also: no daemon process is left behind. One run, with windows wider
than the demo's defaults so that it survives a machine busy with other tests (about 90 s).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from protocol.chain.client import Chain
from protocol.chain.deploy import Deployment
from protocol.chain.devnet import Anvil
from protocol.chain.dispute import DisputeGame, GameStatus
from protocol.chain.market import Market, TaskStatus
from protocol.cli import build_parser, main
from protocol.demo import DemoFailed, choose_fault, run_demo

ETH = 10**18
START = 10_000 * ETH  # every development account's balance at genesis


def gas_paid(chain: Chain, who: str) -> int:
    """Wei ``who`` paid for gas since genesis, from the receipts of every transaction it sent."""
    total = 0
    for n in range(chain.w3.eth.block_number + 1):
        for r in chain.w3.eth.get_block_receipts(n):
            if r["from"] == who:
                total += int(r["gasUsed"]) * int(r["effectiveGasPrice"])
    return total


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


@pytest.mark.slow
@pytest.mark.anvil
def test_demo_pays_the_honest_task_and_slashes_the_cheater(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    args = build_parser().parse_args(["demo", "--out", str(out), "--bid-window", "20", "--reveal-window", "8",
                                      "--challenge-window", "30", "--timeout", "420"])
    with Anvil(accounts=6, block_time=0.25) as node:
        rc = run_demo(args, node)
        printed = capsys.readouterr().out
        assert rc == 0, printed[-3000:]
        assert not processes_mentioning(str(out)), "a daemon outlived the demo"
        for name in ("alice", "bob", "victor"):
            assert "event=stopped" in (out / f"{name}.log").read_text()  # stopped cleanly, by SIGTERM

        chain = Chain.connect(node.rpc_url)
        d = Deployment.load(chain.chain_id, out / "deployments")
        m = Market(chain, d, node.keys[1])
        game = DisputeGame(chain, d.dispute_game, node.keys[1])
        sink, submitter, alice, bob, victor = node.accounts[:5]

        t1, t2 = m.task(1), m.task(2)
        assert m.task_count() == 2
        assert (TaskStatus(t1.status), t1.solver) == (TaskStatus.COMPLETED, alice)
        assert (TaskStatus(t2.status), t2.solver) == (TaskStatus.FAILED, bob)
        assert t1.agreedPrice == 2 * ETH * 6 // 10  # second price: bob's bid on task 1 (60% of 2 ETH)

        # The game: opened by the verifier daemon on task 2, played down all four levels to the
        # one-step check of the element bob corrupted.
        assert game.game_count() == 1
        g = game.get(1)
        assert (g.challenger, g.solver, int(g.taskId)) == (victor, bob, 2)
        assert GameStatus(g.status) == GameStatus.CHALLENGER_WON
        assert [e["level"] for e in game.events(1, "LevelCommitted")] == [1, 2, 3, 4]
        assert not game.events(1, "TimedOut")
        (checked,) = game.events(1, "OneStepChecked")
        assert checked["computed"] != checked["claimed"]
        from protocol.spec import load_spec

        step, op, element = (int(x) for x in choose_fault(load_spec("digits-mlp"))[0].split(":"))
        assert (int(g.trainingStep), int(g.op), int(g.flatIndex)) == (step, op + 1, element)

        # Money, to the wei: alice paid bob's price, bob's 2 ETH stake split between victor and the
        # sink, the submitter refunded task 2's payment, every bid bond and the game bond returned.
        paid = {a: gas_paid(chain, a) for a in (sink, submitter, alice, bob, victor)}
        assert chain.balance(submitter) == START - t1.agreedPrice - paid[submitter]
        assert chain.balance(alice) + m.free_stake(alice) == START + t1.agreedPrice - paid[alice]
        assert chain.balance(bob) == START - 2 * ETH - paid[bob]
        assert chain.balance(victor) == START + ETH - paid[victor]
        assert chain.balance(sink) == START + ETH - paid[sink]  # the deployer is the sink
        # Nothing stuck: the contracts hold alice's stake and nothing else.
        assert m.free_stake(alice) == ETH and m.locked_stake(alice) == 0
        assert m.free_stake(bob) == m.locked_stake(bob) == 0
        assert chain.balance(d.stake_manager) == ETH
        assert chain.balance(d.task_market) == 0
        assert chain.balance(d.dispute_game) == 0

        # `verigrad status` on what the demo left: its game row.
        assert main(["status", "--rpc", node.rpc_url, "--deployments", str(out / "deployments")]) == 0
        status = capsys.readouterr().out
        row = next(line for line in status.splitlines() if line.split()[:2] == ["1", "2"])
        assert "4 scalar" in row and "CHALLENGER_WON" in row and "0.100000" in row


def test_a_daemon_that_dies_stops_the_demo_with_its_log(tmp_path: Path) -> None:
    """What the demo does when an actor crashes: a clear error with the end of its log."""
    from protocol.demo import Cast

    cast = Cast(tmp_path, "http://127.0.0.1:9", tmp_path / "deployments")
    cast.spawn("alice", ["solver", "--stake", "plenty"], "0x" + "11" * 32)
    try:
        cast.daemons[0].proc.wait(timeout=60)
        with pytest.raises(DemoFailed) as err:
            cast.check()
    finally:
        cast.stop()
    msg = str(err.value)
    assert "the alice daemon exited with code 2" in msg and "is not an amount in ETH" in msg

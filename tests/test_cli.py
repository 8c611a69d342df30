"""The `verigrad` command: help texts, and clear errors (exit code 2, no traceback) for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.chain.devnet import Anvil
from protocol.cli import main


def test_help_lists_commands_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("devnet", "deploy", "status", "demo"):
        assert cmd in out
    assert "examples:" in out


def test_deploy_without_key_says_which_variable(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("VERIGRAD_KEY", raising=False)
    assert main(["deploy", "--rpc", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "VERIGRAD_KEY" in err and "Traceback" not in err


def test_deploy_with_malformed_key(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VERIGRAD_KEY", "0x1234")
    assert main(["deploy", "--rpc", "http://127.0.0.1:9"]) == 2
    assert "not a valid private key" in capsys.readouterr().err


def test_status_unreachable_rpc(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--rpc", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the chain at http://127.0.0.1:9" in err


def test_status_without_deployment_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Anvil() as node:
        assert main(["status", "--rpc", node.rpc_url, "--deployments", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no deployment for chain 31337" in err and "verigrad deploy" in err


def test_deploy_then_status_on_anvil(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with Anvil() as node:
        monkeypatch.setenv("VERIGRAD_KEY", node.keys[0])
        assert main(["deploy", "--rpc", node.rpc_url, "--deployments", str(tmp_path)]) == 0
        assert (tmp_path / "31337.json").is_file()
        assert main(["status", "--rpc", node.rpc_url, "--deployments", str(tmp_path),
                     "--address", node.accounts[1]]) == 0
    out = capsys.readouterr().out
    assert "TaskMarket" in out and "solvency" in out and node.accounts[1] in out


def test_devnet_runs_until_interrupted_and_stops_anvil(tmp_path: Path) -> None:
    import json
    import signal
    import subprocess
    import sys
    import time

    from protocol.chain.devnet import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "protocol.cli", "devnet", "--port", str(port), "--deployments", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "31337.json").is_file():
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "devnet did not deploy within 120 s"
            time.sleep(0.2)
        deployment = json.loads((tmp_path / "31337.json").read_text())
        assert deployment["chain_id"] == 31337 and deployment["task_market"].startswith("0x")
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "stopping anvil" in out
    from web3 import Web3

    assert not Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 1})).is_connected()


def test_deploy_params_file_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from protocol.chain.deploy import load_params

    assert load_params(Path(__file__).parents[1] / "deploy" / "devnet.toml").unbonding_delay == 3600
    bad = tmp_path / "bad.toml"
    bad.write_text("unbonding_delay = 5\nslash_everyone = 1\n")
    monkeypatch.setenv("VERIGRAD_KEY", "0x" + "11" * 32)
    assert main(["deploy", "--rpc", "http://127.0.0.1:9", "--params", str(bad)]) == 2
    assert "unknown parameter(s) slash_everyone" in capsys.readouterr().err
    bad.write_text('unbonding_delay = "soon"\n')
    assert main(["deploy", "--rpc", "http://127.0.0.1:9", "--params", str(bad)]) == 2
    assert "unbonding_delay must be an integer" in capsys.readouterr().err


def test_status_lists_a_game_in_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A result challenged on chain: `verigrad status` shows the game (task, challenger, solver, level,
    whose turn, both clocks, the bond, where it stands) and the balances of everyone in it."""
    from protocol.chain.client import Chain
    from protocol.chain.deploy import Params, deploy_all
    from protocol.chain.dispute import DisputeGame
    from protocol.chain.market import Market, SealedBid, TaskParams

    eth = 10**18
    with Anvil() as node:
        chain = Chain.connect(node.rpc_url)
        d = deploy_all(chain, node.keys[0], Params(unbonding_delay=3600, dispute_clock=600, dispute_bond=eth // 10))
        d.save(tmp_path)
        submitter, solver = Market(chain, d, node.keys[1]), Market(chain, d, node.keys[2])
        solver.deposit(eth)
        tid = submitter.post_task(TaskParams(
            spec_hash=b"\x11" * 32, initial_state_root=b"\x22" * 32, op_graph_root=b"\x33" * 32,
            spec_uri="builtin:digits-mlp", required_stake=eth // 2, bid_bond=eth // 100, bid_window=100,
            reveal_window=100, challenge_window=100, steps=100, checkpoint_interval=10), eth)
        bid = SealedBid.new(tid, eth // 2)
        solver.commit_bid(bid)
        chain.advance(100)
        solver.reveal_bid(bid)
        chain.advance(100)
        solver.close_auction(tid)
        solver.submit_result(tid, b"\x02" * 32, 100, b"\x03" * 32, "file:///nowhere")
        gid = DisputeGame(chain, d.dispute_game, node.keys[3]).challenge(tid)
        assert main(["status", "--rpc", node.rpc_url, "--deployments", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    head = next(line for line in out.splitlines() if line.split()[:2] == ["game", "task"])
    assert all(w in head for w in ("challenger", "solver", "level", "turn", "clock", "bond", "result"))
    row = next(line for line in out.splitlines() if line.split()[:2] == [str(gid), str(tid)])
    challenger, solver_addr = node.accounts[3], node.accounts[2]
    short = lambda a: f"{a[:6]}…{a[-4:]}"  # noqa: E731
    assert short(challenger) in row and short(solver_addr) in row
    assert "1 checkpoints" in row and " solver " in row  # level 1; the solver must defend its trace first
    assert "10:00" in row and "0.100000" in row and "in progress (defend_trace)" in row
    balances = out[out.index("balances"):]
    assert "challenger" in balances and challenger in balances and node.accounts[1] in balances

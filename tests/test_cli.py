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

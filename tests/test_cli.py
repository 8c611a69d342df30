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

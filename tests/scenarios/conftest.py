"""Scenario fixtures: a devnet with a block per second, deployed contracts, daemon processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from protocol.chain.client import Chain
from protocol.chain.deploy import Deployment, Params, deploy_all
from protocol.chain.devnet import Anvil

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "protocol" / "specs" / "digits-mlp.toml"


def small_spec(tmp: Path, steps: int = 20, interval: int = 5, name: str = "digits-small") -> Path:
    """The digits-mlp reference spec shortened, as a spec file a task can point at."""
    text = DIGITS.read_text()
    text = re.sub(r"(?m)^steps = \d+", f"steps = {steps}", text)
    text = re.sub(r"(?m)^checkpoint_interval = \d+", f"checkpoint_interval = {interval}", text)
    text = re.sub(r'(?m)^name = ".*"', f'name = "{name}"', text, count=1)
    path = tmp / f"{name}.toml"
    path.write_text(text)
    return path


GAME_CLOCK = 60  # seconds per party per game: room for every move at one block a second
GAME_BOND = 10**17


@dataclass
class Devnet:
    node: Anvil
    chain: Chain
    deployment: Deployment
    dir: Path
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def env(self, key_index: int) -> dict[str, str]:
        return {**os.environ, "VERIGRAD_KEY": self.node.keys[key_index], "VERIGRAD_RPC": self.node.rpc_url,
                "PYTHONUNBUFFERED": "1"}

    def spawn(self, name: str, args: list[str], key_index: int) -> subprocess.Popen[str]:
        log = open(self.dir / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            [sys.executable, "-m", "protocol.cli", *args, "--deployments", str(self.dir / "deployments")],
            stdout=log, stderr=subprocess.STDOUT, text=True, env=self.env(key_index), cwd=REPO,
        )
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.dir / f"{name}.log").read_text()

    def wait_for(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return
            for p in self.procs:
                if p.poll() not in (None, 0):
                    raise AssertionError(f"a daemon died with {p.returncode} while waiting for {what}")
            time.sleep(0.3)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[Devnet]:
    with Anvil(accounts=10, block_time=1) as node:
        chain = Chain.connect(node.rpc_url)
        chain.dev_keys = node.keys
        params = Params(unbonding_delay=3600, dispute_timeout=3600, dispute_clock=GAME_CLOCK,
                        dispute_bond=GAME_BOND)
        d = deploy_all(chain, node.keys[0], params)
        d.save(tmp_path / "deployments")
        net = Devnet(node, chain, d, tmp_path)
        try:
            yield net
        finally:
            for p in net.procs:
                if p.poll() is None:
                    p.terminate()
            for p in net.procs:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()

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

from protocol.agents.submitter import post
from protocol.chain.availability import Availability
from protocol.chain.client import Chain
from protocol.chain.deploy import Deployment, Params, deploy_all
from protocol.chain.devnet import Anvil
from protocol.chain.dispute import DisputeGame
from protocol.chain.market import Market, TaskStatus

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
AVAILABILITY_WINDOW = 40  # seconds to answer an availability demand


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
def devnet(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Devnet]:
    """The devnet; ``@pytest.mark.parametrize("devnet", [{"clock": 25}], indirect=True)`` gives a game
    a shorter clock (scenarios that end on a timeout need not wait a full minute), and
    ``{"availability_window": 20}`` a shorter time to answer an availability demand."""
    clock = getattr(request, "param", {}).get("clock", GAME_CLOCK)
    window = getattr(request, "param", {}).get("availability_window", AVAILABILITY_WINDOW)
    with Anvil(accounts=10, block_time=1) as node:
        chain = Chain.connect(node.rpc_url)
        chain.dev_keys = node.keys
        params = Params(unbonding_delay=3600, dispute_timeout=3600, dispute_clock=clock,
                        dispute_bond=GAME_BOND, availability_bond=GAME_BOND, availability_window=window)
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


# ---------------------------------------------------------------------------------- money and tasks
ETH = 10**18
STAKE = ETH // 2
PAYMENT = ETH
START_BALANCE = 10_000 * ETH  # every dev account's
# A solver daemon stakes once it has warmed its engine up: seconds, or tens of seconds on a loaded machine.
STAKE_WAIT = 150
WINDOWS = dict(bid_window=20, reveal_window=8, training_window=600, challenge_window=90)
# Shorter auction windows for scenarios whose solver daemon is warmed up and staked before the task
# is posted (its bid then takes well under a second); the verifier, started at the same time, has
# the whole challenge window for its re-execution.
FAST_WINDOWS = dict(bid_window=10, reveal_window=5, training_window=600, challenge_window=60)


def spend(devnet: Devnet, who: str) -> int:
    """ETH ``who`` spent on gas since the chain started (every account starts with 10,000 ETH)."""
    total = 0
    head = devnet.chain.w3.eth.block_number
    for n in range(head + 1):
        block = devnet.chain.w3.eth.get_block(n, full_transactions=True)
        for tx in block["transactions"]:
            if tx["from"] == who:
                r = devnet.chain.w3.eth.get_transaction_receipt(tx["hash"])
                total += int(r["gasUsed"]) * int(r["effectiveGasPrice"])
    return total


def assert_solvent(devnet: Devnet, m: Market) -> None:
    """No contract holds a wei it does not account for."""
    acc = m.accounted()
    assert acc["stake_manager_balance"] == acc["stake_manager_accounted"]
    assert acc["market_balance"] == acc["market_accounted"]
    assert DisputeGame(devnet.chain, devnet.deployment.dispute_game, m.key).solvent()
    assert Availability(devnet.chain, devnet.deployment.availability, m.key).solvent()


def solver_command(devnet: Devnet, extra: list[str] | None = None) -> list[str]:
    """The solver daemon's arguments: the same store and database every time it is (re)started."""
    return ["solver", "--store", str(devnet.dir / "solver"), "--db", str(devnet.dir / "solver.db"),
            "--stake", "1", *(extra or [])]


def start_task(devnet: Devnet, solver_args: list[str], solver_key: int = 2,
               windows: dict[str, int] | None = None) -> tuple[Market, int, Path]:
    """A solver daemon (``solver_args`` added) staked, a task of the small spec posted, its result in."""
    spec = small_spec(devnet.dir)
    devnet.spawn("solver", solver_command(devnet, solver_args), key_index=solver_key)
    sub = Market(devnet.chain, devnet.deployment, devnet.node.keys[1])
    devnet.wait_for(lambda: sub.free_stake(devnet.node.accounts[solver_key]) == ETH, STAKE_WAIT, "the solver's stake")
    tid = post(sub, str(spec), PAYMENT, STAKE, ETH // 100, windows or WINDOWS)
    devnet.wait_for(lambda: sub.status(tid) == TaskStatus.RESULT_SUBMITTED, 240, "the result")
    return sub, tid, spec

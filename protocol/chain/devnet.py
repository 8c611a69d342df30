"""A local anvil chain as a managed child process.

Used by ``verigrad devnet``, the demo and the test session. The node is started from the pinned npm
package (``node_modules/.bin/anvil``), waits until its JSON-RPC answers, and is always stopped
(SIGTERM, then SIGKILL) when the context exits, Ctrl-C included.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from eth_account import Account
from web3 import Web3

from protocol.chain.errors import ChainError, RpcUnavailable

REPO_ROOT = Path(__file__).resolve().parents[2]

# anvil's well-known development mnemonic: its accounts are funded at genesis. Never use on a real chain.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_CHAIN_ID = 31337


def dev_keys(n: int = 10) -> list[str]:
    """The first ``n`` private keys of the development mnemonic, as 0x-hex."""
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key.to_0x_hex()
        for i in range(n)
    ]


def anvil_binary() -> str:
    """Path of the anvil binary; the npm-installed one first, then PATH."""
    local = REPO_ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if found:
        return found
    raise ChainError("anvil not found: run `make setup` (installs it into node_modules/)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Anvil:
    """Start anvil on ``port`` (a free one by default); ``with Anvil() as node: node.w3 ...``."""

    def __init__(
        self,
        port: int | None = None,
        block_time: float | None = None,
        accounts: int = 10,
        balance_eth: int = 10_000,
        chain_id: int = DEV_CHAIN_ID,
        state_path: str | None = None,
        quiet: bool = True,
    ) -> None:
        self.port = port or free_port()
        self._port_chosen = port is None  # a port we picked may be taken by a racing process: retry
        self.block_time = block_time
        self.n_accounts = accounts
        self.balance_eth = balance_eth
        self.chain_id = chain_id
        self.state_path = state_path
        self.quiet = quiet
        self.proc: subprocess.Popen[bytes] | None = None
        self.keys = dev_keys(accounts)

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def accounts(self) -> list[str]:
        return [Account.from_key(k).address for k in self.keys]

    def start(self, timeout: float = 30.0) -> Anvil:
        for attempt in range(3):
            try:
                return self._start(timeout)
            except ChainError:
                if not self._port_chosen or attempt == 2:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> Anvil:
        cmd = [
            anvil_binary(), "--port", str(self.port), "--host", "127.0.0.1",
            "--accounts", str(self.n_accounts), "--balance", str(self.balance_eth),
            "--chain-id", str(self.chain_id), "--mnemonic", DEV_MNEMONIC,
            "--gas-limit", "60000000", "--code-size-limit", "100000",
        ]
        if self.block_time:
            cmd += ["--block-time", str(self.block_time)]
        if self.state_path:
            cmd += ["--state", self.state_path]
        out = subprocess.DEVNULL if self.quiet else None
        # Own process group: Ctrl-C in the terminal reaches us, and we stop anvil ourselves.
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=out, start_new_session=True)
        deadline = time.monotonic() + timeout
        w3 = Web3(Web3.HTTPProvider(self.rpc_url, request_kwargs={"timeout": 2}))
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ChainError(f"anvil exited with code {self.proc.returncode} (port {self.port} busy?)")
            try:
                if w3.eth.chain_id == self.chain_id:
                    return self
            except Exception:
                time.sleep(0.1)
        self.stop()
        raise RpcUnavailable(f"anvil did not answer on {self.rpc_url} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=5)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

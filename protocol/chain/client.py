"""A connection to a chain: signed transactions, calls, deployments and decoded reverts.

Every transaction is signed locally with a private key, so the same code drives anvil, the in-process
eth-tester chain and any remote JSON-RPC endpoint. Gas is estimated before sending, which is where a
failing call reverts: its data is decoded right there into the typed exceptions of
:mod:`protocol.chain.errors`. Transient RPC failures (connection refused, timeouts, HTTP errors) are
retried with exponential backoff by web3's own retry configuration; what still fails becomes
:class:`~protocol.chain.errors.RpcUnavailable` with the URL in the message.
"""

from __future__ import annotations

import os
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError, TimeExhausted
from web3.providers.rpc.utils import ExceptionRetryConfiguration
from web3.types import TxReceipt

from protocol.chain import errors
from protocol.chain.compile import all_errors_abi, artifact
from protocol.chain.errors import ChainError, KeyMissing, RpcUnavailable

TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.HTTPError, ConnectionError, TimeoutError)


def key_from_env(var: str = "VERIGRAD_KEY") -> str:
    """A private key from the environment, or a clear error naming the variable."""
    key = os.environ.get(var, "").strip()
    if not key:
        raise KeyMissing(
            f"no private key: set {var}=0x<64 hex digits> (for a local devnet, `verigrad devnet` prints keys)"
        )
    try:
        Account.from_key(key)
    except Exception as exc:
        raise KeyMissing(f"{var} is not a valid private key ({exc.__class__.__name__})") from None
    return key


def revert_from(exc: BaseException) -> errors.ContractRevert | None:
    """The typed revert inside a web3 exception, if it carries revert data."""
    data = getattr(exc, "data", None)
    if isinstance(exc, (ContractCustomError, ContractLogicError, ContractPanicError)) or data:
        if isinstance(data, dict):  # some nodes nest it
            data = data.get("data")
        if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
            return errors.decode_revert(data)
        if isinstance(exc, ContractLogicError):
            msg = str(exc.args[0]) if exc.args else str(exc)
            return errors.RevertString({"message": msg}, b"", message=msg)
    # The in-process chain (eth-tester) raises TransactionFailed with the raw revert bytes further
    # down its chain of causes.
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ in ("TransactionFailed", "Revert") and seen.args and isinstance(seen.args[0], bytes):
            return errors.decode_revert(seen.args[0])
        seen = seen.__cause__ or seen.__context__
    return None


class Chain:
    """One chain connection. ``Chain.connect(url)`` for JSON-RPC, ``Chain.in_process()`` for eth-tester."""

    def __init__(self, w3: Web3, url: str = "in-process", dev_keys: list[str] | None = None) -> None:
        self.w3 = w3
        self.url = url
        self.dev_keys = dev_keys or []
        errors.register_errors(all_errors_abi())
        self.chain_id = self._rpc(lambda: w3.eth.chain_id)
        # Wei each sender spent on gas through this connection: lets tests and the demo account
        # for every wei of every balance exactly.
        self.gas_spent: dict[str, int] = {}

    @classmethod
    def connect(cls, url: str, retries: int = 5, timeout: float = 30.0) -> Chain:
        # web3 makes no request at all with retries=0, so one attempt is the minimum.
        retry = ExceptionRetryConfiguration(errors=TRANSIENT, retries=max(1, retries), backoff_factor=0.2)
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}, exception_retry_configuration=retry))
        return cls(w3, url)

    @classmethod
    def in_process(cls) -> Chain:
        """The in-process eth-tester (py-evm) chain with its ten funded accounts."""
        from eth_tester import EthereumTester, PyEVMBackend
        from web3 import EthereumTesterProvider

        tester = EthereumTester(PyEVMBackend())
        keys = [k.to_hex() for k in tester.backend.account_keys]
        return cls(Web3(EthereumTesterProvider(tester)), "in-process", keys)

    def _rpc(self, f: Any) -> Any:
        try:
            return f()
        except TRANSIENT as exc:
            raise RpcUnavailable(
                f"cannot reach the chain at {self.url} ({exc.__class__.__name__}); "
                "is the node running? (`verigrad devnet` starts one)"
            ) from None

    # ------------------------------------------------------------------ contracts

    def contract(self, name: str, address: str) -> Contract:
        return self.w3.eth.contract(
            address=Web3.to_checksum_address(address), abi=artifact(name).abi, decode_tuples=True
        )

    def deploy(self, name: str, *args: Any, key: str, value: int = 0) -> Contract:
        art = artifact(name)
        factory = self.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
        receipt = self.transact(factory.constructor(*args), key=key, value=value)
        address = receipt["contractAddress"]
        if address is None:
            raise ChainError(f"deploying {name}: the receipt names no contract address")
        return self.contract(name, address)

    # ------------------------------------------------------------------ transactions

    def transact(self, fn: Any, key: str, value: int = 0, gas: int | None = None) -> TxReceipt:
        """Sign and send ``fn`` (a bound contract function or constructor); raise typed reverts."""
        acct: LocalAccount = Account.from_key(key)
        try:
            tx = fn.build_transaction(
                {
                    "from": acct.address,
                    "value": value,
                    "nonce": self._rpc(lambda: self.w3.eth.get_transaction_count(acct.address, "pending")),
                    "chainId": self.chain_id,
                    **({"gas": gas} if gas else {}),
                }
            )
        except TRANSIENT as exc:
            raise RpcUnavailable(f"cannot reach the chain at {self.url} ({exc.__class__.__name__})") from None
        except Exception as exc:
            rev = revert_from(exc)
            if rev is not None:
                raise rev from None
            raise
        if gas is None:
            tx["gas"] = int(tx["gas"] * 1.25) + 20_000  # estimate is exact for this state; leave room
        signed = acct.sign_transaction(tx)
        tx_hash = self._rpc(lambda: self.w3.eth.send_raw_transaction(signed.raw_transaction))
        try:
            receipt = self._rpc(lambda: self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120))
        except TimeExhausted as exc:
            raise ChainError(f"transaction {tx_hash.hex()} not mined within 120 s") from exc
        if receipt["status"] != 1:
            # State changed between estimate and inclusion (a deadline passed, another party moved):
            # replay as a call on the block's state to get the typed reason.
            call = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
            for block in (receipt["blockNumber"], receipt["blockNumber"] - 1):
                try:
                    self.w3.eth.call(call, block)  # type: ignore[arg-type]
                except Exception as exc:
                    rev = revert_from(exc)
                    if rev is not None:
                        raise rev from None
            raise errors.TransactionReverted(
                {"tx": tx_hash.hex()}, message=f"transaction {tx_hash.hex()} reverted when mined (no reason replayable)"
            )
        cost = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
        self.gas_spent[acct.address] = self.gas_spent.get(acct.address, 0) + cost
        return receipt

    def call(self, fn: ContractFunction, sender: str | None = None) -> Any:
        try:
            return self._rpc(lambda: fn.call({"from": sender} if sender else {}))
        except RpcUnavailable:
            raise
        except Exception as exc:
            rev = revert_from(exc)
            if rev is not None:
                raise rev from None
            raise

    def balance(self, address: str) -> int:
        return int(self._rpc(lambda: self.w3.eth.get_balance(Web3.to_checksum_address(address))))

    def now(self) -> int:
        return int(self._rpc(lambda: self.w3.eth.get_block("latest")["timestamp"]))

    # ------------------------------------------------------------------ devnet time travel

    def advance(self, seconds: int) -> None:
        """Move a development chain's clock forward and mine a block (anvil or eth-tester)."""
        if self.url == "in-process":
            tester = self.w3.provider.ethereum_tester  # type: ignore[attr-defined]
            tester.time_travel(self.now() + seconds)
            tester.mine_blocks(1)
        else:
            self.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
            self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

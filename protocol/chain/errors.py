"""Chain-layer exceptions, and the one place where revert data becomes a typed Python exception.

web3.py hands back a custom error as raw bytes (selector + ABI-encoded values). ``decode_revert``
turns it into an instance of a subclass of :class:`ContractRevert` named after the Solidity error,
carrying its values by name, e.g. ``BidTooLate(taskId=1, deadline=100, now=130)``. The classes are
created once per error signature from the compiled ABIs and exposed as attributes of this module, so
``except errors.BidTooLate`` works in tests and daemons alike.
"""

from __future__ import annotations

from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from protocol.errors import VerigradError


class ChainError(VerigradError):
    """Anything that went wrong talking to a chain or its contracts."""


class RpcUnavailable(ChainError):
    """The JSON-RPC endpoint could not be reached (after retries)."""


class KeyMissing(ChainError):
    """No private key was given where a transaction has to be signed."""


class DeploymentMissing(ChainError):
    """No deployment file for this chain: deploy first."""


class ContractRevert(ChainError):
    """A contract call reverted. Subclasses are named after the Solidity custom error."""

    error_name: str = "?"
    signature: str = "?"

    def __init__(self, values: dict[str, Any] | None = None, data: bytes = b"", message: str = ""):
        self.values = dict(values or {})
        self.data = data
        for k, v in self.values.items():
            setattr(self, k, v)
        text = message or f"{self.error_name}({', '.join(f'{k}={v}' for k, v in self.values.items())})"
        super().__init__(text)


class RevertString(ContractRevert):
    """``revert("...")`` / ``require(cond, "...")``: ``Error(string)``."""

    error_name = "Error"
    signature = "Error(string)"


class Panic(ContractRevert):
    """An assertion, overflow or array-bounds failure: ``Panic(uint256)``."""

    error_name = "Panic"
    signature = "Panic(uint256)"


class TransactionReverted(ContractRevert):
    """A transaction that passed gas estimation but reverted when mined, for a reason not replayable."""

    error_name = "TransactionReverted"


class UnknownRevert(ContractRevert):
    """Revert data whose selector no compiled contract declares."""

    error_name = "UnknownRevert"


_by_selector: dict[bytes, tuple[type[ContractRevert], list[str], list[str]]] = {
    keccak(text="Error(string)")[:4]: (RevertString, ["message"], ["string"]),
    keccak(text="Panic(uint256)")[:4]: (Panic, ["code"], ["uint256"]),
}


def _abi_type(inp: dict[str, Any]) -> str:
    t = inp["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in inp["components"]) + ")" + t[len("tuple"):]
    return t


def register_errors(abi: list[dict[str, Any]]) -> None:
    """Create (once) an exception class for every custom error in ``abi``."""
    for item in abi:
        if item.get("type") != "error":
            continue
        types = [_abi_type(i) for i in item["inputs"]]
        sig = f"{item['name']}({','.join(types)})"
        sel = keccak(text=sig)[:4]
        if sel in _by_selector:
            continue
        name = item["name"]
        existing = globals().get(name)
        if isinstance(existing, type) and issubclass(existing, ContractRevert) and existing.signature == sig:
            cls = existing
        else:
            cls = type(name, (ContractRevert,), {"error_name": name, "signature": sig, "__module__": __name__})
            if name not in globals():
                globals()[name] = cls
        _by_selector[sel] = (cls, [i["name"] or f"arg{n}" for n, i in enumerate(item["inputs"])], types)


def decode_revert(data: bytes | str | None) -> ContractRevert:
    """Turn raw revert data into the matching typed exception (not raised)."""
    if isinstance(data, str):
        data = bytes.fromhex(data.removeprefix("0x"))
    data = data or b""
    if len(data) < 4:
        return UnknownRevert(data=data, message="reverted without a reason")
    entry = _by_selector.get(data[:4])
    if entry is None:
        return UnknownRevert(data=data, message=f"reverted with unknown error selector 0x{data[:4].hex()}")
    cls, names, types = entry
    try:
        values = abi_decode(types, data[4:])
    except Exception:  # malformed payload: keep the raw bytes
        return cls(data=data, message=f"{cls.error_name} (undecodable data 0x{data.hex()})")
    vals = {
        n: to_checksum_address(v) if t == "address" else v
        for n, v, t in zip(names, values, types, strict=True)
    }
    if cls is RevertString:
        return cls(vals, data, message=str(vals["message"]))
    return cls(vals, data)


def __getattr__(name: str) -> type[ContractRevert]:
    """Let ``errors.SomeError`` resolve after compiling, so tests can name errors directly."""
    if name.startswith("_") or not name[:1].isupper():
        raise AttributeError(name)
    from protocol.chain.compile import all_errors_abi

    register_errors(all_errors_abi())
    if name in globals():
        return globals()[name]  # type: ignore[no-any-return]
    raise AttributeError(f"no contract error named {name!r}")

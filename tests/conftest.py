"""Shared fixtures: a real anvil for the whole session, the in-process chain, deploy helpers.

Fixtures here are shared by every test module; a module that needs something of its own keeps it
in the module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from protocol.chain.client import Chain
from protocol.chain.devnet import Anvil


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    """One anvil node for the whole test session (accounts funded with 10,000 ETH each)."""
    with Anvil(accounts=20) as node:
        yield node


@pytest.fixture(scope="session")
def anvil_chain(anvil: Anvil) -> Chain:
    """A :class:`Chain` on the session's anvil; ``anvil_chain.dev_keys`` are its funded keys."""
    chain = Chain.connect(anvil.rpc_url)
    chain.dev_keys = anvil.keys
    return chain


@pytest.fixture
def chain(anvil_chain: Chain) -> Iterator[Chain]:
    """The session's anvil, reverted to a snapshot after the test (``gas_spent`` counted from zero)."""
    snap = anvil_chain.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    anvil_chain.gas_spent.clear()
    yield anvil_chain
    anvil_chain.w3.provider.make_request("evm_revert", [snap])  # type: ignore[arg-type]


@pytest.fixture
def deploy(anvil_chain: Chain) -> Callable[..., Any]:
    """``deploy(name, *ctor_args, key=None, value=0)`` on the session anvil -> web3 contract."""

    def _deploy(name: str, *args: Any, key: str | None = None, value: int = 0) -> Any:
        return anvil_chain.deploy(name, *args, key=key or anvil_chain.dev_keys[0], value=value)

    return _deploy

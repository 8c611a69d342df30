"""Deploy the verigrad contracts to any chain and remember where they are.

A deployment is written to ``deployments/<chainId>.json`` (addresses, parameters, block), so every
daemon and CLI command finds the contracts from the chain id alone.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from eth_account import Account

from protocol.chain.client import Chain
from protocol.chain.errors import ChainError, DeploymentMissing

DEPLOYMENTS_DIR = Path("deployments")


@dataclass(frozen=True)
class Params:
    """Protocol parameters fixed at deployment (see docs/CONTRACTS.md for what each one does)."""

    unbonding_delay: int = 7 * 24 * 3600
    beneficiary_bps: int = 5_000  # half of a slash to the winner of the dispute, half to the sink
    credit_bonus_bps: int = 200  # each completed task lowers a solver's score by 2% ...
    max_bonus_bps: int = 2_000  # ... up to 20%
    credit_min_stake: int = 10**17  # tasks below this stake earn no credit (anti-sybil)
    dispute_timeout: int = 7 * 24 * 3600
    sink: str | None = None  # burn/pool address; defaults to the deployer
    dispute_bond: int = 10**17  # wei a challenger posts per game (to the solver if the challenger loses)
    dispute_degree: int = 4  # k of the game's k-ary queries: k - 1 leaves per reveal
    dispute_clock: int | None = None  # seconds per party per game; default a quarter of dispute_timeout
    availability_bond: int = 10**17  # wei behind a demand for chunks (the answer's gas is paid from it)
    availability_window: int | None = None  # seconds an answer has; default a quarter of dispute_timeout
    availability_refund_bps: int = 10_000  # share of an answer's gas cost (at the base fee) paid from the bond

    @property
    def game_clock(self) -> int:
        """Each party's time per game: ``dispute_clock`` or a quarter of the dispute timeout, so that a
        game always ends (both clocks spent) before the market may expire its dispute."""
        return self.dispute_clock if self.dispute_clock is not None else max(1, self.dispute_timeout // 4)

    @property
    def response_window(self) -> int:
        """Seconds an availability demand may be answered: ``availability_window`` or a quarter of the
        dispute timeout, so that it always ends before the market may expire its dispute."""
        w = self.availability_window
        return w if w is not None else max(1, self.dispute_timeout // 4)


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    deployer: str
    block: int
    stake_manager: str
    task_market: str
    float32_arbiter: str
    params: dict[str, object] = field(default_factory=dict)
    dispute_game: str = ""  # DisputeGame ("" in a deployment without one: results cannot be challenged)
    step_verifier: str = ""  # its one-step verifier
    availability: str = ""  # AvailabilityChallenge ("": results' data cannot be demanded on chain)

    def save(self, directory: Path = DEPLOYMENTS_DIR) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.chain_id}.json"
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, chain_id: int, directory: Path = DEPLOYMENTS_DIR) -> Deployment:
        path = directory / f"{chain_id}.json"
        if not path.is_file():
            raise DeploymentMissing(
                f"no deployment for chain {chain_id} at {path}: run `verigrad deploy --rpc URL` "
                "(or `verigrad devnet` for a local chain) first"
            )
        return cls(**json.loads(path.read_text()))


def load_params(path: str | Path) -> Params:
    """Parameters from a TOML file (see deploy/*.toml); unknown keys are an error, not ignored."""
    import tomllib

    p = Path(path)
    if not p.is_file():
        raise ChainError(f"no parameter file at {p} (see deploy/devnet.toml for the format)")
    try:
        raw = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ChainError(f"{p}: not valid TOML: {exc}") from None
    known = set(Params.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ChainError(f"{p}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for k, v in raw.items():
        want = str if k == "sink" else int
        if not isinstance(v, want) or isinstance(v, bool):
            raise ChainError(f"{p}: {k} must be {'an address string' if want is str else 'an integer'}, got {v!r}")
    return Params(**raw)


def deploy_dispute(chain: Chain, key: str, deployment: Deployment, verifier: str,
                   params: Params | None = None) -> Deployment:
    """Deploy a DisputeGame over ``verifier`` and authorise it in the market (the market reports a lost
    game to the StakeManager, where it is already the slasher). Returns the deployment with both."""
    params = params or Params()
    clock = params.game_clock
    if 2 * clock >= params.dispute_timeout:
        raise ChainError(f"dispute_clock {clock} s must stay below half of dispute_timeout "
                         f"{params.dispute_timeout} s, or the market may expire a game still being played")
    market = chain.contract("TaskMarket", deployment.task_market)
    game = chain.deploy("DisputeGame", market.address, verifier, params.dispute_bond, params.dispute_degree,
                        clock, key=key)
    chain.transact(market.functions.setDisputeContract(game.address, True), key=key)
    return dataclasses.replace(deployment, dispute_game=game.address, step_verifier=verifier)


def deploy_availability(chain: Chain, key: str, deployment: Deployment, params: Params | None = None) -> Deployment:
    """Deploy an AvailabilityChallenge and authorise it in the market as a second dispute contract."""
    params = params or Params()
    window = params.response_window
    if window >= params.dispute_timeout:
        raise ChainError(f"availability_window {window} s must stay below dispute_timeout "
                         f"{params.dispute_timeout} s, or the market may expire a demand still open")
    market = chain.contract("TaskMarket", deployment.task_market)
    avail = chain.deploy("AvailabilityChallenge", market.address, params.availability_bond, window,
                         params.availability_refund_bps, key=key)
    chain.transact(market.functions.setDisputeContract(avail.address, True), key=key)
    return dataclasses.replace(deployment, availability=avail.address)


def deploy_all(chain: Chain, key: str, params: Params | None = None) -> Deployment:
    """Deploy StakeManager, TaskMarket, Float32Arbiter, the soft-float one-step verifier, the
    DisputeGame over it and the AvailabilityChallenge, and wire them together."""
    params = params or Params()
    deployer = Account.from_key(key).address
    sink = params.sink or deployer
    stake = chain.deploy("StakeManager", deployer, params.unbonding_delay, sink, params.beneficiary_bps, key=key)
    market = chain.deploy(
        "TaskMarket",
        deployer,
        stake.address,
        params.credit_bonus_bps,
        params.max_bonus_bps,
        params.credit_min_stake,
        params.dispute_timeout,
        key=key,
    )
    chain.transact(stake.functions.setMarket(market.address), key=key)
    # The market slashes a solver that never delivers or loses a dispute.
    chain.transact(stake.functions.setSlasher(market.address, True), key=key)
    arbiter = chain.deploy("Float32Arbiter", key=key)
    block = int(chain.w3.eth.block_number)
    base = Deployment(
        chain_id=chain.chain_id,
        deployer=deployer,
        block=block,
        stake_manager=stake.address,
        task_market=market.address,
        float32_arbiter=arbiter.address,
        params={**asdict(params), "sink": sink, "dispute_clock": params.game_clock,
                "availability_window": params.response_window},
    )
    verifier = chain.deploy("ScalarStepVerifier", key=key)
    return deploy_availability(chain, key, deploy_dispute(chain, key, base, verifier.address, params), params)

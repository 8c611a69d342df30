"""Typed clients of the deployed StakeManager and TaskMarket.

Thin on purpose: each method is one contract function, signed with the caller's key, with results
as named tuples (``decode_tuples``) and reverts as typed exceptions. The rules live in the contracts
(docs/CONTRACTS.md); the protocol logic that decides *what* to send lives in the daemons.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from web3.logs import DISCARD  # receipts also carry other contracts' events: skip them, no warning
from web3.types import TxReceipt

from protocol.chain.client import Chain
from protocol.chain.deploy import Deployment


class TaskStatus(enum.IntEnum):
    NONE = 0
    BIDDING = 1
    ASSIGNED = 2
    RESULT_SUBMITTED = 3
    COMPLETED = 4
    FAILED = 5
    CANCELLED = 6


@dataclass(frozen=True)
class TaskParams:
    """What a submitter fixes when posting (mirrors ``ITaskMarket.TaskParams``)."""

    spec_hash: bytes
    initial_state_root: bytes  # S_0 as the spec's seed gives it: where the dispute game's level 1 starts
    op_graph_root: bytes  # root over the op graph of one step (protocol.dispute.graph): the verifier's programs
    spec_uri: str
    required_stake: int
    bid_bond: int
    bid_window: int = 600
    reveal_window: int = 600
    training_window: int = 3600
    challenge_window: int = 600
    steps: int = 100
    checkpoint_interval: int = 10
    min_credit: int = 0

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.spec_hash, self.initial_state_root, self.op_graph_root, self.spec_uri, self.required_stake, self.bid_bond, self.bid_window,
            self.reveal_window, self.training_window, self.challenge_window, self.steps,
            self.checkpoint_interval, self.min_credit,
        )


@dataclass(frozen=True)
class SealedBid:
    """A bid a solver keeps secret until the reveal window: the price and the salt."""

    task_id: int
    price: int
    salt: bytes

    @classmethod
    def new(cls, task_id: int, price: int) -> SealedBid:
        return cls(task_id, price, secrets.token_bytes(32))


class Market:
    """The StakeManager and TaskMarket of one deployment, used with one private key."""

    def __init__(self, chain: Chain, deployment: Deployment, key: str) -> None:
        self.chain = chain
        self.deployment = deployment
        self.key = key
        self.address = Account.from_key(key).address
        self.stake = chain.contract("StakeManager", deployment.stake_manager)
        self.market = chain.contract("TaskMarket", deployment.task_market)

    def with_key(self, key: str) -> Market:
        return Market(self.chain, self.deployment, key)

    def _tx(self, fn: Any, value: int = 0) -> TxReceipt:
        return self.chain.transact(fn, key=self.key, value=value)

    # ---------------------------------------------------------------- stake
    def deposit(self, amount: int) -> TxReceipt:
        return self._tx(self.stake.functions.deposit(), value=amount)

    def request_withdrawal(self, amount: int) -> TxReceipt:
        return self._tx(self.stake.functions.requestWithdrawal(amount))

    def withdraw(self) -> TxReceipt:
        return self._tx(self.stake.functions.withdraw())

    def claim_proceeds(self) -> TxReceipt:
        return self._tx(self.stake.functions.claimProceeds())

    def free_stake(self, who: str | None = None) -> int:
        return int(self.chain.call(self.stake.functions.freeStakeOf(who or self.address)))

    def locked_stake(self, who: str | None = None) -> int:
        return int(self.chain.call(self.stake.functions.lockedStakeOf(who or self.address)))

    def proceeds(self, who: str | None = None) -> int:
        return int(self.chain.call(self.stake.functions.proceedsOf(who or self.address)))

    # ---------------------------------------------------------------- market
    def post_task(self, params: TaskParams, payment: int) -> int:
        receipt = self._tx(self.market.functions.postTask(params.as_tuple()), value=payment)
        (event,) = self.market.events.TaskPosted().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["taskId"])

    def commitment(self, bid: SealedBid, bidder: str | None = None) -> bytes:
        return bytes(
            self.chain.call(
                self.market.functions.bidCommitment(bid.task_id, bidder or self.address, bid.price, bid.salt)
            )
        )

    def commit_bid(self, bid: SealedBid) -> TxReceipt:
        bond = self.task(bid.task_id).bidBond
        return self._tx(self.market.functions.commitBid(bid.task_id, self.commitment(bid)), value=bond)

    def reveal_bid(self, bid: SealedBid) -> TxReceipt:
        return self._tx(self.market.functions.revealBid(bid.task_id, bid.price, bid.salt))

    def close_auction(self, task_id: int) -> TxReceipt:
        return self._tx(self.market.functions.closeAuction(task_id))

    def commit_progress(self, task_id: int, trace_root: bytes, num_checkpoints: int) -> TxReceipt:
        return self._tx(self.market.functions.commitProgress(task_id, trace_root, num_checkpoints))

    def submit_result(
        self, task_id: int, trace_root: bytes, num_steps: int, final_state_root: bytes, artifact_uri: str
    ) -> TxReceipt:
        return self._tx(
            self.market.functions.submitResult(task_id, trace_root, num_steps, final_state_root, artifact_uri)
        )

    def finalize(self, task_id: int) -> TxReceipt:
        return self._tx(self.market.functions.finalize(task_id))

    def fail_undelivered(self, task_id: int) -> TxReceipt:
        return self._tx(self.market.functions.failUndelivered(task_id))

    def withdraw_payments(self) -> TxReceipt:
        return self._tx(self.market.functions.withdrawPayments())

    # ---------------------------------------------------------------- views
    def task(self, task_id: int) -> Any:
        return self.chain.call(self.market.functions.getTask(task_id))

    def status(self, task_id: int) -> TaskStatus:
        return TaskStatus(self.task(task_id).status)

    def payments(self, who: str | None = None) -> int:
        return int(self.chain.call(self.market.functions.paymentsOf(who or self.address)))

    def task_count(self) -> int:
        return int(self.chain.call(self.market.functions.taskCount()))

    def record(self, who: str | None = None) -> Any:
        return self.chain.call(self.market.functions.recordOf(who or self.address))

    def accounted(self) -> dict[str, int]:
        """Every wei each contract accounts for, next to what it holds (the solvency check)."""
        free, locked, pending, proceeds, sink = self.chain.call(self.stake.functions.totals())
        escrow, bonds, payable_ = self.chain.call(self.market.functions.totals())
        return {
            "stake_manager_balance": self.chain.balance(self.stake.address),
            "stake_manager_accounted": free + locked + pending + proceeds + sink,
            "market_balance": self.chain.balance(self.market.address),
            "market_accounted": escrow + bonds + payable_,
        }


def sole_bidder_task(submitter: Market, solver: Market, params: TaskParams, payment: int, price: int) -> int:
    """On a development chain (its clock advanced): ``submitter`` posts a task, ``solver`` (staked) bids
    ``price`` alone, reveals and wins; returns the task id, assigned to ``solver``."""
    tid = submitter.post_task(params, payment)
    bid = SealedBid.new(tid, price)
    solver.commit_bid(bid)
    submitter.chain.advance(params.bid_window)
    solver.reveal_bid(bid)
    submitter.chain.advance(params.reveal_window)
    submitter.close_auction(tid)
    return tid

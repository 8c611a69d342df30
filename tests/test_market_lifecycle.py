"""The market lifecycle on a real chain: anvil and the in-process eth-tester chain.

One submitter, three staked solvers bidding in a sealed-bid auction (one never reveals), the winner
commits progress and its result, the challenge window passes, the task is finalized and everyone
withdraws. Every ETH balance is then checked to the wei, gas included.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account

from protocol.chain import errors
from protocol.chain.client import Chain
from protocol.chain.deploy import Params, deploy_all
from protocol.chain.market import Market, SealedBid, TaskParams, TaskStatus

ETH = 10**18


@pytest.fixture(params=["anvil", "eth-tester"])
def market(request: pytest.FixtureRequest) -> Iterator[Market]:
    if request.param == "anvil":
        chain: Chain = request.getfixturevalue("anvil_chain")
        snap = chain.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        chain.gas_spent.clear()
    else:
        chain = Chain.in_process()
    deployment = deploy_all(chain, chain.dev_keys[0], Params(unbonding_delay=3600))
    yield Market(chain, deployment, chain.dev_keys[1])
    if request.param == "anvil":
        chain.w3.provider.make_request("evm_revert", [snap])  # type: ignore[arg-type]


def params(**kw: int) -> TaskParams:
    base = dict(
        spec_hash=b"\x11" * 32, initial_state_root=b"\x22" * 32, op_graph_root=b"\x33" * 32, spec_uri="builtin:digits-mlp", required_stake=ETH // 2, bid_bond=ETH // 100,
        bid_window=100, reveal_window=100, training_window=1000, challenge_window=100, steps=100,
        checkpoint_interval=10,
    )
    base.update(kw)
    return TaskParams(**base)  # type: ignore[arg-type]


def test_lifecycle_three_solvers_every_balance(market: Market) -> None:
    chain = market.chain
    submitter = market
    solvers = [market.with_key(k) for k in chain.dev_keys[2:5]]
    everyone = [submitter, *solvers]
    start = {m.address: chain.balance(m.address) for m in everyone}

    for s in solvers:
        s.deposit(ETH)
    payment = ETH
    task_id = submitter.post_task(params(), payment)
    assert submitter.status(task_id) == TaskStatus.BIDDING

    prices = [3 * ETH // 10, 5 * ETH // 10, 4 * ETH // 10]
    bids = [SealedBid.new(task_id, p) for p in prices]
    for s, b in zip(solvers, bids, strict=True):
        s.commit_bid(b)
    chain.advance(100)
    solvers[0].reveal_bid(bids[0])
    solvers[1].reveal_bid(bids[1])  # solvers[2] never reveals: its bond goes to the submitter
    chain.advance(100)
    submitter.close_auction(task_id)

    task = submitter.task(task_id)
    assert task.status == TaskStatus.ASSIGNED and task.solver == solvers[0].address
    # Second price: the runner-up's price (no record bonus yet), capped by the payment.
    assert task.winningPrice == prices[0] and task.agreedPrice == prices[1]
    assert solvers[0].locked_stake() == ETH // 2 and solvers[0].free_stake() == ETH // 2

    winner = solvers[0]
    winner.commit_progress(task_id, b"\x01" * 32, 5)
    winner.submit_result(task_id, b"\x02" * 32, 100, b"\x03" * 32, "file:///artifacts/x")
    with pytest.raises(errors.ChallengeWindowOpen):
        submitter.finalize(task_id)
    chain.advance(100)
    submitter.finalize(task_id)
    assert submitter.status(task_id) == TaskStatus.COMPLETED
    assert winner.locked_stake() == 0 and winner.free_stake() == ETH
    assert winner.record().completed == 1

    bond = ETH // 100
    assert submitter.payments() == payment - prices[1] + bond
    assert winner.payments() == prices[1] + bond
    assert solvers[1].payments() == bond
    assert solvers[2].payments() == 0
    for m in everyone:
        if m.payments():
            m.withdraw_payments()
    acct = market.accounted()
    assert acct["market_balance"] == acct["market_accounted"] == 0
    assert acct["stake_manager_balance"] == acct["stake_manager_accounted"] == 3 * ETH

    flows = {
        submitter.address: -payment + (payment - prices[1]) + bond,
        solvers[0].address: -ETH + prices[1],
        solvers[1].address: -ETH,
        solvers[2].address: -ETH - bond,
    }
    for m in everyone:
        expected = start[m.address] + flows[m.address] - chain.gas_spent.get(m.address, 0)
        assert chain.balance(m.address) == expected, m.address


def test_postTask_bad_windows_and_zero_payment_reverts(market: Market) -> None:
    with pytest.raises(errors.InvalidWindow) as exc:
        market.post_task(params(bid_window=0), ETH)
    assert exc.value.which == 0 and exc.value.value == 0
    with pytest.raises(errors.ZeroPayment):
        market.post_task(params(), 0)
    with pytest.raises(errors.InvalidSteps):
        market.post_task(params(steps=100, checkpoint_interval=7), ETH)


def test_bid_after_close_and_wrong_salt_reverts(market: Market) -> None:
    chain = market.chain
    solver = market.with_key(chain.dev_keys[2])
    solver.deposit(ETH)
    task_id = market.post_task(params(), ETH)
    bid = SealedBid.new(task_id, ETH // 4)
    solver.commit_bid(bid)
    chain.advance(100)
    late = market.with_key(chain.dev_keys[3])
    late.deposit(ETH)
    with pytest.raises(errors.CommitWindowClosed) as exc:
        late.commit_bid(SealedBid.new(task_id, ETH // 5))
    assert exc.value.taskId == task_id
    with pytest.raises(errors.CommitmentMismatch):
        solver.reveal_bid(SealedBid(task_id, bid.price, b"\x00" * 32))
    with pytest.raises(errors.CommitmentMismatch):
        solver.reveal_bid(SealedBid(task_id, bid.price + 1, bid.salt))
    solver.reveal_bid(bid)


def test_unreachable_rpc_is_a_clear_error() -> None:
    chain_err = None
    try:
        Chain.connect("http://127.0.0.1:9", retries=0)
    except errors.RpcUnavailable as exc:
        chain_err = str(exc)
    assert chain_err is not None and "127.0.0.1:9" in chain_err and "verigrad devnet" in chain_err


def test_stake_below_required_is_typed(market: Market) -> None:
    solver = market.with_key(market.chain.dev_keys[2])
    task_id = market.post_task(params(), ETH)
    with pytest.raises(errors.StakeTooLow) as exc:
        solver.commit_bid(SealedBid.new(task_id, ETH // 4))
    assert exc.value.bidder == Account.from_key(market.chain.dev_keys[2]).address
    assert exc.value.required == ETH // 2 and exc.value.free == 0


def test_transient_rpc_failure_is_retried() -> None:
    """A node that comes up while a request is being retried is reached, not reported as down."""
    import threading

    from protocol.chain.devnet import Anvil, free_port

    node = Anvil(port=free_port())
    starter = threading.Timer(0.3, node.start)
    starter.start()
    try:
        chain = Chain.connect(node.rpc_url, retries=6)
        assert chain.chain_id == 31337
    finally:
        starter.join()
        node.stop()

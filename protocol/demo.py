"""``verigrad demo``: the protocol's story on a fresh local chain.

Starts anvil, deploys, stakes three solvers, posts two tasks with the payment in escrow, runs the
sealed-bid auctions, trains the winning task for real with the reproducible engine and commits its
trace root, lets a second winner miss its delivery deadline (slashed, submitter refunded), and prints
every balance and the solvency check at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

from protocol.chain.client import Chain
from protocol.chain.deploy import Params, deploy_all
from protocol.chain.devnet import Anvil
from protocol.chain.market import Market, SealedBid, TaskParams, TaskStatus
from protocol.chain_cli import balance_table, fmt_eth, task_table

ETH = 10**18


def add_demo_parser(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole story on a fresh local devnet",
        description="Start anvil, deploy, post tasks, auction them, train for real, commit, settle, "
        "and print every balance.",
        epilog="example: verigrad demo --spec digits-mlp --steps 60",
    )
    p.add_argument("--spec", default="digits-mlp", help="reference spec name or path (default digits-mlp)")
    p.add_argument("--steps", type=int, default=None, help="override the spec's number of steps")
    p.add_argument("--out", default="runs/demo", help="artifact directory (default runs/demo)")
    p.set_defaults(func=run_demo)


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def initial_state_root(spec: Any) -> bytes:
    """S_0's root as the spec's seed gives it: what a submitter puts in the task."""
    import torch

    from protocol.models import build_model
    from protocol.spec import open_dataset
    from protocol.train import initial_state, state_root_of

    model = build_model(spec, open_dataset(spec))
    return state_root_of(initial_state(model, torch.device("cpu")))


def run_demo(args: argparse.Namespace) -> int:
    with Anvil(accounts=8) as node:
        chain = Chain.connect(node.rpc_url)
        keys = node.keys
        d = deploy_all(chain, keys[0], Params(unbonding_delay=3600))
        say(f"anvil on {node.rpc_url}; StakeManager {d.stake_manager}, TaskMarket {d.task_market}")
        submitter = Market(chain, d, keys[1])
        solvers = {name: Market(chain, d, keys[i]) for name, i in (("alice", 2), ("bob", 3), ("carol", 4))}
        people = [("submitter", submitter), *solvers.items()]
        start = {m.address: chain.balance(m.address) for _, m in people}
        for name, s in solvers.items():
            s.deposit(2 * ETH)
            say(f"{name} staked 2 ETH")

        from protocol.dispute.graph import op_graph_root
        from protocol.spec import load_spec, spec_hash

        spec = load_spec(args.spec)
        steps = args.steps or spec.steps
        interval = spec.checkpoint_interval
        steps -= steps % interval
        tp = TaskParams(
            spec_hash=bytes.fromhex(spec_hash(spec).removeprefix("0x")),
            initial_state_root=initial_state_root(spec), op_graph_root=op_graph_root(spec),
            spec_uri=f"builtin:{args.spec}",
            required_stake=ETH, bid_bond=ETH // 100, bid_window=60, reveal_window=60,
            training_window=3600, challenge_window=120, steps=steps, checkpoint_interval=interval,
        )
        t1 = submitter.post_task(tp, 2 * ETH)
        t2 = submitter.post_task(tp, 2 * ETH)
        say(f"submitter posted tasks {t1} and {t2} ({args.spec}, {steps} steps), 2 ETH escrowed each")

        prices = {t1: {"alice": 8, "bob": 10, "carol": 12}, t2: {"alice": 14, "bob": 9, "carol": 11}}
        sealed: dict[tuple[int, str], SealedBid] = {}
        for tid, table in prices.items():
            for name, tenth in table.items():
                sealed[(tid, name)] = SealedBid.new(tid, tenth * ETH // 10)
                solvers[name].commit_bid(sealed[(tid, name)])
        say("sealed bids committed (prices hidden until the reveal window)")
        chain.advance(60)
        for (tid, name), bid in sealed.items():
            if (tid, name) != (t2, "carol"):  # carol never reveals on task 2: her bond is forfeited
                solvers[name].reveal_bid(bid)
        say("bids revealed (carol does not reveal on task 2: her bid bond goes to the submitter)")
        chain.advance(60)
        for tid in (t1, t2):
            submitter.close_auction(tid)
            t = submitter.task(tid)
            winner = next(n for n, s in solvers.items() if s.address == t.solver)
            say(f"task {tid}: {winner} wins at {fmt_eth(t.winningPrice)} ETH, paid {fmt_eth(t.agreedPrice)} "
                "(second price) on completion; 1 ETH of its stake locked")

        w1 = next(s for s in solvers.values() if s.address == submitter.task(t1).solver)
        say(f"task {t1}: training {args.spec} for {steps} steps with the reproducible engine ...")
        from protocol.train import train  # heavy import (torch) only now

        committed = {"n": 0}

        def on_checkpoint(cp: Any, trace_root: bytes) -> None:
            # A progress commitment on chain after every checkpoint: the trace root over S_0..S_t.
            committed["n"] += 1
            if committed["n"] > 1:  # S_0 alone says nothing about progress
                w1.commit_progress(t1, trace_root, committed["n"])

        out_dir = Path(args.out) / f"task-{t1}"
        result = train(dataclasses.replace(spec, steps=steps), out_dir=out_dir, on_checkpoint=on_checkpoint)
        w1.submit_result(t1, result.trace_root, steps, result.final_state_root, out_dir.resolve().as_uri())
        summary = result.summary()
        say(f"task {t1}: {committed['n'] - 1} progress commitments; result committed: trace root "
            f"0x{result.trace_root.hex()[:16]}…, loss {summary['first_loss']:.3f} -> {summary['loss']:.3f}"
            + (f", accuracy {summary['accuracy']:.3f}" if "accuracy" in summary else ""))

        say(f"task {t2}: the winner never delivers")
        chain.advance(3600)
        submitter.fail_undelivered(t2)
        say(f"task {t2}: delivery deadline passed: solver slashed, escrow refunded to the submitter")
        chain.advance(120)
        submitter.finalize(t1)
        say(f"task {t1}: challenge window closed without a dispute: solver paid, remainder refunded, stake unlocked")

        for _, m in people:
            if m.payments():
                m.withdraw_payments()
            if m.proceeds():
                m.claim_proceeds()
        print()
        print("\n".join(task_table(submitter)))
        print()
        print("\n".join(balance_table(submitter, [(n, m.address) for n, m in people])))
        print()
        for n, m in people:
            delta = chain.balance(m.address) - start[m.address] + chain.gas_spent.get(m.address, 0)
            print(f"{n:<10} net change excluding gas: {delta / ETH:+.6f} ETH")
        acct = submitter.accounted()
        ok = (acct["stake_manager_balance"] == acct["stake_manager_accounted"]
              and acct["market_balance"] == acct["market_accounted"])
        print(f"\nsolvency: StakeManager {fmt_eth(acct['stake_manager_balance'])} held / "
              f"{fmt_eth(acct['stake_manager_accounted'])} accounted; TaskMarket {fmt_eth(acct['market_balance'])} "
              f"held / {fmt_eth(acct['market_accounted'])} accounted -> {'OK' if ok else 'MISMATCH'}")
        statuses = {tid: submitter.status(tid) for tid in (t1, t2)}
        return 0 if ok and statuses == {t1: TaskStatus.COMPLETED, t2: TaskStatus.FAILED} else 1

"""``verigrad demo``: the protocol's story on a fresh local chain.

Starts anvil, deploys (market, stake, soft-float one-step verifier, dispute game), stakes three
solvers, posts two tasks with the payment in escrow and runs the sealed-bid auctions. The first
winner trains honestly with the reproducible engine and is paid. The second one cheats: it corrupts
one scalar of the backward matmul at one step and commits the result. A verifier re-executes the
checkpoint intervals, finds the wrong one and challenges with a bond; the dispute game is played
move by move — checkpoints, steps, ops, the element's scalar program — down to the one operation the
contract recomputes. The cheater is slashed, the verifier rewarded, the submitter refunded, and every
balance and the solvency of every contract is printed at the end.
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
    with Anvil(accounts=8) as node:  # 0 deployer, 1 submitter, 2-4 solvers, 5 verifier
        chain = Chain.connect(node.rpc_url)
        keys = node.keys
        d = deploy_all(chain, keys[0], Params(unbonding_delay=3600))
        say(f"anvil on {node.rpc_url}; StakeManager {d.stake_manager}, TaskMarket {d.task_market}, "
            f"DisputeGame {d.dispute_game} (one-step verifier {d.step_verifier})")
        submitter = Market(chain, d, keys[1])
        solvers = {name: Market(chain, d, keys[i]) for name, i in (("alice", 2), ("bob", 3), ("carol", 4))}
        people = [("submitter", submitter), *solvers.items()]
        start = {m.address: chain.balance(m.address) for _, m in people}
        start[keys_address(keys[5])] = chain.balance(keys_address(keys[5]))
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

        w2 = next(n for n, s in solvers.items() if s.address == submitter.task(t2).solver)
        game = play_dishonest_task(chain, d, solvers[w2], w2, Market(chain, d, keys[5]), spec, steps, t2,
                                   Path(args.out), result)
        chain.advance(120)
        submitter.finalize(t1)
        say(f"task {t1}: challenge window closed without a dispute: solver paid, remainder refunded, stake unlocked")
        people.append(("victor", Market(chain, d, keys[5])))
        start.setdefault(keys_address(keys[5]), chain.balance(keys_address(keys[5])))

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
        bonds, credits = game.totals()
        held = chain.balance(game.game.address)
        game_ok = held == bonds + credits
        print(f"DisputeGame {fmt_eth(held)} held / {fmt_eth(bonds + credits)} accounted "
              f"-> {'OK' if game_ok else 'MISMATCH'}")
        statuses = {tid: submitter.status(tid) for tid in (t1, t2)}
        return 0 if ok and game_ok and statuses == {t1: TaskStatus.COMPLETED, t2: TaskStatus.FAILED} else 1


def keys_address(key: str) -> str:
    from eth_account import Account

    return str(Account.from_key(key).address)


def pick_fault(spec: Any, store_dir: Path, manifest: dict[str, Any], step: int, op: int) -> Any:
    """The cheater's fault: one scalar of op ``op`` at ``step`` whose corruption survives the step.

    A corrupted zero (e.g. the gradient of a dead hidden unit) comes out as a subnormal that the next
    op flushes to zero and changes nothing, so the cheater picks the first non-zero element.
    """
    from protocol.commit import LocalStore
    from protocol.trace import Replayer
    from protocol.train import Fault

    out = Replayer(spec, store=LocalStore(store_dir), manifest=manifest).op_trace(step).records[op].output
    flat = out.detach().reshape(-1)
    element = int((flat != 0).nonzero()[0].item())
    return Fault(step, op, element)


def play_dishonest_task(chain: Chain, d: Any, cheater: Market, name: str, verifier: Market, spec: Any, steps: int,
                        tid: int, out: Path, honest_result: Any) -> Any:
    """Task ``tid``: the winner cheats, the verifier finds it and wins the game; returns the game client."""
    import json

    from protocol.agents.db import AgentDB
    from protocol.agents.verifier import sample_intervals
    from protocol.chain.dispute import DisputeGame
    from protocol.commit import LocalStore
    from protocol.dispute.player import ChallengerPlayer, SolverPlayer, TraceSource
    from protocol.trace import Replayer
    from protocol.train import train

    run_spec = dataclasses.replace(spec, steps=steps)
    interval = spec.checkpoint_interval
    honest_dir = Path(honest_result.out_dir)
    honest_manifest = json.loads((honest_dir / "manifest.json").read_text())
    fault = pick_fault(run_spec, honest_dir, honest_manifest, step=min(steps - 1, interval + interval // 2 + 3), op=6)
    say(f"task {tid}: {name} cheats: trains with one corrupted scalar (step {fault.step}, op {fault.op} = the "
        f"backward matmul giving the output layer's weight gradient, element {fault.element})")
    store_dir = out / f"task-{tid}"
    result = train(run_spec, out_dir=store_dir, fault=fault, progress=False)
    uri = f"{store_dir.resolve().as_uri()}#{result.manifest_digest}"
    cheater.submit_result(tid, result.trace_root, steps, result.final_state_root, uri)
    say(f"task {tid}: {name} commits trace root 0x{result.trace_root.hex()[:16]}… (loss {result.losses[-1]:.3f})")

    manifest = json.loads((store_dir / "manifest.json").read_text())
    roots = [bytes.fromhex(c["state_root"][2:]) for c in manifest["checkpoints"]]
    store = LocalStore(store_dir)
    honest = TraceSource(Replayer(run_spec, store=store, manifest=manifest), roots, interval)
    secret = b"victor's secret, drawn before the result existed"
    block = chain.w3.eth.get_block("latest")["hash"]
    chosen = sample_intervals(secret.ljust(32, b"\0")[:32], bytes(block), len(roots) - 1, 1.0)
    anchor = None
    for i in chosen:
        iv = honest.replayer.interval(i * interval)
        same = iv.state_roots[-1] == roots[i + 1]
        say(f"victor re-executes steps {i * interval}..{(i + 1) * interval} from {name}'s checkpoint {i}: "
            + ("matches" if same else f"0x{iv.state_roots[-1].hex()[:12]}… where {name} committed "
               f"0x{roots[i + 1].hex()[:12]}…: MISMATCH"))
        if not same:
            anchor = i
            break
    if anchor is None:
        raise SystemExit("the verifier found no wrong interval: the fault did not change the run")

    game = DisputeGame(chain, d.dispute_game, verifier.key)
    gid = game.challenge(tid, anchor)
    say(f"victor challenges task {tid} with a bond of {fmt_eth(game.bond())} ETH, pinned at checkpoints "
        f"{anchor}..{anchor + 1}: game {gid}; payout frozen")
    own = TraceSource(Replayer(run_spec, fault=fault, store=store, manifest=manifest), roots, interval)
    solver_p = SolverPlayer(game.with_key(cheater.key), gid, AgentDB(":memory:"), own)
    challenger_p = ChallengerPlayer(game, gid, AgentDB(":memory:"), honest, anchor,
                                    lambda step, op: own.level3(step).trace.records[op - 1].output)
    moves = 0
    while not (solver_p.done() and challenger_p.done()):
        for who, p in ((name, solver_p), ("victor", challenger_p)):
            move = p.act()
            if move is not None:
                moves += 1
                say(f"  game {gid}: {who:<7} {describe(game, gid, move, interval)}")
    one = game.events(gid, "OneStepChecked")
    g = game.get(gid)
    if one:
        say(f"the contract recomputed step {one[0]['step']} of element {g.flatIndex} of op {g.op} at training "
            f"step {g.trainingStep}: 0x{bytes(one[0]['computed']).hex()[:16]}… where {name} claimed "
            f"0x{bytes(one[0]['claimed']).hex()[:16]}… -> {name} loses ({moves} moves)")
    say(f"task {tid}: {name} slashed ({fmt_eth(cheater.locked_stake())} ETH still locked), victor rewarded from the "
        "stake and its bond returned, the submitter's escrow refunded")
    return game


_LEVELS = {1: "checkpoints", 2: "steps", 3: "ops", 4: "scalar program"}


def describe(game: Any, gid: int, move: str, interval: int) -> str:
    """One line per move: what was sent and where the game stands after it."""
    g = game.get(gid)
    level, lo, hi = int(g.level), int(g.lo), int(g.hi)
    where = f"level {level} ({_LEVELS.get(level, '?')}) [{lo}, {hi}]"
    if move == "defendTrace":
        return f"proves S_0 and S_N against its trace root; {where}"
    if move == "reveal":
        positions, _ = game.revealed(gid)
        return f"reveals leaves {positions} with proofs; {where}"
    if move == "choose":
        return f"agrees with leaf {lo}, disagrees with leaf {hi}; {where}"
    if move == "commitSteps":
        return f"commits the {int(g.size)} state roots of checkpoint interval {int(g.checkpoint)}; {where}"
    if move == "commitOps":
        return (f"commits the {int(g.size)} op-log leaves of training step {int(g.trainingStep)}, linked to "
                f"S_{int(g.trainingStep)} and S_{int(g.trainingStep) + 1}; {where}")
    if move == "openOp":
        return f"opens op {int(g.op)}: its log grows {int(g.logSize)} -> {int(g.nextLogSize)} entries"
    if move == "nameOutput":
        return f"names element {int(g.flatIndex)} of the op's output (log entry {int(g.outputEntry)})"
    if move == "commitScalar":
        return f"commits the {int(g.size)} register states of that element's program; {where}"
    if move == "step":
        return f"has the contract execute step {lo} of the program: decided, solver lost = {bool(g.solverLost)}"
    return move

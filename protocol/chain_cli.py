"""``verigrad devnet``, ``verigrad deploy`` and ``verigrad status``."""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path
from typing import Any

from eth_account import Account

from protocol.chain.client import Chain, key_from_env
from protocol.chain.deploy import DEPLOYMENTS_DIR, Deployment, Params, deploy_all, load_params
from protocol.chain.devnet import Anvil
from protocol.chain.market import Market, TaskStatus

ETH = 10**18
# Short delays so every stage of a task is visible within minutes (same values as deploy/devnet.toml).
DEVNET_PARAMS = Params(unbonding_delay=3600, dispute_timeout=86400)


def fmt_eth(wei: int) -> str:
    return f"{wei / ETH:,.6f}"


def add_devnet_parser(sub: Any) -> None:
    p = sub.add_parser(
        "devnet",
        help="start a local anvil chain, deploy the contracts, keep running",
        description="Start anvil as a child process, deploy every contract, write "
        "deployments/<chainId>.json and run until Ctrl-C (which stops anvil cleanly).",
        epilog="example: verigrad devnet --port 8545 --block-time 1",
    )
    p.add_argument("--port", type=int, default=8545, help="JSON-RPC port (default 8545)")
    p.add_argument("--block-time", type=float, default=None, help="seconds per block (default: mine on demand)")
    p.add_argument("--deployments", default=str(DEPLOYMENTS_DIR), help="where to write the deployment file")
    p.add_argument("--params", default=None, help="protocol parameters, a TOML file (default: deploy/devnet.toml)")
    p.set_defaults(func=run_devnet)


def run_devnet(args: argparse.Namespace) -> int:
    stop = {"now": False}

    def on_signal(signum: int, frame: Any) -> None:
        stop["now"] = True

    with Anvil(port=args.port, block_time=args.block_time) as node:
        chain = Chain.connect(node.rpc_url)
        d = deploy_all(chain, node.keys[0], load_params(args.params) if args.params else DEVNET_PARAMS)
        path = d.save(Path(args.deployments))
        print(f"devnet: anvil on {node.rpc_url} (chain id {d.chain_id})")
        print(f"deployment written to {path}")
        print(f"  StakeManager   {d.stake_manager}\n  TaskMarket     {d.task_market}\n  Float32Arbiter {d.float32_arbiter}")
        print("funded development keys (never use them on a real chain):")
        for i, k in enumerate(node.keys[:5]):
            print(f"  [{i}] {Account.from_key(k).address}  {k}")
        print("Ctrl-C stops the chain.", flush=True)
        signal.signal(signal.SIGTERM, on_signal)
        try:
            while not stop["now"]:
                if node.proc is not None and node.proc.poll() is not None:
                    print(f"devnet: anvil exited with code {node.proc.returncode}")
                    return 1
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        print("devnet: stopping anvil")
    return 0


def add_deploy_parser(sub: Any) -> None:
    p = sub.add_parser(
        "deploy",
        help="deploy the contracts to any EVM JSON-RPC endpoint",
        description="Deploy StakeManager, TaskMarket and Float32Arbiter with the key in $VERIGRAD_KEY "
        "and write deployments/<chainId>.json.",
        epilog="example: VERIGRAD_KEY=0x... verigrad deploy --rpc http://127.0.0.1:8545",
    )
    p.add_argument("--rpc", required=True, help="JSON-RPC URL")
    p.add_argument("--params", default=None, help="protocol parameters, a TOML file (see deploy/)")
    p.add_argument("--deployments", default=str(DEPLOYMENTS_DIR))
    p.set_defaults(func=run_deploy)


def run_deploy(args: argparse.Namespace) -> int:
    params = load_params(args.params) if args.params else Params()  # bad input fails before any RPC
    key = key_from_env()
    chain = Chain.connect(args.rpc)
    d = deploy_all(chain, key, params)
    path = d.save(Path(args.deployments))
    print(f"deployed to chain {d.chain_id}: StakeManager {d.stake_manager}, TaskMarket {d.task_market}, "
          f"Float32Arbiter {d.float32_arbiter}; written to {path}")
    return 0


def add_status_parser(sub: Any) -> None:
    p = sub.add_parser(
        "status",
        help="tasks and balances as a table",
        description="Show every task of the deployment and the balances of the given addresses.",
        epilog="example: verigrad status --rpc http://127.0.0.1:8545 --address 0xabc...",
    )
    p.add_argument("--rpc", default=os.environ.get("VERIGRAD_RPC", "http://127.0.0.1:8545"))
    p.add_argument("--address", action="append", default=[], help="an account to show (repeatable)")
    p.add_argument("--deployments", default=str(DEPLOYMENTS_DIR))
    p.set_defaults(func=run_status)


def task_table(m: Market) -> list[str]:
    rows = [f"{'task':>4}  {'status':<16} {'solver':<42} {'payment':>12} {'agreed':>12}  spec"]
    for tid in range(1, m.task_count() + 1):
        t = m.task(tid)
        rows.append(
            f"{tid:>4}  {TaskStatus(t.status).name:<16} {t.solver:<42} {fmt_eth(t.payment):>12} "
            f"{fmt_eth(t.agreedPrice):>12}  {t.specURI}"
        )
    return rows


def balance_table(m: Market, labelled: list[tuple[str, str]]) -> list[str]:
    rows = [f"{'who':<12} {'address':<42} {'wallet ETH':>16} {'free stake':>12} {'locked':>10} "
            f"{'payable':>10} {'proceeds':>10}"]
    for label, addr in labelled:
        rows.append(
            f"{label:<12} {addr:<42} {fmt_eth(m.chain.balance(addr)):>16} {fmt_eth(m.free_stake(addr)):>12} "
            f"{fmt_eth(m.locked_stake(addr)):>10} {fmt_eth(m.payments(addr)):>10} {fmt_eth(m.proceeds(addr)):>10}"
        )
    return rows


def run_status(args: argparse.Namespace) -> int:
    chain = Chain.connect(args.rpc)
    d = Deployment.load(chain.chain_id, Path(args.deployments))
    m = Market(chain, d, "0x" + "11" * 32)  # read-only: the key never signs here
    print(f"chain {d.chain_id} at {args.rpc}; TaskMarket {d.task_market}")
    print("\n".join(task_table(m)))
    if args.address:
        print("\n".join(balance_table(m, [(f"#{i}", a) for i, a in enumerate(args.address)])))
    acct = m.accounted()
    print(f"solvency: StakeManager holds {fmt_eth(acct['stake_manager_balance'])} ETH, accounts for "
          f"{fmt_eth(acct['stake_manager_accounted'])}; TaskMarket holds {fmt_eth(acct['market_balance'])}, "
          f"accounts for {fmt_eth(acct['market_accounted'])}")
    return 0

"""``verigrad devnet``, ``verigrad deploy`` and ``verigrad status``."""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path
from typing import Any

from eth_account import Account

from protocol.chain.availability import Availability, Status
from protocol.chain.client import Chain, key_from_env
from protocol.chain.deploy import DEPLOYMENTS_DIR, Deployment, Params, deploy_all, load_params
from protocol.chain.devnet import Anvil
from protocol.chain.dispute import DisputeGame, GameStatus, Party, Phase
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
        print(f"  DisputeGame    {d.dispute_game}\n  Availability   {d.availability}")
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
        help="tasks, dispute games, availability demands and balances as tables",
        description="Show every task of the deployment, every dispute game (task, challenger, solver, level, "
        "whose turn, clocks left, bond, result), every availability demand (checkpoint, tensor, chunks, "
        "deadline, bond, outcome) and the balances of everyone who took part (submitters, solvers, "
        "challengers) and of any --address, then the solvency of every contract.",
        epilog="examples:\n  verigrad status --rpc http://127.0.0.1:8545\n"
        "  verigrad status --deployments runs/demo/deployments --address 0xabc...",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--rpc", default=os.environ.get("VERIGRAD_RPC", "http://127.0.0.1:8545"),
                   help="JSON-RPC URL (default $VERIGRAD_RPC or http://127.0.0.1:8545)")
    p.add_argument("--address", action="append", default=[], help="another account to show (repeatable)")
    p.add_argument("--deployments", default=str(DEPLOYMENTS_DIR), help="directory of deployment files")
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


_LEVELS = {1: "checkpoints", 2: "steps", 3: "ops", 4: "scalar"}


def _clock(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


def game_table(game: DisputeGame, names: dict[str, str] | None = None) -> list[str]:
    """One row per dispute game: who plays it, where it stands, whose clock runs and how it ended.

    Clocks are what each party has left now: the party to move is charged the time since the last
    move (``clockOf``), the other's clock stands still. The bond is the one posted when the game
    was opened (``GameCreated``).
    """
    names = names or {}
    created = {int(e["args"]["gameId"]): e["args"]
               for e in game.game.events.GameCreated().get_logs(from_block=0)}
    rows = [f"{'game':>4} {'task':>4}  {'challenger':<12} {'solver':<12} {'level':<15} {'turn':<10} "
            f"{'solver clock':>12} {'chall. clock':>12} {'bond':>10}  result"]
    for gid in range(1, game.game_count() + 1):
        g = game.get(gid)
        status = GameStatus(g.status)
        party, left = game.clock_of(gid)
        solver_left = left if party == Party.SOLVER else int(g.solverClock)
        challenger_left = left if party == Party.CHALLENGER else int(g.challengerClock)
        if status == GameStatus.IN_PROGRESS:
            result = f"in progress ({Phase(g.phase).name.lower()})"
        else:
            result = status.name
        level = f"{int(g.level)} {_LEVELS.get(int(g.level), '?')}"
        bond = int(created[gid]["bond"]) if gid in created else 0
        rows.append(
            f"{gid:>4} {int(g.taskId):>4}  {_who(g.challenger, names):<12} {_who(g.solver, names):<12} {level:<15} "
            f"{(party.name.lower() if party != Party.NONE else '-'):<10} {_clock(solver_left):>12} "
            f"{_clock(challenger_left):>12} {fmt_eth(bond):>10}  {result}"
        )
    return rows


def _who(address: str, names: dict[str, str]) -> str:
    return names.get(address, f"{address[:6]}…{address[-4:]}")


def participants(m: Market, game: DisputeGame | None = None,
                 avail: Availability | None = None) -> list[tuple[str, str]]:
    """(roles, address) of every submitter, winning solver and challenger, in order of appearance."""
    roles: dict[str, list[str]] = {}

    def add(address: str, role: str) -> None:
        if int(address, 16) != 0 and role not in roles.setdefault(address, []):
            roles[address].append(role)

    for tid in range(1, m.task_count() + 1):
        t = m.task(tid)
        add(t.submitter, "submitter")
        add(t.solver, "solver")
    if game is not None:
        for gid in range(1, game.game_count() + 1):
            add(game.get(gid).challenger, "challenger")
    if avail is not None:
        for cid in range(1, avail.challenge_count() + 1):
            add(avail.get(cid).challenger, "challenger")
    return [("+".join(r), a) for a, r in roles.items()]


def balance_table(m: Market, labelled: list[tuple[str, str]], game: DisputeGame | None = None) -> list[str]:
    """Wallets and every balance the contracts keep for each account (``game``: its bond credits too)."""
    extra = f" {'game credit':>12}" if game is not None else ""
    rows = [f"{'who':<20} {'address':<42} {'wallet ETH':>16} {'free stake':>12} {'locked':>10} "
            f"{'payable':>10} {'proceeds':>10}" + extra]
    for label, addr in labelled:
        credit = f" {fmt_eth(game.credit_of(addr)):>12}" if game is not None else ""
        rows.append(
            f"{label:<20} {addr:<42} {fmt_eth(m.chain.balance(addr)):>16} {fmt_eth(m.free_stake(addr)):>12} "
            f"{fmt_eth(m.locked_stake(addr)):>10} {fmt_eth(m.payments(addr)):>10} {fmt_eth(m.proceeds(addr)):>10}"
            + credit
        )
    return rows


def demand_table(avail: Availability, names: dict[str, str] | None = None) -> list[str]:
    """One row per availability demand: what was demanded, by whom, until when, and how it ended."""
    names = names or {}
    rows = [f"{'demand':>6} {'task':>4}  {'challenger':<12} {'solver':<12} {'checkpoint':>10} {'tensor':>6} "
            f"{'chunks':>9} {'deadline':>10} {'bond':>10}  result"]
    for cid in range(1, avail.challenge_count() + 1):
        c = avail.get(cid)
        status = Status(c.status)
        result = status.name.lower()
        if status == Status.ANSWERED:
            ev = avail.answered(cid)
            if ev is not None:
                result += f" ({len(ev['chunks'])} chunks on chain, {fmt_eth(int(ev['refund']))} ETH gas refunded)"
        first = int(c.firstChunk)
        rows.append(
            f"{cid:>6} {int(c.taskId):>4}  {_who(c.challenger, names):<12} {_who(c.solver, names):<12} "
            f"{int(c.checkpoint):>10} {int(c.tensor):>6} {f'{first}..{first + int(c.count) - 1}':>9} "
            f"{int(c.deadline):>10} {fmt_eth(int(c.bond)):>10}  {result}"
        )
    return rows


def solvency_lines(m: Market, game: DisputeGame | None = None,
                   avail: Availability | None = None) -> tuple[list[str], bool]:
    """Each contract's balance next to what it accounts for; True when every one matches to the wei."""
    acct = m.accounted()
    checks = [("StakeManager", acct["stake_manager_balance"], acct["stake_manager_accounted"],
               "free + locked + unbonding + proceeds + sink"),
              ("TaskMarket", acct["market_balance"], acct["market_accounted"], "escrow + bid bonds + payable")]
    if game is not None:
        bonds, credits = game.totals()
        checks.append(("DisputeGame", m.chain.balance(game.game.address), bonds + credits, "bonds + credits"))
    if avail is not None:
        bonds, credits = avail.totals()
        checks.append(("Availability", m.chain.balance(avail.contract.address), bonds + credits, "bonds + credits"))
    lines = [f"solvency: {name:<12} holds {fmt_eth(held):>14} ETH, accounts for {fmt_eth(owed):>14} ({what}) "
             f"-> {'OK' if held == owed else 'MISMATCH'}" for name, held, owed, what in checks]
    return lines, all(held == owed for _, held, owed, _ in checks)


def run_status(args: argparse.Namespace) -> int:
    chain = Chain.connect(args.rpc)
    d = Deployment.load(chain.chain_id, Path(args.deployments))
    reader = "0x" + "11" * 32  # read-only: the key never signs here
    m = Market(chain, d, reader)
    game = DisputeGame(chain, d.dispute_game, reader) if d.dispute_game else None
    avail = Availability(chain, d.availability, reader) if d.availability else None
    print(f"chain {d.chain_id} at {args.rpc}; TaskMarket {d.task_market}"
          + (f"; DisputeGame {d.dispute_game}" if game is not None else "")
          + (f"; AvailabilityChallenge {d.availability}" if avail is not None else ""))
    print("\ntasks")
    print("\n".join(task_table(m)))
    labelled = participants(m, game, avail)
    if game is not None:
        print("\ngames")
        print("\n".join(game_table(game)))
    if avail is not None and avail.challenge_count() > 0:
        print("\navailability demands")
        print("\n".join(demand_table(avail)))
    known = {a.lower() for _, a in labelled}
    labelled += [("address", a) for a in args.address if a.lower() not in known]
    if labelled:
        print("\nbalances")
        print("\n".join(balance_table(m, labelled, game)))
    lines, _ = solvency_lines(m, game, avail)
    print()
    print("\n".join(lines))
    return 0

"""``verigrad solver``, ``verigrad verifier`` and ``verigrad submit``: the daemons and the client.

Both daemons play the dispute game when the deployment has one (``deploy_all`` deploys it): the
solver defends every game opened on its results, the verifier challenges a wrong interval it found
and plays the game to its end."""

from __future__ import annotations

import argparse
import os
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from protocol.agents.common import ETH, Stopper, logfmt, make_logger
from protocol.agents.db import AgentDB
from protocol.chain.client import Chain, key_from_env
from protocol.chain.deploy import DEPLOYMENTS_DIR, Deployment
from protocol.chain.market import Market
from protocol.errors import VerigradError


def eth_amount(text: str) -> int:
    """'1.5' (ETH) -> wei, with a clear error for anything else."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount in ETH (e.g. 0.5)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: amounts cannot be negative")
    return int(value * ETH)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rpc", default=os.environ.get("VERIGRAD_RPC", "http://127.0.0.1:8545"),
                   help="JSON-RPC URL (default $VERIGRAD_RPC or http://127.0.0.1:8545)")
    p.add_argument("--deployments", default=str(DEPLOYMENTS_DIR), help="directory of deployment files")
    p.add_argument("--key-env", default="VERIGRAD_KEY", help="environment variable holding the private key")
    p.add_argument("-v", "--verbose", action="store_true")


def _connect(args: argparse.Namespace) -> tuple[Chain, Deployment, str]:
    key = key_from_env(args.key_env)
    chain = Chain.connect(args.rpc)
    return chain, Deployment.load(chain.chain_id, Path(args.deployments)), key


# ---------------------------------------------------------------------------------------- solver
def add_solver_parser(sub: Any) -> None:
    p = sub.add_parser(
        "solver", help="run a solver daemon: stake, bid, train, commit, defend, claim",
        description="A long-running solver. Needs an RPC URL, a key in $VERIGRAD_KEY and an artifact directory; "
        "serves the artifacts over HTTP unless --no-serve.",
        epilog="examples:\n  VERIGRAD_KEY=0x... verigrad solver --store runs/solver --db runs/solver.db\n"
        "  verigrad solver --inject 3:17:5     (a cheating solver: corrupts one scalar, for dispute drills)\n"
        "  verigrad solver --lazy initial      (a lazy one: commits the initial state as its result)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.add_argument("--store", default="runs/solver/store", help="artifact directory")
    p.add_argument("--db", default="runs/solver/state.db", help="sqlite file for the daemon's state")
    p.add_argument("--serve-port", type=int, default=0, help="HTTP port for the artifacts (0: any free port)")
    p.add_argument("--no-serve", action="store_true", help="publish file:// URIs instead of serving over HTTP")
    p.add_argument("--stake", type=eth_amount, default=2 * ETH, help="ETH to keep staked (default 2)")
    p.add_argument("--price-fraction", type=float, default=0.5, help="share of the payment to ask (default 0.5)")
    p.add_argument("--inject", default=None, metavar="STEP:OP:ELEMENT",
                   help="corrupt one scalar of one op at one step (a dishonest solver)")
    cheat = p.add_argument_group("dishonest modes (for dispute drills; see protocol/agents/dishonest.py)")
    cheat.add_argument("--corrupt-step", type=int, default=None, metavar="S",
                       help="alter one scalar of the state after step S (outside any op) and train on from it")
    cheat.add_argument("--corrupt-checkpoint", type=int, default=None, metavar="N",
                       help="alter one scalar of the state committed as checkpoint N (1 = after c steps)")
    cheat.add_argument("--lazy", choices=["skip", "initial"], default=None,
                       help="skip every odd step, or do no step and commit the initial state as the result")
    cheat.add_argument("--withhold", nargs="?", const="offchain", choices=["offchain", "all"], default=None,
                       help="commit as usual but serve none of the artifacts (an empty store answers); "
                            "'all' also leaves availability demands on chain unanswered")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between ticks")
    p.set_defaults(func=run_solver)


def run_solver(args: argparse.Namespace) -> int:
    from protocol.agents.http_store import StoreServer
    from protocol.agents.solver import Solver, SolverConfig
    from protocol.commit.store import LocalStore

    fault = None
    if args.inject:
        from protocol.train import Fault

        fault = Fault.parse(args.inject)
    log = make_logger("solver", args.verbose)
    chain, deployment, key = _connect(args)
    store = LocalStore(args.store)
    # A withholding solver points its URIs at a store that stays empty: they answer, with nothing.
    served = store if not args.withhold else LocalStore(Path(args.store).resolve().parent /
                                                        (Path(args.store).name + "-withheld"))
    server = None
    if args.no_serve:
        url = Path(served.root).resolve().as_uri()
    else:
        server = StoreServer(served, port=args.serve_port).start()
        url = server.url
    cfg = SolverConfig(store_dir=Path(args.store), store_url=url, stake=args.stake,
                       price_fraction=args.price_fraction, poll_interval=args.poll, fault=fault,
                       corrupt_step=args.corrupt_step, corrupt_checkpoint=args.corrupt_checkpoint, lazy=args.lazy,
                       withhold=args.withhold)
    solver = Solver(chain, deployment, key, AgentDB(args.db), cfg, log)
    cheating = fault is not None or args.withhold is not None or args.lazy is not None or args.corrupt_step is not None or (
        args.corrupt_checkpoint is not None)
    log.info(logfmt(event="started", address=solver.me, rpc=args.rpc, artifacts=url, cheating=cheating))
    try:
        solver.run(Stopper().install())
    finally:
        if server is not None:
            server.stop()
        log.info(logfmt(event="stopped"))
    return 0


# ---------------------------------------------------------------------------------------- verifier
def add_verifier_parser(sub: Any) -> None:
    p = sub.add_parser(
        "verifier", help="run a verifier daemon: check results, re-execute samples, challenge",
        description="A long-running verifier. Checks every submitted result's artifacts for availability "
        "and consistency with the chain, re-executes a secretly sampled share of its checkpoint intervals, "
        "and on a mismatch challenges with the game's bond and plays the dispute game to its end "
        "(then withdraws the bond and claims its share of the slash). A result whose artifacts cannot be "
        "fetched is replayed whole: if it is wrong, a game; if it is right, an availability demand for a "
        "secretly drawn range of its data, which the solver answers on chain or is slashed.",
        epilog="examples:\n  VERIGRAD_KEY=0x... verigrad verifier --db runs/verifier.db\n"
        "  verigrad verifier --sample-rate 1.0     (re-execute every interval)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.add_argument("--db", default="runs/verifier/state.db", help="sqlite file for the daemon's state")
    p.add_argument("--sample-rate", type=float, default=0.25, help="share of intervals to re-execute (0, 1]")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between ticks")
    p.set_defaults(func=run_verifier)


def run_verifier(args: argparse.Namespace) -> int:
    from protocol.agents.verifier import Verifier, VerifierConfig

    if not 0 < args.sample_rate <= 1:
        raise VerigradError(f"--sample-rate must be in (0, 1], got {args.sample_rate}")
    log = make_logger("verifier", args.verbose)
    chain, deployment, key = _connect(args)
    v = Verifier(chain, deployment, key, AgentDB(args.db),
                 VerifierConfig(sample_rate=args.sample_rate, poll_interval=args.poll), log)
    log.info(logfmt(event="started", address=v.m.address, rpc=args.rpc, sample_rate=args.sample_rate))
    try:
        v.run(Stopper().install())
    finally:
        log.info(logfmt(event="stopped"))
    return 0


# ---------------------------------------------------------------------------------------- submit
def add_submit_parser(sub: Any) -> None:
    p = sub.add_parser(
        "submit", help="post a training task with the payment in escrow, follow it, verify the result",
        description="Post a task from a spec (a reference name or a TOML path), then follow it until it "
        "settles and verify the returned model against the committed roots.",
        epilog="examples:\n  VERIGRAD_KEY=0x... verigrad submit digits-mlp --payment 1 --stake 0.5\n"
        "  verigrad submit my-spec.toml --payment 2 --stake 1 --no-follow\n"
        "  verigrad submit digits-mlp --payment 1 --stake 0.5 --demand-data   (get the model even from a "
        "solver that serves nothing)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.add_argument("spec", help="reference spec name (digits-mlp, tiny-gpt) or a path to a spec TOML")
    p.add_argument("--payment", type=eth_amount, required=True, help="ETH escrowed as the payment")
    p.add_argument("--stake", type=eth_amount, required=True, help="ETH the winning solver must lock")
    p.add_argument("--bid-bond", type=eth_amount, default=ETH // 100, help="ETH per sealed bid (default 0.01)")
    for name, default in (("bid-window", 30), ("reveal-window", 30), ("training-window", 3600),
                          ("challenge-window", 60)):
        p.add_argument(f"--{name}", type=int, default=default, help=f"seconds (default {default})")
    p.add_argument("--no-follow", action="store_true", help="post and exit")
    p.add_argument("--demand-data", action="store_true",
                   help="if the model cannot be fetched while the challenge window is open, demand it on chain "
                        "(the solver answers with every chunk or is slashed); read it back from the chain")
    p.set_defaults(func=run_submit)


def run_submit(args: argparse.Namespace) -> int:
    from protocol.agents.submitter import (
        demand_model,
        follow,
        model_from_chain,
        post,
        settle_demands,
        verify_result,
    )
    from protocol.chain.market import TaskStatus

    if args.payment == 0:
        raise VerigradError("--payment must be positive")
    log = make_logger("submitter", args.verbose)
    chain, deployment, key = _connect(args)
    m = Market(chain, deployment, key)
    windows = {"bid_window": args.bid_window, "reveal_window": args.reveal_window,
               "training_window": args.training_window, "challenge_window": args.challenge_window}
    tid = post(m, args.spec, args.payment, args.stake, args.bid_bond, windows)
    log.info(logfmt(event="posted", task=tid, spec=args.spec, payment=args.payment / ETH))
    print(tid, flush=True)
    if args.no_follow:
        return 0
    avail = None
    if args.demand_data:
        from protocol.chain.availability import Availability

        if not deployment.availability:
            raise VerigradError("--demand-data needs a deployment with an AvailabilityChallenge "
                                "(redeploy with `verigrad deploy`)")
        avail = Availability(chain, deployment.availability, key)
    demanded = {"any": False}

    def on_result() -> None:
        if avail is None:
            return
        try:
            verify_result(m, tid)
        except VerigradError as exc:
            log.warning(logfmt(event="model_unavailable", task=tid, reason=str(exc), action="demanding it on chain"))
            demand_model(m, avail, tid, log)
            demanded["any"] = True

    def on_tick() -> None:
        if avail is not None and demanded["any"]:
            settle_demands(m, avail, tid, log)  # an unanswered demand is claimed: the solver is slashed

    status = follow(m, tid, log, on_result=on_result, on_tick=on_tick)
    if status == TaskStatus.COMPLETED:
        if demanded["any"] and avail is not None:
            tensors = model_from_chain(m, avail, tid)
            log.info(logfmt(event="verified_from_chain", task=tid, tensors=len(tensors)))
        else:
            v = verify_result(m, tid)
            log.info(logfmt(event="verified", task=tid, final_state_root="0x" + v.final_state_root.hex(),
                            tensors=len(v.tensors)))
    if m.payments() > 0:
        m.withdraw_payments()
    if avail is not None and demanded["any"]:
        # The bonds come back (less each answer's gas) once every demand has ended.
        end = time.monotonic() + 600
        while not settle_demands(m, avail, tid, log) and time.monotonic() < end:
            time.sleep(1)
        if avail.credit_of() > 0:
            avail.withdraw()
            log.info(logfmt(event="bonds_withdrawn", task=tid))
    return 0 if status == TaskStatus.COMPLETED else 1

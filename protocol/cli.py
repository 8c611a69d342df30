"""The ``verigrad`` command.

Subcommands live next to what they drive; this module only wires them together and turns any
:class:`~protocol.errors.VerigradError` into a one-line message and exit code 2 (no traceback for
errors the user can fix).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from protocol.errors import VerigradError

EPILOG = """examples:
  verigrad devnet                      start a local chain, deploy, keep running (Ctrl-C stops)
  verigrad deploy --rpc http://127.0.0.1:8545     deploy with the key in $VERIGRAD_KEY
  verigrad status --rpc http://127.0.0.1:8545     tasks, dispute games and balances as tables
  verigrad train digits-mlp --steps 200 --json    train a reference spec, print the trace root
  verigrad demo                        the whole story on a fresh devnet, played by daemon processes
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verigrad",
        description="Verifiable ML training: stake, bid, train, commit, challenge, bisect, slash.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    registrars: list[Callable[[Any], object]] = []

    from protocol import chain_cli

    registrars += [chain_cli.add_devnet_parser, chain_cli.add_deploy_parser, chain_cli.add_status_parser]
    try:
        from protocol import train_cli
    except ImportError:  # the training engine is optional for chain-only installs
        train_cli = None  # type: ignore[assignment]
    if train_cli is not None and hasattr(train_cli, "add_train_parser"):
        registrars.append(train_cli.add_train_parser)
    from protocol import agents_cli, demo

    registrars += [agents_cli.add_solver_parser, agents_cli.add_verifier_parser, agents_cli.add_submit_parser]

    registrars.append(demo.add_demo_parser)
    for register in registrars:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except VerigradError as exc:
        print(f"verigrad {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

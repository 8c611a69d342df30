"""``verigrad train SPEC``: train a task spec with RepOps and print its trace root.

``SPEC`` is a shipped spec name (``digits-mlp``, ``tiny-gpt``) or a path to a spec file.
With ``--json`` the last line of output is one JSON object with at least ``trace_root``, ``steps``,
``final_state_root`` and ``loss`` (and ``accuracy`` for classifiers). Errors (a malformed spec, a bad
``--inject``, a missing CUDA device) print one line naming the problem and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from protocol.errors import VerigradError


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``train`` subcommand on a ``verigrad`` subparsers object."""
    p = subparsers.add_parser(
        "train",
        help="train a task spec reproducibly and print its trace root",
        description="Train a task spec with reproducible operators, commit a checkpoint every "
        "checkpoint_interval steps, and print the checkpoint-trace root.",
    )
    p.add_argument("spec", metavar="SPEC", help="spec name (digits-mlp, tiny-gpt) or path to a .toml")
    p.add_argument("--steps", type=int, default=None, help="train this many steps instead of the spec's")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="artifact directory for checkpoints and the manifest (default: write nothing)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to train")
    p.add_argument("--inject", metavar="STEP:OP:ELEMENT", default=None,
                   help="corrupt one element of one op's output at one step (flips its top mantissa bit)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=run_train)
    return p


def run_train(args: argparse.Namespace) -> int:
    """Run the ``train`` subcommand; returns the exit status."""
    from protocol.spec import load_spec
    from protocol.train import Fault, train

    spec = load_spec(args.spec)
    if args.steps is not None:
        spec = spec.with_steps(args.steps)
    fault = Fault.parse(args.inject) if args.inject else None
    result = train(spec, out_dir=args.out, device=args.device, fault=fault)
    summary = result.summary()
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        extra = f", accuracy {summary['accuracy']:.4f}" if "accuracy" in summary else ""
        print(f"{spec.name}: {result.steps} steps on {result.device} in {result.seconds:.1f}s, "
              f"loss {summary['first_loss']:.4f} -> {summary['loss']:.4f}{extra}")
        print(f"final state root {summary['final_state_root']}")
        if result.out_dir is not None:
            print(f"checkpoints and manifest in {result.out_dir} (manifest {result.manifest_digest})")
        print(summary["trace_root"])
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m protocol.train_cli``), same behaviour as ``verigrad train``."""
    parser = argparse.ArgumentParser(prog="verigrad")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parser(sub)
    args = parser.parse_args(argv)
    try:
        return run_train(args)
    except VerigradError as exc:
        print(f"verigrad train: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""A full dispute end to end on a real anvil: wall time and gas against the size of the trace.

Why: a verifier must be able to take a cheater to the one-step check quickly and cheaply, whatever
the size of the run; the goal is ``wall_s`` <= 30 s for the default demo spec (opML reports under two
minutes for its challenge on a local chain).

What is played, for each (steps, checkpoint interval) of the digits-mlp reference spec (the default
demo spec is 300 steps every 50): real training with the reproducible engine, twice: honestly (the
task's cost, the first baseline) and with one corrupted scalar of op 6 of a step in the middle
checkpoint interval (the backward matmul that gives the output layer's weight gradient; the first
non-zero element of the honest output). The cheating run is posted, auctioned and submitted on a
fresh deployment (the contracts ``verigrad demo`` deploys, the default game of degree 4). The
verifier re-executes the intervals in order until one does not end at the solver's checkpoint
(``detect_s``), then re-executes that interval once more on its own (``reexec_s``, the second
baseline), and the project's Python players (``protocol.dispute.player``) play both sides from the
challenge to the contract's one-step check, settle and withdraw (``protocol.dispute.record``).

``wall_s``: from the challenge transaction to the last withdrawal, everything included: every move
of both players with the replay each needs (level 2's state roots of the interval, level 3's op trace
of the step, level 4's scalar program of the element, built by each party from its own run), the
transactions and their receipts, the op registration, the one-step check, ``resolve`` (slash, refund,
bond) and the withdrawals of the bond, the slash share and the submitter's refund, and the reads of
the chain this record makes after each move. Training and the search for the wrong interval come
before the challenge and are not included. ``wall_split_s`` divides it: ``rpc``, the parties'
JSON-RPC requests (anvil executing and mining their transactions, their reads of the game);
``local``, their own work (replays, leaves and proofs, signing); ``record``, this record's reads. ``gas_total``: the sum of the receipts' ``gasUsed`` of
every transaction of the two parties over the same span (the submitter's refund withdrawal is not
theirs and is left out). ``moves``: the parties' actions in that span (a move may send two
transactions: the op's registration and ``commitScalar``).

Usage: ``python benchmarks/dispute_e2e.py [--sizes 20:5,300:50,...] [--out DIR]``; prints one line per
size and per move of the default spec's game, and a JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from protocol.chain.client import Chain  # noqa: E402
from protocol.chain.devnet import Anvil  # noqa: E402
from protocol.chain.dispute import GameStatus  # noqa: E402
from protocol.dispute.record import DisputeRecord, post_task, record_dispute, sized_spec, train_runs  # noqa: E402
from protocol.spec import load_spec  # noqa: E402
from protocol.train import train  # noqa: E402

DEFAULT_SPEC = "digits-mlp"
#: (steps, checkpoint interval); the spec's own (300, 50) is the default demo spec.
SIZES = [(20, 5), (300, 10), (300, 50), (300, 150), (1000, 100), (3000, 300)]
GOAL_WALL_S = 30.0


def row(rec: DisputeRecord) -> dict[str, Any]:
    s = rec.summary()
    s.pop("spec")
    return s


def print_moves(rec: DisputeRecord) -> None:
    print(f"moves of the {rec.spec.steps}-step game (interval {rec.spec.checkpoint_interval}), fault "
          f"{rec.fault.step}:{rec.fault.op}:{rec.fault.element}:")
    for i, m in enumerate(rec.moves):
        where = f"L{m.level} [{m.lo},{m.hi}]" if m.level else "-"
        extra = f" revealed {m.positions}" if m.positions else ""
        fns = "+".join(t.function for t in m.txs)
        print(f"  {i:2d} {m.party:<10} {m.name:<13} {where:<13} {m.gas:>9,d} gas {m.seconds:6.2f} s  {fns}{extra}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=",".join(f"{s}:{c}" for s, c in SIZES),
                    help="comma-separated STEPS:INTERVAL of the trace sizes to play (default %(default)s)")
    ap.add_argument("--out", default=None, help="artifact directory (default: a temporary one)")
    args = ap.parse_args()
    sizes = [tuple(int(x) for x in item.split(":")) for item in args.sizes.split(",")]
    base = load_spec(DEFAULT_SPEC)
    default = (base.steps, base.checkpoint_interval)
    t_start = time.time()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="dispute_e2e-"))
    records: dict[tuple[int, int], DisputeRecord] = {}
    train(sized_spec(base, 4, 2), progress=False)  # warm-up: loads the data and the C++ kernels once
    with Anvil(accounts=4) as node:
        chain = Chain.connect(node.rpc_url)
        for steps, interval in sizes:
            spec = sized_spec(base, steps, interval)
            runs = train_runs(spec, out / f"{steps}-{interval}")
            task = post_task(chain, node.keys, runs)  # fresh contracts: every game pays the same cold slots
            rec = record_dispute(task)
            if rec.status != GameStatus.CHALLENGER_WON or rec.training_step != runs.fault.step \
                    or rec.op != runs.fault.op + 1 or rec.element != runs.fault.element:
                raise SystemExit(f"{steps}:{interval}: the game did not end at the injected fault: {rec.summary()}")
            records[(steps, interval)] = rec

    head = (f"{'steps':>5} {'every':>5} {'L1':>4} {'L2':>4} {'L3':>4} {'L4':>4} {'moves':>5} {'gas_total':>10} "
            f"{'wall_s':>7} {'rpc_s':>6} {'local_s':>7} {'train_s':>7} {'reexec_s':>8} {'detect_s':>8} {'wall/train':>10} {'wall/reexec':>11}")
    print(head)
    for (steps, interval), rec in records.items():
        s = rec.summary()
        lv = list(s["leaves"].values())
        mark = "  <- default demo spec" if (steps, interval) == default else ""
        print(f"{steps:>5} {interval:>5} {lv[0]:>4} {lv[1]:>4} {lv[2]:>4} {lv[3]:>4} {s['moves']:>5} "
              f"{s['gas_total']:>10,d} {s['wall_s']:>7.2f} {s['wall_split_s']['rpc']:>6.2f} {s['wall_split_s']['local']:>7.2f} "
              f"{s['train_s']:>7.2f} {s['reexec_s']:>8.2f} "
              f"{s['detect_s']:>8.2f} {s['wall_over_train']:>10.2f} {s['wall_over_reexec']:>11.2f}{mark}")
    main_rec = records.get(default) or next(iter(records.values()))
    print_moves(main_rec)
    s = main_rec.summary()
    result = {
        "spec": f"{DEFAULT_SPEC} {main_rec.spec.steps} steps, checkpoint every {main_rec.spec.checkpoint_interval}",
        "wall_s": s["wall_s"],
        "gas_total": s["gas_total"],
        "wall_split_s": s["wall_split_s"],
        "moves": s["moves"],
        "transactions": s["transactions"],
        "gas_solver": s["gas_solver"],
        "gas_challenger": s["gas_challenger"],
        "gas_max_move": s["gas_max_move"],
        "train_s": s["train_s"],
        "reexec_s": s["reexec_s"],
        "detect_s": s["detect_s"],
        "wall_over_train": s["wall_over_train"],
        "wall_over_reexec": s["wall_over_reexec"],
        "decided_at": s["decided_at"],
        "goal_wall_s": GOAL_WALL_S,
        "rows": [row(r) for r in records.values()],
        "seconds": round(time.time() - t_start, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""What availability demands cost on a real anvil, against the honest settlement of the same task.

Why: a verifier or a submitter that cannot fetch a result's data demands it on chain
(contracts/src/AvailabilityChallenge.sol); the answer's gas is paid from the demand's bond, so an
answer must cost what the contract refunds, and getting a whole model must stay affordable.

What is measured, over one digits-mlp run (the spec's own 300 steps, a checkpoint every 50) posted,
auctioned and submitted on a fresh deployment:

* ``settlement_gas`` (the baseline): ``submitResult`` + ``finalize`` of the honest path;
* ``challenge_gas``, and ``answer_gas`` for 1, 8 and 32 chunks of the final state's first-layer weight,
  with ``refund_over_cost``: the refund the contract credited over the receipt's gas × base fee;
* ``claim_gas``: ``claimUnanswered`` of a demand nobody answers (it slashes; on a second task);
* ``model_*``: the submitter's ``--demand-data`` path on a third task: every chunk of the final
  parameters demanded (``protocol.agents.submitter.demand_model``), each answered from the solver's
  store, the model rebuilt from the chain and checked (``model_from_chain``); gas of all demands and
  answers, and wall time from the first demand to the rebuilt model.

Usage: ``python benchmarks/availability_cost.py``; prints one line per measurement and a JSON object
as the last line.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from protocol.agents.solver import initial_root  # noqa: E402
from protocol.agents.submitter import demand_model, model_from_chain  # noqa: E402
from protocol.chain.availability import Availability, chunk_answer, state_layout  # noqa: E402
from protocol.chain.client import Chain  # noqa: E402
from protocol.chain.deploy import Params, deploy_all  # noqa: E402
from protocol.chain.devnet import Anvil  # noqa: E402
from protocol.chain.market import Market, TaskParams, sole_bidder_task  # noqa: E402
from protocol.commit import LocalStore  # noqa: E402
from protocol.dispute.layout import task_graph_root  # noqa: E402
from protocol.spec import load_spec, spec_hash  # noqa: E402
from protocol.trace import Replayer  # noqa: E402
from protocol.train import train  # noqa: E402

ETH = 10**18
WINDOW = 600


def main() -> int:
    spec = load_spec("digits-mlp")
    out = Path(tempfile.mkdtemp(prefix="avail-bench-"))
    result = train(spec, out_dir=out, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    roots = [bytes.fromhex(c["state_root"][2:]) for c in manifest["checkpoints"]]
    final = [v.detach().cpu() for v in Replayer(spec, store=LocalStore(out), manifest=manifest)
             .state_at(spec.steps).values()]
    k = len(roots) - 1
    layout = state_layout(spec)
    tp = TaskParams(spec_hash=bytes.fromhex(spec_hash(spec)[2:]), initial_state_root=initial_root(spec),
                    op_graph_root=task_graph_root(spec), spec_uri="builtin:digits-mlp", required_stake=ETH // 2,
                    bid_bond=ETH // 100, bid_window=60, reveal_window=60, training_window=3600,
                    challenge_window=3600, steps=spec.steps, checkpoint_interval=spec.checkpoint_interval)
    report: dict[str, Any] = {"spec": spec.name, "steps": spec.steps, "checkpoints": len(roots)}
    with Anvil() as node:
        chain = Chain.connect(node.rpc_url)
        keys = node.keys
        d = deploy_all(chain, keys[0], Params(unbonding_delay=3600, dispute_timeout=4 * WINDOW,
                                              dispute_clock=WINDOW, availability_window=WINDOW))
        sub, solver = Market(chain, d, keys[1]), Market(chain, d, keys[2])
        ch, ans = Availability(chain, d.availability, keys[4]), Availability(chain, d.availability, keys[2])
        solver.deposit(3 * ETH // 2)

        def task() -> int:
            tid = sole_bidder_task(sub, solver, tp, ETH, ETH // 2)
            return tid

        def gas(receipt: Any) -> int:
            return int(receipt["gasUsed"])

        def base_fee(receipt: Any) -> int:
            return int(chain.w3.eth.get_block(receipt["blockNumber"])["baseFeePerGas"])

        # The baseline: an honest result, submitted and finalized.
        t1 = task()
        settle = gas(solver.submit_result(t1, result.trace_root, spec.steps, result.final_state_root, "http://x/"))
        chain.advance(tp.challenge_window)
        settle += gas(solver.finalize(t1))
        report["settlement_gas"] = settle
        print(f"baseline: submitResult + finalize {settle:,} gas")

        # Demands answered, by size.
        t2 = task()
        solver.submit_result(t2, result.trace_root, spec.steps, result.final_state_root, "http://x/")
        report["answer_gas"], report["refund_over_cost"] = {}, {}
        for count in (1, 8, 32):
            r = ch.challenge_receipt(t2, k, 0, 0, count, layout)
            report["challenge_gas"] = gas(r)
            cid = ch.challenge_count()
            r = ans.answer(cid, chunk_answer(roots, k, final, 0, 0, count))
            ev = ch.answered(cid)
            assert ev is not None
            ratio = int(ev["refund"]) / (gas(r) * base_fee(r))
            report["answer_gas"][str(count)] = gas(r)
            report["refund_over_cost"][str(count)] = round(ratio, 3)
            print(f"answer of {count:>2} chunks: {gas(r):,} gas, refund / cost {ratio:.3f}, "
                  f"{gas(r) / settle:.2f}x the settlement")
        print(f"challenge: {report['challenge_gas']:,} gas")

        # A demand left unanswered: the claim slashes.
        r = ch.challenge_receipt(t2, k, 1, 0, 1, layout)
        chain.advance(WINDOW)
        r = ch.claim_unanswered(ch.challenge_count())
        report["claim_gas"] = gas(r)
        print(f"claimUnanswered (slash): {gas(r):,} gas")

        # The submitter's whole model from the chain.
        t3 = task()
        solver.submit_result(t3, result.trace_root, spec.steps, result.final_state_root, "http://x/")
        mine = Availability(chain, d.availability, keys[1])
        before = chain.w3.eth.block_number
        started = time.perf_counter()
        ids = demand_model(sub, mine, t3, logging.getLogger("bench"))
        for cid in ids:
            c = mine.get(cid)
            ans.answer(cid, chunk_answer(roots, k, final, int(c.tensor), int(c.firstChunk), int(c.count)))
        model = model_from_chain(sub, mine, t3)
        wall = time.perf_counter() - started
        total = 0
        for n in range(before + 1, chain.w3.eth.block_number + 1):
            for tx in chain.w3.eth.get_block(n)["transactions"]:
                total += int(chain.w3.eth.get_transaction_receipt(tx)["gasUsed"])
        report.update(model_demands=len(ids), model_tensors=len(model), model_gas_total=total,
                      model_wall_s=round(wall, 2), model_gas_over_settlement=round(total / settle, 2))
        print(f"model from chain: {len(ids)} demands, {len(model)} tensors, {total:,} gas "
              f"({total / settle:.1f}x the settlement), {wall:.1f} s")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

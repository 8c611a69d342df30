"""Availability demands on anvil over a real training run (contracts/src/AvailabilityChallenge.sol).

A digits-MLP task of 10 steps (checkpoints every 5) is trained and its result submitted. A challenger
demands chunks of one tensor of one checkpoint; the answer built from the solver's store with
:func:`protocol.chain.availability.chunk_answer` puts exactly those bytes on chain, is paid its gas
from the bond and the task completes; an answer from another checkpoint is refused with the typed
error; a demand left unanswered past its window slashes the solver. Every balance is checked to the
wei, gas included.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from protocol.agents.availability import choose_chunks
from protocol.agents.solver import initial_root
from protocol.chain import errors
from protocol.chain.availability import MAX_CHUNKS, Availability, Status, chunk_answer, state_layout
from protocol.chain.client import Chain
from protocol.chain.deploy import Params, deploy_all
from protocol.chain.market import Market, TaskParams, TaskStatus, sole_bidder_task
from protocol.commit import LocalStore, TensorCommitment
from protocol.commit.tensor import tensor_bytes
from protocol.dispute.layout import task_graph_root
from protocol.spec import load_spec, spec_hash
from protocol.trace import Replayer
from protocol.train import train

pytestmark = pytest.mark.slow
ETH = 10**18
STAKE = ETH // 2
PAYMENT = ETH
BOND = ETH // 10
WINDOW = 600  # seconds an answer has
CHALLENGE_WINDOW = 3600
DIGITS = Path(__file__).resolve().parents[1] / "protocol" / "specs" / "digits-mlp.toml"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("avail")
    text = DIGITS.read_text()
    text = re.sub(r"(?m)^steps = \d+", "steps = 10", text)
    text = re.sub(r"(?m)^checkpoint_interval = \d+", "checkpoint_interval = 5", text)
    text = re.sub(r'(?m)^name = ".*"', 'name = "digits-avail"', text, count=1)
    path = d / "digits-avail.toml"
    path.write_text(text)
    spec = load_spec(str(path))
    result = train(spec, out_dir=d / "store", progress=False)
    return {"spec_path": path, "spec": spec, "result": result, "store": d / "store",
            "layout": state_layout(spec), "graph_root": task_graph_root(spec)}


@dataclass
class World:
    chain: Chain
    submitter: Market
    solver: Market
    challenger: Market
    task_id: int
    avail: Availability  # the challenger's
    answerer: Availability  # the solver's
    roots: list[bytes]
    replayer: Replayer
    manifest: dict[str, Any]


def make_world(chain: Chain, run: dict[str, Any]) -> World:
    keys = chain.dev_keys
    params = Params(unbonding_delay=3600, dispute_timeout=4 * WINDOW, dispute_clock=WINDOW,
                    availability_bond=BOND, availability_window=WINDOW)
    d = deploy_all(chain, keys[0], params)
    submitter = Market(chain, d, keys[1])
    solver, challenger = submitter.with_key(keys[2]), submitter.with_key(keys[4])
    spec, result = run["spec"], run["result"]
    tp = TaskParams(spec_hash=bytes.fromhex(spec_hash(spec)[2:]), initial_state_root=initial_root(spec),
                    op_graph_root=run["graph_root"], spec_uri=str(run["spec_path"]), required_stake=STAKE,
                    bid_bond=ETH // 100, bid_window=100, reveal_window=100, training_window=3600,
                    challenge_window=CHALLENGE_WINDOW, steps=spec.steps, checkpoint_interval=spec.checkpoint_interval)
    solver.deposit(STAKE)
    tid = sole_bidder_task(submitter, solver, tp, PAYMENT, PAYMENT // 2)
    solver.submit_result(tid, result.trace_root, spec.steps, result.final_state_root, "http://withheld.invalid/")
    solver.withdraw_payments()  # its bid bond
    manifest = json.loads((run["store"] / "manifest.json").read_text())
    roots = [bytes.fromhex(c["state_root"][2:]) for c in manifest["checkpoints"]]
    replayer = Replayer(spec, store=LocalStore(run["store"]), manifest=manifest)
    return World(chain, submitter, solver, challenger, tid, Availability(chain, d.availability, challenger.key),
                 Availability(chain, d.availability, solver.key), roots, replayer, manifest)


def tensors_at(w: World, k: int) -> list[Any]:
    return [v.detach().cpu() for v in w.replayer.state_at(int(w.manifest["checkpoints"][k]["step"])).values()]


def paid(w: World, m: Market) -> int:
    """Balance plus gas spent: what ``m`` was paid or paid, gas aside."""
    return w.chain.balance(m.address) + w.chain.gas_spent.get(m.address, 0)


def test_answered_demand_puts_the_chunks_on_chain_and_the_task_completes(chain: Chain, run: dict[str, Any]) -> None:
    w = make_world(chain, run)
    before = {m.address: paid(w, m) for m in (w.solver, w.challenger)}
    k, j, first = 2, 0, 3  # the final state's first-layer weight (64x64 floats: 64 chunks), chunks 3..34
    cid = w.avail.challenge(w.task_id, k, j, first, MAX_CHUNKS, run["layout"])
    assert w.submitter.task(w.task_id).openDisputes == 1
    a = chunk_answer(w.roots, k, tensors_at(w, k), j, first, MAX_CHUNKS)
    assert len(a.chunks) == MAX_CHUNKS
    receipt = w.answerer.answer(cid, a)
    assert w.avail.status(cid) == Status.ANSWERED
    ev = w.avail.answered(cid)
    assert ev is not None
    tc = TensorCommitment(tensors_at(w, k)[j])
    # The chain now holds exactly those bytes of the committed tensor.
    assert b"".join(ev["chunks"]) == tc.data[first * 256:(first + MAX_CHUNKS) * 256]
    assert (bytes(ev["tensorId"]), int(ev["dtype"]), list(ev["shape"])) == (tc.id, 1, list(tc.shape))
    refund, returned = int(ev["refund"]), int(ev["returned"])
    assert refund + returned == BOND
    # The refund pays the answer's gas at the base fee, within the contract's estimate of what it cannot measure.
    cost = int(receipt["gasUsed"]) * int(chain.w3.eth.get_block(receipt["blockNumber"])["baseFeePerGas"])
    assert 0.8 * cost <= refund <= 1.3 * cost, (refund, cost)
    # `verigrad status` shows the demand and its outcome, and the contract's solvency.
    from protocol.chain_cli import demand_table, solvency_lines

    (head, row) = demand_table(w.avail)
    assert all(word in head for word in ("demand", "checkpoint", "tensor", "chunks", "deadline", "bond", "result"))
    assert row.split()[:2] == [str(cid), str(w.task_id)] and f"{first}..{first + MAX_CHUNKS - 1}" in row
    assert "answered (32 chunks on chain" in row
    lines, solvent = solvency_lines(w.submitter, None, w.avail)
    assert solvent and any(line.startswith("solvency: Availability") for line in lines)
    w.answerer.withdraw()
    w.avail.withdraw()
    assert paid(w, w.solver) - before[w.solver.address] == refund
    assert paid(w, w.challenger) - before[w.challenger.address] == -BOND + returned
    chain.advance(CHALLENGE_WINDOW)
    w.solver.finalize(w.task_id)
    assert w.submitter.status(w.task_id) == TaskStatus.COMPLETED
    assert w.avail.solvent() and chain.balance(w.avail.contract.address) == 0


def test_answer_from_another_checkpoint_is_refused(chain: Chain, run: dict[str, Any]) -> None:
    w = make_world(chain, run)
    cid = w.avail.challenge(w.task_id, 1, 2, 0, 4, run["layout"])
    wrong = chunk_answer(w.roots, 2, tensors_at(w, 2), 2, 0, 4)
    with pytest.raises(errors.NotInTree) as exc:
        w.answerer.answer(cid, wrong)
    assert exc.value.values["position"] == 1 and exc.value.values["root"] == w.submitter.task(w.task_id).traceRoot
    with pytest.raises(ValueError, match="not checkpoint 1"):
        chunk_answer(w.roots, 1, tensors_at(w, 2), 2, 0, 4)  # the builder checks its input too
    with pytest.raises(errors.TensorOutOfRange) as out:
        w.avail.challenge(w.task_id, 1, run["layout"].state_size, 0, 1, run["layout"])
    assert out.value.values == {"tensor": 13, "stateSize": 13}
    w.answerer.answer(cid, chunk_answer(w.roots, 1, tensors_at(w, 1), 2, 0, 4))
    assert w.avail.status(cid) == Status.ANSWERED


def test_unanswered_demand_slashes_the_solver(chain: Chain, run: dict[str, Any]) -> None:
    w = make_world(chain, run)
    before = paid(w, w.challenger)
    cid = w.avail.challenge(w.task_id, 2, 0, 0, 1, run["layout"])
    with pytest.raises(errors.ResponseWindowOpen):
        w.avail.claim_unanswered(cid)
    chain.advance(WINDOW)
    with pytest.raises(errors.ResponseWindowClosed):
        w.answerer.answer(cid, chunk_answer(w.roots, 2, tensors_at(w, 2), 0, 0, 1))
    w.avail.claim_unanswered(cid)
    assert w.avail.status(cid) == Status.UNANSWERED
    assert w.submitter.status(w.task_id) == TaskStatus.FAILED
    w.avail.withdraw()
    w.challenger.claim_proceeds()
    assert paid(w, w.challenger) - before == STAKE // 2  # the beneficiary's half of the slash; the bond back
    assert w.submitter.payments() == PAYMENT
    assert w.avail.solvent() and chain.balance(w.avail.contract.address) == 0


def test_demanded_chunk_is_drawn_over_the_whole_state(run: dict[str, Any]) -> None:
    import torch

    from protocol.models import build_model
    from protocol.spec import open_dataset
    from protocol.train import initial_state

    spec = run["spec"]
    shapes = [tensor_bytes(v)[1:] for v in initial_state(build_model(spec, open_dataset(spec)),
                                                         torch.device("cpu")).values()]
    picks = [choose_chunks(bytes([i]) * 32, b"\x01" * 32, shapes) for i in range(200)]
    counts = [TensorCommitment(torch.zeros(s, dtype=torch.float32 if d == "float32" else torch.int64)).num_chunks
              for d, s in shapes]
    assert all(0 <= first < counts[j] for j, first in picks)
    assert len(set(picks)) > 150  # spread, not stuck on one chunk
    assert choose_chunks(b"s" * 32, b"b" * 32, shapes) == choose_chunks(b"s" * 32, b"b" * 32, shapes)


def test_submitter_gets_its_model_from_the_chain(chain: Chain, run: dict[str, Any]) -> None:
    """The submitter demands every chunk of the final parameters; the solver answers each demand from
    its store; the model rebuilt from the answers is bit for bit the solver's final checkpoint."""
    import logging

    import torch

    from protocol.agents.submitter import VerificationError, demand_model, model_from_chain

    w = make_world(chain, run)
    mine = Availability(chain, w.avail.contract.address, w.submitter.key)
    log = logging.getLogger("test")
    ids = demand_model(w.submitter, mine, w.task_id, log)
    assert len(ids) == 7  # fc0.weight 128 chunks: 4 demands; fc0.bias, fc1.weight, fc1.bias: one each
    assert demand_model(w.submitter, mine, w.task_id, log) == ids  # nothing demanded twice
    k = len(w.roots) - 1
    final = tensors_at(w, k)
    for cid in ids[:-1]:
        c = mine.get(cid)
        w.answerer.answer(cid, chunk_answer(w.roots, k, final, int(c.tensor), int(c.firstChunk), int(c.count)))
    with pytest.raises(VerificationError, match="fc1.bias .* not on chain"):
        model_from_chain(w.submitter, mine, w.task_id)
    c = mine.get(ids[-1])
    w.answerer.answer(ids[-1], chunk_answer(w.roots, k, final, int(c.tensor), int(c.firstChunk), int(c.count)))
    model = model_from_chain(w.submitter, mine, w.task_id)
    stored = dict(w.replayer.state_at(int(w.manifest["checkpoints"][k]["step"])))
    assert sorted(model) == ["fc0.bias", "fc0.weight", "fc1.bias", "fc1.weight"]
    for name, tensor in model.items():
        assert tensor.dtype == stored[name].dtype  # and the same bits:
        assert tensor.view(-1).view(torch.int32).equal(stored[name].view(-1).view(torch.int32))
    chain.advance(CHALLENGE_WINDOW)
    w.solver.finalize(w.task_id)
    assert w.submitter.status(w.task_id) == TaskStatus.COMPLETED
    assert mine.credit_of() > 0 and w.answerer.credit_of() > 0  # the bonds split: gas to the answerer
    mine.withdraw()
    w.answerer.withdraw()
    assert mine.solvent() and chain.balance(mine.contract.address) == 0


def test_desk_restarted_at_any_point_sends_nothing_twice(chain: Chain, run: dict[str, Any], tmp_path: Path) -> None:
    """The verifier's desk over one database file, restarted (a new desk on the same file) after the
    demand was sent but not recorded, and again after its claim: one demand, one claim, one
    withdrawal, and the records say how each ended."""
    import logging

    from protocol.agents.availability import AvailabilityDesk
    from protocol.agents.common import bind_sender, resolve_pending
    from protocol.agents.db import AgentDB

    w = make_world(chain, run)
    path, log, me = str(tmp_path / "verifier.db"), logging.getLogger("test"), w.challenger.address

    def desk() -> AvailabilityDesk:
        db = AgentDB(path)
        bind_sender(db, chain, me)
        resolve_pending(db, chain, me, log, wait=1.0)  # what a daemon does first at start-up
        return AvailabilityDesk(chain, w.avail.contract.address, w.challenger.key, db, log)

    nonce = lambda: int(chain.w3.eth.get_transaction_count(me))  # noqa: E731
    start = nonce()
    d = desk()
    d.demand(w.task_id, 2, 0, 5, run["layout"])
    d.db.begin_action(f"availability:{w.task_id}")  # as if killed before the receipt was recorded
    d = desk()
    d.demand(w.task_id, 2, 0, 5, run["layout"])  # found on chain: not sent again
    assert w.avail.challenge_count() == 1 and nonce() == start + 1
    assert d.open() and d.open()[0][1]["role"] == "challenger"
    d.tick()  # inside the window: nothing to do
    assert nonce() == start + 1
    chain.advance(WINDOW)
    d.tick()  # claims, then withdraws the bond
    assert w.avail.status(1) == Status.UNANSWERED and nonce() == start + 3
    d = desk()
    d.tick()
    d = desk()
    d.tick()
    assert nonce() == start + 3 and not d.open() and d.finished() == 1
    assert (d.db.get("avail", 1) or {}).get("status") == "UNANSWERED"
    assert w.avail.credit_of(me) == 0 and w.submitter.status(w.task_id) == TaskStatus.FAILED

"""Trace replay: the three levels come from the training code, link up, and a fault moves exactly
the expected leaves (checkpoints from the fault's interval on, step roots from the step on, op-log
roots from the op on)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from protocol.commit import LocalStore
from protocol.spec import load_spec
from protocol.trace import Replayer, TraceError, verify_op_trace
from protocol.train import Fault, train

INTERVAL = 4


def _spec(name: str, steps: int):
    return replace(load_spec(name), steps=steps, checkpoint_interval=INTERVAL)


@pytest.fixture(scope="module")
def mlp_runs(tmp_path_factory: pytest.TempPathFactory):
    """An honest and a faulty 12-step digits run (fault at step 6, op 5 = cross_entropy_backward, whose elements are never exactly zero, which feeds the optimizer directly)."""
    spec = _spec("digits-mlp", 12)
    fault = Fault(6, 5, 5)
    out = tmp_path_factory.mktemp("mlp")
    honest = train(spec, out_dir=out, progress=False)
    faulty = train(spec, progress=False, fault=fault)
    return spec, fault, honest, faulty, out


def test_fault_moves_checkpoint_leaves_from_its_interval_on(mlp_runs) -> None:
    _, fault, honest, faulty, _ = mlp_runs
    same = [a.state_root == b.state_root for a, b in zip(honest.checkpoints, faulty.checkpoints, strict=True)]
    first_bad = next(i for i, c in enumerate(honest.checkpoints) if c.step > fault.step)
    assert same == [i < first_bad for i in range(len(same))]


def test_interval_roots_link_to_checkpoints_and_fault_moves_steps_from_it_on(mlp_runs) -> None:
    spec, fault, honest, _, _ = mlp_runs
    good = Replayer(spec).interval(fault.step)
    bad = Replayer(spec, fault=fault).interval(fault.step)
    assert (good.start, good.end) == (4, 8)
    by_step = {c.step: c.state_root for c in honest.checkpoints}
    assert good.root_at(good.start) == by_step[good.start] and good.root_at(good.end) == by_step[good.end]
    same = [a == b for a, b in zip(good.state_roots, bad.state_roots, strict=True)]
    assert same == [good.start + i <= fault.step for i in range(len(same))]


def test_op_trace_links_verify_and_fault_moves_op_roots_from_the_op_on(mlp_runs) -> None:
    spec, fault, _, _, _ = mlp_runs
    good = Replayer(spec).op_trace(fault.step)
    bad = Replayer(spec, fault=fault).op_trace(fault.step)
    verify_op_trace(good)
    verify_op_trace(bad)  # a faulty solver's trace is internally consistent too
    assert good.state_root == bad.state_root  # same S_t
    same = [a == b for a, b in zip(good.leaves, bad.leaves, strict=True)]
    # leaf 0 is the log's start, leaf j + 1 the root after op j
    assert same == [j <= fault.op for j in range(len(same))]
    assert good.ops[fault.op].inputs == bad.ops[fault.op].inputs


def test_op_trace_ends_at_the_next_state(mlp_runs) -> None:
    spec, _, _, _, _ = mlp_runs
    rep = Replayer(spec)
    tr = rep.op_trace(5)
    interval = rep.interval(5)
    assert tr.state_root == interval.root_at(5)
    assert tr.next_state_root == interval.root_at(6)
    names = [n for n, _ in tr.next_state]
    assert names[-1] == "step" and names == tr.start_names[: tr.state_size]
    first_op = tr.ops[0]
    assert first_op.name == "linear"
    assert [tr.start_names[p] for p in first_op.inputs] == ["batch.x", "fc0.weight", "fc0.bias"]


def test_verify_op_trace_rejects_broken_links(mlp_runs) -> None:
    spec, _, _, _, _ = mlp_runs
    tr = Replayer(spec).op_trace(2)
    tr.ops[3].inputs = [tr.ops[3].output]  # reads its own output
    with pytest.raises(TraceError, match="not an earlier log entry"):
        verify_op_trace(tr)
    tr = Replayer(spec).op_trace(2)
    tr.next_state[0], tr.next_state[1] = tr.next_state[1], tr.next_state[0]
    with pytest.raises(TraceError, match="next_state"):
        verify_op_trace(tr)
    tr = Replayer(spec).op_trace(2)
    tr.next_state[0] = (tr.next_state[0][0], tr.next_state[0][1] - 1)  # points at another entry
    with pytest.raises(TraceError, match="designated entries"):
        verify_op_trace(tr)
    tr = Replayer(spec).op_trace(2)
    tr.ops[5].root = tr.ops[4].root
    with pytest.raises(TraceError, match="log root"):
        verify_op_trace(tr)


def test_replay_from_store_equals_replay_from_s0(mlp_runs) -> None:
    spec, _, honest, _, out = mlp_runs
    store = LocalStore(out)
    manifest = store.get_json(honest.manifest_digest)
    from_store = Replayer(spec, store=store, manifest=manifest).interval(9)
    from_s0 = Replayer(spec).interval(9)
    assert from_store.state_roots == from_s0.state_roots
    assert from_store.root_at(12) == honest.final_state_root
    with pytest.raises(TraceError, match="manifest is for spec"):
        Replayer(spec.with_steps(13), store=store, manifest=manifest)


def test_gpt_op_trace_fault_in_attention_step(tmp_path: Path) -> None:
    spec = _spec("tiny-gpt", 3)
    fault = Fault(1, 8, 9)  # op 8 = attn_apply of layer 0
    good = Replayer(spec).op_trace(1)
    bad = Replayer(spec, fault=fault).op_trace(1)
    verify_op_trace(good)
    assert good.ops[8].name == "attn_apply"
    same = [a == b for a, b in zip(good.leaves, bad.leaves, strict=True)]
    assert same == [j <= fault.op for j in range(len(same))]


def test_replayer_rejects_out_of_range_steps(mlp_runs) -> None:
    spec, _, _, _, _ = mlp_runs
    with pytest.raises(TraceError, match="out of range"):
        Replayer(spec).op_trace(12)
    with pytest.raises(TraceError, match="no op"):
        Replayer(spec).scalar_trace(0, 999, 0)


def test_scalar_trace_matches_honest_ops_and_exposes_the_faulty_element(mlp_runs) -> None:
    spec, fault, _, _, _ = mlp_runs
    good = Replayer(spec)
    tr = good.op_trace(fault.step)
    for op in (0, fault.op, len(tr.ops) - 2):  # a forward linear, the weight gradient, an adamw
        st = good.scalar_trace(fault.step, op, 3, trace=tr)
        assert st.matches and st.name == tr.ops[op].name
        assert all(0 <= slot < len(st.inputs) for slot, _ in st.reads)
    bad = Replayer(spec, fault=fault)
    btr = bad.op_trace(fault.step)
    assert not bad.scalar_trace(fault.step, fault.op, fault.element, trace=btr).matches
    assert bad.scalar_trace(fault.step, fault.op, fault.element + 1, trace=btr).matches
    with pytest.raises(TraceError, match="no element"):
        good.scalar_trace(fault.step, 0, 10**6, trace=tr)


def test_trace_main_prints_all_levels_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from protocol.trace import main

    assert main(["digits-mlp", "--steps", "6", "--step", "2", "--op", "0", "--element", "1",
                 "--inject", "2:0:1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["interval"]["start"] == 0 and len(out["interval"]["state_roots"]) == 7
    assert out["op_trace"]["ops"][0]["name"] == "linear"
    assert out["scalar_trace"]["matches"] is False  # the injected element
    assert main(["digits-mlp", "--steps", "6", "--step", "9"]) == 2

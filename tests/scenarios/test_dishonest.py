"""The dishonest runs the scenarios' solver daemons train (protocol/agents/dishonest.py), checked
without a chain: each commits checkpoints that an honest re-execution rejects in exactly the
expected intervals, while the cheater's own replay reproduces every one of them (it defends what it
committed) and its op trace of the altered step cannot end at the state it claims."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from protocol.agents.dishonest import Tamper, TamperedReplayer, train_dishonest
from protocol.commit import LocalStore
from protocol.errors import VerigradError
from protocol.spec import load_spec
from protocol.trace import Replayer
from protocol.train import train

SPEC = dataclasses.replace(load_spec("digits-mlp"), steps=20, checkpoint_interval=5)

# mode -> (corrupt_step, corrupt_checkpoint, lazy), the intervals an honest replay rejects, the step
# whose op trace cannot reach the claimed next state
CASES = {
    "corrupt-step": ((7, None, None), [1], 7),
    "corrupt-checkpoint": ((None, 2, None), [1], 9),
    "lazy-skip": ((None, None, "skip"), [0, 1, 2, 3], 1),
    "lazy-initial": ((None, None, "initial"), [0, 1, 2, 3], 0),
}


@pytest.fixture(scope="module")
def honest_roots() -> list[bytes]:
    return [c.state_root for c in train(SPEC, progress=False).checkpoints]


@pytest.mark.parametrize("mode", list(CASES))
def test_dishonest_run_is_rejected_where_expected_and_replays_itself(tmp_path: Path, honest_roots: list[bytes],
                                                                     mode: str) -> None:
    args, rejected, step = CASES[mode]
    tamper = Tamper.of(SPEC, *args)
    assert tamper is not None
    result = train_dishonest(SPEC, out_dir=tmp_path, fault=None, tamper=tamper)
    roots = [c.state_root for c in result.checkpoints]
    assert roots[0] == honest_roots[0] and roots[-1] != honest_roots[-1]
    store = LocalStore(tmp_path)
    manifest = store.get_json(result.manifest_digest or "")
    honest = Replayer(SPEC, store=store, manifest=manifest)
    own = TamperedReplayer(SPEC, tamper, store=store, manifest=manifest)
    c = SPEC.checkpoint_interval
    assert [i for i in range(4) if honest.interval(i * c).state_roots[-1] != roots[i + 1]] == rejected
    assert all(own.interval(i * c).state_roots[-1] == roots[i + 1] for i in range(4))
    # From the same checkpoint, the honest steps agree with the claimed ones up to S_step and not at
    # S_step+1: level 2 of a game ends on that step ...
    claimed, mine = own.interval(step).state_roots, honest.interval(step).state_roots
    at = step % c
    assert mine[: at + 1] == claimed[: at + 1] and mine[at + 1] != claimed[at + 1]
    # ... and at level 3 the op trace of that step starts at S_step but cannot end at the claim.
    trace = own.op_trace(step)
    assert trace.state_root == claimed[at] and trace.next_state_root != claimed[at + 1]


def test_tamper_arguments_are_checked() -> None:
    assert Tamper.of(SPEC, None, None, None) is None
    assert Tamper.of(SPEC, None, 4, None) == Tamper(corrupt_step=19)
    with pytest.raises(VerigradError):
        Tamper.of(SPEC, None, 5, None)  # 20 steps: checkpoints 0..4
    with pytest.raises(VerigradError):
        Tamper.of(SPEC, 20, None, None)
    with pytest.raises(VerigradError):
        Tamper.of(SPEC, None, None, "nap")

"""The training loop: checkpoint schedule, artifact store, fault injection errors, the train CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from protocol.commit import LocalStore, TraceTree
from protocol.repops import RepOpsError
from protocol.spec import load_spec
from protocol.train import Fault, TrainError, checkpoint_steps, load_checkpoint, state_root_of, train
from protocol.train_cli import main


def _spec(steps: int = 7, interval: int = 3):
    return replace(load_spec("digits-mlp"), steps=steps, checkpoint_interval=interval)


def test_checkpoint_steps_include_zero_and_the_end() -> None:
    assert checkpoint_steps(_spec(7, 3)) == [0, 3, 6, 7]
    assert checkpoint_steps(_spec(6, 3)) == [0, 3, 6]


def test_train_writes_verifiable_checkpoints(tmp_path: Path) -> None:
    result = train(_spec(), out_dir=tmp_path, progress=False)
    assert [c.step for c in result.checkpoints] == [0, 3, 6, 7]
    assert TraceTree([c.state_root for c in result.checkpoints]).root == result.trace_root
    store = LocalStore(tmp_path)
    manifest = store.get_json(result.manifest_digest)
    assert manifest["trace_root"] == "0x" + result.trace_root.hex()
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    names = list(load_checkpoint(store, result.checkpoints[0].digest, result_device(), ["step"]))
    assert names == ["step"]
    for cp in result.checkpoints:
        full = store.get_tensors(cp.digest)
        assert state_root_of(dict(full)) == cp.state_root
        assert int(full["step"]) == cp.step


def result_device():
    import torch

    return torch.device("cpu")


def test_train_inject_changes_only_later_checkpoints() -> None:
    honest = train(_spec(), progress=False)
    faulty = train(_spec(), progress=False, fault=Fault(4, 14, 3))  # op 14: the first adamw
    same = [a.state_root == b.state_root for a, b in zip(honest.checkpoints, faulty.checkpoints, strict=True)]
    assert same == [True, True, False, False]
    assert faulty.trace_root != honest.trace_root


def test_train_inject_out_of_range_rejected() -> None:
    with pytest.raises(TrainError, match="not below"):
        train(_spec(), progress=False, fault=Fault(7, 0, 0))
    with pytest.raises(TrainError, match="no op 500"):
        train(_spec(), progress=False, fault=Fault(1, 500, 0))
    with pytest.raises(RepOpsError, match="outside an output"):
        train(_spec(), progress=False, fault=Fault(1, 0, 10**6))
    with pytest.raises(TrainError, match="STEP:OP:ELEMENT"):
        Fault.parse("1:2")


def test_train_cli_json_last_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["train", "digits-mlp", "--steps", "4", "--json", "--out", str(tmp_path)])
    assert rc == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    obj = json.loads(last)
    for key in ("trace_root", "steps", "final_state_root", "loss", "accuracy"):
        assert key in obj
    assert obj["steps"] == 4 and obj["trace_root"].startswith("0x") and len(obj["trace_root"]) == 66


def test_train_cli_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nrepops_version = "repops-1"\nseed = 1\nsteps = 2\nbatch_size = -4\n')
    assert main(["train", str(bad)]) == 2
    assert "batch_size" in capsys.readouterr().err
    assert main(["train", "digits-mlp", "--steps", "2", "--inject", "1:x:0"]) == 2
    assert "STEP:OP:ELEMENT" in capsys.readouterr().err

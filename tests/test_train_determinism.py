"""Same spec, same bits: the trace root does not depend on the run, the thread count or the process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from protocol.spec import load_spec
from protocol.train import train

ROOT = Path(__file__).resolve().parents[1]


def _root(name: str, steps: int, threads: int | None = None) -> str:
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        return "0x" + train(load_spec(name).with_steps(steps), progress=False).trace_root.hex()
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(("name", "steps"), [("digits-mlp", 6), ("tiny-gpt", 2)])
def test_trace_root_same_across_runs_and_thread_counts(name: str, steps: int) -> None:
    one = _root(name, steps, threads=1)
    assert _root(name, steps, threads=1) == one
    assert _root(name, steps, threads=2) == one


@pytest.mark.parametrize("fastcpu", ["1", "0"])
def test_trace_root_same_in_a_fresh_process(fastcpu: str) -> None:
    """A fresh interpreter, two threads, and (with VERIGRAD_REPOPS_FASTCPU=0) RepOps' torch kernels
    instead of its C++ CPU loops: the same root as in this process."""
    here = _root("digits-mlp", 6)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2", "VERIGRAD_REPOPS_FASTCPU": fastcpu}
    proc = subprocess.run(
        [sys.executable, "-m", "protocol.train_cli", "train", "digits-mlp", "--steps", "6", "--json"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=True,
    )
    there = json.loads(proc.stdout.strip().splitlines()[-1])
    assert there["trace_root"] == here
    assert there["steps"] == 6

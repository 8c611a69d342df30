"""Checkpoint commits on the worker thread give what synchronous commits give, in order."""

from __future__ import annotations

import torch

from protocol.commit import LocalStore, TraceTree
from protocol.models import build_model
from protocol.spec import load_spec, open_dataset
from protocol.train import CheckpointCommitter, StepContext, initial_state, run_step


def test_background_commits_equal_inline_commits_succeeds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = load_spec("digits-mlp")
    ds = open_dataset(spec)
    model = build_model(spec, ds)
    ctx = StepContext(spec, model, ds, torch.device("cpu"))
    runs = {}
    for background in (True, False):
        state = initial_state(model, ctx.device)
        seen: list[tuple[int, bytes]] = []
        trace = TraceTree()
        checkpoints: list = []  # type: ignore[type-arg]
        store = LocalStore(tmp_path / str(background))

        def record(cp, root, seen=seen) -> None:  # type: ignore[no-untyped-def]
            seen.append((cp.step, root))

        with CheckpointCommitter(store, trace, checkpoints, record, background=background) as committer:
            committer.submit(0, state)
            for t in range(4):
                state = run_step(ctx, state, t).state
                committer.submit(t + 1, state)
            committer.drain()
        assert [s for s, _ in seen] == [0, 1, 2, 3, 4]
        runs[background] = ([(c.step, c.state_root, c.digest) for c in checkpoints], trace.root, seen)
    assert runs[True] == runs[False]

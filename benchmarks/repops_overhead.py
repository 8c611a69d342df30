"""What reproducibility costs: a RepOps training step against plain torch float32, and commit time.

For each reference spec, in the same process and on the same device:

* ``repops_step_ms``: median wall time of one training step as ``protocol.train.train`` runs it
  (RepOps ops: fixed-order reductions, own exp/log/sqrt, explicit backward, AdamW; no tape): on CPU
  ``run_step`` with the fused C++ fast path (protocol/repops/fastcpu.py) when it is built; on CUDA a
  replay of the captured step (``CudaGraphSteps``; ``VERIGRAD_CUDA_GRAPHS=0``: ``run_step`` op by op)
  with the CUDA fast path (protocol/repops/fastcuda.py; ``VERIGRAD_REPOPS_FASTCUDA=0``: off);
* ``torch_kernels_step_ms`` (CPU): the same step with the fast path off, every op on its vectorised
  torch kernel (the same bits), measured in the same run, and its ``torch_kernels_ratio``;
* ``torch_step_ms``: median wall time of the same model step in plain torch float32 (default kernels:
  BLAS/cuBLAS matmuls, torch.exp/log, autograd, ``torch.optim.AdamW``);
* ``commit_ms``: median time of one checkpoint commit done inline (``protocol.train.commit_state``:
  the device-to-host copy, the state root over every state tensor, the checkpoint written to a
  LocalStore), and ``commit_overhead`` = commit_ms / (checkpoint_interval x repops_step_ms): the
  fraction of training time spent committing at the spec's default interval if every commit stopped
  training (``train`` commits on a worker thread while the next steps run, which hides part of it);
* ``commit_overhead_measured``: that overlap measured: the wall time of one checkpoint interval
  (``checkpoint_interval`` steps) with a commit as ``train`` makes it over the same without, minus
  one, the median over ``--rounds`` back-to-back pairs (``commit_overhead_quartiles``: the spread over
  the pairs, which on a shared machine is wider than the effect).

Prints one line per model and a JSON object as the last line with ``cpu_ratio`` (worst RepOps/plain
ratio over the models; ``gpu_ratio`` with ``--device cuda``), ``cpu_ratio_torch_kernels`` (the same
without the fast path) and ``commit_overhead`` (worst).

    python benchmarks/repops_overhead.py [--device cpu|cuda] [--threads 1] [--repeat 15] [--rounds 9]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from protocol.commit import LocalStore, TraceTree  # noqa: E402
from protocol.models import build_model  # noqa: E402
from protocol.models.reference import reference_loss  # noqa: E402
from protocol.repops import fastcpu, fastcuda  # noqa: E402
from protocol.spec import SHIPPED_SPECS, load_spec, open_dataset  # noqa: E402
from protocol.train import (  # noqa: E402
    CheckpointCommitter,
    CudaGraphSteps,
    StepContext,
    commit_state,
    cuda_graphs_enabled,
    initial_state,
    run_step,
)


def _median_ms(fn: Callable[[], object], repeat: int, device: torch.device) -> float:
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def op_breakdown(ctx: StepContext, state: dict[str, torch.Tensor], steps: int, device: torch.device,
                 top: int = 6) -> dict[str, float]:
    """Milliseconds per step spent in each RepOps op (by name), the largest ``top`` of them."""
    from protocol.repops import tape as rtape

    spent: dict[str, float] = {}
    original = rtape.compute

    def timed(name: str, inputs, attrs=None):  # type: ignore[no-untyped-def]
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = original(name, inputs, attrs)
        if device.type == "cuda":
            torch.cuda.synchronize()
        spent[name] = spent.get(name, 0.0) + (time.perf_counter() - t0) * 1e3
        return out

    rtape.compute = timed
    try:
        for t in range(steps):
            state = run_step(ctx, state, t).state
    finally:
        rtape.compute = original
    ranked = sorted(spent.items(), key=lambda kv: -kv[1])[:top]
    return {k: round(v / steps, 2) for k, v in ranked}


def interval_overhead(ctx: StepContext, step: Callable[[], None], state_of: Callable[[], dict[str, torch.Tensor]],
                      store: LocalStore, fresh: Callable[[], None], steps: int, rounds: int,
                      device: torch.device) -> dict[str, object]:
    """Wall time of one checkpoint interval (``steps`` training steps) with the checkpoint commit as
    ``protocol.train.train`` makes it (``CheckpointCommitter``: submitted before the steps, recorded
    after them) and without any commit, ``rounds`` pairs of one run of each, back to back (which one
    runs first alternates). The overhead is the median over the pairs of with / without - 1: a pair
    shares whatever else the machine is doing, so the ratio is steadier than one of two minima."""
    with_commit: list[float] = []
    without: list[float] = []

    def run(commit: bool) -> float:
        fresh()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        if commit:
            with CheckpointCommitter(store, TraceTree(), []) as committer:
                committer.submit(0, state_of())
                for _ in range(steps):
                    step()
                committer.drain()
        else:
            for _ in range(steps):
                step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) * 1e3

    for r in range(rounds):
        if r % 2:
            without.append(run(False))
            with_commit.append(run(True))
        else:
            with_commit.append(run(True))
            without.append(run(False))
    ratios = sorted(w / wo - 1.0 for w, wo in zip(with_commit, without, strict=True))
    return {
        "interval_ms": round(statistics.median(without), 2),
        "interval_with_commit_ms": round(statistics.median(with_commit), 2),
        "commit_overhead_measured": round(statistics.median(ratios), 5),
        "commit_overhead_quartiles": [round(q, 5) for q in statistics.quantiles(ratios, n=4)],
    }


def bench_model(name: str, device: torch.device, repeat: int, rounds: int = 9) -> dict[str, object]:
    """Time one spec's RepOps step, plain torch step and checkpoint commit."""
    spec = load_spec(name)
    ds = open_dataset(spec)
    model = build_model(spec, ds)
    ctx = StepContext(spec, model, ds, device)
    state = initial_state(model, device)
    batches = [ctx.batch(t) for t in range(4)]
    counter = {"t": 0}

    graphs = CudaGraphSteps(ctx) if device.type == "cuda" and cuda_graphs_enabled() else None

    def repops_step() -> None:  # as protocol.train.train runs a step: on CUDA, a replayed graph
        nonlocal state
        t = counter["t"]
        if graphs is None:
            state = run_step(ctx, state, t).state
        elif graphs.graph is None:
            state = graphs.start(state, t).state
        else:
            state = graphs.run(t).state
        counter["t"] += 1

    params = {n: t.detach().clone().requires_grad_(True) for n, t in model.init_params().items()}
    params = {n: p.to(device).detach().requires_grad_(True) for n, p in params.items()}
    opt = torch.optim.AdamW(params.values(), lr=spec.optimizer.lr, betas=(spec.optimizer.beta1,
                            spec.optimizer.beta2), eps=spec.optimizer.eps,
                            weight_decay=spec.optimizer.weight_decay)

    def torch_step() -> None:
        b = batches[counter["t"] % len(batches)]
        counter["t"] += 1
        opt.zero_grad(set_to_none=True)
        loss = reference_loss(model, params, b)
        loss.backward()
        opt.step()

    fast = device.type == "cpu" and fastcpu.available()
    for _ in range(2):  # warm-up: allocator, kernel caches, lazy init
        repops_step()
        torch_step()
        if fast:
            with fastcpu.disabled():
                repops_step()
    rep_ms = _median_ms(repops_step, repeat, device)
    plain_ms = _median_ms(torch_step, repeat, device)
    slow_ms = None
    if fast:
        with fastcpu.disabled():
            slow_ms = _median_ms(repops_step, repeat, device)
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(tmp)

        def fresh() -> None:  # a fresh write each time, as in training (not timed)
            for p in Path(tmp).glob("*/*"):
                p.unlink()

        times = []
        for _ in range(max(5, repeat)):
            fresh()
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            commit_state(state, store)
            times.append((time.perf_counter() - t0) * 1e3)
        commit_ms = statistics.median(times)
        interval = interval_overhead(ctx, repops_step, state_of=lambda: state, store=store, fresh=fresh,
                                     steps=spec.checkpoint_interval, rounds=rounds, device=device)
    breakdown = op_breakdown(ctx, initial_state(model, device), 4, device)
    n_params = sum(t.numel() for n, t in state.items() if not n.startswith(("m.", "v.", "step")))
    extra: dict[str, object] = {}
    if slow_ms is not None:
        with fastcpu.disabled():
            slow_breakdown = op_breakdown(ctx, initial_state(model, device), 4, device)
        extra = {
            "torch_kernels_step_ms": round(slow_ms, 3),
            "torch_kernels_ratio": round(slow_ms / plain_ms, 2),
            "top_ops_ms_torch_kernels": slow_breakdown,
        }
    return {
        "params": n_params,
        "repops_step_ms": round(rep_ms, 3),
        "torch_step_ms": round(plain_ms, 3),
        "ratio": round(rep_ms / plain_ms, 2),
        **extra,
        "commit_ms": round(commit_ms, 3),
        "checkpoint_interval": spec.checkpoint_interval,
        "commit_overhead": round(commit_ms / (spec.checkpoint_interval * rep_ms), 5),
        **interval,
        "top_ops_ms": breakdown,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--repeat", type=int, default=15, help="timed steps per measurement")
    ap.add_argument("--rounds", type=int, default=9,
                    help="checkpoint intervals timed with and without a commit (each)")
    ap.add_argument("--models", nargs="*", default=list(SHIPPED_SPECS))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    results = {}
    for name in args.models:
        r = bench_model(name, device, args.repeat, args.rounds)
        results[name] = r
        print(f"{name:11s} params {r['params']:6d}  repops {r['repops_step_ms']:9.2f} ms  "
              f"torch {r['torch_step_ms']:8.2f} ms  ratio {r['ratio']:7.2f}  commit {r['commit_ms']:7.2f} ms "
              f"({100 * r['commit_overhead']:.2f}% of an interval of {r['checkpoint_interval']} steps "
              f"if inline; measured with the background commit: {100 * r['commit_overhead_measured']:.2f}%, "
              f"quartiles {[round(100 * q, 2) for q in r['commit_overhead_quartiles']]}%)")
        print("            time per step by op (ms):", r["top_ops_ms"])
        if "torch_kernels_step_ms" in r:
            print(f"            without the fast path: repops {r['torch_kernels_step_ms']:9.2f} ms  "
                  f"ratio {r['torch_kernels_ratio']:7.2f}  by op (ms): {r['top_ops_ms_torch_kernels']}")
    worst = max(r["ratio"] for r in results.values())
    out = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": args.threads,
        "torch": torch.__version__,
        "models": results,
        ("cpu_ratio" if device.type == "cpu" else "gpu_ratio"): worst,
        "fastcpu": device.type == "cpu" and fastcpu.available(),
        "cuda_graphs": device.type == "cuda" and cuda_graphs_enabled(),
        "fastcuda": device.type == "cuda" and fastcuda.available(),
        "commit_overhead": max(r["commit_overhead"] for r in results.values()),
        "commit_overhead_measured": max(r["commit_overhead_measured"] for r in results.values()),
    }
    if all("torch_kernels_ratio" in r for r in results.values()):
        out["cpu_ratio_torch_kernels"] = max(float(r["torch_kernels_ratio"]) for r in results.values())  # type: ignore[arg-type]
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The training loop: deterministic steps, checkpoint state roots, the trace tree, the artifact store.

One training step is :func:`run_step`: the model's forward and backward passes, then AdamW on every
parameter, then the step counter, every arithmetic step an op on the step's :class:`Tape`. The same
function is what ``protocol.trace`` replays, with recording switched on.

Training state S_t (what step t+1 reads) is, in this order: every parameter (model order), then every
first moment ``m.<name>``, every second moment ``v.<name>``, then the step counter ``step`` (int64,
0-dim). S_0 follows from the spec: parameters from the seed, moments zero, step 0.

Every ``checkpoint_interval`` steps (and after the last step) the state root is computed with the
commitment layer, appended to the checkpoint trace tree (whose first leaf is S_0), and the state is
saved in the content-addressed artifact store. The run's manifest (spec, checkpoints, trace root,
losses) is saved there too and, for convenience, as ``manifest.json`` in the output directory.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from protocol.commit import LocalStore, TraceTree, state_commitment
from protocol.data import Dataset
from protocol.models import Model, build_model
from protocol.models.tape import Fault, Tape, TapeError
from protocol.spec import (
    TaskSpec,
    batch_indices,
    f32,
    learning_rate,
    load_dataset,
    open_dataset,
    spec_hash,
)

State = dict[str, torch.Tensor]


class TrainError(TapeError):
    """Training could not run as asked (bad device, bad fault, damaged checkpoint)."""


# ----------------------------------------------------------------------------------------------
# State and one step
# ----------------------------------------------------------------------------------------------


def initial_state(model: Model, device: torch.device) -> State:
    """S_0: parameters from the seed, zero moments, step counter 0 (ordered as the module doc says)."""
    params = model.init_params()
    state: State = {name: t.to(device) for name, t in params.items()}
    for prefix in ("m.", "v."):
        for name, t in params.items():
            state[prefix + name] = torch.zeros_like(t, device=device)
    state["step"] = torch.tensor(0, dtype=torch.int64, device=device)
    return state


def state_root_of(state: State) -> bytes:
    """S_t's root through the commitment layer (tensors brought to the CPU to be hashed)."""
    return state_commitment([(n, t.detach().cpu()) for n, t in state.items()]).root


class _Powers:
    """``beta ** t`` in float32 by sequential multiplication, cached so training pays one multiply
    per step; the value at any t is the same however it is reached."""

    def __init__(self, beta: float) -> None:
        self.beta = f32(beta)
        self.t = 0
        self.value = f32(1.0)

    def at(self, t: int) -> float:
        if t < self.t:
            self.t, self.value = 0, f32(1.0)
        while self.t < t:
            self.value = f32(self.value * self.beta)
            self.t += 1
        return self.value


@dataclass
class StepContext:
    """Per-run constants a step needs besides the state and the batch."""

    spec: TaskSpec
    model: Model
    dataset: Dataset
    device: torch.device
    pow1: _Powers = field(init=False)
    pow2: _Powers = field(init=False)

    def __post_init__(self) -> None:
        self.pow1 = _Powers(self.spec.optimizer.beta1)
        self.pow2 = _Powers(self.spec.optimizer.beta2)

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        """The batch of step ``step`` (0-based), decoded from the committed samples."""
        samples = [self.dataset.samples[i] for i in batch_indices(self.spec, step)]
        return self.model.batch(samples, self.device)

    def optimizer_attrs(self, step: int) -> dict[str, float]:
        """lr and bias corrections of step ``step`` (which produces S_{step+1}), all float32 values."""
        opt = self.spec.optimizer
        t = step + 1
        return {
            "lr": learning_rate(self.spec, step),
            "wd": f32(opt.weight_decay),
            "eps": f32(opt.eps),
            "bc1": f32(1.0 - self.pow1.at(t)),
            "bc2": f32(1.0 - self.pow2.at(t)),
        }


def run_step(ctx: StepContext, state: State, step: int, tape: Tape) -> tuple[State, torch.Tensor]:
    """Train step ``step``: S_step -> S_{step+1}. Returns the new state and the batch loss (0-dim).

    Canonical op order: the model's forward and backward ops, then for each parameter in state order
    ``adam_m``, ``adam_v``, ``adamw_update``, then ``increment`` of the step counter.
    """
    batch = ctx.batch(step)
    tape.begin([*state.items(), *(("batch." + k, v) for k, v in batch.items())])
    params = {n: state[n] for n, _ in ctx.model.param_shapes()}
    loss, grads = ctx.model.forward_backward(tape, params, batch)
    opt = ctx.spec.optimizer
    attrs = ctx.optimizer_attrs(step)
    new: State = {}
    moments: dict[str, torch.Tensor] = {}
    for name in params:
        m = tape.op("adam_m", state["m." + name], grads[name], beta1=f32(opt.beta1))
        v = tape.op("adam_v", state["v." + name], grads[name], beta2=f32(opt.beta2))
        new[name] = tape.op("adamw_update", params[name], m, v, **attrs)
        moments["m." + name], moments["v." + name] = m, v
    for name in params:
        new["m." + name] = moments["m." + name]
    for name in params:
        new["v." + name] = moments["v." + name]
    new["step"] = tape.op("increment", state["step"])
    tape.finish()
    return new, loss


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """One leaf of the checkpoint trace: the state after ``step`` steps, and where it is stored."""

    step: int
    state_root: bytes
    digest: str | None = None


@dataclass
class TrainResult:
    """What a run commits to and reports."""

    spec: TaskSpec
    steps: int
    trace_root: bytes
    final_state_root: bytes
    checkpoints: list[Checkpoint]
    losses: list[float]
    metrics: dict[str, float]
    device: str
    seconds: float
    manifest_digest: str | None = None
    out_dir: str | None = None
    fault: Fault | None = None

    def summary(self) -> dict[str, Any]:
        """The JSON object ``verigrad train --json`` prints."""
        out: dict[str, Any] = {
            "spec": self.spec.name,
            "spec_hash": spec_hash(self.spec),
            "trace_root": "0x" + self.trace_root.hex(),
            "steps": self.steps,
            "final_state_root": "0x" + self.final_state_root.hex(),
            "loss": self.losses[-1] if self.losses else None,
            "first_loss": self.losses[0] if self.losses else None,
            "checkpoints": len(self.checkpoints),
            "device": self.device,
            "seconds": round(self.seconds, 3),
        }
        out.update({f"eval_{k}" if k != "accuracy" else k: v for k, v in self.metrics.items()})
        if self.out_dir is not None:
            out["out"] = self.out_dir
            out["manifest"] = self.manifest_digest
        if self.fault is not None:
            out["inject"] = f"{self.fault.step}:{self.fault.op}:{self.fault.element}"
        return out


def checkpoint_steps(spec: TaskSpec) -> list[int]:
    """Steps after which a checkpoint is taken: 0, c, 2c, ..., and the last step."""
    c = spec.checkpoint_interval
    out = list(range(0, spec.steps + 1, c))
    if out[-1] != spec.steps:
        out.append(spec.steps)
    return out


def resolve_device(device: str | torch.device) -> torch.device:
    """A torch device, checked to exist (``cuda`` needs a visible GPU)."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainError("--device cuda: no CUDA device is visible to torch on this machine")
    if dev.type not in ("cpu", "cuda"):
        raise TrainError(f"--device: expected cpu or cuda, got {device!r}")
    return dev


def _progress(total: int, enabled: bool | None) -> Any:
    """A tqdm bar when writing to a terminal (or when forced), else None."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="step", leave=False)


def train(spec: TaskSpec, *, out_dir: str | Path | None = None, device: str | torch.device = "cpu",
          fault: Fault | None = None, progress: bool | None = None,
          on_checkpoint: Callable[[Checkpoint, bytes], None] | None = None) -> TrainResult:
    """Train ``spec`` from S_0 to S_steps, committing a checkpoint every ``checkpoint_interval`` steps.

    ``out_dir`` names the artifact directory (a ``LocalStore``); without it nothing is written.
    ``fault`` corrupts one op output at one step (the dispute scenarios' cheating solver).
    ``on_checkpoint(checkpoint, trace_root)`` is called after each checkpoint is appended, e.g. to post
    a progress commitment on chain.
    """
    started = time.perf_counter()
    dev = resolve_device(device)
    if fault is not None and fault.step >= spec.steps:
        raise TrainError(f"--inject: step {fault.step} is not below the run's {spec.steps} steps")
    dataset = open_dataset(spec)
    model = build_model(spec, dataset)
    ctx = StepContext(spec, model, dataset, dev)
    store = LocalStore(out_dir) if out_dir is not None else None
    state = initial_state(model, dev)
    trace = TraceTree()
    checkpoints: list[Checkpoint] = []
    wanted = set(checkpoint_steps(spec))
    losses: list[float] = []

    def commit(step: int) -> None:
        root = state_root_of(state)
        digest = store.put_tensors({n: t.detach().cpu() for n, t in state.items()}) if store else None
        cp = Checkpoint(step, root, digest)
        checkpoints.append(cp)
        trace_root = trace.append_checkpoint(root)
        if on_checkpoint is not None:
            on_checkpoint(cp, trace_root)

    commit(0)
    bar = _progress(spec.steps, progress)
    for step in range(spec.steps):
        state, loss = run_step(ctx, state, step, Tape(step, fault=fault))
        losses.append(float(loss.item()))
        if step + 1 in wanted:
            commit(step + 1)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
    if bar is not None:
        bar.close()
    params = {n: state[n] for n, _ in model.param_shapes()}
    metrics = model.evaluate(params, load_dataset(spec.dataset.name, "test", spec.model.block_size), dev)
    result = TrainResult(spec, spec.steps, trace.root, checkpoints[-1].state_root, checkpoints, losses,
                         metrics, str(dev), time.perf_counter() - started, fault=fault)
    if store is not None:
        manifest = manifest_of(result)
        result.manifest_digest = store.put_json(manifest)
        result.out_dir = str(store.root)
        Path(store.root, "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return result


def manifest_of(result: TrainResult) -> dict[str, Any]:
    """The run's manifest: everything needed to find and check its checkpoints."""
    return {
        "spec": result.spec.to_dict(),
        "spec_hash": spec_hash(result.spec),
        "steps": result.steps,
        "trace_root": "0x" + result.trace_root.hex(),
        "final_state_root": "0x" + result.final_state_root.hex(),
        "checkpoints": [
            {"step": c.step, "state_root": "0x" + c.state_root.hex(), "digest": c.digest}
            for c in result.checkpoints
        ],
        "losses": result.losses,
        "metrics": result.metrics,
        "inject": None if result.fault is None else [result.fault.step, result.fault.op, result.fault.element],
    }


def load_checkpoint(store: LocalStore, digest: str, device: torch.device, names: list[str]) -> State:
    """A checkpoint's state from the store (verified by digest), in state order."""
    tensors = store.get_tensors(digest)
    missing = [n for n in names if n not in tensors]
    if missing:
        raise TrainError(f"checkpoint {digest}: missing tensors {missing[:3]}")
    return {n: torch.as_tensor(tensors[n]).to(device) for n in names}

"""The training loop: deterministic steps, checkpoint state roots, the trace tree, the artifact store.

One training step is :func:`run_step`: the model's forward and backward passes, then AdamW on every
parameter, then the step counter, every arithmetic step a RepOps op (``protocol.repops``). The same
function is what ``protocol.trace`` replays under a recording ``repops.Tape``.

Training state S_t (what step t+1 reads) is, in this order: every parameter (model order), then every
first moment ``m.<name>``, every second moment ``v.<name>``, then the step counter ``step`` (a float32
0-dim tensor, exact up to 2**24 steps). S_0 follows from the spec: parameters from the seed, moments
zero, step 0. A step also reads its batch (``batch.<name>``, decoded from the committed samples) and
one constant, ``const.one`` (1.0: the loss seed dL/dL and the step counter's increment).

Every ``checkpoint_interval`` steps (and after the last step) the state root is computed with the
commitment layer, appended to the checkpoint trace tree (whose first leaf is S_0), and the state is
saved in the content-addressed artifact store. The run's manifest (spec, checkpoints, trace root,
losses) is saved there too and, for convenience, as ``manifest.json`` in the output directory.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from protocol import repops as R
from protocol.commit import LocalStore, TraceTree
from protocol.commit.state import fast_state_root, prepare_state_root
from protocol.commit.store import encode_tensors
from protocol.data import Dataset
from protocol.errors import VerigradError
from protocol.models import Model, build_model
from protocol.repops.optim import adamw_step_constants
from protocol.spec import (
    TaskSpec,
    batch_indices,
    learning_rate,
    load_dataset,
    open_dataset,
    spec_hash,
)

State = dict[str, torch.Tensor]
#: The bits a fault flips in one float32 element: the top mantissa bit, which changes a normal value
#: by a factor between 2/3 and 3/2 and never makes a NaN or an infinity. (A flip of the lowest bit is
#: often washed out: a 1-ulp change of a gradient can round away in the optimizer, and the run rejoins
#: the honest one.)
FAULT_XOR = 1 << 22


class TrainError(VerigradError):
    """Training could not run as asked (bad device, bad fault, damaged checkpoint)."""


@dataclass(frozen=True)
class Fault:
    """Corrupt element ``element`` (flat, row-major) of the output of op ``op`` (0-based, canonical
    order within the step) at step ``step``: the ``--inject STEP:OP:ELEMENT`` of the CLI."""

    step: int
    op: int
    element: int

    @classmethod
    def parse(cls, text: str) -> Fault:
        """Parse ``STEP:OP:ELEMENT`` (three integers >= 0)."""
        parts = text.split(":")
        if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
            raise TrainError(f"--inject: expected STEP:OP:ELEMENT with three integers >= 0, got {text!r}")
        step, op, element = (int(p) for p in parts)
        return cls(step, op, element)

    def repops_fault(self) -> R.Fault:
        """The RepOps tape fault that applies this one within its step."""
        return R.Fault(op_index=self.op, element=self.element, xor_mask=FAULT_XOR)


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
    state["step"] = torch.zeros((), dtype=torch.float32, device=device)
    return state


def host_state(state: State, copy: bool = False) -> State:
    """The state's tensors on the CPU, in state order; ``copy``: never views of ``state`` itself.

    From a GPU, every float32 tensor comes back in one device-to-host transfer (one ``cat`` on the
    device, then views of the host buffer), not one synchronising copy per tensor.
    """
    tensors = [t.detach() for t in state.values()]
    if tensors and all(t.device.type == "cpu" for t in tensors):
        return {n: (t.clone() if copy else t) for n, t in zip(state, tensors, strict=True)}
    if not all(t.dtype == torch.float32 for t in tensors):
        return {n: t.cpu() for n, t in zip(state, tensors, strict=True)}
    flat = torch.cat([t.reshape(-1) for t in tensors]).cpu()
    out: State = {}
    offset = 0
    for n, t in zip(state, tensors, strict=True):
        out[n] = flat[offset : offset + t.numel()].view(t.shape)
        offset += t.numel()
    return out


def state_root_of(state: State) -> bytes:
    """S_t's root through the commitment layer (tensors brought to the CPU to be hashed)."""
    return fast_state_root(list(host_state(state).items()))


@dataclass
class StepContext:
    """Per-run constants a step needs besides the state and the batch."""

    spec: TaskSpec
    model: Model
    dataset: Dataset
    device: torch.device

    def batch(self, step: int, device: torch.device | None = None) -> dict[str, torch.Tensor]:
        """The batch of step ``step`` (0-based), decoded from the committed samples (on ``device``,
        by default the run's)."""
        samples = [self.dataset.samples[i] for i in batch_indices(self.spec, step)]
        return self.model.batch(samples, self.device if device is None else device)


@dataclass
class StepResult:
    """A step's new state and loss, and the tensors its op log starts with (state, batch, const)."""

    state: State
    loss: torch.Tensor
    start: list[tuple[str, torch.Tensor]]


def run_step(ctx: StepContext, state: State, step: int, batch: dict[str, torch.Tensor] | None = None) -> StepResult:
    """Train step ``step``: S_step -> S_{step+1}, as RepOps ops on whatever tape is active.

    Canonical op order: the model's forward and backward ops, then for each parameter in state order
    ``adam_m``, ``adam_v``, ``adamw``, then ``add`` of the step counter and ``const.one``.
    ``batch``: the step's batch, if the caller has it already (default: ``ctx.batch(step)``).
    """
    if batch is None:
        batch = ctx.batch(step)
    one = torch.ones((), dtype=torch.float32, device=ctx.device)
    start = [*state.items(), *(("batch." + k, v) for k, v in batch.items()), ("const.one", one)]
    params = {n: state[n] for n, _ in ctx.model.param_shapes()}
    loss, grads = ctx.model.forward_backward(params, batch, one)
    opt = ctx.spec.optimizer
    lr = learning_rate(ctx.spec, step)
    new: State = {}
    moments: dict[str, torch.Tensor] = {}
    for name in params:
        new[name], moments["m." + name], moments["v." + name] = R.adamw_step(
            params[name], grads[name], state["m." + name], state["v." + name], step=step + 1, lr=lr,
            beta1=opt.beta1, beta2=opt.beta2, eps=opt.eps, weight_decay=opt.weight_decay)
    for prefix in ("m.", "v."):
        for name in params:
            new[prefix + name] = moments[prefix + name]
    new["step"] = R.add(state["step"], one)
    return StepResult(new, loss, start)


def run_step_with_fault(ctx: StepContext, state: State, step: int, fault: Fault | None) -> StepResult:
    """:func:`run_step`, with ``fault`` applied when it names this step (checked to exist)."""
    if fault is None or fault.step != step:
        return run_step(ctx, state, step)
    with R.Tape(keep=False, inject=fault.repops_fault()) as tape:
        result = run_step(ctx, state, step)
    if fault.op >= tape.count:
        raise TrainError(f"--inject: step {step} has {tape.count} ops, no op {fault.op}")
    return result


def step_constant_values(ctx: StepContext, step: int) -> dict[str, float]:
    """The constants of step ``step`` that change from step to step (AdamW's learning rate and bias
    corrections), by the names the ``adamw`` kernel gives them: what :func:`run_step` passes."""
    opt = ctx.spec.optimizer
    attrs = {
        "lr": float(learning_rate(ctx.spec, step)), "beta1": float(opt.beta1), "beta2": float(opt.beta2),
        "eps": float(opt.eps), "weight_decay": float(opt.weight_decay), "step": step + 1,
    }  # fmt: skip
    return adamw_step_constants(attrs)


def cuda_graphs_enabled() -> bool:
    """Whether CUDA training replays captured steps (``VERIGRAD_CUDA_GRAPHS=0`` turns it off)."""
    return os.environ.get("VERIGRAD_CUDA_GRAPHS", "1") not in ("0", "false", "no", "off")


class CudaGraphSteps:
    """Training steps on a GPU replayed from one captured CUDA graph: the same ops and kernels as
    :func:`run_step`, launched by one call instead of thousands.

    A step differs from the next only in its batch and in AdamW's step constants (learning rate,
    bias corrections). :meth:`start` runs step t eagerly (recording those constants and filling the
    constant caches), captures step t with the constants read from a device buffer
    (``repops.StepConstants``) and the state and batch in fixed buffers, replays it, and checks that
    the replay gives exactly the eager step's bits (state and loss); if not, it raises
    :class:`TrainError` and the caller keeps the eager path. :meth:`run` then trains step s by
    writing s's batch and constants into the buffers and replaying, all queued on the stream without
    waiting for the GPU (copies from pinned memory), so the host prepares step s+1 while the GPU runs
    step s. The state and loss it returns live in those buffers: the next :meth:`run` overwrites them,
    so a caller that keeps one copies it (a checkpoint commit does; ``train`` clones the loss).
    """

    def __init__(self, ctx: StepContext) -> None:
        if ctx.device.type != "cuda":
            raise TrainError("CUDA graphs need a CUDA device")
        self.ctx = ctx
        self.consts = R.StepConstants()
        self.graph: torch.cuda.CUDAGraph | None = None
        self.state: State = {}
        self.batch: dict[str, torch.Tensor] = {}
        self.loss: torch.Tensor | None = None

    def start(self, state: State, step: int) -> StepResult:
        """Train step ``step`` from ``state`` (not modified) through a freshly captured graph."""
        ctx = self.ctx
        with R.step_constants(self.consts):
            self.consts.begin_step()
            eager = run_step(ctx, state, step)
        expected = {n: R.f32_bits(v) for n, v in step_constant_values(ctx, step).items()}
        if self.consts.bits != expected:
            raise TrainError(f"step constants {self.consts.bits} are not the expected {expected}")
        self.state = {n: t.detach().clone() for n, t in state.items()}
        self.batch = {k: v.clone() for k, v in ctx.batch(step).items()}
        self.consts.bind(ctx.device)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), R.step_constants(self.consts):
            for _ in range(2):  # warm-up on a side stream before capture, as torch.cuda.graph asks
                self.consts.begin_step()
                run_step(ctx, self.state, step, batch=self.batch)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with R.step_constants(self.consts):
            self.consts.begin_step()
            with torch.cuda.graph(graph):
                res = run_step(ctx, self.state, step, batch=self.batch)
                for n, t in res.state.items():
                    self.state[n].copy_(t)
                self.loss = res.loss
        self.graph = graph
        for n, t in state.items():  # the warm-ups trained the buffers: back to S_step
            self.state[n].copy_(t)
        out = self.run(step)
        same = all(torch.equal(out.state[n].view(torch.int32), eager.state[n].view(torch.int32))
                   for n in eager.state)
        if not same or not torch.equal(out.loss.view(torch.int32), eager.loss.view(torch.int32)):
            raise TrainError("a replayed CUDA graph step differs from the eager step")
        return out

    def run(self, step: int) -> StepResult:
        """Train step ``step`` from the state in the buffers (the last step's output)."""
        if self.graph is None or self.loss is None:
            raise TrainError("CudaGraphSteps.run before start")
        self.consts.fill(step_constant_values(self.ctx, step), non_blocking=True)
        for k, v in self.ctx.batch(step, torch.device("cpu")).items():
            self.batch[k].copy_(v.pin_memory(), non_blocking=True)
        self.graph.replay()
        return StepResult(self.state, self.loss, [])


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


def prepare_commit(state: State, store: LocalStore | None) -> Callable[[], tuple[bytes, str | None]]:
    """One checkpoint's commit in two parts. This call does what needs the GIL: the host copy of the
    state, the copies of its bytes the state root reads, and the serialised checkpoint. The function
    it returns does the rest (the state root in C++, the keccak digest and the file write, which all
    release the GIL) and returns the root and the store digest; it no longer reads ``state``."""
    host = host_state(state)
    root = prepare_state_root(list(host.items()))
    blob = encode_tensors(host) if store is not None else None

    def finish() -> tuple[bytes, str | None]:
        return root(), (store.put(blob) if store is not None and blob is not None else None)

    return finish


def commit_state(state: State, store: LocalStore | None) -> tuple[bytes, str | None]:
    """One checkpoint's work: the state root, and the state written to ``store`` (its digest)."""
    return prepare_commit(state, store)()


class CheckpointCommitter:
    """Checkpoint commits off the training loop: S_t is hashed and stored while steps t+1... run.

    :meth:`submit` takes a private host copy of the state (the one device-to-host transfer a
    checkpoint needs, so later steps may overwrite the device tensors) and queues the commit
    (:func:`commit_state`: state root in C++ and keccak digest, both without the GIL, the serialised
    checkpoint and its file write) on one worker thread; results are delivered in checkpoint order by
    :meth:`drain`, on the caller's thread, which appends them to ``checkpoints`` and ``trace`` and
    calls ``on_checkpoint``. What is committed is exactly what a synchronous commit would give: the
    same bytes are hashed, in the same order; only the time they are hashed changes. The worker
    still needs the GIL between its native calls, so a training loop that is busy in Python (a small
    model whose steps are queued on a GPU) hides less of it than one that waits for its device.

    ``background=False`` does every commit inside :meth:`submit` (the reference behaviour).
    """

    def __init__(self, store: LocalStore | None, trace: TraceTree, checkpoints: list[Checkpoint],
                 on_checkpoint: Callable[[Checkpoint, bytes], None] | None = None, background: bool = True):
        self.store = store
        self.trace = trace
        self.checkpoints = checkpoints
        self.on_checkpoint = on_checkpoint
        self._pending: deque[tuple[int, Future[tuple[bytes, str | None]]]] = deque()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="verigrad-commit") if background else None

    def submit(self, step: int, state: State) -> None:
        """Commit the state after ``step`` steps (now, or queued on the worker)."""
        if self._pool is None:
            future: Future[tuple[bytes, str | None]] = Future()
            future.set_result(commit_state(state, self.store))
        else:
            future = self._pool.submit(commit_state, host_state(state, copy=True), self.store)
        self._pending.append((step, future))
        self.drain(block=False)

    def drain(self, block: bool = True) -> None:
        """Record finished commits in order (``block``: wait for all that are queued)."""
        while self._pending and (block or self._pending[0][1].done()):
            step, future = self._pending.popleft()
            root, digest = future.result()  # re-raises a failed commit here
            cp = Checkpoint(step, root, digest)
            self.checkpoints.append(cp)
            trace_root = self.trace.append_checkpoint(root)
            if self.on_checkpoint is not None:
                self.on_checkpoint(cp, trace_root)

    def close(self) -> None:
        """Wait for the worker and stop it (queued commits still run; call :meth:`drain` to record)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> CheckpointCommitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    R.check_policy(dev)
    store = LocalStore(out_dir) if out_dir is not None else None
    state = initial_state(model, dev)
    trace = TraceTree()
    checkpoints: list[Checkpoint] = []
    wanted = set(checkpoint_steps(spec))
    losses: list[float] = []

    graphs = CudaGraphSteps(ctx) if dev.type == "cuda" and fault is None and cuda_graphs_enabled() else None
    with CheckpointCommitter(store, trace, checkpoints, on_checkpoint) as committer:
        committer.submit(0, state)
        bar = _progress(spec.steps, progress)
        queued: list[torch.Tensor] = []  # losses still on the GPU: read in one transfer, not one per step

        def read_losses() -> None:
            if queued:
                losses.extend(float(x) for x in torch.stack(queued).tolist())
                queued.clear()

        for step in range(spec.steps):
            if graphs is not None and graphs.graph is not None:
                res = graphs.run(step)
            elif graphs is not None and step >= 1:  # step 0 eagerly: lazy initialisation, first uses
                try:
                    res = graphs.start(state, step)
                except (RuntimeError, R.RepOpsError, TrainError) as err:
                    warnings.warn(f"CUDA graphs off for this run ({err}); training op by op", stacklevel=2)
                    graphs = None
                    res = run_step(ctx, state, step)
            else:
                res = run_step_with_fault(ctx, state, step, fault)
            state = res.state
            if dev.type == "cuda":
                queued.append(res.loss.detach().clone())  # no wait for the GPU here
            else:
                losses.append(float(res.loss.item()))
            if step + 1 in wanted:
                read_losses()
                committer.submit(step + 1, state)
            else:
                committer.drain(block=False)
            if bar is not None:
                read_losses()
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
        read_losses()
        committer.drain()
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

"""Task specs: the file format, its loader, the dataset commitment and the batch schedule.

A task spec fixes everything a training run depends on, so that the whole run -- initial state, the
batch of every step, every learning rate -- is a pure function of the spec. Nothing here uses torch's
RNG or a platform math library: the batch schedule and the initial weights come from SplitMix64 over
64-bit integers, and the learning-rate schedule uses IEEE double + - * / (correctly rounded everywhere)
before one rounding to float32.

File format (TOML), e.g. ``protocol/specs/digits-mlp.toml``::

    name = "digits-mlp"
    repops_version = "repops-1"
    seed = 20261122
    steps = 300
    batch_size = 32
    checkpoint_interval = 50

    [model]            # kind = "mlp" (hidden = [...]) or "gpt" (block_size, d_model, n_layer, n_head)
    [dataset]          # name, split, samples, commitment = "0x<keccak RFC 9162 root over samples>"
    [optimizer]        # kind = "adamw", lr, beta1, beta2, eps, weight_decay
    [schedule]         # kind = "constant" | "linear" (warmup_steps, final_fraction)

Every malformed field raises :class:`SpecError` naming the field and what is expected.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import tomllib

from protocol.data import DATASETS, Dataset, DatasetError, load_dataset
from protocol.errors import VerigradError

#: Version of the reproducible-operator contract this engine implements; a spec must name it.
REPOPS_VERSION = "repops-1"
#: Names of the specs that ship inside the package (``protocol/specs/<name>.toml``).
SHIPPED_SPECS = ("digits-mlp", "tiny-gpt")

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


class SpecError(VerigradError):
    """A task spec that cannot be trained: unreadable, a missing or ill-typed field, a bad value."""


class DatasetCommitmentError(SpecError):
    """The shipped dataset does not hash to the commitment written in the spec."""


# ----------------------------------------------------------------------------------------------
# Types
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """Model family and its shape. ``mlp`` uses ``hidden``; ``gpt`` the transformer fields."""

    kind: str
    hidden: tuple[int, ...] = ()
    block_size: int = 0
    d_model: int = 0
    n_layer: int = 0
    n_head: int = 0


@dataclass(frozen=True)
class DatasetSpec:
    """Which shipped dataset split, how many samples, and the Merkle root committing to them."""

    name: str
    split: str
    samples: int
    commitment: str


@dataclass(frozen=True)
class OptimizerSpec:
    """AdamW hyper-parameters (decoupled weight decay)."""

    kind: str
    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0


@dataclass(frozen=True)
class ScheduleSpec:
    """Learning-rate schedule: ``constant``, or ``linear`` warm-up then linear decay to a fraction."""

    kind: str = "constant"
    warmup_steps: int = 0
    final_fraction: float = 1.0


@dataclass(frozen=True)
class TaskSpec:
    """A complete training task. Its :func:`spec_hash` is what goes on chain."""

    name: str
    repops_version: str
    seed: int
    steps: int
    batch_size: int
    checkpoint_interval: int
    model: ModelSpec
    dataset: DatasetSpec
    optimizer: OptimizerSpec
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)

    def with_steps(self, steps: int) -> TaskSpec:
        """The same task trained for ``steps`` steps (the CLI's ``--steps``)."""
        if steps < 1:
            raise SpecError(f"steps: expected a positive integer, got {steps}")
        return TaskSpec(**{**self.__dict__, "steps": steps})

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (tuples as lists); the canonical JSON of this is hashed."""
        return json.loads(json.dumps(asdict(self)))


# ----------------------------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------------------------

_TYPES: dict[type, str] = {int: "an integer", float: "a number", str: "a string"}


def _get(table: dict[str, Any], key: str, typ: type, where: str, default: Any = ...) -> Any:
    """Fetch ``table[key]`` as ``typ``, or raise a SpecError saying which field and what type."""
    name = f"{where}{key}"
    if key not in table:
        if default is ...:
            raise SpecError(f"{name}: missing; expected {_TYPES.get(typ, typ.__name__)}")
        return default
    value = table[key]
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, typ):
        raise SpecError(f"{name}: expected {_TYPES.get(typ, typ.__name__)}, got {value!r}")
    return value


def _positive(value: int, name: str) -> int:
    if value < 1:
        raise SpecError(f"{name}: expected a positive integer, got {value}")
    return value


def _table(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise SpecError(f"[{key}]: missing table; expected a [{key}] section")
    return value


def _unknown(table: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise SpecError(f"{where}{extra[0]}: unknown field; expected one of {', '.join(sorted(allowed))}")


def _parse_model(t: dict[str, Any]) -> ModelSpec:
    kind = _get(t, "kind", str, "model.")
    if kind == "mlp":
        _unknown(t, {"kind", "hidden"}, "model.")
        hidden = t.get("hidden")
        if not isinstance(hidden, list) or not hidden or not all(
            isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden
        ):
            raise SpecError(f"model.hidden: expected a non-empty list of positive integers, got {hidden!r}")
        return ModelSpec("mlp", hidden=tuple(hidden))
    if kind == "gpt":
        _unknown(t, {"kind", "block_size", "d_model", "n_layer", "n_head"}, "model.")
        spec = ModelSpec(
            "gpt",
            block_size=_positive(_get(t, "block_size", int, "model."), "model.block_size"),
            d_model=_positive(_get(t, "d_model", int, "model."), "model.d_model"),
            n_layer=_positive(_get(t, "n_layer", int, "model."), "model.n_layer"),
            n_head=_positive(_get(t, "n_head", int, "model."), "model.n_head"),
        )
        if spec.d_model % spec.n_head:
            raise SpecError(f"model.n_head: must divide d_model={spec.d_model}, got {spec.n_head}")
        return spec
    raise SpecError(f"model.kind: expected 'mlp' or 'gpt', got {kind!r}")


def _parse_dataset(t: dict[str, Any]) -> DatasetSpec:
    _unknown(t, {"name", "split", "samples", "commitment"}, "dataset.")
    name = _get(t, "name", str, "dataset.")
    if name not in DATASETS:
        raise SpecError(f"dataset.name: expected one of {', '.join(DATASETS)}, got {name!r}")
    split = _get(t, "split", str, "dataset.", "train")
    samples = _positive(_get(t, "samples", int, "dataset."), "dataset.samples")
    commitment = _get(t, "commitment", str, "dataset.").lower()
    digits = commitment[2:] if commitment.startswith("0x") else ""
    if len(digits) != 64 or any(c not in "0123456789abcdef" for c in digits):
        raise SpecError(f"dataset.commitment: expected '0x' + 64 hex digits, got {commitment!r}")
    return DatasetSpec(name, split, samples, commitment)


def _parse_optimizer(t: dict[str, Any]) -> OptimizerSpec:
    _unknown(t, {"kind", "lr", "beta1", "beta2", "eps", "weight_decay"}, "optimizer.")
    kind = _get(t, "kind", str, "optimizer.")
    if kind != "adamw":
        raise SpecError(f"optimizer.kind: expected 'adamw', got {kind!r}")
    opt = OptimizerSpec(
        kind,
        lr=_get(t, "lr", float, "optimizer."),
        beta1=_get(t, "beta1", float, "optimizer.", 0.9),
        beta2=_get(t, "beta2", float, "optimizer.", 0.999),
        eps=_get(t, "eps", float, "optimizer.", 1e-8),
        weight_decay=_get(t, "weight_decay", float, "optimizer.", 0.0),
    )
    if not 0.0 < opt.lr < 1.0:
        raise SpecError(f"optimizer.lr: expected a number in (0, 1), got {opt.lr}")
    for key in ("beta1", "beta2"):
        if not 0.0 <= getattr(opt, key) < 1.0:
            raise SpecError(f"optimizer.{key}: expected a number in [0, 1), got {getattr(opt, key)}")
    if not opt.eps > 0.0:
        raise SpecError(f"optimizer.eps: expected a positive number, got {opt.eps}")
    if not 0.0 <= opt.weight_decay < 1.0:
        raise SpecError(f"optimizer.weight_decay: expected a number in [0, 1), got {opt.weight_decay}")
    return opt


def _parse_schedule(t: dict[str, Any]) -> ScheduleSpec:
    _unknown(t, {"kind", "warmup_steps", "final_fraction"}, "schedule.")
    kind = _get(t, "kind", str, "schedule.", "constant")
    if kind not in ("constant", "linear"):
        raise SpecError(f"schedule.kind: expected 'constant' or 'linear', got {kind!r}")
    warmup = _get(t, "warmup_steps", int, "schedule.", 0)
    if warmup < 0:
        raise SpecError(f"schedule.warmup_steps: expected an integer >= 0, got {warmup}")
    final = _get(t, "final_fraction", float, "schedule.", 1.0)
    if not 0.0 <= final <= 1.0:
        raise SpecError(f"schedule.final_fraction: expected a number in [0, 1], got {final}")
    return ScheduleSpec(kind, warmup, final)


def parse_spec(raw: dict[str, Any]) -> TaskSpec:
    """Validate a decoded spec document and build the typed :class:`TaskSpec`."""
    _unknown(raw, {"name", "repops_version", "seed", "steps", "batch_size", "checkpoint_interval",
                   "model", "dataset", "optimizer", "schedule"}, "")
    version = _get(raw, "repops_version", str, "")
    if version != REPOPS_VERSION:
        raise SpecError(f"repops_version: this engine implements {REPOPS_VERSION!r}, got {version!r}")
    seed = _get(raw, "seed", int, "")
    if not 0 <= seed <= MASK64:
        raise SpecError(f"seed: expected an integer in [0, 2**64), got {seed}")
    spec = TaskSpec(
        name=_get(raw, "name", str, ""),
        repops_version=version,
        seed=seed,
        steps=_positive(_get(raw, "steps", int, ""), "steps"),
        batch_size=_positive(_get(raw, "batch_size", int, ""), "batch_size"),
        checkpoint_interval=_positive(_get(raw, "checkpoint_interval", int, ""), "checkpoint_interval"),
        model=_parse_model(_table(raw, "model")),
        dataset=_parse_dataset(_table(raw, "dataset")),
        optimizer=_parse_optimizer(_table(raw, "optimizer")),
        schedule=_parse_schedule(raw.get("schedule", {}) if isinstance(raw.get("schedule", {}), dict)
                                 else _table(raw, "schedule")),
    )
    if spec.model.kind == "mlp" and spec.dataset.name != "digits":
        raise SpecError(f"dataset.name: model 'mlp' trains on 'digits', got {spec.dataset.name!r}")
    if spec.model.kind == "gpt" and spec.dataset.name != "genesis-kjv":
        raise SpecError(f"dataset.name: model 'gpt' trains on 'genesis-kjv', got {spec.dataset.name!r}")
    return spec


def load_spec(name_or_path: str | Path) -> TaskSpec:
    """Load a shipped spec by name (``digits-mlp``, ``tiny-gpt``) or any spec file by path."""
    text: str
    source = str(name_or_path)
    if source in SHIPPED_SPECS:
        text = resources.files("protocol.specs").joinpath(f"{source}.toml").read_text("utf-8")
    else:
        path = Path(source)
        if not path.is_file():
            raise SpecError(
                f"spec {source!r}: no such file, and not a shipped spec ({', '.join(SHIPPED_SPECS)})")
        text = path.read_text("utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"spec {source!r}: not valid TOML ({exc})") from exc
    try:
        return parse_spec(raw)
    except SpecError as exc:
        raise type(exc)(f"spec {source!r}: {exc}") from exc


def spec_hash(spec: TaskSpec) -> str:
    """sha256 of the canonical JSON of the spec (sorted keys, no spaces): the on-chain task hash."""
    canon = json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":")).encode()
    return "0x" + hashlib.sha256(canon).hexdigest()


# ----------------------------------------------------------------------------------------------
# Dataset commitment
# ----------------------------------------------------------------------------------------------


def samples_root(samples: tuple[bytes, ...] | list[bytes]) -> str:
    """RFC 9162 Merkle root over the samples in order, one leaf per sample, with the commitment
    layer's hash (keccak-256, see ``protocol.commit.hashing``) through pymerkle.

    An inclusion proof of leaf ``i`` against this root proves sample ``i``, hence any step's batch.
    """
    from pymerkle import InmemoryTree

    from protocol.commit.hashing import PYMERKLE_ALGORITHM

    tree = InmemoryTree(algorithm=PYMERKLE_ALGORITHM)
    for s in samples:
        tree.append_entry(s)
    return "0x" + tree.get_root().hex()


def open_dataset(spec: TaskSpec, *, check: bool = True) -> Dataset:
    """Load the spec's dataset split and, with ``check``, verify it against the spec's commitment."""
    try:
        ds = _cached_dataset(spec.dataset.name, spec.dataset.split, spec.model.block_size)
    except DatasetError as exc:
        raise SpecError(f"dataset: {exc}") from exc
    if len(ds.samples) != spec.dataset.samples:
        raise DatasetCommitmentError(
            f"dataset.samples: the shipped {ds.name}/{ds.split} has {len(ds.samples)} samples, "
            f"the spec says {spec.dataset.samples}")
    if check:
        root = _cached_root(ds.name, ds.split, spec.model.block_size)
        if root != spec.dataset.commitment:
            raise DatasetCommitmentError(
                f"dataset.commitment: the shipped {ds.name}/{ds.split} hashes to {root}, "
                f"the spec says {spec.dataset.commitment}")
    return ds


@dataclass(frozen=True)
class SampleProof:
    """Sample ``index`` of the committed dataset, with its RFC 9162 inclusion proof."""

    index: int
    sample: bytes
    proof: Any  # protocol.commit.InclusionProof


def batch_proofs(spec: TaskSpec, step: int) -> list[SampleProof]:
    """The samples of step ``step``'s batch with inclusion proofs against ``dataset.commitment``.

    What a solver hands a verifier (or a contract) to show that a step read the committed data.
    """
    from protocol.commit import InclusionProof
    from protocol.commit.merkle import inclusion_path_from_levels

    ds = open_dataset(spec)
    levels = _cached_levels(ds.name, ds.split, spec.model.block_size)
    n = len(ds.samples)
    return [SampleProof(i, ds.samples[i], InclusionProof(i, n, tuple(inclusion_path_from_levels(levels, i))))
            for i in batch_indices(spec, step)]


def verify_batch(spec: TaskSpec, step: int, proofs: list[SampleProof]) -> None:
    """Raise :class:`DatasetCommitmentError` unless ``proofs`` are exactly step ``step``'s batch,
    each sample proven against the spec's dataset commitment."""
    from protocol.commit import ProofError

    want = batch_indices(spec, step)
    got = [p.index for p in proofs]
    if got != want:
        raise DatasetCommitmentError(f"step {step}: batch indices {got[:4]}... are not the spec's {want[:4]}...")
    root = bytes.fromhex(spec.dataset.commitment[2:])
    for p in proofs:
        if p.proof.index != p.index or p.proof.size != spec.dataset.samples:
            raise DatasetCommitmentError(f"sample {p.index}: proof is for leaf {p.proof.index} of {p.proof.size}")
        try:
            p.proof.verify(p.sample, root)
        except ProofError as exc:
            raise DatasetCommitmentError(f"sample {p.index}: {exc}") from exc


@lru_cache(maxsize=4)
def _cached_levels(name: str, split: str, block_size: int) -> list[list[bytes]]:
    from protocol.commit.hashing import leaf_hash
    from protocol.commit.merkle import tree_levels

    return tree_levels([leaf_hash(s) for s in _cached_dataset(name, split, block_size).samples])


@lru_cache(maxsize=8)
def _cached_dataset(name: str, split: str, block_size: int) -> Dataset:
    return load_dataset(name, split, block_size)


@lru_cache(maxsize=8)
def _cached_root(name: str, split: str, block_size: int) -> str:
    return samples_root(_cached_dataset(name, split, block_size).samples)


# ----------------------------------------------------------------------------------------------
# Integer PRNG, batch schedule, learning-rate schedule
# ----------------------------------------------------------------------------------------------


def splitmix64(state: int) -> tuple[int, int]:
    """One SplitMix64 step over Python integers: returns (new_state, output)."""
    state = (state + GOLDEN) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def derive_seed(seed: int, *labels: int | str) -> int:
    """A 64-bit seed for a named purpose (``derive_seed(seed, "perm", epoch)``), by hashing."""
    text = ":".join([str(seed), *map(str, labels)]).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little")


def permutation(n: int, seed: int) -> tuple[int, ...]:
    """Fisher-Yates permutation of range(n) driven by SplitMix64.

    The index drawn at position i is ``(r * (i + 1)) >> 64`` (multiply-shift, no rejection): a bias
    below 2**-50 for our sizes, and exact integer arithmetic everywhere.
    """
    perm = list(range(n))
    state = seed
    for i in range(n - 1, 0, -1):
        state, r = splitmix64(state)
        j = (r * (i + 1)) >> 64
        perm[i], perm[j] = perm[j], perm[i]
    return tuple(perm)


@lru_cache(maxsize=16)
def _epoch_perm(n: int, seed: int, epoch: int) -> tuple[int, ...]:
    return permutation(n, derive_seed(seed, "epoch", epoch))


def batch_indices(spec: TaskSpec, step: int) -> list[int]:
    """Sample indices of the batch of step ``step`` (0-based): a pure function of (spec, step).

    Samples are drawn without replacement through one permutation per epoch; batch position p of the
    whole run is ``step * batch_size + j`` and lands in epoch ``p // samples``.
    """
    if step < 0:
        raise SpecError(f"step: expected an integer >= 0, got {step}")
    n, b = spec.dataset.samples, spec.batch_size
    out = []
    for p in range(step * b, step * b + b):
        out.append(_epoch_perm(n, spec.seed, p // n)[p % n])
    return out


def f32(x: float) -> float:
    """Round a Python float (IEEE double) to the nearest float32 (ties to even)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def learning_rate(spec: TaskSpec, step: int) -> float:
    """Learning rate of step ``step`` as a float32 value.

    Computed in IEEE double with + - * / only (correctly rounded on every platform), then rounded once
    to float32, so every machine gets the same bits.
    """
    base = spec.optimizer.lr
    sch = spec.schedule
    if sch.kind == "constant":
        return f32(base)
    if step < sch.warmup_steps:
        return f32(base * (step + 1) / sch.warmup_steps)
    span = max(spec.steps - sch.warmup_steps, 1)
    frac = (step - sch.warmup_steps) / span
    return f32(base * (1.0 - (1.0 - sch.final_fraction) * frac))


def power(base: float, n: int) -> float:
    """``base ** n`` in float32 by n sequential float32 multiplications (no libm pow)."""
    acc = f32(1.0)
    b = f32(base)
    for _ in range(n):
        acc = f32(acc * b)
    return acc

"""Task specs: loading by name and path, typed errors naming the field, dataset commitment, schedules."""

from __future__ import annotations

from dataclasses import replace
from importlib import resources
from pathlib import Path

import pytest
import tomllib

from protocol.data import load_dataset
from protocol.spec import (
    SHIPPED_SPECS,
    DatasetCommitmentError,
    SpecError,
    batch_indices,
    batch_proofs,
    learning_rate,
    load_spec,
    open_dataset,
    parse_spec,
    permutation,
    samples_root,
    spec_hash,
    verify_batch,
)


def _raw(name: str = "digits-mlp") -> dict:
    return tomllib.loads(resources.files("protocol.specs").joinpath(f"{name}.toml").read_text())


@pytest.mark.parametrize("name", SHIPPED_SPECS)
def test_load_spec_shipped_name_matches_its_dataset(name: str) -> None:
    spec = load_spec(name)
    assert spec.name == name
    ds = open_dataset(spec)  # raises if the shipped data does not hash to the commitment
    assert len(ds.samples) == spec.dataset.samples


def test_load_spec_by_path_equals_by_name(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(resources.files("protocol.specs").joinpath("tiny-gpt.toml").read_text())
    assert load_spec(path) == load_spec("tiny-gpt")
    assert spec_hash(load_spec(path)) == spec_hash(load_spec("tiny-gpt"))


def test_spec_hash_changes_with_any_field() -> None:
    spec = load_spec("digits-mlp")
    assert spec_hash(spec) != spec_hash(spec.with_steps(spec.steps + 1))


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.pop("steps"), "steps: missing"),
        (lambda r: r.update(batch_size="32"), "batch_size: expected an integer"),
        (lambda r: r.update(steps=0), "steps: expected a positive integer"),
        (lambda r: r.update(repops_version="0"), "repops_version"),
        (lambda r: r.update(colour="blue"), "colour: unknown field"),
        (lambda r: r["model"].update(kind="cnn"), "model.kind"),
        (lambda r: r["model"].update(hidden=[]), "model.hidden"),
        (lambda r: r["dataset"].update(commitment="0x1234"), "dataset.commitment"),
        (lambda r: r["dataset"].update(name="mnist"), "dataset.name"),
        (lambda r: r["optimizer"].update(kind="sgd"), "optimizer.kind"),
        (lambda r: r["optimizer"].update(lr=3), "optimizer.lr"),
        (lambda r: r["optimizer"].update(beta2=1.0), "optimizer.beta2"),
        (lambda r: r["schedule"].update(kind="cosine"), "schedule.kind"),
        (lambda r: r.pop("model"), "[model]"),
    ],
)
def test_parse_spec_malformed_field_names_it(mutate, field: str) -> None:
    raw = _raw()
    mutate(raw)
    with pytest.raises(SpecError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_spec(raw)


def test_parse_spec_gpt_head_count_must_divide_width() -> None:
    raw = _raw("tiny-gpt")
    raw["model"]["n_head"] = 3
    with pytest.raises(SpecError, match="model.n_head"):
        parse_spec(raw)


def test_load_spec_unknown_name_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not a shipped spec"):
        load_spec("no-such-spec")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(bad)


def test_open_dataset_wrong_commitment_rejected() -> None:
    raw = _raw()
    raw["dataset"]["commitment"] = "0x" + "00" * 32
    with pytest.raises(DatasetCommitmentError, match="hashes to"):
        open_dataset(parse_spec(raw))


def test_samples_root_changes_with_one_sample() -> None:
    samples = list(load_dataset("digits").samples[:64])
    root = samples_root(samples)
    samples[17] = samples[17][:-1] + bytes([samples[17][-1] ^ 1])
    assert samples_root(samples) != root


def test_permutation_is_a_permutation_and_seeded() -> None:
    p = permutation(1000, 7)
    assert sorted(p) == list(range(1000))
    assert p != permutation(1000, 8)
    assert p == permutation(1000, 7)


def test_batch_indices_cover_each_epoch_once() -> None:
    spec = load_spec("digits-mlp")
    n, b = spec.dataset.samples, spec.batch_size
    steps = n // b
    seen = [i for t in range(steps) for i in batch_indices(spec, t)]
    assert len(set(seen)) == len(seen) == steps * b
    assert batch_indices(spec, 3) == batch_indices(spec, 3)
    with pytest.raises(SpecError):
        batch_indices(spec, -1)


def test_learning_rate_linear_schedule_is_float32() -> None:
    spec = load_spec("digits-mlp")
    import numpy as np

    lrs = [learning_rate(spec, t) for t in range(spec.steps)]
    assert all(float(np.float32(x)) == x for x in lrs)
    assert lrs[0] < lrs[spec.schedule.warmup_steps - 1]  # warm-up rises
    assert lrs[-1] < lrs[spec.schedule.warmup_steps]  # then decays
    assert max(lrs) <= spec.optimizer.lr * (1 + 1e-7)


def test_repops_version_is_the_op_library_version() -> None:
    from protocol import repops
    from protocol.spec import REPOPS_VERSION

    assert REPOPS_VERSION == repops.VERSION
    assert all(load_spec(n).repops_version == repops.VERSION for n in SHIPPED_SPECS)


def test_batch_proofs_verify_against_the_commitment() -> None:
    from protocol.commit import merkle_root
    from protocol.commit.hashing import leaf_hash

    spec = load_spec("digits-mlp")
    ds = open_dataset(spec)
    assert "0x" + merkle_root([leaf_hash(s) for s in ds.samples]).hex() == spec.dataset.commitment
    proofs = batch_proofs(spec, 7)
    verify_batch(spec, 7, proofs)
    with pytest.raises(DatasetCommitmentError, match="not the spec's"):
        verify_batch(spec, 8, proofs)
    forged = list(proofs)
    forged[2] = replace(forged[2], sample=forged[2].sample[:-1] + bytes([forged[2].sample[-1] ^ 1]))
    with pytest.raises(DatasetCommitmentError, match=f"sample {proofs[2].index}"):
        verify_batch(spec, 7, forged)

"""Content-addressed artifact store: digests, verified reads, tensor and JSON helpers, URL backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from protocol.commit import ArtifactStore, LocalStore, open_store
from protocol.commit.errors import ArtifactNotFound, IntegrityError, StoreError
from protocol.commit.hashing import hash_bytes
from protocol.errors import VerigradError


def test_put_get_roundtrip_and_digest(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    d = store.put(b"hello")
    assert d == hash_bytes(b"hello").hex()
    assert (
        store.get(d) == b"hello"
        and store.get("0x" + d) == b"hello"
        and store.get(bytes.fromhex(d)) == b"hello"
    )
    assert store.put(b"hello") == d and store.has(d)
    assert isinstance(store, ArtifactStore)


def test_get_detects_damage_and_absence(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    d = store.put(b"checkpoint bytes")
    store.path_of(d).write_bytes(b"checkpoint bytez")
    with pytest.raises(IntegrityError) as info:
        store.get(d)
    assert isinstance(info.value, VerigradError)
    with pytest.raises(ArtifactNotFound):
        store.get("ab" * 32)
    with pytest.raises(StoreError):
        store.get("not-a-digest")


def test_tensor_dict_roundtrip_bit_exact_and_deterministic(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    nan_payload = torch.tensor([0x7FC00001], dtype=torch.int32).view(torch.float32)
    ckpt = {
        "w": torch.randn(5, 3),
        "special": torch.cat([torch.tensor([-0.0, float("inf"), 1e-45]), nan_payload]),
        "step": torch.tensor(12, dtype=torch.int64),
        "empty": torch.zeros(0, 4),
    }
    d = store.put_tensors(ckpt)
    assert store.put_tensors(dict(ckpt)) == d
    back = store.get_tensors(d)
    assert list(back) == list(ckpt)
    for k, v in ckpt.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        assert back[k].numpy().tobytes() == v.numpy().tobytes()
    as_np = store.get_tensors(d, as_torch=False)
    assert isinstance(as_np["w"], np.ndarray)


def test_json_helpers_are_canonical(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    d1 = store.put_json({"b": 1, "a": [1, 2]})
    d2 = store.put_json({"a": [1, 2], "b": 1})
    assert d1 == d2 and store.get_json(d1) == {"a": [1, 2], "b": 1}
    raw = store.put(b"\xff\xfe")
    with pytest.raises(StoreError):
        store.get_json(raw)


def test_open_store_by_url(tmp_path: Path) -> None:
    a = open_store(tmp_path / "a")
    b = open_store(f"file://{tmp_path / 'a'}")
    d = a.put(b"x")
    assert b.get(d) == b"x"
    with pytest.raises(StoreError):
        open_store("s3://bucket/prefix")

"""Content-addressed artifact store: checkpoints, traces and proofs, named by the hash of their bytes.

A solver serves its artifacts from a store and a verifier fetches them by digest; since the name *is*
the hash, every read is checked, and a damaged or substituted artifact raises ``IntegrityError``
instead of feeding wrong bits into a dispute. Digests are keccak-256 as 64 lowercase hex characters
(the same hash as every other commitment, so an artifact's digest can be posted on chain as bytes32).

``ArtifactStore`` is the interface; ``LocalStore`` keeps files under a directory
(``<root>/<first two hex chars>/<digest>``). ``open_store(url)`` picks the backend from a URL:
a plain path or ``file://`` for now; an HTTP or object-store backend implements the same protocol.

Tensor dicts are serialized in a small deterministic format (same dict -> same bytes -> same digest):
``b"VGTD" || uint32 header_len (big-endian) || header JSON || raw little-endian tensor bytes``, the
header listing ``name``, ``dtype``, ``shape`` and byte ``offset`` for each tensor in insertion order.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlparse

import numpy as np

from protocol.commit.errors import ArtifactNotFound, IntegrityError, StoreError
from protocol.commit.hashing import hash_bytes

_TENSOR_MAGIC = b"VGTD"
_TENSOR_DTYPES = {"float32", "float64", "int32", "int64", "uint8", "bool", "int16", "float16"}


def digest_hex(data: bytes) -> str:
    """The store digest of ``data``: keccak-256, 64 lowercase hex characters."""
    return hash_bytes(data).hex()


def _normalize_digest(digest: str | bytes) -> str:
    if isinstance(digest, (bytes, bytearray)):
        if len(digest) != 32:
            raise StoreError(f"a digest is 32 bytes, got {len(digest)}")
        return bytes(digest).hex()
    d = digest.lower().removeprefix("0x")
    if len(d) != 64 or any(c not in "0123456789abcdef" for c in d):
        raise StoreError(f"not a digest: {digest!r}")
    return d


@runtime_checkable
class ArtifactStore(Protocol):
    """What every backend offers: bytes in, digest out, and verified reads."""

    def put(self, data: bytes) -> str:
        """Store ``data``; returns its digest (idempotent)."""
        ...

    def get(self, digest: str | bytes) -> bytes:
        """The bytes stored under ``digest``, checked against it (``IntegrityError`` on mismatch)."""
        ...

    def has(self, digest: str | bytes) -> bool:
        """Whether an artifact with this digest is present (not verified)."""
        ...


class LocalStore:
    """A directory of content-addressed files."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path_of(self, digest: str | bytes) -> Path:
        """Where the artifact with this digest lives (whether or not it exists)."""
        d = _normalize_digest(digest)
        return self.root / d[:2] / d

    def put(self, data: bytes) -> str:
        """Store ``data`` atomically (write to a temporary file, then rename); returns its digest."""
        data = bytes(data)
        d = digest_hex(data)
        path = self.path_of(d)
        if path.exists():
            return d
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return d

    def get(self, digest: str | bytes) -> bytes:
        """Read and verify; raises ``ArtifactNotFound`` or ``IntegrityError``."""
        d = _normalize_digest(digest)
        try:
            data = self.path_of(d).read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFound(f"no artifact {d} in {self.root}") from None
        actual = digest_hex(data)
        if actual != d:
            raise IntegrityError(f"artifact {d} in {self.root} hashes to {actual}: the file is damaged")
        return data

    def has(self, digest: str | bytes) -> bool:
        """Whether the file exists."""
        return self.path_of(digest).exists()

    def put_json(self, obj: Any) -> str:
        """Store a JSON object canonically; see ``put_json``."""
        return put_json(self, obj)

    def get_json(self, digest: str | bytes) -> Any:
        """Load a JSON artifact; see ``get_json``."""
        return get_json(self, digest)

    def put_tensors(self, tensors: dict[str, Any]) -> str:
        """Store a checkpoint dict; see ``put_tensors``."""
        return put_tensors(self, tensors)

    def get_tensors(self, digest: str | bytes, as_torch: bool = True) -> dict[str, Any]:
        """Load a checkpoint dict; see ``get_tensors``."""
        return get_tensors(self, digest, as_torch=as_torch)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"


def open_store(url: str | os.PathLike[str]) -> ArtifactStore:
    """The store behind ``url``: a plain path or ``file://...``; other schemes are not available yet."""
    s = os.fspath(url)
    parsed = urlparse(s)
    if parsed.scheme in ("", "file"):
        path = unquote(parsed.path) if parsed.scheme == "file" else s
        if parsed.scheme == "file" and parsed.netloc not in ("", "localhost"):
            raise StoreError(f"file URL with a remote host is not supported: {s}")
        return LocalStore(path)
    if len(parsed.scheme) == 1:  # a Windows drive letter, not a scheme
        return LocalStore(s)
    raise StoreError(f"no artifact store backend for {parsed.scheme!r} URLs (supported: a path or file://)")


# ---------------------------------------------------------------------------------------------------
# Typed helpers: JSON and tensor dicts
# ---------------------------------------------------------------------------------------------------


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, no spaces, UTF-8), so equal objects share a digest."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def put_json(store: ArtifactStore, obj: Any) -> str:
    """Store a JSON-serializable object canonically; returns its digest."""
    return store.put(canonical_json(obj))


def get_json(store: ArtifactStore, digest: str | bytes) -> Any:
    """Load a JSON artifact (verified)."""
    data = store.get(digest)
    try:
        return json.loads(data)
    except ValueError as err:
        raise StoreError(f"artifact {_normalize_digest(digest)} is not JSON: {err}") from err


def encode_tensors(tensors: dict[str, Any]) -> bytes:
    """Serialize a name -> tensor dict (torch or numpy) into the deterministic ``VGTD`` format."""
    header = []
    blobs = []
    offset = 0
    for name, t in tensors.items():
        if hasattr(t, "detach"):
            t = t.detach().cpu().contiguous().numpy()
        arr = np.asarray(t)
        arr = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr).reshape(arr.shape)
        dtype = str(arr.dtype)
        if dtype not in _TENSOR_DTYPES:
            raise StoreError(f"tensor {name!r}: dtype {dtype} cannot be stored")
        raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header.append({"name": name, "dtype": dtype, "shape": list(arr.shape), "offset": offset})
        blobs.append(raw)
        offset += len(raw)
    hdr = canonical_json(header)
    return _TENSOR_MAGIC + len(hdr).to_bytes(4, "big") + hdr + b"".join(blobs)


def decode_tensors(data: bytes, as_torch: bool = True) -> dict[str, Any]:
    """Inverse of ``encode_tensors``; torch tensors when torch is importable and ``as_torch``."""
    if data[:4] != _TENSOR_MAGIC or len(data) < 8:
        raise StoreError("not a verigrad tensor artifact (bad magic)")
    n = int.from_bytes(data[4:8], "big")
    try:
        header = json.loads(data[8 : 8 + n])
    except ValueError as err:
        raise StoreError(f"tensor artifact header is not JSON: {err}") from err
    body = memoryview(data)[8 + n :]
    torch: Any = None
    if as_torch:
        try:
            import torch as _torch

            torch = _torch
        except ImportError:
            torch = None
    out: dict[str, Any] = {}
    for entry in header:
        dt = np.dtype(entry["dtype"]).newbyteorder("<")
        shape = tuple(entry["shape"])
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        start = entry["offset"]
        end = start + count * dt.itemsize
        if end > len(body):
            raise StoreError(f"tensor artifact truncated in {entry['name']!r}")
        arr = np.frombuffer(body[start:end], dtype=dt).astype(dt.newbyteorder("="), copy=True).reshape(shape)
        out[entry["name"]] = torch.from_numpy(arr) if torch is not None else arr
    return out


def put_tensors(store: ArtifactStore, tensors: dict[str, Any]) -> str:
    """Store a checkpoint (name -> tensor dict); returns its digest."""
    return store.put(encode_tensors(tensors))


def get_tensors(store: ArtifactStore, digest: str | bytes, as_torch: bool = True) -> dict[str, Any]:
    """Load a checkpoint stored with ``put_tensors`` (verified), as torch tensors by default."""
    return decode_tensors(store.get(digest), as_torch=as_torch)

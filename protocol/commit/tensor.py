"""Tensor commitments: chunked Merkle root over the element bits, and the tensor id.

Byte layout (docs/COMMITMENTS.md §Tensors; ``TensorCommit.sol`` recomputes all of it):

* **Elements**: the raw bits of each element, row-major (C order), each as a **big-endian** unsigned
  integer of the dtype's width (float32 -> uint32 of its IEEE-754 bits). Big-endian so that Solidity
  reads element i of a chunk as ``uint32(bytes4(chunk[4*i : 4*i+4]))`` with one shift, no byte swap.
* **Chunks**: consecutive ``CHUNK_BYTES = 256``-byte slices of that byte string (64 float32 elements);
  the last chunk is shorter when the data does not fill it, never padded. Leaf j = ``H(0x00 || chunk_j)``.
  256 bytes is where the cost of proving one element on chain (chunk as calldata + one sibling per
  level) is close to its minimum while hashing a checkpoint stays near the hash's bulk throughput
  (``benchmarks/hash_choice.py`` measures both).
* **Chunk root**: RFC 9162 root over the chunk leaves (``H("")`` for an empty tensor).
* **Tensor id** = ``H(0x02 || dtype:uint8 || ndim:uint8 || dim_0:uint32 || ... || dim_{ndim-1}:uint32 ||
  chunk_root:bytes32)``, integers big-endian. The 0x02 prefix keeps ids apart from RFC 9162 leaf
  (0x00) and node (0x01) preimages.

Dtype codes: 1 = float32, 2 = int32, 3 = int64 (e.g. a step counter). Anything else is refused
rather than silently converted: a commitment must be to exactly the bits the next step reads.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sha3

from protocol.commit.errors import CommitError, ProofError
from protocol.commit.hashing import EMPTY_ROOT, LEAF_PREFIX, TENSOR_ID_PREFIX, hash_bytes, leaf_hash
from protocol.commit.merkle import inclusion_path_from_levels, merkle_root, root_from_inclusion, tree_levels

CHUNK_BYTES = 256

#: dtype name -> (code in the tensor id, element width in bytes, big-endian numpy dtype of the bits)
DTYPES: dict[str, tuple[int, int, str]] = {
    "float32": (1, 4, ">u4"),
    "int32": (2, 4, ">u4"),
    "int64": (3, 8, ">u8"),
}
_CODE_TO_DTYPE = {code: name for name, (code, _, _) in DTYPES.items()}
_MAX_DIM = 2**32 - 1
_MAX_NDIM = 255


def _as_numpy(t: Any) -> np.ndarray:
    """A C-contiguous numpy view/copy of a torch tensor or array-like, on the CPU."""
    if hasattr(t, "detach") and hasattr(t, "cpu"):  # torch.Tensor, without importing torch here
        try:
            t = t.detach().cpu().contiguous().numpy()
        except (TypeError, RuntimeError) as err:  # e.g. bfloat16, which numpy cannot hold
            raise CommitError(f"cannot commit a tensor of dtype {t.dtype}: {err}") from err
    arr = np.asarray(t)
    # np.ascontiguousarray would turn a 0-d scalar (e.g. the step counter) into shape (1,).
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr).reshape(arr.shape)


def _dtype_name(arr: np.ndarray) -> str:
    name = str(arr.dtype)
    if name not in DTYPES:
        raise CommitError(f"cannot commit a tensor of dtype {name}: supported are {', '.join(DTYPES)}")
    return name


def tensor_bytes(t: Any) -> tuple[bytes, str, tuple[int, ...]]:
    """The committed byte string of a tensor (big-endian element bits, row-major), its dtype and shape."""
    arr = _as_numpy(t)
    name = _dtype_name(arr)
    _, width, be = DTYPES[name]
    bits = arr.view(f"=u{width}")  # same bits, as native unsigned integers
    return bits.astype(be, copy=False).tobytes(order="C"), name, tuple(int(d) for d in arr.shape)


def chunk_leaf_hashes(data: bytes) -> list[bytes]:
    """Leaf hashes ``H(0x00 || chunk)`` of the ``CHUNK_BYTES`` chunks of ``data``.

    One pass of direct keccak calls over memoryview slices, no tree nodes built: this runs over every
    tensor of every checkpoint, and at 256-byte chunks the per-call overhead is most of the cost
    (this form is ~25 % faster than calling ``leaf_hash`` per chunk).
    """
    mv = memoryview(data)
    keccak = sha3.keccak_256
    prefix = LEAF_PREFIX
    return [keccak(prefix + mv[i : i + CHUNK_BYTES]).digest() for i in range(0, len(data), CHUNK_BYTES)]


_NATIVE: dict[str, Any] = {}


def _native(name: str) -> Any:
    if name not in _NATIVE:
        fn = None
        try:
            from protocol.repops import fastcpu

            mod = fastcpu.load()
            fn = getattr(mod, name, None) if mod is not None else None
        except ImportError:
            fn = None
        _NATIVE[name] = fn
    return _NATIVE[name]


def native_chunk_root() -> Callable[[bytes, int], bytes] | None:
    """The C++ chunk root of the RepOps CPU extension (``protocol/repops/csrc/fastcpu.cpp``), when
    torch is importable and the extension is built: the same leaves, nodes and root as
    ``merkle_root(chunk_leaf_hashes(data))``, without Python's per-hash overhead, and with the GIL
    released, so a checkpoint committed on a worker thread overlaps training. None otherwise (then
    the pysha3 path runs; ``VERIGRAD_REPOPS_FASTCPU=0`` turns both fast paths off)."""
    fn: Callable[[bytes, int], bytes] | None = _native("chunk_root")
    return fn


def native_state_root(tensors: Sequence[Any]) -> bytes | None:
    """The state root over these tensors' ids (``state.state_root``'s value) in one C++ call without
    the GIL, or None when the extension is unavailable. Only the element bytes, dtype codes and shapes
    cross into C++; the ids' layout is the one in this module's docstring (tests compare the two)."""
    run = prepare_native_state_root(tensors)
    return None if run is None else run()


def prepare_native_state_root(tensors: Sequence[Any]) -> Callable[[], bytes] | None:
    """:func:`native_state_root` in two parts: this call copies out what the C++ code reads (element
    bytes, codes, shapes: the part that holds the GIL); the function it returns computes the root
    (the part that does not). None when the extension is unavailable."""
    fn = _native("state_root")
    if fn is None or sys.byteorder != "little":
        return None
    data, codes, widths, shapes = [], [], [], []
    for t in tensors:
        arr = _as_numpy(t)
        code, width, _ = DTYPES[_dtype_name(arr)]
        if arr.ndim > _MAX_NDIM or any(d > _MAX_DIM for d in arr.shape):
            raise CommitError(f"shape {arr.shape} does not fit the id layout (<=255 dims, each < 2**32)")
        data.append(arr.tobytes(order="C"))
        codes.append(code)
        widths.append(width)
        shapes.append([int(d) for d in arr.shape])

    def run() -> bytes:
        root: bytes = fn(data, codes, widths, shapes, CHUNK_BYTES)
        return root

    return run


def data_chunk_root(data: bytes) -> bytes:
    """RFC 9162 root over the ``CHUNK_BYTES`` chunk leaves of a committed byte string."""
    native = native_chunk_root()
    if native is not None:
        return native(data, CHUNK_BYTES)
    return merkle_root(chunk_leaf_hashes(data))


def tensor_id_from_root(dtype: str, shape: Sequence[int], chunk_root: bytes) -> bytes:
    """Tensor id from its parts (the layout in the module docstring)."""
    if dtype not in DTYPES:
        raise CommitError(f"unknown dtype {dtype!r}")
    if len(shape) > _MAX_NDIM or any(not 0 <= d <= _MAX_DIM for d in shape):
        raise CommitError(f"shape {tuple(shape)} does not fit the id layout (<=255 dims, each < 2**32)")
    if len(chunk_root) != 32:
        raise CommitError("chunk root must be 32 bytes")
    code = DTYPES[dtype][0]
    preimage = (
        TENSOR_ID_PREFIX + bytes([code, len(shape)]) + b"".join(int(d).to_bytes(4, "big") for d in shape)
    )
    return hash_bytes(preimage + chunk_root)


def num_chunks(dtype: str, shape: Sequence[int]) -> int:
    """Number of chunk leaves of a tensor of this dtype and shape."""
    numel = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
    return -(-numel * DTYPES[dtype][1] // CHUNK_BYTES)


@dataclass(frozen=True)
class ElementProof:
    """Element ``flat_index`` of the tensor ``tensor_id`` is the bits found in ``chunk``.

    On chain: ``TensorCommit.verifyElement(tensorId, dtype, shape, flatIndex, chunk, siblings)``.
    """

    tensor_id: bytes
    dtype: str
    shape: tuple[int, ...]
    flat_index: int
    chunk_index: int
    num_chunks: int
    chunk: bytes
    siblings: tuple[bytes, ...]

    @property
    def width(self) -> int:
        """Element width in bytes."""
        return DTYPES[self.dtype][1]

    @property
    def bits(self) -> int:
        """The element's raw bits as an unsigned integer (read from the chunk, not verified)."""
        off = (self.flat_index * self.width) % CHUNK_BYTES
        return int.from_bytes(self.chunk[off : off + self.width], "big")

    def verify(self, tensor_id: bytes | None = None) -> int:
        """Check the proof against ``tensor_id`` (default: its own) and return the element bits.

        Mirrors ``TensorCommit.verifyElement``: positions and tree size follow from shape and index
        alone, the chunk must have exactly the length its position implies, and the id is recomputed
        from dtype, shape and the root the path leads to.
        """
        expected = self.tensor_id if tensor_id is None else tensor_id
        numel = int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1
        if not 0 <= self.flat_index < numel:
            raise ProofError(f"element {self.flat_index} out of range for shape {self.shape}")
        width = self.width
        start = self.flat_index * width
        chunk_index = start // CHUNK_BYTES
        n_chunks = num_chunks(self.dtype, self.shape)
        want_len = min(CHUNK_BYTES, numel * width - chunk_index * CHUNK_BYTES)
        if len(self.chunk) != want_len:
            raise ProofError(f"chunk {chunk_index} must be {want_len} bytes, got {len(self.chunk)}")
        root = root_from_inclusion(leaf_hash(self.chunk), chunk_index, n_chunks, self.siblings)
        if tensor_id_from_root(self.dtype, self.shape, root) != expected:
            raise ProofError(f"element {self.flat_index} does not open tensor id 0x{expected.hex()}")
        return self.bits

    def to_json(self) -> dict[str, Any]:
        """JSON form (hex with 0x prefix), the argument order of ``TensorCommit.verifyElement``."""
        return {
            "tensor_id": "0x" + self.tensor_id.hex(),
            "dtype": self.dtype,
            "dtype_code": DTYPES[self.dtype][0],
            "shape": list(self.shape),
            "flat_index": self.flat_index,
            "chunk_index": self.chunk_index,
            "num_chunks": self.num_chunks,
            "chunk": "0x" + self.chunk.hex(),
            "siblings": ["0x" + s.hex() for s in self.siblings],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ElementProof:
        """Inverse of ``to_json``; raises ``ProofError`` on a malformed object (not on a wrong proof)."""
        try:
            dtype = str(obj["dtype"])
            if dtype not in DTYPES:
                raise ProofError(f"unknown dtype {dtype!r}")
            siblings = tuple(bytes.fromhex(x.removeprefix("0x")) for x in obj["siblings"])
            tid = bytes.fromhex(obj["tensor_id"].removeprefix("0x"))
            if len(tid) != 32 or any(len(x) != 32 for x in siblings):
                raise ProofError("tensor id and siblings must be 32 bytes each")
            return cls(
                tensor_id=tid,
                dtype=dtype,
                shape=tuple(int(d) for d in obj["shape"]),
                flat_index=int(obj["flat_index"]),
                chunk_index=int(obj["chunk_index"]),
                num_chunks=int(obj["num_chunks"]),
                chunk=bytes.fromhex(obj["chunk"].removeprefix("0x")),
                siblings=siblings,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ProofError(f"malformed element proof: {err}") from err

    def to_abi(self) -> tuple[bytes, int, list[int], int, bytes, list[bytes]]:
        """``(tensorId, dtypeCode, shape, flatIndex, chunk, siblings)`` for ``verifyElement``."""
        return (
            self.tensor_id,
            DTYPES[self.dtype][0],
            list(self.shape),
            self.flat_index,
            self.chunk,
            list(self.siblings),
        )


class TensorCommitment:
    """The commitment to one tensor, kept with its data so that any element can be proven.

    Use ``tensor_id(t)`` when only the id is needed (it does not keep the data).
    """

    def __init__(self, t: Any) -> None:
        data, dtype, shape = tensor_bytes(t)
        self.data = data
        self.dtype = dtype
        self.shape = shape
        self._levels = tree_levels(chunk_leaf_hashes(data))
        self.root: bytes = self._levels[-1][0] if self._levels[0] else EMPTY_ROOT
        self.id: bytes = tensor_id_from_root(dtype, shape, self.root)

    @property
    def numel(self) -> int:
        """Number of elements."""
        return len(self.data) // DTYPES[self.dtype][1]

    @property
    def num_chunks(self) -> int:
        """Number of chunk leaves."""
        return len(self._levels[0])

    @property
    def chunks(self) -> list[bytes]:
        """The chunk byte strings in order (the leaves' data)."""
        return [self.data[i : i + CHUNK_BYTES] for i in range(0, len(self.data), CHUNK_BYTES)]

    @property
    def chunk_hashes(self) -> list[bytes]:
        """Leaf hashes of the chunks."""
        return list(self._levels[0])

    def chunk(self, j: int) -> bytes:
        """Bytes of chunk ``j``."""
        if not 0 <= j < self.num_chunks:
            raise CommitError(f"chunk {j} out of range ({self.num_chunks} chunks)")
        return self.data[j * CHUNK_BYTES : (j + 1) * CHUNK_BYTES]

    def chunk_proof(self, j: int) -> list[bytes]:
        """RFC 9162 audit path of chunk ``j`` in the chunk root, bottom-up."""
        self.chunk(j)  # range check
        return inclusion_path_from_levels(self._levels, j)

    @property
    def dtype_code(self) -> int:
        """The dtype's code in the tensor id."""
        return DTYPES[self.dtype][0]

    def element_bits(self, flat_index: int) -> int:
        """Raw bits of element ``flat_index``."""
        w = DTYPES[self.dtype][1]
        if not 0 <= flat_index < self.numel:
            raise CommitError(f"element {flat_index} out of range ({self.numel} elements)")
        return int.from_bytes(self.data[flat_index * w : (flat_index + 1) * w], "big")

    def element_proof(self, flat_index: int) -> ElementProof:
        """Chunk, position and sibling path that open element ``flat_index`` against ``self.id``."""
        w = DTYPES[self.dtype][1]
        if not 0 <= flat_index < self.numel:
            raise CommitError(f"element {flat_index} out of range for shape {self.shape}")
        j = flat_index * w // CHUNK_BYTES
        return ElementProof(
            tensor_id=self.id,
            dtype=self.dtype,
            shape=self.shape,
            flat_index=flat_index,
            chunk_index=j,
            num_chunks=self.num_chunks,
            chunk=self.chunk(j),
            siblings=tuple(inclusion_path_from_levels(self._levels, j)),
        )


def chunk_root(t: Any) -> bytes:
    """RFC 9162 root over the chunk leaves of a tensor."""
    data, _, _ = tensor_bytes(t)
    return data_chunk_root(data)


def tensor_id(t: Any) -> bytes:
    """The 32-byte id of a tensor (torch or numpy): ``H(0x02 || dtype || ndim || dims || chunk_root)``."""
    data, dtype, shape = tensor_bytes(t)
    return tensor_id_from_root(dtype, shape, data_chunk_root(data))


def dtype_from_code(code: int) -> str:
    """dtype name of an id's dtype code."""
    try:
        return _CODE_TO_DTYPE[code]
    except KeyError:
        raise CommitError(f"unknown dtype code {code}") from None

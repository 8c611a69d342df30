"""The one hash function of every verigrad commitment, and the RFC 9162 leaf/node hashing over it.

Choice: **keccak-256** everywhere (chunk leaves, tree nodes, tensor ids, state and trace roots).

Why, from ``benchmarks/hash_choice.py`` (numbers in docs/COMMITMENTS.md):

* On chain a Merkle node costs ``keccak256`` = 30 + 6/word gas as an opcode (48 gas for a node),
  against the sha256 precompile's 60 + 12/word behind a warm STATICCALL (~196 gas). Measured with
  forge, a depth-20 inclusion proof costs 5,660 gas with keccak and 8,907 with sha256 (same walk).
* Off chain sha256 is 3.6x faster per byte on this CPU (SHA-NI), but a tensor is hashed as many
  256-byte chunks, where the per-call overhead of Python's hashing narrows the gap: committing a
  0.43M-parameter GPT state with its Adam moments (5.2 MB) takes 46 ms of CPU with keccak against
  22 ms with sha256: ~24 ms per checkpoint, under 1 % of the training between two checkpoints.
* One hash keeps the byte layouts identical in Python and Solidity; a mixed scheme (sha256 leaves,
  keccak nodes) would save only milliseconds per checkpoint and double the rules to audit.

Trees follow RFC 9162 §2.1: ``leaf = H(0x00 || data)``, ``node = H(0x01 || left || right)``, the empty
tree's root is ``H("")``, and a tree of n > 1 leaves splits at the largest power of two below n.
"""

from __future__ import annotations

import sha3  # safe-pysha3: Ethereum's keccak-256 (not NIST SHA3-256, which pads differently)

#: Name of the hash in pymerkle's vocabulary (pymerkle builds its trees with it).
PYMERKLE_ALGORITHM = "keccak_256"
#: Domain prefixes of RFC 9162 and of verigrad's own tensor ids (a third domain, so that a tensor id
#: can never be presented as a tree leaf or node hash).
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
TENSOR_ID_PREFIX = b"\x02"
DIGEST_SIZE = 32


def hash_bytes(data: bytes | bytearray | memoryview) -> bytes:
    """keccak-256 of ``data`` (32 bytes)."""
    return sha3.keccak_256(data).digest()


def leaf_hash(data: bytes | bytearray | memoryview) -> bytes:
    """RFC 9162 leaf hash ``H(0x00 || data)``."""
    h = sha3.keccak_256(LEAF_PREFIX)
    h.update(data)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash ``H(0x01 || left || right)``."""
    return sha3.keccak_256(NODE_PREFIX + left + right).digest()


#: Root of the empty tree (RFC 9162: the hash of the empty string).
EMPTY_ROOT = hash_bytes(b"")

"""verigrad's commitment layer: tensors, training states, traces, op logs, proofs and the artifact store.

Everything the dispute game commits to is an RFC 9162 Merkle tree over keccak-256 (``hashing`` says
why keccak), built with pymerkle, with positional proofs that ``contracts/src/merkle/`` verifies:

* ``tensor_id(t)`` / ``TensorCommitment(t)``: chunked root over the big-endian element bits, and the id
  ``H(0x02 || dtype || ndim || dims || chunk_root)``; ``element_proof(i)`` opens one element.
* ``state_root([(name, tensor), ...])`` / ``state_commitment(...)``: S_t over the ordered tensor ids.
* ``TraceTree``: checkpoint state roots, with consistency proofs between progress commitments.
* ``OpLog``: level 3's append-only log of tensor ids, with the root after every append.
* ``SequenceTree``: any level's list of 32-byte leaves.
* ``LocalStore`` / ``open_store(url)``: content-addressed artifacts verified on read.

No web3 here: this package runs on the training machine as well (torch, numpy, pymerkle, pysha3).
"""

from protocol.commit.errors import ArtifactNotFound, CommitError, IntegrityError, ProofError, StoreError
from protocol.commit.hashing import EMPTY_ROOT, hash_bytes, leaf_hash, node_hash
from protocol.commit.merkle import (
    AppendOnlyTree,
    ConsistencyProof,
    InclusionProof,
    merkle_root,
    verify_append,
    verify_consistency,
    verify_inclusion,
)
from protocol.commit.oplog import OpLog
from protocol.commit.sequence import SequenceTree, sequence_root
from protocol.commit.state import StateCommitment, fast_state_root, state_commitment, state_root
from protocol.commit.store import ArtifactStore, LocalStore, open_store
from protocol.commit.tensor import CHUNK_BYTES, ElementProof, TensorCommitment, tensor_id, tensor_id_from_root
from protocol.commit.trace import TraceTree

__all__ = [
    "CHUNK_BYTES",
    "EMPTY_ROOT",
    "AppendOnlyTree",
    "ArtifactNotFound",
    "ArtifactStore",
    "CommitError",
    "ConsistencyProof",
    "ElementProof",
    "InclusionProof",
    "IntegrityError",
    "LocalStore",
    "OpLog",
    "ProofError",
    "SequenceTree",
    "StateCommitment",
    "StoreError",
    "TensorCommitment",
    "TraceTree",
    "fast_state_root",
    "hash_bytes",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "open_store",
    "sequence_root",
    "state_commitment",
    "state_root",
    "tensor_id",
    "tensor_id_from_root",
    "verify_append",
    "verify_consistency",
    "verify_inclusion",
]

"""State roots, the checkpoint trace, the op log and game sequences."""

from __future__ import annotations

import hashlib

import pytest
import torch

from protocol.commit import (
    ConsistencyProof,
    OpLog,
    SequenceTree,
    StateCommitment,
    TensorCommitment,
    TraceTree,
    merkle_root,
    sequence_root,
    state_commitment,
    state_root,
    tensor_id,
)
from protocol.commit.errors import CommitError, ProofError
from protocol.commit.hashing import EMPTY_ROOT, leaf_hash


def _h(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(4, "big")).digest()


def _named_state() -> list[tuple[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    return [
        ("fc1.weight", torch.randn(16, 8, generator=gen)),
        ("fc1.bias", torch.randn(16, generator=gen)),
        ("adam.m.fc1.weight", torch.zeros(16, 8)),
        ("step", torch.tensor(3, dtype=torch.int64)),
    ]


def test_state_root_is_root_over_ordered_ids() -> None:
    named = _named_state()
    ids = [tensor_id(t) for _, t in named]
    assert state_root(named) == merkle_root([leaf_hash(i) for i in ids])
    commitment = state_commitment(named)
    assert commitment.ids == ids and commitment.names == [n for n, _ in named]
    # Order is committed; names are not.
    assert state_root(list(reversed(named))) != state_root(named)
    assert state_root([("renamed" + n, t) for n, t in named]) == state_root(named)
    # Precomputed ids and TensorCommitments are accepted in place of tensors.
    mixed = [(named[0][0], ids[0]), (named[1][0], TensorCommitment(named[1][1]))] + named[2:]
    assert state_root(mixed) == state_root(named)


def test_state_commitment_json_roundtrip() -> None:
    c = state_commitment(_named_state())
    back = StateCommitment.from_json(c.to_json())
    assert back.root == c.root and back.names == c.names and back.ids == c.ids
    forged = c.to_json()
    forged["ids"] = list(reversed(forged["ids"]))
    with pytest.raises(CommitError):
        StateCommitment.from_json(forged)


def test_state_root_changes_with_any_tensor() -> None:
    named = _named_state()
    base = state_root(named)
    changed = list(named)
    changed[3] = ("step", torch.tensor(4, dtype=torch.int64))
    assert state_root(changed) != base


def test_state_commitment_proves_a_named_tensor() -> None:
    named = _named_state()
    c = state_commitment(named)
    proof = c.inclusion_proof("fc1.bias")
    proof.verify(tensor_id(named[1][1]), c.root)
    with pytest.raises(ProofError):
        proof.verify(tensor_id(named[0][1]), c.root)
    with pytest.raises(CommitError):
        c.position("nope")
    with pytest.raises(CommitError):
        state_commitment([("a", named[0][1]), ("a", named[1][1])])


def test_trace_tree_progress_commitments_are_consistent() -> None:
    trace = TraceTree()
    posted: list[tuple[int, bytes]] = []
    for k in range(12):
        root = trace.append_checkpoint(_h(k))
        posted.append((trace.size, root))
    for i, (m, old) in enumerate(posted):
        for n, new in posted[i:]:
            proof = trace.consistency_proof(m, n)
            TraceTree.verify_consistency(old, new, proof)
            restored = ConsistencyProof.from_json(proof.to_json())
            restored.verify(old, new)
    # Every checkpoint is provable against the final root and against earlier progress roots.
    for k in range(12):
        TraceTree.verify_inclusion(trace.root, _h(k), trace.inclusion_proof(k))
        TraceTree.verify_inclusion(posted[-3][1], _h(k), trace.inclusion_proof(k, 10)) if k < 10 else None


def test_trace_tree_json_restores_after_restart() -> None:
    trace = TraceTree([_h(k) for k in range(7)])
    saved = trace.to_json()
    back = TraceTree.from_json(saved)
    assert isinstance(back, TraceTree) and back.root == trace.root and back.size == 7
    assert back.append_checkpoint(_h(7)) == TraceTree([_h(k) for k in range(8)]).root
    saved["values"][3] = "0x" + _h(99).hex()
    with pytest.raises(CommitError):
        TraceTree.from_json(saved)
    with pytest.raises(CommitError):
        TraceTree.from_json({"values": ["zz"], "root": "0x00"})


def test_trace_tree_rewritten_history_is_caught() -> None:
    honest = TraceTree([_h(k) for k in range(6)])
    progress = honest.root_at(4)
    rewritten = TraceTree([_h(k) for k in range(3)] + [_h(99)] + [_h(k) for k in range(4, 6)])
    with pytest.raises(ProofError):
        TraceTree.verify_consistency(progress, rewritten.root, rewritten.consistency_proof(4))


def test_oplog_records_root_after_every_append() -> None:
    start = [_h(i) for i in range(5)]  # S_t's tensors and the batch
    log = OpLog(start)
    op_outputs = [[_h(100 + j)] if j % 3 else [_h(100 + j), _h(200 + j)] for j in range(40)]
    returned = [log.append_op(out) for out in op_outputs]
    all_ids = start + [i for out in op_outputs for i in out]
    assert log.size == len(all_ids)
    for size in range(1, log.size + 1):
        assert log.root_after(size) == merkle_root([leaf_hash(i) for i in all_ids[:size]])
        assert log.roots[size - 1] == log.root_at(size)
    assert log.op_roots[0] == log.root_after(5)
    assert log.op_roots[1:] == returned
    assert log.op_sizes[-1] == log.size


def test_oplog_inclusion_against_any_size() -> None:
    log = OpLog([_h(i) for i in range(4)])
    for j in range(20):
        log.append_op([_h(50 + j)])
    for op, size in enumerate(log.op_sizes):
        root = log.op_roots[op]
        for index in range(size):
            proof = log.op_inclusion_proof(index, op)
            OpLog.verify_entry(root, log.value(index), proof)
        if size < log.size:  # a later entry is not in an earlier log
            with pytest.raises(CommitError):
                log.inclusion_proof(size, size)
    with pytest.raises(CommitError):
        log.append_op([])


def test_sequence_tree_reveal_and_verify() -> None:
    leaves = [_h(i) for i in range(9)]
    seq = SequenceTree(leaves)
    assert seq.root == sequence_root(leaves)
    assert SequenceTree().root == EMPTY_ROOT
    for i in range(9):
        leaf, proof = seq.reveal(i)
        SequenceTree.verify_leaf(seq.root, leaf, proof)
        with pytest.raises(ProofError):
            SequenceTree.verify_leaf(seq.root, leaves[(i + 1) % 9], proof)

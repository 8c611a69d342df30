"""The step layout: the shape of every step's op log, committed with the op graph in ``opGraphRoot``.

Level 3 of the dispute game links the op log of step t to S_t and S_t+1 (docs/DISPUTE.md). Four facts
about that log follow from the task's spec alone and are the same kind of fact for every step:

* ``num_ops``: the number of ops of a step (level 3 has ``num_ops + 1`` leaves);
* ``state_size``: the number of tensors of a state (the log starts with S_t's ids);
* ``designated``: the log entries holding S_t+1's tensors, in state order (the same every step);
* the **step-input table**: for every step t, the ids of the log's entries after S_t's (the step's
  batch tensors, then ``const.one``), which follow from the dataset commitment, the seed and the
  batch size (:func:`protocol.spec.batch_indices`). Row t is the leaf
  ``keccak256(0x00 || abi.encode(uint256 t, bytes32[] ids))`` of an RFC 9162 tree over every step
  of the task (``inputs_root``); the step inside the leaf binds its position, as in adamw's step
  table (:mod:`protocol.dispute.graph`).

The layout hash is ``keccak256(abi.encode(uint256 num_ops, uint256 state_size, uint64[] designated,
bytes32 inputs_root))``, and the task's ``opGraphRoot`` is ``keccak256(abi.encode(graph_root,
layout_hash))`` with ``graph_root`` the op descriptors' root (:func:`protocol.dispute.graph.graph_root`,
what the one-step verifier reads). ``DisputeGame.commitOps`` opens both halves, so none of the four
is the solver's word; a solver recomputes :func:`task_graph_root` from the spec before it bids, as
it does for the initial state root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from eth_abi import encode as abi_encode
from eth_utils import keccak

from protocol.commit import tensor_id
from protocol.commit.hashing import leaf_hash
from protocol.commit.merkle import inclusion_path_from_levels, merkle_root, tree_levels
from protocol.dispute.graph import GraphError, graph_of_trace, graph_root
from protocol.spec import TaskSpec

LAYOUT_TYPES = ["uint256", "uint256", "uint64[]", "bytes32"]
"""ABI types of the layout hash's preimage (``BisectionLinks.checkLayout``)."""


def input_row_leaf(step: int, ids: Sequence[bytes]) -> bytes:
    """Leaf hash of row ``step`` of the step-input table."""
    return leaf_hash(abi_encode(["uint256", "bytes32[]"], [step, list(ids)]))


def graph_commitment(graph_root_: bytes, layout_hash: bytes) -> bytes:
    """``Bisection.graphCommitment``: keccak256(abi.encode(graphRoot, layoutHash))."""
    return keccak(graph_root_ + layout_hash)


@dataclass(frozen=True)
class StepLayout:
    """The layout of a task's steps (see the module doc) with the input table's tree."""

    num_ops: int
    state_size: int
    designated: tuple[int, ...]
    rows: tuple[tuple[bytes, ...], ...]  # per training step: ids of the entries after S_t
    levels: tuple[tuple[bytes, ...], ...]

    @property
    def inputs_root(self) -> bytes:
        return self.levels[-1][0]

    @property
    def layout_hash(self) -> bytes:
        return keccak(abi_encode(LAYOUT_TYPES, [self.num_ops, self.state_size, list(self.designated),
                                               self.inputs_root]))

    def row_proof(self, step: int) -> list[bytes]:
        """Inclusion path of row ``step`` in :attr:`inputs_root`."""
        return inclusion_path_from_levels([list(level) for level in self.levels], step)

    def check_trace(self, trace: Any) -> None:
        """Raise :class:`GraphError` unless op trace ``trace`` (``protocol.trace.OpTrace``) has this layout."""
        n_start = len(trace.start_names)
        got = (len(trace.ops), trace.state_size, tuple(p for _, p in trace.next_state),
               tuple(trace.log_ids[trace.state_size:n_start]))
        want = (self.num_ops, self.state_size, self.designated, self.rows[trace.step])
        if got != want:
            raise GraphError(f"step {trace.step}'s op log (ops, state size, designated entries, inputs) is "
                             f"{got[:3]}, the task's layout is {want[:3]} (or the step's inputs differ)")


def step_inputs(ctx: Any, step: int) -> list[bytes]:
    """Ids of the log entries after S_t at step ``step``: ``run_step``'s batch tensors, then ``const.one``.

    ``ctx`` is a :class:`protocol.train.StepContext`. :meth:`StepLayout.check_trace` holds this
    against a recorded op trace, so a change to ``run_step``'s start entries cannot go unnoticed.
    """
    batch = ctx.batch(step)
    ids = [tensor_id(v.detach().cpu()) for v in batch.values()]
    return ids + [tensor_id(torch.ones((), dtype=torch.float32))]


def step_layout(spec: TaskSpec, trace: Any = None, ctx: Any = None) -> StepLayout:
    """The step layout of ``spec``, read off an op trace (step 0 of an honest replay by default) and
    the input rows of every step; checked against that trace."""
    if trace is None or ctx is None:
        from protocol.trace import Replayer

        replayer = Replayer(spec)
        ctx = replayer.ctx
        if trace is None:
            trace = replayer.op_trace(0)
    rows = tuple(tuple(step_inputs(ctx, t)) for t in range(spec.steps))
    levels = tree_levels([input_row_leaf(t, r) for t, r in enumerate(rows)])
    layout = StepLayout(len(trace.ops), trace.state_size, tuple(p for _, p in trace.next_state), rows,
                        tuple(tuple(level) for level in levels))
    layout.check_trace(trace)
    return layout


def task_commitment(spec: TaskSpec) -> tuple[bytes, StepLayout]:
    """The two halves of a task's ``opGraphRoot``: the op descriptors' root and the step layout,
    both read off an honest replay of step 0 of ``spec``."""
    from protocol.trace import Replayer

    replayer = Replayer(spec)
    trace = replayer.op_trace(0)
    return graph_root(graph_of_trace(trace, spec)), step_layout(spec, trace, replayer.ctx)


def task_graph_root(spec: TaskSpec) -> bytes:
    """The ``opGraphRoot`` a task with spec ``spec`` posts: its op graph's root with its step layout."""
    root, layout = task_commitment(spec)
    return graph_commitment(root, layout.layout_hash)


def border(values: Sequence[bytes], size: int) -> list[bytes]:
    """Roots of the complete subtrees of the RFC 9162 tree over the first ``size`` 32-byte values,
    largest (leftmost) first: one per set bit of ``size`` (``OpsCommitment.stateBorder``)."""
    out = []
    lo = 0
    for bit in reversed(range(size.bit_length())):
        width = 1 << bit
        if size & width:
            out.append(merkle_root([leaf_hash(v) for v in values[lo:lo + width]]))
            lo += width
    return out

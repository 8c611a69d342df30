"""The op graph of a training step: one root per task, whatever the step.

The descriptors of a digits-mlp step are the same at every step (the learning rate and the step
counter are not descriptor attributes), round-trip through their ABI encoding, and every one is
proven against the root; a changed descriptor or a proof for another position is rejected.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from protocol.commit.merkle import InclusionProof
from protocol.dispute.graph import (
    KIND_IDS,
    GraphError,
    OpDescriptor,
    attr_words,
    descriptor_proof,
    graph_of_trace,
    graph_root,
    op_graph_root,
    verify_descriptor,
)
from protocol.repops.ops import OPS
from protocol.repops.policy import f32_bits
from protocol.spec import load_spec
from protocol.trace import Replayer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    text = (REPO / "protocol" / "specs" / "digits-mlp.toml").read_text()
    text = re.sub(r"(?m)^steps = \d+", "steps = 12", text)
    text = re.sub(r"(?m)^checkpoint_interval = \d+", "checkpoint_interval = 6", text)
    path = tmp_path_factory.mktemp("spec") / "digits-12.toml"
    path.write_text(text)
    spec = load_spec(path)
    r = Replayer(spec)
    # Step 0 is in the warm-up (lr rising), step 11 in the decay: lr and the bias corrections differ.
    return {"spec": spec, "first": r.op_trace(0), "last": r.op_trace(11)}


def test_graph_same_every_step(traces: dict[str, Any]) -> None:
    first, last = graph_of_trace(traces["first"], traces["spec"]), graph_of_trace(traces["last"], traces["spec"])
    assert traces["first"].ops[14].attrs["lr"] != traces["last"].ops[14].attrs["lr"]
    assert first == last
    assert graph_root(first) == graph_root(last) == op_graph_root(traces["spec"], traces["last"])


def test_descriptor_roundtrip(traces: dict[str, Any]) -> None:
    graph = graph_of_trace(traces["first"], traces["spec"])
    assert [d.index for d in graph] == list(range(len(graph)))
    for d in graph:
        assert OpDescriptor.decode(d.encode()) == d
        assert d.output == len(traces["first"].start_names) + d.index


def test_descriptor_proof_every_op(traces: dict[str, Any]) -> None:
    graph = graph_of_trace(traces["first"], traces["spec"])
    root = graph_root(graph)
    for d in graph:
        assert verify_descriptor(root, d.encode(), descriptor_proof(graph, d.index)) == d


def test_descriptor_changed_rejected(traces: dict[str, Any]) -> None:
    graph = graph_of_trace(traces["first"], traces["spec"])
    root = graph_root(graph)
    d = graph[6]
    changed = OpDescriptor(d.index, d.kind, (1, 1), d.inputs, d.dtypes, d.shapes, d.out_shape, d.output)
    with pytest.raises(GraphError, match="not in the graph"):
        verify_descriptor(root, changed.encode(), descriptor_proof(graph, 6))
    proof = descriptor_proof(graph, 7)
    with pytest.raises(GraphError, match="says op 6"):
        verify_descriptor(root, d.encode(), InclusionProof(7, proof.size, proof.siblings))


def test_attr_words_leave_out_step_values() -> None:
    words = attr_words({"lr": 0.01, "step": 3, "beta1": 0.9, "eps": 1e-8, "ta": True})
    assert words == (f32_bits(0.9), f32_bits(1e-8), 1)
    with pytest.raises(GraphError):
        attr_words({"c": "text"})


def test_every_repops_op_has_a_kind_number() -> None:
    assert set(OPS) <= set(KIND_IDS)
    assert len(set(KIND_IDS.values())) == len(KIND_IDS)

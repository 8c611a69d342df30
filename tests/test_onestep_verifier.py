"""The ScalarStepVerifier on a real training trace with a fault in a backward matmul.

A short digits-mlp run is replayed honestly and with ``Fault(7, 6, 5)``: op 6 of a digits step is
the matmul giving the output layer's weight gradient, and the fault flips a bit of its element 5.
Level 4 of that element, as the faulty solver must commit it, equals the honest program states up
to the last one, which holds the faulty value. The contract's ``step`` from the agreed leaf before it
gives the honest leaf, not the solver's; and from every leaf of honest elements (of that matmul and
of the other matmul-family ops) every step agrees with the Python leaves. Every kind of bad proof is
rejected. The gas of ``step`` is measured over the sample.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from web3.exceptions import ContractCustomError

from protocol.dispute.graph import graph_of_trace, graph_root, step_table
from protocol.dispute.onestep import STEP_PROOF_TYPES, ElementProgram, supported
from protocol.spec import load_spec, spec_hash
from protocol.trace import Replayer
from protocol.train import Fault

REPO = Path(__file__).resolve().parents[1]
FAULT = "7:6:5"


def _selector(sig: str) -> str:
    return keccak(text=sig)[:4].hex()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Op traces of step 7 of an honest and a faulty 8-step digits-mlp run."""
    text = (REPO / "protocol" / "specs" / "digits-mlp.toml").read_text()
    text = re.sub(r"(?m)^steps = \d+", "steps = 8", text)
    text = re.sub(r"(?m)^checkpoint_interval = \d+", "checkpoint_interval = 4", text)
    path = tmp_path_factory.mktemp("spec") / "digits-8.toml"
    path.write_text(text)
    spec = load_spec(path)
    fault = Fault.parse(FAULT)
    honest = Replayer(spec).op_trace(fault.step)
    faulty = Replayer(spec, fault=fault).op_trace(fault.step)
    return {"spec": spec, "spec_hash": bytes.fromhex(spec_hash(spec)[2:]), "honest": honest, "faulty": faulty,
            "graph": graph_of_trace(faulty, spec)}


@pytest.fixture(scope="module")
def verifier(anvil_chain: Any, run: dict[str, Any]) -> Any:
    """A verifier with every op of the graph it covers registered."""
    v = anvil_chain.deploy("ScalarStepVerifier", key=anvil_chain.dev_keys[0])
    for d in run["graph"]:
        if not supported(d.kind):
            continue
        p = ElementProgram.build(run["faulty"], d.index, 0, run["graph"], run["spec"])
        anvil_chain.transact(v.functions.registerOp(*p.register_args()), key=anvil_chain.dev_keys[0])
    return v


def _step(verifier: Any, run: dict[str, Any], p: ElementProgram, m: int, proof: bytes | None = None,
          pre: bytes | None = None) -> bytes:
    ctx = p.step_context(run["spec_hash"], m=m)
    fn = verifier.functions.step(ctx, pre if pre is not None else p.leaves[m], proof or p.step_proof(m))
    return bytes(fn.call())


def test_graph_is_the_same_every_step(run: dict[str, Any]) -> None:
    assert graph_of_trace(run["honest"], run["spec"]) == run["graph"]
    assert run["faulty"].ops[6].name == "matmul" and run["faulty"].ops[6].attrs == {"ta": True, "tb": False}


@pytest.mark.parametrize("fault", [FAULT, "7:5:3", "7:14:300"])
def test_step_faulty_element_disagrees_with_faulty_leaf_succeeds(verifier: Any, run: dict[str, Any],
                                                                  fault: str) -> None:
    """The backward matmul, a cross_entropy_backward element (template programs) and an adamw
    element (step table)."""
    f = Fault.parse(fault)
    trace = run["faulty"] if fault == FAULT else Replayer(run["spec"], fault=f).op_trace(f.step)
    faulty = ElementProgram.build(trace, f.op, f.element, run["graph"], run["spec"])
    honest = ElementProgram.build(run["honest"], f.op, f.element, run["graph"], run["spec"])
    m = faulty.length - 1
    assert faulty.leaves[:m + 1] == honest.leaves[:m + 1]  # the parties agree up to leaf M - 1
    assert faulty.leaves[m + 1] != honest.leaves[m + 1]
    assert faulty.honest_leaves == honest.leaves
    post = _step(verifier, run, faulty, m)
    assert post == honest.leaves[m + 1]
    assert post != faulty.leaves[m + 1]


def test_step_every_leaf_agrees_succeeds(verifier: Any, run: dict[str, Any], anvil_chain: Any) -> None:
    """Honest elements of every covered op: every step reproduces the next Python leaf."""
    worst: dict[str, int] = {}
    samples = [(6, 5), (6, 6), (8, 100), (0, 77), (2, 301)]
    samples += [(d.index, 3 if d.out_shape else 0) for d in run["graph"] if supported(d.kind) and d.index not in (0, 2, 6, 8)]
    for op, element in samples:
        p = ElementProgram.build(run["honest"], op, element, run["graph"], run["spec"])
        assert p.leaves == p.honest_leaves
        for m in range(p.length):
            assert _step(verifier, run, p, m) == p.leaves[m + 1], (op, element, m)
        for m in {0, p.length // 2, p.length - 1}:
            ctx = p.step_context(run["spec_hash"], m=m)
            gas = verifier.functions.step(ctx, p.leaves[m], p.step_proof(m)).estimate_gas()
            worst[p.descriptor().kind] = max(worst.get(p.descriptor().kind, 0), gas)
    print(f"worst step gas by op kind (eth_estimateGas, 21000 base and calldata included): {worst}")
    assert max(worst.values()) < 250_000


def test_outputMatches_faulty_and_honest_succeeds(verifier: Any, run: dict[str, Any]) -> None:
    faulty = ElementProgram.build(run["faulty"], 6, 5, run["graph"], run["spec"])
    out_id = run["faulty"].log_ids[faulty.output_entry]
    ctx = faulty.step_context(run["spec_hash"])
    assert verifier.functions.outputMatches(ctx, faulty.leaves[-1], out_id, faulty.output_opening()).call()
    honest = ElementProgram.build(run["honest"], 6, 5, run["graph"], run["spec"])
    honest_id = run["honest"].log_ids[honest.output_entry]
    assert verifier.functions.outputMatches(ctx, honest.leaves[-1], honest_id, honest.output_opening()).call()
    # The honest final state does not match the faulty tensor's element.
    from eth_abi import decode, encode

    regs, shape, chunk, path = decode(["uint32[]", "uint32[]", "bytes", "bytes32[]"], faulty.output_opening())
    mixed = encode(["uint32[]", "uint32[]", "bytes", "bytes32[]"], [honest.final_registers, shape, chunk, path])
    assert not verifier.functions.outputMatches(ctx, honest.leaves[-1], out_id, mixed).call()


def test_programLength_and_initialState_succeeds(verifier: Any, run: dict[str, Any]) -> None:
    p = ElementProgram.build(run["faulty"], 6, 5, run["graph"], run["spec"])
    ctx = p.step_context(run["spec_hash"])
    assert verifier.functions.programLength(ctx).call() == p.length
    assert bytes(verifier.functions.initialState(ctx).call()) == p.leaves[0]


# ------------------------------------------------------------------------------------------ reverts


def _proof_parts(p: ElementProgram, m: int) -> list[Any]:
    from eth_abi import decode

    return list(decode(STEP_PROOF_TYPES, p.step_proof(m)))


def _encode(parts: list[Any]) -> bytes:
    from eth_abi import encode

    return encode(STEP_PROOF_TYPES, parts)


def test_step_wrong_pre_state_reverts(verifier: Any, run: dict[str, Any]) -> None:
    p = ElementProgram.build(run["faulty"], 6, 5, run["graph"], run["spec"])
    with pytest.raises(ContractCustomError, match=_selector("StateOpeningMismatch(bytes32,bytes32)")):
        _step(verifier, run, p, 3, pre=p.leaves[4])
    parts = _proof_parts(p, 3)
    parts[0] = [r ^ 1 for r in parts[0]]
    with pytest.raises(ContractCustomError, match=_selector("StateOpeningMismatch(bytes32,bytes32)")):
        _step(verifier, run, p, 3, proof=_encode(parts))
    parts[0] = list(parts[0]) + [0]
    with pytest.raises(ContractCustomError, match=_selector("RegisterCountMismatch(uint256,uint256)")):
        _step(verifier, run, p, 3, proof=_encode(parts))


def test_step_wrong_descriptor_reverts(verifier: Any, run: dict[str, Any]) -> None:
    p = ElementProgram.build(run["faulty"], 6, 5, run["graph"], run["spec"])
    parts = _proof_parts(p, 3)
    bad = list(parts)
    bad[1] = run["graph"][8].encode()  # another op's descriptor, with op 6's proof
    with pytest.raises(ContractCustomError, match=_selector("DescriptorNotInGraph(bytes32,uint256)")):
        _step(verifier, run, p, 3, proof=_encode(bad))
    other = ElementProgram.build(run["faulty"], 8, 5, run["graph"], run["spec"])
    bad = list(parts)
    bad[1:4] = _proof_parts(other, 3)[1:4]  # a proven descriptor, of the wrong op
    with pytest.raises(ContractCustomError, match=_selector("WrongOp(uint256,uint256)")):
        _step(verifier, run, p, 3, proof=_encode(bad))


def test_step_wrong_operand_opening_reverts(verifier: Any, run: dict[str, Any]) -> None:
    p = ElementProgram.build(run["faulty"], 6, 5, run["graph"], run["spec"])
    parts = _proof_parts(p, 3)
    tid, log_proof, chunk, chunk_proof = parts[4][0]
    bad = list(parts)
    bad[4] = [parts[4][1], parts[4][0]]  # the two operands' openings swapped
    with pytest.raises(ContractCustomError, match=_selector("InputNotInLog(uint256,bytes32)")):
        _step(verifier, run, p, 3, proof=_encode(bad))
    flipped = bytes([chunk[0] ^ 1]) + chunk[1:]
    bad[4] = [(tid, log_proof, flipped, chunk_proof), parts[4][1]]
    with pytest.raises(ContractCustomError, match=_selector("TensorIdMismatch(bytes32,bytes32)")):
        _step(verifier, run, p, 3, proof=_encode(bad))
    bad[4] = [parts[4][0]]
    with pytest.raises(ContractCustomError, match=_selector("OpeningCountMismatch(uint256,uint256)")):
        _step(verifier, run, p, 3, proof=_encode(bad))


def test_step_wrong_program_opening_reverts(verifier: Any, run: dict[str, Any]) -> None:
    """A template leaf from another position or with a changed coefficient, adamw's constants of
    another step."""
    from eth_abi import decode, encode

    ce = ElementProgram.build(run["faulty"], 5, 3, run["graph"], run["spec"])
    parts = _proof_parts(ce, 10)
    leaf, path = decode(["bytes", "bytes32[]"], parts[5])
    other, _ = decode(["bytes", "bytes32[]"], _proof_parts(ce, 11)[5])
    for bad_leaf in (other, leaf[:-1] + bytes([leaf[-1] ^ 1])):
        parts[5] = encode(["bytes", "bytes32[]"], [bad_leaf, path])
        with pytest.raises(ContractCustomError, match=_selector("TemplateNotCommitted(uint256,uint256)")):
            _step(verifier, run, ce, 10, proof=_encode(parts))
    parts[5] = encode(["bytes", "bytes32[]"], [leaf[:-1], path])
    with pytest.raises(ContractCustomError, match=_selector("BadTemplateLeaf(uint256)")):
        _step(verifier, run, ce, 10, proof=_encode(parts))
    adamw = ElementProgram.build(run["faulty"], 14, 300, run["graph"], run["spec"])
    parts = _proof_parts(adamw, 0)
    table = step_table(run["spec"], dict(run["faulty"].records[14].attrs))
    parts[5] = table.opening(run["faulty"].step - 1)  # the previous step's learning rate and corrections
    with pytest.raises(ContractCustomError, match=_selector("StepConstantsNotCommitted(uint256)")):
        _step(verifier, run, adamw, 0, proof=_encode(parts))


def test_programLength_unregistered_reverts(verifier: Any, run: dict[str, Any]) -> None:
    p = ElementProgram.build(run["faulty"], 6, 5, run["graph"], run["spec"])
    ctx = list(p.step_context(run["spec_hash"]))
    ctx[1] = keccak(b"another graph")
    with pytest.raises(ContractCustomError, match=_selector("OpNotRegistered(bytes32,uint256)")):
        verifier.functions.programLength(tuple(ctx)).call()


def test_registerOp_unsupported_reverts(verifier: Any, run: dict[str, Any], anvil_chain: Any) -> None:
    from protocol.dispute.graph import descriptor_proof

    # an adamw descriptor without its step table: its programs cannot be had
    bare = dataclasses.replace(next(d for d in run["graph"] if d.kind == "adamw"), program_root=b"\x00" * 32)
    graph = [bare if d.index == bare.index else d for d in run["graph"]]
    proof = descriptor_proof(graph, bare.index)
    fn = verifier.functions.registerOp(graph_root(graph), bare.encode(), proof.size, list(proof.siblings))
    with pytest.raises(ContractCustomError, match=_selector("UnsupportedOp(uint256)")):
        fn.call()

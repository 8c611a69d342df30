"""The ScalarStepVerifier on every op kind of a real tiny-gpt training step.

A tiny-gpt task shrunk to test size (2 steps, batch 2, d_model 16; the reference block size and
vocabulary, so the dataset commitment holds) is replayed honestly and with a fault in a GELU and in
a softmax element of step 1. Its op graph has no uncovered op. For every template op the relocated
templates equal the RepOps tracer's programs (every instruction, in Python) and the contract's
relocation of the committed leaves equals Python's (sampled instructions). For one op of every kind
of the step the contract's ``step`` from sampled leaves of an honest element reproduces the next
leaf computed by the RepOps evaluator (bit-exact differential test), and the worst gas per kind is
measured. A faulty element's last step gives the honest leaf, not the solver's.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocol.dispute.graph import descriptor_proof, graph_of_trace, graph_root
from protocol.dispute.onestep import ElementProgram, uncovered
from protocol.dispute.template import TEMPLATE_KINDS, template_program
from protocol.repops.isa import Imm, Opcode
from protocol.repops.ops import scalar_program
from protocol.spec import load_spec, spec_hash
from protocol.trace import Replayer
from protocol.train import Fault

REPO = Path(__file__).resolve().parents[1]
# Step 1: op 14 is the block's GELU (64 x 64 elements), op 7 the attention softmax (2 x 2 x 32 x 32);
# softmax element 163 is (batch 0, head 0, query 5, key 3), kept by the causal mask.
FAULTS = {"gelu": "1:14:37", "softmax": "1:7:163"}
TRANSFORMER_KINDS = {"embedding", "layernorm_stats", "layernorm_apply", "attn_scores", "softmax", "attn_apply",
                     "gelu", "cross_entropy", "cross_entropy_backward", "layernorm_backward", "layernorm_dgamma",
                     "gelu_backward", "attn_dprobs", "softmax_backward", "attn_dqkv", "embedding_backward"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    text = (REPO / "protocol" / "specs" / "tiny-gpt.toml").read_text()
    for key, value in (("steps", 2), ("checkpoint_interval", 1), ("batch_size", 2), ("d_model", 16)):
        text = re.sub(rf"(?m)^{key} = \d+", f"{key} = {value}", text)
    path = tmp_path_factory.mktemp("spec") / "tiny-gpt-small.toml"
    path.write_text(text)
    spec = load_spec(path)
    replayer = Replayer(spec)
    honest = replayer.op_trace(1)
    faulty = {name: Replayer(spec, fault=Fault.parse(f)).op_trace(1) for name, f in FAULTS.items()}
    return {"spec": spec, "spec_hash": bytes.fromhex(spec_hash(spec)[2:]), "honest": honest, "faulty": faulty,
            "first": replayer.op_trace(0), "graph": graph_of_trace(honest, spec)}


def _one_op_per_kind(graph: list[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for d in graph:
        seen.setdefault(d.kind, d)
    return list(seen.values())


@pytest.fixture(scope="module")
def verifier(anvil_chain: Any, run: dict[str, Any]) -> Any:
    """A verifier with one op of every kind of the step registered (and the faulty ops)."""
    v = anvil_chain.deploy("ScalarStepVerifier", key=anvil_chain.dev_keys[0])
    graph = run["graph"]
    root = graph_root(graph)
    ops = {d.index for d in _one_op_per_kind(graph)} | {int(f.split(":")[1]) for f in FAULTS.values()}
    for op in sorted(ops):
        proof = descriptor_proof(graph, op)
        fn = v.functions.registerOp(root, graph[op].encode(), proof.size, list(proof.siblings))
        anvil_chain.transact(fn, key=anvil_chain.dev_keys[0])
    return v


def _numel(d: Any) -> int:
    n = 1
    for s in d.out_shape:
        n *= s
    return n


def _template_ops(run: dict[str, Any]) -> Iterator[Any]:
    """The step's template ops, one descriptor per distinct (kind, shapes, attrs), in graph order."""
    done = set()
    for d in run["graph"]:
        if d.kind in TEMPLATE_KINDS and (d.kind, d.shapes, d.attrs) not in done:
            done.add((d.kind, d.shapes, d.attrs))
            yield d


def _attrs(run: dict[str, Any], d: Any) -> dict[str, Any]:
    return dict(run["honest"].records[d.index].attrs)


def test_tiny_gpt_graph_fully_covered(run: dict[str, Any]) -> None:
    graph = run["graph"]
    assert uncovered(graph) == []
    assert TRANSFORMER_KINDS <= {d.kind for d in graph}
    assert graph_of_trace(run["first"], run["spec"]) == graph  # the same graph every step


def test_templates_equal_tracer(run: dict[str, Any]) -> None:
    """Every template op of the step: the first and last element of the first, second and last
    class, random elements, and for ops with a class per column an element of every class, relocated
    from their class's template, are the tracer's programs."""
    rng = random.Random(11)
    for d in _template_ops(run):
        attrs = _attrs(run, d)
        tp = template_program(d.kind, d.shapes, attrs)
        assert (tp.root, tp.length, tp.registers) == (d.program_root, d.program_length, d.program_registers)
        numel = _numel(d)
        firsts: dict[int, int] = {}
        lasts: dict[int, int] = {}
        for e in range(numel):
            c = tp.element_class(e)
            firsts.setdefault(c, e)
            lasts[c] = e
        wanted = {c for c in (0, 1, tp.classes - 1) if c in firsts}
        elements = {firsts[c] for c in wanted} | {lasts[c] for c in wanted} | {rng.randrange(numel) for _ in range(2)}
        if tp.classes > 4:  # a class per column: every class, on a random row
            row = rng.randrange(numel // tp.classes)
            elements |= {row * tp.classes + c for c in range(tp.classes)}
        for e in sorted(elements):
            program, nregs = scalar_program(d.kind, [list(s) for s in d.shapes], attrs, e)
            assert tp.program(e)[tp.padding(e):] == program, (d.index, d.kind, e)
            assert tp.padding(e) + len(program) == tp.length and nregs <= tp.registers


def test_template_leaves_relocate_on_chain(verifier: Any, run: dict[str, Any]) -> None:
    """The contract relocates each committed leaf exactly as Python does (instructions that move an
    input or an immediate, the first, the middle and the last), for two elements of every template op."""
    rng = random.Random(12)
    for d in _template_ops(run):
        tp = template_program(d.kind, d.shapes, _attrs(run, d))
        for e in (rng.randrange(_numel(d)), _numel(d) - 1):
            c = tp.element_class(e)
            moving = [m for m in range(tp.length) if tp.coef(c)[m].any()]
            imms = [m for m in moving if any(isinstance(s, Imm) for s in tp.template(c)[m].srcs)]
            for m in sorted({0, tp.length // 2, tp.length - 1, *moving[:2], *imms[:2]}):
                got = verifier.functions.instructionWith(d.encode(), e, m, 0, tp.opening(e, m)).call()
                assert bytes(got) == tp.program(e)[m].encode(), (d.index, d.kind, e, m)


def _step(verifier: Any, run: dict[str, Any], p: ElementProgram, m: int) -> bytes:
    ctx = p.step_context(run["spec_hash"], m=m)
    return bytes(verifier.functions.step(ctx, p.leaves[m], p.step_proof(m)).call())


def test_every_kind_steps_bit_exact(verifier: Any, run: dict[str, Any]) -> None:
    """One op of every kind of the step, an honest element: every sampled step of the contract gives
    the next leaf of the RepOps evaluator. Gas is measured over the sample."""
    rng = random.Random(13)
    worst: dict[str, tuple[int, int]] = {}
    for d in _one_op_per_kind(run["graph"]):
        element = rng.randrange(_numel(d))
        p = ElementProgram.build(run["honest"], d.index, element, run["graph"], run["spec"])
        assert p.leaves == p.honest_leaves
        reads = [m for m in range(p.length) if p.program[m].op == Opcode.LOAD or len(p.reads(m)) > 1]
        ms = range(p.length) if p.length <= 24 else sorted(
            {0, p.length // 2, p.length - 1, *reads[:3], *rng.sample(range(p.length), 4)})
        for m in ms:
            assert _step(verifier, run, p, m) == p.leaves[m + 1], (d.index, d.kind, element, m)
            ctx = p.step_context(run["spec_hash"], m=m)
            gas = verifier.functions.step(ctx, p.leaves[m], p.step_proof(m)).estimate_gas()
            if gas > worst.get(d.kind, (0, 0))[0]:
                worst[d.kind] = (gas, m)
    print("worst step gas by op kind (eth_estimateGas, 21000 base and calldata included; kind: (gas, step)):")
    for kind, (gas, m) in sorted(worst.items(), key=lambda kv: -kv[1][0]):
        print(f"  {kind}: {gas} (step {m})")
    assert max(g for g, _ in worst.values()) <= 250_000


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_faulty_element_last_step_gives_honest_leaf(verifier: Any, run: dict[str, Any], name: str) -> None:
    """A solver whose GELU or softmax element is wrong commits leaves that end at its own element
    (else outputMatches rejects them); the contract's step from the agreed leaf M - 1 gives the
    honest leaf, so the solver loses the one-step check."""
    f = Fault.parse(FAULTS[name])
    faulty = ElementProgram.build(run["faulty"][name], f.op, f.element, run["graph"], run["spec"])
    honest = ElementProgram.build(run["honest"], f.op, f.element, run["graph"], run["spec"])
    assert faulty.descriptor().kind == name
    m = faulty.length - 1
    assert faulty.leaves[: m + 1] == honest.leaves[: m + 1]
    assert faulty.leaves[m + 1] != honest.leaves[m + 1]
    post = _step(verifier, run, faulty, m)
    assert post == honest.leaves[m + 1] != faulty.leaves[m + 1]
    ctx = faulty.step_context(run["spec_hash"])
    out_id = run["faulty"][name].log_ids[faulty.output_entry]
    assert verifier.functions.outputMatches(ctx, faulty.leaves[-1], out_id, faulty.output_opening()).call()


@pytest.mark.parametrize(("kind", "shapes", "attrs"), [
    ("exp", [(3, 5)], {}), ("log", [(7,)], {}), ("sqrt", [(2, 3)], {}), ("tanh", [(4, 2)], {}), ("erf", [(5,)], {}),
    ("log_softmax", [(3, 6)], {}), ("log_softmax_backward", [(3, 6), (3, 6)], {}), ("softmax", [(2, 3, 5)], {}),
    ("layernorm_stats", [(3, 9)], {"eps": 1e-5}),
])  # fmt: skip
def test_other_template_kinds_equal_tracer(verifier: Any, kind: str, shapes: list[tuple[int, ...]],
                                           attrs: dict[str, Any]) -> None:
    """Template kinds no reference model runs (the stand-alone math ops, log-softmax) and other
    shapes: every element's relocated template is the tracer's program, and the contract relocates
    sampled leaves as Python does."""
    from protocol.dispute.graph import OpDescriptor, attr_words

    tp = template_program(kind, shapes, attrs)
    numel = 1
    for s in tp.domain:
        numel *= s
    d = OpDescriptor(0, kind, attr_words(attrs), tuple(range(len(shapes))), tuple(1 for _ in shapes),
                     tuple(shapes), tp.domain, len(shapes), tp.root, tp.length, tp.registers)
    for e in range(numel):
        program, nregs = scalar_program(kind, [list(s) for s in shapes], attrs, e)
        assert tp.program(e)[tp.padding(e):] == program, (kind, e)
        assert nregs <= tp.registers
    for e in {0, numel // 2, numel - 1}:
        for m in {0, tp.padding(e), tp.length // 2, tp.length - 1}:
            got = verifier.functions.instructionWith(d.encode(), e, m, 0, tp.opening(e, m)).call()
            assert bytes(got) == tp.program(e)[m].encode(), (kind, e, m)


def test_template_disk_cache_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A template read back from the disk cache (another process's build) is the built one: same
    tree, and the programs parsed back from its leaves are the tracer's."""
    from protocol.dispute import template as T

    monkeypatch.setenv("VERIGRAD_TEMPLATE_CACHE", str(tmp_path))
    args = ("softmax", [(2, 3, 6)], {})
    T._cached.cache_clear()
    built = T.template_program(*args)
    assert len(list(tmp_path.glob("*.pkl"))) == 1
    T._cached.cache_clear()
    loaded = T.template_program(*args)
    assert loaded is not built and not loaded._parsed
    assert (loaded.root, loaded.leaves, loaded.levels, loaded.pads) == (built.root, built.leaves, built.levels, built.pads)
    for e in range(36):
        assert loaded.program(e)[loaded.padding(e):] == scalar_program("softmax", [[2, 3, 6]], {}, e)[0]
    next(tmp_path.glob("*.pkl")).write_bytes(b"damaged")
    T._cached.cache_clear()
    assert T.template_program(*args).root == built.root  # a damaged file is rebuilt
    T._cached.cache_clear()


# Edge values of binary32: ±0, a subnormal, ±inf, NaN, huge, past exp's range, a tiny and a plain one.
EDGES = [0.0, -0.0, 1e-40, float("inf"), float("-inf"), float("nan"), 3e38, -104.0, 89.0, 1e-8, -0.5, 2.0]


@pytest.mark.parametrize(("kind", "elements"), [
    ("gelu", (3, 5)), ("exp", (8, 7)), ("log", (1, 10)), ("sqrt", (2, 6)), ("tanh", (4, 9)), ("erf", (0, 11)),
])  # fmt: skip
def test_math_kinds_edge_values_every_step(anvil_chain: Any, kind: str, elements: tuple[int, ...]) -> None:
    """The stand-alone math ops and GELU on edge-valued inputs: every step of the contract, from
    template programs, reproduces the RepOps evaluator's leaves (the program's special-value
    SELECTs included)."""
    from types import SimpleNamespace

    import torch

    from protocol.commit import TensorCommitment
    from protocol.repops import OpRecord
    from protocol.repops.ops import compute

    x = torch.tensor(EDGES, dtype=torch.float32)
    out = compute(kind, [x], {})
    rec = OpRecord(0, kind, {}, (x,), out)
    ids = [TensorCommitment(x).id, TensorCommitment(out).id]
    trace = SimpleNamespace(step=0, start_names=["x"], log_ids=ids, records=[rec],
                            ops=[SimpleNamespace(index=0, inputs=[0], output=1)])
    graph = graph_of_trace(trace, None)
    v = anvil_chain.deploy("ScalarStepVerifier", key=anvil_chain.dev_keys[0])
    proof = descriptor_proof(graph, 0)
    anvil_chain.transact(v.functions.registerOp(graph_root(graph), graph[0].encode(), proof.size,
                                                list(proof.siblings)), key=anvil_chain.dev_keys[0])
    spec_hash_ = b"\x00" * 32
    for element in elements:
        p = ElementProgram.build(trace, 0, element, graph)
        assert p.leaves == p.honest_leaves
        for m in range(p.length):
            ctx = p.step_context(spec_hash_, m=m)
            assert bytes(v.functions.step(ctx, p.leaves[m], p.step_proof(m)).call()) == p.leaves[m + 1], (element, m)


def test_sgd_steps_with_step_table(anvil_chain: Any, tmp_path: Path) -> None:
    """sgd (no shipped spec uses it yet) at a training step of a scheduled run: its graph commits the
    learning rate of every step, and every step of its elements on chain, with the step's row opened
    from the table, reproduces the RepOps evaluator's leaves. Its gas is measured."""
    from types import SimpleNamespace

    import torch

    from protocol.commit import TensorCommitment
    from protocol.repops import OpRecord
    from protocol.repops.ops import compute
    from protocol.spec import learning_rate

    text = (REPO / "protocol" / "specs" / "tiny-gpt.toml").read_text()
    (tmp_path / "s.toml").write_text(re.sub(r"(?m)^steps = \d+", "steps = 30", text))
    spec = load_spec(tmp_path / "s.toml")
    step = 25  # in the decay (warm-up is 20 steps)
    p_ = torch.tensor(EDGES, dtype=torch.float32)
    g = torch.tensor(list(reversed(EDGES)), dtype=torch.float32)
    attrs = {"lr": learning_rate(spec, step)}
    rec = OpRecord(0, "sgd", attrs, (p_, g), compute("sgd", [p_, g], attrs))
    ids = [TensorCommitment(p_).id, TensorCommitment(g).id, TensorCommitment(rec.output).id]
    trace = SimpleNamespace(step=step, start_names=["p", "g"], log_ids=ids, records=[rec],
                            ops=[SimpleNamespace(index=0, inputs=[0, 1], output=2)])
    graph = graph_of_trace(trace, spec)
    assert uncovered(graph) == [] and graph[0].program_length == 2
    v = anvil_chain.deploy("ScalarStepVerifier", key=anvil_chain.dev_keys[0])
    proof = descriptor_proof(graph, 0)
    anvil_chain.transact(v.functions.registerOp(graph_root(graph), graph[0].encode(), proof.size,
                                                list(proof.siblings)), key=anvil_chain.dev_keys[0])
    worst = 0
    for element in range(len(EDGES)):
        p = ElementProgram.build(trace, 0, element, graph, spec)
        for m in range(p.length):
            fn = v.functions.step(p.step_context(b"\x00" * 32, m=m), p.leaves[m], p.step_proof(m))
            assert bytes(fn.call()) == p.leaves[m + 1], (element, m)
            worst = max(worst, fn.estimate_gas())
    print(f"sgd: worst step {worst} gas (30-step table)")
    assert worst <= 250_000

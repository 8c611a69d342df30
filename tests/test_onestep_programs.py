"""The verifier derives each element's program exactly as the RepOps tracer generates it.

For every op kind the ScalarStepVerifier covers, over shapes that exercise every chunking case
(one chunk; two chunks with a short or a full second one; many chunks; wide ops with 64-term
chunks; transposed operands; batch dimensions) and the matmul ops of a real digits-mlp step, the
contract's whole program of sampled elements (``programOf``) is compared instruction by instruction,
in the 21-byte encoding, with ``repops.scalar_program``; lengths and register counts as well.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from web3.exceptions import ContractCustomError

from protocol.dispute.graph import (
    ZERO_ROOT,
    OpDescriptor,
    attr_words,
    committed_program,
    op_graph,
    step_table,
)
from protocol.dispute.onestep import supported, uncovered
from protocol.repops.ops import scalar_program
from protocol.repops.policy import bits_f32
from protocol.spec import learning_rate, load_spec

REPO = Path(__file__).resolve().parents[1]


def short_digits_spec(tmp: Path, steps: int) -> Path:
    """The digits-mlp reference spec with ``steps`` steps (one checkpoint interval)."""
    text = (REPO / "protocol" / "specs" / "digits-mlp.toml").read_text()
    text = re.sub(r"(?m)^steps = \d+", f"steps = {steps}", text)
    text = re.sub(r"(?m)^checkpoint_interval = \d+", f"checkpoint_interval = {steps}", text)
    path = tmp / "digits-short.toml"
    path.write_text(text)
    return path


def _descriptor(kind: str, shapes: list[tuple[int, ...]], attrs: tuple[int, ...], out_shape: tuple[int, ...]) -> bytes:
    return OpDescriptor(index=0, kind=kind, attrs=attrs, inputs=tuple(range(len(shapes))),
                        dtypes=tuple(1 for _ in shapes), shapes=tuple(shapes), out_shape=out_shape,
                        output=len(shapes)).encode()


def _check(verifier: Any, kind: str, shapes: list[tuple[int, ...]], attrs: dict[str, bool], element: int) -> None:
    words = tuple(int(attrs[k]) for k in sorted(attrs))
    program, nregs = scalar_program(kind, shapes, attrs, element)
    desc = _descriptor(kind, shapes, words, ())
    onchain = verifier.functions.programOf(desc, element).call()
    assert [bytes(i) for i in onchain] == [i.encode() for i in program], (kind, shapes, attrs, element)
    length, registers, result = verifier.functions.programShape(desc, element).call()
    assert (length, registers, result) == (len(program), nregs, program[-1].dst)


@pytest.fixture(scope="module")
def digits_graph(digits_spec: Callable[[], Any]) -> Callable[[], Any]:
    """The op graph of a short digits-mlp run (built on first use)."""
    cache: list[Any] = []

    def get() -> Any:
        if not cache:
            cache.append(op_graph(digits_spec()))
        return cache[0]

    return get


@pytest.fixture(scope="module")
def digits_spec(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Any]:
    """The short digits-mlp spec the graph fixture uses."""
    cache: list[Any] = []

    def get() -> Any:
        if not cache:
            cache.append(load_spec(short_digits_spec(tmp_path_factory.mktemp("spec"), steps=12)))
        return cache[0]

    return get


@pytest.fixture(scope="module")
def verifier(anvil_chain: Any) -> Any:
    return anvil_chain.deploy("ScalarStepVerifier", key=anvil_chain.dev_keys[0])


# (rows, K, cols): K = 1 (one term), 2, 5 (two chunks, short second), 4 and 9 (full chunks), 32 (six
# chunks, short last), 37; (4, 130, 128): 512 elements, narrow; (128, 130, 128): wide, 64-term chunks.
MATMUL_SIZES = [(3, 1, 2), (2, 2, 3), (3, 5, 2), (2, 4, 2), (3, 9, 4), (4, 32, 3), (2, 37, 5), (4, 130, 128),
                (128, 130, 128)]


@pytest.mark.parametrize(("rows", "k", "cols"), MATMUL_SIZES)
@pytest.mark.parametrize(("ta", "tb"), [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_program_equals_tracer(verifier: Any, rows: int, k: int, cols: int, ta: bool, tb: bool) -> None:
    a = (k, rows) if ta else (rows, k)
    b = (cols, k) if tb else (k, cols)
    rng = random.Random(rows * 1000 + k * 10 + cols)
    for element in {0, rows * cols - 1, rng.randrange(rows * cols)}:
        _check(verifier, "matmul", [a, b], {"ta": ta, "tb": tb}, element)


def test_matmul_batched_program_equals_tracer(verifier: Any) -> None:
    for element in (0, 17, 2 * 3 * 4 - 1):
        _check(verifier, "matmul", [(2, 5, 3), (2, 4, 5)], {"ta": True, "tb": True}, element)


@pytest.mark.parametrize("kind", ["linear", "linear_nobias"])
@pytest.mark.parametrize(("rows", "k", "cols"), [(3, 1, 2), (3, 5, 2), (2, 9, 3), (32, 64, 128), (5, 200, 7)])
def test_linear_program_equals_tracer(verifier: Any, kind: str, rows: int, k: int, cols: int) -> None:
    shapes = [(rows, k), (cols, k)] + ([(cols,)] if kind == "linear" else [])
    for element in {0, rows * cols - 1, (rows * cols) // 2}:
        _check(verifier, kind, shapes, {}, element)


def test_digits_ops_equal_tracer(verifier: Any, digits_graph: Callable[[], Any]) -> None:
    """Every covered op of a real digits-mlp step, descriptors as the graph commits them."""
    graph = digits_graph()
    covered = [d for d in graph if supported(d.kind) and not d.committed and d.kind != "adamw"]
    assert {d.kind for d in covered} == {"linear", "relu", "mean", "matmul", "sum_rows", "relu_backward", "adam_m",
                                         "adam_v", "add"}
    rng = random.Random(5)
    for d in covered:
        attrs = {"ta": bool(d.attrs[0]), "tb": bool(d.attrs[1])} if d.kind == "matmul" else {}
        if d.kind in ("adam_m", "adam_v"):
            attrs = dict(zip(("beta1", "beta2", "eps", "weight_decay"), (bits_f32(w) for w in d.attrs), strict=True))
        numel = 1
        for s in d.out_shape:
            numel *= s
        for element in {0, numel - 1, rng.randrange(numel)}:
            program, _ = scalar_program(d.kind, [list(s) for s in d.shapes], attrs, element)
            onchain = verifier.functions.programOf(d.encode(), element).call()
            assert [bytes(i) for i in onchain] == [i.encode() for i in program], (d.index, element)


@pytest.mark.parametrize(("rows", "cols"), [(1, 3), (2, 2), (5, 3), (32, 10), (300, 4)])
def test_sum_rows_program_equals_tracer(verifier: Any, rows: int, cols: int) -> None:
    for element in {0, cols - 1}:
        _check(verifier, "sum_rows", [(rows, cols)], {}, element)


@pytest.mark.parametrize("shape", [(1,), (2,), (5,), (32,), (4, 9), (200,)])
def test_mean_program_equals_tracer(verifier: Any, shape: tuple[int, ...]) -> None:
    _check(verifier, "mean", [shape], {}, 0)


ADAM = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 1e-4}


@pytest.mark.parametrize(("kind", "shapes", "attrs"), [
    ("relu", [(4, 5)], {}), ("relu_backward", [(4, 5), (4, 5)], {}), ("add", [(4, 5), (4, 5)], {}),
    ("add", [(4, 5), (5,)], {}), ("add", [(3, 4, 5), (4, 1)], {}), ("add", [(), ()], {}), ("sub", [(4, 5), (1, 5)], {}),
    ("mul", [(6,), (6,)], {}), ("scale", [(4, 5)], {"c": 0.3}), ("adam_m", [(7,), (7,)], ADAM),
    ("adam_v", [(7, 3), (7, 3)], ADAM), ("adam_m", [(2,), (2,)], {"beta1": 0.5, "beta2": 0.25, "eps": 1e-6,
                                                                   "weight_decay": 0.0}),
])  # fmt: skip
def test_elementwise_program_equals_tracer(verifier: Any, kind: str, shapes: list[tuple[int, ...]],
                                           attrs: dict[str, float]) -> None:
    numel = 1
    for s in shapes[0]:
        numel *= s
    words = attr_words(attrs)
    for element in {0, numel - 1, numel // 2}:
        program, nregs = scalar_program(kind, shapes, attrs, element)
        desc = _descriptor(kind, shapes, words, shapes[0])
        onchain = verifier.functions.programOf(desc, element).call()
        assert [bytes(i) for i in onchain] == [i.encode() for i in program], (kind, shapes, element)
        assert tuple(verifier.functions.programShape(desc, element).call()) == (len(program), nregs, program[-1].dst)


def test_adamw_program_equals_tracer(verifier: Any, digits_spec: Callable[[], Any],
                                     digits_graph: Callable[[], Any]) -> None:
    """adamw: the template patched with a step's constants (opened from the descriptor's step table)
    equals the tracer's program at that step, for the first, a warm-up and the last step."""
    spec = digits_spec()
    rng = random.Random(9)
    for d in (d for d in digits_graph() if d.kind == "adamw"):
        attrs = dict(zip(("beta1", "beta2", "eps", "weight_decay"), (bits_f32(w) for w in d.attrs), strict=True))
        table = step_table(spec, attrs)
        assert table.root == d.program_root
        numel = 1
        for s in d.out_shape:
            numel *= s
        for step in (0, 1, spec.steps - 1):
            full = {**attrs, "lr": learning_rate(spec, step), "step": step + 1}
            opening = table.opening(step)
            for element in {0, numel - 1, rng.randrange(numel)}:
                program, nregs = scalar_program("adamw", [list(s) for s in d.shapes], full, element)
                assert (len(program), nregs) == (d.program_length, d.program_registers)
                ms = range(len(program)) if element == 0 else (0, 37, 38, 40, 41, 43)
                for m in ms:
                    got = bytes(verifier.functions.instructionWith(d.encode(), element, m, step, opening).call())
                    assert got == program[m].encode(), (d.index, step, element, m)
        with pytest.raises(ContractCustomError, match=keccak(text="StepConstantsNotCommitted(uint256)")[:4].hex()):
            verifier.functions.instructionWith(d.encode(), 0, 0, 1, table.opening(0)).call()


def test_digits_graph_fully_covered(digits_graph: Callable[[], Any]) -> None:
    assert uncovered(digits_graph()) == []
    # a template kind without its templates, an optimizer without its step table
    gelu = OpDescriptor(0, "gelu", (), (0,), (1,), ((4,),), (4,), 1)
    sgd = OpDescriptor(0, "sgd", (), (0, 1), (1, 1), ((3,), (3,)), (3,), 2)
    assert uncovered([*digits_graph(), gelu, sgd]) == [gelu, sgd]


def test_unsupported_kind_reverts(verifier: Any, digits_graph: Callable[[], Any]) -> None:
    ce = next(d for d in digits_graph() if d.kind == "cross_entropy")
    adamw = next(d for d in digits_graph() if d.kind == "adamw")
    # adamw and sgd without their step tables, cross-entropy without its template programs
    sgd = OpDescriptor(0, "sgd", (), (0, 1), (1, 1), ((3,), (3,)), (3,), 2)
    for d in (dataclasses.replace(adamw, program_root=ZERO_ROOT),
              dataclasses.replace(ce, program_root=ZERO_ROOT, program_length=0, program_registers=0), sgd):
        selector = keccak(text="UnsupportedOp(uint256)")[:4].hex()
        with pytest.raises(ContractCustomError, match=selector + f"{d.kind_id:064x}"):
            verifier.functions.programShape(d.encode(), 0).call()


def test_template_programs_equal_tracer(verifier: Any, digits_graph: Callable[[], Any]) -> None:
    """Cross-entropy ops commit template programs: relocated, the template is the tracer's program
    of every sampled element, in Python (every instruction) and on chain (sampled instructions,
    each template leaf opened against the descriptor's root); the contract reads the program's
    shape from the descriptor and refuses to derive what it must open."""
    committed = [d for d in digits_graph() if d.committed]
    assert {d.kind for d in committed} == {"cross_entropy", "cross_entropy_backward"}
    for d in committed:
        attrs = {"batch": d.attrs[0]} if d.kind == "cross_entropy_backward" else {}
        tree = committed_program(d, attrs)
        assert tree.root == d.program_root
        numel = 1
        for s in d.out_shape:
            numel *= s
        for element in (0, 13, numel - 1):
            program, nregs = scalar_program(d.kind, [list(s) for s in d.shapes], attrs, element)
            pad = tree.padding(element)
            assert tree.program(element)[pad:] == program
            assert nregs <= d.program_registers
            for m in {0, pad, len(program) // 2, d.program_length - 1}:
                got = verifier.functions.instructionWith(d.encode(), element, m, 0, tree.opening(element, m)).call()
                assert bytes(got) == tree.program(element)[m].encode(), (d.kind, element, m)
            assert tuple(verifier.functions.programShape(d.encode(), element).call()) == (
                d.program_length, d.program_registers, 0)
        selector = keccak(text="ProgramCommitted(uint256)")[:4].hex()
        with pytest.raises(ContractCustomError, match=selector):
            verifier.functions.programOf(d.encode(), 0).call()
        # a leaf of another element's class or position does not open this one
        with pytest.raises(ContractCustomError, match=keccak(text="TemplateNotCommitted(uint256,uint256)")[:4].hex()):
            verifier.functions.instructionWith(d.encode(), 1, 5, 0, tree.opening(1, 6)).call()


def test_sgd_program_equals_tracer(verifier: Any, digits_spec: Callable[[], Any]) -> None:
    """sgd: its two instructions with the step's learning rate from the op's step table."""
    spec = digits_spec()
    table = step_table(spec, {}, "sgd")
    d = OpDescriptor(0, "sgd", (), (0, 1), (1, 1), ((4, 3), (4, 3)), (4, 3), 2, table.root, 2, 1)
    for step in (0, 3, spec.steps - 1):
        lr = learning_rate(spec, step)
        for element in (0, 7, 11):
            program, nregs = scalar_program("sgd", [[4, 3], [4, 3]], {"lr": lr}, element)
            assert (len(program), nregs) == (2, 1)
            for m in range(2):
                got = verifier.functions.instructionWith(d.encode(), element, m, step, table.opening(step)).call()
                assert bytes(got) == program[m].encode(), (step, element, m)
    assert tuple(verifier.functions.programShape(d.encode(), 11).call()) == (2, 1, 0)
    with pytest.raises(ContractCustomError, match=keccak(text="StepConstantsNotCommitted(uint256)")[:4].hex()):
        verifier.functions.instructionWith(d.encode(), 0, 0, 2, table.opening(1)).call()

"""The verifier derives each element's program exactly as the RepOps tracer generates it.

For every op kind the ScalarStepVerifier covers, over shapes that exercise every chunking case
(one chunk; two chunks with a short or a full second one; many chunks; wide ops with 64-term
chunks; transposed operands; batch dimensions) and the matmul ops of a real digits-mlp step, the
contract's whole program of sampled elements (``programOf``) is compared instruction by instruction,
in the 21-byte encoding, with ``repops.scalar_program``; lengths and register counts as well.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from web3.exceptions import ContractCustomError

from protocol.dispute.graph import OpDescriptor, op_graph
from protocol.repops.ops import scalar_program
from protocol.spec import load_spec

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
def digits_graph(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Any]:
    """The op graph of a short digits-mlp run (built on first use)."""
    cache: list[Any] = []

    def get() -> Any:
        if not cache:
            spec = load_spec(short_digits_spec(tmp_path_factory.mktemp("spec"), steps=2))
            cache.append(op_graph(spec))
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


def test_digits_matmul_ops_equal_tracer(verifier: Any, digits_graph: Callable[[], Any]) -> None:
    """The matmul-family ops of a real digits-mlp step, descriptors as the graph commits them."""
    graph = digits_graph()
    covered = [d for d in graph if d.kind in ("matmul", "linear", "linear_nobias")]
    assert len(covered) >= 4
    rng = random.Random(5)
    for d in covered:
        attrs = {"ta": bool(d.attrs[0]), "tb": bool(d.attrs[1])} if d.kind == "matmul" else {}
        numel = 1
        for s in d.out_shape:
            numel *= s
        for element in {0, numel - 1, rng.randrange(numel)}:
            program, _ = scalar_program(d.kind, [list(s) for s in d.shapes], attrs, element)
            onchain = verifier.functions.programOf(d.encode(), element).call()
            assert [bytes(i) for i in onchain] == [i.encode() for i in program], (d.index, element)


def test_unsupported_kind_reverts(verifier: Any, digits_graph: Callable[[], Any]) -> None:
    relu = next(d for d in digits_graph() if d.kind == "relu")
    selector = keccak(text="UnsupportedOp(uint256)")[:4].hex()
    with pytest.raises(ContractCustomError, match=selector + f"{4:064x}"):
        verifier.functions.programShape(relu.encode(), 0).call()

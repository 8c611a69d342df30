"""Differential test: MerkleLog.sol and TensorCommit.sol agree with the Python verifiers.

The forge tests replay fixed vectors; here random trees, tensors and tampered proofs built in Python
go through the compiled libraries on an in-process EVM (eth-tester), and the verdicts must be equal:
every proof Python accepts, Solidity accepts, and every one Python rejects, Solidity rejects.
"""

from __future__ import annotations

import ast
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

solcx = pytest.importorskip("solcx")
web3 = pytest.importorskip("web3")

from protocol.commit import AppendOnlyTree, TensorCommitment  # noqa: E402
from protocol.commit.errors import ProofError  # noqa: E402
from protocol.commit.hashing import hash_bytes, leaf_hash  # noqa: E402
from protocol.commit.merkle import ConsistencyProof, InclusionProof, verify_append  # noqa: E402
from protocol.commit.tensor import DTYPES  # noqa: E402

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SOLC = REPO / "tools" / "solc"

HARNESS = """
// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;
import {MerkleLog} from "contracts/src/merkle/MerkleLog.sol";
import {TensorCommit} from "contracts/src/merkle/TensorCommit.sol";
contract CommitHarness {
    function verifyInclusion(bytes32 root, bytes32 leaf, uint256 index, uint256 size, bytes32[] calldata sib)
        external pure returns (bool) { return MerkleLog.verifyInclusion(root, leaf, index, size, sib); }
    function verifyAppend(bytes32 a, bytes32 b, uint256 m, bytes32 leaf, bytes32[] calldata sib)
        external pure returns (bool) { return MerkleLog.verifyAppend(a, b, m, leaf, sib); }
    function verifyConsistency(uint256 m, uint256 n, bytes32 a, bytes32 b, bytes32[] calldata path)
        external pure returns (bool) { return MerkleLog.verifyConsistency(m, n, a, b, path); }
    function verifyElement(bytes32 id, uint8 dtype, uint32[] calldata shape, uint256 i, bytes calldata chunk,
        bytes32[] calldata sib) external pure returns (uint256) {
        return TensorCommit.verifyElement(id, dtype, shape, i, chunk, sib);
    }
}
"""


@pytest.fixture(scope="module")
def harness() -> Any:
    if not SOLC.is_file() or shutil.which("node") is None:
        pytest.skip("tools/solc or node missing")
    sources = {"Harness.sol": {"content": HARNESS}}
    for name in ("MerkleLog.sol", "TensorCommit.sol"):
        key = f"contracts/src/merkle/{name}"
        sources[key] = {"content": (REPO / key).read_text()}
    out = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": sources,
            "settings": {
                "optimizer": {"enabled": True, "runs": 200},
                "evmVersion": "cancun",
                "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
            },
        },
        solc_binary=str(SOLC),
        allow_paths=str(REPO),
    )
    c = out["contracts"]["Harness.sol"]["CommitHarness"]
    w3 = web3.Web3(web3.EthereumTesterProvider())
    account = w3.eth.accounts[0]
    factory = w3.eth.contract(abi=c["abi"], bytecode=c["evm"]["bytecode"]["object"])
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor().transact({"from": account}))
    return w3.eth.contract(address=receipt.contractAddress, abi=c["abi"])


def _python_accepts_inclusion(root: bytes, value: bytes, p: InclusionProof) -> bool:
    try:
        p.verify(value, root)
        return True
    except ProofError:
        return False


def test_inclusion_verdicts_match_python(harness: Any) -> None:
    rng = random.Random(7)
    for _ in range(15):
        n = rng.randint(1, 100)
        values = [rng.randbytes(32) for _ in range(n)]
        tree = AppendOnlyTree(values)
        i = rng.randrange(n)
        p = tree.inclusion_proof(i)
        variants = [(values[i], p), (values[(i + 1) % n], p)]
        variants.append((values[i], InclusionProof(i, n + rng.randint(1, 5), p.siblings)))
        variants.append((values[i], InclusionProof((i + rng.randint(1, n)) % n, n, p.siblings)))
        if p.siblings:
            k = rng.randrange(len(p.siblings))
            bad = bytearray(p.siblings[k])
            bad[rng.randrange(32)] ^= 1 << rng.randrange(8)
            variants.append(
                (values[i], InclusionProof(i, n, p.siblings[:k] + (bytes(bad),) + p.siblings[k + 1 :]))
            )
            variants.append((values[i], InclusionProof(i, n, p.siblings[:-1])))
        variants.append((values[i], InclusionProof(i, n, p.siblings + (rng.randbytes(32),))))
        for value, q in variants:
            expected = _python_accepts_inclusion(tree.root, value, q)
            got = harness.functions.verifyInclusion(
                tree.root, leaf_hash(value), q.index, q.size, list(q.siblings)
            ).call()
            assert got == expected, (n, i, q)
        assert harness.functions.verifyInclusion(
            tree.root, leaf_hash(values[i]), i, n, list(p.siblings)
        ).call()


def test_append_verdicts_match_python(harness: Any) -> None:
    rng = random.Random(10)
    for _ in range(10):
        m = rng.randint(0, 90)
        values = [rng.randbytes(32) for _ in range(m + 1)]
        tree = AppendOnlyTree(values)
        p = tree.append_proof(m)
        old, new, leaf = tree.root_at(m), tree.root, leaf_hash(values[m])
        variants = [(old, new, leaf, p.siblings), (old, new, leaf_hash(b"x"), p.siblings)]
        if p.siblings:
            variants.append((old, new, leaf, (rng.randbytes(32),) + p.siblings[1:]))
            variants.append((rng.randbytes(32), new, leaf, p.siblings))
        for a, b, lf, sib in variants:
            try:
                verify_append(a, b, m, lf, sib)
                expected = True
            except ProofError:
                expected = False
            assert harness.functions.verifyAppend(a, b, m, lf, list(sib)).call() == expected


def test_consistency_verdicts_match_python(harness: Any) -> None:
    rng = random.Random(8)
    for _ in range(15):
        n = rng.randint(1, 100)
        m = rng.randint(1, n)
        tree = AppendOnlyTree([rng.randbytes(32) for _ in range(n)])
        p = tree.consistency_proof(m)
        old, new = tree.root_at(m), tree.root
        variants = [(old, p), (tree.root_at(m - 1) if m > 1 else rng.randbytes(32), p)]
        variants.append((old, ConsistencyProof(m, min(2 * n, n + rng.randint(1, 9)), p.path)))
        if p.path:
            k = rng.randrange(len(p.path))
            variants.append(
                (old, ConsistencyProof(m, n, p.path[:k] + (rng.randbytes(32),) + p.path[k + 1 :]))
            )
        for old_root, q in variants:
            try:
                q.verify(old_root, new)
                expected = True
            except ProofError:
                expected = False
            got = harness.functions.verifyConsistency(
                q.old_size, q.new_size, old_root, new, list(q.path)
            ).call()
            assert got == expected, (m, n, q)


def test_element_proofs_open_in_solidity(harness: Any) -> None:
    import torch

    rng = random.Random(9)
    gen = torch.Generator().manual_seed(9)
    cases = [torch.randn(s, generator=gen) for s in [(1,), (63,), (65,), (7, 41), (3, 5, 17), ()]]
    cases.append(torch.randint(-(2**62), 2**62, (5, 13), generator=gen, dtype=torch.int64))
    cases.append(torch.randint(-(2**31), 2**31 - 1, (70,), generator=gen, dtype=torch.int32))
    for t in cases:
        c = TensorCommitment(t)
        for _ in range(3):
            i = rng.randrange(max(1, t.numel()))
            p = c.element_proof(i)
            bits = harness.functions.verifyElement(*p.to_abi()).call()
            assert bits == p.verify() == c.element_bits(i)
        bad = bytearray(p.chunk)
        bad[0] ^= 0x80
        with pytest.raises(Exception) as info:
            harness.functions.verifyElement(
                p.tensor_id, DTYPES[p.dtype][0], list(p.shape), p.flat_index, bytes(bad), list(p.siblings)
            ).call()
        assert _revert_selector(info.value) == hash_bytes(b"TensorIdMismatch(bytes32,bytes32)")[:4]


def _revert_selector(exc: BaseException | None) -> bytes | None:
    """First four bytes of the revert data carried anywhere in the exception chain."""
    while exc is not None:
        data = getattr(exc, "data", None)
        if isinstance(data, str) and data.startswith("0x"):
            return bytes.fromhex(data[2:10])
        for arg in exc.args:
            if isinstance(arg, bytes) and len(arg) >= 4:
                return arg[:4]
            if isinstance(arg, str) and "reverted: b" in arg:  # eth-tester: the bytes' repr in a message
                raw = ast.literal_eval(arg.split("reverted: ", 1)[1])
                return raw[:4] if isinstance(raw, bytes) else None
        exc = exc.__cause__ or exc.__context__
    return None

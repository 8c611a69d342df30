"""Gas of the on-chain binary32 operations (Float32 library), worst case and median.

Why: a dispute ends in one soft-float operation checked on chain together with its Merkle proofs; the
goal is <= 5,000 gas per basic op so the whole one-step check stays well inside 250,000 gas.

Method (two figures per op, both on a fresh anvil):

* ``gas_<op>`` / ``gas_<op>_median``: the library call itself, as a contract linking ``Float32``
  pays it. ``Float32GasProbe.measure`` brackets each internal call with ``gasleft()``; the
  bracket's own constant cost (``probe_overhead``, the empty bracket) is subtracted.
* ``gas_execute_<opcode>``: the same vectors through ``RepOpsISA.execute`` (opcode dispatch
  included), which is what the one-step verifier calls; ``fmuladd`` is acc + a*b, two roundings.
* ``call_<op>``: what an external caller pays to run the worst vector through the deployed
  ``Float32Arbiter.<op>(uint32,uint32)``: ``eth_estimateGas`` minus the 21,000 transaction base and
  the calldata charge (16 gas per nonzero byte, 4 per zero byte), i.e. dispatch + ABI + the op.

The vectors are the differential test's (tests/test_softfloat_diff.py): every pair of special
values, random bit patterns, random normals and the targeted ties / cancellation / subnormal /
overflow cases, >100,000 per op. The library has no loops, so its cost depends only on the branch
taken; the maximum over this set, which reaches every branch, is its worst case.

Usage: ``python benchmarks/softfloat_gas.py``; the last line is a JSON object.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
from web3 import Web3

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from protocol.chain.batch import encode_uint_arrays  # noqa: E402
from protocol.chain.client import Chain  # noqa: E402
from protocol.chain.devnet import Anvil  # noqa: E402

OPS = {"add": 0, "sub": 1, "mul": 2, "div": 3, "lt": 4, "eq": 5}
EMPTY_BRACKET = 255
BATCH = 2048
CALL_GAS = 55_000_000


def _load_vectors() -> ModuleType:
    """The differential test module, for its vector generators (one definition of the edge set)."""
    path = REPO_ROOT / "tests" / "test_softfloat_diff.py"
    spec = importlib.util.spec_from_file_location("softfloat_vectors", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _encode(selector: bytes, op: int, a: np.ndarray, b: np.ndarray) -> bytes:
    """Calldata of ``measure(uint8,uint32[],uint32[])`` encoded with numpy."""
    n = len(a)
    head = (
        selector + op.to_bytes(32, "big") + (96).to_bytes(32, "big") + (96 + 32 * (n + 1)).to_bytes(32, "big")
    )
    body = b""
    for arr in (a, b):
        words = np.zeros((n, 8), dtype=">u4")
        words[:, 7] = arr
        body += n.to_bytes(32, "big") + words.tobytes()
    return head + body


def _decode(raw: bytes, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``(uint32[] results, uint256[] used)``."""
    off_r, off_u = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big")
    words_r = np.frombuffer(raw[off_r + 32 : off_r + 32 + 32 * n], dtype=">u4").reshape(n, 8)
    words_u = np.frombuffer(raw[off_u + 32 : off_u + 32 + 32 * n], dtype=">u4").reshape(n, 8)
    return words_r[:, 7].astype(np.uint32), words_u[:, 7].astype(np.int64)


def measure(w3: Web3, probe: str, op: int, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run ``Float32GasProbe.measure`` over all pairs in batches: (results, gas per pair)."""
    selector = Web3.keccak(text="measure(uint8,uint32[],uint32[])")[:4]
    results, used = [], []
    for start in range(0, len(a), BATCH):
        ca, cb = a[start : start + BATCH], b[start : start + BATCH]
        raw = bytes(w3.eth.call({"to": probe, "data": _encode(selector, op, ca, cb), "gas": CALL_GAS}))
        r, u = _decode(raw, len(ca))
        results.append(r)
        used.append(u)
    return np.concatenate(results), np.concatenate(used)


def measure_execute(w3: Web3, probe: str, rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Run ``Float32GasProbe.measureExecute`` over (opcodes, x0, x1, x2): (results, gas per row)."""
    selector = Web3.keccak(text="measureExecute(uint8[],uint32[],uint32[],uint32[])")[:4]
    results, used = [], []
    for start in range(0, len(rows[0]), BATCH):
        chunk = [r[start : start + BATCH] for r in rows]
        raw = bytes(w3.eth.call({"to": probe, "data": encode_uint_arrays(selector, chunk), "gas": CALL_GAS}))
        r, u = _decode(raw, len(chunk[0]))
        results.append(r)
        used.append(u)
    return np.concatenate(results), np.concatenate(used)


def calldata_gas(data: bytes) -> int:
    """The intrinsic calldata charge: 16 gas per nonzero byte, 4 per zero byte."""
    nonzero = sum(1 for x in data if x)
    return 16 * nonzero + 4 * (len(data) - nonzero)


def external_call_gas(w3: Web3, arbiter: str, op: str, x: int, y: int) -> int:
    """Execution gas of one external ``Float32Arbiter.<op>(x, y)`` call (estimate - base - calldata)."""
    data = Web3.keccak(text=f"{op}(uint32,uint32)")[:4] + x.to_bytes(32, "big") + y.to_bytes(32, "big")
    est = w3.eth.estimate_gas({"to": arbiter, "data": data})
    return int(est) - 21_000 - calldata_gas(data)


def main() -> None:
    vec = _load_vectors()
    t0 = time.monotonic()
    report: dict[str, object] = {}
    with Anvil() as node:
        chain = Chain.connect(node.rpc_url)
        probe = chain.deploy("Float32GasProbe", key=node.keys[0]).address
        arbiter = chain.deploy("Float32Arbiter", key=node.keys[0]).address
        w3 = chain.w3
        sp_a, sp_b = vec.special_pairs()
        _, empty = measure(w3, probe, EMPTY_BRACKET, sp_a, sp_b)
        overhead = int(np.median(empty))
        report["probe_overhead"] = overhead
        for name, code in OPS.items():
            a, b = vec.vectors(name) if name in vec.BINARY_OPS else vec.vectors("add")
            results, used = measure(w3, probe, code, a, b)
            if name in vec.BINARY_OPS:  # the probe must compute what the reference computes
                want = vec.softfloat_ref(name, a, b)
                assert np.array_equal(results, want), f"{name}: probe results differ from SoftFloat"
            net = used - overhead
            worst = int(np.argmax(net))
            report[f"gas_{name}"] = int(net[worst])
            report[f"gas_{name}_median"] = int(np.median(net))
            report[f"gas_{name}_worst_operands"] = [f"{int(a[worst]):#010x}", f"{int(b[worst]):#010x}"]
            report[f"call_{name}"] = external_call_gas(w3, arbiter, name, int(a[worst]), int(b[worst]))
            report[f"n_{name}"] = len(a)
            print(
                f"{name:>3}: worst {net[worst]:5d} gas  median {int(np.median(net)):5d} gas  "
                f"external call {report[f'call_{name}']:5d} gas  over {len(a)} vectors",
                flush=True,
            )
        # The same vectors through the RepOps instruction dispatcher (what the one-step check runs).
        add_a, add_b = vec.vectors("add")
        mul_a, mul_b = vec.vectors("mul")
        m = min(len(add_a), len(mul_a))
        isa_rows = {
            "fadd": (0x01, add_a, add_b, add_b),
            "fmul": (0x03, mul_a, mul_b, mul_b),
            "fdiv": (0x04, *vec.vectors("div"), vec.vectors("div")[1]),
            "fmuladd": (0x05, add_a[:m], mul_a[:m], mul_b[:m]),
        }
        for name, (opcode, x0, x1, x2) in isa_rows.items():
            ops = np.full(len(x0), opcode, dtype=np.uint32)
            _, used = measure_execute(w3, probe, [ops, x0, x1, x2])
            net = used - overhead
            report[f"gas_execute_{name}"] = int(net.max())
            report[f"gas_execute_{name}_median"] = int(np.median(net))
            print(
                f"execute {name:>8}: worst {int(net.max()):5d} gas  median {int(np.median(net)):5d} gas  "
                f"over {len(x0)} vectors",
                flush=True,
            )
    report["method"] = "gasleft() bracket around the internal library call minus the empty bracket"
    report["seconds"] = round(time.monotonic() - t0, 2)
    print(json.dumps(report))


if __name__ == "__main__":
    main()

"""Which hash and which chunk size for verigrad's commitments: measured off chain, costed on chain.

Off chain, every checkpoint of every task hashes the whole training state (parameters and optimizer
moments); on chain, a dispute verifies a handful of inclusion proofs. This benchmark measures both
sides for sha256 and keccak-256 and for several chunk sizes:

* off chain: wall time to commit a whole state (big-endian element bits -> chunk leaves -> chunk
  roots -> tensor ids -> state root, the algorithm of ``protocol.commit``) for a ~10k-parameter MLP
  and a ~0.5M-parameter tiny GPT, each with its two AdamW moments and a step counter; the minimum of
  several repeats (the machine is shared, the minimum is the least disturbed run), plus the bulk
  throughput of one call over the same bytes;
* on chain: gas to open one element of the GPT's largest tensor and prove its tensor id in the state
  root, from opcode costs (calldata 16 gas per nonzero byte, keccak 30 + 6/word, the sha256
  precompile 60 + 12/word behind a warm STATICCALL of 100) and, when forge is available, the gas
  MerkleLog.sol actually spends on a depth-20 proof (tests in contracts/test/merkle/).

Decision rules (printed with the numbers):

* chunk size: the brief asks for the on-chain cost of proving one element; the largest chunk whose
  proof gas is within 25 % of the cheapest chunk's (larger chunks mean fewer Python-level hash calls
  per checkpoint, so the tie goes to the faster commit);
* hash: the one with the lower proof gas, unless the other saves more than 1 % of a checkpoint
  interval when committing the GPT state at the chosen chunk size (``--interval-s``, default 5 s:
  50 steps of 0.1 s, a fast RepOps step for this model; above 1 % it would show in
  ``commit_overhead``).

Times are CPU time of this process (``time.process_time``), the minimum over ``--repeats`` runs:
the machine is shared, and wall time would charge other people's work to the hash.

Usage: ``python benchmarks/hash_choice.py [--repeats N] [--no-forge]``; the last line is JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import sha3

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from protocol.commit import CHUNK_BYTES, state_root  # noqa: E402
from protocol.commit.hashing import PYMERKLE_ALGORITHM  # noqa: E402

HASHES: dict[str, Callable[..., object]] = {"sha256": hashlib.sha256, "keccak_256": sha3.keccak_256}
CHUNKS = [64, 128, 256, 512, 1024, 4096]

# EVM costs (Cancun): calldata bytes, KECCAK256, the SHA256 precompile and a warm STATICCALL to it.
G_CALLDATA_NONZERO = 16
G_KECCAK, G_KECCAK_WORD = 30, 6
G_SHA256, G_SHA256_WORD = 60, 12
G_STATICCALL_WARM = 100


# ---------------------------------------------------------------------------------------------------
# States
# ---------------------------------------------------------------------------------------------------


def mlp_shapes(n_in: int = 64, hidden: int = 128, n_out: int = 10) -> list[tuple[int, ...]]:
    """A one-hidden-layer MLP on 8x8 digits: 64*128 + 128 + 128*10 + 10 = 9,610 parameters."""
    return [(hidden, n_in), (hidden,), (n_out, hidden), (n_out,)]


def gpt_shapes(vocab: int = 65, block: int = 128, d: int = 128, layers: int = 2) -> list[tuple[int, ...]]:
    """A character-level GPT (token and position embeddings, pre-LN blocks, tied-free head)."""
    shapes: list[tuple[int, ...]] = [(vocab, d), (block, d)]
    for _ in range(layers):
        shapes += [(d,), (d,), (3 * d, d), (3 * d,), (d, d), (d,)]  # ln1, qkv, proj
        shapes += [(d,), (d,), (4 * d, d), (4 * d,), (d, 4 * d), (d,)]  # ln2, mlp
    shapes += [(d,), (d,), (vocab, d)]  # ln_f, head
    return shapes


def make_state(shapes: list[tuple[int, ...]], seed: int) -> list[tuple[str, np.ndarray]]:
    """Parameters, AdamW first and second moments (same shapes) and a step counter."""
    rng = np.random.default_rng(seed)
    named: list[tuple[str, np.ndarray]] = []
    for kind in ("param", "m", "v"):
        for i, s in enumerate(shapes):
            arr = rng.standard_normal(s).astype(np.float32)
            if kind == "v":
                arr = (np.abs(arr) * 1e-4).astype(np.float32)
            named.append((f"{kind}.{i}", arr))
    named.append(("step", np.array(100, dtype=np.int64)))
    return named


def state_bytes(named: list[tuple[str, np.ndarray]]) -> list[tuple[bytes, int, tuple[int, ...]]]:
    """Committed bytes (big-endian bits), dtype code and shape of each tensor."""
    out = []
    for _, arr in named:
        width = arr.dtype.itemsize
        code = {np.dtype(np.float32): 1, np.dtype(np.int32): 2, np.dtype(np.int64): 3}[arr.dtype]
        out.append((arr.view(f"=u{width}").astype(f">u{width}").tobytes(), code, arr.shape))
    return out


# ---------------------------------------------------------------------------------------------------
# The commitment algorithm with a pluggable hash and chunk size
# ---------------------------------------------------------------------------------------------------


def _root(leaves: list[bytes], h: Callable[..., object]) -> bytes:
    level = leaves
    if not level:
        return h(b"").digest()  # type: ignore[attr-defined]
    while len(level) > 1:
        nxt = [h(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]  # type: ignore[attr-defined]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def commit_state(
    tensors: list[tuple[bytes, int, tuple[int, ...]]], h: Callable[..., object], chunk: int
) -> bytes:
    """State root over tensor ids, with ``h`` as the hash and ``chunk``-byte leaves."""
    ids = []
    for data, code, shape in tensors:
        mv = memoryview(data)
        leaves = []
        for i in range(0, len(data), chunk):
            x = h(b"\x00")
            x.update(mv[i : i + chunk])  # type: ignore[attr-defined]
            leaves.append(x.digest())  # type: ignore[attr-defined]
        pre = b"\x02" + bytes([code, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)
        ids.append(h(pre + _root(leaves, h)).digest())  # type: ignore[attr-defined]
    return _root([h(b"\x00" + i).digest() for i in ids], h)  # type: ignore[attr-defined]


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Minimum CPU time of ``repeats`` runs, in seconds."""
    best = math.inf
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


# ---------------------------------------------------------------------------------------------------
# Gas
# ---------------------------------------------------------------------------------------------------


def hash_gas(name: str, nbytes: int) -> int:
    """Gas of one hash of ``nbytes`` bytes (opcode or precompile, without memory bookkeeping)."""
    words = -(-nbytes // 32)
    if name == "keccak_256":
        return G_KECCAK + G_KECCAK_WORD * words
    return G_STATICCALL_WARM + G_SHA256 + G_SHA256_WORD * words


def element_proof_gas(name: str, chunk: int, chunk_depth: int, state_depth: int) -> dict[str, int]:
    """Gas to open one element: chunk and siblings as calldata, the leaf hash, every node hash.

    Calldata is costed as nonzero bytes: float bits and hashes are almost never zero bytes.
    """
    depth = chunk_depth + state_depth
    calldata = G_CALLDATA_NONZERO * (chunk + 32 * depth)
    hashing = hash_gas(name, 1 + chunk) + depth * hash_gas(name, 65) + hash_gas(name, 3 + 8 + 32)
    return {"calldata": calldata, "hashing": hashing, "total": calldata + hashing, "depth": depth}


def forge_depth20() -> dict[str, object]:
    """Gas measured by forge on a depth-20 proof (keccak MerkleLog vs the same walk with sha256)."""
    forge = REPO / "node_modules" / ".bin" / "forge"
    if not forge.exists():
        return {"error": "node_modules/.bin/forge not found"}
    cmd = [str(forge), "test", "--match-test", "test_verifyInclusion_depth20Gas_succeeds", "-vv"]
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as err:
        return {"error": f"forge did not run: {err}"}
    found = dict(
        re.findall(
            r"depth20 (keccak verifyInclusion|sha256 same walk|keccak via external call)[^:]*: (\d+)",
            proc.stdout,
        )
    )
    if len(found) != 3:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        return {"error": "forge output without the gas lines: " + " | ".join(tail)}
    return {
        "keccak_256": int(found["keccak verifyInclusion"]),
        "sha256": int(found["sha256 same walk"]),
        "keccak_256_external_call": int(found["keccak via external call"]),
    }


# ---------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--interval-s", type=float, default=5.0, help="training seconds between checkpoints")
    ap.add_argument("--no-forge", action="store_true", help="skip the forge gas measurement")
    args = ap.parse_args()

    states = {"mlp_10k": make_state(mlp_shapes(), 1), "gpt_0p5m": make_state(gpt_shapes(), 2)}
    result: dict[str, Any] = {"states": {}}
    offchain: dict[str, dict[str, dict[int, float]]] = {}
    for sname, named in states.items():
        tensors = state_bytes(named)
        total = sum(len(d) for d, _, _ in tensors)
        blob = b"".join(d for d, _, _ in tensors)
        params = sum(int(np.prod(a.shape)) for n, a in named if n.startswith("param."))
        info: dict[str, Any] = {"params": params, "tensors": len(named), "bytes": total}
        offchain[sname] = {}
        for hname, h in HASHES.items():
            bulk = best_time(partial(h, blob), args.repeats)
            times = {c: best_time(partial(commit_state, tensors, h, c), args.repeats) for c in CHUNKS}
            offchain[sname][hname] = times
            info[hname] = {
                "bulk_gb_per_s": round(total / bulk / 1e9, 3),
                "commit_ms_by_chunk": {str(c): round(t * 1e3, 2) for c, t in times.items()},
            }
        # The package itself (keccak, CHUNK_BYTES) must agree with the generic algorithm above.
        pkg = best_time(partial(state_root, named), args.repeats)
        assert state_root(named) == commit_state(tensors, sha3.keccak_256, CHUNK_BYTES)
        info["protocol_commit_ms"] = round(pkg * 1e3, 2)
        result["states"][sname] = info

    # On chain: open one element of the GPT's largest tensor and prove its id in the state root.
    gpt = states["gpt_0p5m"]
    largest = max(int(np.prod(a.shape)) * a.dtype.itemsize for _, a in gpt)
    state_depth = math.ceil(math.log2(len(gpt)))
    gas: dict[str, dict[int, dict[str, int]]] = {}
    for hname in HASHES:
        gas[hname] = {}
        for c in CHUNKS:
            chunk_depth = math.ceil(math.log2(max(2, -(-largest // c))))
            gas[hname][c] = element_proof_gas(hname, c, chunk_depth, state_depth)
    result["element_proof_gas"] = {h: {str(c): g for c, g in by.items()} for h, by in gas.items()}
    depth20 = {h: 20 * hash_gas(h, 65) for h in HASHES}
    result["depth20_node_hash_gas_estimate"] = depth20
    measured = {"error": "skipped (--no-forge)"} if args.no_forge else forge_depth20()
    result["depth20_forge_gas"] = measured

    # Decisions.
    keccak_gas = {c: gas["keccak_256"][c]["total"] for c in CHUNKS}
    cheapest = min(keccak_gas.values())
    chunk = max(c for c in CHUNKS if keccak_gas[c] <= 1.25 * cheapest)
    t_gpt = offchain["gpt_0p5m"]
    gas_winner = min(HASHES, key=lambda h: gas[h][chunk]["total"])
    other = next(h for h in HASHES if h != gas_winner)
    saving_ms = (t_gpt[gas_winner][chunk] - t_gpt[other][chunk]) * 1e3
    budget_ms = 0.01 * args.interval_s * 1e3
    hash_choice = other if saving_ms > budget_ms else gas_winner
    result["decision"] = {
        "chunk_bytes": chunk,
        "hash": hash_choice,
        "rule_chunk": "largest chunk with element-proof gas within 25% of the cheapest (keccak)",
        "rule_hash": f"lower proof gas unless the other hash saves > {budget_ms:.0f} ms per GPT checkpoint",
        "offchain_ms_saved_by_" + other + "_per_gpt_checkpoint": round(saving_ms, 2),
        "proof_gas_saved_by_" + gas_winner: gas[other][chunk]["total"] - gas[gas_winner][chunk]["total"],
        "protocol_constants": {"hash": PYMERKLE_ALGORITHM, "chunk_bytes": CHUNK_BYTES},
        "matches_protocol_constants": hash_choice == PYMERKLE_ALGORITHM and chunk == CHUNK_BYTES,
    }

    for sname, info in result["states"].items():
        print(f"{sname}: {info['params']} params, {info['tensors']} tensors, {info['bytes'] / 1e6:.2f} MB")
        for hname in HASHES:
            row = "  ".join(f"{c}B {ms}ms" for c, ms in info[hname]["commit_ms_by_chunk"].items())
            print(f"  {hname:10s} bulk {info[hname]['bulk_gb_per_s']} GB/s | commit {row}")
        print(f"  protocol.commit.state_root: {info['protocol_commit_ms']} ms")
    for hname in HASHES:
        row = "  ".join(f"{c}B {g['total']}" for c, g in gas[hname].items())
        print(f"element proof gas {hname:10s}: {row}")
    print(f"depth-20 node hashing estimate: {depth20}; forge measured: {measured}")
    print(f"decision: {result['decision']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Gas of the dispute game, move by move and for whole games, on a real anvil.

Why: a dispute must stay cheap enough that challenging pays: the goals are <= 60,000 gas for the
worst bisection move, <= 250,000 for the final one-step check with its proofs, <= 2,000,000 for a
whole game (both parties). For scale: opML spends about 109,000 gas per bisection round.

What is played: a trace of 2^16 checkpoints x 2^8 steps x 2^12 ops x 2^10 scalar steps with synthetic
leaves that satisfy every link the contract checks (S_0 and S_N against the trace, the checkpoint
pair against level 2, S_t as the prefix of the first op log and S_t+1 as 16 designated entries of the
last, the disputed log extending the agreed one, the output tensor in the disputed log, the program's
input tensor in the agreed log). The solver lies at one scalar step of one element of one op; the
challenger plays toward it and the one-step check (ToyStepVerifier: opens the state, proves the input
tensor against the op log and the element against the tensor id with chunk + path) slashes the solver.

Figures are receipts' ``gasUsed``: what a party pays, 21,000 base and calldata included, cold storage
as in a real transaction. Three games on three tasks:

* ``bisect`` (degree 2): the challenger narrows with ``choose`` only, one leaf per reveal;
* ``kary`` (degree 4): three leaves per reveal, half the rounds;
* ``pinpoint`` (degree 2): the challenger has the solver's leaves off chain and names the adjacent
  pair of each level in advance (in ``challenge`` for level 1, in the move that ends a level for the
  next), so each level costs one descent, one reveal of the pair and one choice (the game the
  protocol expects when artifacts are served, DESIGN §3);
* ``withheld``: ``pinpoint`` where the solver's disputed output is not served: the challenger has the
  solver open the chunk holding the element on chain (``requestChunk`` / ``openChunk``) first.

``gas_per_move`` is the worst bisection move (reveal, choose, pinpoint) of the degree-2 game, one
leaf per reveal; ``gas_per_move_kary_k4`` and ``gas_per_move_pinpoint`` are the same for reveals of
three and two leaves. ``gas_one_step`` is the worst ``step`` (the verifier's check with every
opening); ``gas_resolve`` the worst settlement (the market's slash, refund and the bond; the first
slash on a fresh chain creates the StakeManager's slots). ``gas_full_dispute`` is the total of the
``pinpoint`` game, challenge to settlement, both parties; the other games' totals stand beside it. Usage: ``python benchmarks/dispute_gas.py``; the
last line is a JSON object.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_abi import encode
from web3 import Web3

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from protocol.chain.client import Chain  # noqa: E402
from protocol.chain.deploy import Params, deploy_all  # noqa: E402
from protocol.chain.devnet import Anvil  # noqa: E402
from protocol.commit.hashing import hash_bytes, leaf_hash, node_hash  # noqa: E402
from protocol.commit.merkle import (  # noqa: E402
    consistency_path,
    inclusion_path,
    inclusion_path_from_levels,
    merkle_root,
    root_from_inclusion,
    tree_levels,
)
from protocol.commit.tensor import tensor_id_from_root  # noqa: E402
from protocol.dispute.layout import LAYOUT_TYPES, border, graph_commitment, input_row_leaf  # noqa: E402

LOG_CHECKPOINTS, LOG_STEPS, LOG_OPS, LOG_SCALAR = 16, 8, 12, 10
N_CHECKPOINTS = 2**LOG_CHECKPOINTS + 1  # S_0 .. S_N
INTERVAL = 2**LOG_STEPS
N_OPS = 2**LOG_OPS
N_SCALAR = 2**LOG_SCALAR
STATE_TENSORS = 16
BATCH_TENSORS = 2
OUTPUT_ELEMENT = 1
OUTPUT_SIZE = 1024  # int32 elements of the disputed output: 16 chunks

# Where the lie is (the challenger agrees with the left position and disagrees with the next).
FAULT = {1: 40_000, 2: 100, 3: 2_717, 4: 700}

BOND = 10**17
STAKE = 10**18
PAYMENT = 10**18
CLOCK = 7 * 24 * 3600

MOVE_KINDS = ("reveal", "choose", "pinpoint")


def op_leaf(root: bytes, size: int) -> bytes:
    """Level 3's leaf: keccak256(abi.encode(logRoot, logSize)) (Bisection.opLeaf)."""
    return hash_bytes(root + size.to_bytes(32, "big"))


def toy_state(m: int, acc: int) -> bytes:
    """ToyStepVerifier.stateOf: keccak256(abi.encode(m, acc))."""
    return hash_bytes(m.to_bytes(32, "big") + acc.to_bytes(32, "big"))


def prefix_roots(hashes: list[bytes]) -> list[bytes]:
    """RFC 9162 root of every prefix (index k: first k + 1 leaves) from a frontier of perfect subtrees."""
    frontier: list[tuple[int, bytes]] = []
    roots = []
    for h in hashes:
        frontier.append((0, h))
        while len(frontier) >= 2 and frontier[-1][0] == frontier[-2][0]:
            (height, right), (_, left) = frontier.pop(), frontier.pop()
            frontier.append((height + 1, node_hash(left, right)))
        r = frontier[-1][1]
        for _, node in reversed(frontier[:-1]):
            r = node_hash(node, r)
        roots.append(r)
    return roots


@dataclass
class Sequence:
    """One level's leaves with its tree (for inclusion proofs)."""

    leaves: list[bytes]
    levels: list[list[bytes]] = field(init=False)

    def __post_init__(self) -> None:
        self.levels = tree_levels([leaf_hash(v) for v in self.leaves])

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def proof(self, index: int) -> list[bytes]:
        return inclusion_path_from_levels(self.levels, index)


class World:
    """The synthetic trace: every link the contract checks holds; the lie is at FAULT[4]."""

    def __init__(self, seed: int = 7) -> None:
        rng = random.Random(seed)

        def rand() -> bytes:
            return rng.randbytes(32)

        # Level 4: the program sums the 1024 int32 elements of the tensor at log entry 0.
        self.x = [rng.randrange(2**31) for _ in range(N_SCALAR)]
        x_bytes = b"".join(v.to_bytes(4, "big") for v in self.x)
        self.x_chunks = [x_bytes[i : i + 256] for i in range(0, len(x_bytes), 256)]
        self.x_chunk_hashes = [leaf_hash(c) for c in self.x_chunks]
        self.x_id = tensor_id_from_root("int32", (N_SCALAR,), merkle_root(self.x_chunk_hashes))
        self.acc = [0]
        for v in self.x:
            self.acc.append((self.acc[-1] + v) % 2**32)
        solver_acc = [a if m <= FAULT[4] else (a + 1) % 2**32 for m, a in enumerate(self.acc)]
        self.solver_acc = solver_acc
        self.l4 = Sequence([toy_state(m, a) for m, a in enumerate(solver_acc)])
        self.out_values = [rng.randrange(2**31) for _ in range(OUTPUT_SIZE)]
        self.out_values[OUTPUT_ELEMENT] = solver_acc[-1]
        out_bytes = b"".join(v.to_bytes(4, "big") for v in self.out_values)
        self.out_chunks = [out_bytes[i : i + 256] for i in range(0, len(out_bytes), 256)]
        self.out_chunk_hashes = [leaf_hash(c) for c in self.out_chunks]
        self.out_root = merkle_root(self.out_chunk_hashes)
        self.out_id = tensor_id_from_root("int32", (OUTPUT_SIZE,), self.out_root)

        # Level 3: the op log of the disputed step.
        state_ids = [self.x_id] + [rand() for _ in range(STATE_TENSORS - 1)]
        self.state_t = merkle_root([leaf_hash(i) for i in state_ids])
        self.state_ids = state_ids
        self.input_ids = [rand() for _ in range(BATCH_TENSORS)]
        entries = state_ids + self.input_ids
        self.size0 = len(entries)
        for j in range(1, N_OPS + 1):
            entries.append(self.out_id if j == FAULT[3] + 1 else rand())
        self.entries = entries
        self.entry_hashes = [leaf_hash(e) for e in entries]
        roots = prefix_roots(self.entry_hashes)
        self.log_root = lambda size: roots[size - 1]  # noqa: E731
        self.designated = list(range(len(entries) - STATE_TENSORS, len(entries)))
        self.state_next = merkle_root([self.entry_hashes[i] for i in self.designated])
        self.l3 = Sequence([op_leaf(self.log_root(self.size0 + j), self.size0 + j) for j in range(N_OPS + 1)])

        # The task's op graph commitment: descriptors' root and step layout. The step-input table has
        # a row for every step of the task (2^24): only the disputed row is real, its path's siblings
        # stand for the other rows' subtrees.
        self.step = FAULT[1] * INTERVAL + FAULT[2]
        self.inputs_rows = (N_CHECKPOINTS - 1) * INTERVAL
        self.inputs_proof = [rand() for _ in range((self.inputs_rows - 1).bit_length())]
        self.inputs_root = root_from_inclusion(input_row_leaf(self.step, self.input_ids), self.step,
                                               self.inputs_rows, self.inputs_proof)
        self.graph_root = rand()
        layout_hash = hash_bytes(encode(LAYOUT_TYPES, [N_OPS, STATE_TENSORS, self.designated, self.inputs_root]))
        self.op_graph_root = graph_commitment(self.graph_root, layout_hash)

        # Level 2: the disputed checkpoint interval.
        l2 = [rand() for _ in range(INTERVAL + 1)]
        l2[FAULT[2]], l2[FAULT[2] + 1] = self.state_t, self.state_next
        self.l2 = Sequence(l2)

        # Level 1: the trace.
        l1 = [rand() for _ in range(N_CHECKPOINTS)]
        l1[FAULT[1]], l1[FAULT[1] + 1] = l2[0], l2[-1]
        self.l1 = Sequence(l1)
        self.s0, self.final = l1[0], l1[-1]

    def level(self, n: int) -> Sequence:
        return {1: self.l1, 2: self.l2, 3: self.l3, 4: self.l4}[n]

    def log_proof(self, index: int, size: int) -> list[bytes]:
        return inclusion_path(self.entry_hashes[:size], index)

    def ops_commitment(self) -> tuple[Any, ...]:
        last = len(self.entries)
        return (
            self.l3.root,
            N_OPS + 1,
            self.graph_root,
            self.inputs_root,
            STATE_TENSORS,
            border(self.state_ids, STATE_TENSORS),
            self.input_ids,
            self.inputs_rows,
            self.inputs_proof,
            self.l3.proof(0),
            self.log_root(last),
            last,
            self.l3.proof(N_OPS),
            self.designated,
            [self.entries[i] for i in self.designated],
            [self.log_proof(i, last) for i in self.designated],
        )

    def chunk_opening(self, index: int, entry: int, next_size: int) -> tuple[Any, ...]:
        """``openChunk``'s argument: chunk ``index`` of the disputed output with its path."""
        return (self.out_id, self.log_proof(entry, next_size), 2, [OUTPUT_SIZE], self.out_root,
                self.out_chunks[index], inclusion_path(self.out_chunk_hashes, index))

    def scalar_commitment(self, entry: int, next_size: int) -> tuple[Any, ...]:
        chunk = OUTPUT_ELEMENT * 4 // 256
        opening = encode(["uint32[]", "bytes", "bytes32[]"],
                         [[OUTPUT_SIZE], self.out_chunks[chunk], inclusion_path(self.out_chunk_hashes, chunk)])
        return (
            self.l4.root,
            self.l4.proof(0),
            self.l4.leaves[-1],
            self.l4.proof(N_SCALAR),
            self.out_id,
            self.log_proof(entry, next_size),
            encode(["uint256", "bytes"], [self.solver_acc[-1], opening]),
        )

    def step_proof(self, m: int, log_size: int) -> bytes:
        chunk = m * 4 // 256
        opening = encode(
            ["uint32[]", "bytes", "bytes32[]"],
            [[N_SCALAR], self.x_chunks[chunk], inclusion_path(self.x_chunk_hashes, chunk)],
        )
        return encode(
            ["uint256", "bytes32", "bytes32[]", "bytes"],
            [self.acc[m], self.x_id, self.log_proof(0, log_size), opening],
        )


class Bench:
    """Deployed market + games on one anvil, and the parties' keys."""

    def __init__(self, chain: Chain, keys: list[str]) -> None:
        self.chain = chain
        self.owner, self.submitter, self.solver, self.challenger = keys[:4]
        dep = deploy_all(chain, self.owner, Params())
        self.market = chain.contract("TaskMarket", dep.task_market)
        self.stake = chain.contract("StakeManager", dep.stake_manager)
        self.toy = chain.deploy("ToyStepVerifier", N_SCALAR, key=self.owner)
        self.games = {}
        for k in (2, 4):
            g = chain.deploy("DisputeGame", dep.task_market, self.toy.address, BOND, k, CLOCK, key=self.owner)
            chain.transact(self.market.functions.setDisputeContract(g.address, True), key=self.owner)
            self.games[k] = g
        addr = Web3().eth.account.from_key(self.solver).address
        self.solver_address = addr

    def _task_params(self, values: dict[str, Any]) -> tuple[Any, ...]:
        """``TaskParams`` in the ABI's field order; a field this benchmark does not know (a root the
        market added) gets a non-zero placeholder, so the benchmark follows the struct as it grows."""
        fn = next(f for f in self.market.abi if f.get("name") == "postTask")
        out = []
        for comp in fn["inputs"][0]["components"]:
            name, typ = comp["name"], comp["type"]
            if name in values:
                out.append(values[name])
            elif typ == "bytes32":
                out.append(hash_bytes(name.encode()))
            elif typ == "string":
                out.append("")
            else:
                out.append(0)
        return tuple(out)

    def task(self, world: World) -> int:
        """Posts a task, lets the solver win it and submit the world's trace; returns its id."""
        c, m = self.chain, self.market
        values: dict[str, Any] = {
            "specHash": hash_bytes(b"spec"),
            "initialStateRoot": world.s0,
            "opGraphRoot": world.op_graph_root,
            "specURI": "ipfs://spec",
            "requiredStake": STAKE,
            "bidBond": 0,
            "bidWindow": 3600,
            "revealWindow": 3600,
            "trainingWindow": 86400,
            "challengeWindow": 86400,
            "steps": (N_CHECKPOINTS - 1) * INTERVAL,
            "checkpointInterval": INTERVAL,
            "minCredit": 0,
        }
        params = self._task_params(values)
        c.transact(self.stake.functions.deposit(), key=self.solver, value=STAKE)
        c.transact(m.functions.postTask(params), key=self.submitter, value=PAYMENT)
        task_id = c.call(m.functions.taskCount())
        salt = b"\x11" * 32
        commitment = c.call(m.functions.bidCommitment(task_id, self.solver_address, PAYMENT, salt))
        c.transact(m.functions.commitBid(task_id, commitment), key=self.solver)
        c.advance(3600)
        c.transact(m.functions.revealBid(task_id, PAYMENT, salt), key=self.solver)
        c.advance(3600)
        c.transact(m.functions.closeAuction(task_id), key=self.submitter)
        c.transact(
            m.functions.submitResult(task_id, world.l1.root, (N_CHECKPOINTS - 1) * INTERVAL, world.final, "ipfs://r"),
            key=self.solver,
        )
        return int(task_id)

    def play(self, world: World, degree: int, pinpoint: bool, withheld: bool = False) -> dict[str, Any]:
        """Plays one game to its end; returns the gas of every move by kind and the total. ``withheld``:
        the challenger has the solver's leaves but not its disputed output, and has the solver open
        the chunk holding the element on chain before naming it."""
        c, game = self.chain, self.games[degree]
        task_id = self.task(world)
        gas: dict[str, list[int]] = {}

        def tx(kind: str, fn: Any, key: str, value: int = 0) -> None:
            receipt = c.transact(fn, key=key, value=value)
            gas.setdefault(kind, []).append(int(receipt["gasUsed"]))

        no_pin = 2**256 - 1
        tx("challenge", game.functions.challenge(task_id, FAULT[1] if pinpoint else no_pin), self.challenger, BOND)
        game_id = c.call(game.functions.gameCount())
        last_positions: list[int] = []
        f = game.functions
        while True:
            g = c.call(f.getGame(game_id))
            if g.status != 1:  # InProgress
                break
            phase, level = g.phase, g.level
            seq = world.level(level)
            if phase == 1:  # DefendTrace
                tx("defendTrace", f.defendTrace(game_id, seq.proof(0), seq.proof(N_CHECKPOINTS - 1)), self.solver)
            elif phase == 2:  # Reveal
                last_positions = list(c.call(f.pendingPositions(game_id)))
                leaves = [seq.leaves[p] for p in last_positions]
                proofs = [seq.proof(p) for p in last_positions]
                tx("reveal", f.reveal(game_id, leaves, proofs), self.solver)
            elif phase == 3:  # Choose
                fault = FAULT[level]
                index = sum(1 for p in last_positions if p <= fault)
                lo = last_positions[index - 1] if index > 0 else g.lo
                hi = last_positions[index] if index < len(last_positions) else g.hi
                if pinpoint and hi - lo > 1:
                    tx("pinpoint", f.pinpoint(game_id, index, fault), self.challenger)
                elif pinpoint and level < 4:
                    # The pair ends this level: pin the next level's pair in the same move.
                    tx("choose", f.pinpoint(game_id, index, FAULT[level + 1]), self.challenger)
                else:
                    tx("choose", f.choose(game_id, index), self.challenger)
            elif phase == 4:  # CommitSteps
                tx("commitSteps", f.commitSteps(game_id, world.l2.root, world.l2.proof(0),
                                                world.l2.proof(INTERVAL)), self.solver)
            elif phase == 5:  # CommitOps
                tx("commitOps", f.commitOps(game_id, world.ops_commitment()), self.solver)
            elif phase == 6:  # OpenOp
                pre = world.size0 + g.lo
                consistency = consistency_path(world.entry_hashes, pre, pre + 1)
                tx("openOp", f.openOp(game_id, world.log_root(pre), pre, world.log_root(pre + 1), pre + 1,
                                      consistency), self.solver)
            elif phase == 7 and withheld and g.chunkRequests == 0:  # NameOutput, the output withheld
                tx("requestChunk", f.requestChunk(game_id, OUTPUT_ELEMENT * 4 // 256), self.challenger)
            elif phase == 7:  # NameOutput
                tx("nameOutput", f.nameOutput(game_id, g.logSize, OUTPUT_ELEMENT), self.challenger)
            elif phase == 11:  # OpenChunk
                tx("openChunk", f.openChunk(game_id, world.chunk_opening(g.flatIndex, g.logSize, g.nextLogSize)),
                   self.solver)
            elif phase == 8:  # CommitScalar
                tx("commitScalar", f.commitScalar(game_id, world.scalar_commitment(g.outputEntry, g.nextLogSize)),
                   self.solver)
            elif phase == 9:  # Step
                tx("step", f.step(game_id, world.step_proof(g.lo, g.logSize)), self.challenger)
            elif phase == 10:  # Resolve: settlement through the market (slash, refund) and the bond
                tx("resolve", f.resolve(game_id), self.challenger)
            else:
                raise RuntimeError(f"unexpected phase {phase}")
        final = c.call(f.getGame(game_id))
        if final.status != 3 or final.lo != FAULT[4] or final.op != FAULT[3] + 1:
            raise RuntimeError(f"the game did not end at the planted fault: {final}")
        moves = sum(len(v) for v in gas.values())
        return {
            "moves": moves,
            "total": sum(sum(v) for v in gas.values()),
            "max": {k: max(v) for k, v in gas.items()},
            "count": {k: len(v) for k, v in gas.items()},
        }


def main() -> None:
    t0 = time.time()
    world = World()
    build_s = time.time() - t0
    with Anvil(accounts=4) as node:
        chain = Chain.connect(node.rpc_url)
        bench = Bench(chain, node.keys)
        games = {
            "bisect": bench.play(world, 2, pinpoint=False),
            "kary": bench.play(world, 4, pinpoint=False),
            "pinpoint": bench.play(world, 2, pinpoint=True),
            "withheld": bench.play(world, 2, pinpoint=True, withheld=True),
        }
    for name, r in games.items():
        print(f"{name:9s} moves={r['moves']:3d} total={r['total']:>10,d}  " + "  ".join(
            f"{k}={v:,d}x{r['count'][k]}" for k, v in r["max"].items()))
    def worst_move(name: str) -> int:
        return max(games[name]["max"].get(k, 0) for k in MOVE_KINDS)

    result = {
        "trace": f"2^{LOG_CHECKPOINTS} checkpoints x 2^{LOG_STEPS} steps x 2^{LOG_OPS} ops x 2^{LOG_SCALAR} scalar",
        "gas_per_move": worst_move("bisect"),
        "gas_per_move_kary_k4": worst_move("kary"),
        "gas_per_move_pinpoint": worst_move("pinpoint"),
        "gas_one_step": max(r["max"]["step"] for r in games.values()),
        "gas_resolve": max(r["max"]["resolve"] for r in games.values()),
        "gas_full_dispute": games["pinpoint"]["total"],
        "moves": games["pinpoint"]["moves"],
        "gas_full_dispute_bisect_k2": games["bisect"]["total"],
        "moves_bisect_k2": games["bisect"]["moves"],
        "gas_full_dispute_kary_k4": games["kary"]["total"],
        "gas_full_dispute_withheld": games["withheld"]["total"],
        "moves_withheld": games["withheld"]["moves"],
        "moves_kary_k4": games["kary"]["moves"],
        "gas_by_kind_max": {k: max(r["max"].get(k, 0) for r in games.values())
                            for k in sorted({k for r in games.values() for k in r["max"]})},
        "goals": {"gas_per_move": 60_000, "gas_one_step": 250_000, "gas_full_dispute": 2_000_000},
        "build_s": round(build_s, 2),
        "seconds": round(time.time() - t0, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

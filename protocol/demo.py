"""``verigrad demo``: the protocol's story on a fresh local chain, played by real daemon processes.

The demo process is only the narrator (and the submitter). It starts anvil, deploys the contracts
(stake, market, soft-float one-step verifier, dispute game) and then starts three daemons, each a
separate ``verigrad`` process with its own key, database, artifact store and log file:

* **alice**, an honest solver (``verigrad solver``), asking 40% of a task's payment;
* **bob**, a dishonest solver (``verigrad solver --inject STEP:OP:ELEMENT``), asking 60%: when he
  trains, he corrupts one scalar of one backward op at one step and commits the result as if it
  were right, then defends his lie in any dispute as well as he can;
* **victor**, a verifier (``verigrad verifier --sample-rate 1``).

The narrator posts two tasks at once: task 1 requires 1 ETH of stake, task 2 requires 2 ETH. Alice
keeps 1 ETH staked, so she bids on task 1 only; bob keeps 2 ETH and bids on both. Alice, cheaper,
wins task 1; bob wins task 2, the one he alone could take. Alice's result is re-executed by victor,
matches, and is paid when its challenge window closes. Bob's is re-executed, found wrong, and
challenged: the game is bisected level by level (checkpoints, steps, ops, the element's scalar
program) down to one instruction that the contract executes in soft-float. Bob is slashed, victor rewarded, the
submitter refunded.

Every line of the story comes from the chain (the contracts' events, followed from the narrator
process) or from a daemon's log (what it decided off chain: what it sampled, what it found); the
daemons are the actors, the narrator never moves for them. The demo ends with every task, game and
balance as tables, each party's net change, and the solvency of every contract: not a wei stuck.

Daemon logs go to ``<out>/<name>.log``. If a daemon dies, the demo stops with its log tail; all
children and anvil are stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from protocol.chain.availability import Availability
from protocol.chain.client import Chain
from protocol.chain.deploy import Deployment, Params, deploy_all
from protocol.chain.devnet import Anvil
from protocol.chain.dispute import DisputeGame, GameStatus
from protocol.chain.market import Market, TaskStatus
from protocol.chain_cli import balance_table, fmt_eth, game_table, solvency_lines, task_table
from protocol.errors import VerigradError

ETH = 10**18
REPO = Path(__file__).resolve().parents[1]
# What each solver keeps staked, and what the task meant for it requires: alice can hold one task of
# 1 ETH and cannot cover task 2's 2 ETH, so she bids on task 1 only; bob bids on both and, dearer,
# wins task 2 alone. Both auctions run at once and each solver wins one task whatever the timing.
STAKE = {"alice": ETH, "bob": 2 * ETH}
PAYMENT = 2 * ETH
BID_BOND = ETH // 100
GAME_BOND = ETH // 10
MARKER = ".verigrad-demo"  # marks a run directory the demo may clear on its next run

# Keys of anvil's development accounts.
DEPLOYER, SUBMITTER, ALICE, BOB, VICTOR = 0, 1, 2, 3, 4


class DemoFailed(VerigradError):
    """The story did not go as it must (a daemon died, a deadline passed, a check failed)."""


def add_demo_parser(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole story on a fresh devnet, played by solver and verifier daemon processes",
        description="Start anvil, deploy, start an honest solver, a dishonest solver and a verifier as separate "
        "daemon processes, post two tasks, and follow the chain: the honest task paid out, the dishonest one "
        "challenged, bisected down to one scalar operation the contract recomputes, the cheater slashed, the "
        "verifier rewarded, the submitter refunded; then every balance and the solvency of every contract.",
        epilog="examples:\n  verigrad demo\n  verigrad demo --out /tmp/demo --inject 78:6:0\n"
        "  verigrad demo --spec digits-mlp --steps 100 --challenge-window 60",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--spec", default="digits-mlp", help="reference spec name or spec file (default digits-mlp)")
    p.add_argument("--steps", type=int, default=None, help="override the spec's number of steps")
    p.add_argument("--out", default="runs/demo", help="run directory: logs, databases, stores (default runs/demo)")
    p.add_argument("--inject", default=None, metavar="STEP:OP:ELEMENT",
                   help="bob's fault (default: a non-zero element of the backward matmul at a step of "
                   "the second checkpoint interval)")
    p.add_argument("--block-time", type=float, default=0.25, help="anvil's seconds per block (default 0.25)")
    p.add_argument("--bid-window", type=int, default=15, help="seconds for sealed bids (default 15)")
    p.add_argument("--reveal-window", type=int, default=6, help="seconds for reveals (default 6)")
    p.add_argument("--challenge-window", type=int, default=25,
                   help="seconds a result may be challenged (default 25)")
    p.add_argument("--game-clock", type=int, default=300, help="seconds per party per dispute game (default 300)")
    p.add_argument("--timeout", type=float, default=600, help="give up after this many seconds (default 600)")
    p.set_defaults(func=run_demo)


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------- the cast
@dataclass
class Daemon:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]
    offset: int = 0
    partial: str = ""


def _load_prctl() -> Any:
    try:
        return ctypes.CDLL("libc.so.6").prctl if sys.platform.startswith("linux") else None
    except (OSError, AttributeError):
        return None


# Looked up here, in the parent: between fork and exec the child only makes the call (loading a
# library there could deadlock on a lock another thread of the demo, e.g. torch's, held at fork).
_PRCTL = _load_prctl()
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover (runs in the child between fork and exec)
    """Linux: the child gets SIGTERM if the demo dies without cleaning up (SIGKILL, a crash)."""
    _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGTERM))


@dataclass
class Cast:
    """The daemon processes of the demo, with their logs; :meth:`stop` ends every one of them."""

    run_dir: Path
    rpc: str
    deployments: Path
    daemons: list[Daemon] = field(default_factory=list)

    def spawn(self, name: str, args: list[str], key: str) -> Daemon:
        log_path = self.run_dir / f"{name}.log"
        log = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        env = {**os.environ, "VERIGRAD_KEY": key, "VERIGRAD_RPC": self.rpc, "PYTHONUNBUFFERED": "1"}
        # Own session: a Ctrl-C in the terminal reaches the demo alone, which then stops the daemons
        # in order (a daemon stops cleanly on SIGTERM, finishing its current tick).
        proc = subprocess.Popen(
            [sys.executable, "-m", "protocol.cli", *args, "--deployments", str(self.deployments)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True,
            preexec_fn=_die_with_parent if _PRCTL is not None else None,
        )
        d = Daemon(name, proc, log_path, log)
        self.daemons.append(d)
        return d

    def check(self) -> None:
        """Raise :class:`DemoFailed` with the log tail of the first daemon that has exited."""
        for d in self.daemons:
            rc = d.proc.poll()
            if rc is not None:
                how = f"was killed by {signal.Signals(-rc).name}" if rc < 0 else f"exited with code {rc}"
                raise DemoFailed(f"the {d.name} daemon {how}; the end of {d.log_path}:\n" + tail(d.log_path))

    def new_lines(self) -> Iterator[tuple[str, str]]:
        """Complete log lines written since the last call, as (daemon, line)."""
        for d in self.daemons:
            try:
                with open(d.log_path, "rb") as f:
                    f.seek(d.offset)
                    chunk = f.read()
            except OSError:
                continue
            d.offset += len(chunk)
            text = d.partial + chunk.decode("utf-8", "replace")
            *lines, d.partial = text.split("\n")
            for line in lines:
                yield d.name, line

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to every daemon still running (each finishes its tick and exits), SIGKILL after ``timeout``."""
        for d in self.daemons:
            if d.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    d.proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + timeout
        for d in self.daemons:
            try:
                d.proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                d.proc.kill()
                d.proc.wait()
            d.log.close()


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])


# ---------------------------------------------------------------------------------------- the story
@dataclass
class Story:
    """What the narrator knows: who is who, and the spec's ops (to name the disputed one)."""

    chain: Chain
    d: Deployment
    names: dict[str, str]
    interval: int
    op_kinds: list[str]
    game: DisputeGame
    posted: dict[int, int] = field(default_factory=dict)  # task -> block it was posted in

    def who(self, address: str) -> str:
        return self.names.get(address, f"{address[:6]}…{address[-4:]}")

    def op(self, index: int) -> str:
        """Op ``index`` of the game (1-based: the op whose output the log entry after it holds)."""
        kind = self.op_kinds[index - 1] if 0 < index <= len(self.op_kinds) else "?"
        return f"op {index} ({kind})"

    def describe(self, name: str, a: dict[str, Any], at: int = 0) -> str | None:
        """One line for one contract event (``at``: its block's timestamp), or None for bookkeeping."""
        e, w = fmt_eth, self.who
        if name == "StakeDeposited":
            return f"{w(a['account'])} stakes {e(a['amount'])} ETH"
        if name == "TaskPosted":
            return (f"{w(a['submitter'])} posts task {a['taskId']}: {e(a['payment'])} ETH in escrow, "
                    f"{e(a['requiredStake'])} ETH of stake required; sealed bids for {a['commitDeadline'] - at} s, "
                    f"then {a['revealDeadline'] - a['commitDeadline']} s to reveal them")
        if name == "BidCommitted":
            return f"{w(a['bidder'])} commits a sealed bid on task {a['taskId']} (bond {e(a['bond'])})"
        if name == "BidRevealed":
            return f"{w(a['bidder'])} reveals its bid on task {a['taskId']}: {e(a['price'])} ETH"
        if name == "BidBondForfeited":
            return f"{w(a['bidder'])}'s bid bond on task {a['taskId']} goes to the submitter (not revealed or not eligible)"
        if name == "TaskAssigned":
            return (f"task {a['taskId']} goes to {w(a['solver'])}, the best of the eligible bids ({e(a['price'])} ETH); "
                    f"paid {e(a['agreedPrice'])} ETH on completion; its stake is locked")
        if name == "TaskCancelled":
            return f"task {a['taskId']} had no valid bid: cancelled, {e(a['refund'])} ETH refunded"
        if name == "ProgressCommitted":
            return f"task {a['taskId']}: progress committed, trace root over {a['numCheckpoints']} checkpoints"
        if name == "ResultSubmitted":
            return (f"task {a['taskId']}: result submitted, trace root 0x{bytes(a['traceRoot']).hex()[:16]}… over "
                    f"{a['numSteps']} steps, artifacts at {a['artifactURI'].partition('#')[0]}; open to challenges "
                    f"for {a['challengeDeadline'] - at} s")
        if name == "TaskCompleted":
            return (f"task {a['taskId']} COMPLETED: {e(a['paid'])} ETH credited to {w(a['solver'])}, "
                    f"{e(a['refund'])} ETH back to the submitter, the stake unlocked")
        if name == "TaskFailed":
            return (f"task {a['taskId']} FAILED: {e(a['slashed'])} ETH of the solver's stake slashed, "
                    f"{e(a['refund'])} ETH refunded to the submitter")
        if name == "StakeSlashed":
            return (f"{w(a['account'])} slashed {e(a['amount'])} ETH: {e(a['toBeneficiary'])} to "
                    f"{w(a['beneficiary'])}, {e(a['toSink'])} to the sink")
        if name == "ProceedsClaimed":
            return f"{w(a['account'])} claims {e(a['amount'])} ETH of slash proceeds"
        if name == "SinkFlushed":
            return f"the sink's share of the slash, {e(a['amount'])} ETH, leaves the StakeManager for the sink"
        if name == "PaymentWithdrawn":
            return f"{w(a['account'])} withdraws {e(a['amount'])} ETH from the market"
        if name == "Withdrawn":
            return f"{w(a['account'])} withdraws {e(a['amount'])} ETH of bonds from the dispute game"
        if "gameId" in a:
            return self.describe_move(name, a)
        return None

    def describe_move(self, name: str, a: dict[str, Any]) -> str | None:
        gid = int(a["gameId"])
        g = self.game.get(gid)  # fields fixed once set (checkpoint, step, op, element): safe to read later
        solver, challenger = self.who(g.solver), self.who(g.challenger)
        head = f"  game {gid} "
        if name == "GameCreated":
            return (f"{self.who(a['challenger'])} CHALLENGES task {a['taskId']} with a bond of {fmt_eth(a['bond'])} "
                    f"ETH: game {gid} against {self.who(a['solver'])}; the payout is frozen until it ends")
        if name == "LevelCommitted":
            level, size = int(a["level"]), int(a["size"])
            if level == 1:
                what = (f"level 1, checkpoints: {solver} proves S_0 and S_N against its trace root "
                        f"({size} checkpoint states)")
            elif level == 2:
                c = int(g.checkpoint)
                what = (f"level 2, steps: {solver} commits the {size} states of steps {c * self.interval}.."
                        f"{(c + 1) * self.interval}, linked to checkpoints {c} and {c + 1}")
            elif level == 3:
                t = int(g.trainingStep)
                what = (f"level 3, ops: {solver} commits {size} op-log roots of training step {t} "
                        f"(S_{t} -> S_{t + 1}), linked to S_{t}'s tensors and batch and to S_{t + 1}")
            else:
                what = (f"level 4, scalar: {solver} commits the {size} register states of the program of "
                        f"element {int(g.flatIndex)} of {self.op(int(g.op))}, linked to the op's inputs and output")
            return head + what
        if name == "LeavesRevealed":
            return head + f"{solver} reveals leaves {[int(p) for p in a['positions']]} of level {a['level']} with proofs"
        if name == "IntervalChosen":
            level, lo, hi = int(a["level"]), int(a["lo"]), int(a["hi"])
            unit = {1: "checkpoint", 2: "state", 3: "op-log root", 4: "register state"}.get(level, "leaf")
            line = f"{challenger} agrees with {unit} {lo}, disagrees with {unit} {hi}"
            if hi == lo + 1:
                line += {1: f": the wrong interval is steps {lo * self.interval}..{hi * self.interval}",
                         2: f": the wrong step is {int(g.checkpoint) * self.interval + lo}",
                         3: f": the wrong op is {self.op(hi)}",
                         4: f": the wrong instruction is number {lo} of the program"}.get(level, "")
            return head + line
        if name == "OpOpened":
            return head + (f"{solver} opens {self.op(int(a['op']))}: its log grows from {a['preSize']} "
                           f"to {a['postSize']} entries")
        if name == "OutputNamed":
            return head + f"{challenger} names element {a['flatIndex']} of that op's output (log entry {a['entry']})"
        if name == "OutputRejected":
            return head + f"{solver} proves element {a['flatIndex']} does not exist (the output has {a['numel']})"
        if name == "OneStepChecked":
            computed, claimed = bytes(a["computed"]), bytes(a["claimed"])
            return head + (f"THE CONTRACT EXECUTES instruction {a['step']} of element {int(g.flatIndex)}'s program of "
                           f"{self.op(int(g.op))} at training step {int(g.trainingStep)} in soft-float: "
                           f"0x{computed.hex()[:16]}… where {solver} claimed 0x{claimed.hex()[:16]}…"
                           + (" -> MISMATCH" if computed != claimed else " -> equal"))
        if name == "TimedOut":
            return head + f"the {'solver' if int(a['loser']) == 1 else 'challenger'} ran out of time"
        if name == "GameDecided":
            return head + f"decided: {solver if a['solverLost'] else challenger} loses"
        if name == "GameResolved":
            return head + (f"resolved ({GameStatus(int(a['status'])).name}): the bond of {fmt_eth(a['bond'])} ETH "
                           f"credited to {self.who(a['payee'])}")
        return None


# Daemon log events worth telling: what the daemons decide off chain (the rest is on chain).
_TOLD = {"training", "skip", "sampled", "result_accepted", "finding", "published_output", "cannot_defend"}
_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d \w+ (?P<level>[A-Z]+) (?P<rest>.*)$")


def describe_log(name: str, line: str) -> str | None:
    m = _LOG_LINE.match(line)
    if m is None:
        return None
    try:
        f = dict(part.split("=", 1) for part in shlex.split(m["rest"]) if "=" in part)
    except ValueError:
        f = {}
    event = f.get("event", "")
    if m["level"] == "ERROR":
        return f"({name}'s log) error: {m['rest']}"
    if event not in _TOLD:
        return None
    if event == "training":
        return (f"({name}'s log) training task {f.get('task')}: {f.get('spec')}, {f.get('steps')} steps"
                + (", WITH ITS FAULT INJECTED" if f.get("cheating") == "True" else ""))
    if event == "skip":
        return f"({name}'s log) does not bid on task {f.get('task')}: {f.get('reason')}"
    if event == "sampled":
        return (f"({name}'s log) task {f.get('task')}: re-executes checkpoint intervals {f.get('intervals')} of "
                f"{f.get('of')} (chosen from its secret and the result's block hash)")
    if event == "result_accepted":
        return f"({name}'s log) task {f.get('task')}: every re-executed interval matches the committed checkpoints"
    if event == "finding":
        return f"({name}'s log) task {f.get('task')}: {f.get('kind')}: {f.get('detail')}"
    if event == "published_output":
        return f"({name}'s log) serves its output of the disputed op {f.get('op')} to the challenger"
    return f"({name}'s log) {m['rest']}"


# ---------------------------------------------------------------------------------------- helpers
def prepare_run_dir(out: Path) -> Path:
    """An empty run directory; a previous demo's run in it is cleared (only a directory the demo made)."""
    out = out.resolve()
    if out.exists() and any(out.iterdir()):
        earlier = all(re.fullmatch(r"task-\d+", e.name) for e in out.iterdir())  # an older demo's stores
        if not (out / MARKER).is_file() and not earlier:
            raise DemoFailed(f"{out} exists and was not made by the demo: choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("a `verigrad demo` run directory, cleared by the next run\n")
    return out


def spec_file(spec_ref: str, steps: int | None, run_dir: Path) -> str:
    """The spec the tasks point at: the reference name itself, or a copy with ``steps`` changed."""
    from importlib import resources

    if steps is None:
        return spec_ref
    path = Path(spec_ref)
    text = path.read_text() if path.is_file() else \
        resources.files("protocol.specs").joinpath(f"{spec_ref}.toml").read_text("utf-8")
    text, n = re.subn(r"(?m)^steps = \d+", f"steps = {steps}", text)
    if n != 1:
        raise DemoFailed(f"spec {spec_ref}: no `steps = N` line to change")
    out = run_dir / "spec.toml"
    out.write_text(text)
    return str(out)


def choose_fault(spec: Any) -> tuple[str, str]:
    """Bob's default fault: a non-zero element of op 6 (the backward matmul giving the output layer's
    weight gradient) at a step in the second checkpoint interval. A corrupted zero (the gradient of
    a dead hidden unit) comes out as a subnormal the next op flushes to zero: it would change nothing.
    """
    from protocol.trace import Replayer

    interval = spec.checkpoint_interval
    step = min(spec.steps - 1, interval + interval // 2 + 3)
    tr = Replayer(spec).op_trace(step)
    op = 6 if len(tr.records) > 6 else len(tr.records) - 1
    flat = tr.records[op].output.detach().reshape(-1)
    nonzero = (flat != 0).nonzero()
    if len(nonzero) == 0:
        raise DemoFailed(f"op {op} of step {step} has no non-zero element to corrupt: pass --inject")
    return f"{step}:{op}:{int(nonzero[0].item())}", tr.ops[op].name


def auction_closed(m: Market, tid: int, say: Any, grace: int = 3) -> bool:
    """Whether task ``tid``'s auction is over; the bidders close it, or the submitter a little after
    its reveal deadline when no bidder did (no bid at all: the task is cancelled, the escrow refunded)."""
    t = m.task(tid)
    if TaskStatus(t.status) != TaskStatus.BIDDING:
        return True
    if m.chain.now() >= int(t.revealDeadline) + grace:
        say(f"the submitter closes the auction of task {tid} (no bidder has yet)")
        with contextlib.suppress(VerigradError):  # a bidder may close it first
            m.close_auction(tid)
        return TaskStatus(m.task(tid).status) != TaskStatus.BIDDING
    return False


def gas_spent(chain: Chain, accounts: list[str], from_block: int) -> dict[str, int]:
    """Wei each account paid for gas since ``from_block``, from every receipt on chain."""
    spent = dict.fromkeys(accounts, 0)
    head = chain.w3.eth.block_number
    for n in range(from_block, head + 1):
        receipts = chain.w3.provider.make_request("eth_getBlockReceipts", [hex(n)])["result"]  # type: ignore[arg-type]
        for r in receipts or []:
            sender = chain.w3.to_checksum_address(r["from"])
            if sender in spent:
                spent[sender] += int(r["gasUsed"], 16) * int(r["effectiveGasPrice"], 16)
    return spent


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """A SIGTERM to the demo unwinds like Ctrl-C: every daemon and anvil are stopped on the way out."""
    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------------------------------- the demo
def run_demo(args: argparse.Namespace, node: Anvil | None = None) -> int:
    """The demo on a fresh anvil (or on ``node``, started by the caller with at least 6 accounts and a
    block time, and left running: the tests read the chain afterwards)."""
    started = time.monotonic()
    run_dir = prepare_run_dir(Path(args.out))
    chain_cm: contextlib.AbstractContextManager[Anvil] = (
        contextlib.nullcontext(node) if node is not None else Anvil(accounts=6, block_time=args.block_time))
    with sigterm_as_interrupt(), chain_cm as node:
        cast = Cast(run_dir, node.rpc_url, run_dir / "deployments")
        try:
            return play(args, node, cast, run_dir, started)
        finally:
            # After an error or Ctrl-C: a daemon busy in a long tick gets a few seconds, then SIGKILL
            # (each resumes safely from its database; the demo's run is over anyway).
            cast.stop(timeout=5.0)


def play(args: argparse.Namespace, node: Anvil, cast: Cast, run_dir: Path, started: float) -> int:
    from protocol.agents.submitter import post, verify_result
    from protocol.spec import load_spec

    chain = Chain.connect(node.rpc_url)
    keys, accounts = node.keys, node.accounts
    params = Params(unbonding_delay=3600, dispute_timeout=4 * args.game_clock, dispute_clock=args.game_clock,
                    dispute_bond=GAME_BOND)
    d = deploy_all(chain, keys[DEPLOYER], params)
    d.save(run_dir / "deployments")
    first_block = chain.w3.eth.block_number + 1
    say(f"anvil on {node.rpc_url} (a block every {node.block_time} s); deployed StakeManager {d.stake_manager}, "
        f"TaskMarket {d.task_market}, DisputeGame {d.dispute_game} with its soft-float one-step verifier "
        f"{d.step_verifier}")
    names = {accounts[SUBMITTER]: "submitter", accounts[ALICE]: "alice", accounts[BOB]: "bob",
             accounts[VICTOR]: "victor", accounts[DEPLOYER]: "sink", d.stake_manager: "StakeManager",
             d.task_market: "TaskMarket", d.dispute_game: "DisputeGame"}
    people = ["submitter", "alice", "bob", "victor", "sink"]
    address = {n: a for a, n in names.items()}
    start_balance = {n: chain.balance(address[n]) for n in people}

    store_args = ["--serve-port", "0", "--poll", "0.2"]
    cast.spawn("alice", ["solver", "--store", str(run_dir / "alice" / "store"), "--db", str(run_dir / "alice.db"),
                         "--price-fraction", "0.4", "--stake", fmt_eth(STAKE["alice"]), *store_args], keys[ALICE])
    cast.spawn("victor", ["verifier", "--db", str(run_dir / "victor.db"), "--sample-rate", "1", "--poll", "0.2"],
               keys[VICTOR])
    spec_ref = spec_file(args.spec, args.steps, run_dir)
    spec = load_spec(spec_ref)
    fault = args.inject
    if fault is None:
        fault, kind = choose_fault(spec)
        what = f"op {fault.split(':')[1]} of the step ({kind})"
    else:
        what = f"op {fault.split(':')[1]} of the step"
    step, _, element = fault.split(":")
    cast.spawn("bob", ["solver", "--store", str(run_dir / "bob" / "store"), "--db", str(run_dir / "bob.db"),
                       "--price-fraction", "0.6", "--stake", fmt_eth(STAKE["bob"]), "--inject", fault, *store_args],
               keys[BOB])
    say(f"started three daemon processes: alice (honest solver, stakes 1 ETH, asks 40% of a payment), bob "
        f"(solver with --inject {fault}: corrupts element {element} of {what} at training step {step}; stakes "
        f"2 ETH, asks 60%), victor (verifier, re-executes every checkpoint interval); their logs: "
        f"{run_dir}/{{alice,bob,victor}}.log")

    from protocol.dispute.graph import op_graph

    story = Story(chain, d, names, spec.checkpoint_interval, [o.kind for o in op_graph(spec)],
                  DisputeGame(chain, d.dispute_game, keys[SUBMITTER]))
    from protocol.agents.db import AgentDB
    from protocol.agents.watcher import EventWatcher

    submitter = Market(chain, d, keys[SUBMITTER])
    watcher = EventWatcher(chain, [submitter.stake, submitter.market, story.game.game], AgentDB(":memory:"),
                           name="demo", start_block=first_block)

    def narrate() -> None:
        cast.check()
        for ev in watcher.poll():
            at = chain.w3.eth.get_block(ev.block)["timestamp"] if ev.name in ("TaskPosted", "ResultSubmitted") else 0
            line = story.describe(ev.name, ev.args, int(at))
            if line is not None:
                say(line)
        watcher.commit()
        for name, line in cast.new_lines():
            told = describe_log(name, line)
            if told is not None:
                say(told)

    def wait_until(cond: Any, what: str) -> None:
        while not cond():
            narrate()
            if time.monotonic() - started > args.timeout:
                raise DemoFailed(f"timed out after {args.timeout:.0f} s waiting for {what}; daemon logs in {run_dir}")
            time.sleep(0.2)
        narrate()

    # The solvers stake once they are warmed up (engine loaded, the reference spec priced): from then
    # on each bids within a second or two of seeing a task, so the tasks are posted then.
    wait_until(lambda: submitter.free_stake(address["alice"]) >= STAKE["alice"]
               and submitter.free_stake(address["bob"]) >= STAKE["bob"], "the solvers' stakes")
    windows = {"bid_window": args.bid_window, "reveal_window": args.reveal_window, "training_window": 600,
               "challenge_window": args.challenge_window}
    t1 = post(submitter, spec_ref, PAYMENT, STAKE["alice"], BID_BOND, windows)
    # Task 2's auction ends a few seconds after task 1's: task 1 is assigned first, while bob's stake
    # is still free (were task 2 closed first, bob's locked stake would make his bid on task 1 void).
    t2 = post(submitter, spec_ref, PAYMENT, STAKE["bob"], BID_BOND,
              {**windows, "reveal_window": args.reveal_window + 3})
    for tid, winner in ((t1, "alice"), (t2, "bob")):
        wait_until(lambda tid=tid: auction_closed(submitter, tid, say), f"the auction of task {tid}")
        t = submitter.task(tid)
        if TaskStatus(t.status) == TaskStatus.CANCELLED:
            raise DemoFailed(f"no solver bid on task {tid} within its {args.bid_window}-s bid window (a busy "
                             f"machine?): run again with a longer --bid-window; see the logs in {run_dir}")
        if t.solver != address[winner]:
            raise DemoFailed(f"task {tid} went to {story.who(t.solver)}, not to {winner}: see the logs in {run_dir}")

    wait_until(lambda: submitter.status(t1) == TaskStatus.COMPLETED, f"task {t1}'s payout")
    v = verify_result(submitter, t1)
    say(f"submitter fetches task {t1}'s final model from alice's store: {len(v.tensors)} tensors whose state root "
        f"is the committed 0x{v.final_state_root.hex()[:16]}…")

    def settled() -> bool:
        if submitter.status(t2) == TaskStatus.COMPLETED:
            raise DemoFailed(f"bob's wrong result on task {t2} was paid: victor did not challenge it within the "
                             f"challenge window (try a longer --challenge-window); see {run_dir}/victor.log")
        games = story.game.game_count()
        return (submitter.status(t2) in (TaskStatus.FAILED, TaskStatus.COMPLETED) and games > 0
                and all(story.game.status(g) != GameStatus.IN_PROGRESS for g in range(1, games + 1))
                and story.game.totals() == (0, 0) and submitter.proceeds(address["victor"]) == 0
                and submitter.payments(address["alice"]) == 0 and submitter.payments(address["bob"]) == 0)

    wait_until(settled, f"the end of task {t2}'s dispute")
    if submitter.payments() > 0:
        submitter.withdraw_payments()
    if submitter.chain.call(submitter.stake.functions.sinkBalance()) > 0:
        submitter.chain.transact(submitter.stake.functions.flushSink(), key=keys[SUBMITTER])
    time.sleep(2 * (node.block_time or 0.25))  # the last transactions mined, their events told
    narrate()
    cast.stop()
    return report(story, submitter, t1, t2, people, address, start_balance, first_block, started, run_dir)


def report(story: Story, m: Market, t1: int, t2: int, people: list[str], address: dict[str, str],
           start_balance: dict[str, int], first_block: int, started: float, run_dir: Path) -> int:
    chain = story.chain
    print("\ntasks")
    print("\n".join(task_table(m)))
    print("\ngames")
    print("\n".join(game_table(story.game, story.names)))
    print("\nbalances")
    print("\n".join(balance_table(m, [(n, address[n]) for n in people], story.game)))
    spent = gas_spent(chain, [address[n] for n in people], first_block)
    print("\nnet change of each party since the start (wallet and everything the contracts hold for it), gas excluded")
    total = owned = 0
    for n in people:
        a = address[n]
        inside = (m.free_stake(a) + m.locked_stake(a) + m.payments(a) + m.proceeds(a) + story.game.credit_of(a)
                  + int(chain.call(m.stake.functions.pendingWithdrawalOf(a))[0]))
        delta = chain.balance(a) + inside - start_balance[n] + spent[a]
        total += delta
        owned += inside
        print(f"  {n:<10} {delta / ETH:+.6f} ETH   (gas paid {spent[a] / ETH:.6f} ETH)")
    held = sum(chain.balance(x) for x in (story.d.stake_manager, story.d.task_market, story.d.dispute_game)
               + ((story.d.availability,) if story.d.availability else ()))
    print(f"  together   {total / ETH:+.6f} ETH")
    avail = Availability(chain, story.d.availability, m.key) if story.d.availability else None
    lines, solvent = solvency_lines(m, story.game, avail)
    print()
    print("\n".join(lines))
    conserved = total == 0 and held == owned
    print(f"not a wei stuck: the net changes sum to {total} wei, and the {fmt_eth(held)} ETH the contracts hold "
          f"is exactly what they owe the parties above ({fmt_eth(owned)}) -> {'OK' if conserved else 'NO'}")
    g = story.game.get(1)
    checked = story.game.events(1, "OneStepChecked")
    outcome = {
        f"task {t1} completed (alice paid)": m.status(t1) == TaskStatus.COMPLETED,
        f"task {t2} failed (bob slashed, submitter refunded)": m.status(t2) == TaskStatus.FAILED,
        "the game went down to one scalar instruction the contract executed": bool(checked)
        and bytes(checked[0]["computed"]) != bytes(checked[0]["claimed"]) and int(g.level) == 4,
        "victor won the game": GameStatus(g.status) == GameStatus.CHALLENGER_WON,
        "every contract solvent": solvent,
        "not a wei stuck": conserved,
    }
    print()
    for what, ok in outcome.items():
        print(f"  {'ok ' if ok else 'FAILED'} {what}")
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s; daemon logs: {run_dir}/alice.log, "
          f"{run_dir}/bob.log, {run_dir}/victor.log")
    return 0 if all(outcome.values()) else 1

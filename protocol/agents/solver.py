"""The solver daemon: stake, bid, train, commit, serve artifacts, finalize, claim.

Every tick it reads new ``TaskPosted`` events into its database and then advances each task it
cares about from what the chain says now (status, deadlines, its bid), so a restart at any point
picks up exactly where the chain is. The moves, in order:

1. bid: fetch the spec from the task's URI, check it against the on-chain spec hash and initial state
   root, price it, persist price and salt, then commit the sealed bid;
2. reveal in the reveal window; close the auction once it is over (anyone may);
3. if assigned: train with the reproducible engine, committing a progress root at every checkpoint,
   publish checkpoints and the manifest in the artifact store, submit the result;
4. after the challenge window: finalize; withdraw whatever the market credited.

5. defend every dispute game opened on its results (deployments with a DisputeGame): replay its own
   run from its own checkpoints and answer each move (:mod:`protocol.agents.disputes`), publishing the
   disputed op's output once it is opened, until the game is settled and the bond withdrawn;
6. answer every availability demand on its results (deployments with an AvailabilityChallenge) with
   the demanded chunks of its own checkpoints (:mod:`protocol.agents.availability`), and withdraw the
   gas refunds.

A *dishonest* solver is the same daemon with a fault injected into training (``fault``), a state
altered between steps, steps skipped or its artifacts withheld (:mod:`protocol.agents.dishonest`):
exactly what a cheater would do, and it defends its lie as well as it can.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from protocol.agents.availability import AvailabilityDesk
from protocol.agents.common import (
    ETH,
    Stopper,
    bind_sender,
    guarded,
    logfmt,
    resolve_pending,
    run_loop,
    send_once,
)
from protocol.agents.db import AgentDB
from protocol.agents.disputes import GameDesk, publish_disputed_output
from protocol.agents.watcher import EventWatcher
from protocol.chain.client import Chain
from protocol.chain.deploy import Deployment
from protocol.chain.dispute import Phase
from protocol.chain.market import Market, SealedBid, TaskStatus
from protocol.errors import VerigradError


class BidStatus:
    NONE, COMMITTED, REVEALED, REFUNDED, FORFEITED = range(5)


@dataclass
class SolverConfig:
    store_dir: Path
    store_url: str  # what goes into artifact URIs (the solver's HTTP server, or file:// for local runs)
    stake: int = 2 * ETH  # keep at least this much deposited
    price_fraction: float = 0.5  # ask this share of the payment ...
    min_price: int = ETH // 100  # ... but never less
    poll_interval: float = 0.5
    confirmations: int = 0
    fault: Any = None  # protocol.train.Fault for a cheating solver
    # Other ways to cheat (protocol.agents.dishonest): alter the state after a step or at a
    # checkpoint, skip steps ("skip") or do none ("initial").
    corrupt_step: int | None = None
    corrupt_checkpoint: int | None = None
    lazy: str | None = None
    # "offchain": serve no artifacts (the CLI points the URIs at an empty store) but answer availability
    # demands on chain; "all": answer none either.
    withhold: str | None = None
    max_steps: int = 10_000  # tasks longer than this are not bid on (capacity)


def resolve_spec(uri: str) -> Any:
    """A task spec from its URI: ``builtin:<name>`` or a path (fetching is verified by the caller)."""
    from protocol.spec import load_spec

    if uri.startswith("builtin:"):
        return load_spec(uri.removeprefix("builtin:"))
    return load_spec(uri.removeprefix("file://"))


def task_spec(t: Any) -> Any:
    """The spec of an on-chain task ``t`` (its URI resolved), with the steps the task fixes."""
    return dataclasses.replace(resolve_spec(t.specURI), steps=int(t.steps))


def initial_root(spec: Any) -> bytes:
    """S_0's root as the spec's seed gives it."""
    import torch

    from protocol.models import build_model
    from protocol.spec import open_dataset
    from protocol.train import initial_state, state_root_of

    return state_root_of(initial_state(build_model(spec, open_dataset(spec)), torch.device("cpu")))


class Solver:
    def __init__(self, chain: Chain, deployment: Deployment, key: str, db: AgentDB, config: SolverConfig,
                 log: logging.Logger) -> None:
        self.chain = chain
        self.m = Market(chain, deployment, key)
        self.db = db
        self.cfg = config
        self.log = log
        self.me = self.m.address
        self.desk: GameDesk | None = None
        contracts = [self.m.market]
        if deployment.dispute_game:
            self.desk = GameDesk(chain, deployment.dispute_game, key, db, log, after_move=self._publish)
            contracts.append(self.desk.contract)
        self.avail: AvailabilityDesk | None = None
        if deployment.availability:
            self.avail = AvailabilityDesk(chain, deployment.availability, key, db, log)
            contracts.append(self.avail.contract)
        self.watcher = EventWatcher(chain, contracts, db, name="solver", confirmations=config.confirmations,
                                    start_block=deployment.block)
        bind_sender(db, chain, self.me)

    # ------------------------------------------------------------------ loop
    def ensure_stake(self) -> None:
        # Always through send_once: a deposit that landed just before a crash is recorded, not repeated.
        have = self.m.free_stake() + self.m.locked_stake()
        send_once(self.db, f"deposit:{self.cfg.stake}", lambda: self.m.free_stake() + self.m.locked_stake()
                  >= self.cfg.stake, lambda: self.m.deposit(self.cfg.stake - have), self.log,
                  amount=self.cfg.stake - have)

    def tick(self) -> None:
        for ev in self.watcher.poll():
            if ev.name == "TaskPosted" and self.db.get("task", ev.args["taskId"]) is None:
                self.db.put("task", ev.args["taskId"], {"state": "new"})
                self.log.info(logfmt(event="task_seen", task=ev.args["taskId"], payment=ev.args["payment"] / ETH))
            else:
                if self.desk is not None:
                    self.desk.on_event(ev.name, ev.args)
                if self.avail is not None:
                    self.avail.on_event(ev.name, ev.args)
        self.watcher.commit()
        if self.desk is not None:
            self.desk.tick(self._player)
        if self.avail is not None:
            self.avail.tick(self._answer)
        for tid, rec in self.db.all("task"):
            if rec.get("state") not in ("done", "skipped"):
                guarded(self.log, int(tid), partial(self.advance, int(tid), rec))

    def warm_up(self, reference: str = "digits-mlp") -> None:
        """Load the engine before any task is seen (the CPU fast path, the model and data code, the op
        graph's tracing) by pricing the reference spec: a bid must fit in its commit window, and a
        cold process can take longer than the window to check its first spec."""
        import time

        from protocol.dispute.layout import task_graph_root
        from protocol.repops import fastcpu
        from protocol.spec import load_spec

        started = time.perf_counter()
        fastcpu.available()
        try:
            spec = dataclasses.replace(load_spec(reference), steps=2)  # the code paths, not the run's length
            initial_root(spec)
            task_graph_root(spec)
        except Exception as exc:  # noqa: BLE001 (only a head start: a failure here must not stop the daemon)
            self.log.warning(logfmt(event="warm_up_partial", reference=reference, error=type(exc).__name__,
                                    reason=str(exc)))
        self.log.info(logfmt(event="warmed_up", seconds=time.perf_counter() - started))

    def run(self, stopper: Stopper) -> None:
        resolve_pending(self.db, self.chain, self.me, self.log)  # before anything is sent
        self.warm_up()
        self.ensure_stake()
        run_loop(self.tick, stopper, self.cfg.poll_interval, self.log)

    # ------------------------------------------------------------------ one task
    def advance(self, tid: int, rec: dict[str, Any]) -> None:
        t = self.m.task(tid)
        status = TaskStatus(t.status)
        now = self.chain.now()
        if status == TaskStatus.BIDDING:
            self._bidding(tid, t, rec, now)
        elif status == TaskStatus.ASSIGNED and t.solver == self.me:
            self._deliver(tid, t, rec)
        elif status == TaskStatus.RESULT_SUBMITTED and t.solver == self.me:
            if now >= t.challengeDeadline and t.openDisputes == 0:
                send_once(self.db, f"finalize:{tid}", lambda: self.m.status(tid) != TaskStatus.RESULT_SUBMITTED,
                          lambda: self.m.finalize(tid), self.log, task=tid)
        elif status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED) or (
            status in (TaskStatus.ASSIGNED, TaskStatus.RESULT_SUBMITTED) and t.solver != self.me
        ):
            # Also when a withdrawal is pending from before a crash: send_once then records how it ended.
            if self.m.payments() > 0 or self.db.action(f"withdrawPayments:{tid}") is not None:
                send_once(self.db, f"withdrawPayments:{tid}", lambda: self.m.payments() == 0,
                          lambda: self.m.withdraw_payments(), self.log, task=tid)
            if status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED):
                self.db.update("task", tid, state="done", outcome=status.name)
                self.log.info(logfmt(event="task_closed", task=tid, outcome=status.name,
                                     mine=t.solver == self.me))

    def _bidding(self, tid: int, t: Any, rec: dict[str, Any], now: int) -> None:
        bid = self.m.chain.call(self.m.market.functions.getBid(tid, self.me))
        if now < t.commitDeadline and "price" not in rec:
            price = self.decide(tid, t)
            if price is None:
                self.db.update("task", tid, state="skipped")
                return
            sealed = SealedBid.new(tid, price)
            # The salt is persisted before the commitment is sent: a crash in between must not make
            # the bid unrevealable (its bond would be forfeited).
            rec = self.db.update("task", tid, state="bidding", price=price, salt=sealed.salt.hex())
        if now < t.commitDeadline and "price" in rec and bid.status == BidStatus.NONE:
            sealed = SealedBid(tid, rec["price"], bytes.fromhex(rec["salt"]))
            send_once(self.db, f"commitBid:{tid}", lambda: self._bid_status(tid) != BidStatus.NONE,
                      lambda: self.m.commit_bid(sealed), self.log, task=tid, price=rec["price"] / ETH)
        elif t.commitDeadline <= now < t.revealDeadline and bid.status == BidStatus.COMMITTED and "salt" in rec:
            sealed = SealedBid(tid, rec["price"], bytes.fromhex(rec["salt"]))
            send_once(self.db, f"revealBid:{tid}", lambda: self._bid_status(tid) != BidStatus.COMMITTED,
                      lambda: self.m.reveal_bid(sealed), self.log, task=tid)
        elif now >= t.revealDeadline and bid.status != BidStatus.NONE:
            send_once(self.db, f"closeAuction:{tid}", lambda: self.m.status(tid) != TaskStatus.BIDDING,
                      lambda: self.m.close_auction(tid), self.log, task=tid)

    def _bid_status(self, tid: int) -> int:
        return int(self.m.chain.call(self.m.market.functions.getBid(tid, self.me)).status)

    def decide(self, tid: int, t: Any) -> int | None:
        """Bid only on tasks this solver can do and whose spec checks out; price by a share of the payment."""
        try:
            from protocol.spec import spec_hash

            spec = resolve_spec(t.specURI)
            if bytes.fromhex(spec_hash(spec).removeprefix("0x")) != bytes(t.specHash):
                self.log.warning(logfmt(event="skip", task=tid, reason="spec hash differs from the on-chain hash"))
                return None
            if t.steps > self.cfg.max_steps or t.steps != spec.steps:
                self.log.info(logfmt(event="skip", task=tid, reason=f"steps {t.steps} (spec {spec.steps})"))
                return None
            if initial_root(spec) != bytes(t.initialStateRoot):
                self.log.warning(logfmt(event="skip", task=tid, reason="initial state root differs from the spec's"))
                return None
            from protocol.dispute.layout import task_graph_root

            if task_graph_root(spec) != bytes(t.opGraphRoot):
                self.log.warning(logfmt(event="skip", task=tid, reason="op graph root differs from the spec's"))
                return None
        except VerigradError as exc:
            self.log.warning(logfmt(event="skip", task=tid, reason=str(exc)))
            return None
        try:
            self._tamper(dataclasses.replace(spec, steps=int(t.steps)))
        except VerigradError as exc:
            self.log.info(logfmt(event="skip", task=tid, reason=str(exc)))
            return None
        if self.m.free_stake() < t.requiredStake:
            self.log.info(logfmt(event="skip", task=tid, reason="not enough free stake"))
            return None
        return max(self.cfg.min_price, min(t.payment, int(t.payment * self.cfg.price_fraction)))

    # ------------------------------------------------------------------ disputes
    def _own_run(self, tid: int) -> tuple[Any, dict[str, Any], list[bytes], Any] | None:
        """This solver's run of ``tid`` as committed: spec, manifest, checkpoint roots and a replayer from
        its own checkpoints (with its fault and alterations, if it cheats); None without a manifest."""
        from protocol.agents.dishonest import TamperedReplayer
        from protocol.commit import LocalStore
        from protocol.trace import Replayer

        task = self.db.get("task", tid) or {}
        if "manifest" not in task:
            return None
        t = self.m.task(tid)
        spec = task_spec(t)
        store = LocalStore(self.cfg.store_dir)
        manifest = store.get_json(task["manifest"])
        roots = [bytes.fromhex(c["state_root"].removeprefix("0x")) for c in manifest["checkpoints"]]
        tamper = self._tamper(spec)
        replayer = (Replayer(spec, fault=self.cfg.fault, store=store, manifest=manifest) if tamper is None else
                    TamperedReplayer(spec, tamper, fault=self.cfg.fault, store=store, manifest=manifest))
        return spec, manifest, roots, replayer

    def _player(self, gid: int, rec: dict[str, Any]) -> Any:
        """The tracker of game ``gid``: this solver's own run, replayed from its own checkpoints."""
        from protocol.dispute.player import SolverPlayer, TraceSource

        run = self._own_run(int(rec["task"]))
        if run is None:
            self.log.warning(logfmt(event="cannot_defend", game=gid, task=rec["task"], reason="no manifest on record"))
            return None
        spec, _, roots, replayer = run
        own = TraceSource(replayer, roots, spec.checkpoint_interval)
        assert self.desk is not None
        return SolverPlayer(self.desk.game, gid, self.db, own, log=self.log)

    def _answer(self, cid: int, rec: dict[str, Any]) -> Any:
        """The answer to availability demand ``cid`` from this solver's own checkpoints (None if it
        withholds everything, or has no record of the task)."""
        from protocol.chain.availability import chunk_answer

        if self.cfg.withhold == "all":
            if not rec.get("withheld"):
                self.db.update("avail", cid, withheld=True)
                self.log.warning(logfmt(event="withholding", challenge=cid, task=rec["task"],
                                        note="availability demand left unanswered"))
            return None
        run = self._own_run(int(rec["task"]))
        if run is None:
            self.log.warning(logfmt(event="cannot_answer", challenge=cid, task=rec["task"],
                                    reason="no manifest on record"))
            return None
        _, manifest, roots, replayer = run
        k = int(rec["checkpoint"])
        state = replayer.state_at(int(manifest["checkpoints"][k]["step"]))
        return chunk_answer(roots, k, [v.detach().cpu() for v in state.values()], int(rec["tensor"]),
                            int(rec["first"]), int(rec["count"]))

    def _publish(self, gid: int, rec: dict[str, Any], before: Any, g: Any) -> None:
        """Once the disputed op is open, serve its output so the challenger can name an element."""
        if Phase(g.phase) != Phase.NAME_OUTPUT or (self.db.get("game", gid) or {}).get("published"):
            return
        assert self.desk is not None
        player = self.desk.players[gid]
        l3 = player.own.level3(int(g.trainingStep))
        out = l3.trace.records[int(g.op) - 1].output
        siblings = list(l3.log.inclusion_proof(int(g.logSize), int(g.nextLogSize)).siblings)
        digest = publish_disputed_output(self.cfg.store_dir, gid, g, out, siblings)
        self.db.update("game", gid, published=digest)
        self.log.info(logfmt(event="published_output", game=gid, op=int(g.op), digest=digest[:16]))

    # ------------------------------------------------------------------ delivery
    def _tamper(self, spec: Any) -> Any:
        """The dishonest run's alterations for ``spec`` (None: every step trained as specified)."""
        from protocol.agents.dishonest import Tamper

        return Tamper.of(spec, self.cfg.corrupt_step, self.cfg.corrupt_checkpoint, self.cfg.lazy)

    def _deliver(self, tid: int, t: Any, rec: dict[str, Any]) -> None:
        from protocol.agents.dishonest import train_dishonest
        from protocol.train import train

        spec = task_spec(t)
        tamper = self._tamper(spec)
        self.log.info(logfmt(event="training", task=tid, spec=spec.name, steps=spec.steps,
                             cheating=self.cfg.fault is not None or tamper is not None))
        count = {"n": 0}

        def on_checkpoint(cp: Any, trace_root: bytes) -> None:
            count["n"] += 1
            n = count["n"]
            # send_once itself reads the chain: a progress commitment that landed before a crash is
            # recorded as done (and never sent again) instead of being left pending.
            if n > 1:
                send_once(self.db, f"commitProgress:{tid}:{n}",
                          lambda: self.m.task(tid).progressCheckpoints >= n,
                          lambda: self.m.commit_progress(tid, trace_root, n), self.log, task=tid, checkpoints=n)

        out = self.cfg.store_dir
        if tamper is None:
            result = train(spec, out_dir=out, fault=self.cfg.fault, on_checkpoint=on_checkpoint, progress=None)
        else:
            result = train_dishonest(spec, out_dir=out, fault=self.cfg.fault, tamper=tamper,
                                     on_checkpoint=on_checkpoint)
        uri = f"{self.cfg.store_url}#{result.manifest_digest}"
        self.db.update("task", tid, state="submitted", manifest=result.manifest_digest,
                       trace_root=result.trace_root.hex())
        send_once(self.db, f"submitResult:{tid}", lambda: self.m.status(tid) != TaskStatus.ASSIGNED,
                  lambda: self.m.submit_result(tid, result.trace_root, spec.steps, result.final_state_root, uri),
                  self.log, task=tid, trace_root="0x" + result.trace_root.hex()[:16], loss=result.losses[-1])

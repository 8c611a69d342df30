"""The verifier daemon: watch results, check what can be checked cheaply, re-execute a sample.

For every submitted result still inside its challenge window, in order of cost:

1. **availability**: the manifest named by the artifact URI and every checkpoint it lists must be
   fetchable and hash to their digests; withheld or damaged data is a reason to challenge (a solver
   that cannot produce its leaves loses the game on time);
2. **consistency**: the manifest's checkpoint roots must rebuild the committed trace root, its last
   root must be the committed final state root, S_0 must be the task's initial state root, and every
   progress root the solver posted while training must be the root of the matching prefix;
3. **re-execution** of a sample of checkpoint intervals: from checkpoint i (fetched, checked against
   its state root), train the interval's steps with the same engine and compare with checkpoint i+1.

Which intervals are sampled must be unpredictable to the solver when it commits: the choice is
``keccak(secret || blockhash(result block))``, where ``secret`` is drawn once when the verifier first
starts and kept in its database, i.e. fixed before any result it will judge exists. The solver knows
neither; the verifier cannot steer it after seeing the result, since the block hash comes later
than the secret. A mismatch, or a failed availability / consistency check, is a *finding*; findings
lead to a challenge in the dispute game (:meth:`Verifier.challenge`): a mismatch in interval i opens
a game with the bond, pinned at checkpoint i (the last one the verifier accepts, its *anchor*), and
the verifier plays it to the end from its own re-execution (:mod:`protocol.agents.disputes`), then
withdraws its bond and claims its share of the slash. Withheld data of a result the verifier's own
whole replay finds right is no case for a game: it demands a sample of the data on chain instead
(:meth:`Verifier.demand_data`, :mod:`protocol.agents.availability`); the solver answers, or is slashed.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from eth_utils import keccak

from protocol.agents.availability import AvailabilityDesk, choose_chunks, state_template
from protocol.agents.common import Stopper, bind_sender, guarded, logfmt, resolve_pending, run_loop, send_once
from protocol.agents.db import AgentDB
from protocol.agents.disputes import GameDesk
from protocol.agents.http_store import open_any
from protocol.agents.watcher import EventWatcher
from protocol.chain.client import Chain
from protocol.chain.deploy import Deployment
from protocol.chain.dispute import NO_PIN
from protocol.chain.market import Market, TaskStatus
from protocol.commit import TraceTree
from protocol.dispute.player import ChallengerPlayer
from protocol.errors import VerigradError


@dataclass
class VerifierConfig:
    sample_rate: float = 0.25  # share of checkpoint intervals re-executed per result (at least one)
    poll_interval: float = 0.5
    confirmations: int = 0


@dataclass(frozen=True)
class Finding:
    """Why a result is wrong, as far as the verifier can tell before the game."""

    kind: str  # unavailable | inconsistent | mismatch
    detail: str
    interval: int | None = None  # for a mismatch: checkpoint index i of the wrong interval (i, i+1)


def sample_intervals(secret: bytes, block_hash: bytes, n_intervals: int, rate: float) -> list[int]:
    """Distinct interval indices in [0, n_intervals), chosen by keccak(secret || block_hash || counter)."""
    k = max(1, min(n_intervals, round(n_intervals * rate)))
    chosen: list[int] = []
    counter = 0
    while len(chosen) < k:
        h = keccak(secret + block_hash + counter.to_bytes(8, "big"))
        i = int.from_bytes(h, "big") % n_intervals
        if i not in chosen:
            chosen.append(i)
        counter += 1
    return sorted(chosen)


class Verifier:
    def __init__(self, chain: Chain, deployment: Deployment, key: str, db: AgentDB, config: VerifierConfig,
                 log: logging.Logger) -> None:
        self.chain = chain
        self.m = Market(chain, deployment, key)
        self.db = db
        self.cfg = config
        self.log = log
        self.desk: GameDesk | None = None
        contracts = [self.m.market]
        if deployment.dispute_game:
            self.desk = GameDesk(chain, deployment.dispute_game, key, db, log,
                                 task_failed=lambda tid: self.m.status(tid) == TaskStatus.FAILED)
            contracts.append(self.desk.contract)
        self.avail: AvailabilityDesk | None = None
        if deployment.availability:
            self.avail = AvailabilityDesk(chain, deployment.availability, key, db, log)
            contracts.append(self.avail.contract)
        self.watcher = EventWatcher(chain, contracts, db, name="verifier",
                                    confirmations=config.confirmations, start_block=deployment.block)
        bind_sender(db, chain, self.m.address)
        meta = db.get("meta", "secret")
        if meta is None:
            meta = {"secret": secrets.token_bytes(32).hex()}
            db.put("meta", "secret", meta)
        self.secret = bytes.fromhex(meta["secret"])

    def run(self, stopper: Stopper) -> None:
        resolve_pending(self.db, self.chain, self.m.address, self.log)  # before anything is sent
        run_loop(self.tick, stopper, self.cfg.poll_interval, self.log)

    def tick(self) -> None:
        for ev in self.watcher.poll():
            tid = int(ev.args.get("taskId", 0))
            if ev.name == "ProgressCommitted":
                rec = self.db.get("result", tid) or {}
                progress = rec.get("progress", [])
                progress.append([ev.args["numCheckpoints"], "0x" + bytes(ev.args["traceRoot"]).hex()])
                self.db.update("result", tid, progress=progress)
            elif ev.name == "ResultSubmitted":
                self.db.update("result", tid, state="pending", block=ev.block)
                self.log.info(logfmt(event="result_seen", task=tid, trace_root="0x" + bytes(ev.args["traceRoot"]).hex()[:16]))
            elif self.desk is not None and ev.name == "GameCreated":
                finding = (self.db.get("result", tid) or {}).get("finding") or {}
                self.desk.on_event(ev.name, ev.args, {"anchor": finding.get("interval")})
            elif self.avail is not None:
                self.avail.on_event(ev.name, ev.args)
        self.watcher.commit()
        if self.desk is not None:
            self.desk.tick(self._player)
        if self.avail is not None:
            self.avail.tick()
        busy = (self.desk is not None and bool(self.desk.active())) or (self.avail is not None and bool(self.avail.open()))
        if not busy and self.m.proceeds() > 0:
            # The beneficiary's share of a slash, credited in the StakeManager (one claim per finished
            # game or demand at most: the key counts them).
            won = sum(1 for _, rec in self.db.all("game") if rec.get("state") == "done")
            ended = self.avail.finished() if self.avail is not None else 0
            key = f"claimProceeds:{won}" if ended == 0 else f"claimProceeds:{won}:{ended}"
            if send_once(self.db, key, lambda: self.m.proceeds() == 0, self.m.claim_proceeds, self.log,
                         games=won, demands=ended):
                self.log.warning(logfmt(event="reward_claimed", games=won, demands=ended))
        for key, rec in self.db.all("result"):
            if rec.get("state") == "pending":
                guarded(self.log, int(key), partial(self.check, int(key), rec))
            elif rec.get("state") == "demanding":
                guarded(self.log, int(key), partial(self.send_demand, int(key), rec))

    # ------------------------------------------------------------------ checks
    def check(self, tid: int, rec: dict[str, Any]) -> None:
        t = self.m.task(tid)
        if TaskStatus(t.status) != TaskStatus.RESULT_SUBMITTED or self.chain.now() >= t.challengeDeadline:
            self.db.update("result", tid, state="closed")
            return
        block_hash = bytes(self.chain.w3.eth.get_block(rec["block"])["hash"])
        finding = self.find(tid, t, rec.get("progress", []), block_hash)
        if finding is None:
            self.db.update("result", tid, state="accepted")
            self.log.info(logfmt(event="result_accepted", task=tid))
            return
        self.db.update("result", tid, state="disputed", finding=dataclasses.asdict(finding))
        self.log.warning(logfmt(event="finding", task=tid, kind=finding.kind, interval=finding.interval,
                                detail=finding.detail))
        self.challenge(tid, finding)

    def find(self, tid: int, t: Any, progress: list[list[Any]], block_hash: bytes) -> Finding | None:
        from protocol.agents.solver import task_spec
        from protocol.commit import TraceTree

        url, _, manifest_digest = str(t.artifactURI).partition("#")
        try:
            store = open_any(url)
            manifest = store.get_json(manifest_digest)  # type: ignore[attr-defined]
        except (VerigradError, ValueError) as exc:
            return Finding("unavailable", f"manifest {manifest_digest or '(none)'} at {url}: {exc}")
        roots = [bytes.fromhex(c["state_root"].removeprefix("0x")) for c in manifest["checkpoints"]]
        if TraceTree(roots).root != bytes(t.traceRoot):
            return Finding("inconsistent", "the manifest's checkpoint roots do not rebuild the trace root")
        if roots[-1] != bytes(t.finalStateRoot) or roots[0] != bytes(t.initialStateRoot):
            return Finding("inconsistent", "first/last checkpoint is not the committed initial/final state")
        for n, root in progress:
            if n > len(roots) or TraceTree(roots[: int(n)]).root != bytes.fromhex(root.removeprefix("0x")):
                return Finding("inconsistent", f"progress commitment over {n} checkpoints is not a prefix of the result")
        spec = task_spec(t)
        n_intervals = len(roots) - 1
        chosen = sample_intervals(self.secret, block_hash, n_intervals, self.cfg.sample_rate)
        self.log.info(logfmt(event="sampled", task=tid, intervals=chosen,
                             of=n_intervals))
        for i in chosen:
            found = self.reexecute(spec, manifest, store, i, roots)
            if found is not None:
                return found
        return None

    def reexecute(self, spec: Any, manifest: dict[str, Any], store: Any, i: int, roots: list[bytes]) -> Finding | None:
        from protocol.trace import Replayer

        cps = manifest["checkpoints"]
        try:
            replay = Replayer(spec, store=store, manifest=manifest)
            interval = replay.interval(int(cps[i]["step"]))
        except VerigradError as exc:
            return Finding("unavailable", f"checkpoint {i}: {exc}", interval=i)
        if interval.state_roots[0] != roots[i]:
            return Finding("inconsistent", f"checkpoint {i}'s tensors do not hash to its committed root", interval=i)
        if interval.state_roots[-1] != roots[i + 1]:
            return Finding("mismatch", f"re-executing steps {cps[i]['step']}..{cps[i + 1]['step']} gives "
                           f"0x{interval.state_roots[-1].hex()[:16]}…, the solver committed 0x{roots[i + 1].hex()[:16]}…",
                           interval=i)
        return None

    def challenge(self, tid: int, finding: Finding) -> None:
        """Open a dispute game on the result with the bond.

        A mismatch in interval i is pinned there: the verifier accepts the solver's checkpoint i (it
        checked it against its root) and replays from it. Any other finding (artifacts withheld or
        damaged, a manifest that does not match the chain) leaves it nothing of the solver's to start
        from, so it replays the whole task from S_0 (the spec and the data are public): if its
        checkpoint roots rebuild the committed trace root, the result is right and there is nothing
        a game could prove; otherwise it challenges unpinned and compares every checkpoint the solver
        reveals with its own. Without the solver's disputed output it has chunks of it opened on
        chain (``requestChunk``), so a solver that withholds its data still loses.
        """
        if self.desk is None:
            self.log.warning(logfmt(event="challenge_pending", task=tid, reason=finding.kind,
                                    note="no dispute game in this deployment"))
            return
        game = self.desk.game
        pin: int = NO_PIN
        if finding.kind == "mismatch" and finding.interval is not None:
            pin = finding.interval
        else:
            honest = self.replay_all(tid)
            if TraceTree(honest).root == bytes(self.m.task(tid).traceRoot):
                self.log.warning(logfmt(event="result_right", task=tid, reason=finding.kind,
                                        note="the whole replay gives the committed trace root"))
                self.demand_data(tid, finding)
                return
            self.db.update("result", tid, honest_roots=["0x" + r.hex() for r in honest])
        anchor = None if pin == NO_PIN else pin
        send_once(self.db, f"challenge:{tid}", lambda: bool(game.games_of(tid, self.m.address)),
                  lambda: game.challenge_receipt(tid, pin), self.log, task=tid, pin=anchor)
        for gid in game.games_of(tid, self.m.address):
            self.desk.on_event("GameCreated", {"gameId": gid, "taskId": tid, "solver": "",
                                               "challenger": self.m.address, "bond": game.bond()},
                               {"anchor": anchor})

    def demand_data(self, tid: int, finding: Finding) -> None:
        """The result is right but its data is not to be had: demand part of it on chain.

        Which checkpoint: the one that could not be fetched, or the final state (the model the
        submitter paid for) when the manifest itself could not. Which chunks: drawn from the state's
        chunks with the verifier's secret and the result's block hash, so the solver cannot know in
        advance which part it must keep. The solver answers (and the data is on chain) or is slashed.
        """
        from protocol.agents.solver import task_spec

        if self.avail is None:
            self.db.update("result", tid, state="accepted")
            self.log.warning(logfmt(event="result_right_but_unchecked", task=tid, reason=finding.kind,
                                    note="no availability contract in this deployment"))
            return
        t = self.m.task(tid)
        spec = task_spec(t)
        n_checkpoints = int(t.steps) // int(t.checkpointInterval) + 1
        checkpoint = n_checkpoints - 1
        if finding.kind == "unavailable" and finding.interval is not None:
            checkpoint = finding.interval
        shapes = [(slot.dtype, slot.shape) for slot in state_template(spec)]
        rec = self.db.get("result", tid) or {}
        block_hash = bytes(self.chain.w3.eth.get_block(rec["block"])["hash"]) if "block" in rec else b""
        tensor, first = choose_chunks(self.secret, block_hash, shapes)
        # Recorded before it is sent: a restart (or a failed send) sends it again from here, never twice.
        self.send_demand(tid, self.db.update("result", tid, state="demanding", demand=[checkpoint, tensor, first]))

    def send_demand(self, tid: int, rec: dict[str, Any]) -> None:
        """Sends the demand recorded for ``tid`` (once: ``send_once``), while the challenge window is open."""
        from protocol.agents.solver import task_spec
        from protocol.chain.availability import state_layout

        assert self.avail is not None
        t = self.m.task(tid)
        if not self.avail.av.challenges_of(tid, self.m.address) and (
                TaskStatus(t.status) != TaskStatus.RESULT_SUBMITTED or self.chain.now() >= t.challengeDeadline):
            self.db.update("result", tid, state="closed")
            self.log.warning(logfmt(event="demand_too_late", task=tid, status=TaskStatus(t.status).name))
            return
        checkpoint, tensor, first = rec["demand"]
        spec = task_spec(t)
        self.avail.demand(tid, checkpoint, tensor, first, state_layout(spec))
        if self.avail.av.challenges_of(tid, self.m.address):
            self.db.update("result", tid, state="demanded")

    def replay_all(self, tid: int) -> list[bytes]:
        """The task's checkpoint roots, S_0 to the last, trained here from the spec."""
        from protocol.agents.solver import task_spec
        from protocol.train import train

        t = self.m.task(tid)
        spec = task_spec(t)
        self.log.info(logfmt(event="replaying_all", task=tid, steps=spec.steps))
        return [c.state_root for c in train(spec, progress=None).checkpoints]

    def _player(self, gid: int, rec: dict[str, Any]) -> Any:
        """The challenger's tracker: the solver's checkpoints up to the anchor, honest replay below."""
        from protocol.agents.disputes import fetch_output
        from protocol.agents.solver import task_spec
        from protocol.dispute.player import TraceSource
        from protocol.trace import Replayer

        assert self.desk is not None
        t = self.m.task(rec["task"])
        url, _, digest = str(t.artifactURI).partition("#")
        store = open_any(url)
        spec = task_spec(t)
        game = self.desk.game

        def solver_output(step: int, op: int) -> Any:
            return fetch_output(store, url, gid, game.get(gid))

        replayed = (self.db.get("result", rec["task"]) or {}).get("honest_roots")
        if replayed is not None:
            # Nothing of the solver's to start from: the whole run, replayed here from S_0.
            roots = [bytes.fromhex(r.removeprefix("0x")) for r in replayed]
            own = TraceSource(Replayer(spec), roots, spec.checkpoint_interval)
            return ReplayingChallenger(game, gid, self.db, own, None, solver_output, log=self.log)
        manifest = store.get_json(digest)  # type: ignore[attr-defined]
        roots = [bytes.fromhex(c["state_root"].removeprefix("0x")) for c in manifest["checkpoints"]]
        # Any store with get_tensors serves a replay (a local directory or the solver's HTTP server).
        replayer = Replayer(spec, store=cast(Any, store), manifest=manifest)
        honest = TraceSource(replayer, roots, spec.checkpoint_interval)
        return ChallengerPlayer(game, gid, self.db, honest, rec.get("anchor"), solver_output, log=self.log)


class ReplayingChallenger(ChallengerPlayer):
    """A challenger holding the whole honest run: it agrees with a revealed checkpoint exactly when
    its own checkpoint there has the same root (no anchor taken from the solver's artifacts)."""

    def agrees(self, g: Any, position: int, leaf: bytes) -> bool:
        if int(g.level) == 1:
            roots = self.honest.checkpoint_roots
            return position < len(roots) and roots[position] == leaf
        return bool(super().agrees(g, position, leaf))

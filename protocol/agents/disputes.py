"""The daemons' side of the dispute game: which games are theirs, and playing each to its end.

Both daemons watch the DisputeGame's ``GameCreated`` events (with the market's, through one
:class:`~protocol.agents.watcher.EventWatcher`) and record every game where they are the solver or
the challenger in the database (kind ``game``), with what the chain cannot tell them again: the
task, the role and, for a challenger, its anchor (the last checkpoint it accepts). Every tick, each
unfinished game gets one :class:`protocol.dispute.player.GamePlayer` move: the tracker reads the
phase from the chain, so a daemon killed at any point resumes where the game is, and its moves are
``send_once`` keys, so nothing is sent twice. A game whose task already failed through another game
(two challengers of one result) is closed by its challenger, who gets the bond back.

Naming the disputed element needs the solver's output of the disputed op. The solver publishes it
when it opens the op: the tensor goes into its artifact store and a pointer ``named/game-<id>-op-<op>``
(its digest, log entry and inclusion path) next to it, served by the same HTTP server. The
challenger checks the tensor against the disputed log root on chain before it trusts a single bit.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from protocol.agents.common import logfmt, repeats, send_once
from protocol.agents.db import AgentDB
from protocol.chain.client import Chain
from protocol.chain.dispute import DisputeGame, GameStatus, Phase
from protocol.chain.errors import RpcUnavailable
from protocol.commit import LocalStore, tensor_id
from protocol.commit.merkle import InclusionProof
from protocol.errors import VerigradError

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def pointer_name(gid: int, op: int) -> str:
    return f"game-{gid}-op-{op}"


def publish_named(store_dir: Path, name: str, doc: dict[str, Any]) -> None:
    """Writes a small JSON pointer under ``<store>/named/<name>`` (served as ``GET /named/<name>``)."""
    if not _NAME.match(name):
        raise VerigradError(f"bad pointer name {name!r}")
    d = Path(store_dir) / "named"
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{name}.tmp"
    tmp.write_text(json.dumps(doc, sort_keys=True))
    tmp.replace(d / name)


def fetch_named(url: str, name: str, timeout: float = 10.0) -> dict[str, Any] | None:
    """The pointer ``name`` of a store (HTTP or local directory), or None if it is not there."""
    if not _NAME.match(name):
        return None
    try:
        if url.startswith(("http://", "https://")):
            with urllib.request.urlopen(f"{url.rstrip('/')}/named/{name}", timeout=timeout) as resp:
                return dict(json.loads(resp.read()))
        path = Path(url.removeprefix("file://")) / "named" / name
        return dict(json.loads(path.read_text())) if path.is_file() else None
    except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError, OSError):
        return None


def fetch_output(store: Any, url: str, gid: int, game: Any) -> torch.Tensor | None:
    """The solver's output of game ``gid``'s disputed op, verified against the disputed log on chain.

    The pointer's path must prove the tensor's id at the op's log entry of ``nextLogRoot``; anything
    else (no pointer, a wrong tensor, a broken path) gives None.
    """
    doc = fetch_named(url, pointer_name(gid, int(game.op)))
    if doc is None:
        return None
    try:
        tensors = store.get_tensors(doc["digest"])
        out = tensors["output"]
        proof = InclusionProof(int(game.logSize), int(game.nextLogSize),
                               tuple(bytes.fromhex(s.removeprefix("0x")) for s in doc["siblings"]))
        proof.verify(tensor_id(out), bytes(game.nextLogRoot))
    except (VerigradError, KeyError, ValueError, TypeError):
        return None
    return out  # type: ignore[no-any-return]


class GameDesk:
    """One daemon's games: discovery from events, one player per game, a move per tick."""

    def __init__(self, chain: Chain, address: str, key: str, db: AgentDB, log: logging.Logger,
                 after_move: Callable[[int, dict[str, Any], Any, Any], None] | None = None,
                 task_failed: Callable[[int], bool] | None = None) -> None:
        self.chain = chain
        self.after_move = after_move
        self.task_failed = task_failed
        self.game = DisputeGame(chain, address, key)
        self.me = self.game.address
        self.db = db
        self.log = log
        self.players: dict[int, Any] = {}
        self.bars: dict[int, Any] = {}  # on a terminal: one bar per game, its level out of 4

    @property
    def contract(self) -> Any:
        return self.game.game

    def on_event(self, name: str, args: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
        """Records a game this daemon plays (idempotent: an event seen twice changes nothing)."""
        if name != "GameCreated":
            return
        gid = int(args["gameId"])
        role = "solver" if args["solver"] == self.me else "challenger" if args["challenger"] == self.me else None
        if role is None or self.db.get("game", gid) is not None:
            return
        doc = {"task": int(args["taskId"]), "role": role, "state": "playing", **(extra or {})}
        self.db.put("game", gid, doc)
        self.log.warning(logfmt(event="game_opened", game=gid, task=doc["task"], role=role,
                                challenger=args["challenger"], bond=args["bond"]))

    def active(self) -> list[tuple[int, dict[str, Any]]]:
        return [(int(g), rec) for g, rec in self.db.all("game") if rec.get("state") == "playing"]

    def tick(self, make_player: Any) -> None:
        """One move in every game still being played; ``make_player(gid, rec)`` builds a tracker."""
        quiet = repeats(self.log)
        for gid, rec in self.active():
            try:
                self._tick_one(gid, rec, make_player)
            except RpcUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 (one game's trouble never stops the others; retried)
                quiet.log(self.log, logging.ERROR, f"game:{gid}",
                          logfmt(event="error", game=gid, error=type(exc).__name__, detail=str(exc)), exc_info=True)
                continue
            quiet.clear(self.log, f"game:{gid}")

    def _close_after_failure(self, gid: int, rec: dict[str, Any], g: Any) -> bool:
        """A game still undecided when its task failed through another game (the solver is slashed
        once) is closed and the bond returned: the challenger, who is owed it, closes it."""
        if self.task_failed is None or not _undecided(g) or not self.task_failed(int(rec["task"])):
            return False
        send_once(self.db, f"game:{gid}:closeAfterFailure", lambda: not _undecided(self.game.get(gid)),
                  lambda: self.game.close_after_failure(gid), self.log, game=gid, task=rec["task"])
        return True

    def _tick_one(self, gid: int, rec: dict[str, Any], make_player: Any) -> None:
        player = self.players.get(gid)
        if player is None:
            player = make_player(gid, rec)
            if player is None:
                return
            self.players[gid] = player
        before = self.game.get(gid)
        if rec["role"] == "challenger" and self._close_after_failure(gid, rec, before):
            return
        move = player.act()
        if move is not None:
            g = self.game.get(gid)
            # A move that did not move the game (the contract reverted it) comes back every tick with
            # the same line: logged once, then counted.
            repeats(self.log).log(self.log, logging.INFO, f"game:{gid}:move", logfmt(
                event="move", game=gid, move=move, level=int(g.level), phase=Phase(g.phase).name,
                lo=int(g.lo), hi=int(g.hi)))
            self._show(gid, rec, g, move)
        if self.after_move is not None and (move is not None or Phase(before.phase) == Phase.NAME_OUTPUT):
            # Also without a move of its own: a daemon killed between opening the op and publishing
            # its output finds the game waiting for the challenger, and publishes it then.
            self.after_move(gid, rec, before, g if move is not None else before)
        if player.done():
            g = self.game.get(gid)
            self.db.update("game", gid, state="done", status=int(g.status))
            self.players.pop(gid, None)
            bar = self.bars.pop(gid, None)
            if bar is not None:
                bar.close()
            self.log.warning(logfmt(event="game_over", game=gid, task=rec["task"], role=rec["role"],
                                    status=GameStatus(g.status).name, solver_lost=bool(g.solverLost)))


    def _show(self, gid: int, rec: dict[str, Any], g: Any, move: Any) -> None:
        """On a terminal, the game's bar: the level reached (of 4), the last move and the range left."""
        if not sys.stderr.isatty():
            return
        bar = self.bars.get(gid)
        if bar is None:
            from tqdm import tqdm

            bar = self.bars[gid] = tqdm(total=4, unit="level", leave=False,
                                        bar_format="{desc} |{bar}| level {n}/{total}")
        bar.set_description_str(f"game {gid} ({rec['role']}): {move} [{int(g.lo)}, {int(g.hi)}]", refresh=False)
        bar.update(int(g.level) - bar.n)


def _undecided(g: Any) -> bool:
    return GameStatus(g.status) == GameStatus.IN_PROGRESS and Phase(g.phase) != Phase.RESOLVE


def publish_disputed_output(store_dir: Path, gid: int, game: Any, output: torch.Tensor, siblings: list[bytes]) -> str:
    """The solver's side of :func:`fetch_output`: the tensor in the store, the pointer beside it."""
    digest = LocalStore(store_dir).put_tensors({"output": output.detach().cpu()})
    publish_named(store_dir, pointer_name(gid, int(game.op)),
                  {"digest": digest, "entry": int(game.logSize), "siblings": ["0x" + s.hex() for s in siblings]})
    return digest

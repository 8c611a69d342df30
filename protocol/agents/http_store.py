"""The artifact store over HTTP: a solver serves its store, anyone fetches and verifies.

``serve_store(store, port)`` answers ``GET /<digest>`` with the bytes of that artifact (read through
the store, so a file damaged on the server's disk is refused there too). ``HTTPStore(url)`` is the
client: every ``get`` is checked against the digest it asked for, so a lying or broken server can
make a fetch fail but never feed wrong bytes into a verification. ``open_any(url)`` picks the backend
from the URL: ``http://``/``https://`` here, paths and ``file://`` in :mod:`protocol.commit.store`.
"""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from protocol.commit.errors import ArtifactNotFound, IntegrityError, StoreError
from protocol.commit.store import (
    ArtifactStore,
    LocalStore,
    _normalize_digest,
    decode_tensors,
    digest_hex,
    open_store,
)

_NAMED = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class HTTPStore:
    """Read-only client of a store served by :func:`serve_store`."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def put(self, data: bytes) -> str:
        raise StoreError(f"{self.url} is read-only: artifacts are published by the solver that serves them")

    def get(self, digest: str | bytes) -> bytes:
        d = _normalize_digest(digest)
        try:
            with urllib.request.urlopen(f"{self.url}/{d}", timeout=self.timeout) as resp:
                data: bytes = resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise ArtifactNotFound(f"{self.url} has no artifact {d}") from None
            raise StoreError(f"{self.url}/{d}: HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise StoreError(f"artifact store {self.url} unreachable ({exc})") from None
        if digest_hex(data) != d:
            raise IntegrityError(f"{self.url} served bytes for {d} that hash to {digest_hex(data)}")
        return data

    def has(self, digest: str | bytes) -> bool:
        try:
            self.get(digest)
            return True
        except ArtifactNotFound:
            return False

    def get_json(self, digest: str | bytes) -> Any:
        import json

        return json.loads(self.get(digest))

    def get_tensors(self, digest: str | bytes, as_torch: bool = True) -> dict[str, Any]:
        return decode_tensors(self.get(digest), as_torch=as_torch)


def open_any(url: str) -> ArtifactStore:
    """A store from a URL: ``http(s)://`` → :class:`HTTPStore`, else a local directory."""
    if url.startswith(("http://", "https://")):
        return HTTPStore(url)
    return open_store(url)


class StoreServer:
    """A background HTTP server for one local store; ``.url`` is what goes into artifact URIs."""

    def __init__(self, store: LocalStore, host: str = "127.0.0.1", port: int = 0) -> None:
        local = store

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path.startswith("/named/"):
                    self._named(self.path.removeprefix("/named/"))
                    return
                try:
                    data = local.get(self.path.strip("/"))
                except ArtifactNotFound:
                    self.send_error(404, "no such artifact")
                    return
                except (StoreError, IntegrityError) as exc:
                    self.send_error(400 if isinstance(exc, StoreError) and "digest" in str(exc) else 500, str(exc))
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _named(self, name: str) -> None:
                """A small pointer the solver publishes during a game (checked by whoever reads it)."""
                path = Path(local.root) / "named" / name
                if not _NAMED.match(name) or not path.is_file():
                    self.send_error(404, "no such pointer")
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the daemon logs what matters
                return

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> StoreServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

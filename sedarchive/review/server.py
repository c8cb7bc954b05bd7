"""The review server: a small threaded HTTP server on loopback, serving the page and its API.

Routes (everything else is 404):

- ``GET /`` the page; ``GET /static/review.js|review.css``
- ``GET /api/state`` classes, clusters with their decisions, class proportions
- ``GET /api/cluster/<id>?offset=&limit=`` a page of a cluster's grains
- ``GET /grain/<sample>/<particle>.jpg?layer=&side=`` one focal layer (or ``layer=all``)
- ``GET /api/similar/<sample>/<particle>?k=`` the grains nearest to one grain in the latent space
- ``POST /api/decision`` one decision as JSON (``Content-Type: application/json``)
- ``GET /uncertain`` the classifier's page; ``GET /api/uncertain?limit=`` the grains it is least sure
  of; ``POST /api/correction`` one grain's class (:mod:`sedarchive.review.uncertain`)

Requests must name this server in ``Host`` (no DNS rebinding) and, when they carry an ``Origin``,
come from the page itself; bodies are limited in size and checked field by field.
"""
from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from catalog import Archive
from catalog.errors import SedarchiveError
from sedarchive.review import uncertain
from sedarchive.review.state import NotFound, ReviewState

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"review.js": "text/javascript", "review.css": "text/css", "uncertain.js": "text/javascript"}
MAX_BODY = 64 * 1024
_GRAIN = re.compile(r"^/grain/(?P<sample>[A-Za-z0-9][A-Za-z0-9.\-]*_[0-9.]+-[0-9.]+cm)/(?P<particle>\d{1,9})\.jpg$")
_SIMILAR = re.compile(r"^/api/similar/(?P<sample>[A-Za-z0-9._-]{1,120})/(?P<particle>\d{1,9})$")
_CLUSTER = re.compile(r"^/api/cluster/(?P<cluster>-?\d{1,9})$")


class ReviewHandler(BaseHTTPRequestHandler):
    server_version = "sedarchive-review"
    state: ReviewState  # set on the subclass made by make_server
    quiet = False
    extra_hosts: frozenset[str] = frozenset()  # --allow-host: e.g. localhost:9000 for an SSH tunnel

    # -- plumbing -------------------------------------------------------------------------------
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        if not self.quiet:
            sys.stderr.write(f"review: {self.address_string()} {format % args}\n")

    def _send(self, status: int, body: bytes, ctype: str, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=300" if cache else "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self'; object-src 'none'")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: object) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _host_ok(self) -> bool:
        host, port = self.server.server_address[:2]
        allowed = {f"{host}:{port}", f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"}
        sent = self.headers.get("Host", "")
        if sent in self.extra_hosts:  # named one by one (--allow-host), so DNS rebinding stays refused
            allowed.add(sent)
        loopback = host in ("127.0.0.1", "::1", "localhost")
        # on loopback only loopback names (no DNS rebinding); on a chosen address, any name of this port
        if (sent not in allowed) if loopback else not (sent.endswith(f":{port}") or sent in allowed):
            self._error(HTTPStatus.MISDIRECTED_REQUEST, "unexpected Host header")
            return False
        origin = self.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != sent:
            self._error(HTTPStatus.FORBIDDEN, "requests from other pages are refused")
            return False
        return True

    def _path(self) -> tuple[str, dict[str, list[str]]] | None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        if ".." in path or "\\" in path or "\x00" in path or "//" in path:
            self._error(HTTPStatus.BAD_REQUEST, "path outside the archive")
            return None
        return path, parse_qs(parts.query, max_num_fields=10)

    # -- verbs ----------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if not self._host_ok():
            return
        parsed = self._path()
        if parsed is None:
            return
        path, query = parsed
        try:
            if path in ("/", "/index.html"):
                return self._send(200, (STATIC / "review.html").read_bytes(), "text/html; charset=utf-8")
            if path.startswith("/static/"):
                name = path[len("/static/"):]
                if name not in STATIC_FILES:
                    return self._error(404, f"no static file {name!r}")
                return self._send(200, (STATIC / name).read_bytes(), STATIC_FILES[name] + "; charset=utf-8")
            if path == "/api/state":
                return self._json(200, self.state.state())
            if path == "/uncertain":
                return self._send(200, (STATIC / "uncertain.html").read_bytes(), "text/html; charset=utf-8")
            if path == "/api/uncertain":
                return self._json(200, uncertain.uncertain_page(self.state.archive, _int(query, "limit", 50)))
            if m := _CLUSTER.match(path):
                offset = _int(query, "offset", 0)
                limit = _int(query, "limit", 60)
                return self._json(200, self.state.cluster_grains(int(m["cluster"]), offset, limit))
            if m := _SIMILAR.match(path):
                return self._json(200, self.state.similar(m["sample"], int(m["particle"]), _int(query, "k", 24)))
            if m := _GRAIN.match(path):
                raw_layer = query.get("layer", ["all"])[0]
                layer = None if raw_layer == "all" else _int(query, "layer", 0)
                image = self.state.grain_image(m["sample"], int(m["particle"]), layer, _int(query, "side", 128))
                return self._send(200, image, "image/jpeg", cache=True)
            return self._error(404, f"nothing at {path}")
        except NotFound as err:
            return self._error(404, str(err))
        except (SedarchiveError, ValueError) as err:
            return self._error(400, str(err))

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        if not self._host_ok():
            return
        parsed = self._path()
        if parsed is None:
            return
        handlers = {"/api/decision": self.state.decide,
                    "/api/correction": lambda r: uncertain.correct(self.state.archive, r, self.state.user)}
        if parsed[0] not in handlers:
            return self._error(404, f"nothing to post at {parsed[0]}")
        if self.headers.get_content_type() != "application/json":
            return self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send decisions as application/json")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._error(HTTPStatus.LENGTH_REQUIRED, "a Content-Length is required")
        if not 0 < length <= MAX_BODY:
            return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"a decision is at most {MAX_BODY} bytes")
        try:
            request = json.loads(self.rfile.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            return self._error(400, f"malformed JSON: {err}")
        try:
            return self._json(200, handlers[parsed[0]](request))
        except NotFound as err:
            return self._error(404, str(err))
        except SedarchiveError as err:
            return self._error(400, str(err))

    def do_PUT(self) -> None:  # noqa: N802
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "only GET and POST")

    do_DELETE = do_PATCH = do_PUT


def _int(query: dict[str, list[str]], name: str, default: int) -> int:
    if name not in query:
        return default
    text = query[name][0]
    if not re.fullmatch(r"-?\d{1,9}", text):
        raise ValueError(f"{name}={text!r} is not an integer")
    return int(text)


def make_server(archive: Archive, host: str = "127.0.0.1", port: int = 0, *, user: str = "expert",
                quiet: bool = False, allow_hosts: Sequence[str] = ()) -> ThreadingHTTPServer:
    """A ready server (not yet serving); ``port=0`` picks a free port (``server.server_address``).

    ``allow_hosts``: further ``host:port`` values of the Host header to accept, e.g. ``localhost:9000``
    behind ``ssh -L 9000:localhost:8765`` (every other name is still refused: no DNS rebinding).
    """
    extra = frozenset(check_allowed_host(h) for h in allow_hosts)
    state = ReviewState(archive, user)
    handler = type("BoundReviewHandler", (ReviewHandler,), {"state": state, "quiet": quiet, "extra_hosts": extra})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def check_allowed_host(text: str) -> str:
    """``host:port`` as a browser sends it in the Host header, or a clear error."""
    if not re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]{1,253}):\d{1,5}", text or "") or int(text.rpartition(":")[2]) > 65535:
        raise SedarchiveError(f"--allow-host {text!r}: expected HOST:PORT as the browser shows it, e.g. localhost:9000")
    return text

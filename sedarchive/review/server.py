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
come from the page itself (same scheme, host and port); bodies are limited in size and checked
field by field. Off loopback the server also requires a token, printed at start as a URL
(``/?token=...``, as Jupyter does): that first request sets a cookie which the page's requests
carry; scripts may send ``Authorization: token ...``. ``Host`` must then be one of the names given
(``--allow-host``), the address listened on, or this machine's name.

Each connection has a socket timeout and requests are served by a bounded pool of threads, so
held-open connections cannot starve the others; every request gets an answer (400 for what cannot
be parsed, 507 when the disk is full), never a dropped connection.
"""
from __future__ import annotations

import hmac
import json
import re
import secrets
import socket
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
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
#: seconds a connection may stay silent (a held-open socket is closed after this)
SOCKET_TIMEOUT_S = 10
#: threads serving requests at once, and connections waiting for one before new ones are dropped
MAX_THREADS = 32
MAX_WAITING = 256
LOOPBACK = ("127.0.0.1", "::1", "localhost")
COOKIE = "sedarchive_review_token"
_GRAIN = re.compile(r"^/grain/(?P<sample>[A-Za-z0-9][A-Za-z0-9.\-]*_[0-9.]+-[0-9.]+cm)/(?P<particle>\d{1,9})\.jpg$")
_SIMILAR = re.compile(r"^/api/similar/(?P<sample>[A-Za-z0-9._-]{1,120})/(?P<particle>\d{1,9})$")
_NAME = re.compile(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]{1,253})")
_HOST_PORT = re.compile(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]{1,253}):\d{1,5}")
_CLUSTER = re.compile(r"^/api/cluster/(?P<cluster>-?\d{1,9})$")


class ReviewHandler(BaseHTTPRequestHandler):
    server_version = "sedarchive-review"
    state: ReviewState  # set on the subclass made by make_server
    quiet = False
    timeout = SOCKET_TIMEOUT_S  # StreamRequestHandler sets it on the socket
    token: str | None = None  # required off loopback
    allowed_hosts: frozenset[str] = frozenset()  # "name:port" values accepted in Host

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
        sent = self.headers.get("Host", "")
        # only the names of this server (no DNS rebinding): loopback names on loopback, else those given
        if sent.lower() not in self.allowed_hosts:
            self._error(HTTPStatus.MISDIRECTED_REQUEST, "unexpected Host header")
            return False
        origin = self.headers.get("Origin")
        if origin is not None:
            parts = urlsplit(origin)
            if parts.scheme != "http" or parts.netloc.lower() != sent.lower():
                self._error(HTTPStatus.FORBIDDEN, "requests from other pages are refused")
                return False
        return True

    def _authorised(self, query: dict[str, list[str]]) -> bool | None:
        """True when no token is needed or a right one came; None when the token URL was answered."""
        if self.token is None:
            return True
        given = query.get("token", [None])[0]
        if given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
            # the printed URL: set the cookie the page's requests will carry, and drop the token from the URL
            self.send_response(HTTPStatus.SEE_OTHER)
            self.send_header("Location", "/")
            self.send_header("Set-Cookie", f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        header = self.headers.get("Authorization", "")
        cookies = self.headers.get("Cookie", "")
        candidates = [header[len("token "):]] if header.startswith("token ") else []
        candidates += [c.split("=", 1)[1] for c in (p.strip() for p in cookies.split(";")) if c.startswith(f"{COOKIE}=")]
        if any(hmac.compare_digest(c.encode(), self.token.encode()) for c in candidates):
            return True
        self._error(HTTPStatus.FORBIDDEN, "this review server needs its token: open the URL it printed at start")
        return False

    def _path(self) -> tuple[str, dict[str, list[str]]] | None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        if ".." in path or "\\" in path or "\x00" in path or "//" in path:
            self._error(HTTPStatus.BAD_REQUEST, "path outside the archive")
            return None
        try:
            query = parse_qs(parts.query, max_num_fields=10, strict_parsing=False)
        except ValueError as err:
            self._error(HTTPStatus.BAD_REQUEST, f"query refused: {err}")
            return None
        return path, query

    def _guarded(self) -> tuple[str, dict[str, list[str]]] | None:
        """Host, path and token checked (an answer was sent when this is None)."""
        if not self._host_ok():
            return None
        parsed = self._path()
        if parsed is None:
            return None
        allowed = self._authorised(parsed[1])
        return parsed if allowed else None

    def handle_one_request(self) -> None:
        """Every request gets an answer: an unexpected error is a 500 with one line, not a dropped socket."""
        try:
            super().handle_one_request()
        except (TimeoutError, ConnectionError):
            self.close_connection = True
        except Exception as err:  # noqa: BLE001 - the server keeps serving whatever one request does
            self.close_connection = True
            try:
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(err).__name__}: {str(err)[:200]}")
            except OSError:
                pass

    # -- verbs ----------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        parsed = self._guarded()
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
        parsed = self._guarded()
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
        except (ValueError, RecursionError) as err:  # bad JSON or bytes, 5,000-digit numbers, deep nesting
            return self._error(400, f"malformed JSON: {type(err).__name__}: {str(err)[:120]}")
        try:
            return self._json(200, handlers[parsed[0]](request))
        except NotFound as err:
            return self._error(404, str(err))
        except SedarchiveError as err:
            return self._error(400, str(err))
        except OSError as err:  # a full disk: labels.yaml keeps its previous content (atomic write)
            return self._error(HTTPStatus.INSUFFICIENT_STORAGE,
                               f"decision not saved: {err.strerror or err}; labels.yaml is unchanged")

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


class BoundedServer(ThreadingHTTPServer):
    """A threaded HTTP server whose requests share a bounded pool (at most :data:`MAX_THREADS` threads)."""

    daemon_threads = True
    token: str | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pool = ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="review")
        self._waiting = threading.BoundedSemaphore(MAX_THREADS + MAX_WAITING)

    def process_request(self, request, client_address) -> None:
        if not self._waiting.acquire(blocking=False):  # too many connections at once: drop the newest
            self.shutdown_request(request)
            return
        self._pool.submit(self._serve, request, client_address)

    def _serve(self, request, client_address) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            self._waiting.release()

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def host_names(host: str, port: int, names: Iterable[str] = ()) -> frozenset[str]:
    """The ``Host`` values a server on ``host:port`` answers: loopback names on loopback, else ``names``,
    the address itself and this machine's names."""
    loop = {"localhost", "127.0.0.1", "[::1]"}
    given = {n.strip().lower() for n in names if n.strip()}
    exact = {n for n in given if _HOST_PORT.fullmatch(n)}  # host:port as sent through a tunnel
    if host in LOOPBACK:
        chosen = loop | (given - exact)
    else:
        chosen = (given - exact) | loop
        chosen |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        if host not in ("0.0.0.0", "::", ""):
            chosen.add(f"[{host}]" if ":" in host else host.lower())
    return frozenset(f"{name}:{port}" for name in chosen) | frozenset(exact)


def make_server(archive: Archive, host: str = "127.0.0.1", port: int = 0, *, user: str = "expert",
                quiet: bool = False, token: str | None = None, allow_hosts: Iterable[str] = ()) -> BoundedServer:
    """A ready server (not yet serving); ``port=0`` picks a free port (``server.server_address``).

    Off loopback a token is required (``token``, or a new random one): ``server.token`` holds it,
    and ``Host`` must be one of ``allow_hosts``, the address or this machine's name. ``allow_hosts``
    are names (accepted with this server's port) or ``host:port`` values as a browser sends them,
    e.g. ``localhost:9000`` behind ``ssh -L 9000:localhost:8765`` (every other name is still
    refused: no DNS rebinding).
    """
    given = [check_allowed_host(h) for h in allow_hosts]
    state = ReviewState(archive, user)
    handler = type("BoundReviewHandler", (ReviewHandler,), {"state": state, "quiet": quiet})
    server = BoundedServer((host, port), handler)
    handler.allowed_hosts = host_names(host, server.server_address[1], given)
    if host not in LOOPBACK:
        handler.token = token or secrets.token_urlsafe(24)
    elif token:
        handler.token = token
    server.token = handler.token
    return server


def check_allowed_host(text: str) -> str:
    """A name, or ``host:port`` as a browser sends it in the Host header; else a clear error."""
    text = (text or "").strip()
    if not (_NAME.fullmatch(text) or (_HOST_PORT.fullmatch(text) and int(text.rpartition(":")[2]) <= 65535)):
        raise SedarchiveError(f"--allow-host {text!r}: expected NAME or HOST:PORT as the browser shows it, "
                              "e.g. review.lab.example or localhost:9000")
    return text

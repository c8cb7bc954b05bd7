"""The review server off loopback (token, Host names, Origin scheme), under load, and on bad input."""
from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest

from sedarchive.review import make_server


def serve(archive, host="127.0.0.1", **kwargs):
    server = make_server(archive, host, 0, user="tester", quiet=True, **kwargs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def ask(port, method, path, body=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    hdrs = {"Host": f"127.0.0.1:{port}"}
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
    if body is not None:
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    out = resp.status, dict(resp.getheaders()), resp.read()
    conn.close()
    return out


@pytest.fixture
def exposed(clustered_archive):
    server = serve(clustered_archive, "0.0.0.0", allow_hosts=["review.lab.example"])
    yield server, server.server_address[1]
    server.shutdown()
    server.server_close()


def test_off_loopback_a_token_is_required_and_set_as_a_cookie(exposed, clustered_archive):
    server, port = exposed
    assert server.token and len(server.token) >= 24
    named = {"Host": f"review.lab.example:{port}"}
    status, _, data = ask(port, "GET", "/api/state", headers=named)
    assert status == 403 and b"token" in data
    status, headers, _ = ask(port, "GET", "/?token=wrong", headers=named)
    assert status == 403
    status, headers, _ = ask(port, "GET", f"/?token={server.token}", headers=named)
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    assert ask(port, "GET", "/api/state", headers={**named, "Cookie": cookie})[0] == 200
    assert ask(port, "GET", "/api/state", headers={**named, "Authorization": f"token {server.token}"})[0] == 200
    # the attack of the issue: a foreign Host and Origin of the right port change nothing
    evil = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}", "Cookie": cookie}
    status, _, _ = ask(port, "POST", "/api/decision", {"action": "add_class", "class": "pwned"}, evil)
    assert status == 421 and not clustered_archive.labels_path.exists()
    # the right Host but another scheme in Origin
    other = {**named, "Cookie": cookie, "Origin": f"https://review.lab.example:{port}"}
    assert ask(port, "POST", "/api/decision", {"action": "add_class", "class": "pwned"}, other)[0] == 403
    good = {**named, "Cookie": cookie, "Origin": f"http://review.lab.example:{port}"}
    assert ask(port, "POST", "/api/decision", {"action": "add_class", "class": "fine"}, good)[0] == 200
    assert ask(port, "GET", "/api/state", headers={**named, "Host": f"{socket.gethostname()}:{port}",
                                                   "Cookie": cookie})[0] == 200


def test_loopback_needs_no_token(clustered_archive):
    server = serve(clustered_archive)
    try:
        assert server.token is None
        assert ask(server.server_address[1], "GET", "/api/state")[0] == 200
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def loopback(clustered_archive):
    server = serve(clustered_archive)
    yield server, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("path, body", [
    ("/api/decision", b"[" * 32000 + b"]" * 32000),
    ("/api/decision", b'{"action": "split", "cluster": 0, "n": ' + b"9" * 5000 + b"}"),
    ("/api/cluster/0?" + "&".join(f"f{i}=1" for i in range(11)), None),
    ("/api/decision", '{"action": "clear", "cluster": "\udcff"}'.encode("utf-8", "surrogatepass")),
])
def test_unparseable_requests_get_a_400_answer(loopback, clustered_archive, path, body):
    _, port = loopback
    status, _, data = ask(port, "POST" if body is not None else "GET", path, body)
    assert status == 400, data
    assert "error" in json.loads(data)
    assert not clustered_archive.labels_path.exists()


def test_a_full_disk_answers_507_and_leaves_no_temporary_file(loopback, clustered_archive, monkeypatch):
    _, port = loopback
    assert ask(port, "POST", "/api/decision", {"action": "add_class", "class": "first"})[0] == 200
    before = clustered_archive.labels_path.read_bytes()
    import catalog.files

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(catalog.files.os, "fsync", full)
    status, _, data = ask(port, "POST", "/api/decision", {"action": "add_class", "class": "second"})
    monkeypatch.undo()
    assert status == 507 and b"No space left" in data
    assert clustered_archive.labels_path.read_bytes() == before
    assert not [p.name for p in clustered_archive.root.iterdir() if ".tmp" in p.name or "tmp-" in p.name]


def test_held_connections_are_timed_out_and_the_thread_pool_is_bounded(loopback):
    server, port = loopback
    server.RequestHandlerClass.timeout = 1
    base = threading.active_count()
    held = []
    for _ in range(120):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET /api/state HTTP/1.1\r\n")  # never finished
        held.append(sock)
    time.sleep(0.5)
    assert threading.active_count() <= base + 32 + 2
    status, _, _ = ask(port, "GET", "/api/state", timeout=60)  # answered once the held ones time out
    assert status == 200
    for sock in held:
        sock.close()

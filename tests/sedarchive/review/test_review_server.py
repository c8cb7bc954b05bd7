"""The review server: what it serves, what it refuses, and that decisions land in labels.yaml at once."""
from __future__ import annotations

import http.client
import json

import pytest
import yaml

from catalog.errors import SedarchiveError
from sedarchive.review import check_decision


def request(server, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    hdrs = {"Host": f"127.0.0.1:{server.port}"}
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def state(server):
    status, data = request(server, "GET", "/api/state")
    assert status == 200
    return json.loads(data)


def test_serves_the_page_the_state_and_grain_images(review_server):
    status, page = request(review_server, "GET", "/")
    assert status == 200 and b"/static/review.js" in page
    assert request(review_server, "GET", "/static/review.js")[0] == 200
    s = state(review_server)
    assert s["user"] == "tester" and "quartz" in s["classes"]
    sizes = {c["id"]: c["size"] for c in s["clusters"]}
    assert sum(sizes.values()) == s["grains"]
    first = s["clusters"][0]["id"]
    status, data = request(review_server, "GET", f"/api/cluster/{first}?offset=0&limit=5")
    page = json.loads(data)
    assert status == 200 and page["size"] == sizes[first] and len(page["grains"]) == min(5, sizes[first])
    grain = page["grains"][0]
    status, jpeg = request(review_server, "GET", f"/grain/{grain['sample']}/{grain['particle']}.jpg?layer=0&side=64")
    assert status == 200 and jpeg[:2] == b"\xff\xd8"
    status, strip = request(review_server, "GET", f"/grain/{grain['sample']}/{grain['particle']}.jpg?layer=all&side=64")
    assert status == 200 and strip[:2] == b"\xff\xd8" and len(strip) > len(jpeg)


@pytest.mark.parametrize("method, path, body, headers, expected", [
    ("POST", "/api/decision", b"{not json", {"Content-Type": "application/json"}, 400),
    ("POST", "/api/decision", [1, 2], None, 400),
    ("POST", "/api/decision", {"action": "rename_everything"}, None, 400),
    ("POST", "/api/decision", {"action": "name", "cluster": 9999, "class": "quartz"}, None, 400),
    ("POST", "/api/decision", {"action": "name", "cluster": 0, "class": "unicorn"}, None, 400),
    ("POST", "/api/decision", {"action": "name", "cluster": "0", "class": "quartz"}, None, 400),
    ("POST", "/api/decision", {"action": "name", "cluster": True, "class": "quartz"}, None, 400),
    ("POST", "/api/decision", {"action": "name", "cluster": 0, "class": "quartz", "path": "/etc"}, None, 400),
    ("POST", "/api/decision", {"action": "exclude", "cluster": 0, "reason": "boring"}, None, 400),
    ("POST", "/api/decision", {"action": "merge", "clusters": [0], "into": 0}, None, 400),
    ("POST", "/api/decision", {"action": "add_class", "class": "../../etc"}, None, 400),
    ("POST", "/api/decision", {"action": "split", "cluster": 0, "n": 500}, None, 400),
    ("POST", "/api/decision", b'{"action": "clear", "cluster": 0}', {"Content-Type": "text/plain"}, 415),
    ("POST", "/api/decision", b"x" * 70_000, {"Content-Type": "application/json"}, 413),
    ("POST", "/api/decision", {"action": "clear", "cluster": 0}, {"Host": "evil.example:80"}, 421),
    ("POST", "/api/decision", {"action": "clear", "cluster": 0}, {"Origin": "http://evil.example"}, 403),
    ("POST", "/labels.yaml", {"action": "clear", "cluster": 0}, None, 404),
    ("PUT", "/api/decision", {"action": "clear", "cluster": 0}, None, 405),
    ("GET", "/grain/../../catalog.yaml", None, None, 400),
    ("GET", "/static/..%2Fserver.py", None, None, 400),
    ("GET", "/%2e%2e/labels.yaml", None, None, 400),
    ("GET", "/static/server.py", None, None, 404),
    ("GET", "/labels.yaml", None, None, 404),
    ("GET", "/samples/AI-3352/AI-3352_100-102cm.zarr/zarr.json", None, None, 404),
    ("GET", "/grain/NOPE_1-2cm/0.jpg", None, None, 404),
    ("GET", "/grain/AI-3352_100-102cm/99999.jpg", None, None, 404),
    ("GET", "/grain/AI-3352_100-102cm/0.jpg?layer=17", None, None, 404),
    ("GET", "/grain/AI-3352_100-102cm/0.jpg?side=5000", None, None, 400),
    ("GET", "/api/cluster/9999", None, None, 404),
    ("GET", "/api/cluster/0?limit=abc", None, None, 400),
    ("GET", "/api/cluster/0?limit=100000", None, None, 400),
])
def test_refuses_what_the_page_does_not_send(shared_server, method, path, body, headers, expected):
    before = sorted(p.name for p in shared_server.archive.root.iterdir())
    status, data = request(shared_server, method, path, body, headers)
    assert status == expected, data
    if data:
        assert "error" in json.loads(data)
    assert not shared_server.archive.labels_path.exists()  # nothing was written
    assert sorted(p.name for p in shared_server.archive.root.iterdir()) == before


def test_decisions_are_saved_at_once_and_survive_a_restart(review_server, clustered_archive, start_server):
    clusters = [c["id"] for c in state(review_server)["clusters"]]
    a, b, c = clusters[:3]
    for decision in ({"action": "name", "cluster": a, "class": "dark"},
                     {"action": "add_class", "class": "glauconite"},
                     {"action": "name", "cluster": b, "class": "glauconite"},
                     {"action": "exclude", "cluster": c, "reason": "touching"}):
        status, data = request(review_server, "POST", "/api/decision", decision)
        assert status == 200, data
    saved = yaml.safe_load(clustered_archive.labels_path.read_text())
    assert saved["clusters"][a]["class"] == "dark" and saved["clusters"][a]["by"] == "tester"
    assert saved["clusters"][a]["at"].startswith("20")
    assert "glauconite" in saved["classes"] and saved["clusters"][b]["class"] == "glauconite"
    assert saved["clusters"][c] | {"by": None, "at": None} == {"excluded": True, "reason": "touching", "by": None, "at": None}
    sizes = {x["id"]: x["size"] for x in state(review_server)["clusters"]}
    props = state(review_server)["proportions"]["classes"]
    assert props["dark"] <= sizes[a] and props["glauconite"] <= sizes[b]  # chopped/clump grains are left out
    assert props["dark"] > 0 and props["glauconite"] > 0
    assert "clump" not in props or props["clump"] == 0
    # a restarted server sees every decision
    review_server.stop()
    again = start_server(clustered_archive, user="other")
    byid = {x["id"]: x for x in state(again)["clusters"]}
    assert byid[a]["class"] == "dark" and byid[b]["class"] == "glauconite" and byid[c]["excluded"]
    status, _ = request(again, "POST", "/api/decision", {"action": "clear", "cluster": c})
    assert status == 200
    assert c not in yaml.safe_load(clustered_archive.labels_path.read_text())["clusters"]


def test_split_makes_new_clusters_for_a_second_look(review_server):
    before = {x["id"]: x["size"] for x in state(review_server)["clusters"]}
    big = max(before, key=before.get)
    status, data = request(review_server, "POST", "/api/decision", {"action": "split", "cluster": big, "n": 2})
    assert status == 200, data
    after = json.loads(data)
    new = after["new_clusters"]
    sizes = {x["id"]: x["size"] for x in after["clusters"]}
    assert len(new) == 2 and big not in sizes
    assert sum(sizes[n] for n in new) == before[big]
    assert sum(sizes.values()) == sum(before.values())


def test_check_decision_accepts_exactly_the_page_fields():
    assert check_decision({"action": "merge", "clusters": [1, 2], "into": 3}) == ("merge", {"clusters": [1, 2], "into": 3})
    assert check_decision({"action": "split", "cluster": 4}) == ("split", {"cluster": 4})
    for bad in ({"action": "merge", "clusters": [1, "2"], "into": 3}, {"action": "name", "cluster": 1},
                {"action": "exclude", "cluster": 1.5, "reason": "debris"}, "name", None):
        with pytest.raises(SedarchiveError):
            check_decision(bad)

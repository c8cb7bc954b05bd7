"""The review server's classifier endpoints: least-sure grains listed, corrections checked and stored."""
from __future__ import annotations

import pytest

import http.client
import json

import yaml

from catalog import read_array

pytestmark = pytest.mark.slow  # trains and classifies a real archive


def _request(server, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    headers = {"Host": f"127.0.0.1:{server.port}"}
    if body is not None:
        body = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def test_uncertain_grains_and_corrections(clustered_archive, start_server):
    from sedarchive.classification.apply import run_stage as classify
    from sedarchive.classification.training import train
    from sedarchive.counting.labels import name_cluster

    archive = clustered_archive
    server = start_server(archive)
    status, data = _request(server, "GET", "/api/uncertain")
    assert status == 200 and json.loads(data) == {"model": None, "classes": [], "grains": []}
    for cid in range(8):
        name_cluster(archive, cid, ("quartz", "dark", "foram_intact", "foram_broken")[cid % 4])
    model = train(archive, archive.keys(), quiet=True)
    classify(archive, archive.keys(), None, quiet=True, n_boot=20)
    status, page = _request(server, "GET", "/uncertain")
    assert status == 200 and b"/static/uncertain.js" in page
    assert _request(server, "GET", "/static/uncertain.js")[0] == 200
    status, data = _request(server, "GET", "/api/uncertain?limit=5")
    listing = json.loads(data)
    assert status == 200 and listing["model"] == model.id and len(listing["grains"]) == 5
    probs = [g["probability"] for g in listing["grains"]]
    assert probs == sorted(probs)
    first = listing["grains"][0]
    status, jpeg = _request(server, "GET", first["image"] + "?layer=0&side=64")
    assert status == 200 and jpeg[:2] == b"\xff\xd8"
    for bad in ({"sample": first["sample"], "particle": first["particle"], "class": "unicorn"},
                {"sample": first["sample"], "particle": "3", "class": "quartz"},
                {"sample": first["sample"], "particle": True, "class": "quartz"},
                {"sample": "NOPE_1-2cm", "particle": 0, "class": "quartz"},
                {"sample": first["sample"], "particle": first["particle"], "class": "quartz", "extra": 1},
                [1, 2]):
        status, data = _request(server, "POST", "/api/correction", bad)
        assert status == 400 and "error" in json.loads(data)
    assert not archive.corrections_path.exists()  # nothing stored from bad requests
    new_class = "dark" if first["class"] != "dark" else "quartz"
    body = {"sample": first["sample"], "particle": first["particle"], "class": new_class}
    status, data = _request(server, "POST", "/api/correction", body)
    assert status == 200 and json.loads(data)["class"] == new_class
    stored = yaml.safe_load(archive.corrections_path.read_text())
    assert stored["grains"][0]["by"] == "tester" and stored["grains"][0]["was"] == first["class"]
    status, data = _request(server, "GET", "/api/uncertain?limit=5")
    assert (first["sample"], first["particle"]) not in {(g["sample"], g["particle"]) for g in json.loads(data)["grains"]}
    retrained = train(archive, archive.keys(), quiet=True)
    assert retrained.id != model.id and retrained.info["n_corrections"] == 1
    assert len(read_array(archive.sample_path(archive.keys()[0]), "grain_class"))

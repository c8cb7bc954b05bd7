"""Which grains the review page shows: typical first, from every sample; grains like one; moving one grain;
their true size; and the Host names a tunnel may use."""
from __future__ import annotations

import http.client
import json

import numpy as np
import pytest
import yaml

from catalog import SampleKey, read_array
from sedarchive.clustering.model import current_model
from sedarchive.review.state import ReviewState


def _latent(archive, sample, particle):
    return read_array(archive.sample_path(SampleKey.from_name(sample)), "latent")[particle].astype(float)


def test_typical_grains_first_then_doubtful_from_every_sample(clustered_archive):
    review = ReviewState(clustered_archive, "tester")
    model = current_model(clustered_archive)
    for cid, size in review.sizes.items():
        page = review.cluster_grains(cid, 0, 200)
        grains = page["grains"]
        assert len(grains) == size and all(g["cluster"] == cid for g in grains)
        dist = [np.linalg.norm(_latent(clustered_archive, g["sample"], g["particle"]) - model.centres[cid])
                for g in grains]
        assert dist[0] == pytest.approx(min(dist), rel=1e-5)  # the most typical grain leads
        roles = [g["role"] for g in grains]
        n_typ = roles.count("typical")
        assert roles[:n_typ] == ["typical"] * n_typ and n_typ == min(30, (size + 1) // 2)
        samples = {g["sample"] for g in grains}
        assert {g["sample"] for g in grains[:len(samples)]} == samples  # every sample shows at once
        if "doubtful" in roles:  # the doubtful grains are the least typical of those not shown as typical
            doubt = [d / min(np.linalg.norm(_latent(clustered_archive, g["sample"], g["particle"]) - c)
                             for j, c in enumerate(model.centres) if j != cid)
                     for g, d in zip(grains, dist)]
            untypical = [(x, r) for x, r in zip(doubt, roles) if r != "typical"]
            assert max(untypical)[1] == "doubtful"  # the most doubtful grain is shown among them


def test_grains_carry_their_box_in_micrometres(clustered_archive):
    review = ReviewState(clustered_archive, "tester")
    cid = next(iter(review.sizes))
    grain = review.cluster_grains(cid, 0, 1)["grains"][0]
    bbox = read_array(clustered_archive.sample_path(SampleKey.from_name(grain["sample"])), "bbox")[grain["particle"]]
    assert grain["box_um"] == [pytest.approx((bbox[2] - bbox[0]) * 3.5), pytest.approx((bbox[3] - bbox[1]) * 3.5)]
    assert grain["box_unit"] == "µm"


def test_grains_like_this_one_are_its_nearest_latents(clustered_archive):
    review = ReviewState(clustered_archive, "tester")
    table = review.table
    sample, particle = table["sample"].iloc[3], int(table["particle"].iloc[3])
    out = review.similar(sample, particle, k=10)
    assert len(out["grains"]) == 10
    assert not any(g["sample"] == sample and g["particle"] == particle for g in out["grains"])
    query = _latent(clustered_archive, sample, particle)
    brute = sorted(np.linalg.norm(_latent(clustered_archive, s, p) - query)
                   for s, p in zip(table["sample"], table["particle"]) if (s, p) != (sample, particle))
    assert [g["distance"] for g in out["grains"]] == pytest.approx(brute[:10], abs=1e-3)


def test_moving_one_grain_out_of_its_cluster(clustered_archive):
    review = ReviewState(clustered_archive, "tester")
    a, b = sorted(review.sizes)[:2]
    grain = review.cluster_grains(a, 0, 1)["grains"][0]
    before = dict(review.sizes)
    state = review.decide({"action": "move", "sample": grain["sample"], "particle": grain["particle"], "into": b})
    sizes = {c["id"]: c["size"] for c in state["clusters"]}
    assert sizes[a] == before[a] - 1 and sizes[b] == before[b] + 1
    stored = read_array(clustered_archive.sample_path(SampleKey.from_name(grain["sample"])), "cluster")
    assert stored[grain["particle"]] == b
    moved = yaml.safe_load(clustered_archive.labels_path.read_text())["moved_grains"]
    assert moved[-1] | {"at": None} == {"sample": grain["sample"], "particle": grain["particle"], "from": a, "to": b,
                                        "by": "tester", "at": None}
    # out of every cluster: it counts as unassigned in the proportions
    review.decide({"action": "move", "sample": grain["sample"], "particle": grain["particle"], "into": -1})
    from sedarchive.counting.results import open_proportions

    ds = open_proportions(clustered_archive)
    assert int(ds["n_unassigned"].sel(sample=grain["sample"])) >= 1
    from catalog.errors import SedarchiveError

    with pytest.raises(SedarchiveError, match="not a cluster"):
        review.decide({"action": "move", "sample": grain["sample"], "particle": grain["particle"], "into": 999})


def _get(port, host):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/api/state", headers={"Host": host})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status


def test_allow_host_lets_a_tunnel_in_and_nothing_else(clustered_archive):
    import threading

    from sedarchive.review import make_server

    server = make_server(clustered_archive, "127.0.0.1", 0, user="t", quiet=True, allow_hosts=["localhost:9000"])
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert _get(port, "localhost:9000") == 200
        assert _get(port, f"127.0.0.1:{port}") == 200
        assert _get(port, "evil.example:9000") == 421  # DNS rebinding still refused
        assert _get(port, "localhost:9001") == 421
    finally:
        server.shutdown()
        server.server_close()
    from catalog.errors import SedarchiveError
    from sedarchive.review.server import check_allowed_host

    with pytest.raises(SedarchiveError, match="NAME or HOST:PORT"):
        check_allowed_host("localhost:99999")
    with pytest.raises(SedarchiveError, match="NAME or HOST:PORT"):
        check_allowed_host("evil.example/x")


def test_similar_endpoint(review_server):
    conn = http.client.HTTPConnection("127.0.0.1", review_server.port, timeout=30)
    conn.request("GET", "/api/state", headers={"Host": f"127.0.0.1:{review_server.port}"})
    state = json.loads(conn.getresponse().read())
    cid = state["clusters"][0]["id"]
    conn.request("GET", f"/api/cluster/{cid}?limit=1", headers={"Host": f"127.0.0.1:{review_server.port}"})
    g = json.loads(conn.getresponse().read())["grains"][0]
    conn.request("GET", f"/api/similar/{g['sample']}/{g['particle']}?k=5", headers={"Host": f"127.0.0.1:{review_server.port}"})
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    assert resp.status == 200 and len(body["grains"]) == 5


def test_typical_grains_are_typical_in_the_models_own_features(clustered_archive):
    """A model fitted on latent + morphometrics orders its grains by those features (issue 13)."""
    from sedarchive.clustering import ClusterSettings, run_stage

    keys = clustered_archive.keys()
    report = run_stage(clustered_archive, keys, None,
                       ClusterSettings(k=4, umap_points=0, refit=True, morphometrics=0.5), quiet=True)
    assert report.ok, report.failures
    model = current_model(clustered_archive)
    assert model.info.get("features") and model.n_features > model.latent_dim
    recipe = model.recipe(model.latent_dim)
    review = ReviewState(clustered_archive, "tester")
    features = {}
    for cid in review.sizes:
        grains = review.cluster_grains(cid, 0, 200)["grains"]
        dist = []
        for g in grains:
            path = clustered_archive.sample_path(SampleKey.from_name(g["sample"]))
            if g["sample"] not in features:
                features[g["sample"]] = recipe.apply(recipe.read(path, slice(None)))
            dist.append(np.linalg.norm(features[g["sample"]][g["particle"]] - model.centres[cid]))
        assert dist[0] == pytest.approx(min(dist), rel=1e-5)
        assert grains[0]["role"] == "typical"

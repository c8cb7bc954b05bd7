"""The review page and the report in real headless Chromium (Debian's /usr/bin/chromium)."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("SEDARCHIVE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM) or Path(CHROMIUM).is_file(), \
        f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium)"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _saved(page):
    page.wait_for_function("() => document.getElementById('status').className === 'saved'")
    page.evaluate("document.getElementById('status').className = ''")


def test_review_page_names_merges_excludes_and_it_all_lasts(browser, review_server):
    archive = review_server.archive
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(review_server.url + "/")
    page.wait_for_selector("#cluster-list li")
    ids = [int(x) for x in page.eval_on_selector_all("#cluster-list li", "els => els.map(e => e.dataset.cluster)")]
    a, b, c, d = ids[:4]
    page.wait_for_function("() => document.querySelectorAll('#grains img').length > 0")

    # name the first cluster with the keyboard (1 = the first class), the second with a button
    page.click(f"#cluster-list li[data-cluster='{a}']")
    page.keyboard.press("1")
    _saved(page)
    page.click(f"#cluster-list li[data-cluster='{b}']")
    page.click("#class-buttons button[data-class='dark']")
    _saved(page)
    # merge the third into the first, with the merge box
    page.click(f"#cluster-list li[data-cluster='{c}']")
    page.fill("#merge-into", str(a))
    page.press("#merge-into", "Enter")
    _saved(page)
    # exclude the fourth as cut off (keyboard c)
    page.click(f"#cluster-list li[data-cluster='{d}']")
    page.keyboard.press("c")
    _saved(page)

    # split the fifth for a second look (keyboard s): two new clusters take its place
    e = ids[4]
    page.click(f"#cluster-list li[data-cluster='{e}']")
    page.keyboard.press("s")
    _saved(page)
    after = [int(x) for x in page.eval_on_selector_all("#cluster-list li", "els => els.map(e => e.dataset.cluster)")]
    assert e not in after and len(after) == len(ids) + 1
    # the grains shown are images that loaded
    assert page.evaluate("Array.from(document.querySelectorAll('#grains img')).every(i => i.complete && i.naturalWidth > 0)")
    page.reload()
    page.wait_for_selector(f"#cluster-list li[data-cluster='{d}'] .badge.excluded")
    badges = dict(zip(ids[:4], (page.inner_text(f"#cluster-list li[data-cluster='{i}'] .badge") for i in ids[:4])))
    assert badges[a] == "quartz" and badges[b] == "dark"
    assert badges[c] == f"merged into {a} (quartz)" and badges[d] == "excluded: cut_off"
    assert page.is_visible("#prop-bars .bar[data-class='quartz']")
    # the bars draw: the filled part is as wide as the class's share of the track
    fill, track = page.evaluate("""() => { const b = document.querySelector("#prop-bars .bar[data-class='quartz']");
        return [b.querySelector('.fill').getBoundingClientRect().width, b.querySelector('.track').getBoundingClientRect().width]; }""")
    assert track > 100 and fill > 0
    assert not errors

    labels = yaml.safe_load(archive.labels_path.read_text())
    assert labels["clusters"][a]["class"] == "quartz" and labels["clusters"][a]["by"] == "tester"
    assert labels["clusters"][b]["class"] == "dark"
    assert labels["clusters"][c]["merged_into"] == a
    assert labels["clusters"][d]["excluded"] is True and labels["clusters"][d]["reason"] == "cut_off"

    from sedarchive.report import grain_table
    from sedarchive.counting.results import open_proportions

    table = grain_table(archive)
    plain = table[~table["chopped"] & ~table["clump"]]
    ds = open_proportions(archive)
    counts = ds["class_count"].sum("sample")
    assert int(counts.sel(grain_class="quartz")) == int(plain["cluster"].isin([a, c]).sum())
    assert int(counts.sel(grain_class="dark")) == int((plain["cluster"] == b).sum())
    assert int(counts.sum()) == int(plain["cluster"].isin([a, b, c]).sum())  # d is excluded
    shown = page.inner_text("#prop-bars .bar[data-class='quartz'] .val")
    assert shown.startswith(f"{int(counts.sel(grain_class='quartz'))} (")


def test_report_page_shows_the_map_and_the_galleries(browser, clustered_archive, tmp_path):
    from sedarchive.counting import labels
    from sedarchive.counting import decisions as upstream
    from sedarchive.report import grain_table, write_report

    first = int(sorted(set(grain_table(clustered_archive)["cluster"]))[0])
    labels.name_cluster(clustered_archive, first, "foram_intact", by="tester")
    upstream.refresh_proportions(clustered_archive)
    index = write_report(clustered_archive)
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(index.as_uri())
    # the gallery images load lazily: scroll through the page, then wait for every image
    height = page.evaluate("document.body.scrollHeight")
    for y in range(0, height + 900, 700):
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(30)
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
    maps = page.locator("#map figure.map img")
    assert maps.count() == 2  # by cluster and by class
    assert page.evaluate("Array.from(document.querySelectorAll('#map img')).every(i => i.naturalWidth > 300)")
    n_clusters = page.locator("section.cluster").count()
    assert n_clusters == len(set(grain_table(clustered_archive)["cluster"]))
    assert page.evaluate("Array.from(document.querySelectorAll('.grain img')).every(i => i.naturalWidth > 0)")
    assert page.locator(".grain img").count() >= n_clusters
    assert page.locator("#downcore img").count() == 2
    assert page.evaluate("Array.from(document.querySelectorAll('#downcore img')).every(i => i.naturalWidth > 0)")
    assert page.inner_text(f"#cluster-{first} .badge") == "foram_intact"
    # hovering a grain shows all its focal layers; a click keeps them open; Escape closes
    grain = page.locator(".grain img").first
    grain.scroll_into_view_if_needed()
    grain.hover()
    page.wait_for_selector("#hoverbox:not([hidden]) img")
    page.wait_for_function("() => document.querySelector('#hoverbox img').naturalWidth > 0")
    grain.click()
    assert page.is_visible("#lightbox img")
    assert re.search(r"focal layers", page.inner_text("#lightbox .caption"))
    page.keyboard.press("Escape")
    assert not page.is_visible("#lightbox")
    assert all(url.startswith("file://") for url in requests)  # nothing fetched from elsewhere
    page.evaluate("window.scrollTo(0, 0)")
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    keep = os.environ.get("SEDARCHIVE_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / "report.png")


def test_review_page_typical_first_auto_advance_single_move_and_similar(browser, review_server, tmp_path):
    """The expert's loop: typical grains first at true scale, a decision moves on by itself, one grain is
    moved out of its cluster, and grains like one are shown."""
    import numpy as np

    from catalog import SampleKey, read_array
    from sedarchive.clustering.model import current_model

    archive = review_server.archive
    model = current_model(archive)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(review_server.url + "/")
    page.wait_for_selector("#cluster-list li")
    page.wait_for_function("() => document.querySelectorAll('#grains img').length > 0")
    first = int(page.get_attribute("#cluster-list li.active", "data-cluster"))

    # typical first: the first grain shown is the one nearest the centre, and every sample shows at once
    grains = page.eval_on_selector_all("#grains figure", "els => els.map(e => [e.dataset.sample, +e.dataset.particle, e.dataset.role])")
    dist = [float(np.linalg.norm(read_array(archive.sample_path(SampleKey.from_name(s)), "latent")[p] - model.centres[first]))
            for s, p, _ in grains]
    assert dist[0] == min(dist) and grains[0][2] == "typical"
    assert page.inner_text(".role-head[data-role='typical']").startswith("most typical")
    samples = {s for s, _, _ in grains}
    assert {s for s, _, _ in grains[:len(samples)]} == samples

    # true scale: each picture's width on screen is its box in µm times one scale, shown by the bar in µm
    page.wait_for_function("() => Array.from(document.querySelectorAll('#grains img')).every(i => i.complete && i.naturalWidth > 0)")
    um, px = int(page.get_attribute("#scale-bar", "data-um")), int(page.get_attribute("#scale-bar", "data-px"))
    assert px > 10 and page.inner_text("#scale-bar").strip() == f"{um} µm"
    widths = page.eval_on_selector_all("#grains img", "els => els.map(e => e.getBoundingClientRect().width)")
    table = {(g["sample"], g["particle"]): g for g in _grains(review_server, first)}
    for (s, p, _), w in zip(grains, widths):
        assert abs(w - table[(s, p)]["box_um"][1] * px / um) <= 1.5
    assert max(widths) > 1.5 * min(widths)  # big and small grains look big and small
    shot = tmp_path / "review.png"
    page.screenshot(path=str(shot), full_page=False)
    keep = os.environ.get("SEDARCHIVE_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / "review.png")

    # auto-advance: naming the cluster shows the next undecided one, with its grains
    page.keyboard.press("1")
    _saved(page)
    page.wait_for_function(f"() => document.querySelector('#cluster-list li.active').dataset.cluster !== '{first}'")
    second = int(page.get_attribute("#cluster-list li.active", "data-cluster"))
    page.wait_for_function(f"() => document.querySelector('#current-title').textContent === 'cluster {second}'")
    page.wait_for_function("() => document.querySelectorAll('#grains figure').length > 0")

    # a single grain moved out of the cluster into the first one
    fig = page.locator("#grains figure").first
    sample, particle = fig.get_attribute("data-sample"), int(fig.get_attribute("data-particle"))
    fig.hover()
    fig.locator("button.move").click()
    page.fill("#move-into", str(first))
    page.press("#move-into", "Enter")
    _saved(page)
    stored = read_array(archive.sample_path(SampleKey.from_name(sample)), "cluster")
    assert stored[particle] == first
    assert yaml.safe_load(archive.labels_path.read_text())["moved_grains"][-1]["to"] == first
    page.wait_for_function(f"() => !document.querySelector('#grains figure[data-sample=\"{sample}\"][data-particle=\"{particle}\"]')")

    # grains like this one: nearest in the latent space, each with its cluster
    fig = page.locator("#grains figure").first
    q_sample, q_particle = fig.get_attribute("data-sample"), int(fig.get_attribute("data-particle"))
    fig.hover()
    fig.locator("button.like").click()
    page.wait_for_selector("#similar:not([hidden]) #similar-grains figure a.cl")
    near = page.eval_on_selector_all("#similar-grains figure", "els => els.slice(1).map(e => [e.dataset.sample, +e.dataset.particle])")
    query = read_array(archive.sample_path(SampleKey.from_name(q_sample)), "latent")[q_particle]
    d = [float(np.linalg.norm(read_array(archive.sample_path(SampleKey.from_name(s)), "latent")[p] - query)) for s, p in near]
    assert len(near) == 24 and d == sorted(d)
    page.wait_for_function("() => Array.from(document.querySelectorAll('#similar-grains img')).every(i => i.complete && i.naturalWidth > 0)")
    page.locator("#similar").scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "similar.png"), full_page=True)
    if keep:
        shutil.copy(tmp_path / "similar.png", Path(keep) / "similar.png")
    assert not errors


def _grains(server, cluster):
    import http.client
    import json

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", f"/api/cluster/{cluster}?limit=200", headers={"Host": f"127.0.0.1:{server.port}"})
    body = json.loads(conn.getresponse().read())
    conn.close()
    return body["grains"]


def test_review_page_says_at_load_that_the_names_belong_to_another_model(browser, clustered_archive, start_server):
    from sedarchive.counting import labels

    labels.name_cluster(clustered_archive, 0, "quartz", by="ann")
    raw = yaml.safe_load(clustered_archive.labels_path.read_text())
    raw["kmeans_id"] = "kmeans-replaced-by-a-refit"
    clustered_archive.labels_path.write_text(yaml.safe_dump(raw))
    server = start_server(clustered_archive)
    page = browser.new_page()
    page.goto(server.url + "/")
    page.wait_for_selector("#stale-labels:not([hidden])")
    assert "kmeans-replaced-by-a-refit" in page.inner_text("#stale-labels")
    assert page.inner_text("#cluster-list li[data-cluster='0'] .badge") == "not named"


@pytest.mark.slow  # trains and classifies a real archive
def test_uncertain_page_corrects_one_grain_and_moves_on(browser, clustered_archive, start_server):
    """The expert loop in the page: the least-sure grain first, a class picked and saved, the next grain up."""
    from sedarchive.classification.apply import run_stage as classify
    from sedarchive.classification.training import train
    from sedarchive.counting.labels import name_cluster
    from sedarchive.review.uncertain import uncertain_page

    archive = clustered_archive
    for cid in range(8):
        name_cluster(archive, cid, ("quartz", "dark", "foram_intact", "foram_broken")[cid % 4])
    model = train(archive, archive.keys(), quiet=True)
    classify(archive, archive.keys(), None, quiet=True, n_boot=20)
    listing = uncertain_page(archive, 50)["grains"]
    assert len(listing) >= 2
    server = start_server(archive)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(server.url + "/uncertain")
    page.wait_for_selector("#uncertain figure.uncertain-grain select")
    assert model.id in page.inner_text("#model")
    rows = page.eval_on_selector_all("#uncertain figure", "els => els.map(e => [e.dataset.sample, +e.dataset.particle])")
    assert rows == [[g["sample"], g["particle"]] for g in listing]  # least sure first
    page.wait_for_function("() => Array.from(document.querySelectorAll('#uncertain img')).every(i => i.complete && i.naturalWidth > 0)")

    first, second = listing[0], listing[1]
    row = page.locator("#uncertain figure").first
    assert row.locator("select").input_value() == first["class"]  # the classifier's guess is preselected
    new_class = "dark" if first["class"] != "dark" else "quartz"
    row.locator("select").select_option(new_class)
    row.locator("button").click()
    page.wait_for_function(f"() => !document.querySelector('#uncertain figure[data-sample=\"{first['sample']}\"]"
                           f"[data-particle=\"{first['particle']}\"]')")

    stored = yaml.safe_load(archive.corrections_path.read_text())["grains"]
    assert [(g["sample"], g["particle"], g["class"], g["by"]) for g in stored] == \
        [(first["sample"], first["particle"], new_class, "tester")]
    assert stored[0]["was"] == first["class"] and stored[0]["model"] == model.id
    # the page moved on: the next least-sure grain is first, its picker has the focus
    top = page.locator("#uncertain figure").first
    assert [top.get_attribute("data-sample"), int(top.get_attribute("data-particle"))] == [second["sample"], second["particle"]]
    assert page.evaluate("document.activeElement === document.querySelector('#uncertain figure select')")
    assert page.locator("#uncertain figure").count() == len(listing) - 1
    assert f"{len(listing) - 1} grains left" in page.inner_text("#model")
    # a reload asks the server again: the corrected grain is no longer listed
    page.reload()
    page.wait_for_selector("#uncertain figure select")
    again = page.eval_on_selector_all("#uncertain figure", "els => els.map(e => [e.dataset.sample, +e.dataset.particle])")
    assert [first["sample"], first["particle"]] not in again and again[0] == [second["sample"], second["particle"]]
    assert not errors

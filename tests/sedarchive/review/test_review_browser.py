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
    # exclude the fourth as chopped (keyboard c)
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
    assert badges[c] == f"merged into {a} (quartz)" and badges[d] == "excluded: chopped"
    assert page.is_visible("#prop-bars .bar[data-class='quartz']")
    assert not errors

    labels = yaml.safe_load(archive.labels_path.read_text())
    assert labels["clusters"][a]["class"] == "quartz" and labels["clusters"][a]["by"] == "tester"
    assert labels["clusters"][b]["class"] == "dark"
    assert labels["clusters"][c]["merged_into"] == a
    assert labels["clusters"][d]["excluded"] is True and labels["clusters"][d]["reason"] == "chopped"

    from sedarchive.report import grain_table
    from sedarchive.counting.results import open_proportions

    table = grain_table(archive)
    plain = table[~table["chopped"] & ~table["clump"]]
    ds = open_proportions(archive)
    counts = ds["class_count"].sum("sample")
    assert int(counts.sel({"class": "quartz"})) == int(plain["cluster"].isin([a, c]).sum())
    assert int(counts.sel({"class": "dark"})) == int((plain["cluster"] == b).sum())
    assert int(counts.sum()) == int(plain["cluster"].isin([a, b, c]).sum())  # d is excluded
    shown = page.inner_text("#prop-bars .bar[data-class='quartz'] .val")
    assert shown.startswith(f"{int(counts.sel({'class': 'quartz'}))} (")


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

"""Report, review and export benchmark on a synthetic clustered archive.

    python bench/report.py            # 20 samples x 400 grains (8,000), K = 100, 6 layers of 64x64
    python bench/report.py --quick    # 8 samples x 250 grains (2,000), K = 40

Builds encoded sample stores with seeded blob latents and simple grain pictures, clusters them with
the real cluster stage (no UMAP: its time is bench/cluster.py's), then times: ``write_report``
(whole, and its steps), one review decision (labels.yaml + proportions.zarr rewritten), the review
page's state and grain-image requests over HTTP, and the EcoTaxa + CSV export.
"""
from __future__ import annotations

import argparse
import http.client
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from catalog import Archive, SampleKey, create_variables, write_region


def build(root: Path, n_samples: int, grains: int, k: int, side: int, seed: int = 0) -> Archive:
    rng = np.random.default_rng(seed)
    archive = Archive.create(root)
    centres = rng.normal(0, 6, (k, 32)).astype(np.float32)
    yy, xx = np.mgrid[:side, :side] - (side - 1) / 2
    r = np.hypot(yy, xx)
    for s in range(n_samples):
        key = SampleKey(f"C{s % 4}", 10 * (s // 4), 10 * (s // 4) + 2)
        archive.create_sample(key, 1, 6, 32, 32, pixel_size_um=3.5)
        blob = rng.integers(0, k, grains)
        latent = centres[blob] + rng.normal(0, 1, (grains, 32)).astype(np.float32)
        radius = rng.uniform(side / 8, side / 2.2, grains)
        colour = rng.integers(40, 240, (k, 3))[blob]
        images = np.empty((grains, 6, side, side, 3), np.uint8)
        images[:] = (30, 150, 40)
        inside = r[None] <= radius[:, None, None]
        for layer in range(6):
            images[:, layer][inside] = np.repeat(colour, inside.reshape(grains, -1).sum(1), axis=0)
        chunk = 64
        create_variables(archive.sample_path(key), {
            "particle_images": (("particle", "layer", "py", "px", "channel"), images.shape, np.uint8, (chunk, 6, side, side, 3)),
            "bbox": (("particle", "corner"), (grains, 4), np.int64, (grains, 4)),
            "area_px": (("particle",), (grains,), np.int64, (grains,)),
            "chopped": (("particle",), (grains,), bool, (grains,)),
            "clump": (("particle",), (grains,), bool, (grains,)),
            "sharpest_layer": (("particle",), (grains,), np.int8, (grains,)),
            "latent": (("particle", "feature"), (grains, 32), np.float32, (chunk, 32)),
        }, compressed=["particle_images"])
        path = archive.sample_path(key)
        write_region(path, "particle_images", 0, images)
        write_region(path, "bbox", 0, np.tile([0, 0, side, side], (grains, 1)))
        write_region(path, "area_px", 0, np.round(np.pi * radius**2).astype(np.int64))
        write_region(path, "chopped", 0, rng.random(grains) < 0.05)
        write_region(path, "clump", 0, rng.random(grains) < 0.03)
        write_region(path, "sharpest_layer", 0, rng.integers(0, 6, grains).astype(np.int8))
        write_region(path, "latent", 0, latent)
        archive.set_status(key, "encoded", encoder_id="bench")
    from sedarchive.clustering import ClusterSettings, run_stage

    run_stage(archive, archive.keys(), None, ClusterSettings(k=k, umap_points=0), quiet=True)
    return archive


def get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", path)
    resp = conn.getresponse()
    data = resp.read()
    assert resp.status == 200, (path, resp.status, data[:200])
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_samples, grains, k, side = (8, 250, 40, 64) if args.quick else (20, 400, 100, 64)
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        t = time.perf_counter()
        archive = build(tmp / "archive", n_samples, grains, k, side)
        print(f"built {n_samples} samples x {grains} grains, K = {k}, images 6x{side}x{side} "
              f"in {time.perf_counter() - t:.1f} s")
        from sedarchive.report import ReportSettings, write_report

        t = time.perf_counter()
        page = write_report(archive, ReportSettings(), quiet=True)
        rows.append(("report (12 examples/cluster, no labels)", time.perf_counter() - t))
        html = page.read_text()
        n_files = sum(1 for _ in page.parent.rglob("*") if _.is_file())
        size_mb = sum(p.stat().st_size for p in page.parent.rglob("*") if p.is_file()) / 1e6
        from sedarchive.review import make_server

        server = make_server(archive, "127.0.0.1", 0, user="bench", quiet=True)
        port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        state_handler = server.RequestHandlerClass.state
        t = time.perf_counter()
        state = json.loads(get(port, "/api/state"))
        rows.append(("review: GET /api/state", time.perf_counter() - t))
        cid = state["clusters"][0]["id"]
        t = time.perf_counter()
        page_json = json.loads(get(port, f"/api/cluster/{cid}?limit=60"))
        rows.append(("review: GET a page of 60 grains", time.perf_counter() - t))
        t = time.perf_counter()
        for g in page_json["grains"]:
            get(port, f"/grain/{g['sample']}/{g['particle']}.jpg?layer={g['layer']}&side=128")
        rows.append((f"review: {len(page_json['grains'])} grain images, one by one", time.perf_counter() - t))
        times = []
        for i, c in enumerate(state["clusters"][:5]):
            t = time.perf_counter()
            state_handler.decide({"action": "name", "cluster": c["id"], "class": ["quartz", "dark"][i % 2]})
            times.append(time.perf_counter() - t)
        rows.append(("review: one decision (labels.yaml + proportions.zarr), median of 5", float(np.median(times))))
        server.shutdown()
        server.server_close()
        t = time.perf_counter()
        write_report(archive, ReportSettings(), quiet=True)
        rows.append(("report again, 5 clusters named", time.perf_counter() - t))
        from sedarchive.export import export_ecotaxa, export_table

        t = time.perf_counter()
        export_table(archive, tmp / "export")
        rows.append(("export: grains.csv", time.perf_counter() - t))
        t = time.perf_counter()
        export_ecotaxa(archive, tmp / "export")
        rows.append((f"export: EcoTaxa TSV + {n_samples * grains} PNGs", time.perf_counter() - t))
        print(f"report: {n_files} files, {size_mb:.1f} MB, page {len(html) / 1e3:.0f} kB")
        width = max(len(name) for name, _ in rows)
        print(f"{'step'.ljust(width)}  seconds")
        for name, seconds in rows:
            print(f"{name.ljust(width)}  {seconds:7.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

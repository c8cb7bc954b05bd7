"""Recall of the segmentation's ``clump`` flag on merged objects, and its false-flag rate on singles.

    python bench/clumps.py --archive DIR            # a segmented archive of simulated samples
    python bench/clumps.py --samples 2 --positions 9  # simulate (bench/accuracy.py's plates) and segment here

Ground truth: the plate truth's ``<name>.appearances.csv`` (every appearance of every grain in a
frame, with its box). A found object whose box holds two or more appearances (at least
``--inside`` of each appearance's box inside the object's box) is a *merged clump*; one holding
exactly one is a *single*; objects cut by the frame edge (``chopped``) are left out, as the
counting leaves them out. For the current flag (the store's ``clump``) and for candidate rules
computed from the store's per-grain measures (solidity; solidity together with the area relative
to the median area of the sample's unflagged grains), it prints per sample and overall: merged
clumps found, how many the rule flags (recall), singles, and the fraction of singles it flags.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from catalog import Archive, read_array  # noqa: E402


def appearances_inside(position: np.ndarray, bbox: np.ndarray, appearances: pd.DataFrame, inside: float) -> np.ndarray:
    """Per found object, how many true appearances have at least ``inside`` of their box inside its box.

    Examples
    --------
    >>> app = pd.DataFrame({"position": [0, 0, 0], "y0": [0, 0, 50], "x0": [0, 10, 50], "y1": [10, 10, 60], "x1": [10, 20, 60]})
    >>> appearances_inside(np.array([0, 0]), np.array([[0, 0, 10, 20], [50, 50, 60, 60]]), app, 0.6).tolist()
    [2, 1]
    """
    out = np.zeros(len(position), np.int64)
    boxes = appearances[["y0", "x0", "y1", "x1"]].to_numpy(float)
    pos = appearances["position"].to_numpy()
    for i, (p, (y0, x0, y1, x1)) in enumerate(zip(position, np.asarray(bbox, float).reshape(-1, 4))):
        b = boxes[pos == p]
        ih = np.clip(np.minimum(b[:, 2], y1) - np.maximum(b[:, 0], y0), 0, None)
        iw = np.clip(np.minimum(b[:, 3], x1) - np.maximum(b[:, 1], x0), 0, None)
        own = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1)
        out[i] = int((ih * iw / own >= inside).sum())
    return out


def rules(table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Candidate clump flags for one sample's grains (whole grains only in ``table``)."""
    sol, area, flag = table["solidity"], table["area_px"].astype(float), table["clump"]
    ref = float(np.median(area[~flag])) if (~flag).any() else float(np.median(area))
    rel = area / max(ref, 1.0)
    out = {"current (lobes or solidity<0.75)": flag}
    for s in (0.80, 0.85, 0.88):
        out[f"current or solidity<{s}"] = flag | (sol < s)
    for s, k in ((0.85, 1.5), (0.85, 2.0), (0.88, 2.0), (0.88, 3.0), (0.90, 3.0)):
        out[f"current or (solidity<{s} and area>{k}x median)"] = flag | ((sol < s) & (rel > k))
    return out


def measure(archive: Archive, inside: float) -> pd.DataFrame:
    from acquisition.sim import read_truth  # noqa: F401  (checks the simulator is importable)

    rows = []
    for key in archive.keys():
        path = archive.sample_path(key)
        name = Path(path).name.removesuffix(".zarr")
        appearances = pd.read_csv(Path(path).parent / f"{name}.appearances.csv")
        table = {v: read_array(path, v) for v in ("position", "bbox", "chopped", "clump", "solidity", "area_px")}
        whole = ~table["chopped"].astype(bool)
        table = {v: np.asarray(a)[whole] for v, a in table.items()}
        table["clump"] = table["clump"].astype(bool)
        n_in = appearances_inside(table["position"], table["bbox"], appearances, inside)
        merged, single = n_in >= 2, n_in == 1
        for rule, flag in rules(table).items():
            rows.append({"sample": name, "rule": rule, "merged": int(merged.sum()), "merged_flagged": int((flag & merged).sum()),
                         "singles": int(single.sum()), "singles_flagged": int((flag & single).sum())})
    return pd.DataFrame(rows)


def mask_signals(mask: np.ndarray) -> dict[str, float]:
    """Shape signals of one grain mask: solidity, the two deepest convexity defects (over the equivalent
    diameter), distance-transform maxima, and the share of the mask outside its moment ellipse."""
    import cv2
    from scipy import ndimage

    padded = np.pad(np.ascontiguousarray(mask, bool), 2).view(np.uint8)
    area = int(padded.sum())
    eqd = np.sqrt(4 * area / np.pi)
    contours, _ = cv2.findContours(padded, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=len)
    depths = [0.0, 0.0]
    if len(contour) >= 4:
        hull = cv2.convexHull(contour, returnPoints=False)
        try:
            defects = cv2.convexityDefects(contour, hull)
        except cv2.error:
            defects = None
        if defects is not None:
            depths = sorted((defects.reshape(-1, 4)[:, 3] / 256.0).tolist(), reverse=True) + [0.0, 0.0]
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)
    peaks = (dist == ndimage.maximum_filter(dist, size=max(3, int(0.25 * eqd) | 1))) & (dist > 0.4 * dist.max())
    n_peaks = int(ndimage.label(peaks)[1])
    m = cv2.moments(padded, binaryImage=True)
    ellipse = np.zeros_like(padded)
    if area >= 5:
        cov = np.array([[m["mu20"], m["mu11"]], [m["mu11"], m["mu02"]]]) / area
        ev, evec = np.linalg.eigh(cov)
        axes = (int(round(2 * np.sqrt(max(ev[1], 1e-9)))), int(round(2 * np.sqrt(max(ev[0], 1e-9)))))
        ang = float(np.degrees(np.arctan2(evec[1, 1], evec[0, 1])))
        cv2.ellipse(ellipse, (int(round(m["m10"] / m["m00"])), int(round(m["m01"] / m["m00"]))), axes, ang, 0, 360, 1, -1)
    outside = float((padded.astype(bool) & ~ellipse.astype(bool)).sum()) / max(area, 1)
    hull_pts = cv2.convexHull(contour)
    hull_area = max(cv2.contourArea(hull_pts), 1.0)
    return {"solidity": min(area / hull_area, 1.0), "defect1": depths[0] / eqd, "defect2": depths[1] / eqd,
            "peaks": n_peaks, "outside_ellipse": outside, "area_px": area}


def resegment(archive: Archive, inside: float, max_positions: int) -> pd.DataFrame:
    """Re-run ``extract_grains`` on the stored stacks, keeping every whole grain's mask signals and truth."""
    import zarr

    from catalog import read_attrs
    from sedarchive.segmentation import extract as ex
    from sedarchive.segmentation.settings import SegmentSettings

    kept: list[dict] = []
    original = ex.shape_of

    def recording(mask, *a, **k):
        shape = original(mask, *a, **k)
        kept.append({**mask_signals(mask), "lobes": shape.n_lobes, "solidity_shape": shape.solidity})
        return shape

    ex.shape_of = recording
    rows = []
    try:
        for key in archive.keys():
            path = archive.sample_path(key)
            name = Path(path).name.removesuffix(".zarr")
            appearances = pd.read_csv(Path(path).parent / f"{name}.appearances.csv")
            stacks = zarr.open(str(Path(path) / "stacks"), mode="r")
            um = read_attrs(path).get("pixel_size_um")
            for p in range(min(max_positions, stacks.shape[0])):
                kept.clear()
                _, table = ex.extract_grains(np.asarray(stacks[p]), SegmentSettings(crop_size=16), position=p,
                                             pixel_size_um=um)
                cols = table.columns if hasattr(table, "columns") else table
                n_in = appearances_inside(np.asarray(cols["position"]), np.asarray(cols["bbox"]), appearances, inside)
                for i, signals in enumerate(kept):
                    rows.append({"sample": name, "position": p, **signals, "chopped": bool(cols["chopped"][i]),
                                 "clump": bool(cols["clump"][i]), "n_in": int(n_in[i])})
    finally:
        ex.shape_of = original
    return pd.DataFrame(rows)


MASK_RULES = {
    "current": lambda d: d.clump,
    "current or second defect>0.10 eqd": lambda d: d.clump | (d.defect2 > 0.10),
    "current or second defect>0.15 eqd": lambda d: d.clump | (d.defect2 > 0.15),
    "current or (solidity<0.88 and second defect>0.08)": lambda d: d.clump | ((d.solidity < 0.88) & (d.defect2 > 0.08)),
    "current or (solidity<0.88 and second defect>0.12)": lambda d: d.clump | ((d.solidity < 0.88) & (d.defect2 > 0.12)),
    "current or 2+ distance maxima": lambda d: d.clump | (d.peaks >= 2),
    "current or (solidity<0.88 and 2+ maxima)": lambda d: d.clump | ((d.solidity < 0.88) & (d.peaks >= 2)),
    "current or (solidity<0.85 and area>1.5x median)": lambda d: d.clump | ((d.solidity < 0.85) & (d.rel_area > 1.5)),
    "current or (solidity<0.88 and second defect>0.12 and area>1.5x)": lambda d: d.clump | (
        (d.solidity < 0.88) & (d.defect2 > 0.12) & (d.rel_area > 1.5)),
    "current or (second defect>0.12 and area>2x median)": lambda d: d.clump | ((d.defect2 > 0.12) & (d.rel_area > 2)),
    "current or outside ellipse>0.15": lambda d: d.clump | (d.outside_ellipse > 0.15),
    "current or (solidity<0.88 and outside ellipse>0.12)": lambda d: d.clump | ((d.solidity < 0.88) & (d.outside_ellipse > 0.12)),
}


def report_masks(d: pd.DataFrame) -> None:
    """Recall on merged objects and false flags on singles of mask-based rules (whole grains)."""
    d = d[~d.chopped].copy()
    d["solidity"] = d["solidity_shape"]  # the pipeline's own solidity (pixel count over filled hull)
    d["rel_area"] = d.area_px / d.groupby("sample").area_px.transform(lambda a: np.median(a))
    merged, single = d[d.n_in >= 2], d[d.n_in == 1]
    print(f"re-segmented: {len(merged)} merged clumps, {len(single)} singles (whole grains)")
    for name, q in (("merged", merged), ("singles", single)):
        print(f"  {name}: " + ", ".join(f"{c} q10/50/90 {np.percentile(q[c], [10, 50, 90]).round(3).tolist()}"
                                         for c in ("solidity", "rel_area", "defect1", "defect2", "peaks", "outside_ellipse")))
    print(f"{'rule':62} {'recall':>6} {'false':>6}")
    for name, rule in MASK_RULES.items():
        print(f"{name:62} {rule(merged).mean():6.3f} {rule(single).mean():6.3f}")


def simulate_and_segment(root: Path, n_samples: int, n_positions: int) -> Archive:
    from accuracy import simulate
    from features import run
    from sedarchive.segmentation.settings import SegmentSettings

    archive = simulate(root, n_samples, n_positions, overlap=0.3, density=2.0)
    run(archive, ["segment"], {"segment": SegmentSettings(crop_size=16)})
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, help="a segmented archive of simulated samples")
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--positions", type=int, default=9)
    parser.add_argument("--masks", type=int, default=0, metavar="N",
                        help="also re-segment the first N positions of each sample and rate mask-based rules")
    parser.add_argument("--csv", type=Path, help="write the mask signals per grain (with --masks)")
    parser.add_argument("--inside", type=float, default=0.6, help="share of an appearance's box inside the object's box")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        archive = Archive.open(args.archive) if args.archive else simulate_and_segment(Path(tmp) / "a", args.samples, args.positions)
        df = measure(archive, args.inside)
        signals = resegment(archive, args.inside, args.masks) if args.masks else None
    print(f"{'sample':22} {'rule':48} {'merged':>6} {'recall':>6} {'singles':>7} {'false':>6}")
    for (sample, rule), g in df.groupby(["sample", "rule"], sort=False):
        r = g.iloc[0]
        print(f"{sample:22} {rule:48} {r.merged:6d} {r.merged_flagged / max(r.merged, 1):6.3f} {r.singles:7d} "
              f"{r.singles_flagged / max(r.singles, 1):6.3f}")
    total = df.groupby("rule", sort=False)[["merged", "merged_flagged", "singles", "singles_flagged"]].sum()
    print("all samples")
    for rule, r in total.iterrows():
        print(f"{'':22} {rule:48} {r.merged:6d} {r.merged_flagged / max(r.merged, 1):6.3f} {r.singles:7d} "
              f"{r.singles_flagged / max(r.singles, 1):6.3f}")
    if signals is not None:
        if args.csv:
            signals.to_csv(args.csv, index=False)
        report_masks(signals)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""proportions with corrected counts: repeats marked in the store, per-frame fallback, bootstrap bounds."""
from __future__ import annotations

import numpy as np
import pytest

import catalog
from catalog import SampleKey, create_variables, read_array, write_region
from acquisition.sim import GRAIN_KINDS, plate_fractions, read_plate_truth, read_truth, simulate_sample
from sedarchive.counting.class_estimates import corrected_estimates
from sedarchive.counting.sample import CountingWarning, count_sample
from sedarchive.counting.proportions import DEFAULT_PROXIES, build_proportions

FRAME = dict(height=256, width=320, pixel_size_um=8.0, n_layers=1)
KINDS = list(GRAIN_KINDS)


def perfectly_segmented(archive, key, *, overlap: float, seed: int):
    """A simulated sample whose grains are the simulator's per-frame objects, clustered by kind (clumps: 4)."""
    path = simulate_sample(archive, key, n_positions=9, seed=seed, overlap=overlap, grains_per_mm2=2.5, **FRAME)
    truth = read_truth(path)
    n = len(truth)
    arrays = {
        "position": truth.position.to_numpy(np.int64),
        "bbox": truth[["y0", "x0", "y1", "x1"]].to_numpy(np.int64),
        "chopped": truth.chopped.to_numpy(bool),
        "clump": truth.clump.to_numpy(bool),
        "cluster": np.where(truth.clump, 4, truth.kind.map(KINDS.index)).astype(np.int32),
    }
    create_variables(path, {name: (("particle",) + (("corner",) if a.ndim == 2 else ()), a.shape, a.dtype,
                                   (n,) + a.shape[1:]) for name, a in arrays.items()})
    for name, a in arrays.items():
        write_region(path, name, 0, a)
    return path, truth


def test_overlapping_scan_counts_each_grain_once_and_falls_back_without_positions(archive):
    a, b = SampleKey("OV", 0, 2), SampleKey("OV", 2, 4)
    path_a, truth_a = perfectly_segmented(archive, a, overlap=0.3, seed=11)
    path_b, truth_b = perfectly_segmented(archive, b, overlap=0.3, seed=12)
    catalog.store._group(path_b, "r+")["stage_xy_mm"][4] = np.nan  # a position lost its stage record
    with pytest.warns(CountingWarning, match=r"OV_2-4cm: stage positions missing for 1 of 9 positions: counted per frame"):
        ds = build_proportions(archive, [a, b], 5, labels_mapping={**dict(enumerate(KINDS)), 4: None},
                               classes=KINDS, proxies=DEFAULT_PROXIES)
    assert list(ds["counting"].values) == ["plate", "per frame"]
    assert ds["counting_note"].values[0] == ""
    # sample A: repeats marked in the store, one kept view per grain; nothing dropped
    dup = read_array(path_a, "duplicate_of")
    weight = read_array(path_a, "count_weight")
    assert len(dup) == len(truth_a) and int(ds["n_repeats"].values[0]) == int((dup >= 0).sum()) > 10
    kept = truth_a[(weight > 0)]
    assert kept.grain_id.is_unique
    # sample B: counted per frame, nothing joined, every plain grain weighted
    assert int(ds["n_repeats"].values[1]) == 0
    plain_b = ~truth_b.chopped.to_numpy() & ~truth_b.clump.to_numpy()
    # clump-flagged grains keep their weight (the expert excludes the clusters of clumps)
    assert ((read_array(path_b, "count_weight") > 0) == ~truth_b.chopped.to_numpy()).all()
    # raw counts are unchanged, the corrected ones sit next to them
    assert int(ds["count"].values[1].sum()) == int(plain_b.sum())
    assert np.isclose(ds["count_corrected"].values[0].sum(), weight.sum())
    assert float(ds["class_count_corrected"].values[0].sum()) < weight.sum()  # the clumps' cluster is excluded
    # the corrected fraction is near the plate truth, which lies within its interval
    grains, _ = read_plate_truth(path_a)
    truth = plate_fractions(grains, KINDS)
    row = ds.isel(sample=0)
    for kind in KINDS:
        lo = float(row["class_fraction_corrected_lower"].sel({"grain_class": kind}))
        hi = float(row["class_fraction_corrected_upper"].sel({"grain_class": kind}))
        assert lo - 0.02 <= truth[kind] <= hi + 0.02, kind
    # proxies use the corrected counts; the raw ones stay beside them
    cc = row["class_count_corrected"]
    frag = float(cc.sel({"grain_class": "foram_broken"}) / cc.sel({"grain_class": ["foram_broken", "foram_intact"]}).sum())
    assert np.isclose(float(row["foram_fragmentation"]), frag)
    assert "foram_fragmentation_raw" in ds and "foram_fragmentation_raw_upper" in ds
    assert float(row["foram_fragmentation_lower"]) <= frag <= float(row["foram_fragmentation_upper"])


def test_count_sample_is_idempotent_and_writes_nothing_new_the_second_time(archive):
    path, _ = perfectly_segmented(archive, SampleKey("ID", 0, 2), overlap=0.2, seed=3)
    first = count_sample(path)
    mtime = (path / "duplicate_of" / "zarr.json").stat().st_mtime_ns
    second = count_sample(path)
    assert np.array_equal(first.duplicate_of, second.duplicate_of) and np.allclose(first.weight, second.weight)
    assert (path / "duplicate_of" / "zarr.json").stat().st_mtime_ns == mtime
    assert catalog.read_attrs(path)["counting"] == {"mode": "plate", "note": ""}


def test_impure_clusters_widen_the_interval_where_the_expert_checked_them():
    rng = np.random.default_rng(0)
    cluster = rng.integers(0, 4, 400)
    grains = [(cluster, np.ones(400))]
    member = np.eye(2)[[0, 0, 1, 1]]  # clusters 0, 1 -> class 0; 2, 3 -> class 1
    pure = corrected_estimates(grains, member, None, n_boot=400)
    checked = np.array([[14, 6], [20, 0], [0, 20], [0, 20]])  # cluster 0 held 30 % of class 1
    impure = corrected_estimates(grains, member, checked, n_boot=400)
    assert np.allclose(pure["class_fraction"], impure["class_fraction"])
    width = lambda e: float(e["class_fraction_upper"][0, 0] - e["class_fraction_lower"][0, 0])  # noqa: E731
    assert width(impure) > width(pure) * 1.15
    # ... and leans towards what the check found: class 0 is over-counted by naming
    assert impure["class_fraction_lower"][0, 0] < pure["class_fraction_lower"][0, 0] - 0.03


def test_labels_record_what_the_expert_checked(archive):
    from sedarchive.counting import labels as lab

    lab.name_cluster(archive, 3, "quartz", checked={"quartz": 18, "dark": 2})
    assert lab.checked_counts(lab.load_labels(archive)) == {3: {"quartz": 18, "dark": 2}}
    with pytest.raises(lab.LabelsError, match="cluster 4: checked must map classes"):
        lab.name_cluster(archive, 4, "quartz", checked={"mica": 3})
    assert 4 not in lab.load_labels(archive).clusters  # the bad decision was not saved


def test_report_says_which_samples_are_counted_per_frame(archive):
    import pandas as pd

    from catalog import update_attrs
    from sedarchive.report.page import _summary
    from sedarchive.counting.labels import Labels
    from sedarchive.report.summary import run_summary

    on_plate, _ = perfectly_segmented(archive, SampleKey("RP", 0, 2), overlap=0.2, seed=5)
    count_sample(on_plate)
    lone = simulate_sample(archive, SampleKey("RP", 2, 4), n_positions=1, seed=6, **FRAME)
    update_attrs(lone, counting={"mode": "per frame", "note": "no stage positions: counted per frame"})
    table = pd.DataFrame({"chopped": [False], "clump": [False], "cluster": [0]})
    summary = run_summary(archive, archive.keys(), table, Labels(["quartz"], {}), settings={})
    assert summary["counting"] == {"plate": 1, "per_frame": [("RP_2-4cm", "no stage positions: counted per frame")]}
    html = _summary({**summary, "report_timings_s": {}})
    assert "1 sample(s) on the plate" in html and "RP_2-4cm: no stage positions: counted per frame" in html

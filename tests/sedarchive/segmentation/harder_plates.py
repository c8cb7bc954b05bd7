"""The simulator's harder plates: other plate colours, noise, dark and saturated grains, dense
touching grains, uneven light; each rendered at a few positions and scored against its truth."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from acquisition.sim.plate import VirtualPlate
from acquisition.sim.render import render_stack

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
from groundtruth import detection_scores  # noqa: E402

#: name -> (plate options, render options)
CONDITIONS: dict[str, tuple[dict, dict]] = {
    "green": ({}, {}),
    "black plate": ({}, {"plate_rgb": (18, 18, 20)}),
    "grey plate": ({}, {"plate_rgb": (110, 110, 110)}),
    "blue plate": ({}, {"plate_rgb": (40, 70, 170)}),
    "noise 6": ({}, {"noise_sd": 6.0}),
    "dark and saturated grains": ({}, {"palette": "varied"}),
    "dark and saturated grains on black": ({}, {"palette": "varied", "plate_rgb": (18, 18, 20)}),
    "uneven light": ({}, {"light_gradient": 0.4, "vignetting": 0.35}),
    "dense touching": ({"grains_per_mm2": 40.0, "clump_fraction": 0.0, "min_gap_mm": -0.012},
                       {"touching": "apart"}),
}
#: Measured by bench/harder.py, not asserted: grains whose outlines really touch. The star-shaped
#: outlines of "dense touching" (circles overlapping by 12 µm) seldom touch (about 1 pair in 70
#: objects); circles overlapping by 50 µm make about one object in four a touching pair.
MEASURED_ONLY: dict[str, tuple[dict, dict]] = {
    "dense, outlines touching": ({"grains_per_mm2": 40.0, "clump_fraction": 0.0, "min_gap_mm": -0.05},
                                 {"touching": "apart"}),
}


#: Half the area of the least grain (40 µm at 1.5 µm per pixel): smaller slivers at the frame edge
#: are left out by the segmenter (SegmentSettings.min_diameter_um), and so out of the truth.
MIN_SLIVER_PX = 279


def render(condition: str, n_positions: int = 8, seed: int = 7, height: int = 384, width: int = 480,
           n_layers: int = 3) -> tuple[list[np.ndarray], pd.DataFrame]:
    """Stacks and truth of ``n_positions`` positions of one condition's plate (1.5 µm per pixel)."""
    plate_kw, render_kw = {**CONDITIONS, **MEASURED_ONLY}[condition]
    plate_kw = {"grains_per_mm2": 20.0, "clump_fraction": 0.0, **plate_kw}
    plate = VirtualPlate.generate(seed=seed, width_mm=4, height_mm=4, **plate_kw)
    offsets = (-20.0, 0.0, 20.0)[:n_layers]
    stacks, truths = [], []
    for p in range(n_positions):
        x, y = 0.8 + 0.75 * (p % 4), 0.8 + 0.6 * (p // 4)
        # touching grains apart: a segmenter that splits them should find every grain
        # slivers cut by the frame edge smaller than half the least grain (40 µm) are not grains
        stack, truth = render_stack(plate, x, y, height=height, width=width, focal_offsets_um=offsets,
                                    min_area_px=MIN_SLIVER_PX, **{"touching": "apart", **render_kw})
        truth["position"] = p
        stacks.append(stack)
        truths.append(truth)
    return stacks, pd.concat(truths, ignore_index=True)


def score(stacks: list[np.ndarray], truth: pd.DataFrame, settings) -> dict[str, float]:
    """Detection scores of ``extract_grains`` over the stacks (plate colour learnt from all of them)."""
    from sedarchive.segmentation import extract_grains
    from sedarchive.segmentation.background_model import parse_background, plate_colour

    background = parse_background(settings.background)
    plate_lab = None if background == "paper" else plate_colour([s[len(s) // 2] for s in stacks], background)
    tables = [extract_grains(s, settings, position=p, pixel_size_um=1.5, plate_lab=plate_lab)[1].columns
              for p, s in enumerate(stacks)]
    cols = {k: np.concatenate([t[k] for t in tables]) for k in tables[0]}
    out = detection_scores(cols["position"], cols["bbox"], cols["chopped"], cols["clump"], truth)
    single = ~truth["clump"].to_numpy()
    out["single_flagged_clump"] = _single_flagged(cols, truth, single)
    # whole grains: those not cut by the frame edge, found and true (an object cut by the edge may be
    # the blur of a grain just outside the frame, which the truth does not hold)
    whole = ~cols["chopped"]
    whole_truth = truth[~truth["chopped"]].reset_index(drop=True)
    scores = detection_scores(cols["position"][whole], cols["bbox"][whole], cols["chopped"][whole],
                              cols["clump"][whole], whole_truth)
    out.update({f"whole_{k}": v for k, v in scores.items()})
    return out


def _single_flagged(cols: dict, truth: pd.DataFrame, single: np.ndarray) -> float:
    from groundtruth import match

    index, _ = match(cols["position"], cols["bbox"], truth)
    hits = index >= 0
    on_single = hits & single[np.where(hits, index, 0)]
    return float(cols["clump"][on_single].mean()) if on_single.any() else 0.0

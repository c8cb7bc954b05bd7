"""Scan plans: grids, focal steps, checks and plan files."""
from __future__ import annotations

import pytest

from acquisition.errors import PlanError
from acquisition.plan import PlateArea, ScanPlan, parse_offsets

FRAME = dict(width=320, height=256, pixel_size_um=8.0)  # 2.56 x 2.048 mm


def test_grid_covers_the_area_in_serpentine_order():
    plan = ScanPlan(plates=(PlateArea(0, 0, 7, 4),), **FRAME)
    positions = plan.positions()
    assert plan.n_positions == len(positions) == 6  # 3 columns x 2 rows
    assert [(p.row, p.col) for p in positions] == [(0, 0), (0, 1), (0, 2), (1, 2), (1, 1), (1, 0)]
    assert positions[0].x_mm == pytest.approx(1.28) and positions[0].y_mm == pytest.approx(1.024)
    xs = sorted({p.x_mm for p in positions})
    assert xs[-1] + 1.28 >= 7.0  # the last frame reaches the edge of the area
    raster = ScanPlan(plates=(PlateArea(0, 0, 7, 4),), serpentine=False, **FRAME)
    assert [(p.row, p.col) for p in raster.positions()][3:] == [(1, 0), (1, 1), (1, 2)]


def test_overlap_shortens_the_step():
    plan = ScanPlan(plates=(PlateArea(0, 0, 10, 2),), overlap=0.25, **FRAME)
    xs = [p.x_mm for p in plan.positions()]
    assert xs[1] - xs[0] == pytest.approx(2.56 * 0.75)


def test_plates_are_numbered_in_turn_and_steps_prompt_between_them():
    plan = ScanPlan(plates=(PlateArea(0, 0, 5, 2),) * 2, focal_offsets_um=(-20, 0, 20), **FRAME)
    positions = plan.positions()
    assert [p.plate for p in positions] == [0, 0, 1, 1]
    assert [p.index for p in positions] == [0, 1, 2, 3]
    assert plan.focal_z_mm() == [0.98, 1.0, 1.02]
    steps = list(plan.steps())
    assert [kind for kind, _ in steps].count("snap") == 12
    assert [value for kind, value in steps if kind == "plate"] == [0, 1]
    assert steps[0] == ("plate", 0) and steps[1][0] == "move"


@pytest.mark.parametrize("change, message", [
    (dict(overlap=1.0), "overlap"),
    (dict(focal_offsets_um=()), "at least one focal offset"),
    (dict(focal_offsets_um=(0, 0)), "repeat"),
    (dict(plates=(PlateArea(5, 0, 1, 2),)), "no extent"),
    (dict(plates=()), "no plate area"),
    (dict(width=0), "is not a frame"),
    (dict(travel_mm=(3, 100, 10)), "outside the stage travel 0..3 mm"),
    (dict(travel_mm=(100, 100, 0.5)), "z travel"),
])
def test_check_refuses_plans_that_cannot_run(change, message):
    base = dict(plates=(PlateArea(0, 0, 5, 4),), **FRAME)
    with pytest.raises(PlanError, match=message):
        ScanPlan(**{**base, **change}).check()


def test_check_warns_about_an_area_smaller_than_a_frame():
    warnings = ScanPlan(plates=(PlateArea(0, 0, 1, 1),), **FRAME).check()
    assert warnings and "smaller than one frame" in warnings[0]


def test_plan_files_round_trip(tmp_path):
    plan = ScanPlan(plates=(PlateArea(1, 2, 9, 8), PlateArea(0, 0, 4, 4)), overlap=0.1, settle_s=0.2,
                    travel_mm=(200, 200, 50), **FRAME)
    path = tmp_path / "plan.yaml"
    plan.save(path)
    assert ScanPlan.load(path) == plan
    assert ScanPlan.load(path, overlap=0.2).overlap == 0.2


def test_plan_file_with_n_plates_and_area_strings(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("plates: ['0,0,5,4']\nn_plates: 3\nwidth: 320\nheight: 256\npixel_size_um: 8\n"
                    "focal_offsets_um: [-40, 0, 40]\n")
    plan = ScanPlan.load(path)
    assert len(plan.plates) == 3 and plan.n_layers == 3
    assert plan.n_positions == 12


@pytest.mark.parametrize("text, message", [
    ("plates: [[0, 0]]\nbogus: 1\n", "unknown plan settings bogus"),
    ("plates: ['0,0,x,4']\n", "not X0,Y0,X1,Y1"),
    ("- just\n- a list\n", "must be a mapping"),
    ("plates: [\n", "not valid YAML"),
])
def test_bad_plan_files_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PlanError, match=message):
        ScanPlan.load(path)


def test_missing_plan_file(tmp_path):
    with pytest.raises(PlanError, match="cannot read plan .*nope.yaml"):
        ScanPlan.load(tmp_path / "nope.yaml")


def test_describe_lists_plates_and_frames():
    text = ScanPlan(plates=(PlateArea(0, 0, 7, 4),) * 2, **FRAME).describe()
    assert "12 positions x 6 focal layers = 72 frames of 320x256 px" in text
    assert "plate 2: x 0..7 mm, y 0..4 mm: 2 rows x 3 columns" in text


def test_parse_offsets():
    assert parse_offsets("-50,0,50") == (-50.0, 0.0, 50.0)
    with pytest.raises(PlanError, match="not numbers"):
        parse_offsets("a,b")

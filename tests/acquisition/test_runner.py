"""Scans through the real driver, pyserial, a pseudo-terminal, the simulated controller and camera."""
from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

import catalog
from catalog import Archive, SampleKey
from acquisition.camera import OpenCVCamera
from acquisition.errors import (
    CameraError,
    PlanError,
    ScanCancelled,
    StageAlarm,
    StageDisconnected,
    StageError,
    StageTimeout,
)
from acquisition.plan import PlateArea
from acquisition.runner import RunState, ScanRunner
from acquisition.sim import read_truth, render_stack
from acquisition.sim.controller import Fault, SimulatedController
from acquisition.sim.microscope import SimulatedMicroscope

KEY = SampleKey("SIM-7", 120, 122)
ARRAYS = ("stacks", "stage_xy_mm", "position_done")


def store_bytes(path: Path) -> dict[str, bytes]:
    """Every file of the store's arrays (chunks and their metadata), by relative path."""
    return {
        str(f.relative_to(path)): f.read_bytes()
        for name in ARRAYS for f in sorted((path / name).rglob("*")) if f.is_file()
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, scan):
    """The reference: the small plan scanned without a fault."""
    from acquisition.plan import ScanPlan

    archive = Archive.create(tmp_path_factory.mktemp("reference"))
    report = scan(archive, KEY, ScanPlan(plates=(PlateArea(0.0, 0.0, 2.5, 2.0),), width=160, height=128,
                                         pixel_size_um=8.0), seed=4)
    return archive, report


def test_full_simulated_scan_matches_plan_and_truth(uninterrupted, small_plan):
    archive, report = uninterrupted
    assert report.complete and report.taken == 4 and report.already_done == 0
    ds = archive.open_sample(KEY)
    assert ds.attrs["status"] == "acquired"
    assert ds.attrs["pixel_size_um"] == 8.0
    assert ds.attrs["focal_offsets_um"] == list(small_plan.focal_offsets_um)
    assert ds.attrs["acquire_settings"]["overlap"] == 0.0
    assert ds.attrs["acquire_devices"]["stage"] == "simulated grbl controller"
    assert ds.stacks.shape == (4, 6, 128, 160, 3)
    planned = np.array([(p.x_mm, p.y_mm) for p in small_plan.positions()])
    np.testing.assert_allclose(ds.stage_xy_mm.values, planned, atol=1e-3)
    assert ds.position_done.values.all()
    # the frames are what the camera sees at each position and focal height
    microscope = SimulatedMicroscope(small_plan, seed=4)
    x, y = planned[3]
    expected, truth = render_stack(microscope.plates[0], x, y, z_um=-10.0, focal_offsets_um=(0.0,),
                                   height=128, width=160, pixel_size_um=8.0)
    assert np.array_equal(ds.stacks.values[3, 2], expected[0])
    stored = read_truth(report.path)
    assert sorted(set(stored.position)) == [0, 1, 2, 3]
    at3 = stored[stored.position == 3].reset_index(drop=True)
    assert at3[["kind", "y0", "x0", "y1", "x1", "chopped", "clump"]].equals(
        truth[["kind", "y0", "x0", "y1", "x1", "chopped", "clump"]])
    # every truth box holds grain (unsaturated) pixels; outside the boxes there is only plate
    stacks = ds.stacks.values
    for position in range(4):
        sat = cv2.cvtColor(stacks[position, 3], cv2.COLOR_RGB2HSV)[..., 1] / 255
        outside = np.ones(sat.shape, bool)
        for row in stored[stored.position == position].itertuples():
            assert (sat[row.y0:row.y1, row.x0:row.x1] < 0.45).any()
            outside[max(row.y0 - 5, 0):row.y1 + 5, max(row.x0 - 5, 0):row.x1 + 5] = False
        assert (sat[outside] < 0.45).mean() < 0.005


@pytest.mark.parametrize("fault, error, message", [
    (Fault("alarm", at_move=15, code=1), StageAlarm, r"ALARM:1 \(hard limit triggered"),
    (Fault("error", at_move=15, code=33), StageError, r"error:33 \(the motion command has an invalid target"),
    (Fault("silence", at_move=15), StageTimeout, r"no reply to 'G0 Z0.9900' within 0.5 s"),
    (Fault("drop", at_move=15), StageDisconnected, r"disconnected"),
])
def test_fault_stops_cleanly_and_resume_is_byte_identical(tmp_path, small_plan, uninterrupted, fault, error, message, scan):
    archive = Archive.create(tmp_path / "archive")
    with pytest.raises(error, match=message) as info:
        scan(archive, KEY, small_plan, seed=4, faults=[fault])
    # move 15 is the 3rd layer of position 3: positions 1 and 2 are saved, nothing of position 3
    assert "stopped at position 3/4" in str(info.value) and "2 positions saved" in str(info.value)
    path = archive.sample_path(KEY)
    assert catalog.positions_done(path).tolist() == [True, True, False, False]
    assert catalog.read_attrs(path)["status"] == "acquiring"
    assert not catalog.read_array(path, "stacks", 2).any()
    assert np.isnan(catalog.read_array(path, "stage_xy_mm", 2)).all()
    assert archive.samples()[0].status == "acquiring"
    report = scan(archive, KEY, small_plan, seed=4)
    assert (report.taken, report.already_done) == (2, 2)
    assert catalog.read_attrs(path)["status"] == "acquired"
    reference_archive, reference = uninterrupted
    assert store_bytes(path) == store_bytes(reference.path)
    assert read_truth(path).equals(read_truth(reference.path))


def test_alarm_then_resume_on_the_same_controller_needs_unlock(tmp_path, small_plan, uninterrupted, scan):
    archive = Archive.create(tmp_path / "archive")
    with SimulatedController(speed_mm_s=500.0, steps_per_mm=1000.0, faults=[Fault("alarm", at_move=8)]) as controller:
        with pytest.raises(StageAlarm, match="stopped at position 2/4"):
            scan(archive, KEY, small_plan, seed=4, controller=controller)
        with pytest.raises(StageAlarm, match="--unlock"):
            scan(archive, KEY, small_plan, seed=4, controller=controller)
        scan(archive, KEY, small_plan, seed=4, controller=controller, unlock=True)
        assert controller.lines.count("$X") == 1
    assert store_bytes(archive.sample_path(KEY)) == store_bytes(uninterrupted[1].path)


def test_resume_refuses_another_plan(tmp_path, small_plan, scan):
    archive = Archive.create(tmp_path / "archive")
    with pytest.raises(StageAlarm):
        scan(archive, KEY, small_plan, faults=[Fault("alarm", at_move=3)])
    with pytest.raises(PlanError, match=r"started with another plan \(overlap differ\)"):
        scan(archive, KEY, replace(small_plan, overlap=0.1))


def test_cancel_and_pause(tmp_path, small_plan):
    archive = Archive.create(tmp_path / "archive")
    with SimulatedMicroscope(small_plan, seed=1) as microscope:
        runner = ScanRunner(microscope.stage, microscope.camera, small_plan,
                            on_progress=lambda p: runner.cancel() if p.done == 1 else None)
        with pytest.raises(ScanCancelled, match="cancelled"):
            runner.run(archive, KEY)
    # position 1 was written while position 2 was taken; 2 is still written, 3 is not started
    assert catalog.positions_done(archive.sample_path(KEY)).tolist() == [True, True, False, False]
    assert microscope.camera.frames == 2 * 6
    frames = {}
    plan = replace(small_plan, plates=small_plan.plates * 2)  # 8 positions
    with SimulatedMicroscope(plan, seed=1) as microscope:
        def resume():
            frames["while paused"] = microscope.camera.frames
            runner.resume()

        def on_progress(progress):
            if progress.done == 3:  # reported once position 4 is taken and position 3 written
                runner.pause()
                frames["at pause"] = microscope.camera.frames
                threading.Timer(0.3, resume).start()

        runner = ScanRunner(microscope.stage, microscope.camera, plan, on_progress=on_progress,
                            on_plate=microscope.load_plate)
        report = runner.run(Archive.create(tmp_path / "other"), KEY)
    assert report.complete and report.taken == 8
    assert frames["at pause"] == frames["while paused"] == 4 * 6  # nothing was taken while paused
    assert microscope.camera.frames == 8 * 6


def test_operator_is_prompted_between_plates_and_on_resume(tmp_path, small_plan):
    plan = replace(small_plan, plates=small_plan.plates * 2)
    archive = Archive.create(tmp_path / "archive")
    prompts = []
    with SimulatedMicroscope(plan, seed=2, faults=[Fault("drop", at_move=6 * 4 + 3)], reply_timeout_s=0.5) as microscope:
        def on_plate(plate, n_plates):
            prompts.append((plate, n_plates))
            microscope.load_plate(plate)

        with pytest.raises(StageDisconnected):
            ScanRunner(microscope.stage, microscope.camera, plan, on_plate=on_plate).run(archive, KEY)
    assert prompts == [(1, 2)]
    with SimulatedMicroscope(plan, seed=2) as microscope:
        prompts.clear()
        report = ScanRunner(microscope.stage, microscope.camera, plan, on_plate=on_plate).run(archive, KEY)
    assert prompts == [(1, 2)] and report.taken == 4
    stacks = archive.open_sample(KEY).stacks.values
    assert not np.array_equal(stacks[0], stacks[4])  # plate 2 holds other grains


def test_finished_sample_is_left_alone(uninterrupted, small_plan, scan):
    archive, _ = uninterrupted
    report = scan(archive, KEY, small_plan, seed=4)
    assert report.taken == 0 and report.complete


def test_wrong_frame_size_stops_before_writing(tmp_path, small_plan):
    archive = Archive.create(tmp_path / "archive")
    with SimulatedMicroscope(small_plan) as microscope:
        microscope.camera.width = 100
        with pytest.raises(CameraError, match="gives 100x128 uint8 frames; the plan expects 160x128"):
            ScanRunner(microscope.stage, microscope.camera, small_plan).run(archive, KEY)
    assert not catalog.positions_done(archive.sample_path(KEY)).any()


def test_simulated_stage_with_an_opencv_camera(tmp_path, small_plan):
    """--port and --camera are independent: the simulated stage with a real OpenCV capture (an image sequence)."""
    plan = replace(small_plan, plates=(PlateArea(0, 0, 1.2, 1.0),), focal_offsets_um=(-10, 10))
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (8, 128, 160, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"frame_{i:02d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    archive = Archive.create(tmp_path / "archive")
    with SimulatedMicroscope(plan) as microscope, \
            OpenCVCamera(str(tmp_path / "frame_%02d.png"), discard=1) as camera:
        report = ScanRunner(microscope.stage, camera, plan).run(archive, KEY, devices={"camera": camera.settings})
    assert report.complete
    stack = archive.open_sample(KEY).stacks.values[0]
    # after each move one frame is dropped: layer 0 is frame 1, layer 1 is frame 3
    assert np.array_equal(stack[0], frames[1]) and np.array_equal(stack[1], frames[3])


def test_opencv_camera_errors(tmp_path):
    with pytest.raises(CameraError, match="could not be opened"):
        OpenCVCamera(str(tmp_path / "none_%02d.png")).connect()
    cv2.imwrite(str(tmp_path / "one_00.png"), np.zeros((8, 8, 3), np.uint8))
    with OpenCVCamera(str(tmp_path / "one_%02d.png"), discard=0) as camera:
        assert camera.snap().shape == (8, 8, 3)
        with pytest.raises(CameraError, match="returned no frame"):
            camera.snap()


def test_scan_on_a_marlin_stage(tmp_path, small_plan):
    archive = Archive.create(tmp_path / "archive")
    with SimulatedMicroscope(small_plan, seed=4, dialect="marlin", reply_timeout_s=0.5) as microscope:
        report = ScanRunner(microscope.stage, microscope.camera, small_plan).run(archive, KEY)
        assert "M400" in microscope.controller.lines and "M114" in microscope.controller.lines
    assert report.complete
    planned = np.array([(p.x_mm, p.y_mm) for p in small_plan.positions()])
    np.testing.assert_allclose(archive.open_sample(KEY).stage_xy_mm.values, planned, atol=0.01)


def test_ctrl_c_keeps_complete_positions_and_holds_the_stage(tmp_path, small_plan):
    archive = Archive.create(tmp_path / "archive")

    def on_progress(progress):
        if progress.done == 1:
            raise KeyboardInterrupt

    with SimulatedMicroscope(small_plan, seed=1) as microscope:
        with pytest.raises(KeyboardInterrupt):
            ScanRunner(microscope.stage, microscope.camera, small_plan, on_progress=on_progress).run(archive, KEY)
    # the interrupt came while position 2 was being written: it is kept, nothing after it
    assert catalog.positions_done(archive.sample_path(KEY)).tolist() == [True, True, False, False]
    assert archive.samples()[0].status == "acquiring"


@pytest.mark.parametrize("controller_options, faults", [
    ({"settings": {13: 1}}, ()),  # reports in inches
    ({"start_delay_s": 0.03}, ()),  # '?' answered Idle before a queued move starts
    ({}, [Fault("lost_query", at_move=n) for n in (2, 9, 17)]),  # lost status requests
], ids=["inches", "early-idle", "lost-query"])
def test_scan_ends_right_whatever_the_controller_reports(tmp_path, small_plan, scan, controller_options, faults):
    """Issue 15: never silently wrong: the scan finishes with the planned positions and focal heights."""
    archive = Archive.create(tmp_path / "archive")
    report = scan(archive, KEY, small_plan, seed=4, faults=faults, controller_options=controller_options,
                  status_retry_s=0.1)
    assert report.complete
    ds = archive.open_sample(KEY)
    planned = np.array([(p.x_mm, p.y_mm) for p in small_plan.positions()])
    np.testing.assert_allclose(ds.stage_xy_mm.values, planned, atol=0.0025)
    focal = np.tile(small_plan.focal_z_mm(), (4, 1))
    np.testing.assert_allclose(ds.stage_z_mm.values, focal, atol=0.0025)
    converted = ds.attrs["acquire_devices"]["controller"]["report_inches_converted"]
    assert converted == ("settings" in controller_options)


def test_focal_heights_reached_are_recorded(uninterrupted, small_plan):
    archive, _ = uninterrupted
    z = archive.open_sample(KEY).stage_z_mm
    assert z.dims == ("position", "layer") and z.shape == (4, 6)
    np.testing.assert_array_equal(z.values, np.tile(small_plan.focal_z_mm(), (4, 1)))


def test_store_started_before_focal_heights_were_recorded_resumes(tmp_path, small_plan, scan):
    archive = Archive.create(tmp_path / "archive")
    with pytest.raises(StageAlarm):
        scan(archive, KEY, small_plan, seed=4, faults=[Fault("alarm", at_move=9)])
    path = archive.sample_path(KEY)
    catalog.store.drop_variables(path, ["stage_z_mm"])  # as a store written before
    scan(archive, KEY, small_plan, seed=4)
    z = catalog.read_array(path, "stage_z_mm")
    assert np.isnan(z[0]).all() and not np.isnan(z[1:]).any()


def test_garbled_report_stops_with_one_line(tmp_path, small_plan, scan):
    archive = Archive.create(tmp_path / "archive")
    with pytest.raises(StageError, match=r"stopped at position 2/4: .*garbled status report.*\(1 position saved;") as info:
        scan(archive, KEY, small_plan, seed=4, faults=[Fault("garble", at_move=8)])
    assert "\n" not in str(info.value)


def test_plan_beyond_the_soft_limits_is_refused_before_moving(tmp_path, small_plan):
    archive = Archive.create(tmp_path / "archive")
    controller = SimulatedController(soft_limits=True, travel_mm=(1.5, 50.0, 10.0), work_offset=(-1.0, -49.0, -9.0))
    with controller, SimulatedMicroscope(small_plan, controller=controller) as microscope:
        moves = controller.moves
        runner = ScanRunner(microscope.stage, microscope.camera, small_plan)
        with pytest.raises(PlanError, match=r"position 2/4 \(plate 1\) needs x = 1.92 mm, outside the soft limits "
                                            r"of GRBL stage on .* \(x -0.5..1 mm in work coordinates\)"):
            runner.run(archive, KEY)
        assert controller.moves == moves and not archive.exists(KEY)
        assert runner.state is RunState.READY


def test_run_states(tmp_path, small_plan):
    archive = Archive.create(tmp_path / "archive")
    seen = []
    with SimulatedMicroscope(small_plan, seed=1) as microscope:
        runner = ScanRunner(microscope.stage, microscope.camera, small_plan,
                            on_progress=lambda p: seen.append(runner.state))
        assert runner.state is RunState.READY
        runner.run(archive, KEY)
    assert set(seen) == {RunState.RUNNING} and runner.state is RunState.DONE
    with SimulatedMicroscope(small_plan, seed=1, faults=[Fault("drop", at_move=3)]) as microscope:
        runner = ScanRunner(microscope.stage, microscope.camera, small_plan)
        with pytest.raises(StageDisconnected):
            runner.run(Archive.create(tmp_path / "other"), KEY)
    assert runner.state is RunState.FAILED


def test_runner_follows_the_plan_steps(tmp_path, small_plan):
    """The runner executes plan.steps(): a plan that yields other steps is scanned as it says."""
    class Reversed(type(small_plan)):
        def steps(self):
            yield "plate", 0
            for position in reversed(self.positions()):
                yield "move", position
                for layer, z in reversed(list(enumerate(self.focal_z_mm()))):
                    yield "snap", (layer, z)

    plan = Reversed(**{f: getattr(small_plan, f) for f in small_plan.__dataclass_fields__})
    archive = Archive.create(tmp_path / "archive")
    with SimulatedMicroscope(plan, seed=4) as microscope:
        ScanRunner(microscope.stage, microscope.camera, plan).run(archive, KEY)
        lines = [line for line in microscope.controller.lines if line.startswith("G0")]
    assert lines[0] == "G0 X0.6400 Y1.5360 Z1.0500" and lines[1] == "G0 Z1.0300"  # the last position first

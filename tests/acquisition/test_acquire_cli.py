"""``sedarchive acquire``: plans from options and files, simulated scans, faults and resuming."""
from __future__ import annotations

import pytest

import catalog
from catalog import Archive, SampleKey
from acquisition.sim import read_plate_truth, read_truth
from sedarchive.cli import main

SMALL = ["--core", "SIM-3", "--depth", "10-12", "--area", "0,0,2.5,2", "--frame", "160x128", "--pixel-size", "8"]
KEY = SampleKey("SIM-3", 10, 12)


def _without_warnings(err: str) -> str:
    """stderr less the plan's warnings (a plan without overlap is warned about)."""
    return "".join(line for line in err.splitlines(keepends=True) if not line.startswith("warning: "))


def test_simulated_scan_from_options(tmp_path, capsys):
    assert main(["acquire", str(tmp_path / "a"), *SMALL, "--simulate", "--plates", "2"]) == 0
    out, err = capsys.readouterr()
    assert "8/8" in out and "acquired" in out
    assert "position 8/8" in err and "plate 2 of 2" in err and "left" in err
    archive = Archive.open(tmp_path / "a")
    assert [r.status for r in archive.samples()] == ["acquired"]
    assert archive.open_sample(KEY).stacks.shape == (8, 6, 128, 160, 3)
    truth = read_truth(archive.sample_path(KEY))
    assert sorted(set(truth.position)) == list(range(8))
    grains, appearances = read_plate_truth(archive.sample_path(KEY))  # the plate truth of both plates
    assert set(grains.plate) == {0, 1} and grains.in_scan.any()
    assert set(appearances.position) == set(range(8))
    assert set(appearances.loc[appearances.position >= 4, "plate"]) == {1}


def test_list_checks_and_prints_without_motion(tmp_path, capsys):
    assert main(["acquire", str(tmp_path / "a"), *SMALL, "--simulate", "--list"]) == 0
    out = capsys.readouterr().out
    assert "4 positions x 6 focal layers = 24 frames of 160x128 px" in out
    assert not (tmp_path / "a").exists()


def test_plan_file_and_overrides(tmp_path, capsys):
    plan = tmp_path / "plan.yaml"
    plan.write_text("plates: ['0,0,2.5,2']\nwidth: 160\nheight: 128\npixel_size_um: 8\n"
                    "focal_offsets_um: [-20, 0, 20]\nsettle_s: 0\n")
    args = ["acquire", str(tmp_path / "a"), "--core", "SIM-3", "--depth", "10-12", "--simulate", "--plan", str(plan)]
    assert main([*args, "--overlap", "0.5", "--quiet"]) == 0
    ds = Archive.open(tmp_path / "a").open_sample(KEY)
    assert ds.stacks.shape[:2] == (9, 3)  # 3 x 3 positions with half overlap (4 without), 3 layers
    assert ds.attrs["focal_offsets_um"] == [-20.0, 0.0, 20.0]


def test_fault_then_resume(tmp_path, capsys):
    args = ["acquire", str(tmp_path / "a"), *SMALL, "--simulate", "--quiet"]
    assert main([*args, "--sim-fault", "alarm@9"]) == 2
    err = _without_warnings(capsys.readouterr().err)
    assert err.startswith("sedarchive acquire: error: scan of SIM-3_10-12cm stopped at position 2/4: ")
    assert "ALARM:1 (hard limit triggered" in err and "during 'G0 Z" in err and "(1 position saved;" in err
    assert "run the same scan again to resume" in err
    assert len(err.strip().splitlines()) == 1
    path = Archive.open(tmp_path / "a").sample_path(KEY)
    assert catalog.positions_done(path).tolist() == [True, False, False, False]
    assert main(args) == 0
    assert "3 positions taken now, 4/4" in capsys.readouterr().out
    assert catalog.read_attrs(path)["status"] == "acquired"


@pytest.mark.parametrize("extra, message", [
    (["--port", "/dev/ttyNOPE0"], "cannot open serial port /dev/ttyNOPE0"),
    (["--simulate", "--overlap", "1.5"], "overlap 1.5 must be"),
    (["--simulate", "--frame", "big"], "--frame 'big' is not WIDTHxHEIGHT"),
    (["--simulate", "--sim-fault", "meltdown@3"], "unknown fault 'meltdown'"),
    (["--simulate", "--camera", "/nonexistent/cam_%02d.png"], "could not be opened"),
    (["--simulate", "--travel", "1,1,5"], "outside the stage travel 0..1 mm"),
    (["--simulate", "--sim-fault", "garble@3"], "garbled status report '<Idle|MPos:"),
    (["--simulate", "--dialect", "marlin", "--sim-fault", "garble@3"], "M114 gave no position"),
])
def test_bad_input_is_one_line(tmp_path, capsys, extra, message):
    assert main(["acquire", str(tmp_path / "a"), *SMALL, *extra]) == 2
    err = _without_warnings(capsys.readouterr().err).strip()
    assert err.startswith("sedarchive acquire: error: ") and message in err
    assert len(err.splitlines()) == 1


def test_port_or_simulate_is_required(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["acquire", str(tmp_path / "a"), *SMALL])
    assert info.value.code == 2
    assert "--port" in capsys.readouterr().err


def test_serial_port_with_the_simulated_camera(tmp_path, capsys):
    """--port and --camera are independent: a stage on a serial port photographed by the simulated camera."""
    from acquisition.sim.controller import SimulatedController

    with SimulatedController(start_in_alarm=True) as controller:
        args = ["acquire", str(tmp_path / "a"), *SMALL, "--port", controller.port, "--camera", "sim", "--quiet"]
        assert main(args) == 2
        assert "--unlock" in capsys.readouterr().err
        assert main([*args, "--unlock"]) == 0
        assert "$X" in controller.lines and "G90" in controller.lines
    archive = Archive.open(tmp_path / "a")
    ds = archive.open_sample(KEY)
    assert ds.attrs["status"] == "acquired"
    assert ds.attrs["acquire_devices"]["stage"].startswith("GRBL stage on /dev/")
    assert ds.stacks.values.std() > 10  # real pictures of grains on the plate, not blank frames
    assert len(read_truth(archive.sample_path(KEY))) > 0


def test_overlap_narrower_than_the_largest_grain_is_warned_and_auto_fixes_it(tmp_path, capsys):
    assert main(["acquire", str(tmp_path / "a"), *SMALL, "--simulate", "--list", "--overlap", "0.05"]) == 0
    err = capsys.readouterr().err
    assert "warning: overlap 5% shares 0.0512 mm between frames, less than the largest grain expected (0.5 mm)" in err
    assert "--overlap auto would use 49%" in err
    assert main(["acquire", str(tmp_path / "a"), *SMALL, "--simulate", "--list", "--overlap", "auto",
                 "--largest-grain", "0.3"]) == 0
    out, err = capsys.readouterr()
    assert "overlap 30%" in out and "warning: overlap" not in err
    assert main(["acquire", str(tmp_path / "a"), *SMALL, "--simulate", "--list", "--overlap", "lots"]) == 2
    assert "--overlap 'lots' is not a fraction (e.g. 0.3) or auto" in capsys.readouterr().err


def test_scan_records_the_plate_of_each_position(tmp_path, capsys):
    assert main(["acquire", str(tmp_path / "a"), *SMALL, "--simulate", "--plates", "2", "--quiet"]) == 0
    attrs = catalog.read_attrs(Archive.open(tmp_path / "a").sample_path(KEY))
    assert attrs["plate_of_position"] == [0, 0, 0, 0, 1, 1, 1, 1]

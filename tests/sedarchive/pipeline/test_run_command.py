"""`sedarchive run` and `sedarchive demo`: their options, and bad input."""
from __future__ import annotations

import argparse

import pytest

from sedarchive.cli import build_parser, main
from sedarchive.commands.run import _stage_modules
from sedarchive.pipeline import STAGES


def test_stage_options_do_not_collide():
    """CONTRIBUTING: every stage adds only its own options, and their names differ across stages."""
    owner: dict[str, str] = {}
    clashes = []
    for stage, module in _stage_modules():
        parser = argparse.ArgumentParser(add_help=False)
        module.add_stage_options(parser)
        for action in parser._actions:
            for option in action.option_strings:
                if option in owner:
                    clashes.append(f"{option} ({owner[option]} and {stage.name})")
                owner[option] = stage.name
    assert not clashes, "stage options collide: " + ", ".join(clashes)


def test_run_accepts_every_stage_option():
    parser = build_parser()
    run_parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["run"]
    options = {o for a in run_parser._actions for o in a.option_strings}
    for stage, module in _stage_modules():
        own = argparse.ArgumentParser(add_help=False)
        module.add_stage_options(own)
        assert {o for a in own._actions for o in a.option_strings} <= options, stage.name
    assert {"--scheduler", "--cluster", "--workers", "--core", "--depth"} <= options
    assert [s.name for s, _ in _stage_modules()] == [s.name for s in STAGES]


def test_run_on_a_missing_archive_is_one_line(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sedarchive run: error: no archive at") and "\n" not in err


def test_run_with_no_acquired_samples(archive, capsys):
    assert main(["run", str(archive.root)]) == 2
    assert "no samples with status acquired or later" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--cores", "9"], ["--frame", "big"], ["--frame", "32x32"]])
def test_demo_rejects_bad_sizes(tmp_path, capsys, argv):
    assert main(["demo", str(tmp_path / "demo"), *argv]) == 2
    assert capsys.readouterr().err.startswith("sedarchive demo: error:")
    assert not (tmp_path / "demo").exists()


@pytest.mark.slow
def test_demo_end_to_end_small(tmp_path, capsys):
    """The demo on 2 cores x 3 depths of one position each: report, proportions, and the snippet."""
    import xarray as xr

    root = tmp_path / "demo"
    code = main(["demo", str(root), "--positions", "1", "--workers", "2", "--epochs", "1", "--k", "3",
                 "--umap-points", "0", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert (root / "report" / "index.html").is_file()
    import json

    timings = json.loads((root / "run.json").read_text())["stages_s"]
    assert list(timings) == ["segment", "train", "encode", "cluster", "report"]
    assert all(seconds > 0 for seconds in timings.values())
    assert "run: segment" in (root / "report" / "index.html").read_text()
    with xr.open_zarr(root / "proportions.zarr") as props:
        assert props.sizes["sample"] == 6
        assert sorted(set(props["core"].values.tolist())) == ["DEMO-1", "DEMO-2"]
    assert "import xarray as xr" in out and f"xr.open_zarr('{root.resolve() / 'proportions.zarr'}')" in out

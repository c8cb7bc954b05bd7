"""``sedarchive train`` and ``sedarchive encode`` from the command line."""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from grain_factory import make_segmented_sample

from catalog import SampleKey, read_array, read_attrs
from sedarchive.cli import main

KEYS = [SampleKey("CLI-1", 100, 102), SampleKey("CLI-2", 3, 5)]
TINY_FILE = {"preset": "cpu", "epochs": 1, "batch_size": 8,
             "encoder": {"input_size": 32, "latent_dim": 8, "small_widths": [8, 16], "small_blocks": [1, 1],
                         "decoder_width": 32}}


@pytest.fixture
def segmented(archive, tmp_path):
    for i, key in enumerate(KEYS):
        make_segmented_sample(archive, key, n=10, n_layers=2, size=32, seed=i)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_FILE))
    return archive, path


def test_train_then_encode(segmented, capsys):
    archive, settings = segmented
    root = str(archive.root)
    assert main(["train", root, "--encoder-settings", str(settings), "--core", "CLI-1", "--seed", "3"]) == 0
    out = capsys.readouterr()
    assert "epoch 1/1" in out.err and "trained on 6 grains from 1 sample(s)" in out.out
    assert main(["encode", root, "--workers", "1", "--quiet", "--device", "cpu"]) == 0
    assert "encoded 2 sample(s), 20 grains" in capsys.readouterr().out
    for key in KEYS:
        assert read_attrs(archive.sample_path(key))["status"] == "encoded"
        assert np.isfinite(read_array(archive.sample_path(key), "latent")).all()
    assert main(["train", root, "--encoder-settings", str(settings), "--core", "CLI-1", "--seed", "3", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "reused on 6 grains" in out and "final loss" in out


@pytest.mark.parametrize("extra, message", [
    (["--weights", "/nonexistent/resnet152.pth", "--preset", "paper"], "weights file /nonexistent/resnet152.pth does not exist"),
    (["--latent-dim", "0"], "latent_dim"),
    (["--depth", "500-600"], "no samples with status segmented"),
])
def test_bad_input_is_one_line_and_exit_2(segmented, capsys, extra, message):
    archive, settings = segmented
    code = main(["train", str(archive.root), "--encoder-settings", str(settings), "--quiet", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert err.startswith("sedarchive train: error:")
    assert not list(archive.models_dir.glob("encoder-*"))


def test_encode_without_a_model(segmented, capsys):
    archive, _ = segmented
    assert main(["encode", str(archive.root), "--quiet", "--workers", "1"]) == 2
    assert "run `sedarchive train` first" in capsys.readouterr().err

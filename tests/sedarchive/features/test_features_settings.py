"""Encoder settings: presets, settings files, command-line precedence."""
from __future__ import annotations

import argparse
import json

import pytest

from sedarchive.commands import encode as encode_cmd
from sedarchive.commands import train as train_cmd
from sedarchive.errors import InputError
from sedarchive.features.settings import EncoderSettings, TrainSettings, load_settings_file, preset


def test_presets():
    paper = preset("paper")
    assert (paper.encoder.backbone, paper.encoder.input_size, paper.encoder.latent_dim) == ("resnet152", 280, 512)
    assert (paper.learning_rate, paper.beta, paper.encoder.shared_branches) == (1e-4, 1.0, False)
    cpu = preset("cpu")
    assert cpu.encoder.backbone == "small" and cpu.encoder.input_size == 64 and 32 <= cpu.encoder.latent_dim <= 64
    with pytest.raises(InputError, match="unknown preset"):
        preset("huge")


def test_settings_file_yaml_and_json(tmp_path):
    yml = tmp_path / "enc.yaml"
    yml.write_text("preset: cpu\nepochs: 3\nencoder:\n  latent_dim: 40\n  small_widths: [8, 16]\n  small_blocks: [1, 2]\n")
    s = load_settings_file(yml)
    assert s.epochs == 3 and s.encoder.latent_dim == 40 and s.encoder.small_widths == (8, 16)
    assert s.encoder.input_size == 64  # from the cpu preset
    js = tmp_path / "enc.json"
    js.write_text(json.dumps({"beta": 0.5, "encoder": {"shared_branches": True}}))
    s = load_settings_file(js)
    assert s.beta == 0.5 and s.encoder.shared_branches and s.encoder.backbone == "resnet152"
    # the recorded form goes back to the same settings
    assert TrainSettings(**{**s.to_dict(), "encoder": s.to_dict()["encoder"]}) == s


@pytest.mark.parametrize("text, message", [
    ("epochz: 3\n", "unknown setting"),
    ("encoder:\n  widht: 3\n", "unknown setting"),
    ("encoder:\n  backbone: vgg16\n", "backbone"),
    ("- a\n- b\n", "mapping"),
    ("epochs: [\n", "not valid YAML"),
])
def test_bad_settings_files(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_settings_file(path)
    with pytest.raises(InputError, match="does not exist"):
        load_settings_file(tmp_path / "nope.yaml")


def test_options_override_file_and_preset(tmp_path):
    path = tmp_path / "enc.yaml"
    path.write_text("preset: cpu\nepochs: 3\nseed: 5\n")
    parser = argparse.ArgumentParser()
    train_cmd.add_stage_options(parser)
    encode_cmd.add_stage_options(parser)  # the two stages' options live together under `run`
    args = parser.parse_args(["--encoder-settings", str(path), "--epochs", "7", "--latent-dim", "48",
                              "--include-flagged", "--device", "cpu"])
    s = train_cmd.settings_from(args)
    assert (s.epochs, s.seed, s.encoder.latent_dim, s.include_flagged, s.device) == (7, 5, 48, True, "cpu")
    assert s.encoder.backbone == "small"
    s = train_cmd.settings_from(parser.parse_args([]))
    assert s == preset("default") and s.encoder.invariant  # the paper network, orientation-free
    e = encode_cmd.settings_from(parser.parse_args(["--encode-batch-size", "8", "--encoder", "abc"]))
    assert (e.force, e.batch_size, e.model, e.device) == (False, 8, "abc", "auto")
    sub = argparse.ArgumentParser().add_subparsers()
    verb = encode_cmd.add_parser(sub)
    e = encode_cmd.settings_from(verb.parse_args(["ARCHIVE", "--force", "--device", "cpu"]))
    assert (e.force, e.device, e.model) == (True, "cpu", None)


def test_invalid_values():
    with pytest.raises(InputError):
        EncoderSettings(input_size=8)
    with pytest.raises(InputError):
        TrainSettings(device="tpu")
    with pytest.raises(InputError):
        TrainSettings(epochs=0)

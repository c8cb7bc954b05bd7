"""PipelineSettings: one settings object per stage; a stage without settings runs with its defaults."""
from __future__ import annotations

import pytest

from catalog import Archive
from catalog.errors import SedarchiveError
from sedarchive.clustering.stage import ClusterSettings
from sedarchive.errors import InputError
from sedarchive.pipeline import STAGES, PipelineSettings, default_settings


def test_every_stage_has_defaults_and_given_settings_win():
    settings = PipelineSettings(cluster=ClusterSettings(k=7))
    assert settings.for_stage("cluster").k == 7
    for stage in STAGES:
        assert settings.for_stage(stage.name) is not None
    assert default_settings("train").encoder.backbone == "resnet152"  # the paper network (default preset)
    assert default_settings("train").encoder.invariant
    assert default_settings("encode").batch_size == 64


def test_unknown_stage_names_are_refused():
    with pytest.raises(SedarchiveError, match="unknown stage\\(s\\) segmnet"):
        PipelineSettings.from_mapping({"segmnet": None})


@pytest.mark.parametrize("name", ["train", "encode", "cluster"])
def test_none_settings_mean_the_defaults_not_a_crash(tmp_path, name):
    """The stages used to dereference None; now None means the defaults and the usual error comes out."""
    archive = Archive.create(tmp_path / "a")
    stage = next(s for s in STAGES if s.name == name)
    try:
        stage.load()(archive, [], None, None, quiet=True)
    except (InputError, SedarchiveError) as err:  # e.g. no grains to train on / no encoder yet
        assert "NoneType" not in str(err)

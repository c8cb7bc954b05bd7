"""Input that used to be accepted without complaint, or that crashed: refused in one line."""
from __future__ import annotations

import pytest

from catalog import Archive, ArchiveError, SampleKey
from catalog.errors import SedarchiveError
from sedarchive.counting.labels import LabelsError, load_labels
from sedarchive.counting.proportions import Proxy, proxies_from
from sedarchive.dask.tasks import Refused, refusing
from sedarchive.errors import InputError
from sedarchive.ingest import plan_ingest
from sedarchive.settings_files import SettingsError, read_settings_file


def test_overlapping_depth_intervals_of_one_core_are_refused(tmp_path):
    archive = Archive.create(tmp_path / "a")
    archive.create_sample(SampleKey("C", 10, 12), 1, 1, 4, 4)
    with pytest.raises(ArchiveError, match="C_11-13cm overlaps C_10-12cm"):
        archive.create_sample(SampleKey("C", 11, 13), 1, 1, 4, 4)
    archive.create_sample(SampleKey("C", 12, 14), 1, 1, 4, 4)  # touching is fine
    archive.create_sample(SampleKey("D", 11, 13), 1, 1, 4, 4)  # another core is fine


@pytest.mark.parametrize("offsets, pixel, message", [
    ([0.0, float("nan")], None, "focal offsets must be finite"),
    ([0.0, float("inf")], None, "focal offsets must be finite"),
    ([0.0, 1.0], -2.0, "pixel size must be a positive"),
    ([0.0, 1.0], float("nan"), "pixel size must be a positive"),
])
def test_bad_optics_are_refused(tmp_path, offsets, pixel, message):
    archive = Archive.create(tmp_path / "a")
    with pytest.raises(ArchiveError, match=message):
        archive.create_sample(SampleKey("C", 0, 1), 1, 2, 4, 4, focal_offsets_um=offsets, pixel_size_um=pixel)
    assert not archive.sample_path(SampleKey("C", 0, 1)).exists()


@pytest.mark.parametrize("core", ["A..B", "A\n", "../x", "A/B", ".A"])
def test_bad_core_names_are_refused(core):
    with pytest.raises(ArchiveError, match="core .* must be"):
        SampleKey(core, 0, 1)
    with pytest.raises(ArchiveError):
        SampleKey.from_name(f"{core}_0-1cm")


@pytest.mark.parametrize("name", ["a/b", "../up", "", "1x", "x y", "a" * 65])
def test_proxy_names_that_are_not_plain_words_are_refused(name):
    with pytest.raises(InputError, match="proxy name"):
        proxies_from({name: {"numerator": ["quartz"], "denominator": ["quartz", "dark"]}})
    assert Proxy("ok_name2", ("a",), ("a", "b")).kind == "fraction"


def test_non_utf8_files_are_one_line_errors(tmp_path):
    archive = Archive.create(tmp_path / "a")
    archive.labels_path.write_bytes(b"classes: [qu\xe4rtz]\n")
    with pytest.raises(LabelsError, match="not UTF-8") as err:
        load_labels(archive)
    assert "\n" not in str(err.value)
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(b"path,position,layer\nf\xe4\xff.png,0,0\n")
    with pytest.raises(InputError, match="m.csv: not UTF-8"):
        plan_ingest(manifest)
    settings = tmp_path / "s.yaml"
    settings.write_bytes(b"k: \xff\xfe\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        read_settings_file(settings, "cluster")


def test_yaml_aliases_are_refused_in_labels(tmp_path):
    archive = Archive.create(tmp_path / "a")
    bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        bomb.append(f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join(['*' + chr(96 + i)] * 9)}]")
    archive.labels_path.write_text("\n".join(bomb) + "\n")
    with pytest.raises(LabelsError, match=r"aliases \(\*a\) are not allowed"):
        load_labels(archive)


@pytest.mark.parametrize("field, value", [("by", "[1, 2]"), ("at", "{x: 1}"), ("reason", "7")])
def test_decision_fields_are_type_checked(tmp_path, field, value):
    archive = Archive.create(tmp_path / "a")
    archive.labels_path.write_text(f"version: 1\nclusters:\n  3: {{class: quartz, {field}: {value}}}\n")
    with pytest.raises(LabelsError, match=f"cluster 3: {field} must be text"):
        load_labels(archive)


def test_input_errors_on_workers_come_back_as_refusals_not_retried_exceptions():
    calls = []

    def bad(x):
        calls.append(x)
        raise InputError(f"frame {x} is bad")

    assert refusing(bad, 3) == Refused("frame 3 is bad") and calls == [3]
    with pytest.raises(ZeroDivisionError):  # other errors still raise (a dead worker is retried)
        refusing(lambda: 1 / 0)
    assert issubclass(InputError, SedarchiveError)

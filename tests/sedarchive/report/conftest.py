"""Fixtures of the report and export tests: a small clustered archive, built once and copied per test."""
from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest


def load_factory():
    """The archive factory module (loaded by path: the test folders are not packages)."""
    name = "sedarchive_test_archive_factory"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("archive_factory.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def clustered_template(tmp_path_factory):
    """Built once per session, even though the review tests declare this fixture again."""
    factory = load_factory()
    if getattr(factory, "cached_template", None) is None:
        factory.cached_template = factory.make_archive(tmp_path_factory.mktemp("template") / "cores")
    return factory.cached_template


@pytest.fixture
def archive_factory():
    return load_factory()


@pytest.fixture
def clustered_archive(clustered_template, tmp_path):
    """A fresh copy of the clustered archive (tests change labels, proportions, clusters)."""
    from catalog import Archive

    shutil.copytree(clustered_template.root, tmp_path / "cores")
    return Archive.open(tmp_path / "cores")

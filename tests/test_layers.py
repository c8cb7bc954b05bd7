"""The layers of DESIGN.md, checked by import-linter on the contracts in pyproject.toml."""
from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("catalog", "acquisition", "sedarchive")


def test_import_contracts_hold():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    n = len(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"])
    assert n >= 6  # bottom layer, two independent trees, no simulator at run time, sedarchive's layers, ...
    assert f"Contracts: {n} kept, 0 broken" in proc.stdout


def _project_modules():
    for package in PROJECT:
        yield from sorted((ROOT / package).rglob("*.py"))


def _names_a_project_module(node: ast.AST) -> bool:
    """A string (or f-string) that starts with a dotted name of this project: ``sedarchive.x``, ``catalog.y:f``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        text = str(node.values[0].value)
    else:
        return False
    return bool(re.match(rf"^({'|'.join(PROJECT)})(\.|$)", text))


def _is_project_module(text: str) -> bool:
    """``text`` is the dotted name of a module or package of this project (``sedarchive.commands.segment``)."""
    if not re.fullmatch(rf"({'|'.join(PROJECT)})(\.[A-Za-z_]\w*)+", text):
        return False
    base = ROOT.joinpath(*text.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def test_no_project_module_is_loaded_by_name():
    """importlib / __import__ never load this project's modules: the import linter could not see those edges.

    Loading an outside module by name stays allowed (optional stacks such as dask_jobqueue, a test's
    stand-in pipeline stage); so a call whose argument names a project module fails, and so does any
    string holding the dotted name of a project module, or ``"package.module:function"`` (a reference
    meant to be imported later).
    """
    found = []
    for path in _project_modules():
        tree = ast.parse(path.read_text(), str(path))
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in ("import_module", "__import__") and node.args and _names_a_project_module(node.args[0]):
                    found.append(f"{where}: {name} of a project module")
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                    and _is_project_module(node.value.partition(":")[0])):
                found.append(f"{where}: {node.value!r} names a project module to import later")
    assert not found, "\n".join(found)


def test_the_name_check_catches_the_old_patterns():
    """The check above fails on what the pipeline and the command line used to do."""
    bad = ast.parse('importlib.import_module(f"sedarchive.commands.{verb}")').body[0].value
    assert _names_a_project_module(bad.args[0])
    assert _names_a_project_module(ast.parse('"sedarchive.segmentation.stage"').body[0].value)
    assert not _names_a_project_module(ast.parse('"dask_jobqueue"').body[0].value)
    assert _is_project_module("sedarchive.commands.segment") and _is_project_module("sedarchive.counting")
    assert not _is_project_module("catalog.yaml")


def test_catalog_imports_without_heavy_stacks():
    code = ("import sys, catalog; bad = {'torch', 'serial', 'cv2', 'acquisition', 'sedarchive'} & set(sys.modules); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_cli_help_does_not_import_torch():
    code = ("import sys; from sedarchive.cli import build_parser; build_parser().format_help(); "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_settings_files_read_alike_for_every_stage(tmp_path):
    """One loader: the same error class and message format for the segment, encoder, cluster and report files."""
    from sedarchive.clustering.stage import ClusterSettings
    from sedarchive.features.settings import load_settings_file
    from sedarchive.report import ReportSettings
    from sedarchive.segmentation.settings import SegmentSettings
    from sedarchive.settings_files import SettingsError

    path = tmp_path / "bad.toml"
    path.write_text("nonsense_key = 3\n")
    for what, load in (("segment", SegmentSettings.from_yaml), ("encoder", load_settings_file),
                       ("cluster", ClusterSettings.from_file), ("report", ReportSettings.from_file)):
        try:
            load(path)
        except SettingsError as err:
            assert str(err).startswith(f"{what} settings {path}: unknown setting 'nonsense_key' (known: "), str(err)
        else:
            raise AssertionError(f"{what}: an unknown setting was accepted")

"""The layers of DESIGN.md, checked by import-linter on the contracts in pyproject.toml."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kept = re.search(r"Contracts: (\d+) kept, 0 broken", proc.stdout)
    assert kept and int(kept.group(1)) >= 4, proc.stdout  # layers, independence, and the two of acquisition


def test_catalog_imports_without_heavy_stacks():
    code = ("import sys, catalog; bad = {'torch', 'serial', 'cv2', 'acquisition', 'sedarchive'} & set(sys.modules); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_cli_help_does_not_import_torch():
    code = ("import sys; from sedarchive.cli import build_parser; build_parser().format_help(); "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)

"""The installed software version (light: no store libraries), recorded in stores and shown by ``--version``."""
from __future__ import annotations


def software_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sedarchive")
    except PackageNotFoundError:  # running from a checkout without install
        return "0+unknown"

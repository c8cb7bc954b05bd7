"""One reader for every settings file of the stages: YAML, TOML or JSON, one error class, one format.

Every stage's settings file (``--segment-settings``, ``--encoder-settings``, ``--cluster-settings``,
``--report-settings``) goes through :func:`read_settings_file` and :func:`check_keys`, so a mistake
reads the same whatever the stage::

    cluster settings my.yaml: unknown setting 'kk' (known: batch_size, init_size, k, ...)
    report settings my.yaml: not valid YAML: mapping values are not allowed here

All of them raise :class:`SettingsError` (a stage may raise a subclass that is also its own error).
"""
from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sedarchive.errors import InputError


class SettingsError(InputError):
    """A settings file that is missing, unreadable, not a mapping, or names an unknown setting."""


def read_settings_file(path: str | Path, what: str, *, section: str | None = None,
                       error: type[SettingsError] = SettingsError) -> dict[str, Any]:
    """The mapping held by a settings file (``.toml``: TOML, ``.json``: JSON, anything else: YAML).

    Parameters
    ----------
    path
        The file.
    what
        The stage, for messages (``"cluster"`` gives ``cluster settings PATH: ...``).
    section
        When the file's mapping has this key holding a mapping, that mapping is returned (a file
        may hold the settings of several stages, each under its name).
    error
        The class raised (:class:`SettingsError` or a subclass).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "cluster.toml"
    >>> _ = path.write_text("[cluster]\\nk = 7\\n")
    >>> read_settings_file(path, "cluster", section="cluster")
    {'k': 7}
    """
    path = Path(path)
    where = f"{what} settings {path}"
    if not path.is_file():
        raise error(f"{where}: does not exist")
    suffix = path.suffix.lower()
    kind = {".toml": "TOML", ".json": "JSON"}.get(suffix, "YAML")
    try:
        text = path.read_text(encoding="utf-8")
        if kind == "TOML":
            values = tomllib.loads(text)
        elif kind == "JSON":
            values = json.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text)
    except Exception as err:  # noqa: BLE001 - yaml, toml and json errors alike, and undecodable bytes
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise error(f"{where}: not valid {kind}: {reason}") from None
    values = {} if values is None else values
    if section and isinstance(values, dict) and isinstance(values.get(section), dict):
        values = values[section]
    if not isinstance(values, dict):
        raise error(f"{where}: expected a mapping of settings, got {type(values).__name__}")
    return dict(values)


def check_keys(values: Mapping[str, Any], known: Iterable[str], source: str,
               error: type[SettingsError] = SettingsError) -> None:
    """Raise ``error`` naming every key of ``values`` that is not ``known`` (and listing the known ones).

    Examples
    --------
    >>> check_keys({"kk": 1}, ["k", "seed"], "cluster settings a.yaml")
    Traceback (most recent call last):
    ...
    sedarchive.settings_files.SettingsError: cluster settings a.yaml: unknown setting 'kk' (known: k, seed)
    """
    known = sorted(known)
    unknown = sorted(set(values) - set(known))
    if unknown:
        names = ", ".join(repr(str(k)) for k in unknown)
        raise error(f"{source}: unknown setting{'s' if len(unknown) > 1 else ''} {names} (known: {', '.join(known)})")

"""The run record: the folder ``corelib run --run-dir DIR`` writes, and how a file gets there.

Every file is written atomically (a temporary file in the same folder, then ``os.replace``): a
reader sees the old file or the new one, never half of one. The files are listed in
docs/runs.md; :class:`RunRecord` is what hooks receive.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from corelib._errors import ConfigError, quote

__all__ = [
    "CONFIG_FILE",
    "LOG_FILE",
    "OWN_FILES",
    "PLUGINS_FILE",
    "RESOLVED_CONFIG_FILE",
    "RUN_FILE",
    "RunRecord",
    "json_or_none",
    "write_atomically",
]

RUN_FILE: Final = "run.json"
CONFIG_FILE: Final = "config.yaml"
RESOLVED_CONFIG_FILE: Final = "config.resolved.yaml"
PLUGINS_FILE: Final = "plugins.json"
LOG_FILE: Final = "output.log"
OWN_FILES: Final = frozenset(
    {
        RUN_FILE,
        CONFIG_FILE,
        RESOLVED_CONFIG_FILE,
        PLUGINS_FILE,
        LOG_FILE,
        "status.json",
        "result.json",
    }
)
"""The files corelib writes into a record; :meth:`RunRecord.write_json` leaves them alone."""

_JSON_DEPTH: Final = 100


@attrs.define
class RunRecord:
    """One ``corelib run`` as the run hooks see it.

    ``dir`` is the record's folder (an absolute path), or None when the run is not recorded
    (no ``--run-dir``). ``rank`` is None, except in a torchrun worker of a recorded run: there
    it is the worker's rank and ``dir`` is its launcher's record (which the launcher writes).
    ``argv`` is the process's command line, ``config_path`` the config as given,
    ``overrides`` the override arguments. ``files`` holds what :meth:`write_json` was given,
    by file name, recorded or not.
    """

    dir: Path | None
    argv: tuple[str, ...]
    config_path: str
    overrides: tuple[str, ...]
    rank: int | None = None
    files: dict[str, Any] = attrs.field(factory=dict)

    def write_json(self, name: str, data: Any) -> None:
        """Write ``data`` as JSON into the record's file ``name`` (atomically), or only keep it
        in :attr:`files` when there is no record. ``name`` is a plain file name that is not one
        of corelib's own (``run.json``, ``status.json``, ...). A torchrun worker writes
        ``STEM.rankN.SUFFIX`` instead (``resources.rank1.json``): workers never share a file."""
        if not name or name != Path(name).name or name.startswith(".") or name in OWN_FILES:
            raise ValueError(
                f"write_json: {quote(name)} is not a file name a plugin may write into a run "
                f"record (a plain name, not one of {', '.join(sorted(OWN_FILES))})"
            )
        text = json.dumps(data, indent=2, allow_nan=False)
        self.files[name] = data
        if self.dir is not None:
            write_atomically(self.dir / self.file_name(name), text + "\n")

    def file_name(self, name: str) -> str:
        """The name under which :meth:`write_json` writes ``name`` (a worker's has its rank)."""
        if self.rank is None:
            return name
        path = Path(name)
        return f"{path.stem}.rank{self.rank}{path.suffix}"

    @property
    def writes_record(self) -> bool:
        """Whether this process writes the record's own files (not a worker's)."""
        return self.dir is not None and self.rank is None


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in its folder and ``os.replace``."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(temporary, flags, 0o666)  # the umask applies, as to any new file
        with open(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ConfigError(f"could not write {path}: {error.strerror or error}") from error


def json_or_none(value: Any) -> Any:
    """``value`` as JSON data (dicts with string keys, lists, strings, finite numbers, booleans,
    None; a numpy or torch scalar through its ``.item()``), or None when it is not such data."""
    try:
        return _plain(value, 0)
    except _NotJson:
        return None


class _NotJson(Exception):
    pass


def _plain(value: Any, depth: int) -> Any:
    if depth > _JSON_DEPTH:
        raise _NotJson
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJson
        return value
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise _NotJson
        return {key: _plain(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, depth + 1) for item in value]
    if getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
        return _plain(value.item(), depth + 1)  # a numpy scalar or a 0-d tensor: never imported
    raise _NotJson

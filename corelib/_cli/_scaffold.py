"""``corelib plugins new NAME [--dir DIR]``: write a complete plugin project from templates.

NAME is the distribution name (``acme-tools``); the import package, which is also the plugin
name, is NAME with ``-`` as ``_`` (``acme_tools``). NAME must be plain (letters, digits, ``-``
and ``_``, starting with a letter), so it can never name a path elsewhere (``../x``), and the
package must not shadow corelib or a standard-library module. The project goes into ``./NAME``
or DIR, which must be empty or new unless ``force``; even then no file is written through a
symlink.
"""

from __future__ import annotations

import keyword
import re
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from string import Template

from corelib._cli._scaffold_templates import TEMPLATES
from corelib._errors import ConfigError, quote

__all__ = ["write_plugin_project"]

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_TAKEN = {"corelib": "corelib", "plugins": "corelib's plugins", "tests": "the project's tests"}


def write_plugin_project(name: str, directory: str | None, *, force: bool = False) -> list[Path]:
    """Write the project for distribution ``name`` into ``directory`` (default ``./name``).

    Returns the paths of the files written. Raises :class:`ConfigError` for a bad name or a
    folder that is not empty (without ``force``).
    """
    package = _package_name(name)
    folder = Path(name if directory is None else directory)
    _check_folder(folder, force=force)
    values = {"dist": name, "package": package, "corelib_version": _corelib_version()}
    files = {folder / Template(path).substitute(values): text for path, text in TEMPLATES.items()}
    for path in files:  # all checked before anything is written
        for link in (p for p in [path, *path.parents] if folder in p.parents and p.is_symlink()):
            raise ConfigError(f"plugins new: {link} is a symlink: not writing through it")
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template).substitute(values), encoding="utf-8")
    return list(files)


def _package_name(name: str) -> str:
    if not _NAME.fullmatch(name) or name.endswith(("-", "_")):
        raise ConfigError(
            f"plugins new: bad NAME {quote(name)}: expected a distribution name of letters, "
            "digits, '-' and '_' that starts with a letter and ends with a letter or digit "
            "(at most 64 characters), e.g. acme-tools"
        )
    package = name.replace("-", "_").lower()
    if keyword.iskeyword(package):
        shadowed = "a Python keyword"
    elif package in sys.stdlib_module_names:
        shadowed = "a standard-library module"
    else:
        shadowed = _TAKEN.get(package, "")
    if shadowed:
        raise ConfigError(
            f"plugins new: NAME {quote(name)} makes the package {package!r}, which shadows "
            f"{shadowed}; pick another name"
        )
    return package


def _check_folder(folder: Path, *, force: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"plugins new: {folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise ConfigError(
            f"plugins new: the folder {folder} is not empty; pick another (--dir DIR) or pass "
            "--force to write the project's files into it"
        )


def _corelib_version() -> str:
    try:
        return version("corelib")
    except PackageNotFoundError:
        return "(unknown version)"

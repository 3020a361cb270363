"""Configs that plugins ship: the registry group ``configs``, usable wherever a file is expected.

A plugin registers a config file as ``registry.register("configs", NAME, "package:path")``: the
file ``path`` (``/``-separated) inside the importable package ``package``, which a wheel
carries as package data. A file outside any package (a repository's examples, reached through an
editable install) may be registered as an absolute :class:`pathlib.Path`. Finding the file
imports the package (the plugin's own, light by contract) and nothing else.

:func:`find_config` turns what the user typed into a file: a file that exists wins, then a
registered config name (qualified, or short where unique). :func:`copy_config` is ``corelib cp``.
"""

from __future__ import annotations

import ast
import difflib
import importlib.resources
import itertools
import os
import shutil
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from corelib._errors import ConfigError, RegistryError, quote
from corelib._text import describe_exception
from corelib.registry import Entry, registry

__all__ = ["CONFIGS", "config_file", "copy_config", "find_config", "shipped_configs"]

CONFIGS = "configs"
"""The registry group of shipped config files."""
_SUFFIXES = (".py", ".yaml", ".yml", ".json", ".toml")


def shipped_configs() -> list[Entry]:
    """The registered configs, sorted by qualified name."""
    return [entry for entry in registry.entries() if entry.group == CONFIGS]


def config_file(entry: Entry) -> Path:
    """The file a ``configs`` entry names; a :class:`ConfigError` if it is not a file on disk."""
    about = f"config {entry.qualified_name!r} ({registry.origin(entry.qualified_name)})"
    if entry.ref is not None:
        package, _, inside = entry.ref.partition(":")
        relative = PurePosixPath(inside)
        if relative.is_absolute() or ".." in relative.parts or inside.endswith("/"):
            raise ConfigError(
                f"{about}: {quote(entry.ref)} must name a file inside the package "
                "('package:folder/file.yaml', no '..')"
            )
        try:
            folder = importlib.resources.files(package)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a plugin's package must not end the process
            raise ConfigError(
                f"{about}: cannot import package {package!r}: {describe_exception(exc)}"
            ) from exc
        if not isinstance(folder, Path):  # a zip or a namespace package: no one folder
            raise ConfigError(f"{about}: package {package!r} is not a folder on disk")
        file = folder.joinpath(*relative.parts)
    else:
        file = entry.load()  # type: ignore[assignment]
        if not isinstance(file, Path) or not file.is_absolute():
            raise ConfigError(
                f"{about}: registered as {quote(file)}; expected 'package:path/in/package' or "
                "an absolute pathlib.Path"
            )
    if not file.is_file():
        raise ConfigError(
            f"{about}: {file} is not a file (is it in the distribution's package data?)"
        )
    return file


def find_config(spec: str) -> Path:
    """The config file ``spec`` names: an existing file, else a registered config's name.

    A folder never shadows a name: ``examples/reasoning`` is the main job even in the checkout.
    """
    path = Path(spec)
    if _is(Path.is_file, path) or (path.suffix and path.suffix.lower() not in _SUFFIXES):
        return path  # load_config reads it, or names the unknown file type
    configs = shipped_configs()
    matches = [e for e in configs if spec in (e.qualified_name, e.name)]
    exact = [e for e in matches if e.qualified_name == spec]
    if exact or len(matches) == 1:
        return config_file((exact or matches)[0])
    if matches:
        listed = ", ".join(sorted(repr(e.qualified_name) for e in matches))
        raise ConfigError(f"config name {quote(spec)} is ambiguous: use one of {listed}")
    known = [e.qualified_name for e in configs] + [e.name for e in configs]
    known += _config_files(path.parent)
    close = difflib.get_close_matches(spec, sorted(set(known)), n=3) if len(spec) < 200 else []
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    component = _component(spec)
    if component is not None:
        hint = f"; {component.qualified_name!r} is a component (group {component.group!r}){hint}"
    raise ConfigError(
        f"{_shown(spec)}: no such config file, and no registered "
        f"config of that name{hint} "
        "(corelib list configs shows the registered ones)"
    )


def _shown(path: str | Path) -> str:
    """A path as typed, or quoted short when it is long (a message stays small)."""
    text = str(path)
    return text if len(text) <= 200 else quote(text)


def _is(test: Callable[[Path], bool], path: Path) -> bool:
    """``test(path)`` (``Path.is_file``...), False where the path cannot even be looked at."""
    try:
        return test(path)
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def _config_files(folder: Path, most: int = 1000) -> list[str]:
    """Up to ``most`` config files in ``folder`` (none if it cannot be listed)."""
    try:
        files = (str(f) for f in folder.iterdir() if f.suffix.lower() in _SUFFIXES)
        return list(itertools.islice(files, most))
    except (OSError, ValueError):
        return []


def _component(name: str) -> Entry | None:
    try:
        return registry.entry(name)
    except RegistryError:  # unknown or ambiguous: nothing more to say
        return None


def copy_config(spec: str, dest: str, *, force: bool = False) -> list[tuple[Path, Path]]:
    """Copy the config ``spec`` names (and, for a ``.py`` config, the sibling modules it imports
    relatively) to ``dest``, a file or an existing folder. Returns the (source, copy) pairs.

    Nothing is written when a copy would overwrite a file and ``force`` is false.
    """
    source = find_config(spec)
    target = Path(dest)
    if _is(Path.is_dir, target):
        target = target / source.name
    elif _format(target) != _format(source):
        raise ConfigError(
            f"cp: {quote(dest)} must end in {source.suffix} like {source.name} (cp does not "
            "convert formats; corelib show prints any config as YAML)"
        )
    pairs = [(source, target)]
    pairs += [(module, target.parent / module.name) for module in _imported_siblings(source)]
    taken = [_shown(copy) for _, copy in pairs if os.path.lexists(copy)]  # a dangling link too
    if taken and not force:
        raise ConfigError(f"cp: {', '.join(taken)} already exist(s); --force overwrites")
    for original, copy in pairs:
        try:
            if copy.resolve() == original.resolve():
                raise ConfigError(f"cp: {_shown(copy)} is the config itself")
            shutil.copyfile(original, copy)  # the copy gets the umask's mode, not a read-only one
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cp: cannot copy {original} to {_shown(copy)}: {describe_exception(exc)}"
            ) from exc
    return pairs


def _format(file: Path) -> str:
    suffix = file.suffix.lower()
    return ".yaml" if suffix == ".yml" else suffix


def _imported_siblings(source: Path) -> list[Path]:
    """The ``.py`` files beside a ``.py`` config that it imports relatively, transitively."""
    found: list[Path] = []
    pending = [source] if source.suffix == ".py" else []
    while pending:
        module = pending.pop()
        try:
            tree = ast.parse(module.read_text(encoding="utf-8"), str(module))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
            raise ConfigError(f"cp: cannot read {module}: {describe_exception(exc)}") from exc
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.level != 1:
                continue
            names = [node.module] if node.module else [alias.name for alias in node.names]
            for name in names:
                sibling = source.parent / f"{name.partition('.')[0]}.py"
                if sibling.is_file() and sibling != source and sibling not in found:
                    found.append(sibling)
                    pending.append(sibling)
    return found

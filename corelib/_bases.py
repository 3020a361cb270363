"""Bases: ``_base_: FILE`` (or a list of files) at any node, merged when a config is loaded.

A node's bases (paths relative to the file that names them, any supported format) are loaded,
merged in order, and the node's own keys merged over them. Dicts merge key by key; everything
else is replaced; a dict with ``_delete_: true`` replaces instead of merging, and so does a node
whose ``_target_`` differs from the base's. Every file is read once however often it is named.

Loading is linear in the total size of the files: first every file reachable through ``_base_``
is read (a work list, no recursion), then the files are resolved deepest first (an explicit
stack, which also finds cycles). A base named once is merged into in place: only the own keys
of the naming node are visited, so a chain of bases costs the sum of the files' sizes. A base
named several times is copied for each use (its shared nodes stay shared within each copy), so
two places built from one base never become one shared node. Each key's provenance (file,
line, the chain of files) is recorded as it is read and merged.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from corelib._errors import ConfigError, quote
from corelib._lazy import LazyConfig
from corelib._provenance import (
    Entry,
    FileLink,
    copy_history,
    entries_of,
    joined,
    set_entries,
)
from corelib._traversal import Location, fold, format_path

__all__ = ["BASE_KEY", "DELETE_KEY", "LineOf", "Reader", "load_with_bases"]

BASE_KEY = "_base_"
DELETE_KEY = "_delete_"
LOADABLE = (".py", ".yaml", ".yml", ".json", ".toml")

LineOf = Callable[[Any, Any, Location], tuple[str | None, int | None]]
"""``line_of(node, key, location) -> (file, line)``: where a key was written (file None: the file
being read; line None: not known)."""
Reader = Callable[[Path], tuple[Any, LineOf]]
"""Reads one config file (no bases merged): its tree and where its keys were written."""

_CHAIN_SHOWN = 6  # files of a long cycle a message shows at each end
MAX_COPIES = 100_000
"""The most nodes that copies of bases named several times may add (a small file naming a big
base in many places, or bases that do so level after level, must not explode in memory)."""


class _File:
    """One file read: its tree, where its keys were written, and the bases its nodes name."""

    __slots__ = ("absolute", "bases", "done", "key", "line_of", "link", "needs", "path", "tree")

    def __init__(self, path: Path, key: str, link: FileLink, tree: Any, line_of: LineOf) -> None:
        self.path = path
        self.key = key  # the real path: one file, however it is spelled
        self.absolute = os.path.abspath(path)  # as Python spells it in a LazyCall's site
        self.link = link
        self.tree = tree
        self.line_of = line_of
        self.bases: dict[int, list[str]] = {}  # id(node) -> the keys of its bases, in order
        self.needs: list[str] = []  # every base key named, in order (repeats included)
        self.done = 0  # needs[:done] are resolved


def load_with_bases(top: Path, read: Reader, *, root: Path | None) -> tuple[Any, bool]:
    """The tree of ``top`` with every ``_base_`` merged in, and whether there was any.

    ``root``: None (any base is allowed), or the folder every base must lie in (safe mode);
    then a data file (YAML, JSON, TOML) cannot name a ``.py`` base either. Raises ConfigError
    naming the file, the key path and the base.
    """
    loader = _BaseLoader(read, None if root is None else Path(os.path.realpath(root)))
    return loader.load(top), len(loader.files) > 1


def _real(path: Path) -> str:
    return os.path.realpath(path)


class _BaseLoader:
    def __init__(self, read: Reader, root: Path | None) -> None:
        self.read = read
        self.root = root
        self.files: dict[str, _File] = {}
        self.uses: dict[str, int] = {}
        self.resolved: dict[str, Any] = {}
        self.shared: set[int] = set()  # ids of nodes reached by several paths
        self.deleting: set[int] = set()  # ids of nodes that said _delete_: true
        self.pending: list[tuple[Path, FileLink]] = []  # bases named but not read yet
        self.copies = 0  # nodes made by copying bases (see MAX_COPIES)

    def load(self, top: Path) -> Any:
        first = self._read(top, FileLink(str(top), None))
        while self.pending:  # every file reachable through _base_, each read once
            self._read(*self.pending.pop())
        stack, open_ = [first.key], {first.key}
        while stack:  # deepest first; a file met again while open closes a cycle
            file = self.files[stack[-1]]
            while file.done < len(file.needs) and file.needs[file.done] in self.resolved:
                file.done += 1
            waiting = file.needs[file.done] if file.done < len(file.needs) else None
            if waiting is None:
                self.resolved[file.key] = self._resolve(file)
                open_.discard(stack.pop())
            elif waiting in open_:
                raise ConfigError(self._cycle([*stack[stack.index(waiting) :], waiting]))
            else:
                stack.append(waiting)
                open_.add(waiting)
        return self.resolved[first.key]

    def _read(self, path: Path, link: FileLink) -> _File:
        tree, line_of = self.read(path)
        file = _File(path, _real(path), link, tree, line_of)
        self.files[file.key] = file
        found: list[tuple[Any, Location]] = []

        def enter(node: Any, location: Location) -> None:
            if isinstance(node, dict) and BASE_KEY in node:
                found.append((node, location))

        fold(tree, lambda node, children, location: None, enter=enter)
        for node, location in found:
            file.bases[id(node)] = [
                self._base(file, written, location) for written in _names(node, file, location)
            ]
            file.needs += file.bases[id(node)]
        return file

    def _base(self, file: _File, written: str, location: Location) -> str:
        """The key of the base ``written`` at ``location`` in ``file`` (to be read if new)."""
        where = f"{file.path}: {_spell(location)}: base {quote(written)}"
        path = Path(os.path.normpath(file.path.parent / written))
        suffix = path.suffix.lower()
        if suffix not in LOADABLE:
            raise ConfigError(f"{where}: unknown config file type; expected one of {LOADABLE}")
        if self.root is not None and suffix == ".py" and file.path.suffix.lower() != ".py":
            raise ConfigError(
                f"{where}: refused in safe mode: a data file cannot name a .py base "
                "(a .py config runs code; load it with --unsafe if you trust it)"
            )
        key = _real(path)
        if self.root is not None and not Path(key).is_relative_to(self.root):
            raise ConfigError(  # before looking at the file: nothing outside is probed
                f"{where}: refused in safe mode: {key} lies outside {self.root}, the folder of "
                "the config (a base must be in that folder or below it)"
            )
        if not path.is_file():
            raise ConfigError(f"{where}: no such file {path}{_close_files(path)}")
        self.uses[key] = self.uses.get(key, 0) + 1
        if self.uses[key] == 1 and key not in self.files:  # not the top file, not seen yet
            self.pending.append((path, FileLink(str(path), file.link)))
        return key

    def _resolve(self, file: _File) -> Any:
        """``file``'s tree with its bases merged (they are resolved already) and provenance."""
        self.deleting = set()  # a _delete_ speaks of the bases of its own file only

        def visit(node: Any, children: Any, location: Location) -> Any:
            if type(node) is tuple:
                return tuple(children)
            if isinstance(node, list):
                for index, value in enumerate(children):
                    if value is not node[index]:
                        node[index] = value
                return node
            for key, value in children.items():
                if value is not node[key]:
                    dict.__setitem__(node, key, value)
            self._stamp(file, node, location)
            delete = node.pop(DELETE_KEY, False)
            if type(delete) is not bool:
                raise ConfigError(
                    f"{file.path}: {_spell(location, DELETE_KEY)}: expected true or false, "
                    f"got {quote(delete)}"
                )
            set_entries(node, DELETE_KEY, None)
            result = node
            keys = file.bases.get(id(node))
            if keys is not None:
                del node[BASE_KEY]
                set_entries(node, BASE_KEY, None)
                result = self._take(keys[0], file, location)
                for key in [*keys[1:], None]:
                    over = node if key is None else self._take(key, file, location)
                    result = self._merge(result, over, file, location)
            if delete:
                self.deleting.add(id(result))
            return result

        def revisit(node: Any, value: Any, first: Location, location: Location) -> Any:
            self.shared.add(id(value))
            return value

        return fold(file.tree, visit, revisit=revisit)

    def _stamp(self, file: _File, node: dict[Any, Any], location: Location) -> None:
        """Record where each key of ``node`` was written (the first step of its history)."""
        links: dict[str, FileLink] = {}
        for key, value in node.items():
            written_in, line = file.line_of(node, key, location)
            link = file.link
            if written_in is not None and written_in != file.absolute:
                link = links.setdefault(written_in, FileLink(written_in, file.link))
            set_entries(node, key, Entry("file", value, file=link, line=line))

    def _take(self, key: str, file: _File, location: Location) -> Any:
        """The resolved tree of the base ``key``: itself when named once, else a copy."""
        tree = self.resolved[key]
        if not isinstance(tree, dict):
            raise ConfigError(
                f"{file.path}: {_spell(location)}: base {self.files[key].path} holds "
                f"{quote(tree)}, not a mapping"
            )
        return tree if self.uses[key] == 1 else self._copy(tree, file, location)

    def _copy(self, tree: Any, file: _File, where: Location) -> Any:
        """A copy of every container of ``tree``, keeping its shared nodes shared."""

        def visit(node: Any, children: Any, location: Location) -> Any:
            self.copies += 1
            if self.copies > MAX_COPIES:
                raise ConfigError(
                    f"{file.path}: {_spell(where)}: the bases expand to more than "
                    f"{MAX_COPIES:,} copied nodes (a base named in several places is copied "
                    "for each)"
                )
            if isinstance(node, dict):
                copied = dict.__new__(LazyConfig)
                dict.update(copied, children)
                copy_history(node, copied)
                return copied
            return children if type(node) is list else tuple(children)

        def revisit(node: Any, value: Any, first: Location, location: Location) -> Any:
            self.shared.add(id(value))
            return value

        return fold(tree, visit, revisit=revisit)

    def _merge(self, base: Any, own: Any, file: _File, location: Location) -> Any:
        """``own``'s keys merged into ``base`` (changed in place, except its shared nodes)."""
        if _replaces(base, own):
            return own
        result = self._writable(base)
        stack = [(result, own)]
        while stack:
            into, source = stack.pop()
            for key, value in source.items():
                current = into.get(key, _MISSING)
                newest = joined(entries_of(into, key), entries_of(source, key))
                if (
                    isinstance(current, dict)
                    and isinstance(value, dict)
                    and id(value) not in self.deleting
                    and not _replaces(current, value)
                ):
                    child = self._writable(current)
                    stack.append((child, value))
                    value = child
                dict.__setitem__(into, key, value)
                set_entries(into, key, newest)
        return result

    def _writable(self, node: Any) -> Any:
        """``node``, or a copy where other paths share it (they keep the original)."""
        if id(node) not in self.shared:
            return node
        copied = dict.__new__(LazyConfig)
        dict.update(copied, node)
        copy_history(node, copied)
        return copied

    def _cycle(self, keys: list[str]) -> str:
        files = [str(self.files[key].path) for key in keys]
        if len(files) > 2 * _CHAIN_SHOWN:
            skipped = len(files) - 2 * _CHAIN_SHOWN
            files = [*files[:_CHAIN_SHOWN], f"...[+{skipped} files]", *files[-_CHAIN_SHOWN:]]
        return f"{files[0]}: a cycle of bases: {' -> '.join(files)}"


_MISSING = object()


def _names(node: dict[str, Any], file: _File, location: Location) -> list[str]:
    """The files a ``_base_`` value names: one string or a non-empty list of strings."""
    value = node[BASE_KEY]
    names = [value] if isinstance(value, str) else value
    if (
        not isinstance(names, list | tuple)
        or not names
        or not all(isinstance(name, str) and name for name in names)
    ):
        raise ConfigError(
            f"{file.path}: {_spell(location)}: expected a file name or a list of file names, "
            f"got {quote(value)}"
        )
    return list(names)


def _spell(location: Location, key: str = BASE_KEY) -> str:
    return format_path([*location.keys(), key])


def _replaces(base: Any, own: Any) -> bool:
    """Whether ``own`` replaces ``base`` whole: it names another ``_target_``."""
    if "_target_" not in base or "_target_" not in own:
        return False
    return _spelling(base["_target_"]) != _spelling(own["_target_"])


def _spelling(target: Any) -> Any:
    """A target as an import path where it is one (``a.b:C`` and the class itself: ``a.b.C``)."""
    if isinstance(target, str):
        return target.replace(":", ".")
    module, name = getattr(target, "__module__", None), getattr(target, "__qualname__", None)
    return f"{module}.{name}" if module and name else id(target)


def _close_files(path: Path) -> str:
    """``; close matches: ...`` among the config files beside ``path``."""
    try:
        names = [p.name for p in path.parent.iterdir() if p.suffix.lower() in LOADABLE]
    except OSError:
        return ""
    close = difflib.get_close_matches(path.name, names, n=3)
    return f"; close matches: {', '.join(map(quote, close))}" if close else ""

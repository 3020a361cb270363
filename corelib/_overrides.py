"""Command-line style overrides: ``a.b=V``, ``+a.new=V``, ``++a.b=V``, ``~a.b``, presets
``a.b=@NAME`` (the file ``a/b/NAME.yaml`` beside the config) and list appends ``a.b[+]=V``.

Overrides are applied copy-on-write: the input config is never changed, the result copies only
the containers on the way down to each edited key and shares everything else with the input.
A node reached by several paths (a shared node) stays shared: editing a key inside it edits the
one node every path sees.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from pathlib import Path
from typing import Any

from corelib._errors import QUOTE_LIMIT, ConfigError, a_type, quote
from corelib._lazy import LazyConfig
from corelib._provenance import (
    Entry,
    FileLink,
    copy_history,
    record,
    set_entries,
    source_of,
)
from corelib._traversal import CycleError, Location, fold, format_path

__all__ = ["apply_overrides", "set_paths", "split_path"]

_OVERRIDE = re.compile(
    r"(?P<op>\+\+|\+|~)?(?P<path>[^=]*?)(?P<append>\[\+\])?(?:=(?P<value>.*))?", re.DOTALL
)
_SEGMENT = re.compile(r"\.?(?P<key>[^.\[\]=\s]+)|\[(?P<index>-?\d+)\]")


def apply_overrides(
    cfg: Any, overrides: list[str], *, config_dir: str | os.PathLike[str] | None = None
) -> Any:
    """Return ``cfg`` with ``overrides`` applied in order; ``cfg`` itself is left unchanged.

    Grammar (values parse as YAML 1.2 scalars or flow collections; ``a.b=`` is the empty
    string): ``a.b=V`` sets an existing key, ``+a.b=V`` adds a new one (an error if it exists),
    ``++a.b=V`` sets or adds, ``~a.b`` deletes, ``a.b[+]=V`` appends to a list. A value
    ``@NAME`` is a preset: the file ``<config_dir>/a/b/NAME.<yaml|yml|json|toml|py>``, loaded
    (a string starting with ``@`` is written quoted: ``a.b='@x'``). ``config_dir`` defaults to
    the folder of the file :func:`load_config` read ``cfg`` from; a config loaded with
    ``safe=True`` takes presets only from that folder or below and no ``.py`` preset. List
    items are ``a.layers.0`` or ``a.layers[0]``. Each edit is recorded in the provenance of
    the key (:func:`corelib.explain`). Raises ConfigError quoting the override for unknown keys
    (with suggestions), missing or ambiguous presets and malformed overrides.
    """
    if isinstance(overrides, str) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(
            f"overrides must be a list of strings like 'a.b=1', got {quote(overrides)}"
        )
    if not overrides:
        return cfg
    source = source_of(cfg)
    directory = Path(config_dir) if config_dir is not None else source and source[0].parent
    editor = _Editor(cfg, directory, safe=bool(source and source[1]))
    for position, override in enumerate(overrides):
        editor.apply(override, position)
    return editor.root


def set_paths(overrides: list[str]) -> list[str]:
    """The key paths, as written, whose values ``overrides`` set or add from the command line.

    ``~a.b`` sets none; a preset (``a.b=@NAME``) is a file, not the command line, and an
    append (``a.b[+]=V``) adds an item at an index the text does not name: neither counts.
    """
    matches = (_OVERRIDE.fullmatch(override) for override in overrides)
    return [
        match["path"]
        for match in matches
        if match is not None
        and match["op"] != "~"
        and not match["append"]
        and not (match["value"] or "").startswith("@")
    ]


class _Editor:
    """Copy-on-write edits of one config tree that keep shared nodes shared."""

    def __init__(self, root: Any, config_dir: Path | None, *, safe: bool) -> None:
        self.root = root
        self.config_dir = config_dir
        self.safe = safe
        self._original_root = root
        try:
            self._parents = _parent_index(root)
        except CycleError as exc:
            raise ConfigError(f"cannot override a config with a cycle: {exc}") from None
        self._copies: dict[int, Any] = {}

    def apply(self, override: str, position: int) -> None:
        op, keys, value, append = _parse(override)
        adding = op in ("+", "++")
        node = self.root
        for depth, key in enumerate(keys[:-1]):
            found, child = _child(node, key, keys[:depth], override)
            if child is _MISSING:
                if not (adding and isinstance(node, dict)):
                    raise ConfigError(_missing(node, key, keys[:depth], override, adding=False))
                child = LazyConfig()
                self._writable(node)[found] = child
            node = child
        where, last = keys[:-1], keys[-1]
        found, current = _child(node, last, where, override)
        if current is _MISSING and not (adding and isinstance(node, dict)):
            raise ConfigError(_missing(node, last, where, override, adding=op == ""))
        if op == "+" and current is not _MISSING:
            raise ConfigError(
                f"override {quote(override)}: {quote(format_path(keys))} already exists; "
                f"drop the '+' to change it"
            )
        preset = None
        if isinstance(value, _Preset):  # read once the key is known to be there (or added)
            preset = self._preset_file(keys, value.name, override)
            value = _load_preset(preset, self.config_dir if self.safe else None)
        target = self._writable(node)
        if op == "~":
            del target[found]
            set_entries(target, found, None)
            return
        if append:
            if not isinstance(current, list | tuple):
                raise ConfigError(
                    f"override {quote(override)}: {quote(format_path(keys))} is "
                    f"{a_type(current)} ({quote(current)}), not a list; [+]= appends to a list"
                )
            self._writable(current).append(value)
            value = target[found]
        else:
            target[found] = value
        link = None if preset is None else FileLink(str(preset), None)
        record(target, found, Entry("override", value, file=link, text=override, position=position))

    def _preset_file(self, keys: list[str | int], name: str, override: str) -> Path:
        """The one preset file ``KEY=@NAME`` names (see :func:`apply_overrides`)."""
        where = f"override {quote(override)}"
        if self.config_dir is None:
            raise ConfigError(
                f"{where}: a preset is read from the config's folder, but this config was not "
                "loaded from a file; pass apply_overrides(..., config_dir=FOLDER)"
            )
        for part in [*map(str, keys), name]:
            if not _PRESET_PART.fullmatch(part):
                raise ConfigError(
                    f"{where}: {quote(part)} cannot name a preset folder or file (letters, "
                    "digits, '_', '-' and '.', not first)"
                )
        folder = self.config_dir.joinpath(*map(str, keys))
        root = Path(os.path.realpath(self.config_dir))
        if self.safe and not Path(os.path.realpath(folder)).is_relative_to(root):
            raise ConfigError(  # before listing it: nothing outside is probed
                f"{where}: refused in safe mode: the preset folder {folder} leads outside "
                f"{root}, the folder of the config (through a symlink)"
            )
        tried = [folder / f"{name}{suffix}" for suffix in _PRESET_SUFFIXES]
        found = [path for path in tried if path.is_file()]
        if len(found) > 1:
            raise ConfigError(
                f"{where}: ambiguous preset, found {', '.join(map(str, found))}; keep one"
            )
        if not found:
            raise ConfigError(
                f"{where}: no preset {quote(name)}; tried {', '.join(map(str, tried))}"
                f"{_close_presets(folder, name)}"
            )
        preset = found[0]
        if self.safe:
            if preset.suffix == ".py":
                raise ConfigError(
                    f"{where}: refused in safe mode: a data config cannot use the .py preset "
                    f"{preset} (a .py file runs code; pass --unsafe if you trust it)"
                )
            if not Path(os.path.realpath(preset)).is_relative_to(root):
                raise ConfigError(
                    f"{where}: refused in safe mode: {preset} lies outside {root}, the folder "
                    "of the config (through a symlink)"
                )
        return preset

    def _writable(self, node: Any) -> Any:
        """The editable copy of ``node``; references to the original are redirected to it."""
        if id(node) not in self._parents:
            return node  # created by an edit, or a copy already made
        found = self._copies.get(id(node))
        if found is not None:
            return found
        result = self._copy(node)
        pending = [node]
        while pending:
            original = pending.pop()
            replacement = self._copies[id(original)]
            if original is self._original_root:
                self.root = replacement
            for parent, key in self._parents[id(original)]:
                parent_copy = self._copies.get(id(parent))
                if parent_copy is None:
                    parent_copy = self._copy(parent)
                    pending.append(parent)
                _redirect(parent_copy, key, original, replacement)
        return result

    def _copy(self, node: Any) -> Any:
        duplicate = copy.copy(node) if isinstance(node, dict) else list(node)
        copy_history(node, duplicate)  # the copy's history changes apart from the original's
        self._copies[id(node)] = duplicate
        return duplicate


_MISSING = object()
_PRESET_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_PRESET_SUFFIXES = (".yaml", ".yml", ".json", ".toml", ".py")


class _Preset:
    """The value ``@NAME`` of an override: the preset to read."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _load_preset(preset: Path, root: Path | None) -> Any:
    from corelib._files import load_tree  # _files imports this module

    return load_tree(preset, root=root)


def _close_presets(folder: Path, name: str) -> str:
    """``; close matches: ...`` among the presets in ``folder`` (or the presets there)."""
    try:
        names = sorted({p.stem for p in folder.iterdir() if p.suffix in _PRESET_SUFFIXES})
    except OSError:
        return ""
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        return f"; close matches: {', '.join(map(quote, close))}"
    return f"; presets there: {_listing(names)}" if names else ""


def _parse(override: str) -> tuple[str, list[str | int], Any, bool]:
    match = _OVERRIDE.fullmatch(override)
    assert match is not None  # the pattern accepts every string
    op, path, text = match["op"] or "", match["path"], match["value"]
    append = bool(match["append"])
    if append and (op or text is None):
        raise ConfigError(
            f"malformed override {quote(override)}: KEY[+]=VALUE appends to a list and takes "
            "no '+', '++' or '~'"
        )
    if op == "~" and text is not None:
        raise ConfigError(
            f"malformed override {quote(override)}: '~' deletes a key and takes no value"
        )
    if op != "~" and text is None:
        raise ConfigError(
            f"malformed override {quote(override)}: expected KEY=VALUE, +KEY=VALUE or ~KEY"
        )
    try:
        keys = split_path(path)
    except ValueError as exc:
        raise ConfigError(f"malformed override {quote(override)}: {exc}") from None
    if text is not None and text.startswith("@"):
        return op, keys, _Preset(text[1:]), append
    return op, keys, _parse_value(override, text), append


def split_path(path: str) -> list[str | int]:
    """Split ``a.layers[0].w`` (or ``a.layers.0.w``) into keys: ``["a", "layers", 0, "w"]``.

    A bracketed item is an int, a dotted one a string. Raises ValueError for a malformed path.
    """
    keys: list[str | int] = []
    position = 0
    while position < len(path):
        segment = _SEGMENT.match(path, position)
        dotted = segment is not None and segment[0].startswith(".")
        if segment is None or (segment["key"] is not None and dotted != (position > 0)):
            raise ValueError(
                f"bad key path {quote(path)} at position {position + 1} "
                f"(expected names separated by '.', list items as .0 or [0])"
            )
        keys.append(int(segment["index"]) if segment["index"] else segment["key"])
        position = segment.end()
    if not keys:
        raise ValueError("empty key path")
    return keys


def _parse_value(override: str, text: str | None) -> Any:
    from corelib._yaml import parse_value  # PyYAML loads on first use: `import corelib` stays fast

    if not text:
        return "" if text == "" else None
    try:
        return parse_value(text, mapping=LazyConfig)
    except ConfigError as exc:
        raise ConfigError(f"override {quote(override)}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(
            f"malformed override {quote(override)}: the value is not a YAML scalar or flow "
            f"collection ({exc}); quote it to pass a string"
        ) from None


def _child(node: Any, key: str | int, where: list[str | int], override: str) -> tuple[Any, Any]:
    """``(key as stored, node[key])``, with ``_MISSING`` as the value when absent."""
    if isinstance(node, dict):
        for candidate in _spellings(key):
            if candidate in node:
                return candidate, node[candidate]
        return key, _MISSING
    if isinstance(node, list | tuple):
        if isinstance(key, str) and not key.isdigit():
            raise ConfigError(
                f"override {quote(override)}: {quote(format_path(where))} is a list; "
                f"expected an item number, got {quote(key)}"
            )
        index = int(key)
        return index, node[index] if -len(node) <= index < len(node) else _MISSING
    raise ConfigError(
        f"override {quote(override)}: {quote(format_path(where) or 'the root')} is "
        f"{a_type(node)} ({quote(node)}), not a mapping or a list"
    )


def _spellings(key: str | int) -> tuple[str | int, ...]:
    """The dict keys a path segment may name: ``0`` finds ``"0"`` or ``0``."""
    if isinstance(key, int):
        return (key, str(key))
    return (key, int(key)) if key.isdigit() else (key,)


def _missing(
    node: Any, key: str | int, where: list[str | int], override: str, *, adding: bool
) -> str:
    """The message for a key or item that is not there, with suggestions."""
    path = format_path([*where, key])
    if not isinstance(node, dict):
        return (
            f"override {quote(override)}: item {key} is out of range for "
            f"{quote(format_path(where))} ({len(node)} items); a list can only be replaced whole"
        )
    names = [str(k) for k in node]
    close = difflib.get_close_matches(str(key), names, n=3)
    hint = (
        f"did you mean {', '.join(quote(format_path([*where, c])) for c in close)}?"
        if close
        else f"keys there: {_listing(sorted(names))}"
    )
    spelled = format_path([*where, key], exact=True)  # a hint to copy must be exact
    add = f" (use '+{spelled}=...' to add it)" if adding and len(spelled) <= QUOTE_LIMIT else ""
    return f"override {quote(override)}: unknown key {quote(path)}; {hint}{add}"


def _listing(names: list[str]) -> str:
    """``a, b, c`` for a message, cut to ``QUOTE_LIMIT`` characters."""
    text = ", ".join(names) or "(none)"
    return text if len(text) <= QUOTE_LIMIT else text[: QUOTE_LIMIT - 5] + "[...]"


def _redirect(container: Any, key: Any, original: Any, replacement: Any) -> None:
    """Point the references to ``original`` in ``container`` to ``replacement``."""
    if isinstance(container, dict):
        if container.get(key) is original:
            container[key] = replacement
        return
    for index, item in enumerate(container):
        if item is original:
            container[index] = replacement


def _parent_index(root: Any) -> dict[int, list[tuple[Any, Any]]]:
    """Map each container's id to every ``(parent, key)`` that refers to it."""
    node_at: dict[Location, Any] = {}
    parents: dict[int, list[tuple[Any, Any]]] = {id(root): []}

    def enter(node: Any, location: Location) -> None:
        node_at[location] = node
        if location.parent is not None:
            parents[id(node)] = [(node_at[location.parent], location.key)]

    def revisit(node: Any, value: Any, first: Location, location: Location) -> Any:
        assert location.parent is not None  # only the root has no parent, and it is entered once
        parents[id(node)].append((node_at[location.parent], location.key))
        return value

    fold(root, lambda node, children, location: None, enter=enter, revisit=revisit)
    return parents

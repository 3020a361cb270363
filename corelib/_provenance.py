"""Where each value of a config came from: files and lines, bases, overrides, defaults.

A :class:`LazyConfig` node keeps its history in one slot beside its keys (the node stays a plain
dict to everything else): for each key, the newest entry, linked to the older ones, so that a
base chain or a run of overrides adds one entry per step and a node copied by an override shares
the entries it did not change. A node made by ``LazyCall`` remembers the file and line of the
call until a file load records its keys. :func:`explain` turns a key's entries into
:class:`Origin` records, oldest first: the last one is the value the config holds.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from corelib._errors import ConfigError, quote
from corelib._lazy import LazyConfig
from corelib._traversal import format_path

if TYPE_CHECKING:
    from corelib.registry import Allow, TargetResolver

__all__ = [
    "Entry",
    "FileLink",
    "Origin",
    "copy_history",
    "entries_of",
    "explain",
    "joined",
    "record",
    "set_entries",
    "set_source",
    "signature_defaults",
    "site_of",
    "source_of",
]

_CHAIN_SHOWN = 3  # files a record's text shows at each end of a long chain of bases
_SLOT = LazyConfig.__dict__["_provenance"]  # the slot's descriptor: no clash with a key


@attrs.frozen
class Origin:
    """One step in a value's history (see :func:`explain`).

    ``kind`` is ``"file"`` (set in a config file: ``file`` and, for YAML and Python, ``line``;
    ``chain`` lists the files from the loaded config down to ``file`` through ``_base_`` and
    presets), ``"override"`` (``text`` is the override as written, ``position`` its index in the
    override list, from 0; ``file`` the preset it read, if any) or ``"default"`` (a signature
    default; ``text`` names the target). ``value`` is what that step set.
    """

    kind: str
    value: Any
    file: str | None = None
    line: int | None = None
    text: str | None = None
    position: int | None = None
    _link: FileLink | None = attrs.field(default=None, eq=False, repr=False, alias="link")

    @property
    def chain(self) -> tuple[str, ...]:
        """The files from the loaded config down to ``file`` (spelled out when asked)."""
        return () if self._link is None else self._link.chain()

    def __str__(self) -> str:
        if self.kind == "override":
            preset = f" (preset {self.file})" if self.file else ""
            return f"override #{self.position} {quote(self.text)}{preset}"
        if self.kind == "default":
            return f"signature default of {self.text}"
        where = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        chain = [] if self._link is None else self._link.ends(_CHAIN_SHOWN)
        via = f" (through {' -> '.join(chain)})" if len(chain) > 1 else ""
        return f"{where}{via}"


class FileLink:
    """A config file and the file that named it (its ``_base_`` or preset user), if any.

    Each link knows its depth and the first files of its chain, so that a record of a long
    chain of bases is shown by its ends at a constant cost.
    """

    __slots__ = ("depth", "head", "parent", "path")

    def __init__(self, path: str, parent: FileLink | None) -> None:
        self.path = path
        self.parent = parent
        self.depth: int = 1 if parent is None else parent.depth + 1
        head = () if parent is None else parent.head
        self.head: tuple[str, ...] = head if len(head) >= _CHAIN_SHOWN else (*head, path)

    def chain(self) -> tuple[str, ...]:
        """The files from the loaded config down to this one."""
        files: list[str] = []
        link: FileLink | None = self
        while link is not None:
            files.append(link.path)
            link = link.parent
        return tuple(reversed(files))

    def ends(self, shown: int) -> list[str]:
        """The chain, with all but its first and last ``shown`` files left out."""
        if self.depth <= 2 * shown:
            return list(self.chain())
        tail: list[str] = []
        link: FileLink | None = self
        while link is not None and len(tail) < shown:
            tail.append(link.path)
            link = link.parent
        skipped = self.depth - 2 * shown
        return [*self.head[:shown], f"...[+{skipped} files]", *reversed(tail)]


class Entry:
    """One step of one key's history, linked to the step before it."""

    __slots__ = ("file", "kind", "line", "position", "previous", "text", "value")

    def __init__(
        self,
        kind: str,
        value: Any,
        *,
        file: FileLink | None = None,
        line: int | None = None,
        text: str | None = None,
        position: int | None = None,
        previous: Entry | None = None,
    ) -> None:
        self.kind = kind
        self.value = value
        self.file = file
        self.line = line
        self.text = text
        self.position = position
        self.previous = previous

    def with_previous(self, previous: Entry | None) -> Entry:
        return Entry(
            self.kind,
            self.value,
            file=self.file,
            line=self.line,
            text=self.text,
            position=self.position,
            previous=previous,
        )

    def origin(self) -> Origin:
        file = self.file
        return Origin(
            self.kind,
            self.value,
            file=None if file is None else file.path,
            line=self.line,
            text=self.text,
            position=self.position,
            link=file,
        )


class _History:
    """A node's provenance: the newest entry per key, where LazyCall made it, and (at the root
    of a loaded config) the file it was loaded from and whether in safe mode."""

    __slots__ = ("keys", "site", "source")

    def __init__(self, site: tuple[str, int] | None = None) -> None:
        self.keys: dict[Any, Entry] = {}
        self.site = site
        self.source: tuple[Path, bool] | None = None


def _history(node: Any, *, create: bool) -> _History | None:
    if not isinstance(node, LazyConfig):
        return None
    try:
        held = _SLOT.__get__(node, LazyConfig)
    except AttributeError:
        held = None
    if isinstance(held, _History):
        return held
    if not create:
        return None
    history = _History(held)  # held: a LazyCall site, or None
    _SLOT.__set__(node, history)
    return history


def site_of(node: Any) -> tuple[str, int] | None:
    """The file and line of the ``LazyCall`` that made ``node``, if known."""
    if not isinstance(node, LazyConfig):
        return None
    try:
        held = _SLOT.__get__(node, LazyConfig)
    except AttributeError:
        return None
    site: tuple[str, int] | None = held.site if isinstance(held, _History) else held
    return site


def entries_of(node: Any, key: Any) -> Entry | None:
    """The newest entry of ``key`` in ``node`` (None when nothing is known)."""
    history = _history(node, create=False)
    return None if history is None else history.keys.get(key)


def set_entries(node: Any, key: Any, newest: Entry | None) -> None:
    """Make ``newest`` (and the entries linked from it) the history of ``key`` in ``node``."""
    history = _history(node, create=newest is not None)
    if history is None:
        return
    if newest is None:
        history.keys.pop(key, None)
    else:
        history.keys[key] = newest


def record(node: Any, key: Any, entry: Entry) -> None:
    """Add ``entry`` as the newest step of ``key`` in ``node``."""
    history = _history(node, create=True)
    if history is not None:
        history.keys[key] = entry.with_previous(history.keys.get(key))


def joined(older: Entry | None, newer: Entry | None) -> Entry | None:
    """The history ``older`` followed by ``newer`` (``newer``'s steps are relinked)."""
    if older is None or newer is None:
        return newer if newer is not None else older
    steps: list[Entry] = []
    entry: Entry | None = newer
    while entry is not None:
        steps.append(entry)
        entry = entry.previous
    result = older
    for step in reversed(steps):
        result = step.with_previous(result)
    return result


def copy_history(original: Any, duplicate: Any) -> None:
    """Give ``duplicate`` (a copy of ``original``) its own history, equal to the original's."""
    if not (isinstance(original, LazyConfig) and isinstance(duplicate, LazyConfig)):
        return
    try:
        held = _SLOT.__get__(original, LazyConfig)
    except AttributeError:
        return
    if isinstance(held, _History):
        copied = _History(held.site)
        copied.keys = dict(held.keys)
        copied.source = held.source
        held = copied
    _SLOT.__set__(duplicate, held)


def set_source(root: Any, file: Path, *, safe: bool) -> None:
    """Remember on a loaded config's root which file it came from and whether in safe mode."""
    history = _history(root, create=True)
    if history is not None:
        history.source = (file, safe)


def source_of(cfg: Any) -> tuple[Path, bool] | None:
    """``(file, safe)`` as :func:`corelib.load_config` recorded them on the root, or None."""
    history = _history(cfg, create=False)
    return None if history is None else history.source


def explain(cfg: Any, path: str, *, allow: Allow = None) -> list[Origin]:
    """The history of the value at ``path`` (``"optimizer.lr"``), oldest first; the last wins.

    A key with no history of its own (inside a value an override or a file set whole) gets the
    history of the nearest key above it. A key that a target's signature fills in gets one
    ``"default"`` record. A value built in code has only the file and line of its ``LazyCall``,
    or no record. ``allow`` is the safe-mode policy under which a target is resolved to read its
    defaults (as :func:`corelib.check`'s; None: unrestricted). Raises ConfigError for a path
    that leads nowhere, with close matches.
    """
    from corelib._overrides import split_path  # _overrides imports this module

    try:
        keys = split_path(path)
    except ValueError as exc:
        raise ConfigError(f"explain {quote(path)}: {exc}") from None
    node = cfg
    found: Entry | None = None
    for depth, key in enumerate(keys):
        holder, key = node, _stored_key(node, key)
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            if depth == len(keys) - 1 and isinstance(holder, dict):
                default = _default(holder, key, allow)
                if default is not None:
                    return [default]
            raise ConfigError(_nowhere(holder, keys, depth)) from None
        found = entries_of(holder, key) or found
        if found is None and depth == len(keys) - 1:
            site = site_of(holder)
            if site is not None:
                link = FileLink(site[0], None)
                return [Origin("file", node, file=site[0], line=site[1], link=link)]
    origins: list[Origin] = []
    while found is not None:
        origins.append(found.origin())
        found = found.previous
    origins.reverse()
    return origins


def _stored_key(node: Any, key: Any) -> Any:
    if isinstance(node, dict) and key not in node and isinstance(key, int) and str(key) in node:
        return str(key)
    return key


def _nowhere(node: Any, keys: list[Any], depth: int) -> str:
    path = format_path(keys)
    where = format_path(keys[:depth]) or "the top level"
    if isinstance(node, dict):
        close = difflib.get_close_matches(str(keys[depth]), [str(k) for k in node], n=3)
        hint = f"; did you mean {', '.join(map(quote, close))}?" if close else ""
        return f"explain {quote(path)}: no key {quote(keys[depth])} at {where}{hint}"
    if isinstance(node, list | tuple):
        return f"explain {quote(path)}: no item {quote(keys[depth])} in the list at {where}"
    return f"explain {quote(path)}: {where} is {quote(node)}, not a mapping or a list"


def _default(node: dict[str, Any], key: Any, allow: Allow) -> Origin | None:
    """The signature default that ``node``'s target gives ``key``, if it has one."""
    from corelib.registry import TargetResolver, make_allowlist  # loads on first use

    if "_target_" not in node:
        return None
    try:
        defaults = signature_defaults(node, TargetResolver(make_allowlist(allow)))
    except Exception:  # a target that cannot be resolved has no defaults to tell
        return None
    if key not in defaults:
        return None
    return Origin("default", defaults[key], text=_target_name(node["_target_"]))


def signature_defaults(node: dict[str, Any], resolver: TargetResolver) -> dict[str, Any]:
    """The defaults of the parameters of ``node``'s target that ``node`` does not set.

    The target is resolved by ``resolver`` (under its safe-mode policy: a refused target raises
    before anything is imported). Parameters filled by ``_args_`` and ``*args``/``**kwargs``
    are left out.
    """
    from corelib._signatures import parameters

    target = resolver.resolve(node["_target_"])
    args = node.get("_args_", ())
    taken = len(args) if isinstance(args, list | tuple) else 0
    defaults: dict[str, Any] = {}
    for index, parameter in enumerate(parameters(target)):
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.kind is parameter.POSITIONAL_ONLY or index < taken:
            continue
        if parameter.default is not parameter.empty and parameter.name not in node:
            defaults[parameter.name] = parameter.default
    return defaults


def _target_name(target: Any) -> str:
    """``target`` as a message names it: the string as written, or a callable's import path."""
    from corelib._signatures import describe_target

    return describe_target(target) or quote(target)

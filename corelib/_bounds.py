"""Bounds on what a config file may hold, checked without recursion and in linear time.

A config is at most :data:`MAX_DEPTH` levels deep (each dict and list is a level) and its
integers have at most :data:`MAX_INT_DIGITS` decimal digits (Python's limit for converting
integers to and from text). A config file (and an override value) holds plain data only:
string keys, and strings, numbers, booleans and null as leaves; a ``.py`` config may hold
anything.
Files are checked when loaded and before they are written, so whatever loads can be overridden,
checked, built, saved and shown; nothing reaches a parser's or dumper's recursion limit.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from typing import Any, Final

from corelib._errors import ConfigError, a_type, quote
from corelib._traversal import ROOT, CycleError, Location, fold, format_path

__all__ = [
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "HugeInt",
    "check_brackets",
    "check_tree",
    "huge_int",
    "recursion_headroom",
]

MAX_DEPTH: Final = 500
"""The deepest a config may be nested (dicts and lists, the root counting as level 1)."""

MAX_INT_DIGITS: Final = 4_300
"""The most decimal digits of an integer in a config (``sys.int_info.default_max_str_digits``)."""

_INT_BOUND: Final = 10**MAX_INT_DIGITS
_SCALARS: Final = (str, int, float, bool, type(None))
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_PATH_LIMIT: Final = 200


class HugeInt:
    """What a parser reads for an integer over :data:`MAX_INT_DIGITS` digits (refused later,
    by :func:`check_tree`, which knows the key path)."""

    __slots__ = ("digits",)

    def __init__(self, digits: int | None) -> None:
        self.digits = digits  # None: not known, over the limit

    def __str__(self) -> str:
        count = self.digits or f"more than {MAX_INT_DIGITS}"
        return f"an integer of {count} digits"

    __repr__ = __str__


def huge_int(text: str) -> int | HugeInt:
    """``int(text)`` for decimal ``text``, or a :class:`HugeInt` when it has too many digits."""
    digits = len(text.lstrip("+-"))
    return HugeInt(digits) if digits > MAX_INT_DIGITS else int(text)


def check_brackets(text: str, tokens: re.Pattern[str], source: str) -> None:
    """Refuse ``text`` whose brackets nest deeper than a parser may recurse (a linear scan).

    ``tokens`` matches the format's strings and comments (skipped) and single brackets. A file
    written by :func:`corelib.save_config` nests at most ``2 * MAX_DEPTH + 1`` brackets (escape
    and ``_none_`` tables add a level); the tree itself is measured by :func:`check_tree`.
    """
    level = 0
    for match in tokens.finditer(text):
        bracket = match.group()
        if bracket in ("[", "{"):
            level += 1
            if level > 2 * MAX_DEPTH + 1:
                line = text.count("\n", 0, match.start()) + 1
                raise ConfigError(f"{source}: line {line}: {_too_deep()}")
        elif bracket in ("]", "}"):
            level -= 1


def check_tree(data: Any, *, plain: bool = True, root: str = "the top level") -> int:
    """Check ``data`` against the bounds and return its depth; raise ConfigError naming the path.

    ``plain`` (data files, overrides, anything to be written) also refuses keys that are not
    strings, leaves other than strings, numbers, booleans and None, and strings with lone
    surrogates (no UTF-8 file can hold them). A node shared by several paths is looked at once.
    """
    if plain:
        _check_leaf(data, ROOT, root)
    elif type(data) is int or isinstance(data, HugeInt):
        _check_int(data, ROOT, root)
    depths: dict[int, int] = {}

    def visit(node: Any, children: Any, loc: Location) -> Any:
        depth = 1
        if isinstance(node, dict):
            pairs: Any = node.items()
            if plain:
                for key in node:
                    _check_key(key, loc, root)
        else:
            pairs = enumerate(node)
        for key, value in pairs:
            kind = type(value)
            if kind is str or kind is float or kind is bool or value is None:
                if plain and kind is str and not value.isascii():
                    _check_text(value, loc.child(key), root)
                continue
            found = depths.get(id(value))
            if found is not None:
                depth = max(depth, found + 1)
            elif plain:
                _check_leaf(value, loc.child(key), root)
            elif kind is int or kind is HugeInt:
                _check_int(value, loc.child(key), root)
        if depth > MAX_DEPTH:
            raise ConfigError(f"{_path(loc, root)}: {_too_deep()}")
        depths[id(node)] = depth
        return node

    try:
        fold(data, visit)
    except CycleError as cycle:
        raise ConfigError(str(cycle)) from None
    return depths.get(id(data), 0)


@contextlib.contextmanager
def recursion_headroom(depth: int) -> Iterator[None]:
    """Room for a parser or dumper that recurses per level, for ``depth`` within the bounds."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 8 * min(depth, 2 * MAX_DEPTH + 1) + 1_000))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _too_deep() -> str:
    return f"nested deeper than {MAX_DEPTH} levels (the most a config may be)"


def _path(loc: Location, root: str) -> str:
    if loc.parent is None:
        return root
    path = format_path(loc.keys()[:_PATH_LIMIT])
    return path if len(path) <= _PATH_LIMIT else path[: _PATH_LIMIT - 5] + "[...]"


def _check_key(key: Any, loc: Location, root: str) -> None:
    if type(key) is not str:
        raise ConfigError(
            f"{_path(loc, root)}: the key {quote(key)} ({type(key).__name__}) is not a string; "
            f"config keys must be strings (quote it in the file)"
        )
    if not key.isascii():
        _check_text(key, loc, root)


def _check_text(text: str, loc: Location, root: str) -> None:
    if _SURROGATE.search(text):
        raise ConfigError(
            f"{_path(loc, root)}: {quote(text)} holds a lone surrogate (no UTF-8 file can)"
        )


def _check_int(value: Any, loc: Location, root: str) -> None:
    if isinstance(value, HugeInt) or not -_INT_BOUND < value < _INT_BOUND:
        huge = value if isinstance(value, HugeInt) else HugeInt(None)
        raise ConfigError(
            f"{_path(loc, root)}: {huge}; configs hold integers of at most {MAX_INT_DIGITS} digits"
        )


def _check_leaf(value: Any, loc: Location, root: str) -> None:
    if type(value) is int or isinstance(value, HugeInt):
        _check_int(value, loc, root)
    elif isinstance(value, str):
        if not value.isascii():
            _check_text(value, loc, root)
    elif not isinstance(value, (*_SCALARS, dict, list)):
        raise ConfigError(
            f"{_path(loc, root)}: a config file cannot hold {a_type(value)} "
            f"({quote(value)}); it holds dicts, lists, strings, numbers, booleans and null"
        )

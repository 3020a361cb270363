"""The syntax of references: a string as literal text and ``${...}`` references.

``${a.b[0]}`` (absolute), ``${.x}`` / ``${..x}`` (relative: the number of dots), ``${NAME:a,b}``
(a resolver call with string arguments) and ``\\${`` (a literal ``${``); no nesting. A string
that is exactly one absolute reference to a plain path (most are) has a quicker parse of its
own, :func:`plain_path`. Both parses of short strings are cached: a config built again repeats
the same references.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from corelib._errors import quote
from corelib._overrides import split_path

__all__ = ["Reference", "Unresolvable", "parse", "plain_path"]


class Reference:
    """One ``${...}``: a path (``up`` dots before it, None when absolute) or a resolver call."""

    __slots__ = ("args", "keys", "resolver", "text", "up")

    def __init__(
        self,
        text: str,
        keys: list[str | int],
        *,
        up: int | None = None,
        resolver: str | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.text = text
        self.up = up
        self.keys = keys
        self.resolver = resolver
        self.args = args or []


class Unresolvable(Exception):
    """A string cannot be resolved (the message; the caller adds where)."""


# Paths that split at string-method speed (an item has at most 18 digits: int() takes it
# at once, and a longer one goes to split_path, whose error names it).
_SIMPLE_PATH: Final = re.compile(r"[A-Za-z_]\w*(?:\.\w+|\[\d{1,18}\])*")
_WHOLE: Final = re.compile(r"\$\{(" + _SIMPLE_PATH.pattern + r")\}")
_DOTTED: Final = re.compile(r"\$\{([A-Za-z_]\w*(?:\.\w+)*)(?:\[(\d{1,18})\])?\}")
_CACHED_LENGTH: Final = 200  # the longest string whose parse is cached
_CACHE_LIMIT: Final = 4096  # entries of each cache (emptied when full)


class _Memo(dict[str, Any]):
    """A bounded memo of ``compute`` for short strings (a hit costs one dict lookup)."""

    def __init__(self, compute: Callable[[str], Any]) -> None:
        super().__init__()
        self.compute = compute

    def __missing__(self, text: str) -> Any:
        value = self.compute(text)
        if len(text) <= _CACHED_LENGTH:
            if len(self) >= _CACHE_LIMIT:
                self.clear()
            self[text] = value
        return value


def _plain_path(text: str) -> list[str | int] | None:
    """:func:`plain_path`, uncached."""
    dotted = _DOTTED.fullmatch(text)
    if dotted is not None:  # names and at most one item at the end: split at C speed
        names, item = dotted.groups()
        keys: list[str | int] = names.split(".")  # type: ignore[assignment]
        if item is not None:
            keys.append(int(item))
        return keys
    whole = _WHOLE.fullmatch(text)
    return None if whole is None else _simple_keys(whole[1])


def _parse(text: str) -> list[str | Reference]:
    keys = _plain_path(text)
    if keys is not None:
        return [Reference(text, keys)]
    parts: list[str | Reference] = []
    literal: list[str] = []
    start = 0
    while True:
        found = text.find("${", start)
        if found < 0:
            literal.append(text[start:])
            break
        if found > 0 and text[found - 1] == "\\":  # \${ is a literal ${
            literal += [text[start : found - 1], "${"]
            start = found + 2
            continue
        end = text.find("}", found + 2)
        if end < 0:
            raise Unresolvable(
                f"{quote(text)}: '${{' without a closing '}}' (write '\\${{' for a literal '${{')"
            )
        literal.append(text[start:found])
        if any(literal):
            parts.append("".join(literal))
        literal = []
        parts.append(_parse_reference(text[found : end + 1]))
        start = end + 1
    if any(literal) or not parts:
        parts.append("".join(literal))
    return parts


def _parse_reference(text: str) -> Reference:
    body = text[2:-1].strip()
    if "${" in body:
        raise Unresolvable(f"{quote(text)}: references cannot be nested")
    name, colon, arguments = body.partition(":")
    if colon:
        name = name.strip()
        if not name:
            raise Unresolvable(
                f"{quote(text)}: expected ${{NAME:arguments}} with a resolver's name"
            )
        args = [arg.strip() for arg in arguments.split(",")] if arguments.strip() else []
        return Reference(text, [], resolver=name, args=args)
    dots = len(body) - len(body.lstrip("."))
    rest = body[dots:]
    if not rest and dots == 0:
        raise Unresolvable(f"{quote(text)}: an empty reference (write '\\${{' for a literal '${{')")
    try:
        if _SIMPLE_PATH.fullmatch(rest):
            keys = _simple_keys(rest)
        else:
            keys = split_path(rest) if rest else []
    except ValueError as error:
        raise Unresolvable(f"{quote(text)}: {error}") from None
    return Reference(text, keys, up=dots or None)


def _simple_keys(path: str) -> list[str | int]:
    """The keys of a path that ``_SIMPLE_PATH`` matches, as :func:`split_path` splits it
    (``a.b[0].1`` -> ``["a", "b", 0, "1"]``), at string-method speed."""
    if "[" not in path:
        return path.split(".")  # type: ignore[return-value]  # a list[str] is a list[str | int]
    return [int(key[1:-1]) if key[0] == "[" else key for key in path.replace("[", ".[").split(".")]


parse: Final[Callable[[str], list[str | Reference]]] = _Memo(_parse).__getitem__
"""``text`` as literal pieces and references (cached for short strings: a config repeats the
same ``${...}``); raises Unresolvable for malformed syntax."""

plain_path: Final[Callable[[str], list[str | int] | None]] = _Memo(_plain_path).__getitem__
"""The keys of ``text`` when it is exactly one absolute reference to a plain path
(``${a.b[0]}``: most are), else None; cached like :func:`parse`."""

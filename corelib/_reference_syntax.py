"""The syntax of references: a string as literal text and ``${...}`` references.

``${a.b[0]}`` (absolute), ``${.x}`` / ``${..x}`` (relative: the number of dots), ``${NAME:a,b}``
(a resolver call with string arguments) and ``\\${`` (a literal ``${``); no nesting. Parsing
short strings is cached: a config repeats the same references.
"""

from __future__ import annotations

import re
from typing import Final

from corelib._errors import quote
from corelib._overrides import split_path

__all__ = ["Reference", "Unresolvable", "parse"]


class Reference:
    """One ``${...}``: a path (``up`` dots before it, None when absolute) or a resolver call."""

    __slots__ = ("args", "keys", "resolver", "text", "up")

    def __init__(
        self,
        text: str,
        *,
        up: int | None = None,
        keys: list[str | int] | None = None,
        resolver: str | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.text = text
        self.up = up
        self.keys = keys or []
        self.resolver = resolver
        self.args = args or []


class Unresolvable(Exception):
    """A string cannot be resolved (the message; the caller adds where)."""


_SIMPLE_PATH: Final = re.compile(r"[A-Za-z_]\w*(?:\.\w+|\[\d+\])*")
_WHOLE: Final = re.compile(r"\$\{(" + _SIMPLE_PATH.pattern + r")\}")
_SIMPLE_KEY: Final = re.compile(r"\[(\d+)\]|(\w+)")
_PARSED: dict[str, list[str | Reference]] = {}
_PARSED_LIMIT: Final = 4096  # entries of the parse cache (of short strings only)


def parse(text: str) -> list[str | Reference]:
    """``text`` as literal pieces and references (cached for short strings: a config repeats
    the same ``${...}``); raises Unresolvable for malformed syntax."""
    parts = _PARSED.get(text)
    if parts is None:
        parts = _parse(text)
        if len(text) <= 200:
            if len(_PARSED) >= _PARSED_LIMIT:
                _PARSED.clear()
            _PARSED[text] = parts
    return parts


def _parse(text: str) -> list[str | Reference]:
    whole = _WHOLE.fullmatch(text)
    if whole is not None:  # exactly one absolute reference to a plain path: most are
        keys = [int(item) if item else name for item, name in _SIMPLE_KEY.findall(whole[1])]
        return [Reference(text, keys=keys)]
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
        return Reference(text, resolver=name, args=args)
    dots = len(body) - len(body.lstrip("."))
    rest = body[dots:]
    if not rest and dots == 0:
        raise Unresolvable(f"{quote(text)}: an empty reference (write '\\${{' for a literal '${{')")
    try:
        if _SIMPLE_PATH.fullmatch(rest):  # as split_path splits it, faster
            keys = [int(item) if item else name for item, name in _SIMPLE_KEY.findall(rest)]
        else:
            keys = split_path(rest) if rest else []
    except ValueError as error:
        raise Unresolvable(f"{quote(text)}: {error}") from None
    return Reference(text, up=dots or None, keys=keys)

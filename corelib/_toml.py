"""A small TOML 1.0 writer for trees of dicts, lists and scalars (``tomllib`` only reads).

Dicts become ``[tables]`` (those with a single scalar entry, such as ``{_ref_ = "model"}``,
inline tables), lists of dicts become ``[[arrays of tables]]``, other lists inline arrays.
TOML has no null: callers encode ``None`` before writing (see ``corelib._files``); here it is
an error like any unsupported value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from corelib._errors import quote

__all__ = ["dumps_toml"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def dumps_toml(table: Mapping[str, Any]) -> str:
    """Return ``table`` as a TOML document.

    Raises ValueError naming the key path of a value TOML cannot hold (``None``, a non-string
    key, an object).
    """
    lines: list[str] = []
    _emit_table(table, (), lines, header=None)
    return "\n".join(lines).lstrip("\n") + "\n"


def _emit_table(
    table: Mapping[str, Any], path: tuple[str, ...], lines: list[str], header: str | None
) -> None:
    if header is not None:
        lines += ["", header]
    nested = []
    for key, value in table.items():
        if not isinstance(key, str):
            raise ValueError(f"{_dotted(path) or 'the root'}: key {quote(key)} is not a string")
        if _is_table(value) or _is_table_array(value):
            nested.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value, (*path, key))}")
    for key, value in nested:
        sub = (*path, key)
        if _is_table(value):
            _emit_table(value, sub, lines, header=f"[{_dotted(sub)}]")
        else:
            for item in value:
                _emit_table(item, sub, lines, header=f"[[{_dotted(sub)}]]")


def _is_table(value: Any) -> bool:
    """A mapping written as a ``[table]``: all but those with one scalar entry."""
    if not isinstance(value, Mapping):
        return False
    return len(value) != 1 or isinstance(next(iter(value.values())), Mapping | list | tuple)


def _is_table_array(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(item, Mapping) for item in value)
        and any(_is_table(item) for item in value)
    )


def _value(value: Any, path: tuple[str, ...]) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        items = (_value(item, (*path, str(i))) for i, item in enumerate(value))
        return f"[{', '.join(items)}]"
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise ValueError(f"{_dotted(path)}: key {quote(key)} is not a string")
        pairs = (f"{_key(k)} = {_value(v, (*path, k))}" for k, v in value.items())
        return f"{{{', '.join(pairs)}}}"
    raise ValueError(f"{_dotted(path)}: TOML cannot hold {quote(value)} ({type(value).__name__})")


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(_key(part) for part in path)


def _string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'

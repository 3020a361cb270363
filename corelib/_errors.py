"""One exception hierarchy for everything corelib raises on purpose."""

from __future__ import annotations

import reprlib
from typing import Any

__all__ = [
    "QUOTE_LIMIT",
    "ConfigError",
    "CorelibError",
    "InstantiationError",
    "PluginError",
    "RegistryError",
    "a_type",
    "quote",
]

QUOTE_LIMIT = 200
"""The most characters of any value an error message quotes (an alias bomb stays small)."""


class _ShortRepr(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 640:  # repr() refuses past sys.get_int_max_str_digits() anyway
            return f"<an integer of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_repr = _ShortRepr()  # keyword arguments only from Python 3.12
_repr.maxlevel = 4
_repr.maxdict = _repr.maxlist = _repr.maxtuple = _repr.maxset = 8
_repr.maxstring = _repr.maxother = 160


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` for an error message, cut to at most ``limit`` characters.

    Containers are abbreviated while they are walked (``reprlib``), so quoting a huge or deeply
    shared value costs little: an alias bomb is never expanded.
    """
    try:
        text = _repr.repr(value)
    except Exception as exc:  # a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__} object; repr failed: {type(exc).__name__}>"
    if len(text) > limit:
        text = text[: limit - 5] + "[...]"
    return text


def a_type(value: object) -> str:
    """The type of ``value`` with its article, for messages: ``"an int"``, ``"a Trainer"``."""
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


class CorelibError(Exception):
    """Base class of every error corelib raises on purpose."""


class ConfigError(CorelibError):
    """Loading, saving, or overriding a config failed (names the file and key path)."""


class RegistryError(CorelibError):
    """A registry lookup or registration failed (names the group, name and plugin)."""


class PluginError(RegistryError):
    """A plugin failed to import or register (names plugin, distribution and version)."""


class InstantiationError(CorelibError):
    """Building one node of a config tree failed.

    ``path`` is where in the tree (``""`` for the root, e.g. ``"model.blocks[3]"``),
    ``target`` the node's ``_target_`` as written (a string, or a callable's import path).
    The original exception, if any, is kept as ``__cause__``. ``user_error`` is true when the
    cause was raised by the target's own code (a constructor or function), false when the
    config itself is wrong (unknown target, bad keyword, wrong type, refused import).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        target: str | None = None,
        user_error: bool = False,
    ) -> None:
        self.message = message
        self.path = path
        self.target = target
        self.user_error = user_error
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"at {self.path!r}" if self.path else "at the root"
        what = f" (target {quote(self.target)})" if self.target is not None else ""
        return f"{where}{what}: {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_instantiation_error,
            (self.message, self.path, self.target, self.user_error),
        )


def _rebuild_instantiation_error(
    message: str, path: str, target: str | None, user_error: bool
) -> InstantiationError:
    return InstantiationError(message, path=path, target=target, user_error=user_error)

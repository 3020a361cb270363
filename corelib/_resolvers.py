"""Resolvers: what ``${NAME:arg,...}`` calls. ``env`` is built in; plugins register more.

A resolver is a callable that takes the reference's arguments as strings and returns a scalar
(a string, number, boolean or None). Plugins register theirs in the registry group
``resolvers``; like any registered component, they are allowed in safe mode. A resolver is
only ever found by name: ``${os.system:...}`` is an unknown resolver, never an import.

The built-in resolvers belong to corelib and cannot be replaced by a plugin: ``env`` reads the
environment under the safe-mode rule (only variables the user allowed outside the file). A
built-in takes the :class:`Context` of the resolution first, so that more of them (``${run:dir}``
of a run) can be added to :data:`BUILTINS` with what they need.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Sequence
from typing import Any, Final

import attrs

from corelib._errors import CorelibError, RegistryError, quote
from corelib._text import describe_exception
from corelib.registry import registry

__all__ = ["BUILTINS", "GROUP", "Context", "ResolverError", "call_resolver"]

GROUP: Final = "resolvers"
"""The registry group of the resolvers that plugins add."""


class ResolverError(Exception):
    """A resolver refused its arguments or could not be found (the caller adds where)."""


@attrs.frozen
class Context:
    """What built-in resolvers may use. ``allow_env``: the environment variables that may be
    read (None: any; the safe-mode rule)."""

    allow_env: frozenset[str] | None = None


def _env(context: Context, args: Sequence[str]) -> str:
    """``${env:NAME}`` / ``${env:NAME,default}``: the variable's value (a string)."""
    if not args or not args[0].strip():
        raise ResolverError("expected ${env:NAME} or ${env:NAME,default}")
    name = args[0].strip()
    if context.allow_env is not None and name not in context.allow_env:
        allowed = ", ".join(sorted(context.allow_env)) or "none"
        raise ResolverError(
            f"the environment variable {quote(name)} may not be read by this config (safe "
            f"mode; a default does not change that): allow it with --allow-env {_short(name)} "
            f"or allow_env=[...] (allowed now: {quote(allowed)[1:-1]})"
        )
    value = os.environ.get(name)
    if value is not None:
        return value
    if len(args) > 1:
        return ",".join(args[1:])
    raise ResolverError(
        f"the environment variable {quote(name)} is not set (give a default: "
        f"${{env:{_short(name)},DEFAULT}})"
    )


def _short(name: str) -> str:
    """``name`` as is when short, else bounded: a message never repeats a huge name."""
    return name if len(name) <= 100 and name.isprintable() else "NAME"


BUILTINS: Final[dict[str, Callable[[Context, Sequence[str]], Any]]] = {"env": _env}
"""The resolvers corelib itself defines, by name."""


def call_resolver(name: str, args: Sequence[str], context: Context) -> Any:
    """The value of ``${name:args}``; raises ResolverError (or the resolver's CorelibError)."""
    builtin = BUILTINS.get(name)
    if builtin is not None:
        return builtin(context, args)
    function = _registered(name)
    try:
        return function(*args)
    except CorelibError:
        raise
    except Exception as error:
        raise ResolverError(
            f"the resolver {quote(name)} raised {describe_exception(error)}"
        ) from error


def _registered(name: str) -> Callable[..., Any]:
    try:
        entry = registry.entry(name)
    except RegistryError:
        entries = [entry for entry in registry.entries() if entry.group == GROUP]
        known = [*BUILTINS, *(entry.qualified_name for entry in entries)]
        close = difflib.get_close_matches(name, [*known, *(entry.name for entry in entries)], n=3)
        hint = f"did you mean {', '.join(map(quote, close))}?" if close else ""
        raise ResolverError(
            f"unknown resolver {quote(name)}; {hint or 'resolvers: ' + ', '.join(known)} "
            f"(a resolver is registered in the group {GROUP!r}; import paths are not resolvers)"
        ) from None
    if entry.group != GROUP:
        raise ResolverError(
            f"{quote(name)} is a component of the group {entry.group!r}, not a resolver "
            f"(group {GROUP!r})"
        )
    function = entry.load()
    if not callable(function):
        raise ResolverError(f"the resolver {quote(name)} is not callable")
    return function

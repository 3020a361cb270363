"""Resolvers: what ``${NAME:arg,...}`` calls. ``env`` is built in; plugins register more.

A resolver is a callable that takes the reference's arguments as strings and returns a scalar
(a string, number, boolean or None). Plugins register theirs in the registry group
``resolvers``; like any registered component, they are allowed in safe mode. A resolver is
only ever found by name: ``${os.system:...}`` is an unknown resolver, never an import.

The built-in resolvers belong to corelib and cannot be replaced by a plugin: ``env`` reads the
environment under the safe-mode rule (only variables the user allowed outside the file);
``run`` gives the directory of the recorded run (``${run:dir}``, see docs/runs.md). A built-in
takes the :class:`Context` of the resolution first.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Final

import attrs

from corelib._errors import CorelibError, RegistryError, quote
from corelib._text import describe_exception
from corelib.registry import registry

__all__ = [
    "BUILTINS",
    "GROUP",
    "Context",
    "ResolverError",
    "call_resolver",
    "env_hidden",
    "run_dir_given",
]

GROUP: Final = "resolvers"
"""The registry group of the resolvers that plugins add."""


class ResolverError(Exception):
    """A resolver refused its arguments or could not be found (the caller adds where)."""


_RUN_DIR: ContextVar[Path | None] = ContextVar("corelib_run_dir", default=None)
_ENV_HIDDEN: ContextVar[bool] = ContextVar("corelib_env_hidden", default=False)


@contextmanager
def run_dir_given(run_dir: str | os.PathLike[str] | None) -> Iterator[None]:
    """Inside, ``${run:dir}`` is ``run_dir`` as an absolute path (None: not a recorded run, so
    ``${run:dir}`` is an error)."""
    token = _RUN_DIR.set(None if run_dir is None else Path(os.path.abspath(run_dir)))
    try:
        yield
    finally:
        _RUN_DIR.reset(token)


@contextmanager
def env_hidden() -> Iterator[None]:
    """Inside, ``${env:NAME}`` gives the text ``<env:NAME>`` (after the same checks) instead of
    the variable's value: for a record of the config that must hold no secret."""
    token = _ENV_HIDDEN.set(True)
    try:
        yield
    finally:
        _ENV_HIDDEN.reset(token)


@attrs.frozen
class Context:
    """What built-in resolvers may use. ``allow_env``: the environment variables that may be
    read (None: any; the safe-mode rule); ``run_dir``: the recorded run's directory (None:
    none; by default the one :func:`run_dir_given` gives); ``hide_env``: see
    :func:`env_hidden`."""

    allow_env: frozenset[str] | None = None
    run_dir: Path | None = attrs.field(factory=_RUN_DIR.get)
    hide_env: bool = attrs.field(factory=_ENV_HIDDEN.get)


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
    if context.hide_env:
        return f"<env:{_short(name)}>"
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


def _run(context: Context, args: Sequence[str]) -> str:
    """``${run:dir}``: the recorded run's directory, an absolute path."""
    if [arg.strip() for arg in args] != ["dir"]:
        raise ResolverError("expected ${run:dir} (the run's directory)")
    if context.run_dir is None:
        raise ResolverError(
            "${run:dir} is the directory of a recorded run, and this is not one: pass "
            "--run-dir DIR (Python: corelib.runs.run(..., run_dir=DIR))"
        )
    return str(context.run_dir)


BUILTINS: Final[dict[str, Callable[[Context, Sequence[str]], Any]]] = {"env": _env, "run": _run}
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

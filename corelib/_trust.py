"""Trusted-only parameters and the safe-mode policy that a build from an untrusted file runs under.

A component marks a parameter that picks a credential, or where a credential goes, with
``Annotated[str, Trusted]``. In safe mode such a parameter may be set only by a trusted source:
a key path the caller names as trusted (the CLI names the paths its overrides set). While a
component is constructed in safe mode, :func:`safe_mode` tells it the policy in force.
"""

from __future__ import annotations

import contextlib
import contextvars
import types
import typing
import urllib.parse
from collections import abc as cabc
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

import attrs

from corelib._errors import ConfigError, quote
from corelib._overrides import split_path
from corelib._records import record_kind, record_of
from corelib._traversal import Location

__all__ = [
    "KeyPaths",
    "SafeMode",
    "Trusted",
    "TrustedPaths",
    "applying",
    "is_trusted_only",
    "parse_host",
    "safe_mode",
    "trusted_fields",
]


@typing.final
class _TrustedMark:
    """The type of :data:`Trusted` (one instance)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "corelib.Trusted"

    def __reduce__(self) -> str:
        return "Trusted"  # pickles as the one instance


Trusted: Final = _TrustedMark()
"""Marks a trusted-only parameter: ``api_key_env: Annotated[str, Trusted]``.

An untrusted config file (safe mode) cannot set it; Python, a ``.py`` config and command-line
overrides can. Its default value is always fine.
"""


def is_trusted_only(annotation: Any) -> bool:
    """Whether ``annotation`` carries :data:`Trusted` (also inside ``X | None`` and nesting).

    An annotation that could not be resolved (its source text) counts where it names
    ``Trusted``: a mark must not be lost to an unrelated unresolvable name.
    """
    if isinstance(annotation, str):
        return "Trusted" in annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        marks = annotation.__metadata__
        return any(mark is Trusted for mark in marks) or is_trusted_only(annotation.__origin__)
    if origin is typing.Union or origin is types.UnionType:
        return any(is_trusted_only(arg) for arg in typing.get_args(annotation))
    return False


KeyPaths = Iterable[str | Sequence[Any]] | None
"""Trusted key paths: strings (``llm.api_key_env``, ``layers[0]``; ``""``: all) or key lists."""


def _as_tuple(items: Iterable[str]) -> tuple[str, ...]:
    return (items,) if isinstance(items, str) else tuple(items)


_SEQUENCES = (list, tuple, cabc.Sequence, cabc.MutableSequence)
_MAPPINGS = (dict, cabc.Mapping, cabc.MutableMapping)


def trusted_fields(value: Any, tp: Any) -> list[tuple[Any, ...]]:
    """Where ``value``, a plain value for a parameter typed ``tp``, sets a trusted-only field of
    a record type it would be structured into (an attrs class, dataclass, TypedDict or pydantic
    model; keys into ``value``; nested dicts and items of typed lists, tuples and dicts too)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return trusted_fields(value, args[0])
    if origin is typing.Union or origin is types.UnionType:
        found = (keys for arg in args for keys in trusted_fields(value, arg))
        return list(dict.fromkeys(found))  # any member might be the one structured
    out: list[tuple[Any, ...]] = []
    if isinstance(value, dict) and record_kind(tp) is not None:
        for key, field_type in _record_field_types(tp).items():
            if key not in value:
                continue
            if is_trusted_only(field_type):
                out.append((key,))
            else:
                out += [(key, *k) for k in trusted_fields(value[key], field_type)]
    elif isinstance(value, dict) and origin in _MAPPINGS and len(args) == 2:
        for key, item in value.items():
            out += [(key, *k) for k in trusted_fields(item, args[1])]
    elif type(value) in (list, tuple) and origin in _SEQUENCES and args:
        fixed = origin is tuple and not (len(args) == 2 and args[1] is Ellipsis)
        for index, item in enumerate(value):
            item_type = (args[index] if index < len(args) else None) if fixed else args[0]
            out += [(index, *k) for k in trusted_fields(item, item_type)]
    return out


def _record_field_types(tp: Any) -> dict[str, Any]:
    """The field types of a record type by dict key; where its annotations cannot be resolved
    (attrs classes only), a field's type is its source text, which still shows a mark."""
    try:
        return {key: field.type for key, field in record_of(tp).fields.items()}
    except Exception:
        if not attrs.has(tp):
            return {}
        return {f.name: f.type for f in attrs.fields(tp) if f.init}


@attrs.frozen
class SafeMode:
    """The safe-mode policy of a build from an untrusted config (see :func:`safe_mode`).

    ``allow``: the allowed import prefixes. ``hosts``: the hosts (``HOST`` or ``HOST:PORT``)
    the user named outside the file as fit to receive credentials (the CLI's
    ``--allow-host``). ``trusted``: while a component is constructed, the names of its
    keyword arguments whose values came from outside the file (e.g. a command-line override).
    ``env``: the environment variables that ``${env:NAME}`` may read (the CLI's
    ``--allow-env``).
    """

    allow: tuple[str, ...] = ()
    hosts: tuple[str, ...] = attrs.field(default=(), converter=_as_tuple)
    trusted: frozenset[str] = frozenset()
    env: tuple[str, ...] = attrs.field(default=(), converter=_as_tuple)

    @hosts.validator
    def _check_hosts(self, _: Any, hosts: tuple[str, ...]) -> None:
        for host in hosts:
            parse_host(host)

    def allows_host(self, url: str) -> bool:
        """Whether ``url``'s host (and port: the scheme's default where none is written) is
        one of ``hosts``; a host named without a port allows every port."""
        parts = urllib.parse.urlsplit(url)
        try:
            port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
        except ValueError:  # a malformed port matches nothing
            return False
        host = (parts.hostname or "").lower()
        for allowed in self.hosts:
            allowed_host, allowed_port = parse_host(allowed)
            if allowed_host == host and allowed_port in (None, port):
                return True
        return False


def parse_host(text: str) -> tuple[str, int | None]:
    """``HOST``, ``HOST:PORT``, ``[IPV6]:PORT`` or a bare IPv6 address -> (host, port or None).

    Raises ConfigError for anything else.
    """
    host, port = text, ""
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            host = ""
        port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
        port = port or "-"  # "host:" names no port: refused
    bad_port = port != "" and not (port.isdigit() and 0 < int(port) < 65536)
    if not host or any(c in host for c in "/@?#[] ") or bad_port:
        raise ConfigError(
            f"bad host {quote(text)}: expected HOST or HOST:PORT with a port from 1 to 65535 "
            "(e.g. 127.0.0.1:8000)"
        )
    return host.lower(), int(port) if port else None


_POLICY: contextvars.ContextVar[SafeMode | None] = contextvars.ContextVar(
    "corelib_safe_mode", default=None
)


def safe_mode() -> SafeMode | None:
    """The safe-mode policy in force, or None when the build is trusted (unrestricted).

    ``instantiate(cfg, _allow_=...)`` sets it while it builds, and the CLI while it builds and
    runs a YAML/JSON/TOML config. Components that handle credentials read it when constructed.
    """
    return _POLICY.get()


@contextlib.contextmanager
def applying(policy: SafeMode | None) -> Iterator[None]:
    """Make ``policy`` the one :func:`safe_mode` returns inside the ``with`` block."""
    token = _POLICY.set(policy)
    try:
        yield
    finally:
        _POLICY.reset(token)


class TrustedPaths:
    """Key paths whose values, and everything below them, came from a trusted source.

    Each path is a string (``llm.api_key_env``, ``layers[0]``; ``""`` is the whole tree) or a
    sequence of keys (``("layers", 0)``).
    """

    def __init__(self, paths: KeyPaths) -> None:
        self._keys: set[tuple[str, ...]] = set()
        if isinstance(paths, str):
            raise ConfigError(f"trusted key paths must be a list, got the string {paths!r}")
        for path in paths or ():
            if isinstance(path, str):
                try:
                    path = split_path(path) if path else []
                except ValueError as exc:
                    raise ConfigError(f"trusted key path: {exc}") from None
            elif not isinstance(path, (list, tuple)):
                raise ConfigError(f"a trusted key path is a string or a list of keys: {path!r}")
            self._keys.add(tuple(map(str, path)))  # "0" and 0 name the same item

    def __bool__(self) -> bool:
        return bool(self._keys)

    def covers(self, loc: Location) -> bool:
        """Whether the value at ``loc`` came from a trusted source."""
        if not self._keys:
            return False
        keys = tuple(map(str, loc.keys()))
        return any(keys[:depth] in self._keys for depth in range(len(keys) + 1))

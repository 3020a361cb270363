"""Signature facts about targets, cached: accepted keywords and keyword problems."""

from __future__ import annotations

import difflib
import functools
from typing import TYPE_CHECKING, Any

from corelib._errors import quote
from corelib._traversal import Location
from corelib._trust import trusted_fields
from corelib._typing import parameter_types, trusted_parameters
from corelib.registry import TargetError, import_path_of

if TYPE_CHECKING:
    import inspect

    from corelib._trust import TrustedPaths

__all__ = [
    "PLACEHOLDER",
    "UNFILLED",
    "describe_target",
    "keyword_problem",
    "parameters",
    "placeholders",
    "positional_names",
    "untrusted_settings",
]

_cache: dict[int, tuple[Any, inspect.Signature | None]] = {}

PLACEHOLDER = "???"
"""What ``corelib describe NAME --yaml`` writes for a required parameter: a value to fill in.
``check`` and ``instantiate`` refuse a node argument that is still exactly this string."""

UNFILLED = f"{PLACEHOLDER!r} is a placeholder for a required value: replace it with a value"


def placeholders(args: Any, kwargs: dict[str, Any]) -> list[str | int]:
    """The keyword names and positional indices of the arguments that are :data:`PLACEHOLDER`."""
    found: list[str | int] = []
    for key, value in kwargs.items():
        if type(value) is str and value == PLACEHOLDER:
            found.append(key)
    if args:
        for index, value in enumerate(args):
            if type(value) is str and value == PLACEHOLDER:
                found.append(index)
    return found


def signature_of(target: Any) -> inspect.Signature | None:
    """``inspect.signature(target)``, cached per target; None where it cannot be read."""
    hit = _cache.get(id(target))
    if hit is not None and hit[0] is target:
        return hit[1]
    import inspect

    try:
        signature: inspect.Signature | None = inspect.signature(target)
    except (TypeError, ValueError):
        signature = None
    _cache[id(target)] = (target, signature)
    return signature


def parameters(target: Any) -> list[inspect.Parameter]:
    """The parameters of ``target``'s signature (empty where it cannot be read)."""
    signature = signature_of(target)
    return list(signature.parameters.values()) if signature is not None else []


def positional_names(target: Any) -> list[str]:
    """Names of the parameters that positional arguments bind to, in order."""
    return [
        p.name for p in parameters(target) if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def keyword_problem(
    target: Any, args: Any, kwargs: dict[str, Any], *, partial: bool = False
) -> str | None:
    """Why ``target(*args, **kwargs)`` cannot bind, naming the accepted keywords; None if it can.

    With ``partial=True`` missing arguments are fine: only unknown keywords are problems.
    """
    signature = signature_of(target)
    if signature is None:
        return None
    params = signature.parameters.values()
    accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
    unknown = [] if takes_any else [k for k in kwargs if k not in accepted]
    if unknown:
        parts = []
        for key in unknown:
            close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            parts.append(f"{quote(key)}{hint}")
        noun = "keyword argument" if len(unknown) == 1 else "keyword arguments"
        return (
            f"unexpected {noun} {', '.join(parts)} for {describe_target(target)}; "
            f"accepted: {', '.join(accepted) or 'none'}"
        )
    if partial:
        return None
    try:
        signature.bind(*args, **kwargs)
    except TypeError as error:
        return f"{error} (signature: {describe_target(target)}{signature})"
    return None


def untrusted_settings(
    target: Any, args: Any, kwargs: dict[str, Any], loc: Location, trusted: TrustedPaths
) -> list[tuple[Location, str]]:
    """Where an untrusted config sets a trusted-only parameter of ``target``, and why not.

    ``args`` and ``kwargs`` are the node's arguments at ``loc``; a value at a key path that
    ``trusted`` covers came from a trusted source.
    """
    hints = parameter_types(target)
    names = trusted_parameters(target)
    if not hints and not names:
        return []
    given = [(loc.child(name), name, value) for name, value in kwargs.items()]
    if args:
        positional = zip(positional_names(target), args, strict=False)
        given += [
            (loc.child("_args_").child(index), name, value)
            for index, (name, value) in enumerate(positional)
        ]
    places: list[tuple[Location, str]] = []
    for where, name, value in given:
        if name in names:
            places.append((where, repr(name)))
        elif name in hints and isinstance(value, dict | list | tuple):
            for keys in trusted_fields(value, hints[name]):
                field = functools.reduce(Location.child, keys, where)
                places.append((field, f"{keys[-1]!r} (a field of {name!r})"))
    return [
        (
            where,
            f"trusted-only parameter {what} cannot be set by an untrusted config file (safe "
            f"mode); set it from Python, a .py config or a command-line override",
        )
        for where, what in places
        if not trusted.covers(where)
    ]


def describe_target(target: Any) -> str | None:
    """A target as written: the string itself, or a callable's import path."""
    if target is None or isinstance(target, str):
        return target
    try:
        return import_path_of(target)
    except TargetError:
        module = getattr(target, "__module__", None)
        qualname = getattr(target, "__qualname__", None) or quote(target)
        return f"{module}.{qualname}" if module else str(qualname)

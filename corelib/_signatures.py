"""Signature facts about targets, cached: accepted keywords and keyword problems."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from corelib._errors import quote
from corelib.registry import TargetError, import_path_of

if TYPE_CHECKING:
    import inspect

__all__ = ["describe_target", "keyword_problem", "parameters", "positional_names"]

_cache: dict[int, tuple[Any, inspect.Signature | None]] = {}


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

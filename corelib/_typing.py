"""Checking and structuring keyword values against a target's annotations.

Values are passed through unchanged when they already fit (no copies); a plain dict for an
attrs-typed parameter is structured through cattrs; scalars are strict (``"3"`` is not an
``int``, ``1.5`` is not an ``int``, ``1`` is accepted as a ``float``). Types that cannot be
checked at run time (protocols, type variables, unresolved forward references) accept anything.
"""

from __future__ import annotations

import collections.abc as cabc
import enum
import functools
import pathlib
import types
import typing
from typing import Any

import attrs

from corelib._errors import quote

__all__ = ["TypeMismatch", "coerce", "describe_type", "parameter_types"]

_NO_HINTS: dict[str, Any] = {}
_hints_cache: dict[int, tuple[Any, dict[str, Any]]] = {}


class TypeMismatch(Exception):
    """A value does not fit a type. ``keys`` locate it inside the checked value."""

    def __init__(self, expected: Any, value: Any, keys: tuple[Any, ...] = (), detail: str = ""):
        self.expected = expected
        self.value = value
        self.keys = keys
        self.detail = detail
        shown = quote(value, 80)
        message = f"expected {describe_type(expected)}, got {type(value).__name__} {shown}"
        super().__init__(f"{message} ({detail})" if detail else message)


def describe_type(tp: Any) -> str:
    """A short human spelling of a type (``int``, ``list[str]``, ``Optimizer``)."""
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__qualname__
    return str(tp).replace("typing.", "")


def parameter_types(target: Any) -> dict[str, Any]:
    """The checkable annotated parameters of ``target`` by keyword name (cached per target)."""
    cached = _hints_cache.get(id(target))
    if cached is not None and cached[0] is target:
        return cached[1]
    hints = _compute_hints(target)
    _hints_cache[id(target)] = (target, hints)
    return hints


def _compute_hints(target: Any) -> dict[str, Any]:
    try:
        if isinstance(target, type) and attrs.has(target):
            attrs.resolve_types(target)
            found = {f.alias or f.name: f.type for f in attrs.fields(target) if f.init}
        else:
            function = typing.cast(Any, target).__init__ if isinstance(target, type) else target
            found = typing.get_type_hints(function)
            found.pop("return", None)
            found.pop("self", None)
    except Exception:  # unresolvable annotations cannot be checked
        return _NO_HINTS
    checkable = {
        k: v for k, v in found.items() if v is not None and v is not Any and v is not object
    }
    return checkable or _NO_HINTS


def _strict_hook(value: Any, tp: Any) -> Any:
    return coerce(value, tp)


@functools.cache
def _converter() -> Any:
    """The cattrs converter for attrs classes; field values go through :func:`coerce`.

    Built on first use so that ``import corelib`` does not import cattrs.
    """
    import cattrs

    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook_func(lambda tp: not attrs.has(tp), _strict_hook)
    return converter


def coerce(value: Any, tp: Any) -> Any:
    """Return ``value`` fitted to ``tp`` (unchanged where it already fits) or raise TypeMismatch."""
    if tp is Any or tp is object or isinstance(tp, (typing.TypeVar, str, typing.ForwardRef)):
        return value
    origin = typing.get_origin(tp)
    if origin is None:
        return _coerce_plain(value, tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return _coerce_union(value, tp, args)
    if origin is typing.Literal:
        if value in args:
            return value
        raise TypeMismatch(tp, value)
    if origin is typing.Annotated:
        return coerce(value, args[0])
    if origin is type:
        expected = args[0] if args else object
        if isinstance(value, type) and (
            expected is Any or not isinstance(expected, type) or issubclass(value, expected)
        ):
            return value
        raise TypeMismatch(tp, value)
    if origin is cabc.Callable:
        if callable(value):
            return value
        raise TypeMismatch(tp, value)
    if origin in (list, cabc.Sequence, cabc.MutableSequence, set, frozenset, cabc.Set):
        return _coerce_collection(value, tp, origin, args)
    if origin is tuple:
        return _coerce_tuple(value, tp, args)
    if origin in (dict, cabc.Mapping, cabc.MutableMapping):
        return _coerce_mapping(value, tp, args)
    return _coerce_plain(value, origin) if isinstance(origin, type) else value


def _coerce_plain(value: Any, tp: Any) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise TypeMismatch(tp, value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeMismatch(tp, value)
    if tp is float:
        if isinstance(value, float):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        raise TypeMismatch(tp, value)
    if tp is type(None):
        if value is None:
            return value
        raise TypeMismatch(tp, value)
    if not isinstance(tp, type):
        return value
    try:
        if isinstance(value, tp):
            return value
    except TypeError:  # protocols and other types isinstance cannot check
        return value
    if attrs.has(tp) and isinstance(value, dict):
        return _structure_attrs(value, tp)
    if issubclass(tp, enum.Enum):
        return _coerce_enum(value, tp)
    if issubclass(tp, pathlib.PurePath) and isinstance(value, str):
        return tp(value)
    if tp is cabc.Callable and callable(value):
        return value
    raise TypeMismatch(tp, value)


def _structure_attrs(value: dict[str, Any], tp: type) -> Any:
    import cattrs

    try:
        return _converter().structure(value, tp)
    except TypeMismatch:
        raise
    except Exception as error:
        if isinstance(error, cattrs.BaseValidationError):
            messages = cattrs.transform_error(error)
        else:
            messages = [str(error)]
        raise TypeMismatch(tp, value, detail="; ".join(messages)) from error


def _coerce_enum(value: Any, tp: type[enum.Enum]) -> Any:
    try:
        return tp(value)
    except ValueError:
        pass
    if isinstance(value, str) and value in tp.__members__:
        return tp[value]
    raise TypeMismatch(tp, value, detail=f"one of {[m.value for m in tp]}")


def _coerce_union(value: Any, tp: Any, args: tuple[Any, ...]) -> Any:
    for arg in args:  # an exact fit first: never convert what already fits a member
        try:
            if coerce(value, arg) is value:
                return value
        except TypeMismatch:
            continue
    for arg in args:
        try:
            return coerce(value, arg)
        except TypeMismatch:
            continue
    raise TypeMismatch(tp, value)


def _coerce_items(values: list[Any], item_type: Any) -> tuple[list[Any], bool]:
    out = []
    changed = False
    for index, item in enumerate(values):
        try:
            fitted = coerce(item, item_type)
        except TypeMismatch as error:
            raise TypeMismatch(
                error.expected, error.value, (index, *error.keys), error.detail
            ) from error
        changed = changed or fitted is not item
        out.append(fitted)
    return out, changed


def _coerce_collection(value: Any, tp: Any, origin: Any, args: tuple[Any, ...]) -> Any:
    kind = {cabc.Sequence: (list, tuple), cabc.MutableSequence: (list,), cabc.Set: (set, frozenset)}
    accepted = kind.get(origin, (list, tuple) if origin is list else (set, frozenset, list, tuple))
    if not isinstance(value, accepted) or isinstance(value, str):
        raise TypeMismatch(tp, value)
    if not args:
        return value
    items, changed = _coerce_items(list(value), args[0])
    wanted = (
        origin if isinstance(origin, type) and origin in (list, set, frozenset) else type(value)
    )
    if not changed and type(value) is wanted:
        return value
    return wanted(items)


def _coerce_tuple(value: Any, tp: Any, args: tuple[Any, ...]) -> Any:
    if not isinstance(value, (list, tuple)):
        raise TypeMismatch(tp, value)
    if not args or (len(args) == 2 and args[1] is Ellipsis):
        items, changed = _coerce_items(list(value), args[0] if args else Any)
    else:
        if len(args) != len(value):
            raise TypeMismatch(tp, value, detail=f"expected {len(args)} items")
        items, changed = [], False
        for index, (item, item_type) in enumerate(zip(value, args, strict=True)):
            try:
                fitted = coerce(item, item_type)
            except TypeMismatch as error:
                raise TypeMismatch(error.expected, error.value, (index, *error.keys)) from error
            changed = changed or fitted is not item
            items.append(fitted)
    if not changed and type(value) is tuple:
        return value
    return tuple(items)


def _coerce_mapping(value: Any, tp: Any, args: tuple[Any, ...]) -> Any:
    if not isinstance(value, cabc.Mapping):
        raise TypeMismatch(tp, value)
    if len(args) != 2:
        return value
    key_type, value_type = args
    out = {}
    changed = False
    for key, item in value.items():
        try:
            fitted_key = coerce(key, key_type)
            fitted = coerce(item, value_type)
        except TypeMismatch as error:
            raise TypeMismatch(
                error.expected, error.value, (key, *error.keys), error.detail
            ) from error
        changed = changed or fitted is not item or fitted_key is not key
        out[fitted_key] = fitted
    return value if not changed else out

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
from corelib._trust import is_trusted_only

__all__ = [
    "TypeMismatch",
    "coerce",
    "describe_type",
    "parameter_types",
    "trusted_parameters",
    "validate",
]

_NO_HINTS: dict[str, Any] = {}
_NONE_TRUSTED: frozenset[str] = frozenset()
_hints_cache: dict[int, tuple[Any, dict[str, Any], frozenset[str]]] = {}


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
    return _hints(target)[1]


def trusted_parameters(target: Any) -> frozenset[str]:
    """The keyword names of ``target``'s trusted-only parameters (``Annotated[..., Trusted]``)."""
    return _hints(target)[2]


def _hints(target: Any) -> tuple[Any, dict[str, Any], frozenset[str]]:
    cached = _hints_cache.get(id(target))
    if cached is None or cached[0] is not target:
        hints, trusted = _compute_hints(target)
        cached = (target, hints, trusted or _NONE_TRUSTED)
        _hints_cache[id(target)] = cached
    return cached


def _compute_hints(target: Any) -> tuple[dict[str, Any], frozenset[str]]:
    is_attrs = isinstance(target, type) and attrs.has(target)
    function = typing.cast(Any, target).__init__ if isinstance(target, type) else target
    try:
        if is_attrs:
            attrs.resolve_types(target, include_extras=True)
            found = {f.alias or f.name: f.type for f in attrs.fields(target) if f.init}
        else:
            found = typing.get_type_hints(function, include_extras=True)
            found.pop("return", None)
            found.pop("self", None)
    except Exception:  # unresolvable annotations cannot be checked, but marks are still read
        raw = (
            {f.alias or f.name: f.type for f in attrs.fields(target) if f.init}
            if is_attrs
            else dict(getattr(function, "__annotations__", None) or {})
        )
        return _NO_HINTS, frozenset(name for name, tp in raw.items() if is_trusted_only(tp))
    checkable = {
        k: v for k, v in found.items() if v is not None and v is not Any and v is not object
    }
    trusted = frozenset(name for name, tp in checkable.items() if is_trusted_only(tp))
    return checkable or _NO_HINTS, trusted


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


def validate(value: Any, tp: Any) -> None:
    """Raise TypeMismatch where :func:`coerce` would, without constructing anything.

    A plain dict for an attrs class is checked field by field (names, required fields, each
    field's type) instead of being structured: no ``__init__``, ``__attrs_post_init__``,
    validator or converter of the class runs, and the mismatch's keys reach into the dict.
    """
    coerce(value, tp, build=False)


def coerce(value: Any, tp: Any, *, build: bool = True) -> Any:
    """Return ``value`` fitted to ``tp`` (unchanged where it already fits) or raise TypeMismatch.

    With ``build=False`` (see :func:`validate`) nothing is converted: ``value`` is returned.
    """
    if tp is Any or tp is object or isinstance(tp, (typing.TypeVar, str, typing.ForwardRef)):
        return value
    origin = typing.get_origin(tp)
    if origin is None:
        return _coerce_plain(value, tp, build)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return _coerce_union(value, tp, args, build)
    if origin is typing.Literal:
        if value in args:
            return value
        raise TypeMismatch(tp, value)
    if origin is typing.Annotated:
        return coerce(value, args[0], build=build)
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
        return _coerce_collection(value, tp, origin, args, build)
    if origin is tuple:
        return _coerce_tuple(value, tp, args, build)
    if origin in (dict, cabc.Mapping, cabc.MutableMapping):
        return _coerce_mapping(value, tp, args, build)
    return _coerce_plain(value, origin, build) if isinstance(origin, type) else value


def _coerce_plain(value: Any, tp: Any, build: bool) -> Any:
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
            return float(value) if build else value
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
        return _structure_attrs(value, tp) if build else _validate_attrs(value, tp)
    if issubclass(tp, enum.Enum):
        return _coerce_enum(value, tp) if build else _validate_enum(value, tp)
    if issubclass(tp, pathlib.PurePath) and isinstance(value, str):
        return tp(value) if build else value
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


def _validate_attrs(value: dict[str, Any], tp: type) -> Any:
    """Check a plain dict against an attrs class as cattrs would structure it, building nothing:
    keys are the ``__init__`` fields' names, every field without a default is required."""
    try:
        attrs.resolve_types(tp, include_extras=True)
    except Exception as error:  # unresolvable annotations: structuring would fail as well
        detail = f"its annotations cannot be resolved: {error}"
        raise TypeMismatch(tp, value, detail=detail) from None
    fields = {f.name: f for f in attrs.fields(tp) if f.init}
    extra = [key for key in value if key not in fields]
    if extra:
        raise TypeMismatch(tp, value, detail=f"unknown field(s) {', '.join(map(repr, extra))}")
    for name, field in fields.items():
        if name not in value:
            if field.default is attrs.NOTHING:
                raise TypeMismatch(tp, value, (name,), detail="required field missing")
            continue
        if field.type is None:
            continue
        try:
            coerce(value[name], field.type, build=False)
        except TypeMismatch as error:
            raise TypeMismatch(
                error.expected, error.value, (name, *error.keys), error.detail
            ) from error
    return value


def _validate_enum(value: Any, tp: type[enum.Enum]) -> Any:
    """Whether ``tp(value)`` or ``tp[value]`` would find a member, calling neither."""
    if any(member.value == value for member in tp) or (
        isinstance(value, str) and value in tp.__members__
    ):
        return value
    if "_missing_" in vars(tp):  # a lookup of the class's own cannot be asked without running it
        return value
    raise TypeMismatch(tp, value, detail=f"one of {[m.value for m in tp]}")


def _coerce_enum(value: Any, tp: type[enum.Enum]) -> Any:
    try:
        return tp(value)
    except ValueError:
        pass
    if isinstance(value, str) and value in tp.__members__:
        return tp[value]
    raise TypeMismatch(tp, value, detail=f"one of {[m.value for m in tp]}")


def _coerce_union(value: Any, tp: Any, args: tuple[Any, ...], build: bool) -> Any:
    for arg in args:  # an exact fit first: never convert what already fits a member
        try:
            if coerce(value, arg, build=build) is value:
                return value
        except TypeMismatch:
            continue
    for arg in args:
        try:
            return coerce(value, arg, build=build)
        except TypeMismatch:
            continue
    raise TypeMismatch(tp, value)


def _coerce_items(values: list[Any], item_type: Any, build: bool) -> tuple[list[Any], bool]:
    out = []
    changed = False
    for index, item in enumerate(values):
        try:
            fitted = coerce(item, item_type, build=build)
        except TypeMismatch as error:
            raise TypeMismatch(
                error.expected, error.value, (index, *error.keys), error.detail
            ) from error
        changed = changed or fitted is not item
        out.append(fitted)
    return out, changed


def _coerce_collection(value: Any, tp: Any, origin: Any, args: tuple[Any, ...], build: bool) -> Any:
    kind = {cabc.Sequence: (list, tuple), cabc.MutableSequence: (list,), cabc.Set: (set, frozenset)}
    accepted = kind.get(origin, (list, tuple) if origin is list else (set, frozenset, list, tuple))
    if not isinstance(value, accepted) or isinstance(value, str):
        raise TypeMismatch(tp, value)
    if not args:
        return value
    items, changed = _coerce_items(list(value), args[0], build)
    wanted = (
        origin if isinstance(origin, type) and origin in (list, set, frozenset) else type(value)
    )
    if not changed and type(value) is wanted:
        return value
    return wanted(items)


def _coerce_tuple(value: Any, tp: Any, args: tuple[Any, ...], build: bool) -> Any:
    if not isinstance(value, (list, tuple)):
        raise TypeMismatch(tp, value)
    if not args or (len(args) == 2 and args[1] is Ellipsis):
        items, changed = _coerce_items(list(value), args[0] if args else Any, build)
    else:
        if len(args) != len(value):
            raise TypeMismatch(tp, value, detail=f"expected {len(args)} items")
        items, changed = [], False
        for index, (item, item_type) in enumerate(zip(value, args, strict=True)):
            try:
                fitted = coerce(item, item_type, build=build)
            except TypeMismatch as error:
                raise TypeMismatch(
                    error.expected, error.value, (index, *error.keys), error.detail
                ) from error
            changed = changed or fitted is not item
            items.append(fitted)
    if not changed and type(value) is tuple:
        return value
    return tuple(items)


def _coerce_mapping(value: Any, tp: Any, args: tuple[Any, ...], build: bool) -> Any:
    if not isinstance(value, cabc.Mapping):
        raise TypeMismatch(tp, value)
    if len(args) != 2:
        return value
    key_type, value_type = args
    out = {}
    changed = False
    for key, item in value.items():
        try:
            fitted_key = coerce(key, key_type, build=build)
            fitted = coerce(item, value_type, build=build)
        except TypeMismatch as error:
            raise TypeMismatch(
                error.expected, error.value, (key, *error.keys), error.detail
            ) from error
        changed = changed or fitted is not item or fitted_key is not key
        out[fitted_key] = fitted
    return value if not changed else out

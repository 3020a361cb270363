"""Checking and structuring keyword values against a target's annotations.

Values are passed through unchanged when they already fit (no copies); a plain dict for an attrs
class or a dataclass is structured through cattrs, one for a ``TypedDict`` stays a dict with its
values fitted, one for a pydantic model goes through its ``model_validate``; scalars are strict
(``"3"`` is not an ``int``, ``1.5`` is not an ``int``, ``1`` is accepted as a ``float``). Types
that cannot be checked at run time (protocols, type variables, unresolved forward references)
accept anything.
"""

from __future__ import annotations

import collections.abc as cabc
import difflib
import enum
import functools
import pathlib
import types
import typing
from typing import Any

import attrs

from corelib._errors import quote
from corelib._records import Record, is_pydantic_model, is_typeddict, record_kind, record_of
from corelib._text import CAUSE_LIMIT, describe_exception
from corelib._trust import is_trusted_only

__all__ = [
    "TypeMismatch",
    "coerce",
    "describe_type",
    "model_refusal",
    "parameter_types",
    "trusted_parameters",
    "validate",
]

_NO_HINTS: dict[str, Any] = {}
_NONE_TRUSTED: frozenset[str] = frozenset()
_hints_cache: dict[int, tuple[Any, dict[str, Any], frozenset[str]]] = {}


class TypeMismatch(Exception):
    """A value does not fit a type. ``keys`` locate it inside the checked value."""

    def __init__(
        self,
        expected: Any,
        value: Any,
        keys: tuple[Any, ...] = (),
        detail: str = "",
        *,
        text: str | None = None,
    ):
        self.expected = expected
        self.value = value
        self.keys = keys
        self.detail = detail
        self.text = text
        """The message where "expected TYPE, got VALUE" does not say it (a missing field)."""
        if text is None:
            shown = quote(value, 80)
            text = f"expected {describe_type(expected)}, got {type(value).__name__} {shown}"
        super().__init__(f"{text} ({detail})" if detail else text)

    def under(self, *keys: Any) -> TypeMismatch:
        """This mismatch located inside ``keys`` (prepended to its own)."""
        return TypeMismatch(
            self.expected, self.value, (*keys, *self.keys), self.detail, text=self.text
        )


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
    """The cattrs converter whose generated functions structure record types; every field value
    goes through :func:`coerce` (scalars included: cattrs would call ``int("3")``).

    Built on first use so that ``import corelib`` does not import cattrs.
    """
    import cattrs

    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook_func(lambda tp: True, _strict_hook)
    for scalar in (int, float, str, bool, bytes):
        converter.register_structure_hook(scalar, _strict_hook)
    return converter


@functools.cache
def _structure_function(tp: type) -> Any:
    """cattrs' generated ``structure(value, tp)`` for an attrs class or dataclass, cached."""
    from cattrs.gen import make_dict_structure_fn

    return make_dict_structure_fn(tp, _converter())


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
        if any(value == arg and type(value) is type(arg) for arg in args):
            return value
        raise TypeMismatch(tp, value, detail=_one_of(value, args))
    if origin is typing.Annotated or origin is typing.Required or origin is typing.NotRequired:
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
    except TypeError:  # a TypedDict, a protocol or another type isinstance cannot check
        if not is_typeddict(tp):
            return value
    if isinstance(value, dict) and record_kind(tp) is not None:
        return _coerce_record(value, tp, build)
    if issubclass(tp, enum.Enum):
        return _coerce_enum(value, tp) if build else _validate_enum(value, tp)
    if issubclass(tp, pathlib.PurePath) and isinstance(value, str):
        return tp(value) if build else value
    if tp is cabc.Callable and callable(value):
        return value
    raise TypeMismatch(tp, value)


def _coerce_record(value: dict[Any, Any], tp: type, build: bool) -> Any:
    """A plain dict for a record type: validated (``build=False``) or structured."""
    try:
        record = record_of(tp)
    except Exception as error:  # unresolvable annotations: structuring would fail as well
        detail = f"its annotations cannot be resolved: {describe_exception(error, CAUSE_LIMIT)}"
        raise TypeMismatch(tp, value, detail=detail) from None
    if not build or record.kind == "typeddict":  # a TypedDict stays a dict: its values fitted
        return _fit_record(value, tp, record, build)
    if record.kind == "pydantic":
        return _structure_pydantic(value, tp)
    import cattrs

    try:
        return _structure_function(tp)(value, tp)
    except cattrs.BaseValidationError as error:
        raise _mismatch_in(error, tp, value) from error
    except TypeMismatch:
        raise
    except Exception as error:  # the class's own __init__ / __post_init__ refused the values
        raise TypeMismatch(tp, value, detail=describe_exception(error, CAUSE_LIMIT)) from error


def _fit_record(value: dict[Any, Any], tp: type, record: Record, build: bool) -> Any:
    """Check a plain dict against a record type as it would be structured: its keys, its
    required fields, and each field's type (for a pydantic model, whose own validation may run
    code and convert values, only what :func:`_check_pydantic_field` can tell). With ``build``,
    the dict with its values fitted (a TypedDict's structured form; cattrs' reads
    ``__required_keys__``, which Python 3.11 gets wrong for string annotations); without,
    ``value`` itself, building nothing."""
    if not record.extra:
        extra = [key for key in value if key not in record.fields]
        if extra:
            raise TypeMismatch(tp, value, text=_unknown_fields(extra, tp, record))
    fitted = {}
    for key, field in record.fields.items():
        if key not in value:
            if field.required:
                raise _missing(tp, value, key)
            continue
        if field.type is None:
            continue
        try:
            if record.kind == "pydantic":
                _check_pydantic_field(value[key], field.type)
            else:
                fitted[key] = coerce(value[key], field.type, build=build)
        except TypeMismatch as error:
            raise error.under(key) from error
    if not build or all(fitted[key] is value[key] for key in fitted):
        return value
    return {**value, **fitted}


def _check_pydantic_field(value: Any, tp: Any) -> None:
    """What ``check`` can say of a pydantic field's value that pydantic's lax mode would say
    too: a string that is none of a ``Literal``'s values, and the keys of a nested model."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = tp.__origin__
    members = [arg for arg in typing.get_args(tp) if arg is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(members) == 1:
        tp = members[0]  # X | None, given a value that is not None
    if typing.get_origin(tp) is typing.Literal and isinstance(value, str):
        coerce(value, tp, build=False)
    elif isinstance(value, dict) and record_kind(tp) == "pydantic":
        _fit_record(value, tp, record_of(tp), build=False)


def _missing(tp: type, value: Any, key: Any) -> TypeMismatch:
    text = f"required field missing: {describe_type(tp)} needs {quote(key)}"
    return TypeMismatch(tp, value, (key,), text=text)


def _mismatch_in(error: BaseException, tp: type, value: dict[Any, Any]) -> TypeMismatch:
    """The first failure in cattrs' validation error for ``tp``, at its exact keys.

    Field values are fitted by :func:`coerce` (the converter's only hook), so a failure inside
    a field is a TypeMismatch with its own keys; cattrs adds the field's name.
    """
    from cattrs.errors import AttributeValidationNote, BaseValidationError, ForbiddenExtraKeysError

    failures = getattr(error, "exceptions", ()) if isinstance(error, BaseValidationError) else ()
    inner = next(  # unknown keys first, as check reports them
        (e for e in failures if isinstance(e, ForbiddenExtraKeysError)),
        failures[0] if failures else error,
    )
    notes = getattr(inner, "__notes__", ())
    keys = [note.name for note in notes if isinstance(note, AttributeValidationNote)]
    if isinstance(inner, TypeMismatch):
        return inner.under(*keys)
    if isinstance(inner, ForbiddenExtraKeysError):
        text = _unknown_fields(sorted(inner.extra_fields, key=str), tp, record_of(tp))
        return TypeMismatch(tp, value, text=text)
    if isinstance(inner, KeyError) and keys:
        return _missing(tp, value, keys[-1])
    return TypeMismatch(tp, value, tuple(keys), describe_exception(inner, CAUSE_LIMIT))


def _structure_pydantic(value: dict[Any, Any], tp: Any) -> Any:
    """``tp.model_validate(value)``; pydantic's first error at its exact keys."""
    import pydantic

    try:
        return tp.model_validate(value)
    except pydantic.ValidationError as error:
        errors = error.errors(include_url=False)
        raise _pydantic_mismatch(errors[0], tp, value, len(errors) - 1) from error


def model_refusal(target: Any, kwargs: dict[str, Any], error: BaseException) -> TypeMismatch | None:
    """pydantic's refusal of the keywords of a model used as a target, at its keys (a config
    error, not the model's code failing); None for any other error."""
    if not is_pydantic_model(target):
        return None
    import pydantic

    if not isinstance(error, pydantic.ValidationError) or error.title != target.__name__:
        return None  # another model's refusal, raised from the model's own code
    errors = error.errors(include_url=False)
    return _pydantic_mismatch(errors[0], target, kwargs, len(errors) - 1) if errors else None


def _pydantic_mismatch(error: Any, tp: Any, value: Any, more: int) -> TypeMismatch:
    """One of pydantic's errors (a dict: ``loc``, ``type``, ``msg``, ``input``) as a mismatch."""
    keys = tuple(error["loc"])
    detail = f"and {more} more error(s)" if more else ""
    where: Any = value
    for key in keys[:-1]:
        where = where[key] if isinstance(where, dict | list) and _has(where, key) else None
    if error["type"] == "missing" and keys:
        return TypeMismatch(tp, where, keys, detail, text=_missing(tp, where, keys[-1]).text)
    if error["type"] == "extra_forbidden" and keys:
        unknown = f"unknown field(s) {quote(keys[-1])}"
        if len(keys) == 1:
            unknown = _unknown_fields([keys[-1]], tp, record_of(tp))
        return TypeMismatch(tp, where, keys[:-1], detail, text=unknown)
    got = error.get("input")
    text = f"{str(error['msg'])[:200]}, got {type(got).__name__} {quote(got, 80)}"
    return TypeMismatch(tp, got, keys, detail, text=text)


def _has(container: Any, key: Any) -> bool:
    if isinstance(container, dict):
        return key in container
    return isinstance(key, int) and -len(container) <= key < len(container)


def _unknown_fields(extra: list[Any], tp: Any, record: Record) -> str:
    known = list(record.fields)
    parts = []
    for key in extra[:5]:
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        parts.append(f"{quote(key, 40)}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    more = f" and {len(extra) - 5} more" if len(extra) > 5 else ""
    fields = ", ".join(known[:30]) + (", ..." if len(known) > 30 else "") or "none"
    return f"unknown field(s) {', '.join(parts)}{more} for {describe_type(tp)}; fields: {fields}"


def _one_of(value: Any, choices: Any) -> str:
    """ "one of 'a', 'b'" and, for a string close to one of them, "did you mean 'b'?"."""
    shown = ", ".join(quote(choice, 40) for choice in choices)
    text = f"one of {shown}" if len(shown) <= 400 else f"one of {len(choices)} values"
    if isinstance(value, str):
        spelled = {str(choice): choice for choice in choices}
        close = difflib.get_close_matches(value, list(spelled), n=1, cutoff=0.6)
        if close:
            text += f"; did you mean {quote(spelled[close[0]], 40)}?"
    return text


def _validate_enum(value: Any, tp: type[enum.Enum]) -> Any:
    """Whether ``tp(value)`` or ``tp[value]`` would find a member, calling neither."""
    if any(member.value == value for member in tp) or (
        isinstance(value, str) and value in tp.__members__
    ):
        return value
    if "_missing_" in vars(tp):  # a lookup of the class's own cannot be asked without running it
        return value
    raise TypeMismatch(tp, value, detail=_one_of(value, [m.value for m in tp]))


def _coerce_enum(value: Any, tp: type[enum.Enum]) -> Any:
    try:
        return tp(value)
    except ValueError:
        pass
    if isinstance(value, str) and value in tp.__members__:
        return tp[value]
    raise TypeMismatch(tp, value, detail=_one_of(value, [m.value for m in tp]))


def _coerce_union(value: Any, tp: Any, args: tuple[Any, ...], build: bool) -> Any:
    for arg in args:  # an exact fit first: never convert what already fits a member
        try:
            if coerce(value, arg, build=build) is value:
                return value
        except TypeMismatch:
            continue
    mismatches = []
    for arg in args:
        try:
            return coerce(value, arg, build=build)
        except TypeMismatch as mismatch:
            mismatches.append(mismatch)
    members = [arg for arg in args if arg is not type(None)]
    if value is not None and len(members) == 1:  # X | None: say what is wrong inside the X
        raise mismatches[args.index(members[0])]
    raise TypeMismatch(tp, value)


def _coerce_items(values: list[Any], item_type: Any, build: bool) -> tuple[list[Any], bool]:
    out = []
    changed = False
    for index, item in enumerate(values):
        try:
            fitted = coerce(item, item_type, build=build)
        except TypeMismatch as error:
            raise error.under(index) from error
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
                raise error.under(index) from error
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
            raise error.under(key) from error
        changed = changed or fitted is not item or fitted_key is not key
        out[fitted_key] = fitted
    return value if not changed else out

"""Record types: classes that a plain dict of named fields describes.

attrs classes, dataclasses, ``TypedDict`` classes and pydantic models. pydantic is never imported
here: a class can only be a pydantic model when pydantic is already in ``sys.modules``.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import typing
from typing import Any, Literal

import attrs

__all__ = [
    "Record",
    "RecordField",
    "is_pydantic_model",
    "is_typeddict",
    "record_kind",
    "record_of",
]

RecordKind = Literal["attrs", "dataclass", "typeddict", "pydantic"]


@attrs.frozen
class RecordField:
    """One field: its key in a plain dict, its annotation (None: unannotated), whether required."""

    key: str
    type: Any
    required: bool
    default: Any = None
    """The default value (``attrs.Factory`` / a dataclass factory where one is used), or None."""


@attrs.frozen
class Record:
    """The fields of a record type by dict key; ``extra``: whether other keys are accepted."""

    kind: RecordKind
    fields: dict[str, RecordField]
    extra: bool = False


def is_pydantic_model(tp: Any) -> bool:
    """Whether ``tp`` is a pydantic model class (pydantic is not imported to find out)."""
    pydantic = sys.modules.get("pydantic")
    if pydantic is None or not isinstance(tp, type):
        return False
    base = getattr(pydantic, "BaseModel", None)
    return base is not None and issubclass(tp, base) and tp is not base


def is_typeddict(tp: Any) -> bool:
    """Whether ``tp`` is a ``TypedDict`` class, from ``typing`` or (already imported)
    ``typing_extensions``, whose TypedDicts ``typing.is_typeddict`` does not know on 3.11."""
    if typing.is_typeddict(tp):
        return True
    extensions = sys.modules.get("typing_extensions")
    return extensions is not None and bool(extensions.is_typeddict(tp))


def record_kind(tp: Any) -> RecordKind | None:
    """Which kind of record type ``tp`` is; None where it is none."""
    if not isinstance(tp, type):
        return None
    if attrs.has(tp):
        return "attrs"
    if dataclasses.is_dataclass(tp):
        return "dataclass"
    if is_typeddict(tp):
        return "typeddict"
    if is_pydantic_model(tp):
        return "pydantic"
    return None


@functools.cache
def record_of(tp: type) -> Record:
    """The fields of the record type ``tp`` (see :func:`record_kind`), cached.

    Raises whatever resolving its annotations raises (e.g. ``NameError``).
    """
    kind = record_kind(tp)
    if kind == "attrs":
        attrs.resolve_types(tp, include_extras=True)
        fields = {
            f.name: RecordField(f.name, f.type, f.default is attrs.NOTHING, _default(f.default))
            for f in attrs.fields(tp)
            if f.init
        }
        return Record(kind, fields)
    if kind == "dataclass":
        hints = typing.get_type_hints(tp, include_extras=True)
        fields = {}
        for f in dataclasses.fields(tp):
            if not f.init:
                continue
            factory = f.default_factory
            missing = f.default is dataclasses.MISSING and factory is dataclasses.MISSING
            default = attrs.Factory(factory) if factory is not dataclasses.MISSING else f.default
            fields[f.name] = RecordField(f.name, hints.get(f.name), missing, _default(default))
        return Record(kind, fields)
    if kind == "typeddict":
        hints = typing.get_type_hints(tp, include_extras=True)
        total = typing.cast(Any, tp).__required_keys__
        fields = {
            name: RecordField(name, _unwrap_required(hint), _required_key(name, hint, total))
            for name, hint in hints.items()
        }
        return Record(kind, fields)
    if kind == "pydantic":
        return _pydantic_record(tp)
    raise TypeError(f"{tp!r} is not a record type")


def _default(default: Any) -> Any:
    return None if default is attrs.NOTHING or default is dataclasses.MISSING else default


def _required_key(name: str, hint: Any, required_keys: frozenset[str]) -> bool:
    """Whether a TypedDict key is required: ``Required``/``NotRequired`` decide, else totality.

    ``__required_keys__`` alone is wrong on Python 3.11 where the annotations are strings
    (``from __future__ import annotations``): it cannot see ``Required`` in them.
    """
    while typing.get_origin(hint) is typing.Annotated:
        hint = hint.__origin__
    origin = typing.get_origin(hint)
    if origin is typing.Required or origin is typing.NotRequired:
        return origin is typing.Required
    return name in required_keys


def _unwrap_required(hint: Any) -> Any:
    """``int`` for ``Required[int]`` / ``NotRequired[int]`` (inside ``Annotated`` too)."""
    origin = typing.get_origin(hint)
    if origin is typing.Required or origin is typing.NotRequired:
        return _unwrap_required(typing.get_args(hint)[0])
    if origin is typing.Annotated:
        inner = _unwrap_required(hint.__origin__)
        return (
            typing.Annotated[(inner, *hint.__metadata__)] if inner is not hint.__origin__ else hint
        )
    return hint


def _pydantic_record(tp: Any) -> Record:
    fields = {}
    for name, info in tp.model_fields.items():
        alias = info.validation_alias if isinstance(info.validation_alias, str) else None
        key = alias or info.alias or name
        annotation = info.annotation
        if info.metadata:  # Annotated marks (corelib.Trusted among them) live here
            annotation = typing.Annotated[(annotation, *info.metadata)]
        required = info.is_required()
        factory = info.default_factory
        default = attrs.Factory(factory) if factory is not None else info.default
        default = None if required else default
        fields[key] = RecordField(key, annotation, required, default)
    return Record("pydantic", fields, extra=tp.model_config.get("extra") != "forbid")

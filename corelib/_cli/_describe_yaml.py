"""``corelib describe NAME --yaml``: a ready-to-edit config node for one component.

Every keyword parameter appears under ``_target_: NAME`` with its default (a required one as
:data:`~corelib._signatures.PLACEHOLDER`, which ``check`` and ``instantiate`` refuse until it is
replaced) and, as a YAML comment above it, its type and the first sentence of its documentation.
A default that a file cannot hold (an object, a factory other than a builtin container) and a
trusted-only parameter (an untrusted file may not set it) are written as comments. The text
loads back with ``load_config``; everything a plugin wrote in it is escaped.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import math
import pathlib
import re
import typing
from typing import Any

import attrs

from corelib._docstrings import own_docstring, parameter_docs
from corelib._errors import quote
from corelib._records import is_pydantic_model, record_of
from corelib._signatures import PLACEHOLDER
from corelib._text import printable
from corelib._trust import is_trusted_only
from corelib._yaml import dump_yaml

__all__ = ["describe_yaml"]

_NO_DEFAULT: Any = inspect.Parameter.empty
_BUILTIN_FACTORIES = (list, dict, set, tuple, frozenset)
_PLAIN_DEPTH = 20
_MAX_LINES, _MAX_CHARS = 40, 2_000  # a longer default is shown short, as one not writable


@attrs.frozen
class _Parameter:
    name: str
    annotation: Any  # None: not annotated
    default: Any  # _NO_DEFAULT: required; an attrs.Factory: made per object
    positional_only: bool = False


def describe_yaml(component: Any, target: str, heading: str) -> str:
    """The node for ``component`` named ``target``; ``heading`` is its first comment line."""
    docs = parameter_docs(component)
    summary = own_docstring(component).strip().split("\n\n")[0]
    lines = [_comment(f"{heading}: {' '.join(summary.split())}" if summary else heading)]
    parameters, extra = _parameters(component)
    required = any(p.default is _NO_DEFAULT for p in parameters)
    fill = f"replace each {PLACEHOLDER} (a required value); " if required else ""
    lines.append(_comment(f"{fill}a key left out takes its default"))
    lines.append(dump_yaml({"_target_": target}).rstrip("\n"))
    positional = [p for p in parameters if p.positional_only]
    if positional:
        about = ", ".join(_about(p, docs.get(p.name, "")) for p in positional)
        lines.append(_comment(f"positional-only, under _args_: {about}"))
        values = [_value(p)[0] for p in positional]
        lines += dump_yaml({"_args_": values}).rstrip("\n").splitlines()
    for parameter in parameters:
        if not parameter.positional_only:
            lines += _entry(parameter, docs.get(parameter.name, ""))
    if extra:
        lines.append(_comment(f"also takes {extra}"))
    return "\n".join(lines) + "\n"


def _entry(parameter: _Parameter, doc: str) -> list[str]:
    about = _about(parameter, doc)
    value, writable = _value(parameter)
    text = dump_yaml({parameter.name: value}).rstrip("\n").splitlines()
    if is_trusted_only(parameter.annotation):
        note = "trusted-only: set it from Python, a .py config or the command line"
        return [_comment(f"{about} ({note})"), *(_comment(line) for line in text)]
    if not writable or len(text) > _MAX_LINES or sum(map(len, text)) > _MAX_CHARS:
        shown = _shown_default(parameter.default)
        note = "not writable in a file: leave the key out"
        return [_comment(about), _comment(f"{parameter.name}: {shown} ({note})")]
    return [_comment(about), *text]


def _about(parameter: _Parameter, doc: str) -> str:
    kind = _type_text(parameter.annotation)
    required = ", required" if parameter.default is _NO_DEFAULT else ""
    text = f"{parameter.name} ({kind}{required})"
    return f"{text}: {doc}" if doc else text


def _value(parameter: _Parameter) -> tuple[Any, bool]:
    """The value to write and whether a file can hold it (it loads back as the default)."""
    default = parameter.default
    if default is _NO_DEFAULT:
        return PLACEHOLDER, True
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        factory = default.factory
        if factory not in _BUILTIN_FACTORIES or default.takes_self:
            return None, False
        default = factory()
    plain = _plain(default, 0)
    if plain is _NO_DEFAULT or plain == PLACEHOLDER:  # a "???" default would read as unfilled
        return None, False
    return plain, True


def _plain(value: Any, depth: int) -> Any:
    """``value`` as YAML can write it (tuples as lists, enums as their values, paths as
    strings); ``_NO_DEFAULT`` where it cannot be written."""
    if depth > _PLAIN_DEPTH:
        return _NO_DEFAULT
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, float):
        return value if not math.isnan(value) else _NO_DEFAULT
    if isinstance(value, enum.Enum):
        return _plain(value.value, depth + 1)
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(item, depth + 1) for item in value]
        return _NO_DEFAULT if any(item is _NO_DEFAULT for item in items) else items
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        pairs = {key: _plain(item, depth + 1) for key, item in value.items()}
        special = any(key.startswith("_") and key.endswith("_") for key in value)
        if special or any(item is _NO_DEFAULT for item in pairs.values()):
            return _NO_DEFAULT  # a key like _target_ or _import_ would change its meaning
        return pairs
    return _NO_DEFAULT


def _shown_default(default: Any) -> str:
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        factory = default.factory
        return f"made by {getattr(factory, '__qualname__', None) or type(factory).__name__}()"
    return quote(default, 80)


def _type_text(annotation: Any) -> str:
    if annotation is None:
        return "any type"
    if isinstance(annotation, str):
        return annotation
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = annotation.__origin__
    return re.sub(r"\b(typing|collections\.abc)\.", "", inspect.formatannotation(annotation))


def _comment(text: str) -> str:
    return f"# {printable(' '.join(text.split()))}" if text.strip() else "#"


def _parameters(component: Any) -> tuple[list[_Parameter], str]:
    """The keyword parameters of ``component`` and a note on ``*args``/``**kwargs`` (or "")."""
    fields = _field_parameters(component)
    if fields is not None:
        return fields, ""
    try:
        signature = inspect.signature(component)
    except (TypeError, ValueError):
        return [], ""
    function = component.__init__ if inspect.isclass(component) else component
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception:  # unresolvable annotations: their source text
        hints = {}
    out = []
    extra = []
    for param in signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            extra.append(f"*{param.name}")
            continue
        if param.kind is param.VAR_KEYWORD:
            extra.append(f"**{param.name}")
            continue
        annotation = hints.get(param.name, param.annotation)
        out.append(
            _Parameter(
                param.name,
                None if annotation is param.empty else annotation,
                param.default,
                positional_only=param.kind is param.POSITIONAL_ONLY,
            )
        )
    return out, " and ".join(extra)


def _field_parameters(component: Any) -> list[_Parameter] | None:
    """The ``__init__`` keywords of an attrs class, dataclass or pydantic model, with their
    factories (a signature shows those as a sentinel); None for anything else."""
    if not inspect.isclass(component):
        return None
    try:
        if attrs.has(component):
            types = {key: field.type for key, field in record_of(component).fields.items()}
            return [
                _Parameter(
                    field.alias or field.name,
                    types.get(field.name),
                    _NO_DEFAULT if field.default is attrs.NOTHING else field.default,
                )
                for field in attrs.fields(component)
                if field.init
            ]
        if dataclasses.is_dataclass(component) or is_pydantic_model(component):
            return [
                _Parameter(key, field.type, _NO_DEFAULT if field.required else field.default)
                for key, field in record_of(typing.cast(type, component)).fields.items()
            ]
    except Exception:  # unresolvable annotations: read the signature instead
        return None
    return None

"""YAML reading and writing: a safe loader that resolves plain scalars by YAML 1.2's core schema.

PyYAML implements YAML 1.1, where ``1e-3`` is a string and ``yes``/``on``/``010`` are a bool and
an octal int. Configs want 1.2: ``1e-3`` is a float, ``yes`` stays a string, ``010`` is ten.
The loader is PyYAML's safe loader (the C one where available) with the implicit resolvers
replaced; it refuses duplicate keys, explicit core tags that do not spell their type
(``!!bool x``), and every other tag (``!!timestamp``, ``!!binary``, ``!!set``, ``!!python/...``).
Integers over the digit limit are read as placeholders that ``corelib._bounds`` refuses.
The dumper quotes every string that a 1.1 *or* a 1.2 reader would take for something else
(and the key ``<<``), and writes a node reached twice as an anchor and an alias.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from typing import Any

import yaml

from corelib._bounds import HugeInt, check_tree, huge_int, recursion_headroom
from corelib._errors import ConfigError, quote

__all__ = ["dump_yaml", "load_yaml", "parse_value"]

_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_MAP = "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"
# Tags of values a config cannot hold (dates, bytes, sets, ordered pairs): an error like any
# unknown tag. Explicit core tags (``!!int 3``) must spell a value of their type.
_REFUSED = ("timestamp", "binary", "set", "omap", "pairs")

# The YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution): (tag, regexp,
# first characters), in resolution order. Everything else is a string.
_CORE_SCHEMA: list[tuple[str, re.Pattern[str], list[str]]] = [
    (_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]),
    (_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")),
    (_INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")),
    (
        _FLOAT,
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+.0123456789"),
    ),
]


class _Loader(_SafeLoader):
    """Safe loader resolving plain scalars by the YAML 1.2 core schema; mapping type pluggable."""

    yaml_implicit_resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}
    mapping_type: Callable[[], dict[Any, Any]] = dict
    lines: dict[int, dict[Any, int]] | None = None

    def construct_yaml_map(self, node: yaml.MappingNode) -> Iterator[dict[Any, Any]]:
        data = self.mapping_type()
        yield data
        data.update(self.construct_mapping(node))
        if self.lines is not None:  # the line of each key, for provenance
            self.lines[id(data)] = {
                self.construct_object(key): key.start_mark.line + 1
                for key, _ in node.value
                if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE
            }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            _refuse_duplicate_keys(self, node)
        return super().construct_mapping(node, deep=deep)

    def construct_core_int(self, node: yaml.ScalarNode) -> int | HugeInt:
        text = self._core_scalar(node, _INT, "an integer")
        if text.startswith(("0o", "0x")):
            return int(text[2:], 8 if text[1] == "o" else 16)  # no digit limit: powers of two
        return huge_int(text)

    def construct_core_float(self, node: yaml.ScalarNode) -> float:
        text = self._core_scalar(node, _FLOAT, "a number").lower()
        if text.endswith((".inf", ".nan")):
            return -math.inf if text[0] == "-" else float(text.lstrip("+."))
        return float(text)

    def construct_core_bool(self, node: yaml.ScalarNode) -> bool:
        return self._core_scalar(node, _BOOL, "true or false").lower() == "true"

    def construct_core_null(self, node: yaml.ScalarNode) -> None:
        self._core_scalar(node, _NULL, "null")

    def _core_scalar(self, node: yaml.ScalarNode, tag: str, expected: str) -> str:
        """The text of ``node``, which must match the core schema's pattern for ``tag``."""
        text = self.construct_scalar(node)
        if not _PATTERNS[tag].match(text):
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"!!{node.tag.rsplit(':', 1)[-1]} {quote(text)} is not {expected}",
                node.start_mark,
            )
        return text

    def construct_undefined(self, node: yaml.Node) -> Any:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"the tag {quote(node.tag)} is not allowed; config files hold strings, numbers, "
            f"booleans, null, lists and mappings",
            node.start_mark,
        )


def _refuse_duplicate_keys(loader: _Loader, node: yaml.MappingNode) -> None:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE or not isinstance(key_node, yaml.ScalarNode):
            continue
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {quote(key)}",
                key_node.start_mark,
            )
        seen.add(key)


for _tag, _regexp, _first in _CORE_SCHEMA:
    _Loader.add_implicit_resolver(_tag, _regexp, _first)
_Loader.add_implicit_resolver(_MERGE, re.compile(r"^(?:<<)$"), ["<"])
_Loader.add_constructor(_MAP, _Loader.construct_yaml_map)
_Loader.add_constructor(_INT, _Loader.construct_core_int)
_Loader.add_constructor(_FLOAT, _Loader.construct_core_float)
_Loader.add_constructor(_BOOL, _Loader.construct_core_bool)
_Loader.add_constructor(_NULL, _Loader.construct_core_null)
_Loader.add_constructor(None, _Loader.construct_undefined)
for _name in _REFUSED:
    del _Loader.yaml_constructors[f"tag:yaml.org,2002:{_name}"]
_PATTERNS = {tag: regexp for tag, regexp, _ in _CORE_SCHEMA}


class _Dumper(_SafeDumper):
    """Safe dumper that quotes strings a YAML 1.1 or 1.2 reader would resolve to another type."""

    def represent_tuple(self, data: tuple[Any, ...]) -> yaml.SequenceNode:
        return self.represent_list(list(data))


for _tag, _regexp, _first in _CORE_SCHEMA:
    _Dumper.add_implicit_resolver(_tag, _regexp, _first)
_Dumper.add_implicit_resolver(_MERGE, re.compile(r"^(?:<<)$"), ["<"])  # the key '<<' is quoted
_Dumper.add_representer(tuple, _Dumper.represent_tuple)


def load_yaml(
    text: str,
    source: str,
    *,
    mapping: Callable[[], dict[Any, Any]] = dict,
    lines: dict[int, dict[Any, int]] | None = None,
) -> Any:
    """Parse one YAML document; mappings are built with ``mapping``.

    ``lines``, if given, receives ``id(mapping) -> {key: line}`` for every mapping (lines from 1).
    Raises ConfigError naming ``source`` and the line and column of the problem.
    """
    try:
        return _load(text, mapping, flow_only=False, lines=lines)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from exc


def parse_value(text: str, *, mapping: Callable[[], dict[Any, Any]] = dict) -> Any:
    """Parse a YAML 1.2 scalar or flow collection (``1e-3``, ``[1, 2]``, ``{a: 1}``).

    Raises ValueError for block collections, several documents, or invalid YAML, and
    ConfigError for a value out of bounds (see ``corelib._bounds``).
    """
    try:
        value = _load(text, mapping, flow_only=True)
    except yaml.YAMLError as exc:
        raise ValueError(_describe(exc)) from exc
    check_tree(value, root="the value")
    return value


def _load(
    text: str,
    mapping: Callable[[], dict[Any, Any]],
    *,
    flow_only: bool,
    lines: dict[int, dict[Any, int]] | None = None,
) -> Any:
    loader = _Loader(text)
    loader.mapping_type = mapping
    loader.lines = lines
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if flow_only and isinstance(node, yaml.CollectionNode) and not node.flow_style:
            raise ValueError("a block collection; write a flow one such as [1, 2] or {a: 1}")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def dump_yaml(data: Any) -> str:
    """Write plain dicts, lists and scalars as block YAML; repeated objects become anchors.

    Raises ConfigError naming the key path of anything a config file cannot hold.
    """
    with recursion_headroom(check_tree(data)):
        return yaml.dump(
            data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True
        )


def _describe(exc: yaml.YAMLError) -> str:
    if not isinstance(exc, yaml.MarkedYAMLError):
        return str(exc)
    where = f"{_at(exc.problem_mark)}: " if exc.problem_mark else ""
    context = f" ({exc.context})" if exc.context else ""
    problem = exc.problem if len(exc.problem or "") <= 300 else exc.problem[:295] + "[...]"
    if exc.context and exc.context_mark:
        context = f" ({exc.context} started at {_at(exc.context_mark)})"
    return f"{where}{problem}{context}"


def _at(mark: yaml.Mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"

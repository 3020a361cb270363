"""Pictures of a config: its object graph as Mermaid or Graphviz DOT text.

One vertex per dict node (labelled with its key path and its target), one edge per key that
holds a node (labelled with the key); a list's items are edges labelled ``key[i]`` from the node
that holds the list. A node reached by several paths (a shared node) is one vertex with several
incoming edges, labelled with its first path. Scalars are left out (``corelib show`` prints them).
Every label is escaped for its format, so a key or target cannot inject syntax.
"""

from __future__ import annotations

import string
from typing import Any, Final

from corelib._errors import ConfigError
from corelib._text import printable
from corelib._traversal import CycleError, Location, fold, format_path
from corelib.registry import TargetError, import_path_of

__all__ = ["FORMATS", "graph"]

FORMATS: Final = ("mermaid", "dot")
TARGET_LIMIT: Final = 80
"""The most characters of a target a label shows."""
_MERMAID_SAFE: Final = frozenset(string.ascii_letters + string.digits + " _./:-,+=@()*")


class _Vertex:
    """A dict node's vertex, numbered in the order nodes are first reached (id ``n0``, ...)."""

    __slots__ = ("id", "index")

    def __init__(self, index: int) -> None:
        self.index = index
        self.id = f"n{index}"


class _Items(list[tuple[str, _Vertex]]):
    """The vertices a list holds, each with its index suffix (``[2]``, ``[0][1]`` when nested)."""


def graph(cfg: Any, fmt: str = "mermaid") -> str:
    """The object graph of ``cfg`` as Mermaid (``flowchart TD``) or DOT (``digraph``) text."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown graph format {fmt!r}; expected one of {', '.join(FORMATS)}")
    vertices: dict[int, tuple[_Vertex, str, str]] = {}  # id(node) -> vertex, path, target
    edges: list[tuple[_Vertex, _Vertex, str]] = []

    def enter(node: Any, location: Location) -> None:
        if isinstance(node, dict):
            vertex = _Vertex(len(vertices))
            vertices[id(node)] = (vertex, format_path(location.keys()), _target(node))

    def visit(node: Any, children: Any, location: Location) -> Any:
        if not isinstance(node, dict):
            return _Items(
                (f"[{index}]{suffix}", vertex)
                for index, child in enumerate(children)
                for suffix, vertex in _held(child)
            )
        source = vertices[id(node)][0]
        for key, child in children.items():
            label = format_path([key])
            edges.extend((source, vertex, label + suffix) for suffix, vertex in _held(child))
        return source

    try:
        fold(cfg, visit, enter=enter)
    except CycleError as error:
        raise ConfigError(f"cannot draw the config: {error}") from None
    ordered = list(vertices.values())  # in the order nodes were first reached
    edges.sort(key=lambda edge: edge[0].index)  # stable: a node's keys keep their order
    if fmt == "dot":
        return _dot(ordered, edges)
    return _mermaid(ordered, edges)


def _held(child: Any) -> list[tuple[str, _Vertex]]:
    """The vertices a child value stands for: itself, a list's items, or none (a scalar)."""
    if isinstance(child, _Vertex):
        return [("", child)]
    if isinstance(child, _Items):
        return child
    return []


def _target(node: dict[Any, Any]) -> str:
    """A node's target or ``_import_`` as written (a callable by its import path), cut short."""
    target = node.get("_target_", node.get("_import_"))
    if target is None:
        return ""
    if not isinstance(target, str):
        try:
            target = import_path_of(target)
        except TargetError:
            target = getattr(target, "__qualname__", type(target).__qualname__)
    text = str(target)
    return text if len(text) <= TARGET_LIMIT else f"{text[:TARGET_LIMIT]}…"


def _lines(path: str, target: str) -> list[str]:
    return [path or "(root)", *([target] if target else [])]


def _mermaid(vertices: list[tuple[_Vertex, str, str]], edges: list[Any]) -> str:
    out = ["flowchart TD"]
    for vertex, path, target in vertices:
        label = "<br>".join(_mermaid_text(line) for line in _lines(path, target))
        out.append(f'  {vertex.id}["{label}"]')
    for source, dest, key in edges:
        out.append(f'  {source.id} -->|"{_mermaid_text(key)}"| {dest.id}')
    return "\n".join(out) + "\n"


def _mermaid_text(text: str) -> str:
    """Every character but letters, digits and a few harmless ones as an entity (``#34;``)."""
    return "".join(char if char in _MERMAID_SAFE else f"#{ord(char)};" for char in text)


def _dot(vertices: list[tuple[_Vertex, str, str]], edges: list[Any]) -> str:
    out = ["digraph config {", "  node [shape=box];"]
    for vertex, path, target in vertices:
        label = "\\n".join(_dot_text(line) for line in _lines(path, target))
        out.append(f'  {vertex.id} [label="{label}"];')
    for source, dest, key in edges:
        out.append(f'  {source.id} -> {dest.id} [label="{_dot_text(key)}"];')
    out.append("}")
    return "\n".join(out) + "\n"


def _dot_text(text: str) -> str:
    """A DOT string's body: control characters spelled out, then ``\\`` and ``"`` escaped."""
    return printable(text).replace("\\", "\\\\").replace('"', '\\"')

"""One documentation line per parameter, read from docstrings and field metadata.

Docstrings in the three common styles are read: Google (``Args:`` / ``Attributes:`` sections,
``name (type): text``), NumPy (``Parameters`` underlined with dashes, ``name : type`` then
indented text) and Sphinx (``:param name: text``, ``:param type name: text``, ``:ivar name:``).
A class's fields may have an attribute docstring (a string right below the field, as Sphinx
reads it); attrs and dataclass fields may carry ``metadata={"doc": ...}`` (or ``"help"``,
``"description"``), pydantic fields a ``description``.
"""

from __future__ import annotations

import inspect
import itertools
import re
import typing
from typing import Any

__all__ = ["own_docstring", "parameter_docs"]

_GOOGLE_HEADER = re.compile(
    r"^(\s*)(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Attributes|"
    r"Other Parameters)\s*:\s*$"
)
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:(.*)$")
_NUMPY_HEADERS = ("Parameters", "Other Parameters", "Attributes", "Keyword Arguments")
_NUMPY_ENTRY = re.compile(r"^\*{0,2}(\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::.*)?$")
_SPHINX_ENTRY = re.compile(
    r"^\s*:(?:param|parameter|arg|argument|key|keyword|ivar|var)\s+(?:[^:]*\s)?\*{0,2}(\w+)\s*:(.*)$"
)
_META_KEYS = ("doc", "help", "description")


def parameter_docs(component: Any) -> dict[str, str]:
    """The first line of each parameter's documentation by name (empty where none is found).

    A class's own docstring and its ``__init__``'s are both read; field metadata wins.
    """
    texts = [own_docstring(component)]
    if inspect.isclass(component) and "__init__" in vars(component):
        texts.append(inspect.getdoc(vars(component)["__init__"]) or "")
    docs: dict[str, str] = {}
    for text in texts:
        for name, line in _from_docstring(text).items():
            docs.setdefault(name, line)
    if inspect.isclass(component):
        docs.update(_attribute_docstrings(component))
    docs.update(_from_fields(component))
    return docs


def _attribute_docstrings(cls: type) -> dict[str, str]:
    """The string literal right below each annotated or assigned name in a class body (the
    attribute docstrings Sphinx reads); empty where the source cannot be read."""
    import ast
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError, ValueError):
        return {}
    body = next((node.body for node in tree.body if isinstance(node, ast.ClassDef)), [])
    docs = {}
    for statement, following in itertools.pairwise(body):
        target: ast.expr | None = None
        if isinstance(statement, ast.AnnAssign):
            target = statement.target
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
        is_doc = isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
        if isinstance(target, ast.Name) and is_doc:
            text = typing.cast(ast.Constant, typing.cast(ast.Expr, following).value).value
            if isinstance(text, str):
                docs[target.id] = _first_line(text)
    return docs


def own_docstring(component: Any) -> str:
    """The docstring ``component`` itself was written with (cleaned): a class does not inherit
    its base's, and the signature text ``dataclasses`` puts on an undocumented class is none."""
    if not inspect.isclass(component):
        return inspect.getdoc(component) or ""
    text = vars(component).get("__doc__")
    if not isinstance(text, str):
        return ""
    import dataclasses

    if dataclasses.is_dataclass(component) and text.startswith(f"{component.__name__}("):
        return ""
    return inspect.cleandoc(text)


def _from_docstring(text: str) -> dict[str, str]:
    lines = text.expandtabs().splitlines()
    found: dict[str, str] = {}
    for parse in (_sphinx, _google, _numpy):
        for name, line in parse(lines).items():
            found.setdefault(name, line)
    return found


def _sphinx(lines: list[str]) -> dict[str, str]:
    found = {}
    for index, line in enumerate(lines):
        match = _SPHINX_ENTRY.match(line)
        if match:
            found[match.group(1)] = _entry_text(lines, index, match.group(2))
    return found


def _google(lines: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    section_indent: int | None = None
    entry_indent: int | None = None
    for index, line in enumerate(lines):
        header = _GOOGLE_HEADER.match(line)
        if header:
            section_indent, entry_indent = len(header.group(1)), None
            continue
        if section_indent is None or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent <= section_indent:  # the section ended
            section_indent = None
            continue
        if entry_indent is None:
            entry_indent = indent
        if indent == entry_indent:
            match = _GOOGLE_ENTRY.match(line.strip())
            if match:
                found[match.group(1)] = _entry_text(lines, index, match.group(2))
    return found


def _numpy(lines: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    inside = False
    for index, line in enumerate(lines):
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        if following and set(following) == {"-"} and line.strip():  # a section header
            inside = line.strip() in _NUMPY_HEADERS
            continue
        if not inside or not line.strip() or set(line.strip()) == {"-"} or line[:1].isspace():
            continue
        match = _NUMPY_ENTRY.match(line.strip())
        if match:
            text = _entry_text(lines, index, "")
            for name in match.group(1).split(","):
                found[name.strip().lstrip("*")] = text
    return found


def _entry_text(lines: list[str], index: int, first: str) -> str:
    """The first sentence of an entry: ``first`` (the text on the entry's own line) and the
    lines indented under ``lines[index]``, up to a blank line."""
    indent = len(lines[index]) - len(lines[index].lstrip())
    words = [first.strip()]
    for line in lines[index + 1 :]:
        if not line.strip() or len(line) - len(line.lstrip()) <= indent:
            break
        words.append(line.strip())
    return _sentence(" ".join(word for word in words if word))


def _sentence(text: str, limit: int = 160) -> str:
    end = text.find(". ")
    text = text if end < 0 else text[: end + 1]
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _from_fields(component: Any) -> dict[str, str]:
    """Docs that attrs/dataclass field metadata and pydantic field descriptions carry."""
    if not inspect.isclass(component):
        return {}
    import dataclasses

    import attrs

    from corelib._records import is_pydantic_model

    docs: dict[str, str] = {}
    if attrs.has(component):
        fields = [(f.alias or f.name, f.metadata) for f in attrs.fields(component)]
    elif dataclasses.is_dataclass(component):
        fields = [(f.name, f.metadata) for f in dataclasses.fields(component)]
    elif is_pydantic_model(component):
        for name, info in typing.cast(Any, component).model_fields.items():
            if info.description:
                docs[info.alias or name] = _first_line(info.description)
        return docs
    else:
        return {}
    for name, metadata in fields:
        for key in _META_KEYS:
            if isinstance(metadata.get(key), str):
                docs[name] = _first_line(metadata[key])
                break
    return docs


def _first_line(text: str) -> str:
    return _sentence(" ".join(text.split()))

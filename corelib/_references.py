"""References in config values: ``${a.b[0].c}``, ``${.x}``, ``${..x}``, ``${NAME:arg,...}``.

A string that is exactly one reference to a path is the value there; when that value is a
config node or container, the reference *is that node* (one object: built once and shared, as a
YAML alias). Text around references is interpolation: each reference must give a scalar.
``${.x}`` is the key ``x`` of the node holding the string, each further dot one level up
(``${..x}``); a shared node's relative references count from where it is first written.
``${NAME:a,b}`` calls a resolver (see :mod:`corelib._resolvers`); ``\\${`` is a literal ``${``.

Resolution walks the tree with the one walker (:func:`corelib._traversal.fold`, whose ``refer``
hook only strings containing ``${`` pay for). A string that is one absolute reference to a path
plainly there (no reference on the way: most are) is looked up directly; the others are
evaluated with an explicit stack, memoised per string: a chain of 10,000 references works,
each string is evaluated once, and a cycle is named. Interpolated text is bounded
(:data:`RESOLVED_LIMIT`), so strings of strings cannot blow up; a reference to a node never
copies it, so node aliases stay linear.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable
from typing import Any, Final

from corelib._errors import ConfigError, a_type, quote
from corelib._overrides import _spellings
from corelib._reference_syntax import Reference, Unresolvable, parse, plain_path
from corelib._resolvers import Context, ResolverError, call_resolver
from corelib._traversal import ROOT, CycleError, Location, fold, format_path
from corelib._trust import safe_mode

__all__ = [
    "RESOLVED_LIMIT",
    "Resolver",
    "env_allowance",
    "escape",
    "resolve",
    "resolve_collecting",
    "resolve_tree",
]

RESOLVED_LIMIT: Final = 1_000_000
"""The most characters a string may have once its references are resolved."""
_SCALARS: Final = (str, int, float, bool, type(None))
_CYCLE_SHOWN: Final = 8


def resolve(cfg: Any, /, *, allow_env: Iterable[str] | None = None) -> Any:
    """``cfg`` with every reference resolved; ``cfg`` itself is left unchanged.

    A reference to a node is that node (resolved): nodes stay shared, in the result as in the
    input. Nodes without references are not copied. ``allow_env`` names the environment
    variables ``${env:...}`` may read (None: any; inside a safe-mode build, those the policy
    allows). Raises :class:`ConfigError` naming the string's path for a reference that leads
    nowhere (with close matches), a cycle, a refused variable or a failing resolver.
    """
    return resolve_tree(cfg, allow_env=env_allowance(allow_env, safe=False))


def env_allowance(allow_env: Iterable[str] | None, *, safe: bool) -> frozenset[str] | None:
    """The variables that may be read: ``allow_env`` (None: any, but none in safe mode), never
    more than the safe-mode policy in force allows."""
    if isinstance(allow_env, str):
        raise ConfigError(f"allow_env must be a list of names, got the string {quote(allow_env)}")
    outer = safe_mode()
    names = None if allow_env is None else frozenset(allow_env)
    if outer is None:
        return frozenset() if safe and names is None else names
    if names is None:
        return frozenset(outer.env)
    wider = sorted(names - set(outer.env))
    if wider:
        raise ConfigError(
            f"allow_env {', '.join(map(quote, wider))}: inside safe mode only the variables "
            f"the policy allows may be read ({', '.join(outer.env) or 'none'})"
        )
    return names


def resolve_tree(cfg: Any, *, allow_env: frozenset[str] | None, keep_escapes: bool = False) -> Any:
    """:func:`resolve` with the allowance worked out; ``keep_escapes`` writes a literal ``${``
    as ``\\${`` again (for a tree that will be resolved once more when built)."""
    resolver = Resolver(cfg, allow_env=allow_env)
    refer = resolver.refer_escaped if keep_escapes else resolver.refer
    try:
        return fold(cfg, copy_node, refer=refer)
    except CycleError as cycle:
        raise ConfigError(_cycle_message(cycle)) from None


def resolve_collecting(
    cfg: Any, *, allow_env: frozenset[str] | None
) -> tuple[Any, list[tuple[str, str]]]:
    """The resolved tree and every reference problem as ``(path, message)``; a string that
    cannot be resolved stays as written."""
    problems: list[tuple[str, str]] = []
    resolver = Resolver(cfg, allow_env=allow_env, problems=problems)
    try:
        return fold(cfg, copy_node, refer=resolver.refer), problems
    except CycleError as cycle:
        problems.append((str(cycle.location), _cycle_message(cycle, located=False)))
        return cfg, problems


def escape(text: str) -> str:
    """``text`` written so that resolving it gives ``text`` back (``${`` as ``\\${``)."""
    return text.replace("${", "\\${")


def copy_node(node: Any, children: Any, loc: Location) -> Any:
    """A :func:`fold` visit that rebuilds a container only where a value changed."""
    if children is None:
        return node
    if type(children) is list:
        if all(new is old for new, old in zip(children, node, strict=True)):
            return node
        return children if type(node) is list else tuple(children)
    if all(children[key] is value for key, value in node.items()):
        return node
    if type(node) is dict:
        return children
    rebuilt = copy.copy(node)  # a LazyConfig stays one
    dict.clear(rebuilt)
    dict.update(rebuilt, children)
    return rebuilt


def _cycle_message(cycle: CycleError, *, located: bool = True) -> str:
    where = f"at {quote(str(cycle.location) or '<root>')}: " if located else ""
    return (
        f"{where}cycle: this reference points back to its ancestor "
        f"{quote(str(cycle.node_location) or '<root>')}"
    )


# -- evaluation ---------------------------------------------------------------------------------

_MISSING: Final = object()
_OPEN: Final = object()  # the string is being evaluated (on the stack)


class _Failed:
    """The memo of a string that could not be resolved (reported where it failed)."""


_FAILED: Final = _Failed()


class _Need(Exception):
    """The string ``text`` at ``holder[loc.key]`` must be evaluated first."""

    def __init__(self, text: str, holder: Any, loc: Location) -> None:
        self.text = text
        self.holder = holder
        self.loc = loc


class _Located(Exception):
    """A string at ``where`` cannot be resolved; an empty message: reported already."""

    def __init__(self, where: Location, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message

    def __str__(self) -> str:
        return f"at {quote(str(self.where) or '<root>')}: {self.message}"


class _Frame:
    """One string being evaluated: its pieces, and the values of those done so far."""

    __slots__ = ("holder", "index", "loc", "parts", "text", "values")

    def __init__(self, text: str, holder: Any, loc: Location) -> None:
        self.text = text
        self.holder = holder
        self.loc = loc
        self.parts: list[str | Reference] | None = None  # parsed when first advanced
        self.index = 0
        self.values: list[Any] = []


class Resolver:
    """Resolves the strings of one tree (``root``), each once; :meth:`refer` is fold's hook.

    With ``problems`` (a list) a string that cannot be resolved is recorded there as
    ``(path, message)`` and left as written; without, it raises :class:`ConfigError`.
    """

    def __init__(
        self,
        root: Any,
        *,
        allow_env: frozenset[str] | None,
        problems: list[tuple[str, str]] | None = None,
    ) -> None:
        self.root = root
        self.context = Context(allow_env)
        self.problems = problems
        self._memo: dict[tuple[int, Any], Any] = {}
        self._by_text: dict[str, Any] = {}  # strings whose value does not depend on where
        self._written: dict[int, tuple[Location, Any]] | None = None

    def refer(self, text: str, holder: Any, at: Location, key: Any) -> Any:
        """The value that stands for ``text``, found at ``holder[key]`` (``holder`` at ``at``)."""
        hit = self._by_text.get(text, _MISSING)
        if hit is not _MISSING:
            return hit
        keys = plain_path(text)
        if keys is not None:  # one absolute reference (most are): is its path plainly there?
            hit = self._plainly_at(keys)
            if hit is not _MISSING:
                self._by_text[text] = hit
                return hit
        try:
            return self._evaluate(text, holder, at.child(key))
        except _Located as failure:
            if self.problems is None:
                raise ConfigError(str(failure)) from None
            if failure.message:  # empty: the root cause is reported already
                self.problems.append((str(failure.where), failure.message))
            return text

    def refer_escaped(self, text: str, holder: Any, at: Location, key: Any) -> Any:
        """:meth:`refer`, with a literal ``${`` in the value written as ``\\${`` again."""
        value = self.refer(text, holder, at, key)
        return escape(value) if type(value) is str else value

    def unbuilt(self, node: Any) -> Any:
        """``node`` (a ``_recursive_: false`` subtree) resolved, its escapes kept: the
        component that builds it later resolves it again."""
        try:
            return fold(node, copy_node, refer=self.refer_escaped)
        except CycleError as cycle:
            raise ConfigError(_cycle_message(cycle)) from None

    def _evaluate(self, text: str, holder: Any, loc: Location) -> Any:
        memo = self._memo
        first = (id(holder), loc.key)
        hit = memo.get(first, _MISSING)
        if hit is _FAILED:
            raise _Located(loc, "")
        if hit is not _MISSING:  # never _OPEN here: only strings found by a lookup are open
            return hit
        stack = [_Frame(text, holder, loc)]
        memo[first] = _OPEN
        try:
            while stack:
                frame = stack[-1]
                try:
                    value = self._advance(frame)
                except _Need as need:
                    key = (id(need.holder), need.loc.key)
                    if memo.get(key) is _OPEN:
                        raise Unresolvable(self._cycle(stack, key)) from None
                    memo[key] = _OPEN
                    stack.append(_Frame(need.text, need.holder, need.loc))
                    continue
                stack.pop()
                memo[(id(frame.holder), frame.loc.key)] = value
                if frame.parts is not None and all(
                    isinstance(part, str) or part.up is None for part in frame.parts
                ):  # no relative reference: the same text has this value everywhere
                    self._by_text[frame.text] = value
        except Unresolvable as problem:
            for frame in stack:  # everything that waited on the failed string fails with it
                memo[(id(frame.holder), frame.loc.key)] = _FAILED
            message = str(problem)
            where = self._where(stack[-1].holder, stack[-1].loc) if message else loc
            raise _Located(where, message) from None
        return memo[first]

    def _plainly_at(self, keys: list[str | int]) -> Any:
        """The value at ``keys`` from the root when every step is a key or an item there and
        none is a string with a reference; _MISSING otherwise (the full lookup says why)."""
        node = self.root
        for key in keys:
            if isinstance(node, dict):
                node = node.get(key, _MISSING)
                if node is _MISSING:
                    return _MISSING
            elif type(key) is int and type(node) in (list, tuple) and key < len(node):
                node = node[key]  # an item key is never negative
            else:
                return _MISSING
            if type(node) is str and "${" in node:
                return _MISSING
        return node

    def _advance(self, frame: _Frame) -> Any:
        """Evaluate ``frame``'s parts in order; raises _Need for a string needed first."""
        if frame.parts is None:
            frame.parts = parse(frame.text)
        parts = frame.parts
        while frame.index < len(parts):
            part = parts[frame.index]
            if isinstance(part, str):
                frame.values.append(part)
            elif part.resolver is not None:
                frame.values.append(self._call(part))
            else:
                frame.values.append(self._lookup(part, frame))
            frame.index += 1
        if len(parts) == 1 and type(parts[0]) is Reference:
            return frame.values[0]  # exactly one reference: the value itself, node or scalar
        pieces = []
        size = 0
        for part, value in zip(parts, frame.values, strict=True):
            if type(value) is not str:
                if not isinstance(value, _SCALARS):
                    assert isinstance(part, Reference)
                    raise Unresolvable(
                        f"{quote(part.text)} is {a_type(value)}: only a string, number, boolean "
                        f"or null can be part of a text (a string that is exactly "
                        f"{quote(part.text)} is the node itself)"
                    )
                value = str(value)
            size += len(value)
            if size > RESOLVED_LIMIT:
                raise Unresolvable(
                    f"the resolved text is longer than {RESOLVED_LIMIT:,} characters"
                )
            pieces.append(value)
        return "".join(pieces)

    def _call(self, part: Reference) -> Any:
        assert part.resolver is not None
        try:
            value = call_resolver(part.resolver, part.args, self.context)
        except (ResolverError, ConfigError) as error:
            raise Unresolvable(f"{quote(part.text)}: {error}") from None
        if not isinstance(value, _SCALARS):
            raise Unresolvable(
                f"{quote(part.text)}: the resolver returned {a_type(value)}; a resolver "
                f"returns a string, number, boolean or null"
            )
        if type(value) is str and len(value) > RESOLVED_LIMIT:
            raise Unresolvable(
                f"{quote(part.text)}: the resolver returned {len(value):,} characters "
                f"(at most {RESOLVED_LIMIT:,})"
            )
        return value

    def _lookup(self, part: Reference, frame: _Frame) -> Any:
        """The value at the reference's path; strings with references on the way are
        followed (raising _Need for the first one not yet evaluated)."""
        if part.up is None:
            node, loc = self.root, ROOT
        else:
            node, loc = self._ancestor(frame.holder, part)
        for key in part.keys:
            holder = node
            found, node = _step(holder, key, loc, part)
            loc = loc.child(found)
            if type(node) is str and "${" in node:
                hit = self._memo.get((id(holder), found), _MISSING)
                if hit is _MISSING or hit is _OPEN:
                    raise _Need(node, holder, loc)
                if hit is _FAILED:
                    raise Unresolvable("")
                node = hit
        return node

    def _ancestor(self, holder: Any, part: Reference) -> tuple[Any, Location]:
        """The node ``part.up - 1`` levels above ``holder`` (where it is first written)."""
        assert part.up is not None
        index = self._index()
        node = holder
        loc, parent = index.get(id(holder), (ROOT, None))
        for _ in range(part.up - 1):
            if parent is None:
                raise Unresolvable(
                    f"{quote(part.text)} goes {part.up - 1} level(s) up from "
                    f"{quote(str(index[id(holder)][0]) or '<root>')}, above the root"
                )
            node = parent
            loc, parent = index[id(node)]
        return node, loc

    def _index(self) -> dict[int, tuple[Location, Any]]:
        """Each container's first location and the node holding it (built on first need)."""
        if self._written is None:
            written: dict[int, tuple[Location, Any]] = {}
            node_at: dict[int, Any] = {}

            def enter(node: Any, at: Location) -> None:
                parent = None if at.parent is None else node_at[id(at.parent)]
                written[id(node)] = (at, parent)
                node_at[id(at)] = node

            fold(self.root, _nothing, enter=enter)
            self._written = written
        return self._written

    def _where(self, holder: Any, loc: Location) -> Location:
        """Where the string at ``holder[loc.key]`` is written (``loc`` may be a walk's own)."""
        hit = self._index().get(id(holder))
        return loc if hit is None else hit[0].child(loc.key)

    def _cycle(self, stack: list[_Frame], key: tuple[int, Any]) -> str:
        start = next(i for i, f in enumerate(stack) if (id(f.holder), f.loc.key) == key)
        chain = [str(self._where(f.holder, f.loc)) or "<root>" for f in stack[start:]]
        if len(chain) > _CYCLE_SHOWN:
            chain = [*chain[:4], f"... ({len(chain) - 6} more)", *chain[-2:]]
        return f"cycle of references: {' -> '.join(map(quote, chain))} -> {quote(chain[0])}"


def _nothing(node: Any, children: Any, loc: Location) -> None:
    return None


def _step(node: Any, key: str | int, at: Location, part: Reference) -> tuple[Any, Any]:
    """``(key as stored, node[key])``; raises Unresolvable naming the path and close matches."""
    if isinstance(node, dict):
        for candidate in _spellings(key):
            if candidate in node:
                return candidate, node[candidate]
        where = at.keys()
        names = [format_path([*where, k]) for k in list(node)[:1000]]
        close = difflib.get_close_matches(format_path([*where, key]), names, n=3)
        hint = f"; did you mean {', '.join(map(quote, close))}?" if close else ""
        missing = quote(format_path([*where, key]))
        raise Unresolvable(f"{quote(part.text)}: no key {missing}{hint}")
    if type(node) in (list, tuple):
        if isinstance(key, int) or key.isdigit():
            index = int(key)
            if -len(node) <= index < len(node):
                return index, node[index]
        raise Unresolvable(
            f"{quote(part.text)}: no item {quote(key)} in the list {quote(str(at) or '<root>')} "
            f"({len(node)} items)"
        )
    raise Unresolvable(
        f"{quote(part.text)}: {quote(str(at) or '<root>')} is {a_type(node)}, "
        "not a node with keys or items"
    )

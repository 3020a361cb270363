"""``check``: resolve every target and check every node's arguments without building anything.

Nothing is built: typed values are validated against their annotations without constructing them
(no ``__init__``, ``__attrs_post_init__``, validator or converter runs), and no
``corelib_before_instantiate`` / ``corelib_after_instantiate`` hook is called. Targets are
resolved exactly as :func:`instantiate` resolves them, so ``corelib_resolve_target`` hooks are
asked first for every target string (a plugin's claim is part of what a target means).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from corelib._errors import CorelibError, quote
from corelib._instantiate import SPECIAL_KEYS, _descend
from corelib._records import record_kind
from corelib._references import env_allowance, resolve_collecting
from corelib._signatures import (
    PLACEHOLDER,
    UNFILLED,
    describe_target,
    keyword_problem,
    placeholders,
    positional_names,
    untrusted_settings,
)
from corelib._text import CAUSE_LIMIT, describe_exception
from corelib._traversal import CycleError, Location, fold, is_container
from corelib._trust import KeyPaths, TrustedPaths
from corelib._typing import TypeMismatch, describe_type, parameter_types, validate
from corelib.registry import Allow, TargetError, TargetResolver, make_allowlist

__all__ = ["Problem", "check"]


@attrs.frozen
class Problem:
    """One problem found by :func:`check`: where, which target, and what is wrong."""

    path: str
    target: str | None
    message: str

    def __str__(self) -> str:
        where = self.path or "<root>"
        what = f" (target {quote(self.target)})" if self.target else ""
        return f"{where}{what}: {self.message}"


@attrs.frozen
class _Unbuilt:
    """Stands for the object a target node would build."""

    target: Any


def check(
    cfg: Any,
    *,
    allow: Allow = None,
    trusted: KeyPaths = None,
    allow_env: Iterable[str] | None = None,
) -> list[Problem]:
    """Every problem in ``cfg`` at once: references that lead nowhere or go round in a cycle,
    unknown or refused targets, bad keywords, wrong types, and in safe mode trusted-only
    parameters set by the untrusted config and environment variables it may not read.

    ``allow``, ``trusted`` and ``allow_env`` have the meaning of ``instantiate``'s ``_allow_``
    (None: unrestricted), ``_trusted_`` and ``_allow_env_``; references are resolved first,
    as ``instantiate`` resolves them. Nothing is built; only ``corelib_resolve_target`` hooks
    are asked (to resolve targets as ``instantiate`` would). The children of a
    ``_recursive_: false`` node are checked too, as the component will build them: under the
    same rules, with nothing trusted, and with missing arguments allowed (it may fill them in).
    """
    allowlist = make_allowlist(allow)
    safe = allowlist is not None
    resolved, broken = resolve_collecting(cfg, allow_env=env_allowance(allow_env, safe=safe))
    checker = _Checker(TargetResolver(allowlist), TrustedPaths(trusted), safe=safe)
    try:
        fold(resolved, checker.visit, enter=checker.enter)
    except CycleError as cycle:
        checker.report(
            cycle.location,
            None,
            f"cycle: refers back to its ancestor {str(cycle.node_location) or '<root>'}",
        )
    # A string left unresolved would also be the wrong type: report its reference only.
    found = [Problem(path, None, message) for path, message in broken]
    return found + [p for p in checker.problems if not any(_below(p.path, q.path) for q in found)]


def _below(path: str, top: str) -> bool:
    """Whether ``path`` is ``top`` or inside it (``a.b[0]`` is inside ``a.b``)."""
    return path == top or (path.startswith(top) and path[len(top) : len(top) + 1] in (".", "["))


_NOTHING_TRUSTED = TrustedPaths(None)


class _Checker:
    def __init__(self, resolver: TargetResolver, trusted: TrustedPaths, *, safe: bool) -> None:
        self.resolver = resolver
        self.trusted = trusted
        self.safe = safe
        self.problems: list[Problem] = []
        self._holds_unbuilt: set[int] = set()
        self._deferred: set[int] = set()  # the ids of nodes below a _recursive_: false node

    def enter(self, node: Any, loc: Location) -> None:
        """Mark the children of a ``_recursive_: false`` node, and theirs, as deferred: the
        component builds them later (``instantiate`` under the same policy, with nothing
        trusted), and may fill in arguments first."""
        is_dict = isinstance(node, dict)
        if id(node) in self._deferred or (is_dict and "_target_" in node and not _descend(node)):
            values = node.values() if is_dict else node
            self._deferred.update(id(value) for value in values if is_container(value))

    def report(self, loc: Location, target: Any, message: str) -> None:
        self.problems.append(Problem(str(loc), describe_target(target), message))

    def visit(self, node: Any, children: Any, loc: Location) -> Any:
        if isinstance(node, dict) and "_target_" in node:
            return self._check_target(node, children, loc)
        if isinstance(node, dict) and "_import_" in node:
            path = node["_import_"]
            if not isinstance(path, str):
                message = f"'_import_' must be an import path string, got {quote(path)}"
                self.report(loc, None, message)
                return None
            try:
                return self.resolver.resolve_object(path)
            except Exception as error:  # report every failure, whatever raised it
                self.report(loc, path, str(error))
                return None
        values = children.values() if isinstance(children, dict) else children
        if any(isinstance(v, _Unbuilt) or id(v) in self._holds_unbuilt for v in values):
            self._holds_unbuilt.add(id(children))
        return children

    def _check_target(self, node: dict[str, Any], children: Any, loc: Location) -> _Unbuilt:
        spec = node["_target_"]
        try:
            target = self.resolver.resolve(spec)
        except (TargetError, CorelibError) as error:
            self.report(loc, spec, str(error))
            return _Unbuilt(None)
        except Exception as error:  # a module's import-time code or a resolve hook raised
            self.report(
                loc, spec, f"resolving the target raised {describe_exception(error, CAUSE_LIMIT)}"
            )
            return _Unbuilt(None)
        recursive = _descend(node)  # children of a _recursive_: false node reach it as written
        values = children if recursive else node
        kwargs = {k: v for k, v in values.items() if k not in SPECIAL_KEYS}
        args = values.get("_args_", [])
        deferred = id(node) in self._deferred
        partial = node.get("_partial_", False) is True or deferred
        for key in ("_partial_", "_recursive_"):
            if type(node.get(key, False)) is not bool:
                self.report(loc, spec, f"{key!r} must be true or false, got {quote(node[key])}")
        if type(args) not in (list, tuple):
            shown = f"{type(args).__name__} {quote(args)}"
            self.report(loc, spec, f"'_args_' must be a list, got {shown}")
            args = []
        problem = keyword_problem(target, args, kwargs, partial=partial)
        if problem:
            self.report(loc, spec, problem)
        if not problem and not partial and record_kind(target) == "pydantic":
            self._check_type(kwargs, target, loc, spec)
        for unfilled in placeholders(args, kwargs):
            where = (
                loc.child(unfilled)
                if isinstance(unfilled, str)
                else loc.child("_args_").child(unfilled)
            )
            self.report(where, spec, UNFILLED)
        if self.safe:
            trusted = _NOTHING_TRUSTED if deferred else self.trusted
            for where, message in untrusted_settings(target, args, kwargs, loc, trusted):
                self.report(where, spec, message)
        hints = parameter_types(target)
        if hints:
            named = list(zip(positional_names(target), args, strict=False))
            for name, value in [*named, *kwargs.items()]:
                unbuilt = not recursive and is_container(value)  # not the object yet
                filled = not (type(value) is str and value == PLACEHOLDER)  # reported above
                if name in hints and not unbuilt and filled:
                    self._check_type(value, hints[name], loc.child(name), spec)
        return _Unbuilt(target)

    def _check_type(self, value: Any, expected: Any, loc: Location, spec: Any) -> None:
        if isinstance(value, _Unbuilt):
            built = value.target
            if (
                isinstance(built, type)
                and isinstance(expected, type)
                and not issubclass(built, expected)
            ):
                self.report(
                    loc,
                    spec,
                    f"expected {describe_type(expected)}, but the node builds a "
                    f"{describe_type(built)}",
                )
            return
        if id(value) in self._holds_unbuilt:
            return
        try:
            validate(value, expected)
        except TypeMismatch as mismatch:
            for key in mismatch.keys:
                loc = loc.child(key)
            self.report(loc, spec, str(mismatch))

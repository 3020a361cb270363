"""Config nodes: ``LazyConfig`` (a dict with attribute access) and ``LazyCall`` (alias ``L``)."""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable
from typing import Any

from corelib._errors import ConfigError
from corelib._traversal import fold

__all__ = ["L", "LazyCall", "LazyConfig"]


class LazyConfig(dict[str, Any]):
    """A config node: a ``dict`` whose keys can also be read and written as attributes.

    ``cfg.optimizer.lr = 0.1`` is ``cfg["optimizer"]["lr"] = 0.1``. Keys that collide with
    ``dict`` methods (``items``, ``keys``, ...) are reachable with ``cfg["items"]`` only.
    Plain dicts given to it (or set as attributes) become ``LazyConfig`` nodes too, so that
    attribute access works all the way down; nodes that already are ``LazyConfig`` are kept as
    they are (and so stay shared). A plain dict given to several nodes becomes one node, made
    when it is first given, so it stays shared too (change it afterwards through the node).
    A node's provenance (where each key's value came from, see :func:`corelib.explain`) lives
    in a slot beside its keys.
    """

    __slots__ = ("__weakref__", "_provenance")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key, value in self.items():
            if type(value) in _PLAIN:
                dict.__setitem__(self, key, as_nodes(value))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"config node has no key {name!r}; keys: {sorted(map(str, self))}"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = as_nodes(value) if type(value) in _PLAIN else value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setstate__(self, state: Any) -> None:
        """Restore the slots that ``copy`` and ``pickle`` hand back (not as keys)."""
        slots = state[1] if isinstance(state, tuple) else state
        for name, value in (slots or {}).items():
            object.__setattr__(self, name, value)

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *(k for k in self if isinstance(k, str))]

    def __repr__(self) -> str:
        return f"LazyConfig({dict.__repr__(self)})"


class LazyCall:
    """``LazyCall(target)(*args, **kwargs)`` records a call as a :class:`LazyConfig` node.

    ``target`` is a callable or a target string (an import path or a registered name).
    Positional arguments are stored under ``_args_``.
    """

    __slots__ = ("_target",)

    def __init__(self, target: Callable[..., Any] | str) -> None:
        if not (callable(target) or isinstance(target, str)):
            raise ConfigError(
                f"LazyCall expects a callable or a target string, got {type(target).__name__}: "
                f"{target!r}"
            )
        self._target = target

    def __call__(self, *args: Any, **kwargs: Any) -> LazyConfig:
        node = dict.__new__(LazyConfig)
        caller = sys._getframe(1)  # where the call was written: its provenance until a file load
        _set_site(node, (caller.f_code.co_filename, caller.f_lineno))
        node["_target_"] = self._target
        if args:
            node["_args_"] = as_nodes(list(args))
        for key, value in kwargs.items():
            node[key] = as_nodes(value) if type(value) in _PLAIN else value
        return node

    def __repr__(self) -> str:
        return f"LazyCall({self._target!r})"


L = LazyCall

_set_site = LazyConfig.__dict__["_provenance"].__set__  # the slot (attribute access sets keys)

_PLAIN = (dict, list)


def as_nodes(value: Any) -> Any:
    """``value`` with every plain dict inside it (not inside config nodes) made a LazyConfig.

    Identity is kept: a dict reached twice, here or in an earlier call, becomes one node;
    config nodes, and lists holding no plain dict, are not copied.
    """

    def descend(node: dict[str, Any]) -> bool:
        return type(node) is dict

    def visit(node: Any, children: Any, loc: Any) -> Any:
        if children is None:  # a LazyConfig (or other dict subclass): kept as it is
            return node
        if isinstance(children, dict):
            return _node_of(node, children)
        if all(new is old for new, old in zip(children, node, strict=True)):
            return node  # nothing inside changed: keep the very list (or tuple)
        return children if type(node) is list else tuple(children)

    return fold(value, visit, descend=descend)


_NODES: dict[int, tuple[dict[str, Any], weakref.ref[LazyConfig]]] = {}
"""id(plain dict) -> (that dict, the node made of it), while the node lives."""


def _node_of(plain: dict[str, Any], children: dict[str, Any]) -> LazyConfig:
    """The node already made of ``plain``, or a new one holding ``children``."""
    key = id(plain)
    entry = _NODES.get(key)
    if entry is not None and entry[0] is plain:
        existing = entry[1]()
        if existing is not None:
            return existing
    node = dict.__new__(LazyConfig)
    dict.update(node, children)

    def forget(ref: weakref.ref[LazyConfig]) -> None:
        if _NODES.get(key, (None, None))[1] is ref:
            del _NODES[key]

    _NODES[key] = (plain, weakref.ref(node, forget))
    return node

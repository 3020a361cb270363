"""Config nodes: ``LazyConfig`` (a dict with attribute access) and ``LazyCall`` (alias ``L``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from corelib._errors import ConfigError

__all__ = ["L", "LazyCall", "LazyConfig"]


class LazyConfig(dict[str, Any]):
    """A config node: a ``dict`` whose keys can also be read and written as attributes.

    ``cfg.optimizer.lr = 0.1`` is ``cfg["optimizer"]["lr"] = 0.1``. Keys that collide with
    ``dict`` methods (``items``, ``keys``, ...) are reachable with ``cfg["items"]`` only.
    """

    __slots__ = ()

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
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

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
        node = LazyConfig(_target_=self._target)
        if args:
            node["_args_"] = list(args)
        node.update(kwargs)
        return node

    def __repr__(self) -> str:
        return f"LazyCall({self._target!r})"


L = LazyCall

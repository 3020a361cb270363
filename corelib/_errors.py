"""One exception hierarchy for everything corelib raises on purpose."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigError",
    "CorelibError",
    "InstantiationError",
    "PluginError",
    "RegistryError",
]


class CorelibError(Exception):
    """Base class of every error corelib raises on purpose."""


class ConfigError(CorelibError):
    """Loading, saving, or overriding a config failed (names the file and key path)."""


class RegistryError(CorelibError):
    """A registry lookup or registration failed (names the group, name and plugin)."""


class PluginError(RegistryError):
    """A plugin failed to import or register (names plugin, distribution and version)."""


class InstantiationError(CorelibError):
    """Building one node of a config tree failed.

    ``path`` is where in the tree (``""`` for the root, e.g. ``"model.blocks[3]"``),
    ``target`` the node's ``_target_`` as written (a string, or a callable's import path).
    The original exception, if any, is kept as ``__cause__``. ``user_error`` is true when the
    cause was raised by the target's own code (a constructor or function), false when the
    config itself is wrong (unknown target, bad keyword, wrong type, refused import).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        target: str | None = None,
        user_error: bool = False,
    ) -> None:
        self.message = message
        self.path = path
        self.target = target
        self.user_error = user_error
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"at {self.path!r}" if self.path else "at the root"
        what = f" (target {self.target!r})" if self.target is not None else ""
        return f"{where}{what}: {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_instantiation_error,
            (self.message, self.path, self.target, self.user_error),
        )


def _rebuild_instantiation_error(
    message: str, path: str, target: str | None, user_error: bool
) -> InstantiationError:
    return InstantiationError(message, path=path, target=target, user_error=user_error)

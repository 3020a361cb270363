"""The trainer's callbacks, registered on corelib's plugin manager for one ``fit()``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from plugins.ddp.hookspecs import add_trainer_hookspecs

__all__ = ["callback_states", "load_callback_states", "trainer_events"]


@contextlib.contextmanager
def trainer_events(callbacks: Sequence[Any]) -> Iterator[Any]:
    """Register ``callbacks`` while the block runs; yield the hook relay to call events on.

    A callback method marked ``@hookimpl`` under a name that is no declared hook is refused
    (a misspelt event would otherwise never fire, silently).
    """
    manager = add_trainer_hookspecs()
    names: list[str] = []
    try:
        for callback in callbacks:
            _check_hook_names(manager, callback)
            names.append(manager.register(callback))
        yield manager.hook
    finally:
        for name in names:
            manager.unregister(name=name)


def _check_hook_names(manager: Any, callback: Any) -> None:
    for name in dir(callback):
        if manager.parse_hookimpl_opts(callback, name) is None:
            continue
        caller = getattr(manager.hook, name, None)
        if caller is None or caller.spec is None:
            hooks = sorted(n for n in dir(manager.hook) if n.startswith("ddp_"))
            raise ValueError(
                f"ddp/trainer: callback {type(callback).__name__} implements {name!r}, which is "
                f"no declared hook; the trainer's hooks are {hooks}"
            )


def callback_states(callbacks: Sequence[Any]) -> dict[str, Any]:
    """The state of every callback that has ``state_dict()`` and ``load_state_dict()``, by
    :func:`_callback_keys` (saved in each rank's trainer state, so a resume restores it)."""
    return {key: callback.state_dict() for key, callback in _callback_keys(callbacks).items()}


def load_callback_states(callbacks: Sequence[Any], states: Any) -> None:
    """Give each stateful callback its state from a checkpoint (those it has none for keep
    theirs: a callback added since)."""
    if not isinstance(states, dict):
        return
    for key, callback in _callback_keys(callbacks).items():
        if key in states:
            callback.load_state_dict(states[key])


def _callback_keys(callbacks: Sequence[Any]) -> dict[str, Any]:
    """Stateful callbacks by class name, ``Name#2`` for a second one of a class."""
    keyed: dict[str, Any] = {}
    for callback in callbacks:
        if not (hasattr(callback, "state_dict") and hasattr(callback, "load_state_dict")):
            continue
        name = type(callback).__qualname__
        key, count = name, 1
        while key in keyed:
            count += 1
            key = f"{name}#{count}"
        keyed[key] = callback
    return keyed

"""``corelib run --seed N``: one seed for every random number generator, before anything is built.

Python's ``random`` is seeded at once. numpy's and torch's global generators are seeded as soon
as those libraries are imported: right away when they already are, otherwise just after their
first import (by the config file or while building it). So a config that never touches torch
never pays for importing it, and one that does gets a seeded torch before its first draw.
"""

from __future__ import annotations

import argparse
import functools
import importlib.abc
import importlib.machinery
import importlib.util
import random
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

__all__ = ["DEFAULT_SEED", "parse_seed", "seed_everything"]

DEFAULT_SEED = 0
_SEED_LIMIT = 2**32  # numpy's global generator takes seeds in [0, 2**32)


def parse_seed(text: str) -> int:
    """``--seed``'s type: an integer in ``[0, 2**32)``."""
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= seed < _SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**32), got {seed}")
    return seed


def _seed_numpy(seed: int, module: ModuleType) -> None:
    module.random.seed(seed)


def _seed_torch(seed: int, module: ModuleType) -> None:
    module.manual_seed(seed)  # every device's generator too


_SEEDERS: dict[str, Callable[[int, ModuleType], None]] = {
    "numpy": _seed_numpy,
    "torch": _seed_torch,
}


def seed_everything(seed: int) -> None:
    """Seed ``random`` now, and numpy's and torch's generators now or when first imported."""
    random.seed(seed)
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _AfterImport)]
    for name, seeder in _SEEDERS.items():
        module = sys.modules.get(name)
        if module is not None:
            seeder(seed, module)
        else:
            sys.meta_path.insert(0, _AfterImport(name, functools.partial(seeder, seed)))


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``callback(module)`` once, right after the top-level module ``name`` is executed.

    It finds nothing itself: it asks the other finders for the spec and wraps the loader's
    ``exec_module``; then it takes itself off ``sys.meta_path``.
    """

    def __init__(self, name: str, callback: Callable[[ModuleType], None]) -> None:
        self.name = name
        self.callback = callback

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        loader = spec.loader if spec is not None else None
        if loader is None:
            return spec
        exec_module = loader.exec_module
        callback = self.callback

        def exec_then_call(module: ModuleType) -> None:
            exec_module(module)
            callback(module)

        loader.exec_module = exec_then_call  # type: ignore[method-assign]
        return spec

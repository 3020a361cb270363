"""Shared fixtures: a fresh global registry, and fake installed plugin distributions.

``fresh_registry`` gives a test an empty global registry and a new plugin manager
(``corelib.registry.isolated``), so the next lookup discovers plugins again; the previous
state is restored afterwards. ``fake_dists`` writes real
``*.dist-info`` directories (``METADATA`` + ``entry_points.txt``) and plugin modules into a temp
directory on ``sys.path``: ``importlib.metadata`` discovers them like installed distributions.
"""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from corelib.registry import ENV_BLOCK, ENV_DISABLE_AUTOLOAD, ENV_STRICT, Registry, isolated


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """The global registry, emptied for the test; plugins are discovered on the next lookup."""
    for variable in (ENV_BLOCK, ENV_DISABLE_AUTOLOAD, ENV_STRICT):
        monkeypatch.delenv(variable, raising=False)
    with isolated() as registry:
        yield registry


@attrs.define
class FakeDists:
    """Writes fake installed distributions that declare ``corelib.plugins`` entry points."""

    root: Path
    prefix: str
    modules: list[str] = attrs.field(factory=list)

    def add(self, distribution: str, version: str, plugins: dict[str, str]) -> dict[str, str]:
        """Install ``distribution`` with one entry point per ``{name: module source}``.

        Each module gets a unique name (returned per entry-point name); its source may use
        ``__name__`` to build lazy refs to itself.
        """
        dist_info = self.root / f"{distribution.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
        )
        module_names = {
            name: self.module(source, f"{distribution.replace('-', '_')}_{name}")
            for name, source in plugins.items()
        }
        lines = [f"{name} = {module}" for name, module in module_names.items()]
        (dist_info / "entry_points.txt").write_text("[corelib.plugins]\n" + "\n".join(lines) + "\n")
        return module_names

    def module(self, source: str, stem: str = "components") -> str:
        """Write a module (not a plugin) on the fake path and return its unique name."""
        module = f"{self.prefix}_{stem}"
        (self.root / f"{module}.py").write_text(textwrap.dedent(source))
        self.modules.append(module)
        return module


@pytest.fixture
def fake_dists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: Registry
) -> Iterator[FakeDists]:
    """A temp ``sys.path`` directory to install fake plugin distributions into."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    dists = FakeDists(root, prefix=f"fake_{uuid.uuid4().hex[:8]}")
    yield dists
    for module in dists.modules:
        sys.modules.pop(module, None)

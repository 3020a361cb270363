"""instantiate builds what a module holds now, after ``importlib.reload`` or a fresh import."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from corelib import instantiate

VERSION_1 = "class Widget:\n    version = 1\n"
VERSION_2 = "class Widget:\n    version = 2  # rewritten\n"  # another size: no stale .pyc


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("reload_me", None)


@pytest.mark.parametrize("target", ["reload_me.Widget", "reload_me:Widget"])
def test_a_reloaded_module_builds_its_new_class(module_dir: Path, target: str) -> None:
    (module_dir / "reload_me.py").write_text(VERSION_1)
    module = importlib.import_module("reload_me")
    assert instantiate({"_target_": target}).version == 1
    (module_dir / "reload_me.py").write_text(VERSION_2)
    importlib.reload(module)
    built = instantiate({"_target_": target})
    assert built.version == 2 and type(built) is module.Widget


def test_a_module_imported_afresh_builds_its_new_class(module_dir: Path) -> None:
    (module_dir / "reload_me.py").write_text(VERSION_1)
    first = instantiate({"_target_": "reload_me.Widget"})
    del sys.modules["reload_me"]
    (module_dir / "reload_me.py").write_text(VERSION_2)
    second = instantiate({"_target_": "reload_me.Widget"})
    assert (first.version, second.version) == (1, 2)
    assert type(second) is sys.modules["reload_me"].Widget


def test_an_import_reference_follows_a_reload(module_dir: Path) -> None:
    (module_dir / "reload_me.py").write_text(VERSION_1)
    module = importlib.import_module("reload_me")
    assert instantiate({"cls": {"_import_": "reload_me.Widget"}})["cls"].version == 1
    (module_dir / "reload_me.py").write_text(VERSION_2)
    importlib.reload(module)
    assert instantiate({"cls": {"_import_": "reload_me.Widget"}})["cls"].version == 2

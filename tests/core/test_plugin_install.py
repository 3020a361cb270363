"""The plugin template, pip-installed with corelib into a fresh virtual environment.

The venv (``_venvs.make_venv``) gets corelib (editable, from this working tree) and a copy of
``examples/plugin-template`` (a regular install); the ``corelib`` console script of that venv is
then run as a user would.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _venvs import make_venv, run_installed

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "examples" / "plugin-template"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding corelib and the template plugin; returns its ``bin`` directory."""
    root = tmp_path_factory.mktemp("plugin-install")
    return make_venv(root, shutil.copytree(TEMPLATE, root / "plugin-template"))


def test_corelib_plugins_lists_the_installed_template_with_its_version(
    venv: Path, tmp_path: Path
) -> None:
    result = run_installed(venv, "plugins", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line}
    assert rows["greeter"] == ["greeter", "corelib-greeter", "0.1.0", "loaded", "1"]


def test_corelib_list_shows_the_template_component(venv: Path, tmp_path: Path) -> None:
    result = run_installed(venv, "list", "examples", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].split() == [
        "greeter/greeter",
        "examples",
        "corelib_greeter.greeter:Greeter",
    ]


def test_corelib_run_builds_the_component_by_short_name(venv: Path, tmp_path: Path) -> None:
    config = shutil.copy(TEMPLATE / "greet.yaml", tmp_path / "greet.yaml")
    result = run_installed(venv, "run", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, corelib!\n"

    result = run_installed(venv, "run", str(config), "name=plugins", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, plugins!\n"

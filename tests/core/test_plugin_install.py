"""The plugin template, pip-installed with corelib into a fresh virtual environment.

The venv gets corelib (editable, from this working tree) and a copy of
``examples/plugin-template`` (a regular install), both with ``--no-deps``; the dependencies
(pluggy, attrs, cattrs, PyYAML, setuptools) come from the running environment through a
``.pth`` line, the way ``--system-site-packages`` would lend them. The ``corelib`` console
script of that venv is then run as a user would.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "examples" / "plugin-template"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding corelib and the template plugin; returns its ``bin`` directory."""
    root = tmp_path_factory.mktemp("plugin-install")
    venv_dir = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv_dir], check=True)
    python = venv_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "_outer_site.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    template = shutil.copytree(TEMPLATE, root / "plugin-template")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    options = ["--no-deps", "--no-build-isolation", "--no-index", "--disable-pip-version-check"]
    subprocess.run([*install, *options, "-e", REPO, template], check=True, timeout=240)
    return venv_dir / "bin"


def corelib(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CORELIB_"))}
    return subprocess.run(
        [venv / "corelib", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_corelib_plugins_lists_the_installed_template_with_its_version(
    venv: Path, tmp_path: Path
) -> None:
    result = corelib(venv, "plugins", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line}
    assert rows["greeter"] == ["greeter", "corelib-greeter", "0.1.0", "loaded", "1"]


def test_corelib_list_shows_the_template_component(venv: Path, tmp_path: Path) -> None:
    result = corelib(venv, "list", "examples", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].split() == [
        "greeter/greeter",
        "examples",
        "corelib_greeter.greeter:Greeter",
    ]


def test_corelib_run_builds_the_component_by_short_name(venv: Path, tmp_path: Path) -> None:
    config = shutil.copy(TEMPLATE / "greet.yaml", tmp_path / "greet.yaml")
    result = corelib(venv, "run", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, corelib!\n"

    result = corelib(venv, "run", str(config), "name=plugins", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, plugins!\n"

"""``corelib plugins new NAME [--dir DIR] [--force]``: a plugin project that works as written.

The slow tests write a project with the real command, run the project's own tests as generated
(they pip-install it and run its config through ``corelib run``), then pip-install it into a
fresh venv next to this checkout's corelib, as ``test_plugin_install`` does, and use it through
that venv's ``corelib`` console script. The fast ones check NAME and the target folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _corelib_cli import run_corelib
from _venvs import make_venv, run_installed

from corelib._cli import main

REPO = Path(__file__).resolve().parents[2]
FILES = [
    "README.md",
    "acme_tools/__init__.py",
    "acme_tools/greeter.py",
    "greet.yaml",
    "pyproject.toml",
    "tests/test_acme_tools.py",
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``corelib plugins new acme-tools``, run in a temp folder; returns the project."""
    root = tmp_path_factory.mktemp("plugins-new")
    result = run_corelib(root, "plugins", "new", "acme-tools")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"acme-tools/{file}" for file in FILES]
    return root / "acme-tools"


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_the_projects_own_tests_pass_as_generated(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CORELIB_", "PYTEST_"))}
    env["PYTHONPATH"] = str(REPO)  # this checkout's corelib, as if installed
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=360
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_the_project_installs_into_a_venv_and_runs_through_its_corelib(
    project: Path, tmp_path: Path
) -> None:
    # dependencies from this environment, as in test_plugin_install
    venv = make_venv(tmp_path, project)

    def corelib(*args: str) -> subprocess.CompletedProcess[str]:
        return run_installed(venv, *args, cwd=tmp_path)

    listed = corelib("plugins")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()}
    assert rows["acme_tools"] == ["acme_tools", "acme-tools", "0.1.0", "loaded", "1"]
    result = corelib("run", str(project / "greet.yaml"), "name=venv")
    assert (result.returncode, result.stdout) == (0, "Hello, venv!\n"), result.stderr


def test_the_entry_module_registers_by_ref_and_imports_nothing_heavy(project: Path) -> None:
    entry = (project / "acme_tools" / "__init__.py").read_text()
    imports = [line for line in entry.splitlines() if line.startswith(("import ", "from "))]
    assert imports == [
        "from __future__ import annotations",
        "from typing import Any",
        "from corelib import hookimpl",
    ]
    assert '"acme_tools.greeter:Greeter"' in entry
    pyproject = (project / "pyproject.toml").read_text()
    assert '[project.entry-points."corelib.plugins"]\nacme_tools = "acme_tools"' in pyproject
    assert 'dependencies = ["corelib"]' in pyproject


@pytest.mark.parametrize(
    "name",
    ["../x", "a/b", "", "1abc", "_x", "x-", "acme tools", "acmé", "a" * 65],
)
def test_a_name_that_is_not_a_plain_distribution_name_is_refused(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["plugins", "new", name]) == 2
    err = capsys.readouterr().err
    assert err.startswith("corelib: error: plugins new: bad NAME") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "why"),
    [("class", "a Python keyword"), ("json", "a standard-library module"), ("Corelib", "corelib")],
)
def test_a_name_whose_package_would_shadow_another_is_refused(
    name: str,
    why: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["plugins", "new", name]) == 2
    assert f"shadows {why}" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_dir_picks_the_folder_and_a_folder_that_is_not_empty_needs_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "work"
    target.mkdir()
    (target / "notes.txt").write_text("mine\n")
    assert main(["plugins", "new", "acme-tools", "--dir", str(target)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert main(["plugins", "new", "acme-tools", "--dir", str(target), "--force"]) == 0
    assert capsys.readouterr().out.splitlines() == [str(target / file) for file in FILES]
    written = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert written == sorted([*FILES, "notes.txt"])
    assert (target / "notes.txt").read_text() == "mine\n"


def test_force_never_writes_through_a_symlink(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target, elsewhere = tmp_path / "work", tmp_path / "elsewhere.txt"
    target.mkdir()
    elsewhere.write_text("precious\n")
    (target / "README.md").symlink_to(elsewhere)
    assert main(["plugins", "new", "acme-tools", "--dir", str(target), "--force"]) == 2
    assert "is a symlink" in capsys.readouterr().err
    assert elsewhere.read_text() == "precious\n"

"""The files ``corelib plugins new`` writes, as ``string.Template`` texts.

Placeholders: ``${dist}`` (the distribution name), ``${package}`` (the import package, which is
also the plugin name) and ``${corelib_version}`` (the corelib that wrote the project). Paths are
relative to the project folder; ``${package}`` in a path is replaced too.
"""

from __future__ import annotations

__all__ = ["TEMPLATES"]

_PYPROJECT = """\
# A corelib plugin is an ordinary distribution with an entry point in the group
# "corelib.plugins". Written by corelib ${corelib_version} (corelib plugins new).
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "${dist}"
version = "0.1.0"
description = "A corelib plugin with one component: ${package}/greeter."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["corelib"]

[project.optional-dependencies]
# the test pip-installs the project offline (no build isolation): it needs pip and setuptools
test = ["pytest", "pip", "setuptools>=70.1"]

# NAME = "module": NAME is the plugin name (its components are "${package}/<name>"); the
# module holds the @hookimpl functions and must import nothing heavy.
[project.entry-points."corelib.plugins"]
${package} = "${package}"

[tool.setuptools]
packages = ["${package}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["."]
"""

_ENTRY_MODULE = '''\
"""The ${package} plugin's entry module: light (corelib and the standard library only).

corelib imports this module to list the plugin; a component's own module is imported only when
a config (or ``corelib describe``) uses the component.
"""

from __future__ import annotations

from typing import Any

from corelib import hookimpl


@hookimpl
def corelib_register(registry: Any) -> None:
    """Register the components by lazy ``"module:attr"`` refs: nothing is imported here."""
    registry.register("examples", "greeter", "${package}.greeter:Greeter")
'''

_COMPONENT = '''\
"""The greeter component: an ordinary class, usable without corelib."""

from __future__ import annotations


class Greeter:
    """Greets someone; ``corelib run`` calls ``run()`` and prints the greeting."""

    def __init__(self, name: str = "world", *, punctuation: str = "!") -> None:
        self.name = name
        self.punctuation = punctuation

    def run(self) -> str:
        """Return the greeting."""
        return f"Hello, {self.name}{self.punctuation}"
'''

_CONFIG = """\
# corelib run greet.yaml name=you
_target_: ${package}/greeter
name: corelib
"""

_TEST = '''\
"""The ${package} plugin: its component alone, and installed, through ``corelib run``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ${package}.greeter import Greeter

PROJECT = Path(__file__).resolve().parents[1]


def test_the_greeter_greets() -> None:
    assert Greeter("you", punctuation="?").run() == "Hello, you?"


def test_corelib_runs_the_installed_plugin(tmp_path: Path) -> None:
    """pip-install the project next to this Python's corelib; run its config as a user would."""
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    offline = ["--no-deps", "--no-index", "--no-build-isolation"]
    subprocess.run([*pip, *offline, "--target", str(site), str(PROJECT)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORELIB_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(site), env.get("PYTHONPATH")] if p)

    def corelib(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "corelib", *args]
        return subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    listed = corelib("list", "examples")
    assert listed.returncode == 0, listed.stderr
    assert "${package}/greeter" in listed.stdout

    result = corelib("run", str(PROJECT / "greet.yaml"), "name=tests")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, tests!\\n"
'''

_README = """\
# ${dist}

A corelib plugin with one component, `${package}/greeter`, written by
`corelib plugins new ${dist}` (corelib ${corelib_version}).

```bash
pip install -e '.[test]'          # next to an installed corelib
corelib plugins                   # ${package}  ${dist}  0.1.0  loaded  1
corelib describe ${package}/greeter
corelib run greet.yaml name=you   # Hello, you!
python -m pytest                  # the component, and the project pip-installed and run
```

- `pyproject.toml` declares the entry point `${package} = "${package}"` in the group
  `corelib.plugins`: the entry-point name is the plugin name, so components are
  `${package}/<name>`.
- `${package}/__init__.py` is the entry module. corelib imports it to list the plugin, so it
  stays light: its `corelib_register` hook registers each component by a lazy
  `"module:attr"` ref, and the component's module is imported only when a config uses it.
- `${package}/greeter.py` is the component, an ordinary class usable without corelib.
- `greet.yaml` is a config that builds and runs it; `tests/` tests the component alone and
  the installed project through `corelib run` (the install needs no network: `--no-index
  --no-build-isolation`, so pip and setuptools must be installed, as the `test` extra does).

To add a component, write it in a module of the package and register its ref in
`corelib_register`. corelib's docs/plugins.md covers hooks, plugin commands
(`corelib_cli_commands`), your own hookspecs, blocking and strict mode.
"""

TEMPLATES: dict[str, str] = {
    "pyproject.toml": _PYPROJECT,
    "README.md": _README,
    "greet.yaml": _CONFIG,
    "${package}/__init__.py": _ENTRY_MODULE,
    "${package}/greeter.py": _COMPONENT,
    "tests/test_${package}.py": _TEST,
}

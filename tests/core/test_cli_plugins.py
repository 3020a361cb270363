"""``corelib plugins``, ``list`` and ``describe``, on fake installed plugin distributions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from corelib._cli import main
from corelib.registry import Registry

if TYPE_CHECKING:
    from conftest import FakeDists

REPO = Path(__file__).resolve().parents[2]

COMPONENTS = """
    from __future__ import annotations

    import attrs

    @attrs.define
    class Net:
        '''A tiny network.

        More details that describe leaves out.
        '''

        width: int
        depth: int = 2
        tags: list[str] = attrs.Factory(list)

    def make_optimizer(params, lr: float = 0.01, *extra, nesterov: bool = False, **options):
        '''Build an optimizer.'''

    def make_scheduler(optimizer, /, steps: int, *, warmup: int = 0, decay=make_optimizer):
        '''Build a scheduler.'''
"""


def acme_plugin(components: str) -> str:
    return f"""
        from corelib.hooks import hookimpl

        @hookimpl
        def corelib_register(registry):
            registry.register("models", "net", "{components}:Net")
            registry.register("optimizers", "sgd", "{components}:make_optimizer")
            registry.register("schedulers", "warmup", "{components}:make_scheduler")
    """


@pytest.fixture
def installed(fake_dists: FakeDists) -> str:
    """acme (two components, lazily) and broken (fails to import); returns the components module."""
    components = fake_dists.module(COMPONENTS)
    fake_dists.add("acme-dist", "1.4.2", {"acme": acme_plugin(components)})
    fake_dists.add("broken-dist", "0.3", {"broken": "raise ImportError('needs libfoo')\n"})
    return components


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def rows(out: str) -> dict[str, list[str]]:
    """The rows of the first table printed by a command, keyed by their first column."""
    table = out.split("\n\n")[0] if out.startswith("NAME") else out.split("\n\n")[-1]
    return {line.split()[0]: line.split() for line in table.splitlines() if line.strip()}


def test_plugins_lists_name_distribution_version_status_and_count(
    installed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "plugins")
    assert code == 0
    table = rows(out)
    assert table["NAME"] == ["NAME", "DISTRIBUTION", "VERSION", "STATUS", "COMPONENTS"]
    assert table["acme"] == ["acme", "acme-dist", "1.4.2", "loaded", "3"]
    assert table["broken"] == ["broken", "broken-dist", "0.3", "failed", "0"]
    assert "\n\nbroken (broken-dist 0.3): ImportError: needs libfoo\n" in out
    assert installed not in sys.modules, "listing plugins imported a component module"


def test_plugins_json_is_a_list_of_reports(
    installed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "plugins", "--json")
    assert code == 0
    by_name = {report["name"]: report for report in json.loads(out)}
    assert by_name["acme"] == {
        "name": "acme",
        "distribution": "acme-dist",
        "version": "1.4.2",
        "status": "loaded",
        "components": 3,
        "module": by_name["acme"]["module"],
        "error": None,
        "warning": None,
    }
    assert by_name["broken"]["status"] == "failed"
    assert by_name["broken"]["error"] == "ImportError: needs libfoo"


def test_block_plugin_flag(installed: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--block-plugin", "broken", "plugins", "--block-plugin", "acme")
    assert code == 0
    assert rows(out)["acme"][3] == "blocked"
    assert rows(out)["broken"][3] == "blocked"


def test_block_plugin_flag_before_the_command(
    installed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--block-plugin", "broken", "plugins")
    assert code == 0
    assert rows(out)["broken"][3] == "blocked"
    assert "needs libfoo" not in out


def test_list_shows_components_sorted_and_filtered_by_group(
    installed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "list")
    assert code == 0
    table = rows(out)
    assert table["acme/net"] == ["acme/net", "models", f"{installed}:Net"]
    assert table["acme/sgd"] == ["acme/sgd", "optimizers", f"{installed}:make_optimizer"]
    names = [line.split()[0] for line in out.splitlines()[1:]]
    assert names.index("acme/net") < names.index("acme/sgd")

    code, out, _ = run(capsys, "list", "optimizers")
    assert code == 0
    assert set(rows(out)) == {"NAME", "acme/sgd"}
    assert installed not in sys.modules


def test_list_of_an_unknown_group_is_a_usage_error(
    installed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "list", "model")
    assert code == 2
    assert err.startswith("corelib: error: unknown group 'model'; did you mean 'models'?")
    assert "Traceback" not in err


def test_describe_an_attrs_class(installed: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "describe", "net")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "acme/net  (group models; plugin 'acme' from distribution acme-dist 1.4.2)"
    assert lines[1] == f"target: {installed}:Net"
    assert "A tiny network." in out and "More details" not in out
    table = rows(out)
    assert table["width"] == ["width", "int", "required"]
    assert table["depth"] == ["depth", "int", "2"]
    assert table["tags"] == ["tags", "list[str]", "list()"]


def test_describe_a_function(installed: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "describe", "acme/sgd")
    assert code == 0
    table = rows(out)
    assert table["params"] == ["params", "-", "required"]
    assert table["lr"] == ["lr", "float", "0.01"]
    assert table["*extra"] == ["*extra", "-"]
    assert table["nesterov"] == ["nesterov", "bool", "False"]
    assert table["**options"] == ["**options", "-"]
    assert "*" not in table


def test_describe_marks_positional_only_and_keyword_only_parameters(
    installed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "describe", "warmup")
    assert code == 0
    names = [line.split()[0] for line in out.split("parameters:\n")[1].splitlines()[1:]]
    assert names == ["optimizer", "/", "steps", "*", "warmup", "decay"]
    decay = rows(out)["decay"]  # a function default, by its import path as a config writes it
    assert decay == ["decay", "-", f"{installed}.make_optimizer"]


def test_describe_an_import_path(installed: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Like a registered name, but by import path (the user's own command: no safe mode).
    code, out, _ = run(capsys, "describe", f"{installed}.make_optimizer")
    assert code == 0
    assert out.splitlines()[:3] == [
        f"{installed}.make_optimizer  (import path)",
        "",
        "Build an optimizer.",
    ]
    assert rows(out.split("parameters:\n")[1])["lr"] == ["lr", "float", "0.01"]
    code, out, _ = run(capsys, "describe", "math.pi")
    assert (code, out) == (0, "math.pi  (import path)\n\nnot callable: a float value\n")
    code, _, err = run(capsys, "describe", f"{installed}.missing")
    assert code == 2
    assert err.startswith(f"corelib: error: describe '{installed}.missing': cannot import")


def test_describe_an_unknown_name_suggests_and_hides_the_traceback(
    installed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "describe", "acme/nett")
    assert code == 2
    assert err == (
        "corelib: error: no component named 'acme/nett' in the registry; did you mean 'acme/net'?\n"
    )
    code, _, err = run(capsys, "--debug", "describe", "acme/nett")
    assert code == 2
    assert "Traceback (most recent call last)" in err
    assert err.endswith("did you mean 'acme/net'?\n")


def test_describe_a_component_of_a_broken_plugin_shows_its_error(
    installed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "describe", "broken/thing")
    assert code == 2
    assert "plugin 'broken' from distribution broken-dist 0.3 failed to import" in err
    assert "needs libfoo" in err


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys)
    assert code == 2
    assert "usage: corelib" in err


@pytest.mark.timeout(60)
def test_python_m_corelib_plugins_exits_0_with_a_broken_plugin(
    installed: str, fake_dists: FakeDists, fresh_registry: Registry
) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake_dists.root), str(REPO)])}
    result = subprocess.run(
        [sys.executable, "-m", "corelib", "plugins"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert rows(result.stdout)["broken"][3] == "failed"

"""``corelib.runs.run``: what ``corelib run`` does, from Python, recorded with ``run_dir``; and
``${run:dir}`` inside and outside a recorded run."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from corelib import ConfigError, InstantiationError, resolve
from corelib.registry import Registry
from corelib.runs import run, run_dir_given

COMPONENTS = """
    class Where:
        def __init__(self, directory: str) -> None:
            self.directory = directory

        def run(self) -> dict:
            return {"directory": self.directory}


    class Fails:
        def run(self) -> None:
            raise ValueError("bad value in user code")
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: Registry) -> Path:
    module = f"run_api_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(COMPONENTS))
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "where.yaml").write_text(
        f"main: {{_target_: {module}.Where, directory: '${{run:dir}}'}}\n"
    )
    (tmp_path / "fails.yaml").write_text(f"main: {{_target_: {module}.Fails}}\n")
    (tmp_path / "module").write_text(module)
    return tmp_path


def test_run_returns_the_result_and_records_it(folder: Path) -> None:
    module = (folder / "module").read_text()
    result = run(folder / "where.yaml", allow_import=[module], run_dir=folder / "record")
    assert result == {"directory": str(folder / "record")}
    status = json.loads((folder / "record/status.json").read_text())
    assert (status["status"], status["exit_code"]) == ("finished", 0)
    assert json.loads((folder / "record/result.json").read_text())["result"] == result


def test_run_applies_overrides_and_the_safe_mode_of_the_command(folder: Path) -> None:
    with pytest.raises(InstantiationError, match="not allowed"):  # YAML: safe mode by default
        run(folder / "where.yaml", ["main.directory=/elsewhere"])
    result = run(folder / "where.yaml", ["main.directory=/elsewhere"], unsafe=True)
    assert result == {"directory": "/elsewhere"}


def test_run_records_an_error_of_user_code_and_raises_it(folder: Path) -> None:
    module = (folder / "module").read_text()
    with pytest.raises(ValueError, match="bad value in user code"):
        run(folder / "fails.yaml", allow_import=[module], run_dir=folder / "record")
    status = json.loads((folder / "record/status.json").read_text())
    assert (status["status"], status["exit_code"]) == ("failed", 1)
    assert status["error"] == "ValueError: bad value in user code"


def test_run_dir_outside_a_recorded_run_is_an_error_naming_the_key(folder: Path) -> None:
    module = (folder / "module").read_text()
    with pytest.raises(ConfigError, match=r"main\.directory.*--run-dir DIR.*run_dir="):
        run(folder / "where.yaml", allow_import=[module])
    with pytest.raises(ConfigError, match=r"out\b.*\$\{run:dir\} is the directory of a recorded"):
        resolve({"out": "${run:dir}/model.pt"})


def test_run_dir_takes_no_other_argument(folder: Path) -> None:
    with pytest.raises(ConfigError, match=r"expected \$\{run:dir\}"):
        resolve({"out": "${run:cwd}"})


def test_run_refuses_unknown_options(folder: Path) -> None:
    with pytest.raises(TypeError):
        run(folder / "where.yaml", verbose=True)  # type: ignore[call-arg]


def test_run_dir_given_sets_run_dir_for_python_code(tmp_path: Path) -> None:
    with run_dir_given(tmp_path / "record"):
        assert resolve({"out": "${run:dir}/model.pt"}) == {"out": f"{tmp_path}/record/model.pt"}
    with pytest.raises(ConfigError, match="not one"):  # only inside the block
        resolve({"out": "${run:dir}"})

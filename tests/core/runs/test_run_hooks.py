"""The run hooks: ``corelib_run_start`` / ``corelib_run_end`` for every run, in order, with the
:class:`RunRecord`; a hook that raises is reported and changes nothing; ``write_json``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from corelib import get_plugin_manager, hookimpl
from corelib.registry import Registry
from corelib.runs import RunRecord, run

COMPONENTS = """
    class Score:
        def __init__(self, value: int) -> None:
            self.value = value

        def run(self) -> dict:
            return {"score": self.value}


    class Fails:
        def run(self) -> None:
            raise KeyError("no such thing")
"""


class Recorder:
    """Notes every call and what the record's status said at that moment."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    @hookimpl
    def corelib_run_start(self, record: RunRecord) -> None:
        self.calls.append(("start", record.config_path, record.overrides, _status(record)))

    @hookimpl
    def corelib_run_end(self, record: RunRecord, result: Any, error: BaseException | None) -> None:
        self.calls.append(("end", result, error, _status(record)))
        record.write_json("extra.json", {"seen": result})


class Raises:
    @hookimpl
    def corelib_run_start(self, record: RunRecord) -> None:
        raise SystemExit("a hook must not end the run")

    @hookimpl
    def corelib_run_end(self, record: RunRecord, result: Any, error: BaseException | None) -> None:
        raise RuntimeError("the hook is broken")


def _status(record: RunRecord) -> str | None:
    if record.dir is None:
        return None
    return json.loads((record.dir / "status.json").read_text())["status"]


@pytest.fixture
def configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: Registry) -> Path:
    module = f"run_hooks_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(COMPONENTS))
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "score.py").write_text(
        f"from corelib import L\nfrom {module} import Score\nmain = L(Score)(value=1)\n"
    )
    (tmp_path / "fails.py").write_text(
        f"from corelib import L\nfrom {module} import Fails\nmain = L(Fails)()\n"
    )
    return tmp_path


def test_start_then_end_with_the_record_and_the_result(configs: Path) -> None:
    recorder = Recorder()
    get_plugin_manager().register(recorder, name="recorder")
    result = run(configs / "score.py", ["main.value=7"], run_dir=configs / "out")
    assert result == {"score": 7}
    config = str(configs / "score.py")
    assert recorder.calls == [
        ("start", config, ("main.value=7",), "running"),
        ("end", {"score": 7}, None, "running"),  # the final status comes after the hooks
    ]
    assert json.loads((configs / "out/extra.json").read_text()) == {"seen": {"score": 7}}
    assert json.loads((configs / "out/status.json").read_text())["status"] == "finished"


def test_end_receives_the_error_of_a_failed_run(configs: Path) -> None:
    recorder = Recorder()
    get_plugin_manager().register(recorder, name="recorder")
    with pytest.raises(KeyError):
        run(configs / "fails.py")
    (_, config, _, status), (end, result, error, _) = recorder.calls
    assert (config, status, end, result) == (str(configs / "fails.py"), None, "end", None)
    assert isinstance(error, KeyError)


def test_a_hook_that_raises_is_reported_and_the_run_keeps_its_result(
    configs: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    recorder = Recorder()
    get_plugin_manager().register(recorder, name="recorder")
    get_plugin_manager().register(Raises(), name="raises")
    assert run(configs / "score.py", run_dir=configs / "out") == {"score": 1}
    assert recorder.calls[-1][0] == "end"  # the other plugin's hook still ran
    stderr = capfd.readouterr().err
    assert "corelib: warning: plugin 'raises'" in stderr
    assert "corelib_run_end raised RuntimeError: the hook is broken" in stderr
    assert "corelib_run_start raised SystemExit: a hook must not end the run" in stderr
    status = json.loads((configs / "out/status.json").read_text())
    assert (status["status"], status["exit_code"]) == ("finished", 0)


def test_write_json_without_a_record_keeps_the_data_in_memory(tmp_path: Path) -> None:
    record = RunRecord(dir=None, argv=(), config_path="c.yaml", overrides=())
    record.write_json("metrics.json", {"loss": 0.5})
    assert record.files == {"metrics.json": {"loss": 0.5}}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["status.json", "result.json", "../escape.json", ".hidden", ""])
def test_write_json_refuses_the_records_own_files_and_paths(tmp_path: Path, name: str) -> None:
    record = RunRecord(dir=tmp_path, argv=(), config_path="c.yaml", overrides=())
    with pytest.raises(ValueError, match="not a file name a plugin may write"):
        record.write_json(name, {})
    assert list(tmp_path.iterdir()) == []


def test_a_workers_write_json_names_its_file_after_its_rank(tmp_path: Path) -> None:
    worker = RunRecord(dir=tmp_path, argv=(), config_path="c.yaml", overrides=(), rank=1)
    worker.write_json("resources.json", {"rss": 1})
    assert not worker.writes_record  # the launcher writes the record's own files
    assert [path.name for path in tmp_path.iterdir()] == ["resources.rank1.json"]
    assert worker.files == {"resources.json": {"rss": 1}}

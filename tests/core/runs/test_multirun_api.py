"""``corelib.runs.multirun`` from Python: the same machinery as ``corelib run -m``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
from _corelib_cli import REPO
from _sweep_jobs import ALLOW, job_events, read_events, write_sweep_app

from corelib import ConfigError, CorelibError, Trusted
from corelib.registry import Registry
from corelib.runs import (
    Choice,
    JobResult,
    SearchSpace,
    build_component,
    multirun,
    read_sweep_log,
)


@pytest.fixture
def app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: Registry
) -> Iterator[Path]:
    """The sweep app in ``tmp_path``, the current folder, importable here (the check before
    launch) and by the jobs; the installed plugins (launchers, sweepers) are found afresh."""
    write_sweep_app(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), str(REPO)]))
    yield tmp_path
    sys.modules.pop("sweepjob", None)


def test_multirun_returns_each_jobs_result_in_job_order(app: Path) -> None:
    seen: list[JobResult] = []

    results = multirun(
        "sweep.yaml",
        ["main.a=1,2", "main.b=3"],
        flags=ALLOW,
        run_dir="out",
        launcher_options={"jobs": 2},
        on_result=seen.append,
    )

    assert [r.job.index for r in results] == [0, 1]
    assert [r.result for r in results] == [{"loss": 3, "width": 1}, {"loss": 6, "width": 1}]
    assert [r.job.run_dir for r in results] == [app / "out" / "0", app / "out" / "1"]
    assert results[0].job.config == str(app / "sweep.yaml")  # a launcher may start it anywhere
    assert sorted(r.job.index for r in seen) == [0, 1]


def test_the_default_folder_is_under_multirun(app: Path) -> None:
    (result,) = multirun("sweep.yaml", [], flags=ALLOW)

    assert result.ok
    assert result.job.run_dir.parent.parent == app / "multirun" / "sweep"


class OneAtATime:
    """An adaptive sweeper: proposes the values of ``main.a`` one batch at a time."""

    def __init__(self) -> None:
        self.limits: list[int] = []
        self.told: list[tuple[str, str]] = []

    def ask(self, space: SearchSpace, limit: int) -> list[dict[str, str]]:
        self.limits.append(limit)
        domain = space["main.a"]
        assert isinstance(domain, Choice)
        index = len(self.limits) - 1
        return [{"main.a": domain.values[index]}] if index < len(domain.values) else []

    def tell(self, assignment: dict[str, str], result: JobResult) -> None:
        self.told.append((assignment["main.a"], result.status))


def test_an_adaptive_sweepers_later_batch_is_checked_before_it_launches(app: Path) -> None:
    sweeper = OneAtATime()

    with pytest.raises(ConfigError, match=r"(?s)job 1 \(main.a=x\): .*expected int, got str 'x'"):
        multirun("sweep.yaml", ["main.a=1,x"], sweeper=sweeper, flags=ALLOW, run_dir="out")

    assert sweeper.limits == [1, 1]  # batches of the launcher's slots
    assert sweeper.told == [("1", "finished")]
    assert sorted(job_events(app / "out")) == [0]
    assert not (app / "out" / "1").exists()
    assert read_events(app / "out")[-1]["status"] == "error"


class TellsItsBest(OneAtATime):
    """``OneAtATime`` with a ``best`` (as ``sweepers/optuna``'s) and an ``objective``."""

    objective = "loss"

    def __init__(self, best: object) -> None:
        super().__init__()
        self.best = best


@pytest.mark.parametrize(
    ("best", "logged"),
    [
        (
            ({"main.a": "2"}, 4.5),
            {"assignment": {"main.a": "2"}, "objective": "loss", "value": 4.5},
        ),
        (None, None),  # none told yet
        (({"main.a": "2"}, float("nan")), None),  # not a number JSON can hold
        ("the second", None),  # not (assignment, value): left out, the sweep still ends
    ],
)
def test_the_end_event_holds_the_best_job_the_sweeper_tells(
    app: Path, best: object, logged: object
) -> None:
    multirun("sweep.yaml", ["main.a=1,2"], sweeper=TellsItsBest(best), flags=ALLOW, run_dir="out")

    end = read_events(app / "out")[-1]
    assert (end["event"], end["status"]) == ("end", "finished")
    assert end.get("best") == logged


def test_resume_tells_the_sweeper_the_jobs_that_finished_before(app: Path) -> None:
    multirun("sweep.yaml", ["main.a=1,2"], sweeper=OneAtATime(), flags=ALLOW, run_dir="out")
    with open(app / "out" / "sweep.jsonl", "a") as log:  # a torn line, a line of another shape
        log.write('{"event": "job", "job": 0, "overrides": 5}\n{"event": "jo')
    sweeper = OneAtATime()

    results = multirun(
        "sweep.yaml", ["main.a=1,2"], sweeper=sweeper, flags=ALLOW, run_dir="out", resume=True
    )

    assert sweeper.told == [("1", "finished"), ("2", "finished")]
    assert [r.result["loss"] for r in results] == [2, 4]
    events = read_sweep_log(app / "out")  # the torn line is left out
    assert [e["event"] for e in events].count("launch") == 2  # no job ran again
    assert [e["event"] for e in events][-2:] == ["start", "end"]


def test_components_by_short_or_qualified_name(app: Path) -> None:
    assert build_component("launchers", "local", {"jobs": 3}).slots == 3
    assert build_component("launchers", "launchers/local").slots == 1
    with pytest.raises(ConfigError, match="no component named 'grid'; known: launchers/local"):
        build_component("launchers", "grid")
    with pytest.raises(ConfigError, match="'sweepers/grid'"):
        build_component("launchers", "sweepers/grid")
    with pytest.raises(ConfigError, match="'_target_' is not a parameter name"):
        build_component("launchers", "local", {"_target_": "os.system"})
    with pytest.raises(CorelibError, match="not allowed"):  # options reach registered names only
        build_component("launchers", "local", {"jobs": {"_target_": "os.getpid"}})


class TrustingLauncher:
    """A launcher with a trusted-only parameter, as ``launchers/ray``'s ``address``."""

    slots = 1

    def __init__(self, address: Annotated[str, Trusted] = "local") -> None:
        self.address = address


def test_options_may_set_trusted_only_parameters(app: Path, fresh_registry: Registry) -> None:
    fresh_registry.register("launchers", "trusting", TrustingLauncher)

    built = build_component("launchers", "trusting", {"address": "10.0.0.1:6379"})

    assert built.address == "10.0.0.1:6379"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"flags": ["--seed", "x"]}, "the jobs' flags '--seed x': argument --seed"),
        ({"flags": ["main.a=1"]}, "expected flags of one run"),
        ({"launcher": object()}, "is not a launcher"),
        ({"sweeper": object()}, "is not a sweeper"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(
    app: Path, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        multirun("sweep.yaml", ["main.a=1,2"], run_dir="out", **options)  # type: ignore[arg-type]

    assert not (app / "out").exists()


def test_the_config_is_loaded_once_for_the_checks_of_every_job(app: Path) -> None:
    (app / "counted.py").write_text(
        "from pathlib import Path\n"
        "with Path('loads.txt').open('a') as loads:\n"
        "    loads.write('x')\n"
        "main = {'_target_': 'sweepjob.score', 'a': 1}\n"
    )

    results = multirun("counted.py", ["main.a=1,2,3"], run_dir="out")

    assert [r.status for r in results] == ["finished"] * 3
    assert len((app / "loads.txt").read_text()) == 1 + 3  # the sweep's checks, then each job


def test_a_missing_config_is_refused_before_anything_runs(app: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml"):
        multirun("missing.yaml", ["main.a=1,2"], run_dir="out")

    assert not (app / "out").exists()

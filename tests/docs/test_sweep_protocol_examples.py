"""docs/plugins.md, "Writing a launcher or a sweeper": its example plugin, taken from the page
as written, installed as a (fake) distribution, registered, and run through both protocols."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from corelib import ConfigError, registry
from corelib.runs import Choice, Interval, Job, JobResult, Launcher, Sweeper

if TYPE_CHECKING:
    from conftest import FakeDists

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
SECTION = "## Writing a launcher or a sweeper"


def example_files() -> dict[str, str]:
    """The section's Python blocks, by the file named in their first line (``# pkg/mod.py``)."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    files = {}
    for block in re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL):
        first_line = block.splitlines()[0]
        match = re.match(r"# (acme_sweeps/\w+\.py)", first_line)
        assert match, f"each example starts with '# acme_sweeps/<module>.py': {first_line!r}"
        files[match.group(1)] = block
    return files


@pytest.fixture
def acme(fake_dists: FakeDists) -> Iterator[dict[str, ModuleType]]:
    """The example package ``acme_sweeps``, installed as the plugin ``acme``."""
    files = example_files()
    assert sorted(files) == [
        "acme_sweeps/__init__.py",
        "acme_sweeps/serial.py",
        "acme_sweeps/until.py",
    ]
    for name, source in files.items():
        path = fake_dists.root / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(source)
    dist_info = fake_dists.root / "acme_sweeps-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-sweeps\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[corelib.plugins]\nacme = acme_sweeps\n")
    fake_dists.modules += ["acme_sweeps", "acme_sweeps.serial", "acme_sweeps.until"]
    yield {
        "serial": registry.entry("acme/serial").load(),
        "until": registry.entry("acme/until").load(),
    }


def finished(assignment: dict[str, str], loss: float) -> JobResult:
    job = Job(0, "train.yaml", tuple(f"{k}={v}" for k, v in assignment.items()), Path("s/0"))
    return JobResult(job, "finished", 0, result={"loss": loss})


def test_the_example_sweeper_follows_the_protocol_and_stops_when_good_enough(
    acme: dict[str, Any],
) -> None:
    sweeper = acme["until"](target=0.05)
    assert isinstance(sweeper, Sweeper)
    space = {"lr": Choice(("1e-1", "3e-2", "1e-2", "3e-3", "1e-3"))}
    first = sweeper.ask(space, 2)
    assert first == [{"lr": "1e-1"}, {"lr": "3e-2"}]
    sweeper.tell(first[0], finished(first[0], 0.5))
    sweeper.tell(first[1], finished(first[1], 0.2))
    second = sweeper.ask(space, 2)
    assert second == [{"lr": "1e-2"}, {"lr": "3e-3"}]
    sweeper.tell(second[0], finished(second[0], 0.04))
    assert sweeper.ask(space, 2) == []
    with pytest.raises(ConfigError, match="sweep one key over a list of values"):
        acme["until"](target=0.1).ask({"lr": Interval(0.0, 1.0)}, 1)


def test_both_examples_are_registered_under_the_plugin_name(acme: dict[str, Any]) -> None:
    assert acme["serial"].__name__ == "SerialLauncher"
    assert acme["until"].__name__ == "UntilGoodEnough"
    assert registry.entry("acme/serial").group == "launchers"
    assert registry.entry("acme/until").group == "sweepers"
    assert isinstance(acme["serial"](), Launcher)


def test_the_example_launcher_runs_real_jobs_and_collects_their_records(
    acme: dict[str, Any], tmp_path: Path
) -> None:
    launcher = acme["serial"]()
    assert isinstance(launcher, Launcher)
    config = tmp_path / "job.py"
    config.write_text(
        textwrap.dedent(
            """
            import time
            from corelib import L
            main = L(dict)(loss=0.5)
            slow = L(time.sleep)(60)
            """
        )
    )
    jobs = [
        Job(0, str(config), ("main.loss=0.25",), tmp_path / "sweep" / "0"),
        Job(1, str(config), ("main.loss=[",), tmp_path / "sweep" / "1"),
        Job(2, str(config), (), tmp_path / "sweep" / "2", flags=("--entry", "slow"), timeout_s=3),
    ]
    results = {result.job.index: result for result in launcher.launch(jobs)}
    assert (results[0].status, results[0].exit_code, results[0].result) == (
        "finished",
        0,
        {"loss": 0.25},
    )
    assert (results[1].status, results[1].exit_code) == ("failed", 2)
    assert results[2].status == "timeout"

"""The launcher tests' job config, and waiting on what a launched job leaves behind.

``JOB_CONFIG`` (a ``.py`` config): ``work(x, sleep, fail, pid_file)`` returns
``{"y": 2 * x, "workers": WORLD_SIZE}`` (1 without torchrun) after sleeping ``sleep`` seconds,
raises when ``fail`` is true, and first writes its process id to ``pid_file`` when given (so a
test can see whether the job's process is still alive).
:func:`launch_three_endings` is the check every launcher passes (a job that finishes, one that
fails, one past its timeout), :func:`refusal_without` what building a launcher says when its
engine is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from corelib.runs import Job, JobResult, Launcher

__all__ = ["JOB_CONFIG", "launch_three_endings", "refusal_without", "wait_for_file", "wait_gone"]

JOB_CONFIG = textwrap.dedent(
    """
    import os
    import time
    from pathlib import Path

    from corelib import L


    def work(x: int = 1, sleep: float = 0.0, fail: bool = False, pid_file: str = "") -> dict:
        if pid_file:
            Path(pid_file).write_text(str(os.getpid()))
        time.sleep(sleep)
        if fail:
            raise RuntimeError("asked to fail")
        return {"y": 2 * x, "workers": int(os.environ.get("WORLD_SIZE", "1"))}


    main = L(work)(x=1, sleep=0.0, fail=False, pid_file="")
    """
)


def wait_gone(pid: int, within_s: float = 10.0) -> bool:
    """Whether process ``pid`` is gone (or a zombie) within ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        status = Path(f"/proc/{pid}/status")
        if status.exists() and "\nState:\tZ" in status.read_text():
            return True
        time.sleep(0.1)
    return False


def wait_for_file(path: Path, within_s: float = 60.0) -> str:
    """The text of ``path`` once it exists and is not empty."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.1)
    raise AssertionError(f"{path} did not appear within {within_s} s")


def refusal_without(engine: str, module: str, build: str) -> str:
    """The PluginError's message when ``plugins.launchers.<module>`` builds a launcher with
    ``build`` (an expression) in a fresh Python where ``engine`` cannot be imported."""
    code = (
        f"import sys; sys.modules[{engine!r}] = None\n"
        f"import plugins.launchers, plugins.launchers.{module}\n"
        "from corelib import PluginError\n"
        "try:\n"
        f"    plugins.launchers.{module}.{build}\n"
        "except PluginError as exc:\n"
        "    print(exc, end='')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def launch_three_endings(
    launcher: object, make_job: Callable[..., Job], sweep_dir: Path
) -> dict[int, JobResult]:
    """Launch job 0 (finishes), 1 (fails) and 2 (past its 2 s timeout) with ``launcher``;
    check what every launcher must report of each, and return the results by job number."""
    jobs = [
        make_job(0, "main.x=3"),
        make_job(1, "main.fail=true"),
        make_job(2, "main.sleep=60", timeout_s=2),
    ]
    assert isinstance(launcher, Launcher)

    results = {r.job.index: r for r in launcher.launch(jobs)}

    assert (results[0].status, results[0].exit_code, results[0].result) == (
        "finished",
        0,
        {"y": 6, "workers": 1},
    )
    assert (results[1].status, results[1].exit_code) == ("failed", 1)
    assert "asked to fail" in (results[1].error or "")
    assert "asked to fail" in (sweep_dir / "1" / "launcher.log").read_text()  # its output
    assert results[2].status == "timeout"
    assert (sweep_dir / "0" / "result.json").is_file()  # each job wrote its own record
    return results

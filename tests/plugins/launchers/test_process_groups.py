"""``stop_groups``: how every launcher stops a job's process group (``launchers/local`` on this
machine, ``run_job`` on a node for ``launchers/submitit`` and ``launchers/ray``)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _launcher_jobs import wait_for_file, wait_gone

from plugins.launchers import _process_groups
from plugins.launchers._process_groups import stop_groups, stop_with_launcher

STUBBORN = """\
import signal, subprocess, sys, time
from pathlib import Path
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # its child inherits the ignored SIGTERM
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
Path(sys.argv[1]).write_text(str(child.pid))
time.sleep(60)
"""


def start_group(*command: str) -> subprocess.Popen[bytes]:
    """``python COMMAND...`` leading a process group of its own, as a launcher starts a job."""
    return subprocess.Popen(
        [sys.executable, *command],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=stop_with_launcher(),
    )


def test_a_job_that_ends_on_sigterm_is_not_kept_for_the_grace() -> None:
    process = start_group("-c", "import time; time.sleep(60)")
    started = time.monotonic()

    stop_groups([process], grace_s=30)

    assert process.returncode == -signal.SIGTERM
    assert time.monotonic() - started < 10


def test_a_group_that_ignores_sigterm_is_killed_after_the_grace_children_too(
    tmp_path: Path,
) -> None:
    process = start_group("-c", STUBBORN, str(tmp_path / "child"))
    child = int(wait_for_file(tmp_path / "child"))
    started = time.monotonic()

    stop_groups([process], grace_s=0.5)

    assert process.returncode == -signal.SIGKILL
    assert time.monotonic() - started >= 0.5
    assert wait_gone(child)


def test_an_interruption_during_the_grace_still_kills_the_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    process = start_group("-c", STUBBORN, str(tmp_path / "child"))
    child = int(wait_for_file(tmp_path / "child"))

    def second_ctrl_c(seconds: float) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(_process_groups.time, "sleep", second_ctrl_c)
        stop_groups([process], grace_s=30)

    assert process.returncode == -signal.SIGKILL
    assert wait_gone(child)

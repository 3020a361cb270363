"""A tiny job for sweeps: a YAML config whose entry is a function in a module beside it.

``write_sweep_app(folder)`` writes ``sweepjob.py`` and ``sweep.yaml`` (entry
``sweepjob.score``, allowed with ``--allow-import sweepjob``) plus the presets
``main/model/{small,large}.yaml``. ``score`` returns ``{"loss": a * b, "width": ...}`` (and
``"world"``, the number of processes, under torchrun); its
``mode`` makes a job misbehave, unless the file ``fixed`` exists in the folder (so that a
resumed sweep succeeds): a mode starting with ``crash`` raises, ``hang`` sleeps for a minute,
``kill`` kills its own process with SIGKILL (``ok``, or anything else: no harm). With ``tag``,
the job writes ``tags/<tag>-<mode>.json``: its pid, the pid of a child process it started (a
``sleep``, a stand-in for torchrun's workers), and its start and end times, which tests read to
check overlap and that nothing outlives a stopped sweep.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

JOB_SOURCE = """
import json, os, signal, subprocess, sys, time
from pathlib import Path

def score(a: int = 1, b: int = 2, mode: str = "ok", sleep: float = 0.0, tag: str = "",
          model: dict | None = None):
    started = time.time()
    fixed = Path("fixed").exists()
    tags = Path("tags")
    child = None
    if tag:
        child = subprocess.Popen(["sleep", "60"])
        tags.mkdir(exist_ok=True)
        note = {"pid": os.getpid(), "child": child.pid, "start": started}
        (tags / f"{tag}-{mode}.json").write_text(json.dumps(note))
    print(f"job a={a} b={b} mode={mode}", flush=True)
    time.sleep(sleep)
    if not fixed and mode.startswith("crash"):
        raise RuntimeError("the job crashed on purpose")
    if not fixed and mode.startswith("hang"):
        time.sleep(60)
    if not fixed and mode.startswith("kill"):
        os.kill(os.getpid(), signal.SIGKILL)
    if child is not None:
        child.kill()
        child.wait()
        note["end"] = time.time()
        (tags / f"{tag}-{mode}.json").write_text(json.dumps(note))
    result = {"loss": a * b, "width": (model or {}).get("width")}
    if "WORLD_SIZE" in os.environ:  # under torchrun
        result["world"] = int(os.environ["WORLD_SIZE"])
    return result
"""

CONFIG = """\
main:
  _target_: sweepjob.score
  a: 1
  b: 2
  mode: ok
  sleep: 0
  tag: ""
  model: {width: 1}
"""

ALLOW = ("--allow-import", "sweepjob")


def write_sweep_app(folder: Path) -> Path:
    """Write the job module, its config and two presets into ``folder``; the config's path."""
    (folder / "sweepjob.py").write_text(JOB_SOURCE)
    presets = folder / "main" / "model"
    presets.mkdir(parents=True)
    (presets / "small.yaml").write_text("width: 8\n")
    (presets / "large.yaml").write_text("width: 64\n")
    config = folder / "sweep.yaml"
    config.write_text(CONFIG)
    return config


def read_events(sweep_dir: Path) -> list[dict[str, Any]]:
    """The lines of ``sweep_dir/sweep.jsonl``, each parsed."""
    lines = (sweep_dir / "sweep.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def job_events(sweep_dir: Path) -> dict[int, dict[str, Any]]:
    """The last ``job`` event of each job number."""
    return {e["job"]: e for e in read_events(sweep_dir) if e["event"] == "job"}


def read_tag(folder: Path, name: str, timeout: float = 30) -> dict[str, Any]:
    """``tags/<name>.json`` (name: ``<tag>-<mode>``) once the job has written it (waiting at
    most ``timeout`` s)."""
    path = folder / "tags" / f"{name}.json"
    end = time.monotonic() + timeout
    while True:
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def gone(pid: int, timeout: float = 5) -> bool:
    """Whether the process ``pid`` has ended (waiting at most ``timeout`` s for it)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if _zombie(pid):
            return True
        time.sleep(0.05)
    return False


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False

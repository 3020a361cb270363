"""benchmarks/sweep_scale.py (the figures of docs/runs.md, "A sweep of 10,000 jobs") runs, in
small: every part reports, the machinery's sweep with every job."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from _corelib_cli import corelib_environment

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_the_scale_benchmark_reports_each_part(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "sweep_scale.py"), "--jobs", "20",
         "--optuna-trials", "12", "--machinery-jobs", "6"],
        cwd=tmp_path, env=corelib_environment(tmp_path, plugins=True),
        capture_output=True, text=True, timeout=170,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"^multirun, 6 jobs, nothing run: .* sweep.jsonl [\d.]+ MB \(\d+ B", out, re.M)
    for name in ("grid", "random", "JobResults"):
        assert re.search(rf"^{name} +20 ", out, re.M), out
    assert "at the end of 12 trials" in out

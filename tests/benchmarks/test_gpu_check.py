"""``benchmarks/gpu_check.sh`` and its feature checks, run on the CPU: every part prints a ratio
or says its option is missing, and the script's time budget bounds it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_feature_checks_print_a_ratio_or_skip_each_part(tmp_path: Path) -> None:
    command = [sys.executable, "benchmarks/gpu_features.py", "--cpu-smoke", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=220)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.splitlines()
    parts = ("precision bf16", "precision fp16", "activation checkpointing", "checkpoint async")
    for part in parts:
        line = next(line for line in lines if line.startswith(part))
        assert re.search(r"\d\.\d\dx", line) or ": skipped: option missing (" in line, line
    assert any(line.startswith("checkpoint, synchronous: the saving step") for line in lines)
    records = [json.loads(line) for line in (tmp_path / "features.jsonl").read_text().splitlines()]
    assert [r["check"] for r in records] == [
        "precision-bf16",
        "precision-fp16",
        "ac",
        "checkpoint-sync",
        "checkpoint-async",
    ]
    assert all("error" not in r for r in records)
    assert records[0]["step_ratio"] > 0  # bf16 autocast runs on every CPU


@pytest.mark.timeout(120)
def test_a_spent_budget_skips_the_remaining_steps_and_fails(tmp_path: Path) -> None:
    command = ["bash", "benchmarks/gpu_check.sh", "--cpu-smoke", str(tmp_path)]
    env = {**ENV, "BUDGET_S": "1", "PYTHON": sys.executable}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=100)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "running the CPU paths only" in done.stdout
    skipped = [line for line in done.stdout.splitlines() if line.startswith("!! SKIPPED")]
    assert len(skipped) == 7  # every step: the checks, the summary, the three benchmarks
    assert "benchmarks/gpu_features.py --cpu-smoke" in "\n".join(skipped)

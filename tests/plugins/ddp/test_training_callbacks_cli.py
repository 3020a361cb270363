"""The checkpointer, early stopping and a tracker from a YAML config through ``corelib run``
(2 processes) and ``corelib check``."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "mlp" / "single.yaml"
ALLOW = ["--allow-import", "torch.nn", "--allow-import", "torch.optim"]


def _corelib(*args: str, timeout: float = 140) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    return subprocess.run(
        [sys.executable, "-m", "corelib", *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def _callbacks(directory: Path, mode: str = "min") -> str:
    return (
        f"callbacks=[{{_target_: ddp/checkpointer, directory: {directory}/ckpt, every: 5, "
        f"keep_last: 1, keep_best: 1, monitor: val/loss, mode: {mode}, async_save: true}}, "
        "{_target_: ddp/early_stopping, monitor: val/loss, patience: 2, min_delta: 0.05}, "
        f"{{_target_: ddp/wandb, directory: {directory}/logs}}]"
    )


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(150)
def test_a_yaml_config_with_the_new_callbacks_runs_on_two_processes(tmp_path: Path) -> None:
    overrides = ["max_steps=300", "val_every=5", "~checkpoint_dir", "~checkpoint_every"]
    done = _corelib(
        "run", str(EXAMPLE), *overrides, "strategy._target_=ddp/ddp", _callbacks(tmp_path),
        "--nproc-per-node", "2", *ALLOW,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    stopped = int(metrics["step"])
    assert stopped < 300 and f"stopping after step {stopped}" in done.stderr
    kept = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert f"step_{stopped:09d}" in kept and "best" in kept and len(kept) <= 3
    assert list((tmp_path / "logs" / "wandb").glob("offline-run-*/run-*.wandb"))


def test_check_refuses_a_mode_that_is_neither_min_nor_max(tmp_path: Path) -> None:
    done = _corelib("check", str(EXAMPLE), _callbacks(tmp_path, mode="lowest"), *ALLOW, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "1 problem(s)" in done.stderr
    assert "callbacks[0].mode" in done.stdout and "got str 'lowest' (one of 'min', 'max')" in (
        done.stdout
    )

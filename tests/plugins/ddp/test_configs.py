"""The MLP example configs: checked, built in safe mode, run by ``corelib run``; bad configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _dist import run_ranks

from corelib import InstantiationError, apply_overrides, check, instantiate, load_config

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "mlp"
ALLOW = ("torch.nn", "torch.optim")  # the models and data are registered ddp components
SHORT_RUN = ["max_steps=12", "val_every=6", "~callbacks", "~checkpoint_dir", "~checkpoint_every"]


def _config(name: str, *overrides: str) -> Any:
    return apply_overrides(load_config(EXAMPLES / name), [*SHORT_RUN, *overrides])


@pytest.mark.parametrize("name", ["single.yaml", "ddp.yaml", "fsdp2.yaml"])
def test_the_examples_pass_check_in_safe_mode(name: str) -> None:
    assert check(load_config(EXAMPLES / name), allow=ALLOW) == []


def _fit_rank(rank: int, name: str, overrides: tuple[str, ...]) -> dict[str, float]:
    return instantiate(_config(name, *overrides), _allow_=ALLOW).fit()


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_ddp_and_fsdp2_configs_train_like_the_single_config() -> None:
    expected = instantiate(_config("single.yaml"), _allow_=ALLOW).fit()
    for name in ("ddp.yaml", "fsdp2.yaml"):
        for metrics in run_ranks(_fit_rank, name, (), timeout=100):
            assert metrics["step"] == expected["step"] == 12
            assert metrics["train/loss"] == pytest.approx(expected["train/loss"], abs=1e-4)
            assert metrics["val/loss"] == pytest.approx(expected["val/loss"], abs=1e-4)


def test_an_unknown_strategy_name_is_a_clear_error() -> None:
    config = _config("single.yaml", "strategy._target_=ddp/dpp")
    with pytest.raises(InstantiationError, match=r"at 'strategy'.*did you mean 'ddp/ddp'"):
        instantiate(config, _allow_=ALLOW)


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_more_ranks_than_the_data_allows_is_a_clear_error() -> None:
    with pytest.raises(AssertionError) as failure:  # raised on every rank, reported by rank
        run_ranks(_fit_rank, "ddp.yaml", ("train_data.n_samples=1",), timeout=100)
    assert (
        "ValueError: ddp/trainer: train_data: the dataset has 1 samples: too few for 2 "
        "data-parallel ranks with batch_size=32"
    ) in str(failure.value)
    assert "--nproc-per-node" in str(failure.value)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_corelib_run_trains_the_single_example_and_resumes(tmp_path: Path) -> None:
    def corelib_run(max_steps: int, *more: str) -> subprocess.CompletedProcess:
        command = [
            sys.executable, "-m", "corelib", "run", str(EXAMPLES / "single.yaml"),
            f"max_steps={max_steps}", "val_every=10", f"checkpoint_dir={tmp_path}/checkpoints",
            f"callbacks.1.directory={tmp_path}/logs", *more,
            "--allow-import", "torch.nn", "--allow-import", "torch.optim",
        ]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        return subprocess.run(command, capture_output=True, text=True, timeout=80, env=env)

    first = corelib_run(20)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "'step': 20.0" in first.stdout and "20/20" in first.stderr  # result; progress bar
    second = corelib_run(30)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "'step': 30.0" in second.stdout
    resumed_from = tmp_path / "checkpoints" / "step_000000020"
    assert f"ddp/trainer: resumed from {resumed_from} (step 20 of 30)" in second.stderr
    logged = (tmp_path / "logs" / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in logged if "train/loss" in line]
    assert steps == list(range(1, 31))  # the second run continued at step 21
    fresh = corelib_run(30, "+resume=false")  # would leave step 30 of the other run newest
    assert fresh.returncode == 2, fresh.stderr[-2000:]
    assert fresh.stderr.splitlines() == [
        f"corelib: error: ddp/trainer: resume=False, but {tmp_path}/checkpoints already holds "
        "checkpoints (the newest is step_000000030); a new run there would be resumed in their "
        "place later: pick another checkpoint folder, delete this one, or set resume: true"
    ]


def test_corelib_check_refuses_a_precision_the_trainer_does_not_have(tmp_path: Path) -> None:
    config = tmp_path / "bf17.yaml"
    config.write_text((EXAMPLES / "single.yaml").read_text() + "precision: bf17\n")
    flags = [flag for prefix in ALLOW for flag in ("--allow-import", prefix)]
    command = [sys.executable, "-m", "corelib", "check", str(config), *flags]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert (
        "precision (target 'ddp/trainer'): expected "
        "Literal['32', 'bf16', 'bf16-true', 'fp16', 32], got str 'bf17'"
    ) in done.stdout + done.stderr
    for accepted in ("bf16-true", "'32'", "32"):
        config.write_text((EXAMPLES / "single.yaml").read_text() + f"precision: {accepted}\n")
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (accepted, done.stdout, done.stderr)


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_the_sweep_example_keeps_each_jobs_metrics_and_checkpoints_in_its_record(
    tmp_path: Path,
) -> None:
    command = [
        sys.executable, "-m", "corelib", "run", "-m", str(EXAMPLES / "sweep.yaml"),
        "optimizer.lr=1e-3,1e-2", "max_steps=6", "val_every=3", "checkpoint_every=3",
        "--run-dir", str(tmp_path / "sweep"), "--allow-import", "torch.nn",
        "--allow-import", "torch.optim",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=100, env=env)

    assert done.returncode == 0, done.stderr[-2000:]
    for job, lr in enumerate(("1e-3", "1e-2")):
        record = tmp_path / "sweep" / str(job)
        assert f"optimizer.lr={lr}" in json.loads((record / "run.json").read_text())["argv"]
        assert json.loads((record / "result.json").read_text())["result"]["step"] == 6
        assert (record / "checkpoints" / "step_000000006").is_dir()
        logged = (record / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["step"] for line in logged if "train/loss" in line] == [
            1, 2, 3, 4, 5, 6
        ]  # fmt: skip

"""``ddp/throughput``: rates and step-time percentiles that match a model of known speed, peak
memory per rank, MFU, the run record, 2 ranks, the CLI, and bad settings refused.

The model sleeps a fixed time in each training forward pass, so a step takes at least that
long; what must be left out (warm-up, validation, saves) takes 10 times longer. Other work on a
loaded machine only lengthens steps, so the bounds hold under load too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from _dist import run_ranks
from _training import FinalState, make_data, make_model, make_trainer, max_difference

from corelib import ConfigError, hookimpl
from plugins.ddp import _trainer_state
from plugins.ddp._saving import start_checkpoint
from plugins.ddp.callbacks import MetricsLogger
from plugins.ddp.strategies.ddp import DDP
from plugins.ddp.strategies.single import SingleDevice
from plugins.ddp.throughput import Throughput, percentile

STEP_S = 0.05
SLOW_S = 10 * STEP_S


class Sleepy(torch.nn.Module):
    """The test classifier, sleeping ``STEP_S`` in each training forward pass and ``SLOW_S`` in
    each evaluation pass and in the first ``slow_first`` training passes."""

    def __init__(self, slow_first: int = 0) -> None:
        super().__init__()
        self.inner = make_model()
        self.calls = 0
        self.slow_first = slow_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        time.sleep(SLOW_S if not self.training or self.calls <= self.slow_first else STEP_S)
        return self.inner(x)


def _fit(tmp_path: Path, throughput: Throughput, **kwargs: Any) -> list[dict[str, Any]]:
    logger = MetricsLogger(tmp_path / "logs", tensorboard=False)
    options: dict[str, Any] = {"model": Sleepy, "max_steps": 20, "strategy": SingleDevice()}
    make_trainer(callbacks=(throughput, logger), **{**options, **kwargs}).fit()
    return [json.loads(line) for line in logger.path.read_text().splitlines()]


def test_rates_and_percentiles_match_a_model_of_known_speed(tmp_path: Path) -> None:
    throughput = Throughput(log_every=5, warmup_steps=2, tokens_per_sample=12)
    records = _fit(tmp_path, throughput)
    logged = [r for r in records if "throughput/samples_per_s" in r]
    assert [r["step"] for r in logged] == [5, 10, 15, 20]
    for record in logged:
        p50, p90, p99 = (record[f"throughput/step_s_p{q}"] for q in (50, 90, 99))
        assert STEP_S <= p50 <= p90 <= p99 < SLOW_S / 2
        assert 8 / p99 <= record["throughput/samples_per_s"] <= 8 / STEP_S
        assert record["throughput/tokens_per_s"] == pytest.approx(
            12 * record["throughput/samples_per_s"]
        )
        assert record["memory/peak_bytes"] > 10 * 2**20  # this process's peak RSS
    assert "throughput/mfu" not in logged[-1]  # no flops_per_sample
    assert throughput.summary["steps_timed"] == 18  # 20 steps, 2 of warm-up


def test_warm_up_validation_and_checkpoints_are_left_out_of_step_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def slow_save(*args: Any, **kwargs: Any) -> Any:
        time.sleep(SLOW_S)
        return start_checkpoint(*args, **kwargs)

    monkeypatch.setattr(_trainer_state, "start_checkpoint", slow_save)
    throughput = Throughput(log_every=10, warmup_steps=2)
    _fit(
        tmp_path,
        throughput,
        model=lambda: Sleepy(slow_first=2),
        max_steps=12,
        val_data=make_data(8),
        val_every=3,
        checkpoint_dir=tmp_path / "ckpt",
        checkpoint_every=4,
    )
    assert throughput.summary["steps_timed"] == 10
    assert throughput.summary["step_s_p99"] < SLOW_S / 2
    assert throughput.summary["warmup_s"] >= 2 * SLOW_S


def test_mfu_from_flops_per_sample_and_peak_flops(tmp_path: Path) -> None:
    throughput = Throughput(log_every=10, flops_per_sample=1e6, peak_flops=1e9)
    record = _fit(tmp_path, throughput)[-1]
    expected = record["throughput/samples_per_s"] * 1e6 / 1e9
    assert record["throughput/mfu"] == pytest.approx(expected)
    assert 0 < record["throughput/mfu"] < 1


def test_mfu_without_a_known_peak_is_refused_before_training(tmp_path: Path) -> None:
    steps: list[int] = []

    class Steps:
        @hookimpl
        def ddp_step_end(self, step: int) -> None:
            steps.append(step)

    trainer = make_trainer(
        strategy=SingleDevice(), callbacks=(Steps(), Throughput(flops_per_sample=1e6))
    )
    with pytest.raises(ConfigError) as refused:
        trainer.fit()
    assert steps == []
    assert str(refused.value).startswith(
        "ddp/throughput: flops_per_sample is set but the peak FLOP/s of cpu under SingleDevice "
        "is unknown; set peak_flops"
    )


def test_the_run_record_gets_throughput_json_with_the_compile_warm_up(tmp_path: Path) -> None:
    throughput = Throughput(log_every=5, run_dir=tmp_path / "run")
    _fit(tmp_path, throughput, model=make_model, compile={"backend": "aot_eager"})
    record = json.loads((tmp_path / "run" / "throughput.json").read_text())
    assert record == throughput.summary
    assert record["step"] == 20 and record["samples_per_step"] == 8
    assert record["compile_warmup_s"] > 0 and record["memory_kind"] == "max_rss"
    assert record["peak_memory_bytes_per_rank"] == [record["peak_bytes"]]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["throughput.json"]


def test_a_run_with_the_callback_resumes_exactly(tmp_path: Path) -> None:
    def fit(folder: Path, max_steps: int) -> FinalState:
        final = FinalState()
        callbacks = (final, Throughput(log_every=2))
        options = {"checkpoint_dir": folder, "checkpoint_every": 2, "max_steps": max_steps}
        make_trainer(strategy=SingleDevice(), callbacks=callbacks, **options).fit()
        return final

    uninterrupted = fit(tmp_path / "a", 8)
    fit(tmp_path / "b", 5)
    resumed = fit(tmp_path / "b", 8)
    assert resumed.steps == [6, 7, 8]
    assert max_difference(resumed.params, uninterrupted.params) == 0.0
    assert resumed.metrics == uninterrupted.metrics  # its figures stay out of the final metrics


def _fit_rank(rank: int, run_dir: Path) -> dict[str, Any]:
    throughput = Throughput(log_every=4, warmup_steps=1, run_dir=run_dir)
    make_trainer(strategy=DDP(timeout_s=30), callbacks=(throughput,), max_steps=8).fit()
    return throughput.summary


@pytest.mark.distributed
@pytest.mark.timeout(90)
def test_two_ranks_count_every_ranks_samples_and_record_each_ranks_peak(tmp_path: Path) -> None:
    summaries = run_ranks(_fit_rank, tmp_path, timeout=60)
    written = json.loads((tmp_path / "throughput.json").read_text())
    assert written == summaries[0]  # rank 0's
    for summary in summaries:
        assert summary["samples_per_step"] == 16 and summary["world_size"] == 2
        peaks = summary["peak_memory_bytes_per_rank"]
        assert len(peaks) == 2 and all(peak > 10 * 2**20 for peak in peaks)
        assert summary["peak_bytes"] == max(peaks)
    assert summaries[0]["peak_memory_bytes_per_rank"] == summaries[1]["peak_memory_bytes_per_rank"]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_corelib_run_on_two_ranks_writes_into_the_run_record(tmp_path: Path) -> None:
    callback = "{_target_: ddp/throughput, log_every: 1, run_dir: '${run:dir}'}"
    command = [
        sys.executable, "-m", "corelib", "run", "ddp/train_ddp", f"+callbacks=[{callback}]",
        "--nproc-per-node", "2", "--run-dir", str(tmp_path / "run"),
        "--allow-import", "torch.optim",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=100, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((tmp_path / "run" / "throughput.json").read_text())
    assert record["world_size"] == 2 and len(record["peak_memory_bytes_per_rank"]) == 2
    assert record["samples_per_s"] > 0 and record["step"] == 5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"log_every": 0}, "log_every must be a positive integer, not 0"),
        ({"warmup_steps": -1}, "warmup_steps must be >= 0, not -1"),
        ({"peak_flops": 0}, "peak_flops must be positive, not 0"),
    ],
)
def test_bad_settings_are_refused_when_built(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Throughput(**options)


def test_percentiles_interpolate_like_numpy() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert [percentile(values, q) for q in (0, 50, 90, 100)] == pytest.approx([1, 2.5, 3.7, 4])
    assert percentile([5.0], 99) == 5.0

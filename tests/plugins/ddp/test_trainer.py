"""The fit loop in one process: steps, accumulation, validation, resume, SIGTERM, errors."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from _training import FinalState, make_data, make_model, make_trainer, max_difference

from corelib import get_plugin_manager, hookimpl
from plugins.ddp.callbacks import Checkpointer, MetricsLogger, ProgressBar
from plugins.ddp.checkpoint import latest_checkpoint
from plugins.ddp.strategies.single import SingleDevice
from plugins.ddp.trainer import Trainer


def _fit(**kwargs: Any) -> tuple[FinalState, dict[str, float]]:
    final = FinalState()
    callbacks = (final, *kwargs.pop("callbacks", ()))
    metrics = make_trainer(strategy=SingleDevice(), callbacks=callbacks, **kwargs).fit()
    return final, metrics


def test_fit_trains_and_reports_final_metrics() -> None:
    final, metrics = _fit(max_steps=30, val_data=make_data(64, sample_seed=1), val_every=10)
    assert final.steps == list(range(1, 31))
    assert metrics["step"] == 30.0
    assert metrics["train/loss"] < 0.9  # log(3) = 1.10 at the start
    assert metrics["val/loss"] < 0.9
    assert metrics["lr"] == 0.05


def test_max_epochs_counts_full_accumulated_steps() -> None:
    # 256 samples / batch 8 = 32 batches per epoch; 2 epochs / 2 micro-batches = 32 steps
    final, metrics = _fit(max_steps=None, max_epochs=2, grad_accum_steps=2)
    assert final.steps == list(range(1, 33))
    assert metrics["step"] == 32.0


def test_max_epochs_keeps_the_last_partial_batch_like_a_dataloader() -> None:
    final, metrics = _fit(train_data=make_data(100), batch_size=32, max_steps=None)
    assert final.steps == [1, 2, 3, 4]  # 32, 32, 32, then the last 4 samples
    assert metrics["step"] == 4.0


def test_a_dataset_smaller_than_the_default_batch_size_trains() -> None:
    optimizer = functools.partial(torch.optim.SGD, lr=0.05)
    trainer = Trainer(
        make_model, make_data(20), optimizer, loss_fn=F.cross_entropy, strategy=SingleDevice()
    )
    assert trainer.batch_size == 32
    metrics = trainer.fit()
    assert metrics["step"] == 1.0 and metrics["train/loss"] > 0


def test_gradient_accumulation_equals_one_bigger_batch() -> None:
    accumulated, _ = _fit(batch_size=4, grad_accum_steps=4)
    big, _ = _fit(batch_size=16)
    assert max_difference(accumulated.params, big.params) < 1e-6


def test_a_module_passed_in_keeps_its_weights_and_is_trained_in_place() -> None:
    torch.manual_seed(123)
    model = make_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    final, _ = _fit(model=model)
    torch.manual_seed(0)
    assert max_difference(before, make_model().state_dict()) > 1e-3  # not rebuilt from seed
    assert max_difference(final.params, model.state_dict()) == 0.0
    assert max_difference(final.params, before) > 1e-4


def test_dataloader_factory_gets_rank_world_size_epoch_and_seed() -> None:
    calls = []
    data = make_data(32)

    def batches(*, rank: int, world_size: int, epoch: int, seed: int) -> list[Any]:
        calls.append((rank, world_size, epoch, seed))
        return [data[i : i + 8] for i in range(0, 32, 8)]

    final, _ = _fit(train_data=batches, max_steps=10, seed=7)
    assert final.steps == list(range(1, 11))
    assert (0, 1, 2, 7) in calls and (0, 1, 3, 7) not in calls  # 10 steps = 2.5 epochs


def _resumable(directory: Path, max_steps: int) -> dict[str, Any]:
    return {
        "model": functools.partial(make_model, dropout=0.2),
        "max_steps": max_steps,
        "scheduler": functools.partial(torch.optim.lr_scheduler.StepLR, step_size=3, gamma=0.7),
        "checkpoint_dir": directory,
        "checkpoint_every": 5,
        "lr": 0.1,
    }


def test_stopping_and_resuming_equals_an_uninterrupted_run_exactly(tmp_path: Path) -> None:
    # 40 steps cross an epoch boundary (32 batches); the stop at step 15 is mid-epoch, and
    # dropout, momentum and the LR schedule all depend on the restored state.
    uninterrupted, expected = _fit(**_resumable(tmp_path / "a", 40))
    _fit(**_resumable(tmp_path / "b", 15))
    resumed, metrics = _fit(**_resumable(tmp_path / "b", 40))
    assert resumed.steps == list(range(16, 41))
    assert max_difference(resumed.params, uninterrupted.params) == 0.0
    assert metrics == expected
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "step_000000030",
        "step_000000035",
        "step_000000040",
    ]  # the newest 3 of every 5 steps, and the end


def test_resuming_after_partial_batches_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    # 100 samples in batches of 32: 4 steps per epoch, the 4th of 4 samples; stop in epoch 2
    partial = {"train_data": make_data(100), "batch_size": 32}
    uninterrupted, expected = _fit(**_resumable(tmp_path / "a", 11), **partial)
    _fit(**_resumable(tmp_path / "b", 6), **partial)
    resumed, metrics = _fit(**_resumable(tmp_path / "b", 11), **partial)
    assert resumed.steps == list(range(7, 12))
    assert max_difference(resumed.params, uninterrupted.params) == 0.0
    assert metrics == expected


_KILLED_AT_STEP_8 = """
    import functools, os, signal, sys
    sys.path.insert(0, {tests!r})
    from corelib import hookimpl
    from test_trainer import _fit, _resumable

    class KillAt8:
        @hookimpl
        def ddp_step_end(self, step):
            if step == 8:
                os.kill(os.getpid(), signal.SIGKILL)

    _fit(**_resumable(sys.argv[1], 40), callbacks=(KillAt8(),))
"""


@pytest.mark.timeout(120)
def test_a_killed_run_resumes_to_exactly_the_uninterrupted_parameters(tmp_path: Path) -> None:
    script = textwrap.dedent(_KILLED_AT_STEP_8.format(tests=str(Path(__file__).parent)))
    killed = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "run")], capture_output=True, timeout=110
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert latest_checkpoint(tmp_path / "run") == tmp_path / "run" / "step_000000005"
    resumed, _ = _fit(**_resumable(tmp_path / "run", 40))
    uninterrupted, _ = _fit(**_resumable(tmp_path / "reference", 40))
    assert resumed.steps == list(range(6, 41))
    assert max_difference(resumed.params, uninterrupted.params) == 0.0


class _Counting(torch.utils.data.Dataset):
    def __init__(self, data: torch.utils.data.Dataset) -> None:
        self.data, self.loaded = data, 0

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        self.loaded += 1
        return self.data[index]


def test_resuming_mid_epoch_does_not_load_the_skipped_samples(tmp_path: Path) -> None:
    _fit(max_steps=4, checkpoint_dir=tmp_path)
    data = _Counting(make_data())
    final, _ = _fit(max_steps=6, checkpoint_dir=tmp_path, train_data=data)
    assert final.steps == [5, 6]
    assert data.loaded == 2 * 8  # two batches of 8, not the 4 consumed before the checkpoint


class _SignalAt:
    def __init__(self, step: int, signum: signal.Signals) -> None:
        self.step, self.signum = step, signum

    @hookimpl
    def ddp_step_end(self, step: int) -> None:
        if step == self.step:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_signal_saves_a_checkpoint_then_exits_with_its_code(
    tmp_path: Path, signum: signal.Signals, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    previous = signal.getsignal(signum)
    with pytest.raises(SystemExit) as exit_info:
        _fit(max_steps=20, callbacks=(Checkpointer(tmp_path, keep_last=None), _SignalAt(7, signum)))
    assert exit_info.value.code == code
    # the signal arrived during step 7's hooks, so training stopped at the end of step 8
    assert latest_checkpoint(tmp_path) == tmp_path / "step_000000008"
    assert (
        f"ddp/trainer: {signum.name}: stopped after step 8; checkpoint {tmp_path}/step_000000008"
    ) in capsys.readouterr().err
    assert signal.getsignal(signum) is previous  # the handler is restored
    final, _ = _fit(max_steps=10, callbacks=(Checkpointer(tmp_path),))
    assert final.steps == [9, 10]


def test_metrics_logger_writes_every_step_and_validation(tmp_path: Path) -> None:
    logger = MetricsLogger(tmp_path / "jsonl", tensorboard=True)
    csv_logger = MetricsLogger(tmp_path / "csv", format="csv", tensorboard=False)
    _fit(max_steps=4, val_data=make_data(16), val_every=2, callbacks=(logger, csv_logger))
    records = [json.loads(line) for line in logger.path.read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 2, 3, 4, 4]
    assert [sorted(r) for r in records[1:3]] == [
        ["lr", "step", "time", "train/loss"],
        ["step", "time", "val/loss"],
    ]
    rows = csv_logger.path.read_text().splitlines()
    assert rows[0] == "step,time,name,value" and len(rows) == 1 + 4 * 2 + 2
    assert list((tmp_path / "jsonl" / "tensorboard").glob("events.out.tfevents.*"))
    assert not (tmp_path / "csv" / "tensorboard").exists()


def test_progress_in_a_log_is_plain_lines_every_n_steps(capsys: pytest.CaptureFixture[str]) -> None:
    # stderr is captured here, not a terminal: no tqdm frames (carriage returns), but lines
    _fit(max_steps=5, val_data=make_data(16), val_every=4, callbacks=(ProgressBar(every=2),))
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if line.startswith("step ")]
    expected = [
        "step 2/5 (40%) loss=",
        "step 4/5 (80%) loss=",
        "step 4: val/loss ",
        "step 5: val/loss ",  # validation at the end, then the last line is always shown
        "step 5/5 (100%) loss=",
    ]
    assert len(lines) == len(expected), err
    assert all(line.startswith(start) for line, start in zip(lines, expected, strict=True)), err
    assert all(" step/s" in line for line in lines if "val/loss" not in line)
    _fit(max_steps=40, callbacks=(ProgressBar(),))  # by default: every 5% of the run
    steps = [line.split()[1] for line in capsys.readouterr().err.splitlines() if "/40 " in line]
    assert steps == [f"{step}/40" for step in range(2, 41, 2)]


_PROGRESS_ON_A_TERMINAL = """
    import sys
    sys.path.insert(0, {tests!r})
    from plugins.ddp.callbacks import ProgressBar
    from test_trainer import _fit

    _fit(max_steps=5, callbacks=(ProgressBar(every=2),))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
@pytest.mark.timeout(120)
def test_progress_on_a_terminal_is_a_tqdm_bar(tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    script = textwrap.dedent(_PROGRESS_ON_A_TERMINAL.format(tests=str(Path(__file__).parent)))
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    try:
        subprocess.run([sys.executable, "-c", script], stderr=terminal, timeout=110, check=True)
        os.close(terminal)
        shown = b""
        while chunk := _read_some(controller):
            shown += chunk
    finally:
        os.close(controller)
    assert b"\r" in shown and b"5/5" in shown  # the bar redraws itself in place
    assert b"step 2/5 (40%)" not in shown  # and no log lines


def _read_some(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the terminal's other end is closed and everything was read
        return b""


class _Events:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def ddp_fit_start(self) -> None:
        self.seen.append("start")

    @hookimpl
    def ddp_checkpoint_saved(self, step: int, path: Path) -> None:
        self.seen.append(f"saved {step} {path.name}")

    @hookimpl
    def ddp_fit_end(self, metrics: dict[str, float]) -> None:
        self.seen.append(f"end {metrics['step']:.0f}")


def test_a_plugin_registered_on_the_manager_gets_the_events(tmp_path: Path) -> None:
    events = _Events()
    manager = get_plugin_manager()
    from plugins.ddp.hookspecs import add_trainer_hookspecs

    add_trainer_hookspecs()
    name = manager.register(events)
    try:
        _fit(max_steps=3, checkpoint_dir=tmp_path)
    finally:
        manager.unregister(name=name)
    assert events.seen[0] == "start"
    assert sorted(events.seen[1:]) == ["end 3", "saved 3 step_000000003"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"precision": "fp8"},
            r"precision='fp8'; expected one of \['32', 'bf16', 'bf16-true', 'fp16'\]",
        ),
        ({"checkpoint_every": 5}, "checkpoint_every needs a checkpoint_dir"),
        ({"batch_size": 0}, "batch_size must be a positive integer, not 0"),
        ({"max_steps": None, "max_epochs": 0}, "max_epochs must be a positive integer"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_trainer(**kwargs)


class _Misspelt:
    @hookimpl
    def ddp_step_ends(self) -> None: ...


def test_a_callback_with_a_misspelt_hook_is_refused() -> None:
    with pytest.raises(ValueError, match=r"_Misspelt implements 'ddp_step_ends', which is no"):
        make_trainer(callbacks=(_Misspelt(),)).fit()


def test_a_factory_that_returns_no_module_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match=r"zero-argument factory returning one.*returned dict"):
        make_trainer(model=dict).fit()


def test_batches_without_targets_need_a_model_that_returns_the_loss() -> None:
    data = [(torch.randn(8, 8),) for _ in range(4)]
    with pytest.raises(TypeError, match=r"must be a pair \(inputs, targets\); got tuple of length"):
        make_trainer(train_data=lambda **_: data).fit()


class _StopWhenGood:
    @hookimpl
    def ddp_validation_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        if metrics["val/loss"] < 0.9:
            trainer.total_steps = trainer.step


def test_a_callback_can_end_training_early() -> None:
    final, metrics = _fit(
        max_steps=200,
        val_data=make_data(64, sample_seed=1),
        val_every=5,
        callbacks=[_StopWhenGood()],
    )
    assert 5 <= metrics["step"] < 200 and metrics["step"] % 5 == 0
    assert metrics["val/loss"] < 0.9 and final.steps[-1] == metrics["step"]

"""``ddp/checkpointer``: saves in the background, keeps the newest and the best, links the best,
saves on signals only when asked, and a crash mid-save leaves the previous checkpoint newest."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from _dist import run_ranks
from _training import FinalState, make_model, make_trainer, max_difference
from test_trainer import _fit, _resumable

from corelib import ConfigError, hookimpl
from plugins.ddp.checkpoint import CheckpointError, latest_checkpoint, load_model_weights
from plugins.ddp.checkpointer import BEST_LINK, Checkpointer
from plugins.ddp.strategies.ddp import DDP
from plugins.ddp.strategies.fsdp2 import FSDP2


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


class _Events:
    """Steps and completed checkpoints, in the order the trainer reports them."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def ddp_step_end(self, step: int) -> None:
        self.seen.append(f"step {step}")

    @hookimpl
    def ddp_checkpoint_saved(self, step: int) -> None:
        self.seen.append(f"saved {step}")


@pytest.mark.parametrize("async_save", [False, True])
def test_an_async_save_completes_while_training_goes_on(tmp_path: Path, async_save: bool) -> None:
    events = _Events()
    checkpointer = Checkpointer(tmp_path, every=2, async_save=async_save)
    _fit(max_steps=6, callbacks=(events, checkpointer))
    if async_save:  # step 2's checkpoint is finished by the next save, the last by the fit end
        expected = "1 2 3 4 saved2 5 6 saved4 saved6"
    else:
        expected = "1 2 saved2 3 4 saved4 5 6 saved6"
    assert " ".join(events.seen).replace("step ", "").replace("saved ", "saved") == expected
    assert _names(tmp_path) == ["step_000000002", "step_000000004", "step_000000006"]


def test_resuming_from_async_checkpoints_equals_an_uninterrupted_run_exactly(
    tmp_path: Path,
) -> None:
    def resumable(directory: Path, max_steps: int) -> dict[str, Any]:
        options = _resumable(directory, max_steps)
        del options["checkpoint_dir"], options["checkpoint_every"]
        return {**options, "callbacks": (Checkpointer(directory, every=5, async_save=True),)}

    uninterrupted, expected = _fit(**resumable(tmp_path / "a", 40))
    _fit(**resumable(tmp_path / "b", 15))
    resumed, metrics = _fit(**resumable(tmp_path / "b", 40))
    assert resumed.steps == list(range(16, 41))
    assert max_difference(resumed.params, uninterrupted.params) == 0.0
    assert metrics == expected


def _async_resume(rank: int, directory: Path, strategy: type) -> tuple[dict, dict, list[int]]:
    def fit(max_steps: int, *callbacks: Any) -> FinalState:
        final = FinalState()
        make_trainer(
            strategy=strategy(timeout_s=30), callbacks=(final, *callbacks), max_steps=max_steps
        ).fit()
        return final

    uninterrupted = fit(6)
    fit(4, Checkpointer(directory, every=1, async_save=True))
    resumed = fit(6, Checkpointer(directory, every=1, async_save=True))
    return uninterrupted.params, resumed.params, resumed.steps


@pytest.mark.distributed
@pytest.mark.timeout(120)
@pytest.mark.parametrize("strategy", [DDP, FSDP2])
def test_async_saves_on_two_ranks_resume_exactly(tmp_path: Path, strategy: type) -> None:
    results = run_ranks(_async_resume, tmp_path, strategy, timeout=100)
    for uninterrupted, resumed, steps in results:
        assert steps == [5, 6]
        assert max_difference(resumed, uninterrupted) < 1e-6
    assert _names(tmp_path) == ["step_000000004", "step_000000005", "step_000000006"]


_KILLED_DURING_ASYNC_SAVE = """
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    import torch.distributed.checkpoint.filesystem as fs
    from corelib import hookimpl
    from plugins.ddp.checkpointer import Checkpointer
    from test_trainer import _fit

    write_item = fs._write_item

    def die_while_writing(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    class KillStep4sWrite:
        @hookimpl
        def ddp_step_end(self, trainer, step):
            if step == 4:
                trainer.wait_for_checkpoint()  # step 2's is complete
                fs._write_item = die_while_writing  # step 4's background write dies

    checkpointer = Checkpointer(sys.argv[1], every=2, async_save=True)
    _fit(max_steps=8, callbacks=(KillStep4sWrite(), checkpointer))
"""


@pytest.mark.timeout(120)
def test_a_kill_during_an_async_save_leaves_the_previous_checkpoint_the_newest(
    tmp_path: Path,
) -> None:
    script = textwrap.dedent(_KILLED_DURING_ASYNC_SAVE.format(tests=str(Path(__file__).parent)))
    killed = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, timeout=110
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert (tmp_path / ".tmp-step_000000004").is_dir()  # killed while step 4 was written
    assert latest_checkpoint(tmp_path) == tmp_path / "step_000000002"
    resumed, _ = _fit(max_steps=4, callbacks=(Checkpointer(tmp_path, every=2),))
    assert resumed.steps == [3, 4]
    assert _names(tmp_path) == ["step_000000002", "step_000000004"]  # the leftover is gone


class _FailStep4sWrite:
    @hookimpl
    def ddp_step_end(self, trainer: Any, step: int) -> None:
        if step == 4:
            import torch.distributed.checkpoint.filesystem as fs

            trainer.wait_for_checkpoint()

            def fail(*args: Any, **kwargs: Any) -> None:
                raise OSError(28, "No space left on device")

            self.patch.setattr(fs, "_write_item", fail)

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.patch = monkeypatch


def test_a_failed_async_save_is_an_error_naming_the_step_and_the_newest_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpointer = Checkpointer(tmp_path, every=2, async_save=True)
    with pytest.raises(CheckpointError) as failed:
        _fit(max_steps=8, callbacks=(_FailStep4sWrite(monkeypatch), checkpointer))
    assert str(failed.value) == (
        f"saving the checkpoint of step 4 in {tmp_path} failed in the background: OSError: "
        "[Errno 28] No space left on device; the newest complete checkpoint is step_000000002"
    )
    assert latest_checkpoint(tmp_path) == tmp_path / "step_000000002"


class _Scripted:
    """Adds the metric ``score`` to each step's metrics, from a script."""

    def __init__(self, scores: dict[int, float]) -> None:
        self.scores = scores

    @hookimpl(tryfirst=True)  # before the callbacks that read it
    def ddp_step_end(self, step: int, metrics: dict[str, float]) -> None:
        metrics["score"] = self.scores[step]


_SCORES = {1: 0.5, 2: 0.9, 3: 0.1, 4: 0.2, 5: 0.3, 6: 0.8}


@pytest.mark.parametrize(
    ("options", "kept", "best"),
    [
        ({"keep_last": 2, "keep_best": 1, "mode": "max"}, [2, 5, 6], 2),
        ({"keep_last": None, "keep_best": 2, "mode": "min"}, [3, 4, 6], 3),
        ({"keep_last": 1, "mode": "min"}, [3, 6], 3),  # the best is never deleted
        ({"keep_last": None, "mode": "max"}, [1, 2, 3, 4, 5, 6], 2),  # neither: keep all
    ],
)
def test_keep_last_and_keep_best_keep_the_newest_and_the_best_and_link_the_best(
    tmp_path: Path, options: dict[str, Any], kept: list[int], best: int
) -> None:
    checkpointer = Checkpointer(tmp_path, every=1, monitor="score", **options)
    _fit(max_steps=6, callbacks=(_Scripted(_SCORES), checkpointer))
    assert _names(tmp_path) == sorted([BEST_LINK] + [f"step_{step:09d}" for step in kept])
    link = tmp_path / BEST_LINK
    assert os.readlink(link) == f"step_{best:09d}"  # relative: the folder can move
    assert json.loads((link / "metrics.json").read_text())["score"] == _SCORES[best]
    load_model_weights(make_model(), link)


def test_a_checkpoint_is_ranked_by_the_validation_of_its_own_step(tmp_path: Path) -> None:
    class Validations:
        def __init__(self) -> None:
            self.losses: dict[int, float] = {}

        @hookimpl
        def ddp_validation_end(self, step: int, metrics: dict[str, float]) -> None:
            self.losses[step] = metrics["val/loss"]

    validations = Validations()
    checkpointer = Checkpointer(tmp_path, every=2, keep_last=None, monitor="val/loss")
    _fit(max_steps=6, val_data=make_data_16(), val_every=2, callbacks=(validations, checkpointer))
    for step in (2, 4, 6):
        recorded = json.loads((tmp_path / f"step_{step:09d}" / "metrics.json").read_text())
        assert recorded["val/loss"] == validations.losses[step]
    best = min(validations.losses, key=validations.losses.__getitem__)
    assert os.readlink(tmp_path / BEST_LINK) == f"step_{best:09d}"


def make_data_16() -> torch.utils.data.Dataset:
    from _training import make_data

    return make_data(16, sample_seed=1)


def test_a_monitored_metric_that_never_appears_fails_at_the_first_validation(
    tmp_path: Path,
) -> None:
    final = FinalState()
    checkpointer = Checkpointer(tmp_path, keep_best=1, monitor="val/acc")
    with pytest.raises(ConfigError) as failed:
        make_trainer(
            callbacks=(final, checkpointer), max_steps=20, val_data=make_data_16(), val_every=3
        ).fit()
    assert str(failed.value) == (
        "ddp/checkpointer: monitor='val/acc' is no metric the trainer reports; by the first "
        "validation it reported ['lr', 'train/loss', 'val/loss']"
    )
    assert final.steps == [1, 2, 3]
    with pytest.raises(ConfigError, match=r"by the first step \(no val_data\) it reported"):
        make_trainer(callbacks=(Checkpointer(tmp_path, monitor="val/loss"),)).fit()


class _SignalAt:
    def __init__(self, step: int) -> None:
        self.step = step

    @hookimpl
    def ddp_step_end(self, step: int) -> None:
        if step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("save_on_signal", [True, False])
def test_save_on_signal_decides_whether_a_stop_saves(
    tmp_path: Path, save_on_signal: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpointer = Checkpointer(tmp_path, every=4, save_on_signal=save_on_signal, async_save=True)
    with pytest.raises(SystemExit) as stopped:
        _fit(max_steps=20, callbacks=(_SignalAt(5), checkpointer))
    assert stopped.value.code == 143
    err = capsys.readouterr().err
    if save_on_signal:
        assert latest_checkpoint(tmp_path) == tmp_path / "step_000000006"
        assert f"stopped after step 6; checkpoint {tmp_path}/step_000000006" in err
    else:  # the background save of step 4 is still completed before the exit
        assert latest_checkpoint(tmp_path) == tmp_path / "step_000000004"
        assert "stopped after step 6; no checkpoint saved (no checkpointer saves on signals)" in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"every": 0}, "ddp/checkpointer: every must be an integer >= 1 or None, not 0"),
        ({"keep_best": 2}, "ddp/checkpointer: keep_best=2 needs monitor (e.g. 'val/loss')"),
        ({"mode": "lowest"}, "ddp/checkpointer: mode must be 'min' or 'max', not 'lowest'"),
        ({"keep_last": 0}, "keep_last must be an integer >= 1 or None, not 0"),
    ],
)
def test_bad_settings_are_refused_when_built(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Checkpointer("unused", **options)


def test_a_folder_in_the_way_of_the_best_link_is_a_warning_not_a_hang(tmp_path: Path) -> None:
    (tmp_path / BEST_LINK).mkdir(parents=True)
    (tmp_path / BEST_LINK / "mine.txt").write_text("not a checkpoint")
    checkpointer = Checkpointer(tmp_path, every=2, keep_last=1, monitor="train/loss")
    with pytest.warns(UserWarning, match="could not update the best link or delete old"):
        _fit(max_steps=4, callbacks=(checkpointer,))
    assert (tmp_path / BEST_LINK / "mine.txt").read_text() == "not a checkpoint"
    assert latest_checkpoint(tmp_path) == tmp_path / "step_000000004"


def test_a_metrics_file_that_is_no_number_leaves_its_checkpoint_unranked(tmp_path: Path) -> None:
    checkpointer = Checkpointer(tmp_path, every=1, keep_last=None, monitor="score")
    _fit(max_steps=3, callbacks=(_Scripted({1: 0.1, 2: 0.5, 3: 0.9}), checkpointer))
    assert os.readlink(tmp_path / BEST_LINK) == "step_000000001"
    (tmp_path / "step_000000001" / "metrics.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "step_000000002" / "metrics.json").write_text('{"score": "0.0"}')
    _fit(max_steps=4, callbacks=(_Scripted({4: 0.7}), checkpointer))  # resumes from step 3
    assert os.readlink(tmp_path / BEST_LINK) == "step_000000004"

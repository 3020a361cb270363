"""Resume rules: which checkpoint a run resumes from, and what it refuses to read.

A resume says where it resumed from; ``resume=False`` never leaves a folder whose next resume
would pick another run; an unreadable checkpoint falls back to the newest readable one; a
folder or file that someone else could have written is never read; a trainer state that
would run code when unpickled is refused without running it.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import pytest
from _dist import run_ranks
from _training import FinalState, make_model, make_trainer

from corelib import CorelibError
from plugins.ddp.callbacks import MetricsLogger
from plugins.ddp.checkpoint import CheckpointError, checkpoint_path, load_model_weights
from plugins.ddp.strategies.ddp import DDP
from plugins.ddp.strategies.single import SingleDevice


def _fit(directory: Path, max_steps: int, **kwargs: Any) -> FinalState:
    final = FinalState()
    callbacks = (final, *kwargs.pop("callbacks", ()))
    options = {
        "strategy": SingleDevice(),
        "checkpoint_dir": directory,
        "checkpoint_every": 2,
        "max_steps": max_steps,
    }
    make_trainer(callbacks=callbacks, **{**options, **kwargs}).fit()
    return final


def test_a_resume_says_which_checkpoint_it_continues_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fit(tmp_path, 4)
    capsys.readouterr()
    assert _fit(tmp_path, 6).steps == [5, 6]
    assert f"ddp/trainer: resumed from {tmp_path / 'step_000000004'} (step 4 of 6)\n" in (
        capsys.readouterr().err
    )
    _fit(tmp_path, 3)  # the run is already past it: said, not silent
    assert "(step 6 of 3: nothing left to train)" in capsys.readouterr().err


def test_resume_false_refuses_a_folder_that_holds_another_runs_checkpoints(
    tmp_path: Path,
) -> None:
    _fit(tmp_path, 6)
    with pytest.raises(CheckpointError) as refused:
        _fit(tmp_path, 4, resume=False)
    message = str(refused.value)
    assert f"{tmp_path} already holds checkpoints (the newest is step_000000006)" in message
    assert "pick another checkpoint folder, delete this one, or set resume: true" in message
    assert isinstance(refused.value, CorelibError)  # the CLI exits 2
    assert sorted(p.name for p in tmp_path.iterdir())[-1] == "step_000000006"  # untouched
    assert _fit(tmp_path / "fresh", 2, resume=False).steps == [1, 2]  # an empty folder is fine


def _truncate_shard(checkpoint: Path) -> Path:
    shard = next(checkpoint.glob("*.distcp"))
    shard.write_bytes(shard.read_bytes()[:100])
    return shard


def test_a_truncated_shard_falls_back_to_the_newest_readable_checkpoint(tmp_path: Path) -> None:
    _fit(tmp_path, 6)
    shard = _truncate_shard(checkpoint_path(tmp_path, 6))
    with pytest.warns(UserWarning) as warned:
        resumed = _fit(tmp_path, 8)
    assert resumed.steps == [5, 6, 7, 8]  # from step 4
    message = str(warned[0].message)
    assert f"skipped unreadable checkpoint(s) in {tmp_path}: step_000000006:" in message
    assert f"{shard.name} holds 100 of its " in message
    assert message.endswith("resuming from step_000000004, the newest readable one")


def test_a_shard_of_full_size_but_garbled_falls_back_too(tmp_path: Path) -> None:
    _fit(tmp_path, 6)
    shard = next(checkpoint_path(tmp_path, 6).glob("*.distcp"))
    shard.write_bytes(bytes(shard.stat().st_size))  # complete by size: DCP itself fails on it
    with pytest.warns(UserWarning) as warned:
        assert _fit(tmp_path, 8).steps == [5, 6, 7, 8]  # from step 4
    assert (
        f"step_000000006: checkpoint {checkpoint_path(tmp_path, 6)} could not be loaded: "
    ) in str(warned[0].message)


def test_a_garbled_trainer_state_names_the_folder_and_file_and_falls_back(tmp_path: Path) -> None:
    _fit(tmp_path, 6)
    garbled = checkpoint_path(tmp_path, 6) / "trainer_rank0.pt"
    garbled.write_bytes(b"not a torch file at all")
    with pytest.warns(UserWarning) as warned:
        assert _fit(tmp_path, 8).steps == [5, 6, 7, 8]
    assert (
        f"step_000000006: checkpoint {checkpoint_path(tmp_path, 6)} is unreadable: "
        "trainer_rank0.pt: not a trainer state"
    ) in str(warned[0].message)


def test_a_trainer_state_of_the_wrong_shape_names_the_file_and_what_is_wrong(
    tmp_path: Path,
) -> None:
    import torch

    _fit(tmp_path, 2)
    state_file = checkpoint_path(tmp_path, 2) / "trainer_rank0.pt"
    torch.save({**torch.load(state_file, weights_only=True), "step": "two"}, state_file)
    with pytest.raises(CheckpointError) as refused:
        _fit(tmp_path, 4)
    assert str(refused.value) == (
        f"no readable checkpoint in {tmp_path}: step_000000002: checkpoint "
        f"{checkpoint_path(tmp_path, 2)} is unreadable: trainer_rank0.pt: 'step' should be "
        "int, found str; delete the broken ones, or pick another checkpoint folder"
    )


def _fit_two_ranks(rank: int, directory: Path, max_steps: int) -> tuple[list[int], list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        final = _fit(directory, max_steps, strategy=DDP(timeout_s=30))
    return final.steps, [str(w.message) for w in caught if "unreadable" in str(w.message)]


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_ranks_agree_on_the_fallback_when_only_one_rank_cannot_read(tmp_path: Path) -> None:
    run_ranks(_fit_two_ranks, tmp_path, 6, timeout=90)
    (checkpoint_path(tmp_path, 6) / "trainer_rank1.pt").write_bytes(b"garbage")
    (first, warned), (second, quiet) = run_ranks(_fit_two_ranks, tmp_path, 8, timeout=90)
    assert first == second == [5, 6, 7, 8]  # both from step 4, though rank 0 could read 6
    assert len(warned) == 1 and not quiet  # rank 0 says it, for all
    assert (
        f"step_000000006: rank 1: checkpoint {checkpoint_path(tmp_path, 6)} is unreadable: "
        "trainer_rank1.pt: "
    ) in warned[0]


class _WritesMarker:
    """Unpickling this runs ``open(path, "w")``: what a malicious checkpoint would do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def test_a_trainer_state_that_would_run_code_is_refused_without_running_it(
    tmp_path: Path,
) -> None:
    _fit(tmp_path, 2)
    marker = tmp_path.parent / f"{tmp_path.name}-pwned"
    state_file = checkpoint_path(tmp_path, 2) / "trainer_rank0.pt"
    state_file.write_bytes(pickle.dumps({"step": _WritesMarker(marker)}))
    with pytest.raises(CheckpointError) as refused:
        _fit(tmp_path, 4)
    assert "trainer_rank0.pt: not a trainer state that corelib wrote: it does not read as " in (
        str(refused.value)
    )
    assert not marker.exists()


class _SchedulerKeepingAnObject:
    def __init__(self, optimizer: Any) -> None:
        self.optimizer = optimizer

    def step(self) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {"rule": _WritesMarker(Path(os.devnull))}  # an object: not a plain value


def test_a_scheduler_state_a_resume_could_not_read_safely_fails_the_first_save(
    tmp_path: Path,
) -> None:
    with pytest.raises(CheckpointError) as refused:
        _fit(tmp_path, 4, scheduler=_SchedulerKeepingAnObject)
    assert str(refused.value).startswith(
        "the trainer state for trainer_rank0.pt holds objects that a resume could only read "
        "with an unpickler that runs code (Unsupported global: GLOBAL io.open was not an "
        "allowed global by default); a scheduler's state_dict() must hold only tensors and "
    )


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX owners and modes")
def test_a_folder_others_can_write_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    _fit(tmp_path, 2)
    step = checkpoint_path(tmp_path, 2)
    tmp_path.chmod(0o775)
    with pytest.raises(CheckpointError) as refused:
        _fit(tmp_path, 4)
    assert str(refused.value).startswith(f"refusing to read checkpoint folder {tmp_path}: ")
    assert "writable by its group" in str(refused.value)
    assert f"chmod -R go-w {tmp_path}" in str(refused.value)
    tmp_path.chmod(0o755)
    (step / ".metadata").chmod(0o666)
    with pytest.raises(CheckpointError) as refused:
        load_model_weights(make_model(), step)
    assert str(refused.value).startswith(
        f"refusing to read file in checkpoint folder {step} {step / '.metadata'}: it is "
        "writable by its group"
    )
    assert str(refused.value).endswith(f"chmod -R go-w {step}")
    (step / ".metadata").chmod(0o644)
    load_model_weights(make_model(), step)  # made private again: it loads


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX owners and modes")
def test_checkpoints_are_written_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o002)
    try:
        _fit(tmp_path / "run", 2)
    finally:
        os.umask(previous)
    written = [tmp_path / "run", *(tmp_path / "run").rglob("*")]
    assert written and all(path.stat().st_mode & 0o022 == 0 for path in written)
    assert _fit(tmp_path / "run", 4).steps == [3, 4]  # so its own resume accepts it


def test_the_metrics_log_drops_the_steps_a_resume_redoes(tmp_path: Path) -> None:
    logger = MetricsLogger(tmp_path, tensorboard=False)
    _fit(tmp_path / "ckpt", 5, callbacks=(logger,), checkpoint_every=4)  # saves 4, then 5
    checkpoint_path(tmp_path / "ckpt", 5).rename(tmp_path / "step_5_set_aside")
    _fit(tmp_path / "ckpt", 7, callbacks=(logger,), checkpoint_every=4)  # redoes step 5
    steps = [json.loads(line)["step"] for line in logger.path.read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6, 7]
    assert not list(tmp_path.glob(".metrics*"))  # the rewrite's temporary file is gone


def test_a_torn_last_line_is_dropped_with_the_redone_steps(tmp_path: Path) -> None:
    logger = MetricsLogger(tmp_path, format="csv", tensorboard=False)
    _fit(tmp_path / "ckpt", 4, callbacks=(logger,), checkpoint_every=2)
    with logger.path.open("a") as file:
        file.write("5,17")  # the crash came mid-write
    checkpoint_path(tmp_path / "ckpt", 4).rename(tmp_path / "set_aside")
    _fit(tmp_path / "ckpt", 4, callbacks=(logger,), checkpoint_every=2)  # resumes from 2
    rows = logger.path.read_text().splitlines()
    assert rows[0] == "step,time,name,value"
    assert [int(row.split(",")[0]) for row in rows[1:]] == [1, 1, 2, 2, 3, 3, 4, 4]

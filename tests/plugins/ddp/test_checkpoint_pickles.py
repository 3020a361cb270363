"""Every pickle that ``torch.distributed.checkpoint`` reads from a checkpoint is refused unless
it holds only what DCP itself writes, whoever owns the folder.

DCP unpickles ``.metadata`` with plain ``pickle`` and each non-tensor value (an optimizer's
``lr``) with ``torch.load(weights_only=False)``: a checkpoint that came with a config could run
code on resume. Here both are crafted to create a marker file when unpickled; the marker never
appears, the error names the folder, the file and what was refused, and a resume stops rather
than falling back to an older checkpoint of the same folder.
"""

from __future__ import annotations

import collections
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from _corelib_cli import run_corelib
from _dist import run_ranks
from _training import FinalState, make_model, make_trainer

from plugins.ddp import _dcp
from plugins.ddp._errors import RefusedPickleError
from plugins.ddp.checkpoint import CheckpointError, checkpoint_path, load_model_weights
from plugins.ddp.strategies.ddp import DDP
from plugins.ddp.strategies.single import SingleDevice


class _RunsCommand:
    """Unpickling this runs ``os.system(command)``: the attack on ``.metadata``."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


class _WritesMarker:
    """Unpickling this runs ``open(path, "w")``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def _fit(directory: Path, max_steps: int, **kwargs: Any) -> FinalState:
    final = FinalState()
    options = {"strategy": SingleDevice(), "checkpoint_dir": directory, "checkpoint_every": 2}
    make_trainer(callbacks=(final,), max_steps=max_steps, **{**options, **kwargs}).fit()
    return final


def _poison_metadata(checkpoint: Path, marker: Path) -> None:
    (checkpoint / ".metadata").write_bytes(pickle.dumps(_RunsCommand(f"touch {marker}")))


def _poison_a_value(checkpoint: Path, marker: Path) -> None:
    """Rewrite the DCP part of ``checkpoint`` with the optimizer's ``lr`` as a gadget (a real
    ``.metadata``: only the value's own pickle is malicious)."""
    state = SingleDevice().load(checkpoint)
    state["optimizer"]["param_groups"][0]["lr"] = _WritesMarker(marker)
    for file in (checkpoint / ".metadata", *checkpoint.glob("*.distcp")):
        file.unlink()
    _dcp.save(state, checkpoint)


def _marker(tmp_path: Path) -> Path:
    return tmp_path.parent / f"{tmp_path.name}-pwned"


def test_a_metadata_that_would_run_a_command_stops_the_resume_without_running_it(
    tmp_path: Path,
) -> None:
    _fit(tmp_path, 4)
    marker, poisoned = _marker(tmp_path), checkpoint_path(tmp_path, 4)
    _poison_metadata(poisoned, marker)
    with pytest.raises(CheckpointError) as refused:
        _fit(tmp_path, 6)  # step 2 is intact: still no fallback from a tampered folder
    assert not marker.exists()
    assert isinstance(refused.value, RefusedPickleError)
    assert str(refused.value) == (
        f"refusing to load checkpoint {poisoned}: .metadata holds a reference to "
        f"{os.system.__module__}.system, which a DCP checkpoint never does (it was not written "
        "by torch.distributed.checkpoint, or was changed since); not falling back to an older "
        f"checkpoint in {tmp_path}: it came with this one, so check where the folder came from"
    )


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_corelib_run_refuses_a_checkpoint_that_came_with_the_config(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "mlp" / "single.yaml"
    args = [
        "run", str(example), "checkpoint_dir=ck", "checkpoint_every=2",
        "callbacks.1.directory=logs", "--allow-import", "torch.nn", "--allow-import", "torch.optim",
    ]  # fmt: skip
    options: dict[str, Any] = {"plugins": True, "env": {"OMP_NUM_THREADS": "1"}, "timeout": 80}
    first = run_corelib(tmp_path, *args, "max_steps=2", **options)
    assert first.returncode == 0, first.stderr[-2000:]
    _poison_metadata(tmp_path / "ck" / "step_000000002", Path("PWNED"))  # relative: as reported
    second = run_corelib(tmp_path, *args, "max_steps=4", **options)
    assert not (tmp_path / "PWNED").exists()
    assert second.returncode == 2, second.stderr[-2000:]
    assert second.stderr.splitlines() == [
        "corelib: error: refusing to load checkpoint ck/step_000000002: .metadata holds a "
        f"reference to {os.system.__module__}.system, which a DCP checkpoint never does (it was "
        "not written by torch.distributed.checkpoint, or was changed since); not falling back "
        "to an older checkpoint in ck: it came with this one, so check where the folder came "
        "from"
    ]


def test_every_reader_refuses_a_metadata_that_would_run_a_command(tmp_path: Path) -> None:
    _fit(tmp_path, 2)
    marker, poisoned = _marker(tmp_path), checkpoint_path(tmp_path, 2)
    _poison_metadata(poisoned, marker)
    strategy, model = SingleDevice(), make_model()
    template = strategy.state_dict(model, torch.optim.SGD(model.parameters(), lr=0.1))
    readers = {
        "load_model_weights": lambda: load_model_weights(make_model(), poisoned),
        "Strategy.load": lambda: strategy.load(poisoned),
        "Strategy.load with a state": lambda: strategy.load(poisoned, template),
    }
    for name, read in readers.items():
        with pytest.raises(RefusedPickleError, match=r"\.metadata holds a reference to "):
            read()
        assert not marker.exists(), name


def test_a_metadata_of_anything_but_dcp_classes_is_refused(tmp_path: Path) -> None:
    _fit(tmp_path, 2)
    poisoned = checkpoint_path(tmp_path, 2)
    harmless = pickle.dumps(collections.OrderedDict(a=1))  # builds nothing DCP's metadata does
    (poisoned / ".metadata").write_bytes(harmless)
    with pytest.raises(RefusedPickleError, match=r"reference to collections\.OrderedDict, which "):
        load_model_weights(make_model(), poisoned)
    (poisoned / ".metadata").write_bytes(pickle.dumps([1, 2]))  # no global at all: not Metadata
    with pytest.raises(CheckpointError, match=r"\.metadata: expected DCP's Metadata, found list"):
        load_model_weights(make_model(), poisoned)


def test_a_metadata_that_points_outside_its_folder_is_unreadable(tmp_path: Path) -> None:
    _fit(tmp_path, 2)
    step = checkpoint_path(tmp_path, 2)
    metadata = pickle.loads((step / ".metadata").read_bytes())  # a real one, read as torch does
    for info in metadata.storage_data.values():
        (tmp_path / info.relative_path).write_bytes((step / info.relative_path).read_bytes())
        info.relative_path = f"../{info.relative_path}"  # DCP would read it from tmp_path
    (step / ".metadata").write_bytes(pickle.dumps(metadata))
    with pytest.raises(CheckpointError) as refused:
        SingleDevice().load(step)
    assert str(refused.value) == (
        f"checkpoint {step} is unreadable: .metadata: it names the data file '../__0_0.distcp', "
        "which is not a file in the checkpoint folder"
    )


def test_a_value_that_would_run_code_stops_the_resume_without_running_it(tmp_path: Path) -> None:
    _fit(tmp_path, 4)
    marker, poisoned = _marker(tmp_path), checkpoint_path(tmp_path, 4)
    _poison_a_value(poisoned, marker)
    with pytest.raises(RefusedPickleError) as refused:
        _fit(tmp_path, 6)
    assert not marker.exists()
    message = str(refused.value)
    assert message.startswith(
        f"refusing to load checkpoint {poisoned}: the value of optimizer.param_groups.0.lr in "
        "__0_0.distcp is not made of tensors and plain values"
    )
    assert "GLOBAL io.open was not an allowed global" in message
    assert f"not falling back to an older checkpoint in {tmp_path}" in message


def test_a_value_that_would_run_code_is_refused_by_a_whole_load(tmp_path: Path) -> None:
    _fit(tmp_path, 2)
    marker, poisoned = _marker(tmp_path), checkpoint_path(tmp_path, 2)
    _poison_a_value(poisoned, marker)
    with pytest.raises(RefusedPickleError, match=r"the value of optimizer\.param_groups\.0\.lr "):
        SingleDevice().load(poisoned)
    assert not marker.exists()


def test_a_checkpoint_of_dcp_s_own_making_still_resumes(tmp_path: Path) -> None:
    _fit(tmp_path, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no checkpoint skipped
        assert _fit(tmp_path, 6).steps == [5, 6]
    assert set(SingleDevice().load(checkpoint_path(tmp_path, 6))) == {"model", "optimizer"}


def _resume_two_ranks(rank: int, directory: Path, max_steps: int) -> str:
    try:
        _fit(directory, max_steps, strategy=DDP(timeout_s=30))
    except RefusedPickleError as error:
        return str(error)
    return "resumed"


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_every_rank_refuses_a_metadata_that_would_run_a_command(tmp_path: Path) -> None:
    run_ranks(_resume_two_ranks, tmp_path, 4, timeout=90)
    marker, poisoned = _marker(tmp_path), checkpoint_path(tmp_path, 4)
    _poison_metadata(poisoned, marker)
    first, second = run_ranks(_resume_two_ranks, tmp_path, 6, timeout=90)
    assert first == second
    assert first.startswith(f"refusing to load checkpoint {poisoned}: .metadata holds a ")
    assert not marker.exists()

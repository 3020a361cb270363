"""Checkpoints: atomic under a kill, loadable across strategies, refused for another model."""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from _dist import run_ranks
from _training import FinalState, make_model, make_trainer, max_difference

from plugins.ddp.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_model_weights,
    save_checkpoint,
)
from plugins.ddp.models import MLP
from plugins.ddp.strategies.ddp import DDP
from plugins.ddp.strategies.fsdp2 import FSDP2
from plugins.ddp.strategies.single import SingleDevice

_KILLED_MID_SAVE = """
    import os, signal, sys, torch
    from plugins.ddp.checkpoint import save_checkpoint
    from plugins.ddp.strategies.single import SingleDevice

    root = sys.argv[1]
    strategy = SingleDevice(device="cpu")
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def save(step):
        with torch.no_grad():
            model.weight.fill_(step)
        state = strategy.state_dict(model, optimizer)
        save_checkpoint(strategy, root, step, state, {"step": step}, keep_last=1)

    save(1)
    torch.save = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
    save(2)  # dies as the first tensor of step 2 is written
"""


@pytest.mark.timeout(120)
def test_a_kill_during_a_save_leaves_the_previous_checkpoint_loadable(tmp_path: Path) -> None:
    script = textwrap.dedent(_KILLED_MID_SAVE)
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, timeout=110
    )
    assert done.returncode == -9, done.stderr.decode()
    assert (tmp_path / ".tmp-step_000000002").is_dir()  # killed mid-save
    assert latest_checkpoint(tmp_path) == tmp_path / "step_000000001"
    weights = load_model_weights(torch.nn.Linear(4, 2), tmp_path / "step_000000001").weight
    assert torch.equal(weights, torch.ones(2, 4))
    # the next save completes and clears the leftover
    strategy, model = SingleDevice(device="cpu"), torch.nn.Linear(4, 2)
    state = strategy.state_dict(model, torch.optim.SGD(model.parameters(), lr=0.1))
    save_checkpoint(strategy, tmp_path, 2, state, {"step": 2}, keep_last=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_000000002"]


def _ddp_checkpoint_then_fsdp2(rank: int, directory: Path) -> tuple[dict, dict, list[int]]:
    uninterrupted = FinalState()
    make_trainer(strategy=DDP(timeout_s=30), callbacks=(uninterrupted,), max_steps=6).fit()
    make_trainer(strategy=DDP(timeout_s=30), checkpoint_dir=directory, max_steps=4).fit()
    resumed = FinalState()
    make_trainer(
        strategy=FSDP2(timeout_s=30), callbacks=(resumed,), checkpoint_dir=directory, max_steps=6
    ).fit()
    return uninterrupted.params, resumed.params, resumed.steps


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_a_ddp_checkpoint_loads_into_fsdp2_and_into_a_plain_model(tmp_path: Path) -> None:
    results = run_ranks(_ddp_checkpoint_then_fsdp2, tmp_path, timeout=100)
    for uninterrupted, resumed, steps in results:
        assert steps == [5, 6]  # FSDP2 continued from DDP's step 4 (weights and momentum)
        assert max_difference(resumed, uninterrupted) < 1e-5
    plain = load_model_weights(make_model(), tmp_path / "step_000000006")
    assert max_difference(plain.state_dict(), results[0][1]) == 0.0


def test_a_checkpoint_from_another_model_is_a_clear_error(tmp_path: Path) -> None:
    make_trainer(strategy=SingleDevice(), checkpoint_dir=tmp_path, max_steps=2).fit()
    path = tmp_path / "step_000000002"
    with pytest.raises(CheckpointError, match=r"0\.weight: checkpoint shape \[16, 8\] but model"):
        load_model_weights(MLP(8, 32, 3), path)
    with pytest.raises(CheckpointError, match=r"missing from the checkpoint: 1\.0\.bias"):
        make_trainer(
            strategy=SingleDevice(),
            model=functools.partial(make_model, dropout=0.1),
            checkpoint_dir=tmp_path,
        ).fit()
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        load_model_weights(make_model(), tmp_path)


def _linear_and_momentum(seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_strategy_load_returns_the_state_with_or_without_a_template(tmp_path: Path) -> None:
    strategy = SingleDevice(device="cpu")
    model, optimizer = _linear_and_momentum(0)
    strategy.save({**strategy.state_dict(model, optimizer), "step": 3}, tmp_path)
    momentum = optimizer.state[model.weight]["momentum_buffer"]

    loaded = strategy.load(tmp_path)  # load(dir): the whole checkpoint, as saved
    assert loaded["step"] == 3
    assert torch.equal(loaded["model"]["weight"], model.weight.detach())
    assert torch.equal(loaded["optimizer"]["state"]["weight"]["momentum_buffer"], momentum)
    assert loaded["optimizer"]["param_groups"][0]["lr"] == 0.1

    other, other_optimizer = _linear_and_momentum(1)
    template = strategy.state_dict(other, other_optimizer)
    assert strategy.load(tmp_path, template) is template  # filled in place, as DCP does
    assert torch.equal(template["model"]["weight"], model.weight.detach())
    legacy = strategy.state_dict(other, other_optimizer)
    assert strategy.load(legacy, tmp_path) is legacy  # the earlier order, load(state, dir)
    assert torch.equal(legacy["model"]["bias"], model.bias.detach())

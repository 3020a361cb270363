"""Activation checkpointing in every strategy: a checkpointed block runs its forward twice per
step (once more in backward), trains to the very same weights as without, resumes exactly, and
a pattern that selects nothing is refused before training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from _dist import run_ranks
from _lm import TP_PLAN, make_lm, make_lm_trainer
from _training import FinalState, max_difference

from corelib import ConfigError
from plugins.ddp.strategies import Strategy
from plugins.ddp.strategies.ddp import DDP
from plugins.ddp.strategies.fsdp2 import FSDP2
from plugins.ddp.strategies.fsdp2_tp import FSDP2TP
from plugins.ddp.strategies.pipeline import Pipeline
from plugins.ddp.strategies.single import SingleDevice
from plugins.ddp.strategies.tp import TensorParallel

STEPS = 3
STRATEGIES = {
    "single": lambda ac: SingleDevice(activation_checkpointing=ac),
    "ddp": lambda ac: DDP(timeout_s=30, activation_checkpointing=ac),
    "fsdp2": lambda ac: FSDP2(timeout_s=30, activation_checkpointing=ac),
    "tp": lambda ac: TensorParallel(TP_PLAN, timeout_s=30, activation_checkpointing=ac),
    "fsdp2_tp": lambda ac: FSDP2TP(TP_PLAN, tp_size=2, timeout_s=30, activation_checkpointing=ac),
}


def _fit_counting(strategy: Strategy, **kwargs: Any) -> tuple[int, dict[str, torch.Tensor]]:
    """Train a fresh model passed in; return how often ``blocks.1.mlp.fc`` ran, and the final
    parameters."""
    torch.manual_seed(0)
    model = make_lm()
    calls = [0]
    model.blocks["1"].mlp.fc.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    make_lm_trainer(strategy=strategy, model=model, max_steps=STEPS, **kwargs).fit()
    params = {name: p.detach().clone() for name, p in model.named_parameters()}
    assert "forward" not in model.blocks["1"].__dict__  # the module passed in is given back plain
    return calls[0], params


def _with_and_without(rank: int, name: str) -> dict[str, Any]:
    plain_calls, plain = _fit_counting(STRATEGIES[name](None))
    calls, params = _fit_counting(STRATEGIES[name]("blocks.*"))
    return {"plain_calls": plain_calls, "calls": calls, "difference": max_difference(plain, params)}


def _check(result: dict[str, Any]) -> None:
    assert result["plain_calls"] == STEPS
    assert result["calls"] == 2 * STEPS  # forward, then again in backward
    assert result["difference"] < 1e-6  # the recomputation is the same computation


def test_single_device_recomputes_checkpointed_blocks_in_backward() -> None:
    _check(_with_and_without(0, "single"))


@pytest.mark.distributed
@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["ddp", "fsdp2", "tp", "fsdp2_tp"])
def test_two_ranks_recompute_checkpointed_blocks_in_backward(name: str) -> None:
    for result in run_ranks(_with_and_without, name, timeout=100):
        _check(result)


def test_a_class_name_selects_modules_and_nested_matches_checkpoint_once() -> None:
    calls, _ = _fit_counting(SingleDevice(activation_checkpointing=["Block", "blocks.*.mlp"]))
    assert calls == 2 * STEPS  # the block recomputes its mlp; the mlp is not checkpointed again


def _fit_checkpointed(directory: Path, max_steps: int) -> FinalState:
    final = FinalState()
    make_lm_trainer(
        strategy=SingleDevice(activation_checkpointing="blocks.*"),
        callbacks=(final,),
        max_steps=max_steps,
        checkpoint_dir=directory,
        checkpoint_every=2,
    ).fit()
    return final


def test_a_checkpointed_run_resumes_exactly(tmp_path: Path) -> None:
    uninterrupted = _fit_checkpointed(tmp_path / "a", 6)
    _fit_checkpointed(tmp_path / "b", 3)
    resumed = _fit_checkpointed(tmp_path / "b", 6)
    assert resumed.steps == [4, 5, 6]
    assert max_difference(resumed.params, uninterrupted.params) == 0.0
    assert resumed.metrics == uninterrupted.metrics


def test_a_pattern_that_matches_nothing_names_it_and_some_module_names() -> None:
    strategy = SingleDevice(activation_checkpointing=["blocks.*", "layers.*"])
    with pytest.raises(
        ConfigError,
        match=r"ddp/single: activation_checkpointing pattern 'layers\.\*' matches no submodule "
        r"of TransformerLM; its modules are \['embed', 'embed\.tok'",
    ):
        make_lm_trainer(strategy=strategy).fit()


def _pipeline_with_and_without(rank: int) -> dict[str, Any]:
    plain_calls, plain = _fit_counting(Pipeline(cuts=["blocks.2"], timeout_s=30))
    strategy = Pipeline(cuts=["blocks.2"], timeout_s=30, activation_checkpointing="blocks.*")
    calls, params = _fit_counting(strategy)
    return {"plain_calls": plain_calls, "calls": calls, "difference": max_difference(plain, params)}


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_pipeline_stages_recompute_their_checkpointed_blocks() -> None:
    first, second = run_ranks(_pipeline_with_and_without, timeout=100)
    # blocks.1 is in stage 0: run once per microbatch (4 per step) and once more when the
    # stage learns its shapes; checkpointed, once more per microbatch in backward.
    assert (first["plain_calls"], first["calls"]) == (4 * STEPS + 1, 8 * STEPS + 1)
    assert (second["plain_calls"], second["calls"]) == (0, 0)  # stage 1 does not hold it
    assert first["difference"] == second["difference"] == 0.0


@pytest.mark.parametrize("value", [[], "", [3]])
def test_an_empty_or_non_string_pattern_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="activation_checkpointing takes a module-name pattern"):
        SingleDevice(activation_checkpointing=value)

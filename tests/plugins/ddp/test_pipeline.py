"""Pipeline parallelism on 2 gloo ranks matches one process; bad cuts are clear errors."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import torch
from _dist import run_ranks
from _lm import make_lm, make_lm_trainer, make_tokens
from _training import FinalState, max_difference

from plugins.ddp.checkpoint import latest_checkpoint, load_model_weights
from plugins.ddp.models import TransformerLM
from plugins.ddp.strategies._pipeline_split import PipelineSplitError, split_stage
from plugins.ddp.strategies.pipeline import Pipeline
from plugins.ddp.strategies.single import SingleDevice

# 2 micro-batches per step (accumulation); the 8th batch holds the 5 sequences left of 61, which
# no number of microbatches up to 4 but 1 divides; the validation set's last batch (4 of 20) is
# smaller than the others too
OPTIONS = {
    "grad_accum_steps": 2,
    "train_data": make_tokens(61),
    "val_data": make_tokens(20, sample_seed=1),
    "val_every": 2,
}


def _fit(strategy: object, checkpoint_dir: str | None = None, **kwargs: Any) -> tuple[dict, dict]:
    final = FinalState()
    options = {**OPTIONS, **kwargs}
    trainer = make_lm_trainer(
        strategy=strategy, callbacks=(final,), checkpoint_dir=checkpoint_dir, **options
    )
    metrics = trainer.fit()
    return final.params, metrics


def _fit_rank(rank: int, schedule: str, checkpoint_dir: str, **kwargs: Any) -> tuple[dict, dict]:
    strategy = Pipeline(["blocks.2"], schedule=schedule, n_microbatches=4)
    return _fit(strategy, checkpoint_dir, **kwargs)


@pytest.mark.distributed
@pytest.mark.timeout(90)
@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
def test_pipeline_two_ranks_match_one_process(schedule: str, tmp_path: Path) -> None:
    reference, reference_metrics = _fit(SingleDevice())
    (first, first_metrics), (last, last_metrics) = run_ranks(
        _fit_rank, schedule, str(tmp_path), world_size=2, timeout=75
    )
    # stage 0 holds the embedding and blocks 0-1; stage 1 blocks 2-3, the final norm and head
    assert {name.split(".")[0] for name in first} == {"embed", "blocks"}
    assert {name.split(".")[0] for name in last} == {"blocks", "norm", "head"}
    assert max_difference({**first, **last}, reference) < 1e-5
    for metrics in (first_metrics, last_metrics):
        for key in ("step", "train/loss", "val/loss"):
            assert metrics[key] == pytest.approx(reference_metrics[key], abs=1e-5), key
    # the stages' checkpoint loads into the whole model in one process
    checkpoint = latest_checkpoint(tmp_path)
    assert checkpoint is not None
    whole = load_model_weights(make_lm(), checkpoint)
    assert max_difference(whole.state_dict(), reference) < 1e-5


@pytest.mark.distributed
@pytest.mark.timeout(90)
def test_a_stopped_pipeline_run_resumes_like_an_uninterrupted_one(tmp_path: Path) -> None:
    reference, _ = _fit(SingleDevice())
    directory = str(tmp_path)
    stopped = functools.partial(_fit_rank, max_steps=2)
    run_ranks(stopped, "1f1b", directory, world_size=2, timeout=75)
    resumed = run_ranks(_fit_rank, "1f1b", directory, world_size=2, timeout=75)
    assert latest_checkpoint(tmp_path) == tmp_path / "step_000000004"
    (first, first_metrics), (last, _) = resumed
    assert first_metrics["step"] == 4
    assert max_difference({**first, **last}, reference) < 1e-5  # momentum state came back too


def _whole_after_fit(strategy: object) -> dict:
    torch.manual_seed(0)
    model = make_lm()
    make_lm_trainer(strategy=strategy, model=model, **OPTIONS).fit()
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _whole_after_fit_rank(rank: int) -> dict:
    return _whole_after_fit(Pipeline(["blocks.2"], schedule="gpipe"))


def _stage_weights_rank(rank: int) -> dict:
    torch.manual_seed(rank)  # each rank builds different weights ...
    strategy = Pipeline(["blocks.2"], schedule="gpipe")
    strategy.setup()
    try:
        stage = strategy.wrap(make_lm())
        return {name: tensor.detach().clone() for name, tensor in stage.state_dict().items()}
    finally:
        strategy.teardown()


@pytest.mark.distributed
@pytest.mark.timeout(90)
def test_every_stage_starts_from_rank_zero_weights() -> None:
    torch.manual_seed(0)
    rank_zero = make_lm().state_dict()
    for stage in run_ranks(_stage_weights_rank, world_size=2, timeout=75):
        # ... and wrapping gives every stage its part of rank 0's model
        assert max_difference(stage, {name: rank_zero[name] for name in stage}) == 0.0


@pytest.mark.distributed
@pytest.mark.timeout(90)
def test_a_module_passed_in_is_whole_and_trained_on_every_rank_after_fit() -> None:
    expected = _whole_after_fit(SingleDevice())
    for params in run_ranks(_whole_after_fit_rank, world_size=2, timeout=75):
        assert max_difference(params, expected) < 1e-5


def test_split_keeps_a_stage_and_the_full_model_names() -> None:
    model = TransformerLM(n_layers=4)
    stage = split_stage(model, ["blocks.1", "blocks.3"], 1)
    assert [name for name, _ in stage.named_children()] == ["blocks"]
    assert list(stage.blocks) == ["1", "2"]
    assert stage.blocks["1"] is model.blocks["1"]  # the same modules: training one trains both
    assert list(model.blocks) == ["0", "1", "2", "3"] and model.head is not None  # unchanged
    hidden = torch.randn(2, 5, 64)
    assert stage(hidden).shape == hidden.shape  # embedding and head skipped


def test_1f1b_needs_a_microbatch_per_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(ValueError, match=r"n_microbatches >= the number of stages \(4\), got 2"):
        Pipeline(["blocks.1", "blocks.2", "blocks.3"], n_microbatches=2)
    assert Pipeline(["blocks.1", "blocks.2", "blocks.3"], schedule="gpipe", n_microbatches=2)


def test_bad_cuts_are_clear_errors() -> None:
    with pytest.raises(PipelineSplitError, match=r"cut 'blocks\.9' names no module.*blocks\.1"):
        split_stage(TransformerLM(n_layers=2), ["blocks.9"], 0)
    with pytest.raises(PipelineSplitError, match="in forward order"):
        split_stage(TransformerLM(n_layers=4), ["blocks.3", "blocks.1"], 0)
    with pytest.raises(PipelineSplitError, match="ModuleDict"):
        split_stage(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)), ["1"], 0)
    with pytest.raises(PipelineSplitError, match="exactly one of cuts"):
        Pipeline()
    with pytest.raises(ValueError, match="unknown pipeline schedule 'zigzag'"):
        Pipeline(["blocks.1"], schedule="zigzag")  # type: ignore[arg-type]

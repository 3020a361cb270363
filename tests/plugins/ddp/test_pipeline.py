"""Pipeline parallelism on 2 gloo ranks matches one process; bad cuts are clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed.checkpoint as dcp
from _dist import run_ranks

from plugins.ddp.models import TransformerLM, lm_loss, markov_tokens
from plugins.ddp.strategies._pipeline_split import PipelineSplitError, split_stage
from plugins.ddp.strategies.pipeline import Pipeline

STEPS = 3
ACCUMULATE = 2  # micro-batches per optimizer step, to check gradient accumulation
BATCH = 8


def _model() -> TransformerLM:
    torch.manual_seed(0)
    return TransformerLM(n_layers=4, dim=32)


def _micro_batches() -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    tokens, targets = markov_tokens(n_sequences=BATCH * STEPS * ACCUMULATE, seq_len=12).tensors
    pairs = list(zip(tokens.split(BATCH), targets.split(BATCH), strict=True))
    return [pairs[i : i + ACCUMULATE] for i in range(0, len(pairs), ACCUMULATE)]


def _reference() -> tuple[dict[str, np.ndarray], list[float]]:
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for step in _micro_batches():
        optimizer.zero_grad()
        for tokens, targets in step:
            loss = lm_loss(model(tokens), targets)
            (loss / ACCUMULATE).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    return {n: p.detach().numpy().copy() for n, p in model.named_parameters()}, losses


def _pipeline_rank(rank: int, schedule: str, checkpoint_dir: str) -> dict:
    strategy = Pipeline(["blocks.2"], schedule=schedule, n_microbatches=4)
    strategy.setup()
    model = strategy.wrap(_model())
    optimizer = strategy.build_optimizer(lambda p: torch.optim.SGD(p, lr=0.5), model)
    losses = []
    for step in _micro_batches():
        optimizer.zero_grad()
        for batch in step:
            loss = strategy.forward_backward(model, batch, lm_loss, loss_scale=1 / ACCUMULATE)
        strategy.clip_grad_norm(model, 1.0)
        optimizer.step()
        losses.append(loss.item())
    strategy.save(strategy.state_dict(model, optimizer), checkpoint_dir)
    params = {n: p.detach().numpy().copy() for n, p in model.named_parameters()}
    del model, optimizer
    strategy.teardown()
    return {"params": params, "losses": losses}


@pytest.mark.distributed
@pytest.mark.timeout(60)
@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
def test_pipeline_two_ranks_match_one_process(schedule: str, tmp_path: Path) -> None:
    expected, expected_losses = _reference()
    first, last = run_ranks(_pipeline_rank, schedule, str(tmp_path), world_size=2, timeout=45)
    # stage 0 holds the embedding and blocks 0-1; stage 1 blocks 2-3, the final norm and head
    assert {n.split(".")[0] for n in first["params"]} == {"embed", "blocks"}
    assert {n.split(".")[0] for n in last["params"]} == {"blocks", "norm", "head"}
    assert first["params"].keys().isdisjoint(last["params"])
    assert first["params"].keys() | last["params"].keys() == expected.keys()
    for result in (first, last):
        assert result["losses"] == pytest.approx(expected_losses, rel=1e-5)
        for name, value in result["params"].items():
            np.testing.assert_allclose(value, expected[name], atol=1e-5, rtol=1e-4)
    # the stages' checkpoint loads into the whole model in one process
    whole = TransformerLM(n_layers=4, dim=32)
    state = {"model": whole.state_dict()}
    dcp.load(state, checkpoint_id=str(tmp_path))
    whole.load_state_dict(state["model"])
    for name, param in whole.named_parameters():
        np.testing.assert_allclose(param.detach().numpy(), expected[name], atol=1e-5, rtol=1e-4)


def test_split_keeps_a_stage_and_the_full_model_names() -> None:
    stage = split_stage(TransformerLM(n_layers=4), ["blocks.1", "blocks.3"], 1)
    assert [name for name, _ in stage.named_children()] == ["blocks"]
    assert list(stage.blocks) == ["1", "2"]
    hidden = torch.randn(2, 5, 64)
    assert stage(hidden).shape == hidden.shape  # embedding and head skipped


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

"""Tensor parallelism on 2 gloo ranks matches one process; bad plans are clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _dist import run_ranks
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.tensor import DTensor, Replicate, Shard
from torch.distributed.tensor.parallel import (
    ColwiseParallel,
    RowwiseParallel,
    SequenceParallel,
    parallelize_module,
)

from plugins.ddp.models import TransformerLM, lm_loss, markov_tokens
from plugins.ddp.strategies._tp_plan import TPPlanError, resolve_plan
from plugins.ddp.strategies.tp import TensorParallel

PLAN = {
    "blocks.*.attn.q": "colwise",
    "blocks.*.attn.k": "colwise",
    "blocks.*.attn.v": "colwise",
    "blocks.*.attn.out": "rowwise",
    "blocks.*.mlp.fc": "colwise",
    "blocks.*.mlp.proj": "rowwise",
}
STEPS = 4
BATCH = 8


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    tokens, targets = markov_tokens(n_sequences=BATCH * STEPS, seq_len=16).tensors
    return list(zip(tokens.split(BATCH), targets.split(BATCH), strict=True))


def _train(strategy: TensorParallel | None) -> dict:
    """Train the same seeded model for STEPS SGD steps; return full parameters and losses."""
    torch.manual_seed(0)
    model = TransformerLM(n_layers=2)
    losses = []
    if strategy is None:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        for tokens, targets in _batches():
            optimizer.zero_grad()
            loss = lm_loss(model(tokens), targets)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    else:
        strategy.setup()
        model = strategy.wrap(model)
        optimizer = strategy.build_optimizer(lambda p: torch.optim.SGD(p, lr=0.5), model)
        for batch in _batches():
            optimizer.zero_grad()
            losses.append(strategy.forward_backward(model, batch, lm_loss).item())
            strategy.clip_grad_norm(model, 1e6)  # mixed DTensor and plain grads
            optimizer.step()
    params = {  # numpy: tensors would travel between processes as shared-memory handles
        name: (p.full_tensor() if isinstance(p, DTensor) else p).detach().numpy().copy()
        for name, p in model.named_parameters()
    }
    sharded = sorted(name for name, p in model.named_parameters() if isinstance(p, DTensor))
    if strategy is not None:
        del model, optimizer
        strategy.teardown()
    return {"params": params, "losses": losses, "sharded": sharded}


def _tp_rank(rank: int, use_fn: bool) -> dict:
    return _train(
        TensorParallel(parallelize_fn=_parallelize_mlps) if use_fn else TensorParallel(PLAN)
    )


def _parallelize_mlps(model: TransformerLM, mesh: DeviceMesh) -> None:
    for block in model.blocks.values():
        parallelize_module(block.mlp, mesh, {"fc": ColwiseParallel(), "proj": RowwiseParallel()})


@pytest.mark.distributed
@pytest.mark.timeout(60)
@pytest.mark.parametrize("use_fn", [False, True], ids=["plan", "parallelize_fn"])
def test_tp_two_ranks_match_one_process(use_fn: bool) -> None:
    reference = _train(None)
    ranks = run_ranks(_tp_rank, use_fn, world_size=2, timeout=45)
    layers = ["mlp.fc", "mlp.proj"] if use_fn else ["attn.q", "attn.k", "attn.v", "attn.out"]
    layers += [] if use_fn else ["mlp.fc", "mlp.proj"]
    expected = sorted(
        name for name in reference["params"] if any(f".{layer}." in name for layer in layers)
    )
    for result in ranks:
        assert result["sharded"] == expected
        assert result["losses"] == pytest.approx(reference["losses"], rel=1e-5)
        for name, value in reference["params"].items():
            np.testing.assert_allclose(result["params"][name], value, atol=2e-5, rtol=1e-4)
    # training moved the weights, so the comparison above is not between two initial states
    torch.manual_seed(0)
    initial = TransformerLM(n_layers=2).blocks["0"].mlp.fc.weight.detach().numpy()
    assert not np.allclose(initial, reference["params"]["blocks.0.mlp.fc.weight"])


def test_plan_naming_a_missing_module_is_a_clear_error() -> None:
    model = TransformerLM(n_layers=2)
    with pytest.raises(TPPlanError) as info:
        resolve_plan(model, {"blocks.*.attn.qkv": "colwise"})
    message = str(info.value)
    assert "'blocks.*.attn.qkv' matches no module of TransformerLM" in message
    assert "blocks.*.attn.q" in message  # a similar, existing name is suggested


def test_plan_errors_name_the_key() -> None:
    model = TransformerLM(n_layers=1)
    with pytest.raises(TPPlanError, match=r"plan\['head'\]: unknown style 'diagonal'"):
        resolve_plan(model, {"head": "diagonal"})
    with pytest.raises(TPPlanError, match=r"plan\['head'\]\.output_layouts: unknown layout"):
        resolve_plan(model, {"head": {"style": "colwise", "output_layouts": "sharded"}})
    with pytest.raises(TPPlanError, match=r"matched by both 'blocks\.0\.mlp\.fc' and"):
        resolve_plan(model, {"blocks.0.mlp.fc": "colwise", "blocks.*.mlp.fc": "colwise"})
    with pytest.raises(TPPlanError, match="exactly one of plan"):
        TensorParallel()


def test_plan_with_layouts_resolves_to_styles() -> None:
    styles = resolve_plan(
        TransformerLM(n_layers=2),
        {
            "norm": {"style": "sequence_parallel"},
            "head": {
                "style": "colwise",
                "input_layouts": "shard(1)",
                "output_layouts": "replicate",
            },
        },
    )
    assert list(styles) == ["norm", "head"]
    assert isinstance(styles["norm"], SequenceParallel)
    head = styles["head"]
    assert isinstance(head, ColwiseParallel)
    assert head.input_layouts == (Shard(1),) and head.output_layouts == (Replicate(),)

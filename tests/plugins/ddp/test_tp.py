"""Tensor parallelism on 2 gloo ranks trains like one process; bad plans are clear errors."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest
import torch
from _dist import run_ranks
from _lm import SEQUENCE_PARALLEL_PLAN, TP_PLAN, make_lm, make_lm_trainer, make_tokens
from _training import FinalState, max_difference
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.tensor import DTensor, Replicate, Shard
from torch.distributed.tensor.parallel import (
    ColwiseParallel,
    RowwiseParallel,
    SequenceParallel,
    parallelize_module,
)

from corelib import hookimpl
from plugins.ddp.models import TransformerLM, lm_loss
from plugins.ddp.strategies._tp_plan import TPPlanError, resolve_plan
from plugins.ddp.strategies.single import SingleDevice
from plugins.ddp.strategies.tp import TensorParallel


class ShardedNames:
    """Callback recording which parameters are DTensors when training starts."""

    def __init__(self) -> None:
        self.names: list[str] = []

    @hookimpl
    def ddp_fit_start(self, trainer: object) -> None:
        model = trainer.model  # type: ignore[attr-defined]
        self.names = sorted(n for n, p in model.named_parameters() if isinstance(p, DTensor))


def _fit(strategy: object) -> tuple[dict, dict, list[str]]:
    final, sharded = FinalState(), ShardedNames()
    metrics = make_lm_trainer(strategy=strategy, callbacks=(final, sharded)).fit()
    return final.params, metrics, sharded.names


def _parallelize_mlps(model: TransformerLM, mesh: DeviceMesh) -> None:
    for block in model.blocks.values():
        parallelize_module(block.mlp, mesh, {"fc": ColwiseParallel(), "proj": RowwiseParallel()})


PLANS = {  # name -> (strategy arguments, the modules whose parameters become DTensors)
    "plan": ({"plan": TP_PLAN}, list(TP_PLAN)),
    "sequence_parallel": ({"plan": SEQUENCE_PARALLEL_PLAN}, list(SEQUENCE_PARALLEL_PLAN)),
    "parallelize_fn": (
        {"parallelize_fn": _parallelize_mlps},
        ["blocks.*.mlp.fc", "blocks.*.mlp.proj"],
    ),
}


def _fit_rank(rank: int, name: str) -> tuple[dict, dict, list[str]]:
    return _fit(TensorParallel(**PLANS[name][0], timeout_s=30))


@pytest.mark.distributed
@pytest.mark.timeout(90)
@pytest.mark.parametrize("name", list(PLANS))
def test_tp_two_ranks_match_one_process(name: str) -> None:
    reference, reference_metrics, _ = _fit(SingleDevice())
    patterns = PLANS[name][1]
    planned = sorted(
        n for n in reference if any(fnmatchcase(n.rpartition(".")[0], p) for p in patterns)
    )
    results = run_ranks(_fit_rank, name, world_size=2, timeout=75)
    for params, metrics, sharded in results:
        assert sharded == planned
        assert max_difference(params, reference) < 1e-5
        assert metrics["step"] == 4
        assert metrics["train/loss"] == pytest.approx(reference_metrics["train/loss"], abs=1e-5)
    assert max_difference(make_lm().state_dict(), reference) > 1e-3  # it did train


def _loss_after_fit(strategy: object) -> float:
    """Train a module passed in, then use it as an ordinary module (no process group left)."""
    torch.manual_seed(0)
    model = make_lm()
    make_lm_trainer(strategy=strategy, model=model).fit()
    tokens, targets = make_tokens(8, sample_seed=1).tensors
    with torch.no_grad():
        return lm_loss(model(tokens), targets).item()


def _loss_after_fit_rank(rank: int) -> float:
    return _loss_after_fit(TensorParallel(SEQUENCE_PARALLEL_PLAN, timeout_s=30))


@pytest.mark.distributed
@pytest.mark.timeout(90)
def test_a_module_passed_in_is_whole_and_plain_after_fit() -> None:
    expected = _loss_after_fit(SingleDevice())
    for loss in run_ranks(_loss_after_fit_rank, world_size=2, timeout=75):
        assert loss == pytest.approx(expected, abs=1e-5)


def test_plan_naming_a_missing_module_is_a_clear_error() -> None:
    with pytest.raises(TPPlanError) as info:
        resolve_plan(TransformerLM(n_layers=2), {"blocks.*.attn.qkv": "colwise"})
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


def test_a_single_process_checks_the_plan_and_keeps_the_model_whole() -> None:
    model = TensorParallel(TP_PLAN).wrap(make_lm())
    assert not any(isinstance(p, DTensor) for p in model.parameters())
    with pytest.raises(TPPlanError, match=r"'blocks\.0\.mlp\.fc2' matches no module"):
        TensorParallel({"blocks.0.mlp.fc2": "colwise"}).wrap(make_lm())


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
    attn = resolve_plan(
        TransformerLM(n_layers=1),
        {
            "blocks.0.attn": {
                "style": "prepare_input",
                "input_kwarg_layouts": {"x": "shard(1)"},
                "desired_input_kwarg_layouts": {"x": "replicate"},
            }
        },
    )["blocks.0.attn"]
    assert attn.input_kwarg_layouts == {"x": Shard(1)}
    assert attn.desired_input_kwarg_layouts == {"x": Replicate()}

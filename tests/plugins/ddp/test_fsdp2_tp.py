"""FSDP2 + tensor parallel on a 2 x 2 mesh of gloo ranks trains like one process."""

from __future__ import annotations

import pytest
import torch
from _dist import run_ranks
from _lm import TP_PLAN, make_lm, make_lm_trainer
from _training import max_difference

from plugins.ddp.strategies.fsdp2_tp import FSDP2TP
from plugins.ddp.strategies.single import SingleDevice

PER_GROUP_BATCH = 4  # 2 data-parallel groups: a global batch of 8


def _fit(strategy: object, batch_size: int) -> tuple[dict, dict]:
    """Train a module passed in; return its final parameters as plain tensors after fit."""
    torch.manual_seed(0)
    model = make_lm()
    metrics = make_lm_trainer(strategy=strategy, model=model, batch_size=batch_size).fit()
    return {name: p.detach().clone() for name, p in model.named_parameters()}, metrics


def _fit_rank(rank: int) -> tuple[dict, dict, tuple[int, int]]:
    strategy = FSDP2TP(TP_PLAN, tp_size=2, timeout_s=30)
    params, metrics = _fit(strategy, PER_GROUP_BATCH)
    return params, metrics, (strategy.data_parallel_rank, strategy.data_parallel_size)


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_fsdp2_tp_on_four_ranks_matches_one_process() -> None:
    reference, reference_metrics = _fit(SingleDevice(), 2 * PER_GROUP_BATCH)
    results = run_ranks(_fit_rank, world_size=4, timeout=100)
    assert [groups for _, _, groups in results] == [(0, 2), (0, 2), (1, 2), (1, 2)]
    for params, metrics, _ in results:  # the module passed in holds the full, plain weights
        assert max_difference(params, reference) < 1e-5
        assert metrics["train/loss"] == pytest.approx(reference_metrics["train/loss"], abs=1e-5)
    assert max_difference(make_lm().state_dict(), reference) > 1e-3  # it did train


def test_tp_size_must_divide_the_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "6")
    with pytest.raises(ValueError, match=r"tp_size=4 must divide the number of ranks \(6\)"):
        FSDP2TP(TP_PLAN, tp_size=4)

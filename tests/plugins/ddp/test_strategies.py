"""DDP and FSDP2 on 2 gloo ranks train like one process with the same global batch."""

from __future__ import annotations

import pytest
import torch
from _dist import run_ranks
from _training import FinalState, make_data, make_model, make_trainer, max_difference

from plugins.ddp.strategies import Strategy
from plugins.ddp.strategies.ddp import DDP
from plugins.ddp.strategies.fsdp2 import FSDP2
from plugins.ddp.strategies.single import SingleDevice

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(120)]

GLOBAL_BATCH = 16
STRATEGIES = {
    "ddp": lambda: DDP(timeout_s=30),
    "fsdp2": lambda: FSDP2(timeout_s=30),
    "fsdp2-per-linear": lambda: FSDP2(shard_modules=["Linear"], timeout_s=30),
}


def _fit(strategy: Strategy, batch_size: int, grad_accum_steps: int) -> tuple[dict, dict]:
    final = FinalState()
    metrics = make_trainer(
        strategy=strategy,
        callbacks=(final,),
        batch_size=batch_size,
        grad_accum_steps=grad_accum_steps,
        grad_clip_norm=1.0,
    ).fit()
    return final.params, metrics


def _fit_rank(rank: int, name: str, grad_accum_steps: int) -> tuple[dict, dict]:
    per_rank = GLOBAL_BATCH // 2 // grad_accum_steps
    return _fit(STRATEGIES[name](), per_rank, grad_accum_steps)


@pytest.mark.parametrize(
    ("name", "grad_accum_steps"),
    [("ddp", 1), ("ddp", 2), ("fsdp2", 1), ("fsdp2-per-linear", 2)],
)
def test_two_ranks_match_one_process_with_the_same_global_batch(
    name: str, grad_accum_steps: int
) -> None:
    reference, reference_metrics = _fit(SingleDevice(), GLOBAL_BATCH, 1)
    results = run_ranks(_fit_rank, name, grad_accum_steps, timeout=90)
    for params, metrics in results:
        assert max_difference(params, reference) < 1e-5
        assert metrics["step"] == reference_metrics["step"] == 6
        assert metrics["train/loss"] == pytest.approx(reference_metrics["train/loss"], abs=1e-5)
    assert max_difference(make_model().state_dict(), reference) > 1e-3  # it did train


def _initial_weights_rank(rank: int, name: str) -> dict:
    torch.manual_seed(rank)  # each rank builds different weights ...
    strategy = STRATEGIES[name]()
    strategy.setup()
    try:
        model = strategy.wrap(make_model())
        final = FinalState()
        final.ddp_fit_end(type("Run", (), {"model": model}), {})
        return final.params
    finally:
        del model
        strategy.teardown()


@pytest.mark.parametrize("name", ["ddp", "fsdp2"])
def test_every_rank_starts_from_rank_zero_weights(name: str) -> None:
    first, second = run_ranks(_initial_weights_rank, name, timeout=60)
    torch.manual_seed(0)
    assert max_difference(first, second) == 0.0  # ... and wrapping makes them rank 0's
    assert max_difference(first, make_model().state_dict()) == 0.0


def test_a_dataset_too_small_for_the_ranks_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match=r"3 samples: too few for 4 data-parallel ranks"):
        Strategy().dataloader(make_data(3), batch_size=1, shuffle=True, seed=0, drop_last=True)
    with pytest.raises(ValueError, match="--nproc-per-node"):
        Strategy().dataloader(make_data(40), batch_size=16, shuffle=True, seed=0, drop_last=True)


def test_single_device_refuses_to_be_one_of_several_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match=r"ddp/single trains in one process.*WORLD_SIZE=2"):
        SingleDevice().setup()


def test_fsdp2_names_a_shard_pattern_that_matches_nothing() -> None:
    with pytest.raises(ValueError, match=r"'blocks\.\*' matches no submodule of MLP.*'0', '1'"):
        FSDP2(shard_modules=["blocks.*"]).wrap(make_model())
    with pytest.raises(ValueError, match="param_dtype='bf17' is not a dtype"):
        FSDP2(param_dtype="bf17")

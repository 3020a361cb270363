"""DDP and FSDP2 on 2 gloo ranks train like one process with the same global batch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
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


def _fit_rank_partial_batches(rank: int) -> tuple[dict, dict]:
    final = FinalState()
    trainer = make_trainer(
        strategy=DDP(timeout_s=30),
        callbacks=(final,),
        train_data=make_data(100),
        batch_size=8,
        max_steps=None,
        max_epochs=1,
    )
    metrics = trainer.fit()
    return final.params, metrics


def test_two_ranks_keep_the_last_partial_batch_like_one_process() -> None:
    # 100 samples: 6 global batches of 16, then one of 4 (2 per rank), kept as by a DataLoader
    final = FinalState()
    trainer = make_trainer(
        strategy=SingleDevice(),
        callbacks=(final,),
        train_data=make_data(100),
        batch_size=16,
        max_steps=None,
        max_epochs=1,
    )
    reference_metrics = trainer.fit()
    assert reference_metrics["step"] == 7
    for params, metrics in run_ranks(_fit_rank_partial_batches, timeout=90):
        assert metrics["step"] == 7
        assert max_difference(params, final.params) < 1e-5
        assert metrics["train/loss"] == pytest.approx(reference_metrics["train/loss"], abs=1e-5)


@pytest.mark.parametrize(("n_samples", "batches"), [(7, [2, 2]), (3, [1, 1]), (8, [2, 2])])
def test_every_rank_gets_as_many_batches_padded_like_a_distributed_sampler(
    monkeypatch: pytest.MonkeyPatch, n_samples: int, batches: list[int]
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    loaders = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        loaders.append(
            Strategy().dataloader(
                make_data(n_samples), batch_size=3, shuffle=True, seed=0, drop_last=False
            )
        )
    assert [len(list(loader)) for loader in loaders] == batches
    seen = torch.cat([x for loader in loaders for x, _ in loader])
    assert len(seen) == 2 * -(-n_samples // 2)  # padded to equal shards by repeating samples
    assert len(torch.unique(seen, dim=0)) == n_samples  # every sample is used


def _backward_grads(strategy: Strategy, inputs: torch.Tensor, targets: torch.Tensor) -> dict:
    strategy.setup()
    model = None
    try:
        torch.manual_seed(0)
        model = strategy.wrap(make_model())
        loss = F.cross_entropy(model(inputs), targets)
        strategy.backward(loss, loss_scale=0.5)
        return {name: p.grad.clone() for name, p in strategy.unwrap(model).named_parameters()}
    finally:
        del model
        strategy.teardown()


def _backward_rank(rank: int) -> dict:
    inputs, targets = make_data(16)[rank * 8 : rank * 8 + 8]
    return _backward_grads(DDP(timeout_s=30), inputs, targets)


def test_backward_scales_the_loss_and_averages_gradients_over_ranks() -> None:
    inputs, targets = make_data(16)[:]
    single = _backward_grads(SingleDevice(), inputs, targets)
    torch.manual_seed(0)
    model = make_model()
    F.cross_entropy(model(inputs), targets).backward()
    unscaled = {name: p.grad for name, p in model.named_parameters()}
    assert max_difference(single, {name: g / 2 for name, g in unscaled.items()}) < 1e-7
    for grads in run_ranks(_backward_rank, timeout=60):
        assert max_difference(grads, single) < 1e-6  # each rank half the batch, averaged


def _fit_module_rank(rank: int, name: str) -> tuple[dict, type, torch.Tensor]:
    torch.manual_seed(123)
    model = make_model()
    make_trainer(
        model=model, strategy=STRATEGIES[name](), val_data=make_data(16, sample_seed=1)
    ).fit()  # the validation at the end leaves FSDP2's root unit gathered
    assert not any(hasattr(p, "full_tensor") for p in model.state_dict().values())
    with torch.no_grad():
        return model.state_dict(), type(model), model(make_data(4)[:][0])


@pytest.mark.parametrize("name", ["fsdp2-per-linear", "ddp"])
def test_a_module_passed_in_holds_the_full_trained_weights_after_fit(name: str) -> None:
    torch.manual_seed(123)
    reference = make_model()
    make_trainer(model=reference, strategy=SingleDevice(), batch_size=GLOBAL_BATCH).fit()
    with torch.no_grad():
        expected_output = reference(make_data(4)[:][0])
    for state, model_type, output in run_ranks(_fit_module_rank, name, timeout=90):
        assert model_type is type(reference)  # fully_shard undone
        assert max_difference(state, reference.state_dict()) < 1e-5
        assert torch.allclose(output, expected_output, atol=1e-5)  # it still runs, alone


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


def _trainers_in_turn(rank: int, count: int) -> list[float]:
    losses = []
    for _ in range(count):
        metrics = make_trainer(strategy=DDP(timeout_s=30), max_steps=1).fit()
        losses.append(metrics["train/loss"])
    return losses


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_one_process_can_run_many_distributed_trainers_in_turn() -> None:
    """Each fit makes and leaves its own process group. They share one rendezvous store, so a
    rank that starts the next group early never reaches a store that rank 0 is closing."""
    results = run_ranks(_trainers_in_turn, 8, timeout=100)
    assert results[0] == results[1]  # every group averaged the loss over both ranks
    assert len(results[0]) == 8

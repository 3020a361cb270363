"""FSDP2's ``init_on_meta``: the model is built on the meta device, sharded, and only each
rank's shards are materialised and initialised, so no rank ever holds the whole model; the
initialisation is like a normal one and the run trains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from _dist import run_ranks
from _lm import make_lm, make_lm_trainer
from _training import FinalState, max_difference
from torch.distributed.tensor import DTensor

from corelib import ConfigError, hookimpl
from plugins.ddp.strategies.fsdp2 import FSDP2


class _Inspect:
    """How the model looked when built, and its parameters when training starts."""

    def __init__(self) -> None:
        self.built_on_meta: bool | None = None
        self.shards: dict[str, tuple[tuple[int, ...], tuple[int, ...], str]] = {}
        self.full: dict[str, torch.Tensor] = {}

    def make_lm(self) -> torch.nn.Module:
        model = make_lm()
        self.built_on_meta = all(p.is_meta for p in model.parameters())
        return model

    @hookimpl
    def ddp_fit_start(self, trainer: Any) -> None:
        for name, param in trainer.model.named_parameters():
            assert isinstance(param, DTensor)
            local = param.to_local()
            self.shards[name] = (tuple(local.shape), tuple(param.shape), local.device.type)
            self.full[name] = param.full_tensor().detach().clone()


def _fit_on_meta(rank: int, init_fn: Any = None) -> dict[str, Any]:
    inspect = _Inspect()
    metrics = make_lm_trainer(
        strategy=FSDP2(init_on_meta=True, init_fn=init_fn, timeout_s=30),
        model=inspect.make_lm,  # a factory: built under the strategy's meta device
        callbacks=(inspect,),
        max_steps=6,
    ).fit()
    return {
        "built_on_meta": inspect.built_on_meta,
        "shards": inspect.shards,
        "full": inspect.full,
        "metrics": metrics,
    }


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_a_model_built_on_meta_is_sharded_then_initialised_like_a_normal_one() -> None:
    ranks = run_ranks(_fit_on_meta, timeout=100)
    torch.manual_seed(0)
    normal = dict(make_lm().named_parameters())
    for result in ranks:
        assert result["built_on_meta"] is True
        for name, (local, full, device) in result["shards"].items():
            assert device == "cpu" and full == tuple(normal[name].shape)
            assert local[0] == -(-full[0] // 2) and local[1:] == full[1:]  # half on each rank
    full = ranks[0]["full"]
    for name, tensor in full.items():  # initialised as usual, each rank its own half
        expected = normal[name].detach()
        if expected.std() == 0:  # LayerNorm: ones and zeros
            assert torch.equal(tensor, expected), name
        else:
            assert tensor.std() / expected.std() == pytest.approx(1.0, abs=0.25), name
            half = tensor.shape[0] // 2
            assert not torch.equal(tensor[:half], tensor[half : 2 * half]), name  # not copies
    assert ranks[0]["metrics"] == ranks[1]["metrics"]
    assert ranks[0]["metrics"]["train/loss"] < 3.3  # below log(32): it trains


def fill_half(model: torch.nn.Module) -> None:
    """An init_fn: every parameter 0.5."""
    for param in model.parameters():
        param.fill_(0.5)


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_an_init_fn_initialises_the_materialised_shards() -> None:
    for result in run_ranks(_fit_on_meta, fill_half, timeout=100):
        assert all(torch.all(t == 0.5) for t in result["full"].values())


def test_init_on_meta_needs_a_factory_and_init_fn_needs_init_on_meta() -> None:
    with pytest.raises(ConfigError, match=r"ddp/fsdp2: init_fn is used only with init_on_meta"):
        FSDP2(init_fn=fill_half)
    strategy = FSDP2(init_on_meta=True)
    with pytest.raises(ConfigError, match=r"init_on_meta=True needs the model as a factory"):
        strategy.wrap(make_lm())
    with torch.device("meta"):
        on_meta = make_lm()
    with pytest.raises(ConfigError, match=r"tensors on the meta device; set init_on_meta"):
        FSDP2().wrap(on_meta)


def _fit_all_options(rank: int, directory: str, max_steps: int) -> dict[str, Any]:
    """FSDP2 with a meta-device init, activation checkpointing and fp16 (the sharded scaler)."""
    final = FinalState()
    make_lm_trainer(
        strategy=FSDP2(init_on_meta=True, activation_checkpointing="blocks.*", timeout_s=30),
        precision="fp16",
        callbacks=(final,),
        max_steps=max_steps,
        checkpoint_dir=directory,
        checkpoint_every=2,
    ).fit()
    return {"params": final.params, "metrics": final.metrics, "steps": final.steps}


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_fsdp2_on_meta_with_checkpointing_and_fp16_resumes_exactly(tmp_path: Path) -> None:
    uninterrupted = run_ranks(_fit_all_options, str(tmp_path / "a"), 6, timeout=100)
    run_ranks(_fit_all_options, str(tmp_path / "b"), 3, timeout=100)
    resumed = run_ranks(_fit_all_options, str(tmp_path / "b"), 6, timeout=100)
    for before, after in zip(uninterrupted, resumed, strict=True):
        assert after["steps"] == [4, 5, 6]
        assert max_difference(after["params"], before["params"]) == 0.0
        assert after["metrics"] == before["metrics"]
    state = torch.load(tmp_path / "b" / "step_000000006" / "trainer_rank1.pt", weights_only=True)
    assert state["grad_scaler"]["scale"] > 0

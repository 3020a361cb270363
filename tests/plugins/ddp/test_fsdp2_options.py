"""FSDP2's options, each observed in a 2-rank gloo run so that ignoring it fails a test:
``param_dtype`` (the weights a unit computes with), ``reduce_dtype`` (what the gradients'
reduce-scatter carries), ``output_dtype`` (what the model returns), ``reshard_after_forward``
(whether a unit's weights are sharded again between forward and backward) and ``cpu_offload``.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from _dist import run_ranks
from _training import make_model, make_trainer
from torch.distributed.fsdp import FSDPModule
from torch.distributed.fsdp._fully_shard._fsdp_collectives import DefaultReduceScatter
from torch.distributed.tensor import DTensor

from corelib import hookimpl
from plugins.ddp.strategies.fsdp2 import FSDP2

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(120)]


class _RecordingReduceScatter(DefaultReduceScatter):
    """FSDP2's own reduce-scatter, noting the dtype of what it reduces."""

    def __init__(self, seen: set[torch.dtype]) -> None:
        self.seen = seen

    def __call__(
        self, output_tensor: torch.Tensor, input_tensor: torch.Tensor, *args: Any, **kwargs: Any
    ) -> Any:
        self.seen.add(input_tensor.dtype)
        return super().__call__(output_tensor, input_tensor, *args, **kwargs)


class _Observer:
    """What one run of the first Linear (an FSDP unit of its own) and of the model look like."""

    def __init__(self) -> None:
        self.seen: dict[str, set[Any]] = {
            "weight_in_forward": set(),
            "reduced": set(),
            "output": set(),
            "sharded_before_backward": set(),
            "offloaded": set(),
        }
        self.model: torch.nn.Module | None = None

    def make_model(self) -> torch.nn.Module:
        self.model = make_model()
        self.model[0].register_forward_hook(self._forward)
        return self.model

    def _forward(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        self.seen["weight_in_forward"].add(module.weight.dtype)

    def loss_fn(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Called between the model's forward and backward."""
        assert self.model is not None
        self.seen["output"].add(outputs.dtype)
        self.seen["sharded_before_backward"].add(isinstance(self.model[0].weight, DTensor))
        return F.cross_entropy(outputs.float(), targets)

    @hookimpl
    def ddp_fit_start(self, trainer: Any) -> None:
        for module in trainer.model.modules():
            if isinstance(module, FSDPModule):
                module.set_custom_reduce_scatter(_RecordingReduceScatter(self.seen["reduced"]))
                # Not observable on a CPU-only machine (the "offloaded" shards stay on the CPU
                # either way): FSDP2's own record of whether it offloads.
                group = module._get_fsdp_state()._fsdp_param_group
                if group is not None:
                    self.seen["offloaded"].update(p.offload_to_cpu for p in group.fsdp_params)


def _observe(rank: int, options: dict[str, Any]) -> dict[str, set[Any]]:
    observer = _Observer()
    strategy = FSDP2(shard_modules=["Linear"], timeout_s=30, **options)
    make_trainer(
        model=observer.make_model,
        strategy=strategy,
        loss_fn=observer.loss_fn,
        callbacks=(observer,),
        max_steps=2,
    ).fit()
    return observer.seen


def _observed(options: dict[str, Any]) -> dict[str, set[Any]]:
    ranks = run_ranks(_observe, options, timeout=90)
    assert ranks[0] == ranks[1]
    return ranks[0]


def test_defaults_compute_reduce_and_return_float32_and_reshard_after_forward() -> None:
    seen = _observed({})
    assert seen["weight_in_forward"] == seen["reduced"] == seen["output"] == {torch.float32}
    assert seen["sharded_before_backward"] == {True}
    assert seen["offloaded"] == {False}


def test_param_dtype_is_what_units_compute_with_and_reduce_with_by_default() -> None:
    seen = _observed({"param_dtype": "bf16"})
    assert seen["weight_in_forward"] == seen["reduced"] == seen["output"] == {torch.bfloat16}


def test_reduce_dtype_is_what_the_gradients_reduce_scatter_carries() -> None:
    seen = _observed({"param_dtype": "bf16", "reduce_dtype": "fp32"})
    assert seen["weight_in_forward"] == {torch.bfloat16}
    assert seen["reduced"] == {torch.float32}


def test_output_dtype_is_what_the_model_returns() -> None:
    seen = _observed({"param_dtype": "bf16", "output_dtype": "fp32"})
    assert seen["weight_in_forward"] == {torch.bfloat16}
    assert seen["output"] == {torch.float32}


def test_without_reshard_after_forward_units_stay_gathered_until_backward() -> None:
    assert _observed({"reshard_after_forward": False})["sharded_before_backward"] == {False}


def test_cpu_offload_reaches_fsdp2() -> None:
    assert _observed({"cpu_offload": True})["offloaded"] == {True}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_shipped_configs_take_the_memory_options_from_the_command_line() -> None:
    overrides = [
        "+precision=bf16",
        "+strategy.activation_checkpointing=blocks.*",
        "+strategy.init_on_meta=true",
    ]
    command = [sys.executable, "-m", "corelib", "run", "ddp/train_fsdp2", *overrides]
    flags = ["--nproc-per-node", "2", "--allow-import", "torch.optim"]
    done = subprocess.run(command + flags, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("{'step': 5.0, 'train/loss': ")
    refused = subprocess.run(
        [*command[:4], "ddp/train_tp", "+precision=fp16", *flags],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert refused.returncode == 1, refused.stderr
    assert "corelib: error: precision='fp16' under ddp/tp is not supported" in refused.stderr

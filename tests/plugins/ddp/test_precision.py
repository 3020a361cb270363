"""The trainer's ``precision``: each value changes what the forward pass computes in, and a
test here fails when a value is ignored (activations' dtype seen in a forward hook, gradients
seen scaled under fp16); fp16's scaler state resumes exactly; what cannot run is refused."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import torch
from _dist import run_ranks
from _lm import TP_PLAN, make_lm_trainer
from _training import FinalState, make_model, make_trainer, max_difference
from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

from corelib import ConfigError, hookimpl
from plugins.ddp import precision as precision_module
from plugins.ddp.checkpoint import CheckpointError
from plugins.ddp.precision import Precision
from plugins.ddp.strategies.ddp import DDP
from plugins.ddp.strategies.fsdp2 import FSDP2
from plugins.ddp.strategies.pipeline import Pipeline
from plugins.ddp.strategies.single import SingleDevice
from plugins.ddp.strategies.tp import TensorParallel


class Seen:
    """Dtypes seen inside the first Linear's forward: its input, weight and output."""

    def __init__(self) -> None:
        self.records: list[tuple[torch.dtype, torch.dtype, torch.dtype]] = []

    def model(self) -> torch.nn.Module:
        model = make_model()
        model[0].register_forward_hook(self._record)
        return model

    def _record(self, module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> None:
        self.records.append((args[0].dtype, module.weight.dtype, output.dtype))


def _fit(precision: str, **kwargs: Any) -> tuple[Seen, FinalState, dict[str, float]]:
    seen, final = Seen(), FinalState()
    callbacks = (final, *kwargs.pop("callbacks", ()))
    metrics = make_trainer(
        model=seen.model,
        strategy=SingleDevice(),
        callbacks=callbacks,
        precision=precision,
        **kwargs,
    ).fit()
    return seen, final, metrics


def test_bf16_autocasts_activations_and_keeps_float32_weights() -> None:
    seen, final, metrics = _fit("bf16", max_steps=10)
    assert set(seen.records) == {(torch.float32, torch.float32, torch.bfloat16)}
    assert {p.dtype for p in final.params.values()} == {torch.float32}
    assert metrics["train/loss"] < 1.1


def test_bf16_true_keeps_weights_and_inputs_in_bf16_without_autocast() -> None:
    seen, final, metrics = _fit("bf16-true", max_steps=10)
    assert set(seen.records) == {(torch.bfloat16, torch.bfloat16, torch.bfloat16)}
    assert {p.dtype for p in final.params.values()} == {torch.bfloat16}
    assert metrics["train/loss"] < 1.1


def test_32_and_int_32_compute_in_float32() -> None:
    for precision in ("32", 32):
        seen, _, _ = _fit(precision, max_steps=2)  # type: ignore[arg-type]
        assert set(seen.records) == {(torch.float32, torch.float32, torch.float32)}


class GradScales:
    """The first Linear's weight gradient as backward produced it, at the first step."""

    def __init__(self) -> None:
        self.first: torch.Tensor | None = None

    @hookimpl
    def ddp_fit_start(self, trainer: Any) -> None:
        weight = next(trainer.model.parameters())
        weight.register_hook(self._keep)

    def _keep(self, grad: torch.Tensor) -> None:
        if self.first is None:
            self.first = grad.detach().float().clone()


def test_fp16_autocasts_and_backward_sees_gradients_times_the_scale() -> None:
    grads32, grads16 = GradScales(), GradScales()
    _fit("32", max_steps=1, callbacks=(grads32,))
    seen, final, metrics = _fit("fp16", max_steps=10, callbacks=(grads16,))
    assert set(seen.records) == {(torch.float32, torch.float32, torch.float16)}
    assert {p.dtype for p in final.params.values()} == {torch.float32}
    assert grads32.first is not None and grads16.first is not None
    ratio = grads16.first.norm() / grads32.first.norm()
    assert ratio == pytest.approx(2.0**16, rel=0.02)  # GradScaler's initial scale
    assert metrics["train/loss"] < 1.1


def _resumable(directory: Path, max_steps: int, precision: str) -> dict[str, Any]:
    return {
        "model": functools.partial(make_model, dropout=0.2),
        "max_steps": max_steps,
        "precision": precision,
        "checkpoint_dir": directory,
        "checkpoint_every": 5,
        "lr": 0.1,
        "grad_clip_norm": 1.0,
    }


def _fit_resumable(**kwargs: Any) -> tuple[FinalState, dict[str, float]]:
    final = FinalState()
    metrics = make_trainer(strategy=SingleDevice(), callbacks=(final,), **kwargs).fit()
    return final, metrics


@pytest.mark.parametrize("precision", ["bf16", "bf16-true", "fp16"])
def test_stopping_and_resuming_equals_an_uninterrupted_run_in_each_precision(
    tmp_path: Path, precision: str
) -> None:
    uninterrupted, expected = _fit_resumable(**_resumable(tmp_path / "a", 20, precision))
    _fit_resumable(**_resumable(tmp_path / "b", 10, precision))
    resumed, metrics = _fit_resumable(**_resumable(tmp_path / "b", 20, precision))
    assert max_difference(resumed.params, uninterrupted.params) == 0.0
    assert metrics == expected


def test_fp16_checkpoints_hold_the_scalers_state(tmp_path: Path) -> None:
    _fit_resumable(**_resumable(tmp_path, 5, "fp16"))
    state = torch.load(tmp_path / "step_000000005" / "trainer_rank0.pt", weights_only=True)
    assert state["grad_scaler"]["scale"] > 0
    assert set(state["grad_scaler"]) >= {"scale", "growth_factor", "_growth_tracker"}


class CountSteps:
    def __init__(self) -> None:
        self.steps = 0

    @hookimpl
    def ddp_step_end(self) -> None:
        self.steps += 1


def test_fp16_without_float16_kernels_is_refused_before_the_first_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A CPU build without fp16 kernels, as the probe would report it.
    monkeypatch.setattr(precision_module, "_fp16_probed", {})
    monkeypatch.setattr(precision_module, "_fp16_problem", lambda device: "no kernel")
    counter = CountSteps()
    with pytest.raises(ConfigError, match=r"precision='fp16' under ddp/single on cpu.*no kernel"):
        make_trainer(strategy=SingleDevice(), precision="fp16", callbacks=(counter,)).fit()
    assert counter.steps == 0


def test_the_fp16_probe_finds_this_builds_cpu_kernels() -> None:
    assert precision_module._fp16_problem(torch.device("cpu")) is None


def test_fp16_under_tensor_parallelism_is_refused_naming_both() -> None:
    with pytest.raises(ConfigError, match=r"precision='fp16' under ddp/tp is not supported"):
        Precision("fp16", TensorParallel(TP_PLAN))


class OverflowOnce:
    """Makes this rank's first gradient infinite at the first step (as an fp16 overflow)."""

    def __init__(self) -> None:
        self.done = False

    @hookimpl
    def ddp_fit_start(self, trainer: Any) -> None:
        next(trainer.model.parameters()).register_hook(self._overflow)

    def _overflow(self, grad: torch.Tensor) -> torch.Tensor:
        if self.done:
            return grad
        self.done = True
        return torch.full_like(grad, float("inf"))


def _pipeline_fp16(rank: int, directory: str) -> float:
    make_lm_trainer(
        strategy=Pipeline(cuts=["blocks.2"], timeout_s=30),
        precision="fp16",
        max_steps=3,
        checkpoint_dir=directory,
        callbacks=(OverflowOnce(),) if rank == 0 else (),
    ).fit()
    state = torch.load(Path(directory, "step_000000003", f"trainer_rank{rank}.pt"))
    return state["grad_scaler"]["scale"]


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_fp16_pipeline_stages_skip_an_overflowing_step_together(tmp_path: Path) -> None:
    # Only stage 0 overflows; both stages skip that step and halve their scale alike.
    assert run_ranks(_pipeline_fp16, str(tmp_path), timeout=90) == [2.0**15, 2.0**15]


def test_fsdp2_takes_its_policy_from_the_precision_unless_given_one() -> None:
    strategy = FSDP2()
    Precision("bf16", strategy)
    assert (strategy.mp_policy.param_dtype, strategy.mp_policy.reduce_dtype) == (
        torch.bfloat16,
        torch.float32,
    )
    Precision("32", strategy)  # a strategy reused by another trainer forgets the last one's
    assert (strategy.mp_policy.param_dtype, strategy.mp_policy.reduce_dtype) == (None, None)
    explicit = FSDP2(param_dtype="fp32")
    assert isinstance(Precision("fp16", explicit).grad_scaler, ShardedGradScaler)
    assert (explicit.mp_policy.param_dtype, explicit.mp_policy.reduce_dtype) == (
        torch.float32,
        torch.float32,
    )


# -- under FSDP2, two gloo ranks ---------------------------------------------------------------


def _two_rank_precision(rank: int, strategy_name: str, precision: str) -> dict[str, Any]:
    seen = Seen()
    strategy = (
        FSDP2(shard_modules=["Linear"], timeout_s=30)
        if strategy_name == "fsdp2"
        else DDP(timeout_s=30)
    )
    metrics = make_trainer(
        model=seen.model, strategy=strategy, precision=precision, max_steps=4, grad_clip_norm=1.0
    ).fit()
    return {"seen": set(seen.records), "metrics": metrics}


@pytest.mark.distributed
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("strategy", "precision", "expected"),
    [
        ("fsdp2", "bf16", (torch.bfloat16, torch.bfloat16, torch.bfloat16)),  # gathered in bf16
        ("fsdp2", "fp16", (torch.float16, torch.float16, torch.float16)),
        ("ddp", "fp16", (torch.float32, torch.float32, torch.float16)),  # autocast only
        ("fsdp2", "bf16-true", (torch.bfloat16, torch.bfloat16, torch.bfloat16)),  # stored bf16
    ],
)
def test_two_ranks_compute_in_the_precisions_dtype(
    strategy: str, precision: str, expected: tuple[torch.dtype, ...]
) -> None:
    results = run_ranks(_two_rank_precision, strategy, precision, timeout=90)
    for result in results:
        assert result["seen"] == {expected}
        assert result["metrics"]["train/loss"] < 1.2
    assert results[0]["metrics"] == results[1]["metrics"]


def test_a_scaler_state_without_a_usable_scale_is_a_clear_checkpoint_error(tmp_path: Path) -> None:
    _fit_resumable(**_resumable(tmp_path, 5, "fp16"))
    file = tmp_path / "step_000000005" / "trainer_rank0.pt"
    state = torch.load(file, weights_only=True)
    state["grad_scaler"]["scale"] = -1.0
    torch.save(state, file)
    with pytest.raises(CheckpointError, match=r"gradient scaler state has scale=-1\.0"):
        _fit_resumable(**_resumable(tmp_path, 8, "fp16"))

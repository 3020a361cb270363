"""The trainer's ``compile`` option: same losses as the plain model, per-block under FSDP2,
warm-up reported apart, exact resume, and refusals before the first step.

Compiling with inductor on two shared CPU cores takes minutes, so these tests compile with
``aot_eager`` (dynamo traces and AOT autograd splits forward and backward, as with inductor;
only code generation is skipped) or with :func:`recording_backend`, which also counts the graphs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from _dist import run_ranks
from _lm import TP_PLAN, make_lm_trainer
from _training import FinalState, max_difference

from corelib import ConfigError, hookimpl
from plugins.ddp.callbacks import MetricsLogger
from plugins.ddp.strategies.ddp import DDP
from plugins.ddp.strategies.fsdp2 import FSDP2
from plugins.ddp.strategies.fsdp2_tp import FSDP2TP
from plugins.ddp.strategies.single import SingleDevice
from plugins.ddp.strategies.tp import TensorParallel
from plugins.ddp.trainer import Trainer

GRAPHS: list[torch.fx.GraphModule] = []


def recording_backend(graph: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
    """A dynamo backend that runs the captured graph eagerly and remembers it."""
    GRAPHS.append(graph)
    return graph.forward


class Losses:
    """Callback: each step's loss, and which modules were compiled when training started."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.compiled: list[str] = []

    @hookimpl
    def ddp_fit_start(self, trainer: Any) -> None:
        modules = trainer.model.named_modules()
        self.compiled = [name for name, m in modules if m._compiled_call_impl is not None]

    @hookimpl
    def ddp_step_end(self, metrics: dict[str, float]) -> None:
        self.losses.append(metrics["train/loss"])


def _fit(strategy: Any, compile: Any = False, **kwargs: Any) -> tuple[Losses, FinalState]:
    losses, final = Losses(), FinalState()
    callbacks = (losses, final, *kwargs.pop("callbacks", ()))
    kwargs.setdefault("max_steps", 6)
    make_lm_trainer(strategy=strategy, compile=compile, callbacks=callbacks, **kwargs).fit()
    return losses, final


def test_a_compiled_model_trains_like_the_plain_one() -> None:
    GRAPHS.clear()
    plain, plain_final = _fit(SingleDevice())
    compiled, compiled_final = _fit(SingleDevice(), {"backend": recording_backend})
    assert GRAPHS, "the model was not compiled"
    assert compiled.compiled == [""] and plain.compiled == []  # the whole model, in place
    assert compiled.losses == pytest.approx(plain.losses, rel=1e-5)
    assert max_difference(compiled_final.params, plain_final.params) < 1e-5
    assert compiled_final.params.keys() == plain_final.params.keys()  # no "_orig_mod." names


def _fit_ranks(rank: int) -> dict[str, Any]:
    results = {}
    strategies = {
        "ddp": lambda: DDP(timeout_s=30),
        "fsdp2": lambda: FSDP2(timeout_s=30),
        "tp": lambda: TensorParallel(plan=TP_PLAN, timeout_s=30),
        "fsdp2_tp": lambda: FSDP2TP(plan=TP_PLAN, tp_size=2, timeout_s=30),
    }
    for name, strategy in strategies.items():
        plain, _ = _fit(strategy())
        compiled, _ = _fit(strategy(), {"backend": "aot_eager"})
        results[name] = (plain.losses, compiled.losses, compiled.compiled)
    return results


@pytest.mark.distributed
@pytest.mark.timeout(200)
def test_compiled_runs_on_two_ranks_train_like_plain_ones_and_fsdp2_compiles_each_block() -> None:
    for rank_results in run_ranks(_fit_ranks, timeout=180):
        for name, (plain, compiled, _) in rank_results.items():
            assert compiled == pytest.approx(plain, rel=1e-5), name
        assert rank_results["ddp"][2] == ["module"]  # the model inside DistributedDataParallel
        assert rank_results["fsdp2"][2] == ["blocks.0", "blocks.1", "blocks.2", "blocks.3"]
        assert rank_results["tp"][2] == [""]
        assert rank_results["fsdp2_tp"][2] == rank_results["fsdp2"][2]


def test_the_warm_up_is_reported_apart_from_the_steps(tmp_path: Path) -> None:
    logger = MetricsLogger(tmp_path, tensorboard=False)
    trainer = make_lm_trainer(
        strategy=SingleDevice(), compile={"backend": "aot_eager"}, callbacks=(logger,)
    )
    metrics = trainer.fit()
    records = [json.loads(line) for line in logger.path.read_text().splitlines()]
    assert [r["step"] for r in records if "compile/warmup_s" in r] == [1]
    assert records[0]["compile/warmup_s"] == trainer.compile_warmup_s > 0
    assert "compile/warmup_s" not in metrics  # final metrics stay what a resume reproduces


def test_a_compiled_run_resumes_exactly_and_its_checkpoints_load_into_a_plain_run(
    tmp_path: Path,
) -> None:
    options: dict[str, Any] = {"compile": {"backend": "aot_eager"}, "checkpoint_every": 2}
    _, uninterrupted = _fit(SingleDevice(), checkpoint_dir=tmp_path / "a", **options)
    _fit(SingleDevice(), checkpoint_dir=tmp_path / "b", **{**options, "max_steps": 3})
    resumed_losses, resumed = _fit(SingleDevice(), checkpoint_dir=tmp_path / "b", **options)
    assert len(resumed_losses.losses) == 3  # steps 4..6
    assert max_difference(resumed.params, uninterrupted.params) == 0.0
    _, plain = _fit(SingleDevice(), checkpoint_dir=tmp_path / "b", max_steps=7)
    assert plain.params.keys() == uninterrupted.params.keys()


def _resume_rank(rank: int, directory: Path) -> tuple[dict, dict, int]:
    options: dict[str, Any] = {"compile": {"backend": "aot_eager"}, "checkpoint_every": 2}
    _, uninterrupted = _fit(FSDP2(timeout_s=30), checkpoint_dir=directory / "a", **options)
    _fit(FSDP2(timeout_s=30), checkpoint_dir=directory / "b", max_steps=3, **options)
    losses, resumed = _fit(FSDP2(timeout_s=30), checkpoint_dir=directory / "b", **options)
    return uninterrupted.params, resumed.params, len(losses.losses)


@pytest.mark.distributed
@pytest.mark.timeout(150)
def test_a_compiled_fsdp2_run_on_two_ranks_resumes_exactly(tmp_path: Path) -> None:
    for uninterrupted, resumed, steps in run_ranks(_resume_rank, tmp_path, timeout=130):
        assert steps == 3  # steps 4..6
        assert max_difference(resumed, uninterrupted) == 0.0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yes", "compile must be true, false or a mapping of torch.compile's arguments"),
        ({"backnd": "eager"}, "compile has unknown key(s) ['backnd']; expected some of"),
        # inductor's settings name the C++ compiler it runs: never from a config
        (
            {"options": {"cpp.cxx": "/bin/sh"}},
            "compile has unknown key(s) ['options']; expected some of ['backend', 'mode', "
            "'fullgraph', 'dynamic']",
        ),
    ],
)
def test_a_bad_compile_value_is_refused_when_the_trainer_is_built(value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_lm_trainer(strategy=SingleDevice(), compile=value)


def test_a_torch_without_compile_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(torch, "compile")
    with pytest.raises(ConfigError, match=r"compile needs torch.compile \(torch >= 2.0\)"):
        make_lm_trainer(strategy=SingleDevice(), compile=True)


def _refused_before_any_step(trainer: Trainer) -> str:
    losses = Losses()
    trainer.callbacks.append(losses)
    with pytest.raises(ConfigError) as refused:
        trainer.fit()
    assert losses.losses == []
    return str(refused.value)


def test_inductor_on_a_cpu_without_a_cpp_compiler_is_refused_before_training(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from torch._inductor import config

    monkeypatch.setattr(config.cpp, "cxx", ("no-such-compiler++",))
    message = _refused_before_any_step(make_lm_trainer(strategy=SingleDevice(), compile=True))
    assert "compile under SingleDevice on cpu: the inductor backend builds C++" in message
    assert "no C++ compiler was found" in message and "compile.backend: aot_eager" in message


def test_compile_under_the_pipeline_strategy_is_refused_before_training() -> None:
    from plugins.ddp.strategies.pipeline import Pipeline

    trainer = make_lm_trainer(strategy=Pipeline(cuts=[]), compile={"backend": "aot_eager"})
    message = _refused_before_any_step(trainer)
    assert message.startswith("ddp/trainer: compile is not supported under ddp/pipeline")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_corelib_run_compiles_from_a_config_override() -> None:
    command = [
        sys.executable, "-m", "corelib", "run", "ddp/train_single", "+compile.backend=aot_eager",
        "--allow-import", "torch.optim",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=100, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "'step': 5.0" in done.stdout
    bad = subprocess.run(
        [*command, "+compile.backnd=x"], capture_output=True, text=True, env=env, timeout=100
    )
    assert bad.returncode == 2, bad.stderr[-2000:]
    assert "compile has unknown key(s) ['backnd']" in bad.stderr

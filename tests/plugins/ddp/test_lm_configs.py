"""The transformer-LM example configs: checked, built in safe mode, trained on 2 ranks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _dist import run_ranks

from corelib import apply_overrides, check, instantiate, load_config
from plugins.ddp.strategies._tp_plan import TPPlanError

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "transformer_lm"
ALLOW = ("torch.optim",)  # the models, data and loss are registered ddp components
SHORT_RUN = ["max_steps=3", "train_data.n_sequences=64"]
ONE_PROCESS = {"tp.yaml": [], "pipeline.yaml": ["strategy.cuts=[]"]}  # the model stays whole


def _config(name: str, *overrides: str) -> Any:
    return apply_overrides(load_config(EXAMPLES / name), [*SHORT_RUN, *overrides])


@pytest.mark.parametrize("name", ["tp.yaml", "pipeline.yaml", "fsdp2_tp.yaml"])
def test_the_examples_pass_check_in_safe_mode(name: str) -> None:
    assert check(load_config(EXAMPLES / name), allow=ALLOW) == []


def _fit_rank(rank: int, name: str) -> dict[str, float]:
    return instantiate(_config(name), _allow_=ALLOW).fit()


@pytest.mark.distributed
@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(ONE_PROCESS))
def test_the_examples_train_on_two_ranks_like_one_process(name: str) -> None:
    expected = instantiate(_config(name, *ONE_PROCESS[name]), _allow_=ALLOW).fit()
    for metrics in run_ranks(_fit_rank, name, timeout=100):
        assert metrics["step"] == expected["step"] == 3
        assert metrics["train/loss"] == pytest.approx(expected["train/loss"], abs=1e-4)


def test_a_plan_naming_a_missing_module_fails_with_its_name() -> None:
    config = _config("tp.yaml")
    config.strategy.plan = {"blocks.*.attn.qkv": "colwise"}
    with pytest.raises(TPPlanError, match=r"'blocks\.\*\.attn\.qkv' matches no module"):
        instantiate(config, _allow_=ALLOW).fit()

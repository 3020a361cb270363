"""DiVeRSe's step-aware loss: the reference weighting and the per-path one, exactly; and one
label per step in what the verifiers train on."""

from __future__ import annotations

import math

import pytest
import torch

from corelib import check
from plugins.verifiers._data import NO_LABEL, FeatureDataset
from plugins.verifiers._lm_features import PathFeatures
from plugins.verifiers._model import VerifierLoss
from plugins.verifiers.labels import LabeledPath

# One path (label 0) with 2 steps (labels 1, 0) at positions 1 and 3 of 4. Path logit 0 gives a
# loss of ln 2; step logits ln 3 give ln(1 + 1/3) = ln(4/3) for label 1 and ln(1 + 3) = ln 4 for 0.
PATH_LOGITS = torch.tensor([0.0])
STEP_LOGITS = torch.tensor([[9.0, math.log(3), 9.0, math.log(3)]])
TARGETS = (torch.tensor([0.0]), torch.tensor([[NO_LABEL, 1.0, NO_LABEL, 0.0]]))
PATH, STEP_1, STEP_2 = math.log(2), math.log(4 / 3), math.log(4)


def test_the_reference_weighs_each_step_token_by_alpha_in_one_cross_entropy() -> None:
    loss = VerifierLoss(alpha=0.5, step_weighting="reference")
    expected = (PATH + 0.5 * (STEP_1 + STEP_2)) / (1 + 0.5 * 2)
    assert loss((PATH_LOGITS, STEP_LOGITS), TARGETS).item() == pytest.approx(expected, rel=1e-6)


def test_per_path_weighs_the_mean_step_loss_by_alpha() -> None:
    loss = VerifierLoss(alpha=0.5, step_weighting="per_path")
    expected = PATH + 0.5 * (STEP_1 + STEP_2) / 2
    assert loss((PATH_LOGITS, STEP_LOGITS), TARGETS).item() == pytest.approx(expected, rel=1e-6)


def test_the_reference_normalises_over_the_whole_batch() -> None:
    # a second path (label 1, logit 0: ln 2) without steps adds 1 to the weights' sum
    outputs = (torch.tensor([0.0, 0.0]), torch.cat([STEP_LOGITS, torch.zeros(1, 4)]))
    targets = (torch.tensor([0.0, 1.0]), torch.cat([TARGETS[1], torch.full((1, 4), NO_LABEL)]))
    loss = VerifierLoss(alpha=0.5)  # the reference is the default
    expected = (2 * PATH + 0.5 * (STEP_1 + STEP_2)) / (2 + 0.5 * 2)
    assert loss(outputs, targets).item() == pytest.approx(expected, rel=1e-6)


def test_with_alpha_zero_both_are_the_path_loss() -> None:
    for weighting in ("reference", "per_path"):
        loss = VerifierLoss(alpha=0.0, step_weighting=weighting)  # type: ignore[arg-type]
        assert loss((PATH_LOGITS, None), TARGETS).item() == pytest.approx(PATH)


def test_an_unknown_weighting_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"step_weighting must be one of \['reference', 'per_path'\]"
    ):
        VerifierLoss(step_weighting="per_token")  # type: ignore[arg-type]


@pytest.mark.parametrize("target", ["verifiers/step_aware", "verifiers/lm"])
def test_check_refuses_an_unknown_weighting_in_a_config(target: str) -> None:
    extra = {"backbone": "model"} if target == "verifiers/lm" else {}
    assert check({"_target_": target, "step_weighting": "per_path", **extra}) == []
    (problem,) = check({"_target_": target, "step_weighting": "per_token", **extra})
    assert problem.path == "step_weighting"
    assert problem.message == (
        "expected Literal['reference', 'per_path'], got str 'per_token' "
        "(one of 'reference', 'per_path')"
    )


def test_each_step_is_labelled_once_at_its_last_token() -> None:
    # DiVeRSe's reference labels one token per step (the step's end), never every token of it
    example = LabeledPath("q", ("1 + 2 = 3", "3 * 2 = 7"), False, (True, False))
    features = PathFeatures(torch.zeros(6, 2), markers=[2, 5])
    dataset = FeatureDataset([example], [features])
    _, (path_label, step_targets) = dataset[0]
    assert path_label.item() == 0.0
    assert step_targets.tolist() == [NO_LABEL, NO_LABEL, 1.0, NO_LABEL, NO_LABEL, 0.0]

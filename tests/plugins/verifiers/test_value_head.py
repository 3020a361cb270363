"""`verifiers/value_head`: the language model itself, with a value head, fine-tuned as a verifier.

The backbone is a tiny random GPT-2 saved to a temporary directory and loaded through
transformers' own loading code (no download); the fixtures are a few hand-made paths.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

from corelib import instantiate
from plugins.ddp.trainer import Trainer
from plugins.verifiers._data import NO_LABEL, TokenDataset
from plugins.verifiers._model import VerifierLoss
from plugins.verifiers.labels import LabeledPath
from plugins.verifiers.value_head import ValueHeadNet, ValueHeadVerifier
from plugins.verifiers.verifier import StepVerifier

EXAMPLES = [
    LabeledPath("2 + 3 * 2?", ("2 + 3 = 5", "5 * 2 = 10"), True, (True, True)),
    LabeledPath("2 + 3 * 2?", ("2 + 3 = 6", "6 * 2 = 12"), False, (False, False)),
    LabeledPath("4 - 1 + 2?", ("4 - 1 = 3", "3 + 2 = 5"), True, (True, True)),
    LabeledPath("4 - 1 + 2?", ("4 - 1 = 3", "3 + 2 = 6"), False, (True, False)),
]


def trainer(steps: int, lr: float = 3e-3) -> functools.partial[Trainer]:
    optimizer = functools.partial(torch.optim.AdamW, lr=lr)
    return functools.partial(Trainer, optimizer=optimizer, batch_size=4, max_steps=steps, seed=0)


def fine_tune(backbone: Path, steps: int, lr: float = 3e-3) -> ValueHeadVerifier:
    verifier = ValueHeadVerifier(backbone, trainer=trainer(steps, lr), device="cpu", seed=0)
    verifier.fit(EXAMPLES)
    return verifier


def fixture_loss(verifier: ValueHeadVerifier) -> float:
    assert verifier.model is not None and verifier._encoder is not None
    data = TokenDataset(
        EXAMPLES,
        verifier._encoder([ex.question for ex in EXAMPLES], [list(ex.steps) for ex in EXAMPLES]),
    )
    with torch.inference_mode():
        outputs = verifier.model(data.ids)
    return VerifierLoss(verifier.alpha)(outputs, (data.path_labels, data.step_targets)).item()


def test_the_value_head_gives_a_path_logit_per_row_and_a_step_logit_per_token(
    tiny_model_dir: Path,
) -> None:
    from transformers import AutoModelForCausalLM

    net = ValueHeadNet(AutoModelForCausalLM.from_pretrained(tiny_model_dir))
    ids = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 7, -1, -1]])  # the second row is padded
    path_logits, step_logits = net(ids)
    assert path_logits.shape == (2,) and step_logits.shape == (2, 5)
    # the path logit is read at each row's last real token, where the step logits are too
    assert path_logits[1].item() == pytest.approx(net(ids[1:, :3])[0].item(), abs=1e-5)
    assert step_logits[0, 4].item() != step_logits[1, 2].item()


def test_each_step_is_labelled_once_at_its_last_token_after_the_prompt() -> None:
    example = LabeledPath("q", ("a", "b"), False, (True, False))
    dataset = TokenDataset([example], [([7, 8, 1, 2, 3], 2, [0, 2])])  # prompt of 2 tokens
    ids, (path_label, step_targets) = dataset[0]
    assert ids.tolist() == [7, 8, 1, 2, 3] and path_label.item() == 0.0
    assert step_targets.tolist() == [NO_LABEL, NO_LABEL, 1.0, NO_LABEL, 0.0]


@pytest.mark.timeout(300)
def test_fine_tuning_lowers_the_loss_on_a_tiny_fixture(tiny_model_dir: Path) -> None:
    before = fixture_loss(fine_tune(tiny_model_dir, steps=1, lr=0.0))  # as loaded
    after = fixture_loss(fine_tune(tiny_model_dir, steps=30))
    assert after < before - 0.1


@pytest.mark.timeout(300)
def test_it_scores_paths_and_steps_and_survives_a_save(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    verifier = fine_tune(tiny_model_dir, steps=2)
    assert isinstance(verifier, StepVerifier)
    questions, paths = ["2 + 3 * 2?", "4 - 1 + 2?"], ["2 + 3 = 5\n5 * 2 = 10", "4 - 1 = 3"]
    scores = verifier.score(questions, paths)
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)
    assert verifier.score(questions[1:], paths[1:]) == pytest.approx(scores[1:], abs=1e-5)
    steps = verifier.score_steps(questions[0], paths[0])
    assert len(steps) == 2
    loaded = ValueHeadVerifier.load(verifier.save(tmp_path / "verifier"), device="cpu")
    assert loaded.score(questions, paths) == pytest.approx(scores, abs=1e-5)
    assert loaded.score_steps(questions[0], paths[0]) == pytest.approx(steps, abs=1e-5)
    assert sorted(p.name for p in (tmp_path / "verifier").iterdir()) == [
        "backbone",
        "model.pt",
        "verifier.json",
    ]


def test_misuse_is_a_clear_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not trained; call fit"):
        ValueHeadVerifier(tiny_model_dir).score(["q"], ["p"])
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        ValueHeadVerifier(tiny_model_dir, alpha=-1)
    with pytest.raises(ValueError, match="no training examples"):
        ValueHeadVerifier(tiny_model_dir).fit([])
    with pytest.raises(ValueError, match="cannot load a causal language model from"):
        ValueHeadVerifier(tmp_path / "nowhere", trainer=trainer(1)).fit(EXAMPLES)


def test_a_config_builds_it_by_name(tiny_model_dir: Path) -> None:
    built = instantiate(
        {"_target_": "verifiers/value_head", "backbone": str(tiny_model_dir), "alpha": 0.2}
    )
    assert isinstance(built, ValueHeadVerifier) and built.alpha == 0.2

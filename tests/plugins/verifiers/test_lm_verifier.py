"""`verifiers/lm`: a verifier on a frozen language model's token probabilities.

The backbone is a tiny GPT-2 trained here for a few seconds on the gold solutions of the
training problems, so it finds a wrong operation surprising; the verifier learns, from labelled
paths, which surprises mean a wrong path or step.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
import torch
from _verifier_training import labelled, path_scores, step_scores_by_label, trainer

from corelib import instantiate
from plugins.verifiers.lm_verifier import DEFAULT_PROMPT, LMVerifier
from plugins.verifiers.verifier import StepVerifier

SMALL = {"dim": 16, "heads": 2, "layers": 1, "dropout": 0.0, "device": "cpu"}


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory, arithmetic: dict) -> Path:
    """A tiny GPT-2 that has read the training problems' gold solutions (about 10 s)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from plugins.llm.testing import make_tiny_model

    texts = [
        DEFAULT_PROMPT.format(question=item["question"]) + str(item["gold"]) + "\n"
        for item in arithmetic["train"]
    ]
    directory = make_tiny_model(tmp_path_factory.mktemp("lm_backbone"), corpus=texts)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory)
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    longest = max(map(len, encoded))
    ids = torch.full((len(encoded), longest), tokenizer.pad_token_id)
    labels = torch.full((len(encoded), longest), -100)
    for row, tokens in enumerate(encoded):
        ids[row, : len(tokens)] = labels[row, : len(tokens)] = torch.tensor(tokens)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(300):
        batch = torch.randint(len(encoded), (32,), generator=generator)
        loss = model(
            input_ids=ids[batch], attention_mask=labels[batch] != -100, labels=labels[batch]
        ).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def verifier(backbone: Path, arithmetic: dict) -> LMVerifier:
    verifier = LMVerifier(backbone, trainer=trainer(max_steps=150), **SMALL)
    assert verifier.fit(labelled(arithmetic["train"]))["step"] == 150
    return verifier


@pytest.mark.timeout(300)
def test_training_separates_correct_from_wrong_paths(
    verifier: LMVerifier, arithmetic: dict
) -> None:
    scores = path_scores(verifier, arithmetic["test"])
    assert all(0.0 <= s <= 1.0 for s in scores.every)
    assert scores.ranked > 0.9
    assert statistics.mean(scores.right) - statistics.mean(scores.wrong) > 0.3


def test_step_scores_follow_the_step_labels(verifier: LMVerifier, arithmetic: dict) -> None:
    assert isinstance(verifier, StepVerifier)
    good, bad = step_scores_by_label(verifier, arithmetic["test"])
    assert statistics.mean(good) - statistics.mean(bad) > 0.2


def test_scores_do_not_depend_on_the_batch(verifier: LMVerifier) -> None:
    questions = ["Sam has 4, finds 3, then doubles. How many now?"] * 3
    paths = ["4 + 3 = 7\n7 * 2 = 14\nThe answer is 14.", "4 - 3 = 1", ""]
    together = verifier.score(questions, paths)
    alone = [verifier.score([q], [p])[0] for q, p in zip(questions, paths, strict=True)]
    assert together == pytest.approx(alone, abs=1e-5)


def test_save_and_load_round_trip(verifier: LMVerifier, backbone: Path, tmp_path: Path) -> None:
    questions, paths = ["Sam has 2, loses 1, then doubles. How many now?"], ["2 - 1 = 1\n1 * 2 = 2"]
    target = verifier.save(tmp_path / "verifier")
    loaded = LMVerifier.load(target, device="cpu")
    assert loaded.backbone == backbone.resolve()
    assert loaded.score(questions, paths) == pytest.approx(verifier.score(questions, paths))
    assert loaded.score_steps(questions[0], paths[0]) == pytest.approx(
        verifier.score_steps(questions[0], paths[0])
    )
    with pytest.raises(ValueError, match="cannot load a causal language model from"):
        LMVerifier.load(target, backbone=tmp_path / "nowhere", device="cpu").score(["q"], ["p"])


def test_a_path_only_verifier_has_no_step_scores(backbone: Path, arithmetic: dict) -> None:
    verifier = LMVerifier(backbone, alpha=0.0, trainer=trainer(max_steps=2), **SMALL)
    verifier.fit(labelled(arithmetic["train"][:10]))
    assert verifier.model is not None and verifier.model.step_head is None
    with pytest.raises(ValueError, match="alpha=0, it has no step head"):
        verifier.score_steps("q", "1 + 1 = 2")


def test_misuse_is_a_clear_error(backbone: Path) -> None:
    with pytest.raises(RuntimeError, match="not trained; call fit"):
        LMVerifier(backbone).score(["q"], ["p"])
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        LMVerifier(backbone, alpha=-1)
    with pytest.raises(ValueError, match="must contain '\\{question\\}'"):
        LMVerifier(backbone, prompt="Answer:\n")
    with pytest.raises(ValueError, match="no training examples"):
        LMVerifier(backbone).fit([])


def test_a_config_builds_it_by_name(backbone: Path) -> None:
    built = instantiate({"_target_": "verifiers/lm", "backbone": str(backbone), "alpha": 0.2})
    assert isinstance(built, LMVerifier) and built.alpha == 0.2

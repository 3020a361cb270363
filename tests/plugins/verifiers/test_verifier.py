"""The torch verifiers: trained with the ddp Trainer, they separate right from wrong paths."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
import torch
from _verifier_training import labelled, path_scores, step_scores_by_label, trainer

from plugins.verifiers.verifier import PathVerifier, StepAwareVerifier, StepVerifier, Verifier

SMALL = {"dim": 32, "heads": 2, "layers": 2, "dropout": 0.0, "max_length": 64}


@pytest.fixture(scope="module")
def step_aware(arithmetic: dict[str, list[dict[str, object]]]) -> StepAwareVerifier:
    verifier = StepAwareVerifier(trainer=trainer(max_steps=400), seed=0, **SMALL)
    metrics = verifier.fit(labelled(arithmetic["train"]))
    assert metrics["step"] == 400
    return verifier


@pytest.mark.timeout(400)  # includes training the module's verifier (~20 s on an idle machine)
def test_training_separates_correct_from_wrong_paths(
    step_aware: StepAwareVerifier, arithmetic: dict[str, list[dict[str, object]]]
) -> None:
    scores = path_scores(step_aware, arithmetic["test"])
    assert all(0.0 <= s <= 1.0 for s in scores.every)
    assert statistics.mean(scores.right) - statistics.mean(scores.wrong) > 0.4
    assert scores.ranked > 0.9


def test_step_scores_follow_the_step_labels(
    step_aware: StepAwareVerifier, arithmetic: dict[str, list[dict[str, object]]]
) -> None:
    good, bad = step_scores_by_label(step_aware, arithmetic["test"])
    assert statistics.mean(good) - statistics.mean(bad) > 0.2


def test_scores_do_not_depend_on_the_batch(step_aware: StepAwareVerifier) -> None:
    questions = ["Sam has 4, finds 3, then doubles. How many now?"] * 3
    paths = ["4 + 3 = 7\n7 * 2 = 14\nThe answer is 14.", "4 - 3 = 1", "4 + 3 = 7\n7 - 2 = 5"]
    together = step_aware.score(questions, paths)
    alone = [step_aware.score([q], [p])[0] for q, p in zip(questions, paths, strict=True)]
    assert together == pytest.approx(alone, abs=1e-5)


def test_save_and_load_round_trip(step_aware: StepAwareVerifier, tmp_path: Path) -> None:
    questions, paths = ["Sam has 2, loses 1, then doubles. How many now?"], ["2 - 1 = 1\n1 * 2 = 2"]
    target = step_aware.save(tmp_path / "verifier")
    step_aware.save(target)  # replacing an existing directory works
    loaded = StepAwareVerifier.load(target)
    assert loaded.alpha == step_aware.alpha
    assert loaded.score(questions, paths) == pytest.approx(step_aware.score(questions, paths))
    assert loaded.score_steps(questions[0], paths[0]) == pytest.approx(
        step_aware.score_steps(questions[0], paths[0])
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["verifier"]  # no temporary leftovers
    with pytest.raises(ValueError, match="holds a 'StepAwareVerifier'"):
        PathVerifier.load(target)
    with pytest.raises(ValueError, match="cannot read"):
        StepAwareVerifier.load(tmp_path / "missing")
    (target / "model.pt").write_bytes(b"truncated")
    with pytest.raises(ValueError, match=r"cannot load the weights .*model\.pt"):
        StepAwareVerifier.load(target)


def test_path_verifier_trains_without_a_step_head(
    arithmetic: dict[str, list[dict[str, object]]], tmp_path: Path
) -> None:
    verifier = PathVerifier(trainer=trainer(max_steps=3), **SMALL)
    assert verifier.fit(labelled(arithmetic["train"][:20]))["step"] == 3
    assert verifier.model is not None and verifier.model.step_head is None
    assert not hasattr(verifier, "score_steps")
    loaded = PathVerifier.load(verifier.save(tmp_path / "path"))
    assert loaded.score(["q"], ["1 + 1 = 2"]) == pytest.approx(verifier.score(["q"], ["1 + 1 = 2"]))
    assert isinstance(loaded, Verifier) and not isinstance(loaded, StepVerifier)
    assert isinstance(StepAwareVerifier(), StepVerifier)


def test_misuse_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="not trained; call fit"):
        StepAwareVerifier().score(["q"], ["p"])
    with pytest.raises(ValueError, match="alpha must be > 0"):
        StepAwareVerifier(alpha=0.0)
    with pytest.raises(ValueError, match="no training examples"):
        StepAwareVerifier(trainer=trainer(max_steps=1)).fit([])


def test_an_empty_batch_scores_to_an_empty_list(step_aware: StepAwareVerifier) -> None:
    assert step_aware.score([], []) == []
    with pytest.raises(ValueError, match="1 questions but 2 paths"):
        step_aware.score(["q"], ["a", "b"])


def test_a_failed_save_leaves_the_previous_directory(
    step_aware: StepAwareVerifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = step_aware.save(tmp_path / "verifier")
    before = (target / "model.pt").read_bytes()

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        step_aware.save(target)
    assert (target / "model.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["verifier"]


def test_only_rank_zero_saves(
    step_aware: StepAwareVerifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANK", "1")
    assert step_aware.save(tmp_path / "verifier") == tmp_path / "verifier"
    assert not (tmp_path / "verifier").exists()

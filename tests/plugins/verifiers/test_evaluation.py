"""Accuracy at k paths for any aggregator, by random subsamples or by prefixes."""

from __future__ import annotations

import pytest

from plugins.verifiers.evaluation import accuracy_at_k
from plugins.verifiers.voting import BestPath, MajorityVote, VotingVerifier

# question 0: right answer "1" is the majority; question 1: "2" wins only when weighted
ANSWERS = [["1", "1", "9", None], ["8", "8", "2", "2"]]
SCORES = [[0.9, 0.8, 0.1, 0.5], [0.1, 0.1, 0.9, 0.9]]
GOLD = ["1", "2"]


def test_prefix_accuracy_hand_computed() -> None:
    majority = accuracy_at_k(MajorityVote(), ANSWERS, GOLD, ks=[1, 2, 4], sampling="prefix")
    # k=1: "1" right, "8" wrong; k=2 same; k=4: "1" right, tie "8"/"2" -> "8" (first) wrong
    assert majority == {1: 0.5, 2: 0.5, 4: 0.5}
    voting = accuracy_at_k(VotingVerifier(), ANSWERS, GOLD, SCORES, ks=[4], sampling="prefix")
    assert voting == {4: 1.0}
    assert accuracy_at_k(BestPath(), ANSWERS, GOLD, SCORES, ks=[4], sampling="prefix") == {4: 1.0}


def test_random_subsamples_are_seeded_and_drop_ks_beyond_the_paths() -> None:
    first = accuracy_at_k(VotingVerifier(), ANSWERS, GOLD, SCORES, ks=[1, 2, 3, 4, 100], seed=3)
    assert first == accuracy_at_k(
        VotingVerifier(), ANSWERS, GOLD, SCORES, ks=[1, 2, 3, 4, 100], seed=3
    )
    assert sorted(first) == [1, 2, 3, 4]
    assert first[4] == 1.0  # all paths: no randomness left
    assert all(0.0 <= value <= 1.0 for value in first.values())


def test_questions_with_fewer_paths_vote_with_all_they_have() -> None:
    result = accuracy_at_k(MajorityVote(), [["1"], ["2", "2", "3"]], ["1", "2"], ks=[3])
    assert result == {3: 1.0}


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="2 questions but 1 gold"):
        accuracy_at_k(MajorityVote(), ANSWERS, ["1"])
    with pytest.raises(ValueError, match="sampling"):
        accuracy_at_k(MajorityVote(), ANSWERS, GOLD, sampling="first")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no questions"):
        accuracy_at_k(MajorityVote(), [], [])

"""Answer votes on hand-computed cases: ties, abstains (None), all None, scores vs no scores."""

from __future__ import annotations

import pytest

from plugins.verifiers.voting import AnswerVote, BestPath, MajorityVote, VotingVerifier


def test_voting_sums_scores_per_answer() -> None:
    # "5": 0.9 + 0.1 = 1.0; "7": 0.3 + 0.4 + 0.2 = 0.9 -> "5" wins although "7" has more paths
    answers = ["7", "5", "7", "5", "7"]
    scores = [0.3, 0.9, 0.4, 0.1, 0.2]
    assert VotingVerifier().choose(answers, scores) == "5"
    assert MajorityVote().choose(answers, scores) == "7"
    assert BestPath().choose(answers, scores) == "5"


def test_voting_without_scores_is_a_plain_vote() -> None:
    assert VotingVerifier().choose(["3", "4", "4", "3", "4"]) == "4"


@pytest.mark.parametrize("vote", [VotingVerifier(), MajorityVote()])
def test_tie_goes_to_the_answer_whose_first_path_comes_first(vote: AnswerVote) -> None:
    assert vote.choose(["b", "a", "a", "b"]) == "b"
    assert vote.choose([None, "a", "b", "b", "a"]) == "a"


def test_score_tie_goes_to_the_first_answer() -> None:
    # "x": 0.25 + 0.25 = 0.5 == "y": 0.5; "x" appears first
    assert VotingVerifier().choose(["x", "y", "x"], [0.25, 0.5, 0.25]) == "x"
    assert VotingVerifier().choose(["y", "x", "x"], [0.5, 0.25, 0.25]) == "y"
    assert BestPath().choose(["p", "q"], [0.5, 0.5]) == "p"


def test_totals_equal_up_to_rounding_are_ties() -> None:
    # 0.1 + 0.2 is 0.30000000000000004 in floating point: still a tie with 0.3, "B" first
    assert VotingVerifier().choose(["B", "A", "A"], [0.3, 0.1, 0.2]) == "B"
    assert VotingVerifier().choose(["B", "A", "A", "A"], [0.6, 0.1, 0.2, 0.3]) == "B"
    assert VotingVerifier().choose(["B", "A", "A"], [0.3, 0.1, 0.2000001]) == "A"


def test_none_never_wins_unless_every_answer_is_none() -> None:
    answers = [None, None, None, "2"]
    assert VotingVerifier().choose(answers) == "2"
    assert VotingVerifier().choose(answers, [0.9, 0.9, 0.9, 0.05]) == "2"
    assert MajorityVote().choose(answers) == "2"
    assert BestPath().choose(answers, [0.9, 0.9, 0.9, 0.05]) == "2"
    for vote in (VotingVerifier(), MajorityVote()):
        assert vote.choose([None, None]) is None
        assert vote.choose([]) is None
    assert BestPath().choose([None, None], [0.1, 0.2]) is None


def test_zero_scores_still_choose_an_answer() -> None:
    assert VotingVerifier().choose(["1", "2"], [0.0, 0.0]) == "1"


def test_bad_scores_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="2 answers but 1 scores"):
        VotingVerifier().choose(["1", "2"], [0.5])
    with pytest.raises(ValueError, match="finite"):
        VotingVerifier().choose(["1"], [float("nan")])
    with pytest.raises(ValueError, match="needs one verifier score per path"):
        BestPath().choose(["1"])


def test_aggregators_satisfy_the_protocol() -> None:
    for vote in (VotingVerifier(), MajorityVote(), BestPath()):
        assert isinstance(vote, AnswerVote)

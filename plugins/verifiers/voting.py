"""Answer votes over a question's reasoning paths (registry group ``aggregators``).

``answers[i]`` is path i's extracted answer (None: unparseable) and ``scores[i]`` its verifier
score. None never wins unless every answer is None; among tied answers the one whose first path
comes first wins.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Protocol, runtime_checkable

__all__ = ["AnswerVote", "BestPath", "MajorityVote", "VotingVerifier"]


@runtime_checkable
class AnswerVote(Protocol):
    """Chooses one answer from a question's paths."""

    def choose(
        self, answers: Sequence[Hashable | None], scores: Sequence[float] | None = None
    ) -> Hashable | None:
        """The chosen answer, or None when no path has one."""
        ...


def _check_scores(who: str, answers: Sequence[Hashable | None], scores: Sequence[float]) -> None:
    if len(scores) != len(answers):
        raise ValueError(f"{who}: {len(answers)} answers but {len(scores)} scores")
    bad = next((s for s in scores if not math.isfinite(s)), None)
    if bad is not None:
        raise ValueError(f"{who}: scores must be finite numbers, got {bad!r}")


def _weighted_vote(answers: Sequence[Hashable | None], weights: Sequence[float]) -> Hashable | None:
    """The answer with the largest total weight; totals equal up to rounding are ties.

    Ties go to the answer that appears first (``0.1 + 0.2`` ties ``0.3``).
    """
    weights_by_answer: dict[Hashable, list[float]] = {}
    for answer, weight in zip(answers, weights, strict=True):
        if answer is not None:
            weights_by_answer.setdefault(answer, []).append(weight)
    winner, best = None, -math.inf
    for answer, answer_weights in weights_by_answer.items():  # first-occurrence order
        total = math.fsum(answer_weights)
        if total > best and not math.isclose(total, best, rel_tol=1e-9, abs_tol=1e-12):
            winner, best = answer, total
    return winner


class VotingVerifier:
    """DiVeRSe's voting verifier: the answer whose paths' scores sum highest.

    With ``scores=None`` every path weighs 1 (a plain vote).
    """

    def choose(
        self, answers: Sequence[Hashable | None], scores: Sequence[float] | None = None
    ) -> Hashable | None:
        """The answer with the highest summed score (see the module's tie rule)."""
        if scores is None:
            return _weighted_vote(answers, [1.0] * len(answers))
        _check_scores("VotingVerifier", answers, scores)
        return _weighted_vote(answers, scores)

    def __repr__(self) -> str:
        return "VotingVerifier()"


class MajorityVote:
    """Self-consistency: the most frequent answer; scores, if given, are ignored."""

    def choose(
        self, answers: Sequence[Hashable | None], scores: Sequence[float] | None = None
    ) -> Hashable | None:
        """The most frequent answer (see the module's tie rule)."""
        return _weighted_vote(answers, [1.0] * len(answers))

    def __repr__(self) -> str:
        return "MajorityVote()"


class BestPath:
    """The answer of the single highest-scored path that has an answer (first path on ties)."""

    def choose(
        self, answers: Sequence[Hashable | None], scores: Sequence[float] | None = None
    ) -> Hashable | None:
        """The best path's answer; ``scores`` are required."""
        if scores is None:
            raise ValueError("BestPath needs one verifier score per path, got scores=None")
        _check_scores("BestPath", answers, scores)
        winner, best = None, -math.inf
        for answer, score in zip(answers, scores, strict=True):
            if answer is not None and score > best:
                winner, best = answer, score
        return winner

    def __repr__(self) -> str:
        return "BestPath()"

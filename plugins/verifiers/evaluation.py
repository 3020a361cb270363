"""Accuracy of an answer vote as a function of how many paths it sees.

As DiVeRSe's reference code logs it (``compute_results_avg``): for k paths, each question's
vote sees k of its paths drawn at random without replacement, and the accuracy is averaged over
``repeats`` seeded draws. ``sampling="prefix"`` instead takes each question's first k paths
(deterministic; the paths of the first prompts only, so it mixes fewer exemplar sets).
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from typing import Literal

from plugins.verifiers.voting import AnswerVote

__all__ = ["DEFAULT_KS", "accuracy_at_k"]

DEFAULT_KS: tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100)


def accuracy_at_k(
    aggregator: AnswerVote,
    answers: Sequence[Sequence[Hashable | None]],
    gold: Sequence[Hashable],
    scores: Sequence[Sequence[float]] | None = None,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    sampling: Literal["random", "prefix"] = "random",
    repeats: int = 10,
    seed: int = 0,
) -> dict[int, float]:
    """Accuracy of ``aggregator`` with k paths per question, for each k in ``ks``.

    ``answers[q]`` (and ``scores[q]``) hold question q's paths; ``gold[q]`` its answer. A k
    larger than every question's path count is left out of the result; a question with fewer
    than k paths votes with all of them. A question whose vote is None counts as wrong.
    """
    if len(answers) != len(gold):
        raise ValueError(f"accuracy_at_k: {len(answers)} questions but {len(gold)} gold answers")
    if scores is not None and len(scores) != len(answers):
        raise ValueError(f"accuracy_at_k: {len(answers)} questions but {len(scores)} score lists")
    if sampling not in ("random", "prefix"):
        raise ValueError(f"accuracy_at_k: sampling must be 'random' or 'prefix', got {sampling!r}")
    if not answers:
        raise ValueError("accuracy_at_k: no questions")
    if repeats < 1 or any(k < 1 for k in ks):
        raise ValueError(f"accuracy_at_k: repeats and ks must be >= 1, got {repeats}, {ks}")
    most = max(len(a) for a in answers)
    rng = random.Random(seed)
    result = {}
    for k in sorted(set(ks)):
        if k > most:
            continue
        draws = 1 if sampling == "prefix" else repeats
        hits = 0
        for _ in range(draws):
            for q, (paths, truth) in enumerate(zip(answers, gold, strict=True)):
                chosen = _subset(len(paths), k, sampling, rng)
                path_scores = None if scores is None else [scores[q][i] for i in chosen]
                vote = aggregator.choose([paths[i] for i in chosen], path_scores)
                hits += vote is not None and vote == truth
        result[k] = hits / (draws * len(answers))
    return result


def _subset(n: int, k: int, sampling: str, rng: random.Random) -> list[int]:
    if k >= n:
        return list(range(n))
    if sampling == "prefix":
        return list(range(k))
    return sorted(rng.sample(range(n), k))

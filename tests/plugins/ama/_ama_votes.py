"""Small generative models of votes for the label-model tests (independent of the benchmark)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def votes_from(
    rng: np.random.Generator,
    n: int,
    accuracy: Sequence[float],
    *,
    prior: Sequence[float] = (0.5, 0.5),
    abstain: float = 0.0,
    copies: Sequence[int] = (),
    copy_rate: float = 0.0,
    shared_accuracy: float = 0.6,
) -> tuple[np.ndarray, np.ndarray]:
    """Votes (n, m) and labels (n,): voter j is right with probability accuracy[j] (else a
    uniformly drawn wrong class); voters in `copies` instead repeat one shared noisy vote with
    probability `copy_rate`; every vote is dropped (-1) with probability `abstain`."""
    k, m = len(prior), len(accuracy)
    y = rng.choice(k, size=n, p=prior)

    def noisy(acc: np.ndarray | float, shape: tuple[int, int]) -> np.ndarray:
        wrong = (y[:, None] + rng.integers(1, k, size=shape)) % k
        return np.where(rng.random(shape) < acc, y[:, None], wrong)

    votes = noisy(np.asarray(accuracy), (n, m))
    if copies:
        shared = noisy(shared_accuracy, (n, 1))
        cols = list(copies)
        votes[:, cols] = np.where(rng.random((n, len(cols))) < copy_rate, shared, votes[:, cols])
    votes[rng.random((n, m)) < abstain] = -1
    return votes, y

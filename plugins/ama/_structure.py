"""Dependencies between voters, learned from the votes alone.

If voters are independent given the latent class y, the covariance between the outcome
indicators of two different voters is exactly `M_i^T (diag(pi) - pi pi^T) M_j`, with M_i the
voter's (k, k+1) table P(outcome | y) (abstain is an outcome). Across all voters the
off-diagonal blocks therefore form one positive semi-definite matrix of rank k-1. A pair of
voters that shares errors adds to its block what the class cannot explain.

We fit the rank k-1 part to the off-diagonal blocks only (diagonal blocks are imputed) and
score each pair by its standardised residual: a residual is a dependency when it is both
statistically significant (a Pearson chi-square, Bonferroni over pairs) and large
(`min_strength`, on a correlation scale).

Second moments cannot say on their own *which* pairs are dependent: three voters copying one
noisy vote plus two good voters fit as well as "the class is the copied vote, and the two good
voters depend on each other", with fewer dependencies. The residuals of a least-squares fit
point at the good pair. So, while significant residuals remain, we set aside the most similar
pair not yet set aside (largest standardised covariance: near-copies first) and refit without
it; at the end, the set-aside pairs whose residual is significant under the last fit are the
dependencies. Abstains count as outcomes, so a voter whose silence depends on the class keeps
that signal.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import chi2

from plugins.ama._em import cells
from plugins.ama._votes import Patterns

_FIT_ITERATIONS = 200
_FIT_TOLERANCE = 1e-7


def find_dependencies(
    patterns: Patterns,
    cardinality: int,
    *,
    min_strength: float,
    alpha: float,
    max_pairs: int,
) -> list[tuple[int, int, float]]:
    """Dependent voter pairs `(i, j, strength)`, strongest first, at most `max_pairs`."""
    n_voters = patterns.rows.shape[1]
    standardised, owner, dof = _standardised_covariance(patterns, cardinality)
    if len(np.unique(owner)) < 3:  # voters that never change say nothing about dependencies
        return []
    similarity = _pair_strength(standardised, owner, n_voters)
    n_pairs = n_voters * (n_voters - 1) // 2
    chi2_cut = chi2.isf(alpha / n_pairs, np.maximum(np.outer(dof, dof), 1)) / patterns.counts.sum()
    off_diagonal = ~np.eye(n_voters, dtype=bool)
    set_aside = np.zeros((n_voters, n_voters), dtype=bool)
    while True:
        strength = _pair_strength(
            standardised - _fit_low_rank(standardised, owner, set_aside, cardinality - 1),
            owner,
            n_voters,
        )
        dependent = (strength >= min_strength) & (strength**2 >= chi2_cut) & off_diagonal
        if not (dependent & ~set_aside).any() or set_aside.sum() >= 2 * max_pairs:
            break
        candidates = np.where(set_aside | ~off_diagonal, -np.inf, similarity)
        i, j = np.unravel_index(np.argmax(candidates), candidates.shape)
        set_aside[i, j] = set_aside[j, i] = True
    pairs = [
        (int(i), int(j), float(strength[i, j]))
        for i, j in np.argwhere(np.triu(dependent & set_aside))
    ]
    return sorted(pairs, key=lambda pair: -pair[2])[:max_pairs]


def _standardised_covariance(
    patterns: Patterns, cardinality: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covariance of outcome indicators, scaled by sqrt(p_a p_b); which voter owns each column;
    each voter's degrees of freedom (outcomes seen, less one)."""
    weights = patterns.counts / patterns.counts.sum()
    n_voters = patterns.rows.shape[1]
    singletons = tuple((voter,) for voter in range(n_voters))
    indicators = cells(patterns.rows, singletons, cardinality)  # column: voter * (k+1) + outcome
    mean = weights @ indicators
    seen = np.flatnonzero((mean > 0) & (mean < 1))
    indicators, mean = indicators[:, seen], mean[seen]
    owner = seen // (cardinality + 1)
    second = (indicators.T @ indicators.multiply(weights[:, None])).toarray()
    scale = np.sqrt(mean)
    dof = np.bincount(owner, minlength=n_voters) - 1
    return (second - np.outer(mean, mean)) / np.outer(scale, scale), owner, dof


def _fit_low_rank(
    matrix: np.ndarray, owner: np.ndarray, set_aside: np.ndarray, rank: int
) -> np.ndarray:
    """PSD rank-`rank` fit to the entries outside diagonal blocks and set-aside pairs (hidden
    entries are imputed from the fit, then refitted, until the fit settles)."""
    hidden = (owner[:, None] == owner[None, :]) | set_aside[np.ix_(owner, owner)]
    estimate = np.zeros_like(matrix)
    for _ in range(_FIT_ITERATIONS):
        values, vectors = np.linalg.eigh(np.where(hidden, estimate, matrix))
        top = np.clip(values[-rank:], 0.0, None)
        previous, estimate = estimate, (vectors[:, -rank:] * top) @ vectors[:, -rank:].T
        if np.abs(estimate - previous).max() < _FIT_TOLERANCE:
            break
    return estimate


def _pair_strength(residual: np.ndarray, owner: np.ndarray, n_voters: int) -> np.ndarray:
    """Per voter pair, the root of its block's summed squared residuals (correlation scale;
    times the number of items, the square is a Pearson chi-square statistic)."""
    blocks = np.zeros((n_voters, n_voters))
    np.add.at(blocks, (owner[:, None], owner[None, :]), residual**2)
    return np.sqrt(blocks)

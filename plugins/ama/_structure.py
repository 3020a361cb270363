"""Dependencies between voters, learned from the votes alone.

If voters are independent given the latent class y, the covariance between the outcome
indicators of two different voters is exactly `M_i^T (diag(pi) - pi pi^T) M_j`, with M_i the
voter's (k, k+1) table P(outcome | y) (abstain is an outcome). Across all voters the
off-diagonal blocks therefore form one positive semi-definite matrix of rank k-1. A pair of
voters that shares errors adds to its block what the class cannot explain.

We fit the rank k-1 part to the off-diagonal blocks only (diagonal blocks are imputed), score
each pair by its standardised residual, and greedily set aside the worst pair, refitting each
time, so that a clique cannot bend the fit that judges it. A pair is a dependency when its
residual is both statistically significant (chi-square, Bonferroni over pairs) and large
(`min_strength`, on a correlation scale). Abstains count as outcomes, so a voter whose silence
depends on the class keeps that signal.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import chi2

from plugins.ama._votes import Patterns

_FIT_ITERATIONS = 100


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
    if n_voters < 3 or cardinality < 2:
        return []
    standardised, owner, dof = _standardised_covariance(patterns, cardinality)
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
    rows, weights = patterns.rows, patterns.counts / patterns.counts.sum()
    n_voters = rows.shape[1]
    outcomes = cardinality + 1
    columns = (rows + 1 + outcomes * np.arange(n_voters)).ravel()
    flat_rows = np.repeat(np.arange(len(rows)), n_voters)
    indicators = np.zeros((len(rows), n_voters * outcomes))
    indicators[flat_rows, columns] = 1.0
    mean = weights @ indicators
    seen = (mean > 0) & (mean < 1)
    indicators, mean = indicators[:, seen], mean[seen]
    owner = np.repeat(np.arange(n_voters), outcomes)[seen]
    covariance = (indicators * weights[:, None]).T @ indicators - np.outer(mean, mean)
    scale = np.sqrt(mean)
    dof = np.bincount(owner, minlength=n_voters) - 1
    return covariance / np.outer(scale, scale), owner, dof


def _fit_low_rank(
    matrix: np.ndarray, owner: np.ndarray, set_aside: np.ndarray, rank: int
) -> np.ndarray:
    """PSD rank-`rank` fit to the entries outside diagonal blocks and set-aside pairs."""
    hidden = (owner[:, None] == owner[None, :]) | set_aside[np.ix_(owner, owner)]
    estimate = np.zeros_like(matrix)
    for _ in range(_FIT_ITERATIONS):
        filled = np.where(hidden, estimate, matrix)
        values, vectors = np.linalg.eigh(filled)
        top = np.clip(values[-rank:], 0.0, None)
        estimate = (vectors[:, -rank:] * top) @ vectors[:, -rank:].T
    return estimate


def _pair_strength(residual: np.ndarray, owner: np.ndarray, n_voters: int) -> np.ndarray:
    """Root mean square of each voter pair's residual block... summed, on a correlation scale."""
    blocks = np.zeros((n_voters, n_voters))
    np.add.at(blocks, (owner[:, None], owner[None, :]), residual**2)
    return np.sqrt(blocks)

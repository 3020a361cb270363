"""Items in order (video frames): the class follows a Markov chain, votes depend on its state.

A hidden Markov model whose hidden state is the class and whose emission, given the class, is
the grouped model of `plugins.ama._em` (one free joint table per dependency group). Baum-Welch
learns the transition matrix and the tables together; the class of each item is its marginal
posterior given the whole sequence (forward-backward), which is what maximises the expected
number of right labels under the model.

With ordered items the dependency groups are chosen by likelihood on held-out time: starting
from independent voters, we greedily merge the two groups whose merge most raises the
log-likelihood of each half of the items under a model fitted on the other half, and stop
when no merge raises it. On real video votes the second-moment test of
`plugins.ama._structure` (which assumes independent items) picks other groups.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import attrs
import numpy as np
from scipy.optimize import linear_sum_assignment

from plugins.ama._em import Groups, cells, offsets, run_em
from plugins.ama._votes import compress

_START_STAY = 0.9  # initial probability that the class stays the same from one item to the next


@attrs.frozen
class ChainFit:
    """A fitted chain: start distribution, transition matrix, the groups' tables, likelihood."""

    start: np.ndarray  # (k,)
    transition: np.ndarray  # (k, k), rows sum to 1
    table: np.ndarray  # (k, cells), as in `plugins.ama._em.Fit`
    log_likelihood: float  # mean per item

    def permuted(self, order: np.ndarray) -> ChainFit:
        """The same model with latent class `order[c]` renamed c."""
        return ChainFit(
            self.start[order],
            self.transition[np.ix_(order, order)],
            self.table[order],
            self.log_likelihood,
        )


def check_lengths(lengths: Sequence[int] | None, n_items: int, *, where: str) -> list[int]:
    """The lengths of the sequences the rows form (one sequence when None), or ValueError."""
    if lengths is None:
        return [n_items]
    out = [int(length) for length in lengths]
    if not out or min(out) < 1 or sum(out) != n_items:
        raise ValueError(
            f"{where}: lengths must be positive and sum to the number of rows ({n_items}), "
            f"got {list(lengths)!r}"
        )
    return out


def forward_backward(
    log_emission: np.ndarray, transition: np.ndarray, start: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Scaled forward-backward over one sequence: P(class | all items) (T, k), the expected
    transition counts (k, k), and the total log-likelihood."""
    top = log_emission.max(axis=1, keepdims=True)
    emission = np.exp(log_emission - top)
    n, k = emission.shape
    alpha, scale = np.empty((n, k)), np.empty(n)
    step = start * emission[0]
    scale[0] = step.sum()
    alpha[0] = step / scale[0]
    for t in range(1, n):
        step = (alpha[t - 1] @ transition) * emission[t]
        scale[t] = step.sum()
        alpha[t] = step / scale[t]
    beta = np.empty((n, k))
    beta[-1] = 1.0
    for t in range(n - 2, -1, -1):
        beta[t] = transition @ (emission[t + 1] * beta[t + 1]) / scale[t + 1]
    occupancy = alpha * beta
    counts = transition * (alpha[:-1].T @ (emission[1:] * beta[1:] / scale[1:, None]))
    return occupancy, counts, float(np.log(scale).sum() + top.sum())


def fit_chain(
    votes: np.ndarray,
    lengths: list[int],
    groups: Groups,
    cardinality: int,
    *,
    smoothing: float,
    max_iter: int,
    tol: float,
) -> ChainFit:
    """Baum-Welch from the grouped model fitted by EM as if the items were independent."""
    k = cardinality
    patterns = compress(votes, k)
    row_cells = cells(patterns.rows, groups, k)
    independent = run_em(
        row_cells,
        patterns.counts,
        _vote_share(patterns.rows, k),
        groups,
        k,
        class_balance=None,
        smoothing=smoothing,
        max_iter=max_iter,
        tol=tol,
    )
    starts = offsets(groups, k)
    sizes = np.diff(starts)
    group_of_cell = np.repeat(np.arange(len(groups)), sizes)
    prior_counts = (smoothing / sizes)[group_of_cell]
    # Per item, which pattern it shows; the emission is computed once per pattern.
    item_cells = row_cells[patterns.inverse]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    table, start = independent.table, independent.prior
    transition = np.full((k, k), (1.0 - _START_STAY) / (k - 1)) + np.eye(k) * (
        _START_STAY - (1.0 - _START_STAY) / (k - 1)
    )
    previous = -np.inf
    for _ in range(max_iter):
        log_emission = (row_cells @ np.log(table).T)[patterns.inverse]
        occupancy, counts, total = _over_sequences(log_emission, bounds, transition, start)
        tally = (item_cells.T @ occupancy).T + prior_counts
        table = tally / np.add.reduceat(tally, starts[:-1], axis=1)[:, group_of_cell]
        transition = counts / counts.sum(axis=1, keepdims=True)
        firsts = occupancy[bounds[:-1]].mean(axis=0)
        start = 0.96 * firsts + 0.04 / k
        likelihood = total / len(votes)
        if likelihood - previous < tol:
            break
        previous = likelihood
    fit = ChainFit(start, transition, table, likelihood)
    # Name the classes by agreement with the vote shares (Baum-Welch is blind to names).
    agreement = occupancy.T @ _vote_share(votes, k)
    _, order = linear_sum_assignment(-agreement.T)
    return fit.permuted(order)


def chain_posterior(
    votes: np.ndarray, lengths: list[int], fit: ChainFit, groups: Groups, cardinality: int
) -> tuple[np.ndarray, float]:
    """P(class | the item's whole sequence) for each row, and the mean log-likelihood."""
    patterns = compress(votes, cardinality)
    row_cells = cells(patterns.rows, groups, cardinality)
    log_emission = (row_cells @ np.log(fit.table).T)[patterns.inverse]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    occupancy, _, total = _over_sequences(log_emission, bounds, fit.transition, fit.start)
    return occupancy / occupancy.sum(axis=1, keepdims=True), total / len(votes)


def search_groups(
    votes: np.ndarray,
    lengths: list[int],
    cardinality: int,
    *,
    max_group_size: int,
    smoothing: float,
    max_iter: int,
    tol: float,
) -> tuple[Groups, float]:
    """Greedy merges of voter groups by two-fold held-out log-likelihood (first half of the
    items against the second); returns the groups and their held-out score (mean per item)."""
    n_voters = votes.shape[1]
    groups: list[tuple[int, ...]] = [(voter,) for voter in range(n_voters)]

    def score(candidate: list[tuple[int, ...]]) -> float:
        return _held_out(votes, lengths, _sorted(candidate), cardinality, smoothing, max_iter, tol)

    best = score(groups)
    while True:
        candidates = []
        for a, b in itertools.combinations(range(len(groups)), 2):
            if len(groups[a]) + len(groups[b]) > max_group_size:
                continue
            rest = [group for i, group in enumerate(groups) if i not in (a, b)]
            merged = [*rest, tuple(sorted(groups[a] + groups[b]))]
            candidates.append((score(merged), merged))
        if not candidates:
            break
        value, merged = max(candidates, key=lambda candidate: candidate[0])  # earliest on ties
        if value <= best:
            break
        best, groups = value, merged
    return _sorted(groups), best


def _held_out(
    votes: np.ndarray,
    lengths: list[int],
    groups: Groups,
    cardinality: int,
    smoothing: float,
    max_iter: int,
    tol: float,
) -> float:
    """Mean log-likelihood of each half of the items under a chain fitted on the other half."""
    n = len(votes)
    halves = np.array_split(np.arange(n), 2)
    total = 0.0
    for held in halves:
        kept = np.ones(n, dtype=bool)
        kept[held] = False
        train_votes, train_lengths = _cut(votes, lengths, kept)
        test_votes, test_lengths = _cut(votes, lengths, ~kept)
        fit = fit_chain(
            train_votes,
            train_lengths,
            groups,
            cardinality,
            smoothing=smoothing,
            max_iter=max_iter,
            tol=tol,
        )
        total += chain_posterior(test_votes, test_lengths, fit, groups, cardinality)[1] * len(held)
    return total / n


def _cut(votes: np.ndarray, lengths: list[int], keep: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """The kept rows, as sequences split at the original boundaries and at removed rows."""
    sequence = np.repeat(np.arange(len(lengths)), lengths)
    index = np.flatnonzero(keep)
    breaks = np.flatnonzero((np.diff(index) > 1) | (np.diff(sequence[index]) != 0)) + 1
    return votes[index], np.diff(np.concatenate([[0], breaks, [len(index)]])).tolist()


def _over_sequences(
    log_emission: np.ndarray, bounds: np.ndarray, transition: np.ndarray, start: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    occupancy = np.empty_like(log_emission)
    counts = np.zeros_like(transition)
    total = 0.0
    for lo, hi in itertools.pairwise(bounds):
        occupancy[lo:hi], part, ll = forward_backward(log_emission[lo:hi], transition, start)
        counts += part
        total += ll
    return occupancy, counts, total


def _vote_share(rows: np.ndarray, cardinality: int) -> np.ndarray:
    tally = np.full((len(rows), cardinality), 0.1)
    for c in range(cardinality):
        tally[:, c] += (rows == c).sum(axis=1)
    return tally / tally.sum(axis=1, keepdims=True)


def _sorted(groups: list[tuple[int, ...]]) -> Groups:
    return tuple(sorted(tuple(sorted(group)) for group in groups))

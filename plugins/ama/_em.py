"""Class-conditional EM over groups of voters (Dawid-Skene with one joint factor per group).

Given the latent class y, groups are independent; inside a group the voters' joint outcome
(abstain included, as a symbol of its own) has a free table P(outcome | y). A group of one is a
plain Dawid-Skene confusion row; a larger group captures errors its voters share. All groups'
tables sit side by side in one (k, cells) array, so each EM step is a few vectorised calls.
"""

from __future__ import annotations

import functools

import attrs
import numpy as np
from scipy import sparse

Groups = tuple[tuple[int, ...], ...]


@attrs.frozen
class Fit:
    """A fitted model: class prior, the groups' tables side by side, and the log-likelihood."""

    prior: np.ndarray  # (k,)
    table: np.ndarray  # (k, cells): each group's block of columns sums to 1 per class
    log_likelihood: float  # mean per item

    def permuted(self, order: np.ndarray) -> Fit:
        """The same model with latent class `order[c]` renamed c."""
        return Fit(self.prior[order], self.table[order], self.log_likelihood)


def offsets(groups: Groups, cardinality: int) -> np.ndarray:
    """Where each group's block of cells starts, and (last entry) the total number of cells."""
    sizes = [(cardinality + 1) ** len(group) for group in groups]
    return np.concatenate([[0], np.cumsum(sizes)])


def cells(rows: np.ndarray, groups: Groups, cardinality: int) -> sparse.csr_matrix:
    """(rows, cells) indicator matrix: one 1 per group, at the cell of the row's joint outcome."""
    base = cardinality + 1
    starts = offsets(groups, cardinality)
    index = np.empty((len(rows), len(groups)), dtype=np.int64)
    for g, group in enumerate(groups):
        weights = base ** np.arange(len(group), dtype=np.int64)
        index[:, g] = starts[g] + (rows[:, list(group)] + 1) @ weights
    indptr = np.arange(0, index.size + 1, len(groups))
    return sparse.csr_matrix(
        (np.ones(index.size), index.ravel(), indptr), shape=(len(rows), starts[-1])
    )


def log_joint(row_cells: sparse.csr_matrix, prior: np.ndarray, table: np.ndarray) -> np.ndarray:
    """log P(y, row) for every row and class: shape (rows, k)."""
    return row_cells @ np.log(table).T + np.log(prior)


def posterior(log_joint_rows: np.ndarray) -> np.ndarray:
    """Normalise log P(y, row) into P(y | row)."""
    return np.exp(log_joint_rows - _log_sum_exp(log_joint_rows)[:, None])


def run_em(
    row_cells: sparse.csr_matrix,
    counts: np.ndarray,
    start: np.ndarray,
    groups: Groups,
    cardinality: int,
    *,
    class_balance: np.ndarray | None,
    smoothing: float,
    max_iter: int,
    tol: float,
) -> Fit:
    """EM from the soft labels `start` (rows, k) until the mean log-likelihood gains < `tol`.

    `smoothing` pseudo-counts are spread evenly over each group's cells (a Dirichlet prior).
    """
    starts = offsets(groups, cardinality)
    sizes = np.diff(starts)
    group_of_cell = np.repeat(np.arange(len(groups)), sizes)
    prior_counts = (smoothing / sizes)[group_of_cell]
    by_cell = row_cells.T.tocsr()
    total = counts.sum()
    resp, previous = start, -np.inf
    for _ in range(max_iter):
        weighted = resp * counts[:, None]
        prior = class_balance if class_balance is not None else _normalise(weighted.sum(0) + 1.0)
        tally = (by_cell @ weighted).T + prior_counts
        table = tally / np.add.reduceat(tally, starts[:-1], axis=1)[:, group_of_cell]
        joint = log_joint(row_cells, prior, table)
        norm = _log_sum_exp(joint)
        resp = np.exp(joint - norm[:, None])
        likelihood = float(counts @ norm) / total
        if likelihood - previous < tol:
            break
        previous = likelihood
    return Fit(prior, table, likelihood)


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / x.sum(axis=-1, keepdims=True)


def _log_sum_exp(x: np.ndarray) -> np.ndarray:
    """log(sum(exp(x), axis=1)), stable. With few columns (classes), reducing column by column
    is several times faster than numpy's row-wise reductions."""
    top = functools.reduce(np.maximum, x.T)
    return top + np.log(functools.reduce(np.add, np.exp(x - top[:, None]).T))

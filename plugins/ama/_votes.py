"""Vote matrices: validation, compression to distinct rows, and seeded tie breaking."""

from __future__ import annotations

from typing import Literal, get_args

import attrs
import numpy as np

ABSTAIN = -1
TieBreak = Literal["random", "first"]


def check_settings(cardinality: object, tie_break: object, *, where: str) -> None:
    """Raise ValueError unless `cardinality` is an int >= 2 and `tie_break` a known policy."""
    if type(cardinality) is not int or cardinality < 2:
        raise ValueError(f"{where}: cardinality must be an int >= 2, got {cardinality!r}")
    if tie_break not in get_args(TieBreak):
        raise ValueError(
            f"{where}: tie_break must be one of {', '.join(map(repr, get_args(TieBreak)))}, "
            f"got {tie_break!r}"
        )


def check_votes(
    votes: object, cardinality: int, *, n_voters: int | None = None, where: str = "votes"
) -> np.ndarray:
    """Return `votes` as a 2-D int64 array, or raise ValueError saying what is wrong.

    Votes are ints in -1..cardinality-1 (-1 abstains); `n_voters` is the number of columns the
    model was fitted on.
    """
    array = np.asarray(votes)
    if array.ndim != 2:
        raise ValueError(
            f"{where}: expected a 2-D (items, voters) matrix, got an array of shape {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{where}: the vote matrix is empty (shape {array.shape})")
    integral = array.dtype.kind in "iub" or (
        array.dtype.kind == "f" and bool(np.all(np.isfinite(array) & (array == np.round(array))))
    )
    if not integral:
        raise ValueError(f"{where}: votes must be integers, got dtype {array.dtype}")
    array = array.astype(np.int64, copy=False)
    bad = (array < ABSTAIN) | (array >= cardinality)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"{where}: vote {array[row, col]} at row {row}, voter {col} is outside "
            f"-1..{cardinality - 1} (-1 abstains, classes are 0..{cardinality - 1})"
        )
    if n_voters is not None and array.shape[1] != n_voters:
        raise ValueError(
            f"{where}: the model was fitted on {n_voters} voters, got {array.shape[1]} columns"
        )
    return array


@attrs.frozen
class Patterns:
    """The distinct rows of a vote matrix: `rows[inverse]` rebuilds it, `counts` weighs each."""

    rows: np.ndarray  # (u, m) int64
    counts: np.ndarray  # (u,) float64
    inverse: np.ndarray  # (n,) int64


def compress(votes: np.ndarray, cardinality: int) -> Patterns:
    """Collapse identical rows, so that fitting costs grow with distinct patterns, not items."""
    n_voters = votes.shape[1]
    base = cardinality + 1
    if n_voters * np.log2(base) >= 62:  # a row's code would overflow int64: sort the rows
        rows, inverse, counts = np.unique(votes, axis=0, return_inverse=True, return_counts=True)
        return Patterns(rows, counts.astype(np.float64), inverse.reshape(-1))
    powers = base ** np.arange(n_voters, dtype=np.int64)
    codes = (votes + 1) @ powers
    if base**n_voters > min(2**24, 8 * len(votes)):  # many possible rows: sort the codes
        _, first, inverse, counts = np.unique(
            codes, return_index=True, return_inverse=True, return_counts=True
        )
        return Patterns(votes[first], counts.astype(np.float64), inverse.reshape(-1))
    # Few possible rows: count the codes densely, O(n).
    tally = np.bincount(codes, minlength=base**n_voters)
    present = np.flatnonzero(tally)
    rank = np.cumsum(tally > 0) - 1
    rows = (present[:, None] // powers) % base - 1
    return Patterns(rows, tally[present].astype(np.float64), rank[codes])


def break_ties(proba: np.ndarray, policy: TieBreak, seed: int) -> np.ndarray:
    """Argmax per row; rows whose maximum is shared pick among the tied classes by `policy`.

    "first" takes the lowest tied class; "random" draws uniformly among the tied classes with a
    generator seeded by `seed`, so the same input always gives the same labels.
    """
    best = proba.max(axis=1, keepdims=True)
    tied = proba >= best - 1e-9 * np.maximum(best, 1.0)
    if policy == "first":
        return tied.argmax(axis=1)
    keys = np.random.default_rng(seed).random(proba.shape)
    return np.where(tied, keys, -1.0).argmax(axis=1)


def check_class_balance(class_balance: object, cardinality: int, *, where: str) -> np.ndarray:
    """Return a known class prior as k positive probabilities summing to 1, or raise ValueError."""
    balance = np.asarray(class_balance, dtype=np.float64)
    if balance.shape != (cardinality,) or not np.all(np.isfinite(balance) & (balance > 0)):
        raise ValueError(
            f"{where}: class_balance must be {cardinality} positive numbers, got {class_balance!r}"
        )
    return balance / balance.sum()

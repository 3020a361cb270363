"""`ama/majority`: plain majority vote with the label-model interface (the baseline)."""

from __future__ import annotations

import numpy as np

from plugins.ama._votes import (
    TieBreak,
    break_ties,
    check_class_balance,
    check_settings,
    check_votes,
)


class MajorityVote:
    """Each non-abstaining voter counts once; probabilities are the vote shares.

    A row where every voter abstains gets the class balance given to `fit` (uniform if none).

    Args:
        cardinality: number of classes k; votes are 0..k-1, -1 abstains.
        seed: seeds the "random" tie break.
        tie_break: "random" (seeded, uniform among tied classes) or "first" (lowest class).
    """

    def __init__(self, cardinality: int = 2, *, seed: int = 0, tie_break: TieBreak = "random"):
        check_settings(cardinality, tie_break, where="MajorityVote")
        self.cardinality = cardinality
        self.seed = seed
        self.tie_break = tie_break
        self.n_voters_: int | None = None

    def fit(self, votes: np.ndarray, *, class_balance: np.ndarray | None = None) -> MajorityVote:
        """Record the number of voters and the class balance used for all-abstain rows."""
        self.n_voters_ = check_votes(votes, self.cardinality, where="MajorityVote.fit").shape[1]
        if class_balance is None:
            self.class_balance_ = np.full(self.cardinality, 1.0 / self.cardinality)
        else:
            self.class_balance_ = check_class_balance(
                class_balance, self.cardinality, where="MajorityVote.fit"
            )
        return self

    def predict_proba(self, votes: np.ndarray) -> np.ndarray:
        """Vote shares per row: shape (n, k), rows sum to 1."""
        if self.n_voters_ is None:
            raise ValueError("MajorityVote: call fit(votes) before predicting")
        votes = check_votes(
            votes, self.cardinality, n_voters=self.n_voters_, where="MajorityVote.predict_proba"
        )
        tally = np.stack([(votes == c).sum(axis=1) for c in range(self.cardinality)], axis=1)
        totals = tally.sum(axis=1, keepdims=True)
        return np.where(totals > 0, tally / np.maximum(totals, 1.0), self.class_balance_)

    def predict(self, votes: np.ndarray) -> np.ndarray:
        """The most voted class per row (never -1); ties broken by `tie_break`."""
        return break_ties(self.predict_proba(votes), self.tie_break, self.seed)

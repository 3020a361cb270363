"""`ama/label_model`: a weak-supervision label model that learns from unlabeled votes."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from itertools import combinations

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment

from plugins.ama._em import Fit, Groups, cells, log_joint, offsets, posterior, run_em
from plugins.ama._sequence import ChainFit, chain_posterior, check_lengths, fit_chain, search_groups
from plugins.ama._structure import find_dependencies
from plugins.ama._votes import (
    ABSTAIN,
    TieBreak,
    break_ties,
    check_class_balance,
    check_settings,
    check_votes,
    compress,
)


class LabelModel:
    """Combine noisy votes of several voters (prompt chains) into class probabilities, no labels.

    Each voter's class-conditional behaviour (which class it votes, or whether it abstains, given
    the true class) and the class balance are learned by EM. Voters that share errors are found
    from the votes alone (see `plugins.ama._structure`) and modelled jointly: one factor per
    dependency group, so a clique of near-copies counts as one piece of evidence, not several.

    With `sequential=True` the rows are items in order (video frames; `lengths` splits them into
    sequences): the class follows a Markov chain learned with the rest (Baum-Welch), each item's
    probabilities are conditioned on its whole sequence, and the groups are chosen by held-out
    likelihood (see `plugins.ama._sequence`).

    Args:
        cardinality: number of classes k; votes are 0..k-1, -1 abstains.
        seed: seeds the EM restarts and the "random" tie break.
        restarts: EM runs (the first starts from a vote per group, the others perturb it);
            the highest likelihood wins, the earliest among those within 1e-9 of it (closer
            likelihoods differ by rounding only, which varies between CPUs).
        max_group_size: largest group of voters modelled jointly.
        dependency_strength: smallest residual (correlation scale) that counts as a dependency.
        dependency_alpha: significance level of a dependency, Bonferroni-corrected over pairs.
        max_dependencies: most voter pairs reported as dependent (0 turns structure off).
        smoothing: Dirichlet pseudo-counts per class spread over each group's table.
        max_iter, tol: EM stops after `max_iter` steps or when the mean log-likelihood per item
            gains less than `tol`.
        tie_break: "random" (seeded, uniform among tied classes) or "first" (lowest class).
        sequential: rows are ordered items whose class follows a Markov chain.
    """

    def __init__(
        self,
        cardinality: int = 2,
        *,
        seed: int = 0,
        restarts: int = 4,
        max_group_size: int = 4,
        dependency_strength: float = 0.05,
        dependency_alpha: float = 1e-3,
        max_dependencies: int = 6,
        smoothing: float = 1.0,
        max_iter: int = 200,
        tol: float = 1e-7,
        tie_break: TieBreak = "random",
        sequential: bool = False,
    ) -> None:
        check_settings(cardinality, tie_break, where="LabelModel")
        if restarts < 1 or max_group_size < 1:
            raise ValueError(
                "LabelModel: need restarts >= 1 and max_group_size >= 1, got "
                f"{restarts} and {max_group_size}"
            )
        self.cardinality = cardinality
        self.seed = seed
        self.restarts = restarts
        self.max_group_size = max_group_size
        self.dependency_strength = dependency_strength
        self.dependency_alpha = dependency_alpha
        self.max_dependencies = max_dependencies
        self.smoothing = smoothing
        self.max_iter = max_iter
        self.tol = tol
        self.tie_break = tie_break
        self.sequential = sequential
        self._fit: Fit | None = None
        self._chain: ChainFit | None = None

    def fit(
        self,
        votes: np.ndarray,
        *,
        class_balance: np.ndarray | None = None,
        lengths: Sequence[int] | None = None,
    ) -> LabelModel:
        """Learn class balance, per-voter behaviour and dependency groups from `votes` (n, m).

        `lengths` (sequential models only): the rows form sequences of these lengths, in order.
        """
        votes = check_votes(votes, self.cardinality, where="LabelModel.fit")
        balance = (
            None
            if class_balance is None
            else check_class_balance(class_balance, self.cardinality, where="LabelModel.fit")
        )
        if votes.shape[1] < 3:
            warnings.warn(
                f"LabelModel.fit: {votes.shape[1]} voter(s); without labels, accuracies are "
                "identifiable from 3 or more independent voters only, so accuracies_ and the "
                "probabilities follow the votes rather than measure them",
                UserWarning,
                stacklevel=2,
            )
        if self.sequential:
            return self._fit_sequential(votes, lengths, balance)
        if lengths is not None:
            raise ValueError("LabelModel.fit: lengths needs sequential=True")
        if (votes == ABSTAIN).all():
            return self._fit_no_evidence(votes.shape[1], balance)
        patterns = compress(votes, self.cardinality)
        pairs = find_dependencies(
            patterns,
            self.cardinality,
            min_strength=self.dependency_strength,
            alpha=self.dependency_alpha,
            max_pairs=self.max_dependencies,
        )
        self.dependencies_: list[tuple[int, int, float]] = pairs
        self.groups_: Groups = _merge(votes.shape[1], pairs, self.max_group_size)
        row_cells = cells(patterns.rows, self.groups_, self.cardinality)
        anchor = self._group_vote(patterns.rows)
        rng = np.random.default_rng(self.seed)
        noise = [
            rng.dirichlet(np.ones(self.cardinality), len(anchor)) for _ in range(1, self.restarts)
        ]
        fits = [
            run_em(
                row_cells,
                patterns.counts,
                start,
                self.groups_,
                self.cardinality,
                class_balance=balance,
                smoothing=self.smoothing,
                max_iter=self.max_iter,
                tol=self.tol,
            )
            for start in [anchor, *(0.5 * anchor + 0.5 * draw for draw in noise)]
        ]
        best = _earliest_best(fits)
        self._fit = _align(
            best, row_cells, anchor, patterns.counts, fixed_prior=balance is not None
        )
        self._summarise(votes.shape[1])
        return self

    def predict_proba(
        self, votes: np.ndarray, *, lengths: Sequence[int] | None = None
    ) -> np.ndarray:
        """P(class | votes) for each row: shape (n, k), rows sum to 1. A sequential model
        conditions each row on its whole sequence (`lengths`, as in `fit`)."""
        fit = self._fitted()
        where = "LabelModel.predict_proba"
        votes = check_votes(votes, self.cardinality, n_voters=self.n_voters_, where=where)
        if self._chain is not None:
            split = check_lengths(lengths, len(votes), where=where)
            return chain_posterior(votes, split, self._chain, self.groups_, self.cardinality)[0]
        if lengths is not None:
            raise ValueError(f"{where}: lengths needs sequential=True")
        patterns = compress(votes, self.cardinality)
        row_cells = cells(patterns.rows, self.groups_, self.cardinality)
        return posterior(log_joint(row_cells, fit.prior, fit.table))[patterns.inverse]

    def predict(self, votes: np.ndarray, *, lengths: Sequence[int] | None = None) -> np.ndarray:
        """The most probable class per row (never -1); ties broken by `tie_break`."""
        return break_ties(self.predict_proba(votes, lengths=lengths), self.tie_break, self.seed)

    def _fit_sequential(
        self, votes: np.ndarray, lengths: Sequence[int] | None, balance: np.ndarray | None
    ) -> LabelModel:
        """Groups by held-out likelihood, then Baum-Welch over the chain of classes."""
        where = "LabelModel.fit"
        if balance is not None:
            raise ValueError(f"{where}: class_balance is not supported with sequential=True")
        split = check_lengths(lengths, len(votes), where=where)
        options = {"smoothing": self.smoothing, "tol": self.tol}
        self.groups_, self.held_out_log_likelihood_ = search_groups(
            votes,
            split,
            self.cardinality,
            max_group_size=self.max_group_size,
            max_iter=self.max_iter,
            **options,
        )
        self.dependencies_ = [
            (i, j, float("nan")) for group in self.groups_ for i, j in combinations(group, 2)
        ]
        chain = fit_chain(
            votes, split, self.groups_, self.cardinality, max_iter=self.max_iter, **options
        )
        self._chain = chain
        self.transition_: np.ndarray = chain.transition
        # The class balance of a long sequence: the chain's stationary distribution.
        values, vectors = np.linalg.eig(chain.transition.T)
        stationary = np.abs(np.real(vectors[:, np.argmin(np.abs(values - 1.0))]))
        self._fit = Fit(stationary / stationary.sum(), chain.table, chain.log_likelihood)
        self._summarise(votes.shape[1])
        return self

    def _fit_no_evidence(self, n_voters: int, balance: np.ndarray | None) -> LabelModel:
        """Every vote abstains: votes tell nothing, so every row gets the class balance."""
        warnings.warn(
            "LabelModel.fit: every vote abstains, so nothing can be learned; predictions are the "
            "class balance (the given one, else uniform)",
            UserWarning,
            stacklevel=3,
        )
        k = self.cardinality
        prior = balance if balance is not None else np.full(k, 1.0 / k)
        voter = np.full(k + 1, 1e-6 / k)  # the same for every class, so it weighs no class
        voter[0] = 1.0 - 1e-6  # outcome 0: abstain
        self.dependencies_ = []
        self.groups_ = tuple((v,) for v in range(n_voters))
        self._fit = Fit(prior, np.tile(voter, (k, n_voters)), 0.0)
        self._summarise(n_voters)
        return self

    def _fitted(self) -> Fit:
        if self._fit is None:
            raise ValueError("LabelModel: call fit(votes) before predicting")
        return self._fit

    def _group_vote(self, rows: np.ndarray) -> np.ndarray:
        """Soft labels from a vote in which each dependency group's members share one vote."""
        weight = np.ones(rows.shape[1])
        for group in self.groups_:
            weight[list(group)] = 1.0 / len(group)
        tally = np.full((len(rows), self.cardinality), 0.1)
        for voter in range(rows.shape[1]):
            voted = rows[:, voter] >= 0
            tally[voted, rows[voted, voter]] += weight[voter]
        return tally / tally.sum(axis=1, keepdims=True)

    def _summarise(self, n_voters: int) -> None:
        """Per-voter tables P(outcome | class), marginalised out of the group factors."""
        fit = self._fitted()
        outcomes = self.cardinality + 1
        conditionals = np.zeros((n_voters, self.cardinality, outcomes))
        starts = offsets(self.groups_, self.cardinality)
        for group, start, stop in zip(self.groups_, starts[:-1], starts[1:], strict=True):
            joint = fit.table[:, start:stop].reshape((self.cardinality,) + (outcomes,) * len(group))
            for position, voter in enumerate(group):
                axes = tuple(a for a in range(1, len(group) + 1) if a != len(group) - position)
                conditionals[voter] = joint.sum(axis=axes)
        self.n_voters_ = n_voters
        self.class_balance_: np.ndarray = fit.prior
        # Outcome 0 is abstain, outcome c+1 is class c.
        self.conditionals_: np.ndarray = np.roll(conditionals, -1, axis=2)
        correct = np.einsum("k,mkk->m", fit.prior, self.conditionals_[:, :, :-1])
        voting = fit.prior @ (1.0 - self.conditionals_[:, :, -1]).T
        self.accuracies_: np.ndarray = correct / np.maximum(voting, 1e-12)


_EQUAL_LOG_LIKELIHOOD = 1e-9
"""Mean log-likelihoods closer than this are equal: which one is higher is rounding noise."""


def _earliest_best(fits: list[Fit]) -> Fit:
    """The first fit whose likelihood equals the best one's up to rounding.

    With fewer than 3 voters (and along any flat ridge) many fits explain the votes equally
    well; the last bits of their likelihoods depend on the CPU's kernels. The first fit starts
    from the group vote, so ties go to the model that follows the votes, on every machine.
    """
    top = max(fit.log_likelihood for fit in fits)
    return next(fit for fit in fits if fit.log_likelihood >= top - _EQUAL_LOG_LIKELIHOOD)


def _merge(n_voters: int, pairs: list[tuple[int, int, float]], max_size: int) -> Groups:
    """Union the dependent pairs, strongest first, into groups of at most `max_size` voters."""
    group_of: dict[int, tuple[int, ...]] = {voter: (voter,) for voter in range(n_voters)}
    for i, j, _ in pairs:
        merged = tuple(sorted(set(group_of[i]) | set(group_of[j])))
        if len(merged) <= max_size:
            for voter in merged:
                group_of[voter] = merged
    return tuple(sorted(set(group_of.values())))


def _align(
    fit: Fit,
    row_cells: sparse.csr_matrix,
    anchor: np.ndarray,
    counts: np.ndarray,
    *,
    fixed_prior: bool,
) -> Fit:
    """Relabel the latent classes to agree best with the group vote (EM is blind to names)."""
    soft = posterior(log_joint(row_cells, fit.prior, fit.table))
    agreement = (soft * counts[:, None]).T @ anchor
    _, order = linear_sum_assignment(-agreement.T)
    return fit if fixed_prior else fit.permuted(order)

"""`ama/metal_label_model`: AMA's own aggregator (metal's label model with one learned
dependency), reimplemented in numpy/scipy as a baseline for `ama/label_model`."""

from __future__ import annotations

import warnings

import numpy as np

from plugins.ama._metal import (
    CLIP,
    Decomposition,
    blocks,
    class_moments,
    fit_mu,
    fit_z,
    learn_structure,
    observed_mask,
    one_hot,
    smallest_off_diagonal,
    strongest_pair,
)
from plugins.ama._votes import (
    ABSTAIN,
    TieBreak,
    break_ties,
    check_class_balance,
    check_settings,
    check_votes,
)


class MetalLabelModel:
    """The aggregator of Ask Me Anything (HazyResearch/ama_prompting, `boosting/run_ws.py`).

    1. Structure: the votes' inverse covariance is split into a sparse part minus a low-rank
       part (a convex program); if the smallest off-diagonal magnitude of the sparse part is
       below `dependency_threshold`, the pair with the largest one is modelled as dependent.
    2. metal's `LabelModel`: each voter's P(vote | class) is fitted to the votes' second
       moments (matrix completion, no EM); with the pair, through the inverse form (Z).
    3. P(class | votes) multiplies the fitted tables (clipped to [0.01, 0.99]) and the class
       balance; abstains contribute nothing, and the pair counts once, as a joint factor.

    Without `class_balance` the prior is uniform and stays so (metal does not learn it; AMA
    passes the empirical balance of its labelled training split).

    After `fit`: `dependencies_` ([(i, j, |S_ij|)], the modelled pair or []), `structure_` (the
    sparse and low-rank parts, None where skipped), `accuracies_`, `conditionals_` and
    `class_balance_` (as `ama/label_model`'s). See docs/ama.md for where this follows AMA and
    where it differs.

    Args:
        cardinality: number of classes k; votes are 0..k-1, -1 abstains.
        seed: seeds metal's random start (a scale of mu's start, Z) and the "random" tie break.
        learn_dependency: run step 1 (else voters are taken as conditionally independent).
        dependency_threshold: AMA's cut on the smallest off-diagonal magnitude (1.0).
        rank_penalty: lam of the program; None is AMA's 1/sqrt(m).
        sparsity: gamma of the program (AMA's 1e-8).
        prec_init: metal's start, P(y | voter votes y) for every voter (0.7).
        l2: metal's pull of mu towards its start (AMA: 0).
        max_iter: L-BFGS iterations per objective.
        tie_break: "random" (seeded, uniform among tied classes) or "first" (lowest class).
    """

    def __init__(
        self,
        cardinality: int = 2,
        *,
        seed: int = 0,
        learn_dependency: bool = True,
        dependency_threshold: float = 1.0,
        rank_penalty: float | None = None,
        sparsity: float = 1e-8,
        prec_init: float = 0.7,
        l2: float = 0.0,
        max_iter: int = 2000,
        tie_break: TieBreak = "random",
    ) -> None:
        check_settings(cardinality, tie_break, where="MetalLabelModel")
        if not 0.0 < prec_init < 1.0:
            raise ValueError(f"MetalLabelModel: prec_init must be in (0, 1), got {prec_init!r}")
        self.cardinality = cardinality
        self.seed = seed
        self.learn_dependency = learn_dependency
        self.dependency_threshold = dependency_threshold
        self.rank_penalty = rank_penalty
        self.sparsity = sparsity
        self.prec_init = prec_init
        self.l2 = l2
        self.max_iter = max_iter
        self.tie_break = tie_break
        self._mu: np.ndarray | None = None

    def fit(self, votes: np.ndarray, *, class_balance: np.ndarray | None = None) -> MetalLabelModel:
        """Learn the dependency (if any) and each voter's tables from `votes` (n, m)."""
        where = "MetalLabelModel.fit"
        votes = check_votes(votes, self.cardinality, where=where)
        k, (n, m) = self.cardinality, votes.shape
        balance = (
            np.full(k, 1.0 / k)
            if class_balance is None
            else check_class_balance(class_balance, k, where=where)
        )
        if m < 3:
            warnings.warn(
                f"{where}: {m} voter(s); without labels, accuracies are identifiable from 3 or "
                "more independent voters only",
                UserWarning,
                stacklevel=2,
            )
        self.structure_: Decomposition | None = None
        self.dependencies_: list[tuple[int, int, float]] = []
        if self.learn_dependency and m >= 2:
            self.structure_ = learn_structure(votes, k, lam=self.rank_penalty, gamma=self.sparsity)
            if (
                self.structure_ is not None
                and smallest_off_diagonal(self.structure_.sparse) < self.dependency_threshold
            ):
                self.dependencies_ = [strongest_pair(self.structure_.sparse)]
        self._pair = self.dependencies_[0][:2] if self.dependencies_ else None
        indicators = one_hot(votes, k, self._pair)
        second = indicators.T @ indicators / n
        mask = observed_mask(m, k, self._pair)
        rng = np.random.default_rng(self.seed)
        anchor = np.zeros((second.shape[0], k))
        for voter in range(m):  # metal: P(vote y | y) = P(vote y) prec / P(y)
            rows = slice(voter * k, (voter + 1) * k)
            anchor[rows] = np.diag(np.clip(np.diag(second)[rows] * self.prec_init / balance, 0, 1))
        start = anchor * rng.random()
        # AMA drops "each voter's votes sum to one" as soon as any vote abstains.
        sums_to_one = [] if (votes == ABSTAIN).any() else blocks(m, k, self._pair)
        # No pair: fit O itself, off each voter's own block.
        target, fitted = second, mask
        if self._pair is not None:  # the inverse form: Q estimates mu P mu^T everywhere
            inverse = np.linalg.pinv(second, rcond=1e-7)
            z = fit_z(inverse, mask, rng.standard_normal((len(second), k)), self.max_iter)
            target, fitted = class_moments(second, z), np.ones_like(mask)
        self._mu = fit_mu(
            second,
            target,
            fitted,
            balance,
            start,
            anchor,
            sums_to_one,
            l2=self.l2,
            max_iter=self.max_iter,
        )
        self._summarise(m, balance)
        return self

    def predict_proba(self, votes: np.ndarray) -> np.ndarray:
        """P(class | votes) for each row: shape (n, k), rows sum to 1."""
        mu = self._fitted()
        votes = check_votes(
            votes,
            self.cardinality,
            n_voters=self.n_voters_,
            where="MetalLabelModel.predict_proba",
        )
        factors = np.ones(mu.shape[0])
        if self._pair is not None:  # the pair counts through its joint table only
            for voter in self._pair:
                factors[voter * self.cardinality : (voter + 1) * self.cardinality] = 0.0
        log_joint = (one_hot(votes, self.cardinality, self._pair) * factors) @ np.log(
            np.clip(mu, *CLIP)
        ) + np.log(self.class_balance_)
        log_joint -= log_joint.max(axis=1, keepdims=True)
        proba = np.exp(log_joint)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, votes: np.ndarray) -> np.ndarray:
        """The most probable class per row (never -1); ties broken by `tie_break`."""
        return break_ties(self.predict_proba(votes), self.tie_break, self.seed)

    def _fitted(self) -> np.ndarray:
        if self._mu is None:
            raise ValueError("MetalLabelModel: call fit(votes) before predicting")
        return self._mu

    def _summarise(self, n_voters: int, balance: np.ndarray) -> None:
        """Per-voter tables as metal reports them: votes clipped to [0.01, 0.99], abstain the
        rest (clipped to [1e-4, 0.9999])."""
        k = self.cardinality
        mu = self._fitted()[: n_voters * k].reshape(n_voters, k, k)  # [voter, vote, class]
        votes = np.clip(mu, *CLIP).transpose(0, 2, 1)  # [voter, class, vote]
        abstain = np.clip(1.0 - mu.sum(axis=1), 1e-4, 0.9999)[:, :, None]
        self.n_voters_ = n_voters
        self.class_balance_: np.ndarray = balance
        self.conditionals_: np.ndarray = np.concatenate([votes, abstain], axis=2)
        correct = np.einsum("k,mkk->m", balance, self.conditionals_[:, :, :-1])
        voting = balance @ self.conditionals_[:, :, :-1].sum(axis=2).T
        self.accuracies_: np.ndarray = correct / np.maximum(voting, 1e-12)

"""The numerics behind `ama/metal_label_model`: AMA's structure learning and metal's fit.

Structure (AMA's `learn_structure`): the inverse covariance of the votes, written as a sparse
part S minus a low-rank part L, is found by the convex program

    minimise  1/2 tr(R Sigma R) - tr(R) + lam (gamma |S|_1 + |L|_*)
    subject to R = S - L,  S >= 0,  L >= 0   (positive semi-definite)

(its quadratic loss is minimised by R = Sigma^-1). We solve it with a small ADMM.

Fit (metal's `LabelModel`, matrix completion): with O the second moments of the one-hot votes
(abstains have no column) and P = diag(class balance), conditionally independent voters give
O = mu P mu^T off the diagonal blocks, mu[i k + c, y] = P(voter i votes c | y). With a
dependent pair (i, j), its joint votes get k^2 more columns; then the inverse O^-1 is fitted by
-Z Z^T off the blocks of each clique, Q = O Z (I + Z^T O Z)^-1 Z^T O recovers mu P mu^T, and mu
is fitted to Q. Every objective is minimised to convergence by L-BFGS.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np
from scipy.optimize import minimize

_ADMM_ITERATIONS = 5000  # from S = L = 0 it converges in a few hundred
_ADMM_TOLERANCE = 1e-8
_ONE_HOT_WEIGHT = 10.0  # metal's weight on "each voter's votes sum to one" (no abstains)
CLIP = (0.01, 0.99)  # metal clips mu to this range before predicting


@attrs.frozen
class Decomposition:
    """The inverse covariance split into its sparse and low-rank parts: R = sparse - low_rank."""

    sparse: np.ndarray  # (m, m)
    low_rank: np.ndarray  # (m, m)


def learn_structure(
    votes: np.ndarray, cardinality: int, *, lam: float | None, gamma: float
) -> Decomposition | None:
    """AMA's structure learning on `votes` (-1 abstains; AMA counts an abstain as class 0).

    Two classes: one decomposition of the votes' covariance. More: one per class, of the
    indicators "voted c", averaged. None when a covariance is singular (a voter that never
    changes): the program is then unbounded.
    """
    values = np.where(votes < 0, 0, votes)
    columns = [values] if cardinality == 2 else [values == c for c in range(cardinality)]
    lam = 1.0 / np.sqrt(votes.shape[1]) if lam is None else lam
    parts = []
    for column in columns:
        sigma = _covariance(column.astype(np.float64))
        if np.linalg.eigvalsh(sigma)[0] <= 1e-10 * max(np.trace(sigma), 1e-300):
            return None
        parts.append(_decompose(sigma, lam, gamma))
    sparse = np.mean([part.sparse for part in parts], axis=0)
    np.fill_diagonal(sparse, 0.0)
    return Decomposition(sparse, np.mean([part.low_rank for part in parts], axis=0))


def _covariance(x: np.ndarray) -> np.ndarray:
    """AMA's estimate: X^T X / (n - 1) minus the outer product of the means, symmetrised."""
    n = max(len(x) - 1, 1)
    sigma = x.T @ x / n - np.outer(x.mean(0), x.mean(0))
    return 0.5 * (sigma + sigma.T)


def _decompose(sigma: np.ndarray, lam: float, gamma: float, rho: float = 1.0) -> Decomposition:
    """ADMM over R = S - L (scaled dual U). The R step is exact (a Sylvester equation solved in
    Sigma's eigenbasis); the L step is the exact proximal step (eigenvalues shrunk by lam/rho,
    clipped at 0); the S step soft-thresholds then projects onto the PSD cone, which is exact
    for gamma = 0 and close for AMA's gamma = 1e-8. R >= 0 is not imposed."""
    d, v = np.linalg.eigh(sigma)
    denominator = 0.5 * (d[:, None] + d[None, :]) + rho
    eye = np.eye(len(sigma))
    s = np.zeros_like(sigma)
    low = np.zeros_like(sigma)
    u = np.zeros_like(sigma)
    for _ in range(_ADMM_ITERATIONS):
        target = v.T @ (eye + rho * (s - low - u)) @ v
        r = v @ (target / denominator) @ v.T
        r = 0.5 * (r + r.T)
        previous_s, previous_low = s, low
        shrunk = r + low + u
        shrunk = np.sign(shrunk) * np.maximum(np.abs(shrunk) - lam * gamma / rho, 0.0)
        s = _project_psd(shrunk, 0.0)
        low = _project_psd(s - r - u, lam / rho)
        u = u + r - s + low
        primal = np.abs(r - s + low).max()
        dual = max(np.abs(s - previous_s).max(), np.abs(low - previous_low).max())
        if max(primal, dual) < _ADMM_TOLERANCE * max(1.0, np.abs(s).max()):
            break
    return Decomposition(s, low)


def _project_psd(matrix: np.ndarray, shrink: float) -> np.ndarray:
    """Eigenvalues lowered by `shrink` and clipped at 0 (the PSD projection when shrink = 0)."""
    values, vectors = np.linalg.eigh(0.5 * (matrix + matrix.T))
    return (vectors * np.maximum(values - shrink, 0.0)) @ vectors.T


def strongest_pair(sparse: np.ndarray) -> tuple[int, int, float]:
    """The off-diagonal entry of largest magnitude, as (i, j, |entry|) with i < j."""
    upper = np.triu(np.abs(sparse), 1)
    i, j = np.unravel_index(np.argmax(upper), upper.shape)
    return int(i), int(j), float(upper[i, j])


def smallest_off_diagonal(sparse: np.ndarray) -> float:
    """min |entry| off the diagonal: AMA models no dependency unless it is below 1."""
    off = ~np.eye(len(sparse), dtype=bool)
    return float(np.abs(sparse[off]).min())


def one_hot(votes: np.ndarray, cardinality: int, pair: tuple[int, int] | None) -> np.ndarray:
    """(n, d) indicators: column i k + c is "voter i voted c"; with a pair (i, j), k^2 more
    columns, a k + b being "i voted a and j voted b". Abstains have no column."""
    n, m = votes.shape
    k = cardinality
    singles = (votes[:, :, None] == np.arange(k)).reshape(n, m * k).astype(np.float64)
    if pair is None:
        return singles
    i, j = pair
    joint = singles[:, i * k : (i + 1) * k, None] * singles[:, None, j * k : (j + 1) * k]
    return np.hstack([singles, joint.reshape(n, k * k)])


def blocks(n_voters: int, cardinality: int, pair: tuple[int, int] | None) -> list[slice]:
    """The rows of mu that belong to each clique factor: each voter's, then the pair's."""
    k = cardinality
    out = [slice(i * k, (i + 1) * k) for i in range(n_voters)]
    if pair is not None:
        out.append(slice(n_voters * k, n_voters * k + k * k))
    return out


def observed_mask(n_voters: int, cardinality: int, pair: tuple[int, int] | None) -> np.ndarray:
    """(d, d) True where O (or its inverse) is fitted: off the blocks of any one clique."""
    spans = blocks(n_voters, cardinality, pair)
    clique = np.arange(len(spans))
    if pair is not None:  # the pair's voters and its joint columns form one clique
        clique[list(pair)] = len(spans) - 1
    owner = np.concatenate([np.full(s.stop - s.start, clique[b]) for b, s in enumerate(spans)])
    return owner[:, None] != owner[None, :]


def fit_mu(
    second: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray,
    balance: np.ndarray,
    start: np.ndarray,
    anchor: np.ndarray,
    one_hot_blocks: list[slice],
    *,
    l2: float,
    max_iter: int,
) -> np.ndarray:
    """metal's mu: minimise |mask o (target - mu P mu^T)|^2 + |mu p - diag(second)|^2
    + l2 |mu - anchor|^2 + 10 sum_blocks |1 - column sums|^2 (blocks: voters that never
    abstain; empty when any vote abstains, as in AMA)."""
    d, k = start.shape
    weights = mask.astype(np.float64)
    marginal = np.diag(second)

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        mu = flat.reshape(d, k)
        error = weights * (mu @ (balance[:, None] * mu.T) - target)
        residual = mu @ balance - marginal
        value = float((error**2).sum() + residual @ residual + l2 * ((mu - anchor) ** 2).sum())
        grad = 4.0 * error @ mu * balance + 2.0 * np.outer(residual, balance)
        grad += 2.0 * l2 * (mu - anchor)
        for span in one_hot_blocks:
            gap = 1.0 - mu[span].sum(axis=0)
            value += _ONE_HOT_WEIGHT * float(gap @ gap)
            grad[span] -= 2.0 * _ONE_HOT_WEIGHT * gap
        return value, grad.ravel()

    return _minimise(objective, start, max_iter)


def fit_z(inverse: np.ndarray, mask: np.ndarray, start: np.ndarray, max_iter: int) -> np.ndarray:
    """metal's Z: minimise |mask o (O^-1 + Z Z^T)|^2."""
    d, k = start.shape
    weights = mask.astype(np.float64)

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        z = flat.reshape(d, k)
        error = weights * (inverse + z @ z.T)
        return float((error**2).sum()), (4.0 * error @ z).ravel()

    return _minimise(objective, start, max_iter)


def class_moments(second: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Q = O Z (I + Z^T O Z)^-1 Z^T O, the estimate of mu P mu^T."""
    inner = np.eye(z.shape[1]) + z.T @ second @ z
    return second @ z @ np.linalg.solve(inner, z.T @ second)


Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


def _minimise(objective: Objective, start: np.ndarray, max_iter: int) -> np.ndarray:
    result = minimize(
        objective,
        start.ravel(),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-10},
    )
    return np.asarray(result.x).reshape(start.shape)

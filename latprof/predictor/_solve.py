"""The one solver: weighted ridge regression with exact leave-one-out, penalties by the one-standard-error rule.

Every latprof predictor is fitted here. Columns come in groups: group 0 is
free (intercept, shared ratio), each further group shares one ridge penalty,
chosen from :data:`LAMBDAS` (``inf`` drops the group) by exact leave-one-out
error from the ridge hat matrix: the simplest penalties (largest, last group
first) whose error is within :data:`SE_RULE` standard errors of the best (on a seeded
sample of :data:`SELECT_ROWS` rows when there are more). One outlier pass
drops rows the model misses by far more than the rest (a busy phone, a typo).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

__all__ = ["LAMBDAS", "Solution", "ridge_loo", "fit_penalised"]

LAMBDAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, np.inf)
# The simplest penalties whose LOO error is within this many standard errors of the best. Chosen by
# leave-one-device-out on the shipped phones (NAS-Bench-201 both forms, FBNet; N = 10/20/50, 3 seeds): for every
# phone, 0.5 gave the best mean Spearman on the other phones (against 1, the classic rule, and 0, the minimum).
SE_RULE = 0.5
SELECT_ROWS = 400  # penalties are chosen on at most this many rows: each grid point costs O(rows x columns^2)
_OUTLIER_SIGMAS, _MAX_OUTLIER_SHARE = 5.0, 0.1


def ridge_loo(M: np.ndarray, y: np.ndarray, penalty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ridge coefficients and exact leave-one-out residuals (penalty 0: free column, inf: dropped).

    With more penalised columns than rows it works in the n x n (dual) form:
    the free columns are projected out and ``H = P_F + K (K + I)^-1``.
    """
    n = len(y)
    free, pen = penalty == 0, np.isfinite(penalty) & (penalty > 0)
    F = M[:, free]
    X = M[:, pen] / np.sqrt(penalty[pen])
    w = np.zeros(M.shape[1])
    if X.shape[1] <= n:
        A = np.column_stack([F, X])
        G = np.linalg.pinv(A.T @ A + np.diag(np.r_[np.zeros(F.shape[1]), np.ones(X.shape[1])]))
        coef = G @ A.T @ y
        hat = np.einsum("ij,jk,ik->i", A, G, A)
        fitted = A @ coef
        w[free], w[pen] = coef[:F.shape[1]], coef[F.shape[1]:] / np.sqrt(penalty[pen])
    else:
        Fp = np.linalg.pinv(F)
        Q = np.eye(n) - F @ Fp
        QX = Q @ X
        K = QX @ QX.T
        S = K @ np.linalg.inv(K + np.eye(n))
        hat = np.einsum("ii->i", F @ Fp) + np.diag(S)
        alpha = np.linalg.solve(K + np.eye(n), Q @ y)
        wx = QX.T @ alpha
        beta = Fp @ (y - X @ wx)
        fitted = F @ beta + X @ wx
        w[free], w[pen] = beta, wx / np.sqrt(penalty[pen])
    return w, (y - fitted) / np.clip(1.0 - hat, 1e-9, None)


@dataclass(frozen=True)
class Solution:
    """A fitted coefficient vector, its leave-one-out residuals (on the kept rows) and the penalties chosen."""

    coef: np.ndarray
    loo: np.ndarray
    lambdas: tuple[float, ...]
    inliers: np.ndarray  # bool per row


def _penalty(groups: np.ndarray, lambdas: tuple[float, ...], fixed: dict[int, float]) -> np.ndarray:
    penalty = np.r_[0.0, lambdas][groups]
    for column, value in fixed.items():
        penalty[column] = value
    return penalty


def _select(M: np.ndarray, y: np.ndarray, groups: np.ndarray, fixed: dict[int, float],
            grid: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    n_groups = int(groups.max(initial=0))
    present = [g for g in range(1, n_groups + 1) if (groups == g).any()]
    fits = []
    for chosen in itertools.product(grid, repeat=len(present)):
        lambdas = np.full(n_groups, np.inf)
        lambdas[np.array(present, int) - 1] = chosen
        w, loo = ridge_loo(M, y, _penalty(groups, tuple(lambdas), fixed))
        sq = loo ** 2
        fits.append((float(sq.mean()), float(sq.std() / np.sqrt(len(sq))), tuple(lambdas), w, loo))
    best, se = min((f[0], f[1]) for f in fits)
    simplest = max((f for f in fits if f[0] <= best + SE_RULE * se), key=lambda f: tuple(reversed(f[2])))
    return simplest[3], simplest[4], simplest[2]


def _select_nonneg(M: np.ndarray, y: np.ndarray, groups: np.ndarray, fixed: dict[int, float],
                   grid: tuple[float, ...], nonneg: tuple[int, ...], lambdas: tuple[float, ...] | None = None):
    """:func:`_select` (or the given ``lambdas``), dropping the most negative of the ``nonneg`` columns until
    none is negative; returns the coefficients, LOO residuals, penalties and the columns dropped."""
    fixed = dict(fixed)
    for _ in range(len(nonneg) + 1):
        if lambdas is None:
            coef, loo, chosen = _select(M, y, groups, fixed, grid)
        else:
            (coef, loo), chosen = ridge_loo(M, y, _penalty(groups, lambdas, fixed)), lambdas
        negative = [j for j in nonneg if coef[j] < 0]
        if not negative:
            break
        fixed[min(negative, key=lambda j: coef[j])] = np.inf
    return coef, loo, chosen


def _choose(M: np.ndarray, y: np.ndarray, groups: np.ndarray, fixed: dict[int, float], grid: tuple[float, ...],
            nonneg: tuple[int, ...]):
    """Penalties by exact LOO on at most :data:`SELECT_ROWS` rows (seeded), then the fit on every row."""
    if len(y) <= SELECT_ROWS:
        return _select_nonneg(M, y, groups, fixed, grid, nonneg)
    rows = np.sort(np.random.default_rng(0).choice(len(y), SELECT_ROWS, replace=False))
    _, _, lambdas = _select_nonneg(M[rows], y[rows], groups, fixed, grid, nonneg)
    return _select_nonneg(M, y, groups, fixed, grid, nonneg, lambdas)


def fit_penalised(M: np.ndarray, y: np.ndarray, groups: np.ndarray, *, weights: np.ndarray | None = None,
                  fixed: dict[int, float] | None = None, nonneg: tuple[int, ...] = (),
                  grid: tuple[float, ...] = LAMBDAS, min_rows: int = 3) -> Solution:
    """Fit ``M @ coef ~ y`` with per-group penalties (``groups[j]``: column j's group, 0 = free).

    ``weights`` scale each row (1/latency: relative error); ``fixed`` gives some
    columns a set penalty outside the grid (a runtime factor's weak prior);
    ``nonneg`` columns are dropped (set to 0) while they would come out negative.
    Residuals are returned in the units of ``y``.
    """
    w_rows = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    Mw, yw = M * w_rows[:, None], y * w_rows
    fixed = fixed or {}
    inliers = np.ones(len(y), dtype=bool)
    coef, loo, lambdas = _choose(Mw, yw, groups, fixed, grid, nonneg)
    scale = 1.4826 * float(np.median(np.abs(loo)))
    wild = np.abs(loo) > _OUTLIER_SIGMAS * max(scale, 1e-12)
    if wild.any() and wild.sum() <= _MAX_OUTLIER_SHARE * len(y) and len(y) - wild.sum() >= min_rows:
        inliers = ~wild
        coef, loo, lambdas = _choose(Mw[inliers], yw[inliers], groups, fixed, grid, nonneg)
    return Solution(coef, loo / w_rows[inliers], lambdas, inliers)

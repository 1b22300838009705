"""Error metrics of predicted against measured latencies: the one place the CLI, reports, tests and benchmarks
take them from."""

from __future__ import annotations

from typing import Any

import numpy as np

from latprof.errors import PredictorError

__all__ = ["error_summary"]

_NAN = float("nan")
_MIN_RANKED = 3  # a rank correlation of fewer rows says nothing


def error_summary(pred: Any, measured: Any, *, min_ms: float = 0.0) -> dict[str, float]:
    """Errors of ``pred`` against ``measured`` (ms), over the rows measured at ``min_ms`` or more.

    Keys: ``n`` (rows kept), ``mape``, ``within_5``, ``within_10``, ``within_15`` (shares of rows whose relative
    error is at most 5/10/15%), ``rmse_ms``, ``max_abs_rel``, ``spearman_rho`` and ``kendall_tau``. Relative
    errors are ``pred / measured - 1``; the rank correlations are nan for fewer than 3 rows or a constant input,
    and every key but ``n`` is nan when no row is kept.
    """
    pred, measured = np.asarray(pred, float).reshape(-1), np.asarray(measured, float).reshape(-1)
    if pred.shape != measured.shape:
        raise PredictorError(f"{len(pred)} predictions for {len(measured)} measurements; pass one prediction per "
                             f"measured row")
    keep = measured >= min_ms
    pred, measured = pred[keep], measured[keep]
    n = len(measured)
    if n == 0:
        return {"n": 0, **dict.fromkeys(("mape", "within_5", "within_10", "within_15", "rmse_ms", "max_abs_rel",
                                         "spearman_rho", "kendall_tau"), _NAN)}
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(pred / measured - 1)
    return {"n": n, "mape": float(rel.mean()), "within_5": float(np.mean(rel <= 0.05)),
            "within_10": float(np.mean(rel <= 0.10)), "within_15": float(np.mean(rel <= 0.15)),
            "rmse_ms": float(np.sqrt(np.mean((pred - measured) ** 2))), "max_abs_rel": float(rel.max()),
            **_ranks(pred, measured)}


def _ranks(pred: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    from scipy.stats import kendalltau, spearmanr

    if len(pred) < _MIN_RANKED or np.ptp(pred) == 0 or np.ptp(measured) == 0:
        return {"spearman_rho": _NAN, "kendall_tau": _NAN}
    return {"spearman_rho": float(spearmanr(pred, measured).statistic),
            "kendall_tau": float(kendalltau(pred, measured).statistic)}

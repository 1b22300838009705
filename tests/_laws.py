"""Synthetic devices for the predictor tests: latencies that follow a known law over the analytic prior."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from latprof.predictor._model import Row
from latprof.predictor._opmodel import analytic_regression
from latprof.predictor._units import Unit, arch_units
from latprof.space import FAMILIES, SearchSpace, op_family

ANALYTIC = analytic_regression()
INTERCEPT_MS = 1.5


def family_ratios(seed: int = 0) -> dict[str, float]:
    """The synthetic device's ratio to the analytic cost, one per operator family."""
    rng = np.random.default_rng(seed)
    return {family: float(rng.uniform(1.0, 4.0)) for family in FAMILIES}


def law_ms(units: Sequence[Unit], ratios: dict[str, float]) -> float:
    """Intercept + each operator's analytic cost times its family's ratio."""
    return INTERCEPT_MS + sum(ratios[op_family(op)] * ANALYTIC.op_ms(op) for u in units for op in u.operators)


def law_rows(space: SearchSpace, archs: Sequence, ratios: dict[str, float], *, noise: float = 0.0,
             seed: int = 0) -> list[Row]:
    """Rows of ``archs`` timed by the law, with optional multiplicative noise (relative standard deviation)."""
    units = [tuple(arch_units(space, a)) for a in archs]
    y = np.array([law_ms(u, ratios) for u in units])
    if noise:
        y = y * np.random.default_rng(seed).normal(1.0, noise, len(y))
    return [Row(u, float(ms)) for u, ms in zip(units, y)]


def law_latencies(space: SearchSpace, archs: Sequence, ratios: dict[str, float], **kwargs) -> np.ndarray:
    return np.array([r.latency_ms for r in law_rows(space, archs, ratios, **kwargs)])

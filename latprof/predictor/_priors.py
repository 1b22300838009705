"""Priors: what a unit costs before the device's own end-to-end evidence corrects it.

* :class:`TablePrior`: a device's lookup table (the target's own, or another
  device's), with the operator regression for keys the table lacks. A table
  key's measured time is split across its operators in proportion to the
  regression, so per-family corrections apply to the right operators.
* :class:`AnalyticPrior`: multiply-adds, memory traffic and operator count on
  a generic mobile core.
* :class:`DevicesPrior`: a mix of devices latprof already knows (their per-key
  costs, each rescaled to the analytic scale) and the analytic cost; each is
  also a column of its own, so the fit learns the target's mix.

Every prior also offers auxiliary columns (:meth:`aux`) whose coefficients the
fit learns under one penalty, and names the regression that prices the units
it has never seen (:attr:`regression`).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from latprof.predictor._opmodel import Neighbours, OpRegression, analytic_regression
from latprof.predictor._units import Unit

__all__ = ["Prior", "TablePrior", "AnalyticPrior", "DevicesPrior"]

_ANALYTIC = analytic_regression()


def analytic_ms(unit: Unit) -> float:
    """A unit's cost on a generic mobile core (ms)."""
    return float(_ANALYTIC.ops_ms(unit.operators).sum())


class Prior(Protocol):
    """Per-operator costs of units, auxiliary columns, and the regression behind both."""

    name: str
    regression: OpRegression
    aux_names: tuple[str, ...]
    isolated: bool  # costs are layers timed alone: the fit gets a free per-layer term

    def costs(self, unit: Unit) -> tuple[np.ndarray, str]: ...

    def aux(self, unit: Unit) -> np.ndarray: ...


class AnalyticPrior:
    """The analytic cost of every operator."""

    name = "analytic"
    aux_names: tuple[str, ...] = ()
    isolated = False

    def __init__(self) -> None:
        self.regression = _ANALYTIC

    def costs(self, unit: Unit) -> tuple[np.ndarray, str]:
        return self.regression.ops_ms(unit.operators), "analytic"

    def aux(self, unit: Unit) -> np.ndarray:
        return np.zeros(0)


class TablePrior:
    """A device's measured table; the regression (with the neighbour correction) for other keys."""

    aux_names = ("analytic",)
    isolated = True

    def __init__(self, device: str, table: dict[str, float], regression: OpRegression, neighbours: Neighbours,
                 *, own: bool, speed: dict[str, Any] | None = None, width_cv: dict[str, Any] | None = None) -> None:
        self.device, self.table, self.regression, self.neighbours = device, table, regression, neighbours
        self.own, self.speed = own, speed
        self.width_cv = width_cv or {}  # the regression's leave-one-width-out figures on this table
        self.name = "table" if own else f"table:{device}"

    def costs(self, unit: Unit) -> tuple[np.ndarray, str]:
        estimate = self.regression.ops_ms(unit.operators)
        measured = self.table.get(unit.key)
        if measured is not None:
            total = estimate.sum()
            share = estimate / total if total > 0 else np.full(len(estimate), 1.0 / max(len(estimate), 1))
            return share * measured, "table"
        if unit.layer is not None:
            estimate = estimate * self.neighbours.factor(unit.layer)
        return estimate, "regression"

    def aux(self, unit: Unit) -> np.ndarray:
        return np.array([analytic_ms(unit)])


class DevicesPrior:
    """Known devices' per-key costs (each on the analytic scale) and the analytic cost, mixed."""

    isolated = False

    def __init__(self, components: dict[str, dict[str, float]], scales: dict[str, float]) -> None:
        self.components, self.scales = components, scales
        self.aux_names = (*components, "analytic")
        self.name = f"devices({','.join(components)})+analytic" if components else "analytic"
        self.regression = _ANALYTIC

    def _values(self, unit: Unit) -> tuple[np.ndarray, bool]:
        analytic = analytic_ms(unit)
        values, known = [], False
        for name, costs in self.components.items():
            ms = costs.get(unit.key)
            known |= ms is not None
            values.append(analytic if ms is None else ms / self.scales[name])
        return np.array([*values, analytic]), known

    def costs(self, unit: Unit) -> tuple[np.ndarray, str]:
        values, known = self._values(unit)
        estimate = _ANALYTIC.ops_ms(unit.operators)
        total = estimate.sum()
        return estimate * (values.mean() / total if total > 0 else 0.0), "known" if known else "analytic"

    def aux(self, unit: Unit) -> np.ndarray:
        return self._values(unit)[0]

"""Where priors come from: a device's own lookup table (at its reference speed), another device's, the devices
latprof knows, or the analytic cost (:func:`load_prior`)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from latprof.errors import LookupTableError, PredictorError
from latprof.lut import TABLE_DTYPES, load_calibration, load_entries, table_space
from latprof.predictor._known import known_costs, rescale
from latprof.predictor._metrics import error_summary
from latprof.predictor._opmodel import Neighbours, fit_op_regression
from latprof.predictor._priors import AnalyticPrior, DevicesPrior, Prior, TablePrior
from latprof.predictor._units import Unit, key_unit, layer_unit
from latprof.space import SearchSpace
from latprof.speed import probe_factor, probe_identity
from latprof.store import Store

__all__ = ["load_prior", "own_table_prior", "table_prior", "missing_table"]

_REF_PERCENTILE = 10
BAND_PERCENTILE = 90


def _fit_beta(entries, ms: np.ndarray, probes: np.ndarray, ref: float | None, ops) -> float:
    """How latency scales with the probe time, from the table's residuals against the regression."""
    ok = np.isfinite(probes)
    if ref is None or ok.sum() < 20 or np.ptp(np.log(probes[ok])) < 0.05:
        return 1.0
    regression = fit_op_regression(ops, ms)
    estimate = np.array([regression.ops_ms(o).sum() for o in ops])
    resid = np.log(ms / np.maximum(estimate, 1e-9))
    slope = np.polyfit(np.log(probes[ok] / ref), resid[ok], 1)[0]
    return float(np.clip(slope, 0.0, 1.5))


def missing_table(device: str, table: str) -> LookupTableError:
    """The error for a device with no lookup table ``table`` (:func:`latprof.lut.table_space`), naming both ways
    to get a predictor."""
    space, _, dtype = table.partition(":")
    dtype_flag = f" --dtype {dtype}" if dtype else ""
    space_flag = f" --space {space}" if space != "mnasnet" else ""
    build = f"`latprof build-lut --device {device}{space_flag}{dtype_flag}` or " if dtype in ("", *TABLE_DTYPES) else ""
    return LookupTableError(f"no {dtype + ' ' if dtype else ''}lookup table for device {device} (space {space}); run "
                            f"{build}`latprof calibrate --device {device}{dtype_flag} --from CSV|published`")


def table_prior(store: Store, device: str, space: str, *, own: bool = True) -> tuple[TablePrior, list] | None:
    """``device``'s table for ``space`` as a prior at its reference speed, and its calibration rows (raw); None
    when it has no table. ``own``: the prior of the device itself (its speed and the regression's
    leave-one-width-out figures, which take a few seconds, come with it), else of another device."""
    entries = load_entries(store.connection, device, space)
    if not entries:
        return None
    calibration = load_calibration(store.connection, device, space)
    probes = np.array([np.mean(e.settings["probe_ms"]) if e.settings.get("probe_ms") else np.nan
                       for e in entries + calibration])
    ref = float(np.nanpercentile(probes, _REF_PERCENTILE)) if np.isfinite(probes).any() else None
    units = [key_unit(e.layer_key) for e in entries]
    ops = [u.operators for u in units]
    raw = np.array([e.median_ms for e in entries])
    beta = _fit_beta(entries, raw, probes[:len(entries)], ref, ops)
    ms = np.array([e.median_ms * probe_factor(e.settings.get("probe_ms"), ref, beta) for e in entries])
    regression = fit_op_regression(ops, ms)
    estimate = np.array([regression.ops_ms(o).sum() for o in ops])
    layers = [i for i, u in enumerate(units) if u.layer is not None]
    neighbours = Neighbours.build([units[i].layer for i in layers], ms[layers], estimate[layers])
    speed = {"probe_ref_ms": ref, "probe_beta": beta, "probe_identity": probe_identity(entries[0].settings)}
    prior = TablePrior(device, dict(zip((e.layer_key for e in entries), ms)), regression, neighbours, own=own,
                       speed=speed if own else None, width_cv=_width_cv(units, ms) if own else None)
    return prior, calibration


def own_table_prior(store: Store, device: str, space: str) -> tuple[TablePrior, list]:
    """The device's own table prior at its reference speed, and its calibration rows (raw)."""
    found = table_prior(store, device, space)
    if found is None:
        raise missing_table(device, space)
    return found


def _width_cv(units: list[Unit], ms: np.ndarray) -> dict[str, Any]:
    """Leave-one-width-out: every entry of an output width held out at once ("channel counts the table lacks");
    an operator entry is held out with the operators of its output size."""
    widths = np.array([u.layer.out_channels if u.layer is not None else -u.operators[0].out_elems for u in units])
    raw, corrected = np.zeros(len(ms)), np.zeros(len(ms))
    for width in np.unique(widths):
        test = widths == width
        if test.all():
            return {}
        train = np.flatnonzero(~test)
        regression = fit_op_regression([units[i].operators for i in train], ms[train])
        estimate = np.array([regression.ops_ms(u.operators).sum() for u in units])
        layers = [i for i in train if units[i].layer is not None]
        neighbours = Neighbours.build([units[i].layer for i in layers], ms[layers], estimate[layers])
        raw[test] = estimate[test]
        corrected[test] = [estimate[i] * (neighbours.factor(units[i].layer) if units[i].layer is not None else 1.0)
                           for i in np.flatnonzero(test)]
    return {"regression_only": error_summary(raw, ms), "with_neighbours": error_summary(corrected, ms),
            "abs_rel_p90": float(np.percentile(np.abs(corrected / ms - 1), BAND_PERCENTILE))}


def load_prior(spec: str, store: Store | None, space: SearchSpace | None, *, device: str, dtype: str = "float32",
               notify: Callable[[str], None] = lambda _: None) -> Prior:
    """A prior by name: ``auto``, ``own``, ``analytic``, ``devices`` or ``table:DEVICE``, for models in ``dtype``.

    ``auto``: for a space, the device's own table, else the known devices' mix (never the device
    itself: it is the one being predicted), else analytic; for whole models (``space`` None), the
    device's own table when it has one, else analytic (the host's table as prior predicted Pixel 2
    and 3 models of a held-out family worse than analytic: 16.8% / 5.0% MAPE against 3.2% / 0.9%).
    Tables are those of ``dtype``; the known devices' costs are fitted on published float32 rows, so for
    another data type the mix holds the host's table of that type only.
    """
    space_name = space.name if space is not None else "mnasnet"
    table = table_space(space_name, dtype)
    own = table_prior(store, device, table) if spec in ("auto", "own") and store is not None else None
    if own is not None:
        return own[0]
    if spec == "own":
        raise missing_table(device, table)
    if spec.startswith("table:"):
        other = spec.split(":", 1)[1]
        found = table_prior(store, other, table, own=False) if store is not None else None
        if found is None:
            raise LookupTableError(f"no lookup table for device {other} (table {table}); run "
                                   f"`latprof build-lut --device {other} --space {space_name} --dtype {dtype}` or "
                                   "pick another prior")
        return found[0]
    if spec in ("auto", "devices") and space is not None:
        components, scales = known_costs(space, exclude=device, notify=notify) if dtype == "float32" else ({}, {})
        host = table_prior(store, "local", table, own=False) if device != "local" and store is not None else None
        if host is not None:
            components["local"] = _table_costs(host[0], space)
            scales["local"] = rescale(components["local"], space)
        if components:
            return DevicesPrior(components, scales)
    if spec in ("auto", "devices", "analytic"):
        return AnalyticPrior()
    raise PredictorError(f"unknown prior {spec!r}; use auto, analytic, devices or table:DEVICE")


def _table_costs(prior: TablePrior, space: SearchSpace) -> dict[str, float]:
    """A table prior's ms for every unique layer of ``space`` (measured, else its regression)."""
    units = [layer_unit("", layer) for layer in space.unique_layer_configs()]
    return {u.key: float(prior.costs(u)[0].sum()) for u in units}

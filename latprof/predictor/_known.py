"""Devices latprof already knows: per-key costs of the phones whose per-architecture latencies ship with it.

For a space with shipped data (``<space>_latency.csv``, one ``<device>_ms``
column per phone), each phone's per-key costs come from the one model fitted
with the analytic prior on (up to :data:`MAX_ROWS` of) all its rows. They are
computed on first use and cached as JSON under ``$LATPROF_CACHE/known``.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Callable

import numpy as np

from latprof.cache import cache_dir, write_atomic
from latprof.data import PUBLISHED
from latprof.predictor._model import Row, fit_units
from latprof.predictor._priors import AnalyticPrior, analytic_ms
from latprof.predictor._units import arch_units, layer_unit
from latprof.space import SearchSpace, get_space
from latprof.userfiles import read_csv

__all__ = ["known_costs", "rescale", "MAX_ROWS"]

MAX_ROWS = 2000
_SEED = 0


def _shipped(space: SearchSpace):
    path = PUBLISHED / f"{space.family}_latency.csv"
    if not path.is_file() or space.params() != get_space(space.name).params():
        return None, []
    columns, _ = read_csv(path)
    return path, [c[:-3] for c in columns if c.endswith("_ms")]


def _fit_device(space: SearchSpace, path, device: str) -> dict[str, float]:
    _, table = read_csv(path)
    rows = [(raw["arch"], float(raw[f"{device}_ms"])) for _, raw in table if raw.get(f"{device}_ms")]
    rows = random.Random(_SEED).sample(rows, min(MAX_ROWS, len(rows)))
    prior = AnalyticPrior()
    fit_rows = [Row(tuple(arch_units(space, space.parse(a))), ms) for a, ms in rows]
    model, _, _ = fit_units(fit_rows, prior)
    out = {}
    for layer in space.unique_layer_configs():
        unit = layer_unit("", layer)
        out[unit.key] = max(model.unit_ms(unit, prior), 0.0)
    return out


def _cached(space: SearchSpace, path, device: str, notify: Callable[[str], None]) -> dict[str, float]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    file = cache_dir() / "known" / f"{space.name}-{device}-{digest}.json"
    if file.is_file():
        return json.loads(file.read_text())
    notify(f"fitting the {space.name} costs of {device} from its published rows (once; cached in {file.parent})")
    costs = _fit_device(space, path, device)
    write_atomic(file, json.dumps(costs))
    return costs


def rescale(costs: dict[str, float], space: SearchSpace) -> float:
    """A device's ms per analytic ms over the space's keys (median): puts every device on one scale."""
    by_key = {u.key: u for u in (layer_unit("", layer) for layer in space.unique_layer_configs())}
    ratios = [ms / analytic_ms(by_key[k]) for k, ms in costs.items() if k in by_key and analytic_ms(by_key[k]) > 0]
    return float(np.median(ratios)) if ratios else 1.0


def known_costs(space: SearchSpace, exclude: str, notify: Callable[[str], None] = lambda _: None,
                ) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Per-key ms of every shipped phone of ``space`` except ``exclude``, and each one's analytic scale."""
    path, devices = _shipped(space)
    components = {d: _cached(space, path, d, notify) for d in devices if d != exclude}
    return components, {d: rescale(c, space) for d, c in components.items()}

"""The one predictor class: a stored document of per-unit device costs, for any model.

A document (:mod:`latprof.predictor._formats`) holds the device ms of every
layer key it was fitted for (``keys``), and the operator model that prices
anything else: an unseen layer (corrected by its measured neighbours) or a lone
operator of a .tflite file. Loading needs no table, prior or other device.

Architectures of the predictor's space take a fast path: each token slot of the
space (:meth:`latprof.space.SearchSpace.token_slots`) gets the summed ms of its
layers for every combination of its tokens, so :meth:`LatencyPredictor.predict_many`
is one matrix product and one gather over the encoded architectures.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from latprof.errors import ArchitectureError, PredictorError
from latprof.predictor._opmodel import MACS_PER_MS, Neighbours, OpRegression, analytic_regression
from latprof.predictor._units import Unit, arch_units, key_unit, layer_unit, tflite_units
from latprof.space import LayerConfig, get_space, op_family
from latprof.speed import SpeedReference

__all__ = ["LayerPrediction", "Prediction", "LatencyPredictor"]

_ANALYTIC = analytic_regression()


class LayerPrediction(NamedTuple):
    """One unit's share of a prediction; ``source``: ``table``, ``regression`` or ``calibrated``."""

    name: str
    layer_key: str
    ms: float
    source: str


@dataclass(frozen=True)
class Prediction:
    """A predicted latency (ms) with its band and per-unit breakdown (``latency = overhead + sum of layers``)."""

    latency_ms: float
    low_ms: float
    high_ms: float
    layers: list[LayerPrediction]
    overhead_ms: float
    device: str

    @property
    def regression_share(self) -> float:
        """Fraction of the latency priced by the operator regression rather than a fitted key."""
        reg = sum(r.ms for r in self.layers if r.source == "regression")
        return reg / self.latency_ms if self.latency_ms else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "latency_ms": self.latency_ms, "low_ms": self.low_ms,
                "high_ms": self.high_ms, "overhead_ms": self.overhead_ms, "regression_share": self.regression_share,
                "layers": [r._asdict() for r in self.layers]}


class _OpPricer:
    """Device ms of units the document has no key for."""

    def __init__(self, ops: dict[str, Any], per_layer_ms: float) -> None:
        self.regression = OpRegression.from_json(ops["regression"])
        self.ratio, self.analytic = float(ops["ratio"]), float(ops.get("analytic", 0.0))
        self.macs = float(ops.get("macs", 0.0))
        self.family_ratio, self.family_op_ms = ops.get("family_ratio", {}), ops.get("family_op_ms", {})
        self.per_layer_ms = per_layer_ms

    def estimate(self, unit: Unit) -> float:
        total = 0.0
        for op in unit.operators:
            family = op_family(op)
            total += (self.regression.op_ms(op) * (self.ratio + self.family_ratio.get(family, 0.0))
                      + self.family_op_ms.get(family, 0.0) + self.analytic * _ANALYTIC.op_ms(op)
                      + self.macs * op.macs / MACS_PER_MS)
        return max(total, 0.0)


class LatencyPredictor:
    """Predicts a device's latency for architectures of a space and for any .tflite file.

    Build one with :func:`latprof.predictor.load_predictor`, or from a fit's ``document``.
    """

    def __init__(self, document: dict[str, Any], *, space: str | None = None) -> None:
        self.document = document
        self.device: str = document["device"]
        self.space: str = document["space"]
        self.dtype: str = document.get("dtype", "float32")  # what the models it prices compute in
        self.space_params: dict[str, Any] = dict(document.get("space_params") or {})
        self.runtime: str = document.get("runtime", "")
        self.prior: str = document.get("prior", "")
        self.measured_with: dict[str, Any] | None = document.get("measured_with")
        self.intercept_ms = float(document["intercept_ms"])
        self.per_layer_ms = float(document.get("per_layer_ms", 0.0))
        self._keys = {k: (float(ms), source) for k, (ms, source) in document["keys"].items()}
        self._ops = _OpPricer(document["ops"], self.per_layer_ms)
        band = document.get("band", {})
        self._band, self._unpriced_band = float(band.get("rel", 0.1)), float(band.get("unpriced_rel", 0.1))
        self._neighbours: Neighbours | None = None
        self._units: dict[str, tuple[float, str]] = {}
        arch_space = self.space if self.space != "*" else space
        self._space_obj = get_space(arch_space, **self.space_params) if arch_space else None
        self._slots: _Slots | None = None
        self._memo: dict[bytes, float] = {}

    @property
    def speed(self) -> SpeedReference | None:
        """The reference speed the predictions hold at (None when its table was built without the probe)."""
        speed = self.document.get("speed")
        if not speed or speed.get("probe_ref_ms") is None:
            return None
        return SpeedReference(speed["probe_ref_ms"], speed["probe_beta"],
                              f"the {self.space} predictor fitted {self.document.get('created_at', '?')}: "
                              f"10th-percentile probe time of its table, exponent {speed['probe_beta']:.2f}")

    # ------------------------------------------------------------ units

    def layer_ms(self, layer: LayerConfig) -> tuple[float, str]:
        """A layer's device ms (its share of a network) and where it came from."""
        return self._unit(layer_unit("", layer))

    def _unit(self, unit: Unit) -> tuple[float, str]:
        hit = self._keys.get(unit.key) or self._units.get(unit.key)
        if hit is None:
            ms = self._ops.estimate(unit)
            if unit.layer is not None:
                ms = ms * self._neighbour_factor(unit.layer) + self.per_layer_ms
            hit = self._units[unit.key] = (max(ms, 0.0), "regression")
        return hit

    def _neighbour_factor(self, layer: LayerConfig) -> float:
        if self._neighbours is None:
            layers, ms, estimates = [], [], []
            for key, (value, source) in self._keys.items():
                unit = key_unit(key)
                if unit.layer is None or source == "regression":
                    continue
                layers.append(unit.layer)
                ms.append(max(value - self.per_layer_ms, 1e-6))
                estimates.append(self._ops.estimate(unit))
            self._neighbours = Neighbours.build(layers, np.array(ms), np.array(estimates))
        return self._neighbours.factor(layer)

    def _assemble(self, rows: Sequence[LayerPrediction], total: float | None = None,
                  unpriced: float | None = None) -> Prediction:
        """The one Prediction assembly: latency, band (wider by the share the regression priced) and rows."""
        if total is None:
            total = self.intercept_ms + sum(r.ms for r in rows)
            unpriced = sum(r.ms for r in rows if r.source == "regression")
        rel = self._band + self._unpriced_band * (unpriced / total if total > 0 else 0.0)
        return Prediction(total, total * (1 - rel), total * (1 + rel), list(rows), self.intercept_ms, self.device)

    def _rows(self, units: Sequence[Unit]) -> list[LayerPrediction]:
        return [LayerPrediction(u.name, u.key, *self._unit(u)) for u in units]

    # ------------------------------------------------------------ models

    def predict(self, model: Any) -> Prediction:
        """Predicted latency of an architecture (object or string) or a .tflite file, with band and breakdown."""
        if isinstance(model, Path) or (isinstance(model, str) and model.endswith(".tflite")):
            self._check_dtype(Path(model))
            return self._assemble(self._rows(tflite_units(model)))
        space = self._arch_space()
        arch = space.parse(model) if isinstance(model, str) else model
        slots = self._slot_tables()
        if slots is not None:
            try:
                tokens = space.encode([arch])[0].tolist()
            except ArchitectureError:
                tokens = None
            if tokens is not None:
                rows, total, unpriced = [], self.intercept_ms, 0.0
                for j, pairs in enumerate(slots.strides):
                    part, ms, unpriced_ms = self._slot_row(slots, j, sum(tokens[c] * k for c, k in pairs))
                    rows += part
                    total += ms
                    unpriced += unpriced_ms
                return self._assemble(rows, total, unpriced)
        return self._assemble(self._rows(arch_units(space, arch)))

    def _check_dtype(self, path: Path) -> None:
        from latprof.benchmarking.record import inspect_model

        found = inspect_model(path).dtype
        if found != self.dtype:
            raise PredictorError(f"{path} computes in {found}, but this predictor of {self.device} prices {self.dtype} "
                                 f"models; use the device's {found} predictor (`latprof predict` picks it by the "
                                 f"file), or export the model as {self.dtype}")

    def predict_many(self, archs: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Predicted latencies (ms, float64) of many architectures, or of token rows of the space."""
        space = self._arch_space()
        given = isinstance(archs, np.ndarray)
        if given:
            tokens = archs
        else:
            try:
                tokens = space.encode(archs)
            except ArchitectureError:
                return np.array([self.predict(a).latency_ms for a in archs], dtype=np.float64)
        slots = self._slot_tables()
        if slots is None:
            return np.array([self._memo_ms(space, row) for row in np.asarray(tokens, np.uint8)], dtype=np.float64)
        if given:
            slots.check(tokens)
        codes = (tokens.astype(np.float32) @ slots.W).astype(np.intp)
        codes += slots.offsets
        return self.intercept_ms + slots.flat[codes].sum(axis=1)

    def _arch_space(self):
        if self._space_obj is None:
            raise PredictorError(f"the predictor of {self.device} was fitted on whole models, not a search space; "
                                 "pass a .tflite file, or calibrate for a space with `latprof calibrate --space`")
        return self._space_obj

    def _memo_ms(self, space, row: np.ndarray) -> float:
        key = row.tobytes()
        ms = self._memo.get(key)
        if ms is None:
            ms = self._memo[key] = self.intercept_ms + sum(n * self._unit(u)[0] for u, n in _bag(space, key))
        return ms

    # ------------------------------------------------------------ the fast path

    def _slot_tables(self) -> "_Slots | None":
        """Every slot's ms for every combination of its tokens (None: the space has no token slots)."""
        if self._slots is None:
            slots = self._arch_space().token_slots()
            if slots is None:
                return None
            flat = [[sum(self._unit(layer_unit(n, layer))[0] for n, layer in slot.layers(combo))
                     for combo in itertools.product(*(range(size) for size in slot.sizes))] for slot in slots]
            self._slots = _Slots.build(slots, flat)
        return self._slots

    def _slot_row(self, slots: "_Slots", j: int, local: int) -> tuple[tuple[LayerPrediction, ...], float, float]:
        hit = slots.rows.get((j, local))
        if hit is None:
            slot = slots.slots[j]
            combo = tuple(int(c) for c in np.unravel_index(local, slot.sizes)) if slot.sizes else ()
            rows = tuple(self._rows([layer_unit(n, layer) for n, layer in slot.layers(combo)]))
            hit = slots.rows[(j, local)] = (rows, sum(r.ms for r in rows),
                                            sum(r.ms for r in rows if r.source == "regression"))
        return hit


_BAGS: dict[str, dict[bytes, tuple[tuple[Unit, int], ...]]] = {}


def _bag(space, tokens: bytes) -> tuple[tuple[Unit, int], ...]:
    """An architecture's units with their counts, by its token bytes: the same for every predictor of the
    space, so kept once per process (a space without token slots has at most a few ten thousand)."""
    bags = _BAGS.setdefault(space.key, {})
    bag = bags.get(tokens)
    if bag is None:
        units: dict[str, list] = {}
        for u in arch_units(space, space.from_tokens(list(tokens))):
            units.setdefault(u.key, [u, 0])[1] += 1
        bag = bags[tokens] = tuple((u, n) for u, n in units.values())
    return bag


@dataclass
class _Slots:
    """Token slots as one gather: ``codes = tokens @ W + offsets`` index ``flat`` (ms per slot combination)."""

    slots: list
    W: np.ndarray
    offsets: np.ndarray
    limits: np.ndarray
    flat: np.ndarray
    strides: list[list[tuple[int, int]]]
    rows: dict[tuple[int, int], tuple[tuple[LayerPrediction, ...], float, float]]

    @classmethod
    def build(cls, slots: list, flat: list[list[float]]) -> "_Slots":
        width = max(c for s in slots for c in s.columns) + 1
        W, limits = np.zeros((width, len(slots)), np.float32), np.zeros(width, np.int64)
        strides = []
        for j, slot in enumerate(slots):
            steps = [int(v) for v in np.cumprod((1,) + tuple(slot.sizes[::-1]))[:-1][::-1]]
            strides.append(list(zip(slot.columns, steps)))
            for column, step in strides[-1]:
                W[column, j] += step
            limits[list(slot.columns)] = slot.sizes
        offsets = np.cumsum([0] + [len(f) for f in flat[:-1]]).astype(np.intp)
        return cls(slots, W, offsets, limits, np.concatenate([np.asarray(f, float) for f in flat]), strides, {})

    def check(self, tokens: np.ndarray) -> None:
        if tokens.ndim != 2 or tokens.shape[1] != len(self.limits):
            raise PredictorError(f"tokens must be an array of shape (n, {len(self.limits)}), got {tokens.shape}")
        if len(tokens) and ((tokens.max(axis=0) >= self.limits) | (tokens.min(axis=0) < 0)).any():
            raise PredictorError("a token is out of range for the space; check the tokens come from this space's "
                                 "decisions")

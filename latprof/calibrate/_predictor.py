"""Predicting a calibrated device: reference-device costs by kind, mapped through the fitted ratios."""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from latprof.calibrate._calibration import Calibration
from latprof.calibrate._features import KINDS
from latprof.calibrate._opcost import OpCostModel, op_features

__all__ = ["CalibratedPredictor", "ReferenceSplitter"]

_OTHER = KINDS.index("other")


@lru_cache(maxsize=8192)
def _layer_ops(key: str) -> tuple:
    """The TFLite ops of one layer, from a TF-free single-layer model."""
    from latprof.space import LayerConfig, read_tflite_ops
    from latprof.space._flatbuffer import layer_tflite_bytes

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "layer.tflite"
        path.write_bytes(layer_tflite_bytes(LayerConfig.from_key(key)))
        return tuple(read_tflite_ops(path))


class ReferenceSplitter:
    """An architecture's reference-device time and multiply-adds per operator kind.

    Each layer's reference time comes from the reference device's fitted
    predictor (its lookup table) when given, else from the op cost model times
    the in-sequence factor; it is split across kinds in proportion to the op
    cost model's estimates for the layer's operators.
    """

    def __init__(self, op_costs: OpCostModel, sequence_factor: float, reference=None) -> None:
        self.op_costs = op_costs
        self.sequence_factor = sequence_factor
        self.reference = reference
        self._split: dict[str, tuple[np.ndarray, float, np.ndarray]] = {}

    def _layer(self, key: str) -> tuple[np.ndarray, float, np.ndarray]:
        """(share of the layer's time per kind, isolated ms estimate, GMACs per kind) of one layer key."""
        split = self._split.get(key)
        if split is None:
            ops = list(_layer_ops(key))
            ms = self.op_costs.kind_ms(ops)
            gmacs = np.zeros(len(KINDS))
            for op in ops:
                kind, g, _ = op_features(op)
                gmacs[KINDS.index(kind)] += g
            total = ms.sum()
            split = self._split[key] = (ms / total if total > 0 else ms, float(total), gmacs)
        return split

    def layers(self, arch) -> tuple[list[tuple[str, str, np.ndarray, np.ndarray]], float]:
        """``[(position, layer key, reference ms per kind, GMACs per kind)]`` and the reference overhead (ms)."""
        from latprof.space._layers import named_layers

        if self.reference is not None:
            ref = self.reference.predict(arch)
            rows = []
            for r in ref.layers:
                shares, _, gmacs = self._layer(r.layer_key)
                rows.append((r.name, r.layer_key, shares * r.ms, gmacs))
            return rows, ref.overhead_ms
        rows = []
        for name, layer in named_layers(arch):
            key = layer.layer_key()
            shares, iso, gmacs = self._layer(key)
            rows.append((name, key, shares * iso * self.sequence_factor, gmacs))
        return rows, 0.0

    def features(self, arch) -> tuple[np.ndarray, np.ndarray]:
        """Reference ms per kind (overhead counted as ``other``) and GMACs per kind, :data:`KINDS` order."""
        rows, overhead = self.layers(arch)
        ms = sum((r[2] for r in rows), np.zeros(len(KINDS)))
        ms[_OTHER] += overhead
        return ms, sum((r[3] for r in rows), np.zeros(len(KINDS)))


class CalibratedPredictor:
    """Latency on a calibrated device, for architectures and .tflite files.

    ``predict`` returns the same Prediction as the table-based predictor, with
    each layer marked ``calibrated``; the band is the calibration's
    leave-one-out mean absolute percentage error.
    """

    def __init__(self, calibration: Calibration, reference=None) -> None:
        self.calibration = calibration
        self.device = calibration.device
        self.runtime = calibration.model.runtime  # the runtime version predicted for ("" when rows named none)
        self.space = getattr(reference, "space", "mnasnet")
        self.splitter = ReferenceSplitter(calibration.op_costs, calibration.sequence_factor, reference)
        model = calibration.model
        self._ratios = np.array([model.ratios[k] for k in KINDS])
        self._per_gmac = np.array([model.per_gmac.get(k, 0.0) for k in KINDS])
        self._band = calibration.report.get("leave_one_out", {}).get("mape", 0.1)

    def _prediction(self, rows, overhead_ms: float):
        from latprof.predict import Prediction

        total = overhead_ms + sum(r.ms for r in rows)
        return Prediction(total, total * (1 - self._band), total * (1 + self._band), rows, overhead_ms, self.device)

    def predict(self, arch):
        """Predicted latency of ``arch`` on the device, with band and per-layer breakdown."""
        from latprof.predict import LayerPrediction

        layers, overhead = self.splitter.layers(arch)
        rows = [LayerPrediction(name, key, float(v @ self._ratios + g @ self._per_gmac), "calibrated")
                for name, key, v, g in layers]
        return self._prediction(rows, self.calibration.model.intercept_ms + overhead * self._ratios[_OTHER])

    def predict_many(self, archs: Sequence) -> np.ndarray:
        """Predicted latencies (ms) of many architectures."""
        intercept = self.calibration.model.intercept_ms
        out = []
        for arch in archs:
            ms, gmacs = self.splitter.features(arch)
            out.append(intercept + ms @ self._ratios + gmacs @ self._per_gmac)
        return np.array(out, dtype=np.float64)

    def predict_tflite(self, path: str | Path, store=None):
        """Predict a .tflite file from its reference-device cost, measured once on the reference device."""
        from latprof.calibrate._reference import host_reference
        from latprof.predict import LayerPrediction
        from latprof.store import Store

        own = store is None
        store = store or Store()
        try:
            cost, _ = host_reference(Path(path), store, device=self.calibration.reference)
        finally:
            if own:
                store.close()
        gmacs = cost.gmacs()
        rows = [LayerPrediction(kind, f"kind:{kind}", cost.kind_ms[kind] * self._ratios[i] + gmacs[i] * self._per_gmac[i],
                                "calibrated")
                for i, kind in enumerate(KINDS) if kind in cost.kind_ms]
        return self._prediction(rows, self.calibration.model.intercept_ms)

"""Predicting a calibrated device: reference-device costs by kind, mapped through the fitted ratios."""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from latprof.calibrate._calibration import Calibration
from latprof.calibrate._features import KINDS
from latprof.calibrate._opcost import OpCostModel

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
    """An architecture's reference-device time per operator kind.

    Each layer's reference time comes from the reference device's fitted
    predictor (its lookup table) when given, else from the op cost model times
    the in-sequence factor; it is split across kinds in proportion to the op
    cost model's estimates for the layer's operators.
    """

    def __init__(self, op_costs: OpCostModel, sequence_factor: float, reference=None) -> None:
        self.op_costs = op_costs
        self.sequence_factor = sequence_factor
        self.reference = reference
        self._shares: dict[str, np.ndarray] = {}

    def _shares_of(self, key: str) -> tuple[np.ndarray, float]:
        split = self._shares.get(key)
        if split is None:
            split = self._shares[key] = self.op_costs.kind_ms(list(_layer_ops(key)))
        total = split.sum()
        return (split / total if total > 0 else split), total

    def layers(self, arch) -> tuple[list[tuple[str, str, np.ndarray]], float]:
        """``[(position, layer key, reference ms per kind)]`` and the reference per-invoke overhead (ms)."""
        from latprof.space._layers import named_layers

        if self.reference is not None:
            ref = self.reference.predict(arch)
            rows = [(r.name, r.layer_key, self._shares_of(r.layer_key)[0] * r.ms) for r in ref.layers]
            return rows, ref.overhead_ms
        rows = []
        for name, layer in named_layers(arch):
            key = layer.layer_key()
            shares, iso = self._shares_of(key)
            rows.append((name, key, shares * iso * self.sequence_factor))
        return rows, 0.0

    def kind_ms(self, arch) -> np.ndarray:
        """Reference ms per kind (:data:`KINDS` order), overhead counted as ``other``."""
        rows, overhead = self.layers(arch)
        out = sum((v for *_, v in rows), np.zeros(len(KINDS)))
        out[_OTHER] += overhead
        return out


class CalibratedPredictor:
    """Latency on a calibrated device, for architectures and .tflite files.

    ``predict`` returns the same Prediction as the table-based predictor, with
    each layer marked ``calibrated``; the band is the calibration's
    leave-one-out mean absolute percentage error.
    """

    def __init__(self, calibration: Calibration, reference=None) -> None:
        self.calibration = calibration
        self.device = calibration.device
        self.space = getattr(reference, "space", "mnasnet")
        self.splitter = ReferenceSplitter(calibration.op_costs, calibration.sequence_factor, reference)
        self._ratios = np.array([calibration.model.ratios[k] for k in KINDS])
        self._band = calibration.report.get("leave_one_out", {}).get("mape", 0.1)

    def _prediction(self, rows, overhead_ms: float):
        from latprof.predict import Prediction

        total = overhead_ms + sum(r.ms for r in rows)
        return Prediction(total, total * (1 - self._band), total * (1 + self._band), rows, overhead_ms, self.device)

    def predict(self, arch):
        """Predicted latency of ``arch`` on the device, with band and per-layer breakdown."""
        from latprof.predict import LayerPrediction

        layers, overhead = self.splitter.layers(arch)
        rows = [LayerPrediction(name, key, float(v @ self._ratios), "calibrated") for name, key, v in layers]
        return self._prediction(rows, self.calibration.model.intercept_ms + overhead * self._ratios[_OTHER])

    def predict_many(self, archs: Sequence) -> np.ndarray:
        """Predicted latencies (ms) of many architectures."""
        intercept = self.calibration.model.intercept_ms
        return np.array([intercept + self.splitter.kind_ms(a) @ self._ratios for a in archs], dtype=np.float64)

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
        rows = [LayerPrediction(kind, f"kind:{kind}", cost.kind_ms[kind] * self._ratios[i], "calibrated")
                for i, kind in enumerate(KINDS) if kind in cost.kind_ms]
        return self._prediction(rows, self.calibration.model.intercept_ms)

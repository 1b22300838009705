"""Latency prediction from a device's lookup table: regression, end-to-end correction, Predictor.

* :func:`fit_predictor` / :func:`save_predictor`: fit a device's predictor
  from its table and calibration set (``latprof fit``) and store it as JSON.
* :func:`load_predictor` -> :class:`Predictor`: ``predict(arch)`` (with band
  and per-layer breakdown, each layer marked ``table`` or ``regression``),
  ``predict_many(archs)``, ``predict_tokens(tokens)`` and ``predict_tflite(path)``.
"""

from __future__ import annotations

from latprof.lut import _tables as T
from latprof.predict._features import layer_ops
from latprof.predict._fit import (
    FORMAT, errors_summary, fit_predictor, load_model, normalized_table, predictor_speed, save_predictor,
)
from latprof.predict._predictor import LayerPrediction, Prediction, Predictor
from latprof.errors import LatprofError
from latprof.store import Store

__all__ = ["Predictor", "Prediction", "LayerPrediction", "load_predictor", "fit_predictor", "save_predictor",
           "errors_summary", "FORMAT", "layer_ops", "predictor_speed"]


def load_predictor(device: str = "local", space: str = "mnasnet", *, store: Store | None = None) -> Predictor:
    """The latest fitted predictor of ``device`` for ``space`` (default store: ``$LATPROF_DB``).

    A device without a table of its own but with a calibration (``latprof calibrate``)
    gets a :class:`latprof.calibrate.CalibratedPredictor` with the same methods.
    Raises LookupTableError when the device has neither a table nor a calibration,
    PredictorError when its table was never fitted.
    """
    own = store is None
    store = store or Store()
    try:
        try:
            model, _ = load_model(store, device, space)
        except LatprofError:
            from latprof.calibrate import load_calibrated_predictor

            calibrated = load_calibrated_predictor(device, space, store)
            if calibrated is None:
                raise
            return calibrated
        entries = T.load_entries(store.connection, device, space)
    finally:
        if own:
            store.close()
    return Predictor(model, normalized_table(entries, model["probe_ref_ms"], model["probe_beta"]))

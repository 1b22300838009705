"""One latency predictor for every device and every kind of evidence.

* :func:`fit_predictor` fits a device's predictor: latency = intercept + the
  sum of its units' costs, each a prior's cost corrected by the device's own
  end-to-end evidence (its lookup-table calibration set, a CSV, published
  rows). Priors (:func:`load_prior`): the device's own table, another
  device's, an analytic cost, or a mix of the devices latprof knows.
  :func:`save_predictor` stores it as one JSON document.
* :func:`load_predictor` -> :class:`LatencyPredictor`: ``predict`` (an
  architecture or any .tflite, with band and per-layer breakdown) and
  ``predict_many`` (the fast path a search uses).
* :func:`read_observations`, :class:`Observation`: end-to-end evidence;
  :func:`select_archs`: which architectures to measure.
* :func:`error_summary` (the one metrics function) and :mod:`latprof.predictor.baselines`
  (FLOPs, op-kind counts, one-hot ridge).
"""

from __future__ import annotations

from latprof.errors import PredictorError
from latprof.lut import load_entries, table_space
from latprof.predictor import baselines
from latprof.predictor._evidence import Observation, read_observations
from latprof.predictor._fit import WHOLE_MODELS, Fitted, fit_predictor, load_prior, save_predictor, select_archs
from latprof.predictor._formats import FORMAT, from_stored
from latprof.predictor._metrics import error_summary
from latprof.predictor._sources import missing_table
from latprof.predictor._predictor import LatencyPredictor, LayerPrediction, Prediction
from latprof.store import Store

__all__ = ["LatencyPredictor", "Prediction", "LayerPrediction", "load_predictor", "fit_predictor", "save_predictor",
           "Fitted", "load_prior", "select_archs", "Observation", "read_observations", "error_summary", "FORMAT",
           "baselines"]


def load_predictor(device: str = "local", space: str = "mnasnet", *, store: Store | None = None,
                   dtype: str = "float32") -> LatencyPredictor:
    """The newest stored predictor of ``device`` for ``space`` (else its whole-model one) that prices models in
    ``dtype``; default store ``$LATPROF_DB``.

    Raises LookupTableError when the device has neither a predictor nor a table,
    PredictorError when its table was never fitted or the stored format is old.
    """
    own = store is None
    store = store or Store(writable=False)
    try:
        table = table_space(space, dtype)
        row = store.latest_predictor(device, table, whole=table_space(WHOLE_MODELS, dtype))
        if row is None:
            if load_entries(store.connection, device, table):
                flags = (f" --space {space}" if space != "mnasnet" else "") + \
                    (f" --dtype {dtype}" if dtype != "float32" else "")
                raise PredictorError(f"no fitted predictor for device {device} (space {space}, {dtype}); "
                                     f"run `latprof fit --device {device}{flags}`")
            raise missing_table(device, table)
        return from_stored(row, space)
    finally:
        if own:
            store.close()

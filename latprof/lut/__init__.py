"""Per-layer latency lookup tables: building them on a device, resumably, and reading them back.

* :func:`build_lut` measures every unique layer configuration of a search
  space as a micro-model, then a calibration set of whole architectures; each
  result is committed as it arrives and a rerun resumes.
* :func:`measure_ops` measures the recovered layers and lone operators of
  any .tflite models (the built-in :func:`op_probe_models`, or a user's own)
  into the same table, operators under :meth:`latprof.space.Operator.key`.
* :func:`load_table`, :func:`load_entries`, :func:`load_calibration` read a
  device's table and calibration set from a :class:`~latprof.store.Store`
  connection. Each data type (:data:`TABLE_DTYPES`) is a table of its own,
  stored under :func:`table_space`.
"""

from latprof.lut._build import (
    CALIBRATION_SEED, DEFAULT_CALIBRATION, LUT_RUNS, LUT_WARMUP, BuildSummary, build_lut, calibration_archs,
)
from latprof.lut._ops import OpsSummary, measure_ops, model_units
from latprof.lut._probes import PROBE_STAGES, PROBES_VERSION, op_probe_models
from latprof.lut._runners import DEVICE_BATCH, Result, result_from_measurement
from latprof.lut._tables import (
    SETTING_KEYS, TABLE_DTYPES, CalibrationRow, LutEntry, finished_builds, load_calibration, load_entries, load_table,
    table_identity, table_space,
)

__all__ = [
    "build_lut", "BuildSummary", "calibration_archs", "DEFAULT_CALIBRATION", "CALIBRATION_SEED", "LUT_RUNS",
    "LUT_WARMUP", "Result", "result_from_measurement", "DEVICE_BATCH", "SETTING_KEYS", "LutEntry", "CalibrationRow",
    "load_table", "load_entries", "load_calibration", "finished_builds", "table_identity", "TABLE_DTYPES", "table_space", "measure_ops",
    "OpsSummary", "model_units", "op_probe_models", "PROBE_STAGES", "PROBES_VERSION",
]

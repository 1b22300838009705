"""Phone predictors without owning the phone: calibrate from end-to-end measurements.

A few end-to-end latencies on a device (measured by a colleague, or published)
plus the per-operator-kind costs of the same models on the reference device
(the host) give a predictor for the device: :func:`calibrate` fits and stores
it, :func:`load_calibration` reads it back.
"""

from latprof.calibrate._calibration import (
    FORMAT, PUBLISHED, Calibration, CalibrationRow, calibrate, load_calibration, read_rows,
)
from latprof.calibrate._features import KINDS, ReferenceCost, op_kind, reference_cost
from latprof.calibrate._fit import FlopsLinearModel, KindRatioModel, cross_validate, fit_flops_linear, fit_kind_ratios
from latprof.calibrate._models import ModelSpec, model_spec, tflite_for
from latprof.calibrate._predictor import CalibratedPredictor, ReferenceSplitter
from latprof.calibrate._reference import host_reference
from latprof.errors import LatprofError


def load_calibrated_predictor(device: str, space: str, store):
    """``device``'s calibrated predictor, its reference device's table predictor inside when fitted; or None."""
    calibration = load_calibration(device, store)
    if calibration is None:
        return None
    from latprof.predict import load_predictor

    try:
        reference = load_predictor(calibration.reference, space, store=store)
    except LatprofError:  # no reference table: layer times come from the op cost model
        reference = None
    return CalibratedPredictor(calibration, reference)


__all__ = [
    "calibrate", "load_calibration", "load_calibrated_predictor", "CalibratedPredictor", "ReferenceSplitter", "read_rows", "Calibration", "CalibrationRow", "PUBLISHED", "FORMAT",
    "KINDS", "ReferenceCost", "op_kind", "reference_cost", "host_reference",
    "KindRatioModel", "FlopsLinearModel", "fit_kind_ratios", "fit_flops_linear", "cross_validate",
    "ModelSpec", "model_spec", "tflite_for",
]

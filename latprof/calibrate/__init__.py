"""Phone predictors without owning the phone: calibrate from end-to-end measurements.

A few end-to-end latencies on a device (measured by a colleague, or published)
plus the per-operator-kind costs of the same models on the reference device
(the host) give a predictor for the device: :func:`calibrate` fits and stores
it, :func:`load_calibration` reads it back.

For architectures of one search space (NAS-Bench-201, FBNet, MnasNet),
:func:`calibrate_space` fits a predictor from N measured architectures with the
reference device's lookup table of the space (or an analytic cost) as prior;
:func:`select_active` says which N to measure.
"""

from latprof.calibrate._calibration import (
    FORMAT, PUBLISHED, Calibration, CalibrationRow, calibrate, load_calibration, read_rows,
)
from latprof.calibrate._features import KINDS, ReferenceCost, op_kind, reference_cost
from latprof.calibrate._fit import FlopsLinearModel, KindRatioModel, cross_validate, fit_flops_linear, fit_kind_ratios
from latprof.space import ModelSpec, model_spec, tflite_for
from latprof.calibrate._predictor import CalibratedPredictor, ReferenceSplitter
from latprof.calibrate._reference import host_reference
from latprof.calibrate._space import (
    SPACE_FORMAT, PriorCosts, SpaceCalibration, SpaceModel, SpacePredictor, SpaceRow, bags, calibrate_space,
    fit_space_model, layer_info, load_space_calibration, predict_bags, ranking_report, read_space_rows,
    select_active, select_random, suggest_archs,
)
from latprof.errors import LatprofError


def load_calibrated_predictor(device: str, space: str, store):
    """``device``'s calibrated predictor for ``space``, or None.

    A calibration from architectures of the space (``latprof calibrate --space``) comes first;
    otherwise, for the MnasNet space, one from whole models, with the reference device's
    table predictor inside when fitted.
    """
    space_calibration = load_space_calibration(device, space, store)
    if space_calibration is not None:
        return SpacePredictor(space_calibration)
    calibration = load_calibration(device, store) if space == "mnasnet" else None
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
    "calibrate_space", "load_space_calibration", "read_space_rows", "SpaceCalibration", "SpacePredictor", "SpaceRow",
    "SPACE_FORMAT", "select_active", "select_random", "suggest_archs", "ranking_report", "PriorCosts", "SpaceModel",
    "bags", "layer_info", "fit_space_model", "predict_bags",
]

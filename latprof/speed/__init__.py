"""Measurements that hold on a drifting device: the speed probe, the reference speed, interleaved rounds.

* :func:`probe_model` / :func:`write_probe`: the speed probe (:data:`PROBE_ARCH`),
  a small fixed network timed next to every measurement; :func:`reference_model`
  a named reference (``mobilenet-v2``) or .tflite to time models against.
* :class:`SpeedReference`, :func:`reference_speed`: the device's reference speed
  (a fitted predictor's, else the device's own), one definition for ``latprof
  measure`` and ``latprof predict``; :func:`probe_factor` the rescaling rule
  ``latency * (reference_probe_ms / probe_ms) ** beta``.
* :func:`run_session`: models timed round by round with the probe between rounds;
  :func:`pooled_stats`, :func:`at_reference` and :func:`ratio_summary` the figures.
"""

from latprof.speed._models import PROBE_ARCH, PROBE_NAME, probe_model, reference_model, write_probe
from latprof.speed._reference import (
    IDENTITY_KEYS, SpeedReference, establish_device_reference, probe_factor, probe_identity, reference_speed,
    register_reference, resolve_reference,
)
from latprof.speed._rounds import (
    DEFAULT_ROUNDS, PROBE_RUNS, PROBE_WARMUP, Session, at_reference, pooled_stats, probe_request, ratio_summary,
    run_identity, run_session, split_runs, time_probe,
)

__all__ = [
    "PROBE_ARCH", "PROBE_NAME", "probe_model", "reference_model", "write_probe",
    "IDENTITY_KEYS", "SpeedReference", "establish_device_reference", "probe_factor", "probe_identity",
    "reference_speed", "register_reference", "resolve_reference",
    "DEFAULT_ROUNDS", "PROBE_RUNS", "PROBE_WARMUP", "Session", "at_reference", "pooled_stats", "probe_request",
    "ratio_summary", "run_session", "split_runs", "time_probe", "run_identity",
]

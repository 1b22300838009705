"""Latency-aware architecture search with the MnasNet reward.

* :class:`SearchConfig` + :func:`run_search` -> :class:`SearchResult`: sample,
  score (``reward = ACC x (LAT/T)^w``, :class:`Reward`), store every trial as it
  finishes (SQLite), resume by replay.
* Controllers (ask/tell): :class:`PPOController` (LSTM policy, PPO),
  :class:`EvolutionController` (regularized evolution), :class:`RandomController`.
* Accuracy estimators: :class:`ZeroCostEstimator` (NASWOT, Mellor et al., ICML
  2021), :class:`ProxyTrainEstimator` (a few epochs on ``shapes10`` or a folder),
  :class:`CallableEstimator` (``python:MODULE:FUNCTION``); all are proxies.
* Latency: any :class:`LatencyModel` (``predict_many``), e.g. the predictor of
  :mod:`latprof.predictor`, or :class:`MeasuredLatency` on a device.
* :func:`write_outputs`, :func:`verify`, :func:`pareto_front`: the result files
  and on-device checks.
"""

from latprof.search._accuracy import (
    AccuracyEstimator,
    CallableEstimator,
    ProxyTrainEstimator,
    ZeroCostEstimator,
    make_estimator,
    scaled_copy,
)
from latprof.search._controllers import (
    CONTROLLER_NAMES,
    Controller,
    EvolutionController,
    PPOController,
    RandomController,
)
from latprof.search._data import ImageData, load_image_folder, shapes10
from latprof.search._latency import LatencyModel, MeasuredLatency
from latprof.search._outputs import verify, write_outputs, write_verify
from latprof.search._reward import REWARD_CHOICES, Reward
from latprof.search._runner import (
    LATENCY_SOURCES,
    TARGET_BAND,
    Progress,
    SearchConfig,
    SearchResult,
    pareto_front,
    run_search,
)
from latprof.search._trials import Trial

__all__ = [
    "CONTROLLER_NAMES",
    "LATENCY_SOURCES",
    "REWARD_CHOICES",
    "TARGET_BAND",
    "AccuracyEstimator",
    "CallableEstimator",
    "Controller",
    "EvolutionController",
    "ImageData",
    "LatencyModel",
    "MeasuredLatency",
    "PPOController",
    "Progress",
    "ProxyTrainEstimator",
    "RandomController",
    "Reward",
    "SearchConfig",
    "SearchResult",
    "Trial",
    "ZeroCostEstimator",
    "load_image_folder",
    "make_estimator",
    "pareto_front",
    "run_search",
    "scaled_copy",
    "shapes10",
    "verify",
    "write_outputs",
    "write_verify",
]

"""Interleaved rounds: one measurement split into rounds with the probe (and other models) between them.

A session times, round by round, the probe and then each model in turn
(``probe, m1, m2, …, probe, m1, m2, …, probe``), so every model sees the same
speed changes, and each round of a model lies between two probe times. From the
rounds come the raw figure, the figure at the reference speed (each round
rescaled by the probe times around it) and ratios between models (per round).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from latprof.benchmarking.record import LatencyStats, ModelInfo
from latprof.devices import BenchmarkRequest, BenchmarkRun, Device
from latprof.speed._models import PROBE_NAME
from latprof.speed._reference import SpeedReference, probe_identity

__all__ = ["DEFAULT_ROUNDS", "PROBE_RUNS", "PROBE_WARMUP", "Session", "run_session", "split_runs", "pooled_stats",
           "probe_request", "time_probe", "run_identity",
           "at_reference", "ratio_summary"]

DEFAULT_ROUNDS = 5
PROBE_RUNS = 10  # the probe time is the median of this many invokes, as in build-lut's batch runner
PROBE_WARMUP = 5


def split_runs(num_runs: int, rounds: int) -> list[int]:
    """``num_runs`` timed runs as evenly as possible over at most ``rounds`` rounds."""
    rounds = max(1, min(rounds, num_runs))
    return [num_runs // rounds + (i < num_runs % rounds) for i in range(rounds)]


@dataclass(frozen=True)
class Session:
    """What a session timed: per model, its runs round by round; the probe's runs, before and after each round."""

    rounds: list[list[BenchmarkRun]]  # rounds[model][round]
    probes: list[BenchmarkRun]  # len(rounds[0]) + 1 when probed, else empty

    @property
    def probe_ms(self) -> list[float]:
        return [run.stats.headline_ms for run in self.probes]


def probe_request(request: BenchmarkRequest) -> BenchmarkRequest:
    """How the probe is timed next to ``request``: same threads, cores and delegate, few runs."""
    return replace(request, warmup_runs=PROBE_WARMUP, num_runs=PROBE_RUNS, op_profile=False)


def run_session(device: Device, models: Sequence[ModelInfo], request: BenchmarkRequest, *, rounds: int,
                probe: ModelInfo | None) -> Session:
    """Time ``models`` round by round on ``device`` (``request.num_runs`` split over the rounds), the probe
    (when given) before each round and after the last."""
    sizes = split_runs(request.num_runs, rounds)
    plan: list[int] = []  # what each step times: a model's index, or -1 for the probe
    for _ in sizes:
        plan += ([-1] if probe is not None else []) + list(range(len(models)))
    if probe is not None:
        plan.append(-1)
    sizes_left = iter(size for size in sizes for _ in models)
    steps = [(probe, probe_request(request)) if i < 0 else
             (models[i], replace(request, num_runs=next(sizes_left), op_profile=False)) for i in plan]
    runs = device.run_sequence(steps)
    per_model: list[list[BenchmarkRun]] = [[] for _ in models]
    for i, run in zip(plan, runs):
        if i >= 0:
            per_model[i].append(run)
    probes = [run for i, run in zip(plan, runs) if i < 0]
    return Session(per_model, probes)


def time_probe(device: Device, request: BenchmarkRequest, probe: ModelInfo, times: int = 3,
               ) -> tuple[float, dict[str, Any]]:
    """How fast ``device`` is now: the median of ``times`` probe timings, and the settings they were taken with."""
    runs = device.run_sequence([(probe, probe_request(request))] * times)
    return float(np.median([run.stats.headline_ms for run in runs])), run_identity(runs[0])


def run_identity(probe_run: BenchmarkRun) -> dict[str, Any]:
    """The settings a probe run was timed under, as :func:`~latprof.speed.probe_identity` compares them."""
    return probe_identity({**probe_run.settings, "probe": PROBE_NAME, "runtime": probe_run.runtime,
                           "runtime_version": probe_run.runtime_version})


def pooled_stats(rounds: Sequence[BenchmarkRun]) -> tuple[LatencyStats, str]:
    """The statistics of all rounds together, and how the median was found.

    From the runs themselves where the device reports them (the host); else (a
    phone's benchmark_model prints summaries only) count, mean, std, min and max
    pooled exactly, the median as the median of the rounds' medians, p5/p95 missing.
    """
    if all(run.run_us for run in rounds):
        return LatencyStats.from_samples([t for run in rounds for t in run.run_us]), "median"
    if len(rounds) == 1:
        return rounds[0].stats, "median"
    stats = [run.stats for run in rounds]
    counts = np.array([s.count for s in stats], dtype=float)
    mean = std = None
    if all(s.mean_ms is not None for s in stats):
        means = np.array([s.mean_ms for s in stats])
        mean = float(np.average(means, weights=counts))
        if all(s.std_ms is not None for s in stats):
            second = np.array([s.std_ms ** 2 for s in stats]) + means ** 2
            std = float(np.sqrt(max(np.average(second, weights=counts) - mean ** 2, 0.0)))
    pick = lambda name, f: None if any(getattr(s, name) is None for s in stats) else float(f([getattr(s, name) for s in stats]))  # noqa: E731
    return LatencyStats(count=int(counts.sum()), median_ms=pick("median_ms", np.median), mean_ms=mean, std_ms=std,
                        p5_ms=None, p95_ms=None, min_ms=pick("min_ms", min), max_ms=pick("max_ms", max)), \
        "median of the rounds' medians"


def _round_ms(run: BenchmarkRun) -> float:
    return run.stats.headline_ms


def at_reference(rounds: Sequence[BenchmarkRun], probe_ms: Sequence[float], reference: SpeedReference,
                 ) -> dict[str, Any]:
    """The ``reference_speed`` section of a record: each round rescaled by the probe times around it."""
    factors = [reference.factor(probe_ms[i:i + 2]) for i in range(len(rounds))]
    if all(run.run_us for run in rounds):
        scaled = [t * f for run, f in zip(rounds, factors) for t in run.run_us]
        median_ms = float(np.median(scaled)) / 1e3
    else:
        median_ms = float(np.median([_round_ms(run) * f for run, f in zip(rounds, factors)]))
    raw_ms = pooled_stats(rounds)[0].headline_ms
    return {
        "median_ms": median_ms, "factor": median_ms / raw_ms, "round_factors": factors,
        "round_median_ms": [_round_ms(run) * f for run, f in zip(rounds, factors)],
        "probe_ms": list(probe_ms), "reference_probe_ms": reference.probe_ms, "beta": reference.beta,
        "source": reference.source,
    }


def ratio_summary(rounds: Sequence[BenchmarkRun], reference_rounds: Sequence[BenchmarkRun],
                  reference: ModelInfo) -> dict[str, Any]:
    """The ``reference_ratio`` section: this model's latency over the reference model's, round by round."""
    ratios = np.array([_round_ms(a) / _round_ms(b) for a, b in zip(rounds, reference_rounds)])
    q1, median, q3 = np.percentile(ratios, [25, 50, 75])
    return {
        "reference": reference.name, "reference_sha256": reference.sha256, "median": float(median),
        "min": float(ratios.min()), "max": float(ratios.max()), "q1": float(q1), "q3": float(q3),
        "rounds": ratios.tolist(), "reference_round_median_ms": [_round_ms(b) for b in reference_rounds],
    }

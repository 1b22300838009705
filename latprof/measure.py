"""Measuring a model on a device, and importing saved benchmark logs.

This is the top of the measurement flow: validate the model, read the device
state, benchmark, read the state again, and store the record whole.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Callable, Sequence

from latprof.benchmarking.parser import BenchmarkOutput, parse_benchmark_output
from latprof.benchmarking.record import LatencyStats, Measurement, ModelInfo, inspect_model, run_op_profile
from latprof.devices import DEFAULT_DELEGATE, BenchmarkRequest, Device, DeviceState
from latprof.errors import ModelFileError, ParseError, UnsupportedDelegateError
from latprof.speed import (
    DEFAULT_ROUNDS, PROBE_NAME, PROBE_RUNS, at_reference, pooled_stats, probe_model, ratio_summary, resolve_reference,
    run_identity, run_session,
)
from latprof.store import Store

__all__ = ["measure", "measure_many", "import_log", "build_request"]

_COOL_POLL_S = 5.0


def build_request(
    device: Device, *, runs: int | None = None, warmup: int | None = None, threads: int | None = None,
    op_profile: bool = False, timeout_s: float | None = None, core_mask: str | None = None,
    benchmark_binary: Path | None = None, delegate: str | None = None,
) -> BenchmarkRequest:
    """A benchmark request: the user's settings over the device config's defaults.

    Raises UnsupportedDelegateError when ``device`` cannot run ``delegate``.
    """
    defaults = device.config.benchmark
    delegate = delegate or DEFAULT_DELEGATE
    if delegate not in device.delegates:
        need = "; the gpu and nnapi delegates need a phone (--device SERIAL)" if delegate in ("gpu", "nnapi") else ""
        raise UnsupportedDelegateError(
            f"--delegate {delegate} is not available on {device.name}, which runs {' or '.join(device.delegates)}"
            f"{need}"
        )
    return BenchmarkRequest(
        threads=threads or defaults.threads,
        warmup_runs=defaults.warmup_runs if warmup is None else warmup,
        num_runs=runs or defaults.num_runs,
        op_profile=op_profile,
        timeout_s=timeout_s or defaults.timeout_s,
        core_mask=core_mask,
        benchmark_binary=benchmark_binary,
        delegate=delegate,
    )


def wait_until_cool(device: Device, request: BenchmarkRequest, state: DeviceState,
                     notify: Callable[[str], None]) -> DeviceState:
    limits = device.config.thermal
    deadline = time.monotonic() + limits.cooldown_max_wait_s
    while state.throttle_warnings(limits) and time.monotonic() < deadline:
        notify(f"waiting for {device.name} to cool below {limits.cooldown_target_c:g} C "
               f"(hottest {state.hottest_c} C)")
        time.sleep(_COOL_POLL_S)
        state = device.state(request)
        if state.hottest_c is not None and state.hottest_c <= limits.cooldown_target_c:
            break
    return state


_NOISY_SPREAD = 0.25  # (p95 - p5) / median above this means something else competed for the core


def _noise_warnings(stats: LatencyStats) -> list[str]:
    if None in (stats.p5_ms, stats.p95_ms, stats.median_ms) or not stats.median_ms:
        return []
    spread = (stats.p95_ms - stats.p5_ms) / stats.median_ms
    if spread <= _NOISY_SPREAD:
        return []
    return [f"noisy runs: p5-p95 spread is {spread:.0%} of the median; close other programs "
            "(or check the device is not throttling) and measure again"]


def measure(
    model_path: Path, device: Device, request: BenchmarkRequest, *, store: Store | None = None,
    wait_cool: bool = False, notify: Callable[[str], None] = lambda _: None, rounds: int = 1, probe: bool = False,
    space: str | None = None,
) -> Measurement:
    """Benchmark ``model_path`` on ``device`` and store the result (when ``store`` is given).

    Throttling seen before or after the run is recorded in ``warnings`` and passed
    to ``notify``; with ``wait_cool`` the run waits for a hot device to cool first.
    ``rounds`` and ``probe`` as in :func:`measure_many` (default: one plain run).
    """
    return measure_many([model_path], device, request, store=store, wait_cool=wait_cool, notify=notify,
                        rounds=rounds, probe=probe, space=space)[0]


def measure_many(
    model_paths: Sequence[Path], device: Device, request: BenchmarkRequest, *, reference: Path | None = None,
    rounds: int = DEFAULT_ROUNDS, probe: bool = True, store: Store | None = None, space: str | None = None,
    wait_cool: bool = False, notify: Callable[[str], None] = lambda _: None,
) -> list[Measurement]:
    """Benchmark models interleaved round by round, and store each as its own measurement.

    ``request.num_runs`` is split over ``rounds``; each round times the speed probe
    (with ``probe``), then ``reference`` (when given), then each model, and the probe
    closes the last round. With the probe, each record has ``reference_speed``: the
    latency at the device's reference speed (:mod:`latprof.speed`; ``space`` picks
    whose predictor's reference). With ``reference``, each model's record has
    ``reference_ratio`` (round by round); the reference is returned (and stored) first.
    Several models share a ``group`` id in ``settings``, with their ``position``.
    """
    models = [inspect_model(path) for path in ([reference] if reference is not None else []) + list(model_paths)]
    before = device.state(request)
    if wait_cool:
        before = wait_until_cool(device, request, before, notify)
    limits = device.config.thermal
    session = run_session(device, models, request, rounds=rounds,
                          probe=inspect_model(probe_model()) if probe else None)
    after = device.state(request)
    shared = [f"before run: {w}" for w in before.throttle_warnings(limits)]
    shared += [f"after run: {w}" for w in after.throttle_warnings(limits)]
    speed = None
    if probe:
        identity = run_identity(session.probes[0])
        speed = resolve_reference(store, device.name, identity, session.probe_ms, space)
        shared += _speed_warnings(session.probe_ms)
    group = uuid.uuid4().hex[:12] if len(models) > 1 else None
    fingerprint = device.fingerprint()
    results = []
    for position, (model, runs) in enumerate(zip(models, session.rounds)):
        stats, statistic = pooled_stats(runs)
        settings = {**runs[0].settings, "num_runs": stats.count, "rounds": len(runs),
                    "round_runs": [run.stats.count for run in runs], "statistic": statistic}
        if probe:
            settings.update(probe=PROBE_NAME, probe_runs=PROBE_RUNS)
        if group is not None:
            settings.update(group=group, position=position,
                            role="reference" if reference is not None and position == 0 else "model")
        warnings = shared + _noise_warnings(stats)
        for warning in warnings:
            notify(f"{model.name}: {warning}" if group is not None else warning)
        op_profile = device.run_benchmark(model, request).op_profile if request.op_profile else runs[0].op_profile
        measurement = Measurement(
            model_name=model.name, model_sha256=model.sha256, model_bytes=model.size_bytes,
            device=device.name, fingerprint=fingerprint, runtime=runs[0].runtime,
            runtime_version=runs[0].runtime_version, settings=settings, command=runs[0].command, stats=stats,
            run_us=[t for run in runs for t in run.run_us] if all(run.run_us for run in runs) else None,
            init_us=runs[0].init_us, first_inference_us=runs[0].first_inference_us,
            op_profile=op_profile, memory_mb=runs[0].memory_mb, state_before=before.to_dict(),
            state_after=after.to_dict(), warnings=warnings,
            reference_speed=at_reference(runs, session.probe_ms, speed) if speed is not None else None,
            reference_ratio=(ratio_summary(runs, session.rounds[0], models[0])
                             if reference is not None and position > 0 else None),
        )
        if store is not None:
            measurement = _with_id(measurement, store.add_measurement(measurement))
        results.append(measurement)
    return results


_SPEED_CHANGE = 0.15  # the probe's slowest time this much above its fastest: the device changed speed


def _speed_warnings(probe_ms: Sequence[float]) -> list[str]:
    if max(probe_ms) <= (1 + _SPEED_CHANGE) * min(probe_ms):
        return []
    return [f"the device changed speed during the measurement (probe {min(probe_ms):.3f}-{max(probe_ms):.3f} ms); "
            "compare figures at the reference speed (reference_speed.median_ms)"]


def import_log(log_path: Path, *, device: str = "unknown", model: ModelInfo | None = None,
               store: Store | None = None, dtype: str | None = None) -> Measurement:
    """Turn a saved ``benchmark_model`` output (or an excerpt) into a measurement record (and store it).

    The record keeps the whole parsed log in ``benchmark_output``; ``stats`` are the
    steady-state runs (from the op profiler's timing line when the excerpt has no
    benchmark count line, or only the average in old logs, each said in ``warnings``).
    ``dtype``: what the model computed in, when the log's ``model`` file is not at hand (a log does not say);
    with ``model`` it must agree with the file's.
    """
    if model is not None and dtype is not None and model.dtype != dtype:
        raise ParseError(f"{model.name} computes in {model.dtype}, not {dtype}; drop --dtype or pass the right model")
    log_path = Path(log_path)
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        raise ModelFileError(f"log file not found: {log_path}; check the path") from None
    parsed = parse_benchmark_output(text)
    stats, warnings = _imported_stats(parsed, log_path)
    measurement = Measurement(
        model_name=model.name if model else (Path(parsed.params.get("Graph", "")).name or "unknown"),
        model_sha256=model.sha256 if model else None, model_bytes=model.size_bytes if model else None,
        device=device, fingerprint={"imported_from": str(log_path.resolve())},
        runtime="tflite benchmark_model", runtime_version="unknown (imported log)",
        settings=_imported_settings(parsed, stats, model.dtype if model else dtype),
        command=f"imported from {log_path.name}", source="import-log",
        stats=stats, warnings=warnings,
        init_us=parsed.init_us, first_inference_us=parsed.first_inference_us,
        op_profile=run_op_profile(parsed),
        memory_mb=dict(parsed.memory_mb),
        benchmark_output=parsed.to_dict(),
    )
    if store is not None:
        measurement = _with_id(measurement, store.add_measurement(measurement))
    return measurement


def _imported_stats(parsed: BenchmarkOutput, log_path: Path) -> tuple[LatencyStats, list[str]]:
    """The steady-state statistics of a parsed log, and warnings on where they came from."""
    if parsed.inference is not None:
        warnings = []
        if "op profiler" in parsed.sources.get("inference", ""):
            warnings.append("the log has no benchmark timing summary; run statistics are the op profiler's "
                            "(per-run sums of op times, " + parsed.sources["inference"] + ")")
        return LatencyStats.from_run_stats(parsed.inference), warnings
    if parsed.inference_avg_us is not None:  # old (TF 1.x) logs print only the average
        avg_ms = parsed.inference_avg_us / 1e3
        stats = LatencyStats(count=0, median_ms=None, mean_ms=avg_ms, std_ms=None, p5_ms=None, p95_ms=None,
                             min_ms=None, max_ms=None)
        note = "the log reports only the average inference time; run count and spread are unknown"
        profiled = parsed.profile("run")
        if profiled is not None and profiled.timings is not None:
            note += (f" (the op profiler's own timings of its {profiled.timings.count} runs are in "
                     "benchmark_output.profiles)")
        return stats, [note]
    raise ParseError(f"{log_path} has no timed benchmark runs (no count=… line); pass a complete log")


def _imported_settings(parsed: BenchmarkOutput, stats: LatencyStats, dtype: str | None) -> dict:
    """The latency-changing settings a log states (None where it does not say)."""
    params = parsed.params
    threads = params.get("Num threads", "")
    warmup = params.get("Min warmup runs", "")
    return {
        "threads": int(threads) if threads.lstrip("-").isdigit() else None,
        "warmup_runs": int(warmup) if warmup.isdigit() else None,
        "num_runs": stats.count or None,
        "delegate": parsed.delegate_in_use() if parsed.delegates else None,
        "dtype": dtype,
        "op_profile": params.get("Enable op profiling") in ("1", "true"),
        "parameters": dict(params),
    }


def _with_id(measurement: Measurement, measurement_id: int) -> Measurement:
    from dataclasses import replace

    return replace(measurement, id=measurement_id)

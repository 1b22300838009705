"""Measuring a model on a device, and importing saved benchmark logs.

This is the top of the measurement flow: validate the model, read the device
state, benchmark, read the state again, and store the record whole.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from latprof.benchmarking.parser import BenchmarkOutput, parse_benchmark_output
from latprof.benchmarking.record import LatencyStats, Measurement, ModelInfo, inspect_model, run_op_profile
from latprof.devices import DEFAULT_DELEGATE, BenchmarkRequest, Device, DeviceState
from latprof.errors import ModelFileError, ParseError, UnsupportedDelegateError
from latprof.store import Store

__all__ = ["measure", "import_log", "build_request"]

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


def _wait_until_cool(device: Device, request: BenchmarkRequest, state: DeviceState,
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
    """
    model = inspect_model(model_path)
    before = device.state(request)
    if wait_cool:
        before = _wait_until_cool(device, request, before, notify)
    limits = device.config.thermal
    warnings = [f"before run: {w}" for w in before.throttle_warnings(limits)]
    run = device.run_benchmark(model, request)
    after = device.state(request)
    warnings += [f"after run: {w}" for w in after.throttle_warnings(limits)]
    warnings += _noise_warnings(run.stats)
    for warning in warnings:
        notify(warning)
    measurement = Measurement(
        model_name=model.name, model_sha256=model.sha256, model_bytes=model.size_bytes,
        device=device.name, fingerprint=device.fingerprint(), runtime=run.runtime,
        runtime_version=run.runtime_version, settings=run.settings, command=run.command, stats=run.stats,
        run_us=run.run_us, init_us=run.init_us, first_inference_us=run.first_inference_us,
        op_profile=run.op_profile, memory_mb=run.memory_mb, state_before=before.to_dict(),
        state_after=after.to_dict(), warnings=warnings,
    )
    if store is not None:
        measurement = _with_id(measurement, store.add_measurement(measurement))
    return measurement


def import_log(log_path: Path, *, device: str = "unknown", model: ModelInfo | None = None,
               store: Store | None = None) -> Measurement:
    """Turn a saved ``benchmark_model`` output (or an excerpt) into a measurement record (and store it).

    The record keeps the whole parsed log in ``benchmark_output``; ``stats`` are the
    steady-state runs (from the op profiler's timing line when the excerpt has no
    benchmark count line, or only the average in old logs, each said in ``warnings``).
    """
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
        settings=_imported_settings(parsed, stats, model),
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
        return stats, ["the log reports only the average inference time; run count and spread are unknown"]
    raise ParseError(f"{log_path} has no timed benchmark runs (no count=… line); pass a complete log")


def _imported_settings(parsed: BenchmarkOutput, stats: LatencyStats, model: ModelInfo | None) -> dict:
    """The latency-changing settings a log states (None where it does not say)."""
    params = parsed.params
    threads = params.get("Num threads", "")
    warmup = params.get("Min warmup runs", "")
    return {
        "threads": int(threads) if threads.lstrip("-").isdigit() else None,
        "warmup_runs": int(warmup) if warmup.isdigit() else None,
        "num_runs": stats.count or None,
        "delegate": parsed.delegate_in_use() if parsed.delegates else None,
        "dtype": model.dtype if model else None,
        "op_profile": params.get("Enable op profiling") in ("1", "true"),
        "parameters": dict(params),
    }


def _with_id(measurement: Measurement, measurement_id: int) -> Measurement:
    from dataclasses import replace

    return replace(measurement, id=measurement_id)

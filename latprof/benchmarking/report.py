"""Format a host measurement as the text a modern ``benchmark_model`` prints.

Mirrors the current sources (tensorflow/tensorflow, read through the public code index):
``tensorflow/lite/tools/benchmark/benchmark_main.cc`` / ``benchmark_model.cc`` /
``benchmark_tflite_model.cc`` for the lines and their order, ``tensorflow/lite/tools/logging.h``
for the ``INFO: `` prefix (one per message, so a multi-line profile gets one prefix),
``third_party/xla/xla/tsl/util/stats_calculator.{h,cc}`` for ``StatWithPercentiles`` (integer
µs; avg as a C++ ``double`` stream, i.e. ``%g``; std truncated to an integer twice;
percentile p = the element at index ``n * p / 100`` of the sorted runs) and for the
profiling tables (node type right-aligned in 40 columns, no ``[start]`` column), and
``tensorflow/lite/profiling/profile_summary_formatter.{h,cc}`` for the profile sections.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["format_benchmark_output"]

_NODE_TYPE_WIDTH = 40  # kNodeTypeWidth in stats_calculator.cc
_MAX_SECS = 150.0  # BenchmarkModel::DefaultParams max_secs
_MEMORY_NOTE = (
    "Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to "
    "the actual memory footprint of the model at runtime. Take the information at your discretion."
)


def _g(value: float) -> str:
    """A number as C++ ``std::ostream << double`` prints it by default (6 significant digits)."""
    return f"{value:g}"


def _stat(values: Sequence[int], percentiles: bool) -> str:
    """``Stat::OutputToStream`` (plus the ``StatWithPercentiles`` tail when asked)."""
    n = len(values)
    if n == 0:
        text = "count=0"
    elif min(values) == max(values):
        text = f"count={n} curr={values[-1]}" + ("(all same)" if n > 1 else "")
    else:
        avg = sum(values) / n
        variance = int(sum(float(v) * v for v in values) / n - avg * avg)  # ValueType (int64) truncation
        std = int(math.sqrt(max(variance, 0)))
        text = (f"count={n} first={values[0]} curr={values[-1]} min={min(values)} max={max(values)} "
                f"avg={_g(avg)} std={std}")
    if percentiles:
        ordered = sorted(values)
        pick = lambda p: ordered[n * p // 100] if n else 0  # noqa: E731  (NaN of int is 0)
        text += f" p5={pick(5)} median={pick(50)} p95={pick(95)}"
    return text


def _avg(values: Sequence[int]) -> str:
    return _g(sum(values) / len(values)) if values else "0"


def _field(value: str, width: int) -> str:
    return "\t" + value.rjust(width)


def _op_tables(ops: Sequence[tuple[str, str, float, float]], run_us: Sequence[int]) -> list[str]:
    """The Run Order, Top by Computation Time and Summary by node type tables, plus the trailer."""
    first_us = [int(round(first * 1e3)) for _, _, first, _ in ops]
    avg_us = [avg * 1e3 for _, _, _, avg in ops]
    total_us = sum(avg_us) or 1.0  # run_total_us.sum() / runs: the per-run sum of op times

    def header(title: str) -> list[str]:
        return [f"============================== {title} ==============================",
                _field("[node type]", _NODE_TYPE_WIDTH) + _field("[first]", 9) + _field("[avg ms]", 9)
                + _field("[%]", 8) + _field("[cdf%]", 8) + _field("[mem KB]", 10) + _field("[times called]", 9)
                + "\t[Name]"]

    def rows(order: Sequence[int]) -> list[str]:
        out, cumulative = [], 0.0
        for i in order:
            node_type, name = ops[i][0], ops[i][1]
            cumulative += avg_us[i]
            cdf = float(np.float32(round(cumulative)) * np.float32(100.0) / np.float32(total_us))  # float math
            out.append(_field(node_type, _NODE_TYPE_WIDTH) + _field(f"{first_us[i] / 1e3:.3f}", 9)
                       + _field(f"{avg_us[i] / 1e3:.3f}", 9) + _field(f"{avg_us[i] * 100.0 / total_us:.3f}", 7) + "%"
                       + _field(f"{cdf:.3f}", 7) + "%" + _field("0.000", 10) + _field("1", 9) + "\t" + name)
        return out

    run_order = range(len(ops))
    by_time = sorted(run_order, key=lambda i: -avg_us[i])[:10]
    lines = header("Run Order") + rows(run_order) + [""] + header("Top by Computation Time") + rows(by_time) + [""]

    # Summary by node type: per-node integer µs, summed per type, sorted by time (then name) descending.
    per_type: dict[str, list[int]] = {}
    for (node_type, *_), avg in zip(ops, avg_us):
        per_type.setdefault(node_type, []).append(math.floor(round(avg, 6)))
    accumulated = np.float32(sum(sum(v) for v in per_type.values()) or 1)
    lines += [f"Number of nodes executed: {len(ops)}",
              "============================== Summary by node type ==============================",
              _field("[Node type]", _NODE_TYPE_WIDTH) + _field("[count]", 9) + _field("[avg ms]", 10)
              + _field("[avg %]", 11) + _field("[cdf %]", 11) + _field("[mem KB]", 10) + _field("[times called]", 10)]
    cdf = np.float32(0.0)
    for node_type, times in sorted(per_type.items(), key=lambda kv: (sum(kv[1]), kv[0]), reverse=True):
        percentage = np.float32(np.float32(sum(times)) / accumulated) * np.float32(100.0)
        cdf = np.float32(cdf + percentage)
        lines.append(_field(node_type, _NODE_TYPE_WIDTH) + _field(str(len(times)), 9)
                     + _field(f"{float(np.float32(sum(times)) / np.float32(1000.0)):.3f}", 10)
                     + _field(f"{float(percentage):.3f}", 10) + "%" + _field(f"{float(cdf):.3f}", 10) + "%"
                     + _field("0.000", 10) + _field(str(len(times)), 9))
    # Trailer: the per-run total is the measured run time (the tool sums op times per run; we only
    # have per-op averages, and the two agree to well under 0.1% in real logs).
    lines += ["", f"Timings (microseconds): {_stat(run_us, percentiles=False)}", "Memory (bytes): count=0",
              f"{len(ops)} nodes observed", "", "", ""]
    return lines


def _delegate_lines(use_xnnpack: bool | None, use_gpu: bool, use_nnapi: bool) -> list[str]:
    lines = [] if use_xnnpack is False else ["INFO: Created TensorFlow Lite XNNPACK delegate for CPU."]
    lines += [f"WARN: {name} acceleration is unsupported on this platform."
              for name, used in (("GPU", use_gpu), ("NNAPI", use_nnapi)) if used]
    if use_xnnpack:
        lines += ["INFO: XNNPACK delegate created.",
                  "INFO: Explicitly applied XNNPACK delegate, and the model graph will be completely executed by the "
                  "delegate."]
    return lines


def format_benchmark_output(*, graph: str, num_threads: int, warmup_runs: int, num_runs: int,
                            init_us: float, warmup_us: Sequence[float], run_us: Sequence[float],
                            op_profile: Sequence[tuple[str, str, float, float]] | None = None,
                            model_size_mb: float | None = None, memory_mb: tuple[float, float] | None = None,
                            enable_op_profiling: bool = False,
                            warmup_min_secs: float = 0.5, min_secs: float = 1.0,
                            use_xnnpack: bool | None = None, use_gpu: bool = False, use_nnapi: bool = False) -> str:
    """The stdout+stderr ``benchmark_model --graph=… --num_threads=… --num_runs=… --warmup_runs=…`` prints.

    Times are microseconds (rounded to integers like the tool's clock); ``op_profile``
    is ``(node_type, name, first_ms, avg_ms)`` per op in run order; ``memory_mb`` is the
    (init, overall) footprint delta. The op tables are printed when ``enable_op_profiling``
    is set and ``op_profile`` is given (the initialization profile is not, as we have no
    data for it). ``warmup_min_secs``/``min_secs`` are logged as parameters when not the defaults.

    Delegate flags print what the tool prints for them on a platform with no GPU or
    NNAPI (``tools/delegates/*_delegate_provider.cc``, ``benchmark_tflite_model.cc``):
    ``use_xnnpack`` True applies XNNPACK explicitly, False turns the default XNNPACK
    delegate off, None (the flag not given) leaves the default on; ``use_gpu`` and
    ``use_nnapi`` log the parameter and the tool's "acceleration is unsupported on this
    platform" warning, and the run goes on without them.
    """
    warm = [int(round(v)) for v in warmup_us]
    runs = [int(round(v)) for v in run_us]
    init = int(round(init_us))
    params = [("Min num runs", str(num_runs))]
    if min_secs != 1.0:
        params.append(("Min runs duration (seconds)", _g(min_secs)))
    params += [("Num threads", str(num_threads)), ("Min warmup runs", str(warmup_runs))]
    if warmup_min_secs != 0.5:
        params.append(("Min warmup runs duration (seconds)", _g(warmup_min_secs)))
    params.append(("Graph", graph))
    if enable_op_profiling:
        params.append(("Enable op profiling", "1"))
    params.append(("#threads used for CPU inference", str(num_threads)))
    params += [(name, "1") for name, used in (("Use gpu", use_gpu), ("Use NNAPI", use_nnapi)) if used]
    if use_xnnpack is not None:
        params.append(("Use xnnpack", "1" if use_xnnpack else "0"))

    info = ["STARTING!", "Log parameter values verbosely: [0]", *(f"{k}: [{v}]" for k, v in params),
            f"Loaded model {graph}"]
    out = [f"INFO: {line}" for line in info] + _delegate_lines(use_xnnpack, use_gpu, use_nnapi)
    out.append(f"INFO: The input model file size (MB): {_g(model_size_mb)}" if model_size_mb and model_size_mb > 0
               else "WARN: Failed to get the input model file size.")
    out.append(f"INFO: Initialized session in {_g(init / 1e3)}ms.")
    for iterations, seconds, values in ((warmup_runs, warmup_min_secs, warm), (num_runs, min_secs, runs)):
        out += [f"INFO: Running benchmark for at least {iterations} iterations and at least {_g(seconds)} seconds "
                f"but terminate if exceeding {_g(_MAX_SECS)} seconds.",
                f"INFO: {_stat(values, percentiles=True)}", ""]
    out.append(f"INFO: Inference timings in us: Init: {init}, First inference: {warm[0] if warm else 0}, "
               f"Warmup (avg): {_avg(warm)}, Inference (avg): {_avg(runs)}")
    if memory_mb is not None:
        out += [f"INFO: {_MEMORY_NOTE}",
                f"INFO: Memory footprint delta from the start of the tool (MB): "
                f"init={_g(memory_mb[0])} overall={_g(memory_mb[1])}"]
    if enable_op_profiling and op_profile:
        out.append("INFO: Operator-wise Profiling Info for Regular Benchmark Runs:")
        out += _op_tables(list(op_profile), runs)
    return "\n".join(out) + "\n"

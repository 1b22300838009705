"""Child process of :func:`latprof.benchmarking.host.run_host_benchmark`.

Prints one JSON line with the timings. Per-op times come from single-operator
models cut out of the graph (each op with its own weights, fed random inputs of
the right shape), because LiteRT's Python interpreter exposes no op profiler.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib import metadata

import numpy as np


def _make_interpreter(model_path: str | None, threads: int, content: bytes | None = None):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=model_path, model_content=content, num_threads=threads)
    interpreter.allocate_tensors()
    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        shape, dtype = detail["shape"], detail["dtype"]
        if np.issubdtype(dtype, np.floating):
            value = rng.standard_normal(shape).astype(dtype)
        else:
            info = np.iinfo(dtype)
            value = rng.integers(max(info.min, -128), min(info.max, 127), size=shape, dtype=dtype)
        interpreter.set_tensor(detail["index"], value)
    return interpreter


def _time_invokes(interpreter, count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter_ns()
        interpreter.invoke()
        times.append((time.perf_counter_ns() - start) / 1e3)
    return times


def _op_profile(model_path: str, threads: int, runs: int) -> list[tuple[str, str, float, float]]:
    from latprof.benchmarking._slicing import single_op_models

    rows = []
    for node_type, name, content in single_op_models(model_path):
        interpreter = _make_interpreter(None, threads, content)
        first = _time_invokes(interpreter, 1)[0]
        times = _time_invokes(interpreter, max(runs, 1))
        rows.append((node_type, name, first / 1e3, float(np.mean(times)) / 1e3))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup-runs", type=int, default=10)
    parser.add_argument("--num-runs", type=int, default=50)
    parser.add_argument("--op-profile", action="store_true")
    parser.add_argument("--cpu", type=int)
    args = parser.parse_args(argv)

    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})

    start = time.perf_counter_ns()
    interpreter = _make_interpreter(args.model, args.threads)
    init_us = (time.perf_counter_ns() - start) / 1e3
    warmup = _time_invokes(interpreter, args.warmup_runs)
    runs = _time_invokes(interpreter, args.num_runs)
    profile = _op_profile(args.model, args.threads, min(args.num_runs, 20)) if args.op_profile else None
    record = {
        "init_us": init_us,
        "warmup_us": warmup,
        "run_us": runs,
        "op_profile": profile,
        "runtime": "ai-edge-litert",
        "runtime_version": metadata.version("ai-edge-litert"),
        "delegate": "xnnpack (LiteRT default)",
        "cpu": args.cpu,
    }
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Child process of :func:`latprof.benchmarking.host.run_host_benchmark`.

Prints one JSON line with the timings. Per-op times come from single-operator
models cut out of the graph (each op with its own weights, fed random inputs of
the right shape), because LiteRT's Python interpreter exposes no op profiler.

``--batch FILE`` (``-`` for stdin) times many models in this one pinned process:
one model path per input line (or a JSON object ``{"model": PATH,
"probe_wait_s": S, "warmup_runs": W, "num_runs": N, "keep": true}``: run
counts for this line, and ``keep`` to keep the model loaded for later lines
naming it, whose ``init_us`` is then null), one JSON line per model on stdout (flushed as
each finishes; ``{"model": ..., "error": ...}`` when one fails), so a caller
measuring thousands of micro-models pays the process start-up once. With
``--probe MODEL`` a fixed reference model, loaded once, is timed just before and
just after each model (``"probe_us": [before, after]``, medians of
``--probe-runs`` invokes): how fast the core was at that moment. With
``--probe-wait-s S`` the worker first waits (up to S seconds, re-timing the
probe every ~25 ms) until the probe is within ``--probe-tolerance`` of the
fastest probe time seen so far (``"probe_fast_us"``), so that models are timed
while nothing else slows the core down.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib import metadata

import numpy as np


# --delegate: XNNPACK is the interpreter's default delegate; "none" is benchmark_model's --use_xnnpack=false.
_DELEGATES = {"xnnpack": "xnnpack (LiteRT default)", "none": "none (builtin kernels, no default delegates)"}


def _make_interpreter(model_path: str | None, threads: int, content: bytes | None = None, delegate: str = "xnnpack"):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = (OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if delegate == "none" else OpResolverType.AUTO)
    interpreter = Interpreter(model_path=model_path, model_content=content, num_threads=threads,
                              experimental_op_resolver_type=resolver)
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


def _op_profile(model_path: str, threads: int, runs: int, delegate: str) -> list[tuple[str, str, float, float]]:
    from latprof.benchmarking._slicing import single_op_models

    rows = []
    for node_type, name, content in single_op_models(model_path):
        interpreter = _make_interpreter(None, threads, content, delegate)
        first = _time_invokes(interpreter, 1)[0]
        times = _time_invokes(interpreter, max(runs, 1))
        rows.append((node_type, name, first / 1e3, float(np.mean(times)) / 1e3))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--batch", help="file of model paths, one per line ('-': stdin); one JSON line each")
    parser.add_argument("--probe", help="batch mode: reference model timed before and after each model")
    parser.add_argument("--probe-runs", type=int, default=10)
    parser.add_argument("--probe-wait-s", type=float, default=0.0)
    parser.add_argument("--probe-tolerance", type=float, default=0.15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--delegate", choices=sorted(_DELEGATES), default="xnnpack")
    parser.add_argument("--warmup-runs", type=int, default=10)
    parser.add_argument("--num-runs", type=int, default=50)
    parser.add_argument("--op-profile", action="store_true")
    parser.add_argument("--cpu", type=int)
    args = parser.parse_args(argv)

    if args.model is None and args.batch is None:
        parser.error("pass --model or --batch")
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    if args.batch is not None:
        return _batch(args)

    start = time.perf_counter_ns()
    interpreter = _make_interpreter(args.model, args.threads, delegate=args.delegate)
    init_us = (time.perf_counter_ns() - start) / 1e3
    warmup = _time_invokes(interpreter, args.warmup_runs)
    runs = _time_invokes(interpreter, args.num_runs)
    profile = _op_profile(args.model, args.threads, min(args.num_runs, 20), args.delegate) if args.op_profile else None
    record = {
        "init_us": init_us,
        "warmup_us": warmup,
        "run_us": runs,
        "op_profile": profile,
        "runtime": "ai-edge-litert",
        "runtime_version": metadata.version("ai-edge-litert"),
        "delegate": _DELEGATES[args.delegate],
        "cpu": args.cpu,
    }
    print(json.dumps(record))
    return 0


def _batch(args: argparse.Namespace) -> int:
    source = sys.stdin if args.batch == "-" else open(args.batch)
    version = metadata.version("ai-edge-litert")
    probe = _make_interpreter(args.probe, args.threads, delegate=args.delegate) if args.probe else None
    fastest = [float("inf")]

    def time_probe() -> float:
        value = float(np.median(_time_invokes(probe, args.probe_runs)))
        fastest[0] = min(fastest[0], value)
        return value

    def settle(wait_s: float) -> tuple[float, float]:
        """Time the probe, waiting up to ``wait_s`` for it to be fast; (probe us, seconds waited)."""
        start = time.monotonic()
        value = time_probe()
        while value > fastest[0] * (1 + args.probe_tolerance) and time.monotonic() - start < wait_s:
            time.sleep(0.025)
            value = time_probe()
        return value, time.monotonic() - start

    if probe is not None:
        for _ in range(5):
            time_probe()
            time.sleep(0.02)
    loaded: dict[str, object] = {}  # models kept loaded ("keep": true)
    with source:
        for line in iter(source.readline, ""):
            model, item = line.strip(), {}
            if not model:
                continue
            if model.startswith("{"):
                item = json.loads(model)
                model = item["model"]
            try:
                wait_s = float(item.get("probe_wait_s", args.probe_wait_s))
                before, waited = settle(wait_s) if probe is not None else (None, 0.0)
                interpreter, init_us = loaded.get(model), None
                if interpreter is None:
                    start = time.perf_counter_ns()
                    interpreter = _make_interpreter(model, args.threads, delegate=args.delegate)
                    init_us = (time.perf_counter_ns() - start) / 1e3
                if item.get("keep"):
                    loaded[model] = interpreter
                warmup = _time_invokes(interpreter, int(item.get("warmup_runs", args.warmup_runs)))
                runs = _time_invokes(interpreter, int(item.get("num_runs", args.num_runs)))
                del interpreter
                record = {"model": model, "init_us": init_us, "warmup_us": warmup, "run_us": runs,
                          "runtime": "ai-edge-litert", "runtime_version": version,
                          "delegate": _DELEGATES[args.delegate], "cpu": args.cpu}
                if probe is not None:
                    record.update(probe_us=[before, time_probe()], probe_fast_us=fastest[0], probe_wait_s=waited)
            except Exception as exc:  # noqa: BLE001 - reported per model; the batch goes on
                record = {"model": model, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The loopback's ``benchmark_model``: TFLite's benchmark tool, played by the host.

The device holds a small text placeholder at the profile's benchmark path
(``/data/local/tmp/benchmark_model``). Executing it parses the real tool's flags
(``--graph``, ``--num_threads``, ``--warmup_runs``, ``--num_runs``,
``--enable_op_profiling``, ``--min_secs``, ``--warmup_min_secs``, ``--use_xnnpack``,
``--use_gpu``, ``--use_nnapi``; others are accepted and ignored), runs the model on the host with
:func:`latprof.benchmarking.host.run_host_benchmark`, and prints what
``benchmark_model`` prints (:func:`latprof.benchmarking.report.format_benchmark_output`);
a simulated device (:mod:`latprof.loopback._simulated`) sleeps for its predicted timings instead.
The host has neither a GPU delegate nor NNAPI, so ``--use_gpu``/``--use_nnapi`` get the
real tool's answer on such a platform (the warning "GPU acceleration is unsupported on
this platform.") and the model runs on the CPU; ``--use_xnnpack=false`` runs the builtin
kernels without the default XNNPACK delegate.
The lines that do not depend on timings (parameters, ``Loaded model``, model
size) are printed before the run starts, the rest when it ends, as the real tool
streams them.

A missing graph gives the real tool's ``Failed to mmap model`` and
``Benchmarking failed.``, status 1. Failure modes: ``benchmark-crash`` stops after
the first lines with ``Segmentation fault`` and status 139; ``drop-mid-run``
closes the connection after the first lines.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latprof.errors import LatprofError
from latprof.loopback._failures import FailureMode

if TYPE_CHECKING:
    from latprof.loopback._shell import Shell, ShellIO

__all__ = ["PLACEHOLDER", "is_placeholder", "run_benchmark_model"]

_MARK = b"# latprof loopback: benchmark_model placeholder\n"
PLACEHOLDER = (
    b"#!/system/bin/sh\n" + _MARK
    + b"# This is not a real binary. On a latprof loopback device, executing this file runs the\n"
    b"# model on the host (LiteRT) and prints what TFLite's benchmark_model would print.\n"
)
_INT_FLAGS = {"num_threads": 1, "warmup_runs": 1, "num_runs": 50}
_FLOAT_FLAGS = {"min_secs": 1.0, "warmup_min_secs": 0.5, "max_secs": 150.0, "run_delay": -1.0}
_BOOL_FLAGS = {"enable_op_profiling": False, "use_xnnpack": None, "use_gpu": False, "use_nnapi": False}


def is_placeholder(head: bytes) -> bool:
    """Whether a file's first bytes are the loopback's benchmark_model placeholder."""
    return _MARK in head[:256]


@dataclass
class _Flags:
    graph: str | None
    ints: dict[str, int]
    floats: dict[str, float]
    bools: dict[str, bool | None]
    unknown: list[str]

    @property
    def op_profiling(self) -> bool:
        return bool(self.bools["enable_op_profiling"])


def _parse_flags(args: list[str]) -> _Flags:
    """benchmark_model's ``--name=value`` flags; ValueError naming a malformed one."""
    ints, floats, bools = dict(_INT_FLAGS), dict(_FLOAT_FLAGS), dict(_BOOL_FLAGS)
    graph, unknown = None, []
    for arg in args:
        name, eq, value = arg.lstrip("-").partition("=")
        if not arg.startswith("--") or not eq:
            unknown.append(arg)
            continue
        try:
            if name == "graph":
                graph = value
            elif name in ints:
                ints[name] = int(value)
            elif name in floats:
                floats[name] = float(value)
            elif name in _BOOL_FLAGS:
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                bools[name] = value.lower() in ("true", "1")
        except ValueError:
            raise ValueError(arg) from None
    return _Flags(graph, ints, floats, bools, unknown)


def _render(flags: _Flags, size_mb: float, init_us: float, warmup_us: list[float], run_us: list[float],
            op_profile: list[tuple[str, str, float, float]] | None) -> str:
    from latprof.benchmarking.report import format_benchmark_output

    kwargs: dict[str, Any] = dict(
        graph=flags.graph, num_threads=flags.ints["num_threads"], warmup_runs=flags.ints["warmup_runs"],
        num_runs=flags.ints["num_runs"], init_us=init_us, warmup_us=warmup_us, run_us=run_us,
        op_profile=op_profile, model_size_mb=size_mb, enable_op_profiling=flags.op_profiling,
        warmup_min_secs=flags.floats["warmup_min_secs"], min_secs=flags.floats["min_secs"],
        use_xnnpack=flags.bools["use_xnnpack"], use_gpu=flags.bools["use_gpu"], use_nnapi=flags.bools["use_nnapi"],
    )
    accepted = inspect.signature(format_benchmark_output).parameters
    return format_benchmark_output(**{k: v for k, v in kwargs.items() if k in accepted})


def _prelude(flags: _Flags, size_mb: float) -> list[str]:
    """The first lines of the output: those that come out the same whatever the timings."""
    warm, runs = max(flags.ints["warmup_runs"], 1), max(flags.ints["num_runs"], 1)
    first = _render(flags, size_mb, 1000.0, [1000.0] * warm, [1000.0] * runs, None).splitlines(keepends=True)
    second = _render(flags, size_mb, 2500.0, [2500.0] * warm, [2500.0] * runs, None).splitlines(keepends=True)
    common = []
    for a, b in zip(first, second):
        if a != b:
            break
        common.append(a)
    return common


def _params_only(prelude: list[str]) -> list[str]:
    """The parameter lines: what the tool prints before it opens the model."""
    for index, line in enumerate(prelude):
        if "Loaded model" in line:
            return prelude[:index]
    return prelude


def run_benchmark_model(shell: Shell, argv: list[str], io: ShellIO) -> int:
    """Execute the placeholder as ``benchmark_model argv[1:]``; returns the exit status."""
    from latprof.benchmarking.host import run_host_benchmark

    try:
        flags = _parse_flags(argv[1:])
    except ValueError as exc:
        io.out(f"ERROR: Failed to parse the command line flag {exc}\nERROR: Benchmarking failed.\n")
        return 1
    if not flags.graph:
        io.out("INFO: STARTING!\nERROR: Please specify the name of your TF Lite input file with --graph\n"
               "ERROR: Benchmarking failed.\n")
        return 1
    fs, graph = shell.fs, flags.graph
    try:
        head = fs.read_bytes(graph, shell.cwd, limit=8)
        size_mb = fs.lstat(graph, shell.cwd).st_size / 1e6
    except OSError:
        params = _params_only(_prelude(flags, 0.0))
        io.out("".join(params) + f"ERROR: Could not open '{graph}'.\nERROR: Failed to mmap model {graph}\n"
               "ERROR: Benchmarking failed.\n")
        return 1
    prelude = _prelude(flags, size_mb)
    if head[4:8] != b"TFL3":
        io.out("".join(_params_only(prelude)) + f"ERROR: The model is not a valid Flatbuffer buffer\n"
               f"ERROR: Failed to mmap model {graph}\nERROR: Benchmarking failed.\n")
        return 1
    if flags.unknown:
        io.out("WARN: Unconsumed cmdline flags: " + " ".join(flags.unknown) + "\n")
    io.out("".join(prelude))
    failures = shell.device.failures
    if FailureMode.DROP_MID_RUN in failures:
        shell.abort()
        return 137
    if FailureMode.BENCHMARK_CRASH in failures:
        io.err("Segmentation fault\n")
        return 139
    host_path = Path(fs.host(graph, shell.cwd))
    warmup, runs = max(flags.ints["warmup_runs"], 0), max(flags.ints["num_runs"], 1)
    try:
        if shell.device.simulated is not None:
            run = shell.device.simulated.run(host_path, warmup, runs)
        else:
            run = run_host_benchmark(host_path, threads=max(flags.ints["num_threads"], 1), warmup_runs=warmup,
                                     num_runs=runs, op_profile=flags.op_profiling, timeout_s=None,
                                     delegate="none" if flags.bools["use_xnnpack"] is False else "xnnpack")
    except LatprofError as exc:
        io.out(f"ERROR: {exc}\nERROR: Benchmarking failed.\n")
        return 1
    lines = _render(flags, size_mb, run.init_us, list(run.warmup_us), list(run.run_us), run.op_profile).splitlines(
        keepends=True)
    rest = lines[len(prelude):] if lines[:len(prelude)] == prelude else lines
    io.out("".join(rest))
    return 0

"""Benchmark a .tflite model on the host CPU.

The model runs in a child process (``python -m latprof.benchmarking._host_worker``)
so that it can be pinned to one core, killed on timeout, and kept apart from
whatever the calling process has loaded. The runtime is LiteRT's interpreter
(``ai_edge_litert``): the same TFLite interpreter and default XNNPACK delegate
that ``benchmark_model`` uses on a phone, shipped as a small wheel now that
``tf.lite.Interpreter`` is deprecated in TensorFlow.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latprof.errors import BenchmarkFailedError, BenchmarkTimeoutError

__all__ = ["HostRun", "HostWorker", "run_host_benchmark", "default_host_cpu", "set_realtime"]


@dataclass(frozen=True)
class HostRun:
    """Raw timings of one host benchmark, in microseconds."""

    init_us: float
    warmup_us: list[float]
    run_us: list[float]
    op_profile: list[tuple[str, str, float, float]] | None  # (node_type, name, first_ms, avg_ms), run order
    runtime: str
    runtime_version: str
    delegate: str
    cpu: int | None  # the core the run was pinned to, None where the OS has no affinity API


def default_host_cpu() -> int | None:
    """The core host runs are pinned to: the highest-numbered one we may use."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    return max(os.sched_getaffinity(0))


def set_realtime(pid: int) -> str:
    """Put ``pid`` under SCHED_FIFO priority 1 if allowed; return the policy it runs under (a stored setting).

    Other processes on a shared machine then cannot time-slice it mid-inference.
    """
    try:
        os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(1))
    except (AttributeError, PermissionError, OSError):
        return "SCHED_OTHER (default; SCHED_FIFO not permitted)"
    return "SCHED_FIFO priority 1"


class HostWorker:
    """One pinned ``_host_worker --batch -`` child: send it a JSON request, get its JSON answer.

    ``extra_args`` are more worker flags (``--probe`` ...). With ``realtime`` the
    child runs under SCHED_FIFO where permitted; :attr:`scheduling` says which.
    """

    def __init__(self, *, threads: int, warmup_runs: int, num_runs: int, cpu: int | None, timeout_s: float,
                 realtime: bool = True, extra_args: tuple[str, ...] = ()) -> None:
        self.timeout_s = timeout_s
        cmd = [sys.executable, "-m", "latprof.benchmarking._host_worker", "--batch", "-", "--threads", str(threads),
               "--warmup-runs", str(warmup_runs), "--num-runs", str(num_runs), *extra_args]
        if cpu is not None:
            cmd += ["--cpu", str(cpu)]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", OMP_NUM_THREADS=str(threads))
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, bufsize=1, env=env)
        self.scheduling = set_realtime(self._proc.pid) if realtime else "SCHED_OTHER (default)"
        self._lines: queue.Queue[str] = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._drain, daemon=True).start()

    def _pump(self) -> None:
        for line in self._proc.stdout:
            if line.startswith("{"):
                self._lines.put(line)
        self._lines.put("")  # end of output: the child exited

    def _drain(self) -> None:
        for line in self._proc.stderr:
            self._stderr = (self._stderr + [line.rstrip()])[-20:]

    def ask(self, item: dict[str, Any]) -> dict[str, Any]:
        """Time one model (``item`` as a batch line of the worker); its record, ``error`` included."""
        name = Path(item["model"]).name
        try:
            self._proc.stdin.write(json.dumps(item) + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died() from None
        try:
            line = self._lines.get(timeout=self.timeout_s)
        except queue.Empty:
            self.close()
            raise BenchmarkTimeoutError(
                f"host benchmark of {name} exceeded {self.timeout_s:g} s; raise --timeout or lower --runs"
            ) from None
        if not line:
            raise self._died()
        record = json.loads(line)
        if "error" in record:
            raise BenchmarkFailedError(f"the LiteRT interpreter could not run {name}: {record['error']}; "
                                       "check the model loads with ai_edge_litert.interpreter.Interpreter")
        return record

    def _died(self) -> BenchmarkFailedError:
        self._proc.wait(timeout=30)
        detail = next((ln for ln in reversed(self._stderr) if ln.strip()), f"exit status {self._proc.returncode}")
        return BenchmarkFailedError(f"the host benchmark process stopped ({detail}); "
                                    "check `latprof measure` works on a single model")

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


def run_host_benchmark(
    model_path: Path,
    *,
    threads: int = 1,
    warmup_runs: int = 10,
    num_runs: int = 50,
    op_profile: bool = False,
    timeout_s: float | None = None,
    cpu: int | None = -1,
    delegate: str = "xnnpack",
) -> HostRun:
    """Time ``num_runs`` invocations of the model after ``warmup_runs``.

    ``cpu=-1`` pins to :func:`default_host_cpu`; ``None`` leaves scheduling to the OS.
    ``delegate`` "xnnpack" is LiteRT's default; "none" runs the builtin kernels
    without default delegates (benchmark_model's ``--use_xnnpack=false``).
    Raises BenchmarkTimeoutError past ``timeout_s`` and BenchmarkFailedError when the
    interpreter rejects the model.
    """
    if cpu == -1:
        cpu = default_host_cpu()
    cmd = [
        sys.executable, "-m", "latprof.benchmarking._host_worker",
        "--model", str(model_path), "--threads", str(threads),
        "--warmup-runs", str(warmup_runs), "--num-runs", str(num_runs), "--delegate", delegate,
    ]
    if op_profile:
        cmd.append("--op-profile")
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", OMP_NUM_THREADS=str(threads))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise BenchmarkTimeoutError(
            f"host benchmark of {model_path.name} exceeded {timeout_s:g} s; raise --timeout or lower --runs"
        ) from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or "").strip().splitlines() if ln.strip()]
        detail = lines[-1] if lines else f"exit status {proc.returncode}"
        raise BenchmarkFailedError(
            f"the LiteRT interpreter could not run {model_path.name}: {detail}; "
            "check the model loads with ai_edge_litert.interpreter.Interpreter"
        )
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    profile = data.get("op_profile")
    return HostRun(
        init_us=data["init_us"],
        warmup_us=data["warmup_us"],
        run_us=data["run_us"],
        op_profile=[tuple(row) for row in profile] if profile is not None else None,
        runtime=data["runtime"],
        runtime_version=data["runtime_version"],
        delegate=data["delegate"],
        cpu=data["cpu"],
    )

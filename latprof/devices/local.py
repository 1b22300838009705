"""The host CPU as a device (``local``)."""

from __future__ import annotations

import glob
import platform
import socket
from pathlib import Path
from typing import Any

from latprof.benchmarking.host import default_host_cpu, run_host_benchmark
from latprof.benchmarking.record import LatencyStats, ModelInfo
from latprof.devices.base import BenchmarkRequest, BenchmarkRun, Device, DeviceState, state_from_sysfs, sysfs_paths
from latprof.devices.config import DeviceConfig

__all__ = ["LocalDevice"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class LocalDevice(Device):
    """Measures on this machine with LiteRT's interpreter, pinned to one core."""

    delegates = ("xnnpack", "none")  # LiteRT's CPU paths; gpu and nnapi need a phone

    def __init__(self, config: DeviceConfig) -> None:
        self.config = config
        self.cpu = default_host_cpu()

    def fingerprint(self) -> dict[str, Any]:
        return {
            "serial": socket.gethostname(),
            "model": _cpu_model(),
            "board": platform.machine(),
            "build": platform.platform(),
            "kernel": platform.release(),
            "sdk": None,
            "abi": platform.machine(),
            "python": platform.python_version(),
        }

    def state(self, request: BenchmarkRequest) -> DeviceState:
        cpus = [self.cpu] if self.cpu is not None else []
        files = {}
        for pattern in sysfs_paths(cpus):
            for path in glob.glob(pattern):
                try:
                    files[path] = Path(path).read_text()
                except OSError:
                    continue
        return state_from_sysfs(files, cpus)

    def run_benchmark(self, model: ModelInfo, request: BenchmarkRequest) -> BenchmarkRun:
        run = run_host_benchmark(
            model.path, threads=request.threads, warmup_runs=request.warmup_runs,
            num_runs=request.num_runs, op_profile=request.op_profile, timeout_s=request.timeout_s, cpu=self.cpu,
            delegate=request.delegate,
        )
        settings = {
            "threads": request.threads, "warmup_runs": request.warmup_runs, "num_runs": request.num_runs,
            "pinned_cpu": run.cpu, "core_mask": None if run.cpu is None else format(1 << run.cpu, "x"),
            "delegate": request.delegate, "runtime_delegate": run.delegate, "dtype": model.dtype,
            "op_profile": request.op_profile, "timeout_s": request.timeout_s,
        }
        ops = [
            {"node_type": t, "name": n, "first_ms": first, "avg_ms": avg}
            for t, n, first, avg in (run.op_profile or [])
        ]
        return BenchmarkRun(
            stats=LatencyStats.from_samples(run.run_us),
            runtime=run.runtime, runtime_version=run.runtime_version, settings=settings,
            command=(
                f"latprof host runner: ai_edge_litert Interpreter(num_threads={request.threads}"
                + (", BUILTIN_WITHOUT_DEFAULT_DELEGATES), " if request.delegate == "none" else "), ")
                + f"pinned to cpu{run.cpu}, {request.warmup_runs} warm-up + {request.num_runs} timed invokes"
            ),
            run_us=run.run_us, init_us=run.init_us,
            first_inference_us=run.warmup_us[0] if run.warmup_us else run.run_us[0],
            op_profile=ops,
        )

"""The host CPU as a device (``local``)."""

from __future__ import annotations

import glob
import platform
import socket
from pathlib import Path
from typing import Any, Sequence

from latprof.benchmarking.host import HostRun, HostWorker, default_host_cpu, run_host_benchmark
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
        return self._benchmark_run(model, request, run)

    def run_sequence(self, steps: Sequence[tuple[ModelInfo, BenchmarkRequest]]) -> list[BenchmarkRun]:
        """All steps in one pinned worker process (SCHED_FIFO where permitted), each model loaded once."""
        if not steps:
            return []
        first = steps[0][1]
        if any((r.threads, r.delegate) != (first.threads, first.delegate) for _, r in steps):
            raise ValueError("one sequence runs with one thread count and delegate")
        timeout_s = max(r.timeout_s or self.config.benchmark.timeout_s for _, r in steps)
        worker = HostWorker(threads=first.threads, warmup_runs=0, num_runs=1, cpu=self.cpu, timeout_s=timeout_s,
                            extra_args=("--delegate", first.delegate))
        try:
            runs = []
            for model, request in steps:
                record = worker.ask({"model": str(model.path), "warmup_runs": request.warmup_runs,
                                     "num_runs": request.num_runs, "keep": True})
                run = HostRun(init_us=record["init_us"], warmup_us=record["warmup_us"], run_us=record["run_us"],
                              op_profile=None, runtime=record["runtime"], runtime_version=record["runtime_version"],
                              delegate=record["delegate"], cpu=record["cpu"])
                runs.append(self._benchmark_run(model, request, run, worker.scheduling))
            return runs
        finally:
            worker.close()

    def _benchmark_run(self, model: ModelInfo, request: BenchmarkRequest, run: HostRun,
                       scheduling: str = "SCHED_OTHER (default)") -> BenchmarkRun:
        settings = {
            "threads": request.threads, "warmup_runs": request.warmup_runs, "num_runs": request.num_runs,
            "pinned_cpu": run.cpu, "core_mask": None if run.cpu is None else format(1 << run.cpu, "x"),
            "delegate": request.delegate, "runtime_delegate": run.delegate, "dtype": model.dtype,
            "op_profile": request.op_profile, "timeout_s": request.timeout_s, "scheduling": scheduling,
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
            first_inference_us=None if run.init_us is None else (run.warmup_us or run.run_us)[0],
            op_profile=ops,
        )

"""Running benchmarks and reading their output.

Public surface: the measurement record, the host runner, and the
``benchmark_model`` output parser and formatter.
"""

from latprof.benchmarking.host import HostRun, default_host_cpu, run_host_benchmark
from latprof.benchmarking.record import LatencyStats, Measurement, ModelInfo, inspect_model

__all__ = [
    "HostRun", "run_host_benchmark", "default_host_cpu",
    "LatencyStats", "Measurement", "ModelInfo", "inspect_model",
]

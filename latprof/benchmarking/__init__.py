"""Running benchmarks and reading their output.

Public surface: the measurement record, the host runner, the
``benchmark_model`` output parser and formatter, and cutting a model into
single-operator models.
"""

from latprof.benchmarking.host import HostRun, default_host_cpu, run_host_benchmark
from latprof.benchmarking.parser import BenchmarkOutput, parse_benchmark_output
from latprof.benchmarking.record import LatencyStats, Measurement, ModelInfo, inspect_model
from latprof.benchmarking.report import format_benchmark_output
from latprof.benchmarking._slicing import single_op_models

__all__ = [
    "HostRun", "run_host_benchmark", "default_host_cpu",
    "BenchmarkOutput", "parse_benchmark_output", "format_benchmark_output",
    "LatencyStats", "Measurement", "ModelInfo", "inspect_model", "single_op_models",
]

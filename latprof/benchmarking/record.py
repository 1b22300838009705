"""The measurement record: one latency figure with everything needed to trust it."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from latprof.benchmarking.parser import BenchmarkOutput, RunStats
from latprof.errors import ModelFileError

__all__ = ["LatencyStats", "Measurement", "ModelInfo", "inspect_model", "model_dtype", "MODEL_DTYPES", "run_op_profile",
           "TFLITE_IDENTIFIER"]

TFLITE_IDENTIFIER = b"TFL3"  # flatbuffer file identifier at bytes 4..8 of every .tflite


@dataclass(frozen=True)
class LatencyStats:
    """Summary of timed runs, in milliseconds. Fields the source did not report are None."""

    count: int
    median_ms: float | None
    mean_ms: float | None
    std_ms: float | None
    p5_ms: float | None
    p95_ms: float | None
    min_ms: float | None
    max_ms: float | None

    @classmethod
    def from_samples(cls, run_us: Sequence[float]) -> "LatencyStats":
        """Statistics of per-run times given in microseconds."""
        ms = np.asarray(run_us, dtype=float) / 1e3
        if ms.size == 0:
            raise ValueError("no timed runs")
        p5, median, p95 = np.percentile(ms, [5, 50, 95])
        return cls(
            count=int(ms.size), median_ms=float(median), mean_ms=float(ms.mean()),
            std_ms=float(ms.std()), p5_ms=float(p5), p95_ms=float(p95),
            min_ms=float(ms.min()), max_ms=float(ms.max()),
        )

    @classmethod
    def from_run_stats(cls, stats: "RunStats") -> "LatencyStats":
        """From one parsed ``count=… avg=… std=…`` line of benchmark_model (microseconds)."""
        ms = lambda us: None if us is None else us / 1e3  # noqa: E731
        return cls(
            count=stats.count, median_ms=ms(stats.median_us), mean_ms=ms(stats.avg_us), std_ms=ms(stats.std_us),
            p5_ms=ms(stats.p5_us), p95_ms=ms(stats.p95_us), min_ms=ms(stats.min_us), max_ms=ms(stats.max_us),
        )

    @property
    def headline_ms(self) -> float:
        """The one figure to quote: the median, or the mean where the tool printed no median."""
        value = self.median_ms if self.median_ms is not None else self.mean_ms
        if value is None:
            raise ValueError("no central statistic")
        return value


def run_op_profile(output: BenchmarkOutput) -> list[dict[str, Any]]:
    """The per-op rows of a parsed benchmark_model output's regular runs, as stored."""
    return [
        {"node_type": r.node_type, "name": r.name, "first_ms": r.first_ms, "avg_ms": r.avg_ms}
        for r in output.op_profile if r.section == "run"
    ]


@dataclass(frozen=True)
class ModelInfo:
    """Identity of a model file."""

    path: Path
    name: str
    sha256: str
    size_bytes: int
    dtype: str | None = None  # see model_dtype


_TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16", 9: "int8",
               10: "float64"}  # TensorType of the TFLite schema
_QUANTIZED = {"int8", "uint8", "int16"}
MODEL_DTYPES = ("float32", "float16", "int8", "uint8", "int16", "int8-weights")  # what model_dtype says


def model_dtype(data: bytes) -> str | None:
    """The data type a model computes in, from its first subgraph's inputs and constant (weight) tensors.

    "float32" / "float16" (float16 weights); "int8" / "uint8" / "int16" when weights and inputs are
    quantized, or weights and most inner activations are (integer models, also with float32 I/O
    through a QUANTIZE first and a DEQUANTIZE last, and with the few float operators the converter
    leaves where it has no integer kernel); "int8-weights" for dynamic-range quantization (int8
    weights, float activations). None when the file cannot be read.
    """
    from ai_edge_litert import schema_py_generated as schema

    try:
        model = schema.Model.GetRootAs(data, 0)
        graph = model.Subgraphs(0)
        inputs = {_TYPE_NAMES.get(graph.Tensors(int(i)).Type(), "other") for i in graph.InputsAsNumpy()}
        edges = {int(i) for i in graph.InputsAsNumpy()} | {int(i) for i in graph.OutputsAsNumpy()}
        weights, inner = set(), []
        for j in range(graph.TensorsLength()):
            tensor = graph.Tensors(j)
            buffer = model.Buffers(tensor.Buffer()) if tensor.Buffer() < model.BuffersLength() else None
            if buffer is not None and (buffer.DataLength() or buffer.Offset() > 1):
                weights.add(_TYPE_NAMES.get(tensor.Type(), "other"))
            elif j not in edges:
                inner.append(_TYPE_NAMES.get(tensor.Type(), "other"))
    except Exception:  # flatbuffers raises struct.error, IndexError, ... on bad offsets
        return None
    weights -= {"int32", "int64", "bool"}  # biases, shapes and indices say nothing about the compute type
    inner = [t for t in inner if t not in ("int32", "int64", "bool")]
    integer = [t for t in inner if t in _QUANTIZED]
    quantized = weights & _QUANTIZED
    if quantized and inputs <= _QUANTIZED:
        return sorted(inputs)[0] if inputs else sorted(quantized)[0]
    if quantized and 2 * len(integer) > len(inner):
        return max(set(integer), key=integer.count)
    if "int8" in quantized or "uint8" in quantized:
        return "int8-weights"
    if "float16" in weights:
        return "float16"
    return sorted(inputs)[0] if len(inputs) == 1 else ("float32" if "float32" in inputs else None)


def inspect_model(path: Path) -> ModelInfo:
    """Check that ``path`` is a readable TFLite flatbuffer and return its identity."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}; check the path")
    if not path.is_file():
        raise ModelFileError(f"{path} is not a file; pass a .tflite model file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read {path} ({exc.strerror}); check its permissions") from None
    if len(data) == 0:
        raise ModelFileError(f"{path} is empty; re-export the model (e.g. `latprof arch export`)")
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise ModelFileError(
            f"{path} is not a TFLite flatbuffer (no 'TFL3' identifier); convert it with tf.lite.TFLiteConverter"
        )
    if not _structure_is_complete(data):
        raise ModelFileError(f"{path} is truncated or corrupt; copy or export the model again")
    return ModelInfo(path=path, name=path.name, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data),
                     dtype=model_dtype(data))


def _structure_is_complete(data: bytes) -> bool:
    """Walk the flatbuffer's tables; a truncated or corrupt file reads out of bounds."""
    from ai_edge_litert import schema_py_generated as schema

    try:
        model = schema.Model.GetRootAs(data, 0)
        if model.SubgraphsLength() < 1:
            return False
        for i in range(model.SubgraphsLength()):
            graph = model.Subgraphs(i)
            for j in range(graph.TensorsLength()):
                tensor = graph.Tensors(j)
                tensor.ShapeAsNumpy(), tensor.Buffer()
            for j in range(graph.OperatorsLength()):
                graph.Operators(j).InputsAsNumpy()
        for i in range(model.BuffersLength()):
            buffer = model.Buffers(i)
            if buffer.Offset() > 1:  # large models keep weights after the flatbuffer
                if buffer.Offset() + buffer.Size() > len(data):
                    return False
            elif buffer.DataLength():
                buffer.DataAsNumpy()
        return True
    except Exception:  # flatbuffers raises struct.error, IndexError, ValueError... on bad offsets
        return False


@dataclass(frozen=True)
class Measurement:
    """One stored latency measurement of one model on one device.

    ``settings`` holds everything that changes a latency: threads, core mask or
    pinned CPU, warm-up and run counts, delegate, model data type, op profiling,
    timeout. ``benchmark_output`` keeps everything ``benchmark_model`` printed
    (warm-up, profiler timings, tables, delegate lines, the source of each figure),
    where the result came from its log.
    """

    model_name: str
    model_sha256: str | None
    model_bytes: int | None
    device: str
    fingerprint: dict[str, Any]
    runtime: str
    runtime_version: str
    settings: dict[str, Any]
    command: str
    stats: LatencyStats
    source: str = "measure"  # "measure" or "import-log"
    run_us: list[float] | None = None
    init_us: float | None = None
    first_inference_us: float | None = None
    op_profile: list[dict[str, Any]] = field(default_factory=list)
    memory_mb: dict[str, float] = field(default_factory=dict)
    state_before: dict[str, Any] = field(default_factory=dict)
    state_after: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    benchmark_output: dict[str, Any] | None = None  # benchmark_model's whole parsed log (BenchmarkOutput.to_dict())
    reference_speed: dict[str, Any] | None = None  # the figure at the device's reference speed (latprof.speed)
    reference_ratio: dict[str, Any] | None = None  # latency / a reference model's, timed round by round
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``latprof measure --json``)."""
        data = asdict(self)
        data["latency_ms"] = self.stats.headline_ms
        return data

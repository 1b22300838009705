"""The device interface, and device state (frequencies, temperatures) read from sysfs."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from latprof.benchmarking.record import LatencyStats, ModelInfo
from latprof.devices.config import DeviceConfig, ThermalLimits

__all__ = [
    "Device", "DeviceState", "CoreState", "BenchmarkRequest", "BenchmarkRun",
    "sysfs_paths", "state_from_sysfs", "cpus_in_mask", "DELEGATES", "DEFAULT_DELEGATE", "delegate_name",
]

# --delegate choices: benchmark_model's --use_xnnpack=true|false, --use_gpu, --use_nnapi. XNNPACK is
# what benchmark_model and LiteRT apply by default; "none" runs TFLite's builtin kernels only.
DELEGATES = ("xnnpack", "gpu", "nnapi", "none")
DEFAULT_DELEGATE = "xnnpack"


def delegate_name(value: str | None) -> str:
    """A stored delegate setting as one of :data:`DELEGATES`-style names; records from before the
    setting existed (None, ``"xnnpack (LiteRT default)"``) read as the default, XNNPACK."""
    if not value:
        return DEFAULT_DELEGATE
    return value.split()[0].lower()

CPU_ROOT = "/sys/devices/system/cpu"
THERMAL_ROOT = "/sys/class/thermal"
_CPUFREQ_FILES = ("scaling_governor", "scaling_cur_freq", "scaling_max_freq", "cpuinfo_max_freq")


@dataclass(frozen=True)
class CoreState:
    """cpufreq state of one core; None where the file is missing or unreadable."""

    cpu: int
    governor: str | None = None
    cur_khz: int | None = None
    max_khz: int | None = None  # scaling_max_freq: the current cap
    hw_max_khz: int | None = None  # cpuinfo_max_freq: what the silicon can do


@dataclass(frozen=True)
class DeviceState:
    """Frequencies of the benchmarked cores and thermal-zone temperatures at one moment."""

    cores: tuple[CoreState, ...] = ()
    temps_c: dict[str, float] = field(default_factory=dict)

    @property
    def hottest_c(self) -> float | None:
        return max(self.temps_c.values()) if self.temps_c else None

    def throttle_warnings(self, limits: ThermalLimits) -> list[str]:
        """Human-readable reasons the device looks throttled (empty when it does not)."""
        warnings = []
        hottest = self.hottest_c
        if hottest is not None and hottest > limits.max_temp_c:
            zone = max(self.temps_c, key=self.temps_c.__getitem__)
            warnings.append(f"device is hot: {zone} at {hottest:.1f} C (limit {limits.max_temp_c:g} C)")
        for core in self.cores:
            if core.hw_max_khz and core.max_khz and core.max_khz < limits.min_freq_ratio * core.hw_max_khz:
                warnings.append(
                    f"cpu{core.cpu} frequency capped at {core.max_khz / 1e3:.0f} MHz "
                    f"of {core.hw_max_khz / 1e3:.0f} MHz (thermal throttling?)"
                )
        return warnings

    def to_dict(self) -> dict[str, Any]:
        return {"cores": [asdict(c) for c in self.cores], "temps_c": dict(self.temps_c)}


def cpus_in_mask(mask: str) -> list[int]:
    """CPU numbers in a hex affinity mask as taskset takes it (``"f0"`` -> 4..7)."""
    value = int(mask, 16)
    return [cpu for cpu in range(value.bit_length()) if value >> cpu & 1]


def sysfs_paths(cpus: list[int]) -> list[str]:
    """The sysfs files that :func:`state_from_sysfs` reads, thermal zones as a glob."""
    paths = [f"{CPU_ROOT}/cpu{cpu}/cpufreq/{name}" for cpu in cpus for name in _CPUFREQ_FILES]
    paths += [f"{THERMAL_ROOT}/thermal_zone*/type", f"{THERMAL_ROOT}/thermal_zone*/temp"]
    return paths


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def state_from_sysfs(files: dict[str, str], cpus: list[int]) -> DeviceState:
    """Build a DeviceState from ``{path: content}`` of the files in :func:`sysfs_paths`."""
    cores = []
    for cpu in cpus:
        base = f"{CPU_ROOT}/cpu{cpu}/cpufreq/"
        governor = files.get(base + "scaling_governor")
        cores.append(CoreState(
            cpu=cpu,
            governor=governor.strip() if governor else None,
            cur_khz=_int_or_none(files.get(base + "scaling_cur_freq")),
            max_khz=_int_or_none(files.get(base + "scaling_max_freq")),
            hw_max_khz=_int_or_none(files.get(base + "cpuinfo_max_freq")),
        ))
    temps = {}
    for path, content in files.items():
        match = re.fullmatch(re.escape(THERMAL_ROOT) + r"/(thermal_zone\d+)/temp", path)
        raw = _int_or_none(content)
        if not match or raw is None:
            continue
        zone_type = (files.get(f"{THERMAL_ROOT}/{match.group(1)}/type") or match.group(1)).strip()
        celsius = raw / 1000 if abs(raw) >= 200 else float(raw)  # most kernels report millidegrees
        if -40 <= celsius <= 150:  # skip disabled zones and sensors that report garbage
            temps[f"{match.group(1)}:{zone_type}"] = celsius
    return DeviceState(cores=tuple(cores), temps_c=temps)


@dataclass(frozen=True)
class BenchmarkRequest:
    """What to run: every setting that changes a latency."""

    threads: int
    warmup_runs: int
    num_runs: int
    op_profile: bool = False
    timeout_s: float | None = None
    core_mask: str | None = None  # Android: taskset mask; host: ignored (pinned to one core)
    benchmark_binary: Path | None = None  # Android: local binary to push when the device lacks one
    delegate: str = DEFAULT_DELEGATE  # one of DELEGATES


@dataclass(frozen=True)
class BenchmarkRun:
    """What a device reports for one benchmark run."""

    stats: LatencyStats
    runtime: str
    runtime_version: str
    settings: dict[str, Any]
    command: str
    run_us: list[float] | None = None
    init_us: float | None = None
    first_inference_us: float | None = None
    op_profile: list[dict[str, Any]] = field(default_factory=list)
    memory_mb: dict[str, float] = field(default_factory=dict)


class Device(ABC):
    """A device latprof can measure on: the host, or an Android phone over ADB."""

    config: DeviceConfig
    delegates: tuple[str, ...] = DELEGATES  # the --delegate values this device can run

    @property
    def name(self) -> str:
        """The name results are stored under."""
        return self.config.name

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """Identity of the device: serial, model, board, build, SDK, ABI (host: CPU model, kernel)."""

    @abstractmethod
    def state(self, request: BenchmarkRequest) -> DeviceState:
        """Frequencies of the cores the request runs on, and temperatures."""

    @abstractmethod
    def run_benchmark(self, model: ModelInfo, request: BenchmarkRequest) -> BenchmarkRun:
        """Benchmark the model; raise a LatprofError subclass on failure."""

    def run_sequence(self, steps: Sequence[tuple[ModelInfo, BenchmarkRequest]]) -> list[BenchmarkRun]:
        """Benchmark each ``(model, request)`` in this order (a model may come back: it is timed again).

        By default each step is one :meth:`run_benchmark`; the host keeps one process for all of them.
        """
        return [self.run_benchmark(model, request) for model, request in steps]

    def close(self) -> None:
        """Release the connection, if any."""

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Device configs: one TOML file per device.

A user adds a device by adding a file. Configs are searched in, in order:
``$LATPROF_DEVICE_CONFIGS`` (colon-separated folders), the user's
``~/.config/latprof/devices/`` and the configs shipped with latprof
(:data:`latprof.data.DEVICE_CONFIGS`).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from latprof.data import DEVICE_CONFIGS
from latprof.errors import ParseError, UnknownDeviceError

__all__ = ["DeviceConfig", "BenchmarkDefaults", "ThermalLimits", "load_config", "list_configs", "config_dirs"]


@dataclass(frozen=True)
class BenchmarkDefaults:
    """How the device is benchmarked unless the user overrides it."""

    threads: int = 1
    warmup_runs: int = 10
    num_runs: int = 50
    timeout_s: float = 600.0
    binary: str = "/data/local/tmp/benchmark_model"
    core_mask: str | None = None


@dataclass(frozen=True)
class ThermalLimits:
    """When a device counts as throttled, and how long to wait for it to cool."""

    max_temp_c: float = 45.0
    min_freq_ratio: float = 0.9
    cooldown_target_c: float = 38.0
    cooldown_max_wait_s: float = 300.0


@dataclass(frozen=True)
class DeviceConfig:
    """One device: how to recognise it, benchmark it, and judge its thermal state."""

    name: str
    kind: str  # "host" or "android"
    description: str = ""
    match: dict[str, str] = field(default_factory=dict)  # expected ro.product.{model,device,board}
    benchmark: BenchmarkDefaults = BenchmarkDefaults()
    thermal: ThermalLimits = ThermalLimits()
    hardware: dict[str, object] = field(default_factory=dict)
    source: Path | None = None

    def matches(self, props: dict[str, str]) -> bool:
        """True if the ``ro.product.*`` properties of a connected device fit this config."""
        if not self.match:
            return False
        return all(props.get(f"ro.product.{key}") == value for key, value in self.match.items())


def config_dirs() -> list[Path]:
    """Folders searched for device configs, highest priority first."""
    dirs = [Path(p) for p in os.environ.get("LATPROF_DEVICE_CONFIGS", "").split(os.pathsep) if p]
    dirs.append(Path.home() / ".config" / "latprof" / "devices")
    dirs.append(DEVICE_CONFIGS)
    return dirs


def _parse(path: Path) -> DeviceConfig:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ParseError(f"device config {path} is not valid TOML ({exc}); fix or remove the file") from None
    try:
        return DeviceConfig(
            name=data.get("name", path.stem),
            kind=data.get("kind", "android"),
            description=data.get("description", ""),
            match={k: str(v) for k, v in data.get("match", {}).items()},
            benchmark=BenchmarkDefaults(**data.get("benchmark", {})),
            thermal=ThermalLimits(**data.get("thermal", {})),
            hardware=dict(data.get("hardware", {})),
            source=path,
        )
    except TypeError as exc:
        raise ParseError(f"device config {path} has an unknown key ({exc}); see {DEVICE_CONFIGS / 'pixel1.toml'}") from None


def list_configs() -> dict[str, DeviceConfig]:
    """All device configs by name; earlier folders win over later ones."""
    configs: dict[str, DeviceConfig] = {}
    for folder in reversed(config_dirs()):
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                config = _parse(path)
                configs[config.name] = config
    return configs


def load_config(name: str) -> DeviceConfig:
    """The config called ``name``; raises UnknownDeviceError listing the known names."""
    configs = list_configs()
    if name not in configs:
        known = ", ".join(sorted(configs)) or "none"
        raise UnknownDeviceError(
            f"unknown device '{name}' (known: {known}); add ~/.config/latprof/devices/{name}.toml, "
            "or pass an ADB serial or HOST:PORT"
        )
    return configs[name]

"""What the fake phone looks like: properties, connect banner and sysfs, from a device config.

A device config (``latprof/data/device_configs/<name>.toml``) gives the identity (``[match]``:
model, device, board) and the hardware (``[hardware]``: soc, abi, sdk, release,
per-core ``cpu_max_khz``). From those this module builds the ``getprop`` table,
the ``CNXN`` banner, and the files a phone exposes under ``/sys`` and ``/proc``:
cpufreq per core and a handful of thermal zones with realistic names. A *hot*
phone has its zones at about 55 °C and the big cores' ``scaling_max_freq`` (and
so ``scaling_cur_freq``) capped to about 60% of ``cpuinfo_max_freq``.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from latprof.devices.config import DeviceConfig, load_config
from latprof.errors import LatprofError

__all__ = ["DeviceProfile", "load_profile", "BENCHMARK_PATH", "ABI_MACHINE"]

BENCHMARK_PATH = "/data/local/tmp/benchmark_model"
ABI_MACHINE = {"arm64-v8a": "aarch64", "armeabi-v7a": "armv8l", "x86_64": "x86_64", "x86": "i686"}
_PLATFORMS = {  # ro.board.platform of well-known SoCs
    "Snapdragon 821": "msm8996", "Snapdragon 820": "msm8996", "Snapdragon 835": "msm8998",
    "Snapdragon 845": "sdm845", "Snapdragon 855": "msmnile", "Snapdragon 865": "kona",
    "Google Tensor": "gs101", "Google Tensor G2": "gs201", "Google Tensor G3": "zuma",
}
_DEFAULT_CPUS = [1800000] * 4 + [2400000] * 4


@dataclass(frozen=True)
class DeviceProfile:
    """The identity and hardware of the fake phone."""

    name: str
    model: str
    device: str
    board: str
    soc: str
    abi: str
    sdk: int
    release: str
    cpu_max_khz: tuple[int, ...]
    benchmark_path: str = BENCHMARK_PATH
    extra_props: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: DeviceConfig) -> DeviceProfile:
        """The profile of an Android device config; LatprofError for a host config."""
        if config.kind != "android":
            raise LatprofError(
                f"device config '{config.name}' is a {config.kind} device, not a phone; "
                "pass --profile with an Android config such as pixel1"
            )
        hw = config.hardware
        cpus = hw.get("cpu_max_khz") or _DEFAULT_CPUS
        if not isinstance(cpus, list) or not cpus or not all(isinstance(c, int) and c > 0 for c in cpus):
            raise LatprofError(
                f"device config '{config.name}' has a bad [hardware] cpu_max_khz ({cpus!r}); "
                "give one maximum frequency in kHz per core"
            )
        device = config.match.get("device", config.name)
        return cls(
            name=config.name,
            model=config.match.get("model", config.name),
            device=device,
            board=config.match.get("board", device),
            soc=str(hw.get("soc", "unknown")),
            abi=str(hw.get("abi", "arm64-v8a")),
            sdk=int(hw.get("sdk", 30)),  # type: ignore[call-overload]
            release=str(hw.get("release", "11")),
            cpu_max_khz=tuple(int(c) for c in cpus),
            benchmark_path=config.benchmark.binary or BENCHMARK_PATH,
        )

    # -- identity ---------------------------------------------------------------------------
    @property
    def cpu_count(self) -> int:
        return len(self.cpu_max_khz)

    @property
    def big_cores(self) -> list[int]:
        """Cores faster than the slowest cluster (all cores on a one-cluster SoC)."""
        slowest = min(self.cpu_max_khz)
        big = [cpu for cpu, khz in enumerate(self.cpu_max_khz) if khz > slowest]
        return big or list(range(self.cpu_count))

    @property
    def machine(self) -> str:
        return ABI_MACHINE.get(self.abi, "aarch64")

    def properties(self, serial: str = "LOOPBACK") -> dict[str, str]:
        """The ``getprop`` table."""
        platform = _PLATFORMS.get(self.soc, self.board)
        build_id = "LPRF.230101.001"
        fingerprint = f"google/{self.device}/{self.device}:{self.release}/{build_id}/1:user/release-keys"
        abilist = {"arm64-v8a": "arm64-v8a,armeabi-v7a,armeabi", "x86_64": "x86_64,x86"}.get(self.abi, self.abi)
        props = {
            "ro.product.model": self.model,
            "ro.product.device": self.device,
            "ro.product.board": self.board,
            "ro.product.name": self.device,
            "ro.product.brand": "google",
            "ro.product.manufacturer": "Google",
            "ro.product.cpu.abi": self.abi,
            "ro.product.cpu.abilist": abilist,
            "ro.board.platform": platform,
            "ro.hardware": self.board,
            "ro.soc.model": self.soc,
            "ro.soc.manufacturer": "Google" if self.soc.startswith("Google") else "Qualcomm",
            "ro.build.version.sdk": str(self.sdk),
            "ro.build.version.release": self.release,
            "ro.build.id": build_id,
            "ro.build.display.id": f"{build_id} release-keys",
            "ro.build.type": "user",
            "ro.build.tags": "release-keys",
            "ro.build.fingerprint": fingerprint,
            "ro.bootimage.build.fingerprint": fingerprint,
            "ro.serialno": serial,
            "ro.boot.serialno": serial,
            "ro.secure": "1",
            "ro.adb.secure": "1",
            "ro.debuggable": "0",
            "ro.kernel.qemu": "0",
            "sys.boot_completed": "1",
            "init.svc.adbd": "running",
            "persist.sys.timezone": "Etc/UTC",
            "ro.latprof.loopback": "1",
        }
        props.update(self.extra_props)
        return props

    def banner(self, features: list[str]) -> bytes:
        """The device's ``CNXN`` payload."""
        return (
            f"device::ro.product.name={self.device};ro.product.model={self.model};"
            f"ro.product.device={self.device};features={','.join(features)}"
        ).encode()

    # -- files ------------------------------------------------------------------------------
    def capped_khz(self, cpu: int) -> int:
        """The thermal cap of a big core on a hot phone: about 60% of its maximum, in 100 MHz steps."""
        return max(300000, round(self.cpu_max_khz[cpu] * 0.6 / 100000) * 100000)

    def thermal_zones(self, hot: bool) -> list[tuple[str, int]]:
        """``(type, millidegrees C)`` per thermal zone, in zone order."""
        first_big = self.big_cores[0]
        if hot:
            temps = [41200, 49800, 55300, 56100, 47600]
        else:
            temps = [29000, 31500, 33400, 34100, 30200]
        names = ["battery", "xo-therm", "cpu0-silver-usr", f"cpu{first_big}-gold-usr", "skin-therm"]
        return list(zip(names, temps))

    def files(self, hot: bool = False) -> dict[str, bytes]:
        """Profile-owned read-only files: cpufreq, thermal zones, /proc, build.prop."""
        files: dict[str, bytes] = {}
        cpu_root = "/sys/devices/system/cpu"
        last = self.cpu_count - 1
        for name in ("online", "possible", "present"):
            files[f"{cpu_root}/{name}"] = f"0-{last}\n".encode()
        big = set(self.big_cores)
        for cpu, max_khz in enumerate(self.cpu_max_khz):
            cap = self.capped_khz(cpu) if hot and cpu in big else max_khz
            cluster = [c for c, khz in enumerate(self.cpu_max_khz) if khz == max_khz]
            base = f"{cpu_root}/cpu{cpu}/cpufreq"
            values = {
                "scaling_governor": "schedutil",
                "scaling_available_governors": "schedutil performance powersave",
                "scaling_cur_freq": str(cap),
                "scaling_max_freq": str(cap),
                "scaling_min_freq": "300000",
                "cpuinfo_max_freq": str(max_khz),
                "cpuinfo_min_freq": "300000",
                "cpuinfo_cur_freq": str(cap),
                "related_cpus": " ".join(str(c) for c in cluster),
                "affected_cpus": " ".join(str(c) for c in cluster),
            }
            for name, value in values.items():
                files[f"{base}/{name}"] = (value + "\n").encode()
            files[f"{cpu_root}/cpu{cpu}/online"] = b"1\n"
        for zone, (zone_type, millideg) in enumerate(self.thermal_zones(hot)):
            base = f"/sys/class/thermal/thermal_zone{zone}"
            files[f"{base}/type"] = (zone_type + "\n").encode()
            files[f"{base}/temp"] = f"{millideg}\n".encode()
            files[f"{base}/mode"] = b"enabled\n"
        files["/proc/cpuinfo"] = self._cpuinfo().encode()
        files["/proc/version"] = (
            f"Linux version 4.19.0-latprof-loopback (android-build@localhost) #1 SMP PREEMPT ({self.soc})\n"
        ).encode()
        files["/system/build.prop"] = (
            "# latprof loopback device\n" + "".join(f"{k}={v}\n" for k, v in sorted(self.properties().items())
                                                  if k.startswith("ro.") and k != "ro.serialno")
        ).encode()
        return files

    def _cpuinfo(self) -> str:
        blocks = []
        for cpu in range(self.cpu_count):
            blocks.append(
                f"processor\t: {cpu}\nBogoMIPS\t: 38.40\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n"
                "CPU implementer\t: 0x51\nCPU architecture: 8\nCPU variant\t: 0x0\n"
                f"CPU part\t: 0x{0x800 + cpu // 4:03x}\n"
                "CPU revision\t: 4\n"
            )
        return "\n".join(blocks) + f"\nHardware\t: {self.soc}\n"

    def folders(self) -> list[str]:
        """Folders every phone has (created empty when missing)."""
        return [
            "/data/local/tmp", "/data/misc/adb", "/sdcard", "/system/bin", "/vendor/bin", "/dev", "/proc",
            posixpath.dirname(self.benchmark_path),
        ]


def load_profile(name_or_config: str | DeviceConfig) -> DeviceProfile:
    """A profile from a config name (``pixel1``) or a loaded DeviceConfig."""
    config = load_config(name_or_config) if isinstance(name_or_config, str) else name_or_config
    return DeviceProfile.from_config(config)

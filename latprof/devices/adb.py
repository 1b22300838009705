"""Android phones over ADB, through the adb-shell library (no adb server needed).

The phone runs TFLite's own ``benchmark_model``, pinned with ``taskset`` to the
config's big-core mask; every path and argument passed to the device shell is
quoted with :func:`shlex.quote`.
"""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import socket
import stat
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from latprof.benchmarking.parser import BenchmarkOutput, parse_benchmark_output
from latprof.benchmarking.record import LatencyStats, ModelInfo, run_op_profile
from latprof.devices.base import (
    BenchmarkRequest, BenchmarkRun, Device, DeviceState, cpus_in_mask, state_from_sysfs, sysfs_paths,
)
from latprof.devices.config import DeviceConfig
from latprof.errors import (
    BenchmarkBinaryMissingError, BenchmarkFailedError, BenchmarkTimeoutError, DeviceDisconnectedError,
    DeviceError, DeviceUnauthorizedError, LatprofError, NoDeviceError,
)

__all__ = ["AdbDevice", "default_key_path", "load_signer", "parse_getprop", "tcp_transport", "REMOTE_DIR"]

REMOTE_DIR = "/data/local/tmp/latprof"
_EXIT_MARKER = "__latprof_exit="
T = TypeVar("T")


def default_key_path() -> Path:
    """Where adb keeps its key: ``$ADB_VENDOR_KEYS``-independent ``~/.android/adbkey``."""
    return Path(os.environ.get("ANDROID_USER_HOME") or Path.home() / ".android") / "adbkey"


def load_signer(key_path: Path | None = None):
    """The RSA signer for ``key_path`` (adb's format), creating the key pair with mode 0600 if missing."""
    from adb_shell.auth.keygen import keygen
    from adb_shell.auth.sign_cryptography import CryptographySigner

    key_path = key_path or default_key_path()
    key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Several processes may start at once (a farm's agents): one makes the pair, the others wait for both files.
    with open(key_path.with_name(key_path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not key_path.exists():
            keygen(str(key_path))
            os.chmod(key_path, 0o600)
        return CryptographySigner(str(key_path))


def parse_getprop(text: str) -> dict[str, str]:
    """``getprop`` output (``[key]: [value]`` lines) as a dict."""
    return dict(re.findall(r"^\[([^\]]+)\]: \[(.*)\]\s*$", text, flags=re.M))


def tcp_transport(host: str, port: int):
    from adb_shell.transport.tcp_transport import TcpTransport

    class _Transport(TcpTransport):
        """adb-shell's TCP transport, but a closed socket is reported at once instead of after a timeout,
        and small packets go out at once (no Nagle delay: each pushed file's last packet waited ~40 ms)."""

        def connect(self, transport_timeout_s):
            super().connect(transport_timeout_s)
            self._connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def bulk_read(self, numbytes, transport_timeout_s):
            data = super().bulk_read(numbytes, transport_timeout_s)
            if numbytes and not data:
                raise ConnectionResetError("connection closed by the device")
            return data

    return _Transport(host, port)


class AdbDevice(Device):
    """An Android device reached over TCP (``HOST:PORT``) or USB (a serial)."""

    def __init__(self, handle: Any, serial: str, config: DeviceConfig | None, props: dict[str, str]) -> None:
        self._handle = handle
        self.serial = serial
        self.props = props
        self.config = config or DeviceConfig(name=serial, kind="android")

    # -- connecting -------------------------------------------------------------------------
    @classmethod
    def connect(
        cls, serial: str, *, configs: dict[str, DeviceConfig], key_path: Path | None = None,
        auth_timeout_s: float = 10.0, handle: Any = None,
    ) -> "AdbDevice":
        """Connect and authenticate; ``serial`` is ``HOST:PORT`` unless a USB ``handle`` is given."""
        from adb_shell.adb_device import AdbDevice as _AdbShellDevice
        from adb_shell.exceptions import AdbTimeoutError, DeviceAuthError, TcpTimeoutException

        if handle is None:
            host, _, port = serial.rpartition(":")
            handle = _AdbShellDevice(tcp_transport(host, int(port)), default_transport_timeout_s=10.0)
        key = key_path or default_key_path()
        signer = load_signer(key)
        try:
            handle.connect(rsa_keys=[signer], auth_timeout_s=auth_timeout_s, read_timeout_s=auth_timeout_s)
        except (DeviceAuthError, AdbTimeoutError, TcpTimeoutException):
            handle.close()
            raise DeviceUnauthorizedError(
                f"device {serial} did not accept latprof's ADB key {key}; unlock it and allow USB debugging "
                "for this computer, then run again"
            ) from None
        except ConnectionRefusedError:
            raise NoDeviceError(
                f"nothing answers at {serial}; enable ADB over TCP on the device (`adb tcpip 5555`) or check the address"
            ) from None
        except OSError as exc:
            raise NoDeviceError(f"cannot reach {serial} ({exc.strerror or exc}); check the address and the network") from None
        device = cls(handle, serial, None, {})
        device.props = parse_getprop(device.shell("getprop", timeout_s=30))
        config = next((c for c in configs.values() if c.matches(device.props)), None)
        config = config or DeviceConfig(name=serial, kind="android")
        if device.is_loopback:  # latprof's own fake phone: never file its figures under the real phone
            simulated = device.props.get("ro.latprof.benchmark", "").startswith("simulated")
            config = replace(config, name=f"{'simulated' if simulated else 'loopback'}-{config.name}")
        device.config = config
        return device

    @property
    def is_loopback(self) -> bool:
        """True for latprof's loopback device (`latprof device serve`), which runs models on the host."""
        return self.props.get("ro.latprof.loopback") == "1"

    def close(self) -> None:
        self._handle.close()

    # -- talking ----------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T]) -> T:
        from adb_shell.exceptions import AdbConnectionError, AdbTimeoutError, InvalidResponseError, TcpTimeoutException

        try:
            return fn()
        except (AdbConnectionError, InvalidResponseError, OSError) as exc:
            self._handle.close()
            raise DeviceDisconnectedError(
                f"lost the connection to {self.serial} during {what} ({exc}); reconnect the device and run again"
            ) from None
        except (AdbTimeoutError, TcpTimeoutException):
            self._handle.close()
            raise BenchmarkTimeoutError(
                f"{what} on {self.serial} timed out; raise --timeout, or check the device responds (`adb shell true`)"
            ) from None

    def shell(self, command: str, timeout_s: float | None = 60.0) -> str:
        """Run a shell command on the device; returns its output (stdout and stderr as the device sends them)."""
        read_timeout = max(timeout_s or 0.0, 10.0)
        return self._call(
            f"`{command[:60]}`",
            lambda: self._handle.shell(command, read_timeout_s=read_timeout, timeout_s=timeout_s),
        )

    def shell_status(self, command: str, timeout_s: float | None = 60.0) -> tuple[str, int]:
        """Run ``command`` and return ``(output, exit status)``."""
        output = self.shell(f"{command}; echo {_EXIT_MARKER}$?", timeout_s)
        head, sep, tail = output.rpartition(_EXIT_MARKER)
        if not sep:
            raise DeviceDisconnectedError(
                f"the shell on {self.serial} stopped before `{command[:40]}` finished; reconnect and run again"
            )
        return head, int(tail.strip() or 1)

    def push(self, local: Path, remote: str, mode: int = 0o644) -> None:
        self._call(f"push of {local.name}", lambda: self._handle.push(str(local), remote, st_mode=stat.S_IFREG | mode))

    def push_many(self, files: Sequence[tuple[Path, str]], mode: int = 0o644) -> None:
        """Push ``(local, remote)`` files over one sync session (adb-shell's ``push`` opens one per file,
        so this drives its sync layer, private to it, the way ``push`` does)."""
        from adb_shell import constants
        from adb_shell.adb_device import _FileSyncTransactionInfo
        from adb_shell.exceptions import PushFailedError

        handle = self._handle

        def send() -> None:
            info = handle._open(b"sync:", None, constants.DEFAULT_READ_TIMEOUT_S, None)
            for local, remote in files:
                sync = _FileSyncTransactionInfo(constants.FILESYNC_PUSH_FORMAT, maxdata=handle._maxdata)
                with open(local, "rb") as stream:
                    handle._push(stream, remote, stat.S_IFREG | mode, 0, None, info, sync)
            handle._clse(info)

        try:
            self._call(f"push of {len(files)} files", send)
        except PushFailedError as exc:
            raise DeviceError(f"{self.serial} refused a pushed file ({exc}); check free space in {REMOTE_DIR}"
                              ) from None

    def pull(self, remote: str, local: Path) -> None:
        self._call(f"pull of {remote}", lambda: self._handle.pull(remote, str(local)))

    def stat_mode(self, remote: str) -> int:
        """The file mode of a device path; 0 when it does not exist."""
        return self._call(f"stat of {remote}", lambda: self._handle.stat(remote))[0]

    # -- Device interface -------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        p = self.props
        return {
            "serial": self.serial,
            "model": p.get("ro.product.model"),
            "device": p.get("ro.product.device"),
            "board": p.get("ro.product.board") or p.get("ro.board.platform"),
            "soc": p.get("ro.soc.model") or p.get("ro.board.platform"),
            "build": p.get("ro.build.fingerprint"),
            "sdk": p.get("ro.build.version.sdk"),
            "release": p.get("ro.build.version.release"),
            "abi": p.get("ro.product.cpu.abi"),
            "loopback": self.is_loopback,
        }

    def _mask(self, request: BenchmarkRequest) -> str | None:
        return request.core_mask or self.config.benchmark.core_mask

    def state(self, request: BenchmarkRequest) -> DeviceState:
        mask = self._mask(request)
        cpus = cpus_in_mask(mask) if mask else []
        output = self.shell("grep -H . " + " ".join(sysfs_paths(cpus)) + " 2>/dev/null", timeout_s=30)
        files = {}
        for line in output.splitlines():
            path, sep, value = line.partition(":")
            if sep:
                files[path] = value
        return state_from_sysfs(files, cpus)

    def _ensure_binary(self, request: BenchmarkRequest) -> str:
        binary = self.config.benchmark.binary
        mode = self.stat_mode(binary)
        if mode == 0 and request.benchmark_binary is None:
            raise BenchmarkBinaryMissingError(
                f"benchmark_model is not on {self.serial} at {binary}; pass --benchmark-binary PATH "
                "(TFLite's prebuilt android_aarch64_benchmark_model) to push it"
            )
        if mode == 0 or (request.benchmark_binary is not None and not mode & 0o111):
            local = request.benchmark_binary
            if not local.is_file():
                raise BenchmarkBinaryMissingError(f"--benchmark-binary {local} does not exist; check the path")
            self.push(local, binary, mode=0o755)
        elif not mode & 0o111:
            _, status = self.shell_status(f"chmod 755 {shlex.quote(binary)}")
            if status != 0:
                raise BenchmarkBinaryMissingError(
                    f"{binary} on {self.serial} is not executable; pass --benchmark-binary PATH to push a fresh copy"
                )
        return binary

    def run_benchmark(self, model: ModelInfo, request: BenchmarkRequest) -> BenchmarkRun:
        return self.run_sequence([(model, request)])[0]

    def run_sequence(self, steps: Sequence[tuple[ModelInfo, BenchmarkRequest]]) -> list[BenchmarkRun]:
        """Benchmark each ``(model, request)`` in order, one ``benchmark_model`` process each, in one batch.

        The models are pushed over one sync session and run by one shell call (no round trip, no
        state read between them); the run folder is removed once, the binary hashed once.
        """
        distinct = {request.benchmark_binary: request for _, request in steps}
        binaries = {local: self._ensure_binary(request) for local, request in distinct.items()}
        run_dir = f"{REMOTE_DIR}/{uuid.uuid4().hex[:12]}"
        remote = {m.path: f"{run_dir}/{i}-{m.name}" for i, m in enumerate(dict.fromkeys(m for m, _ in steps))}
        commands = [self._command(binaries[r.benchmark_binary], remote[m.path], r) for m, r in steps]
        markers = [f"{_EXIT_MARKER}{uuid.uuid4().hex[:8]}=" for _ in steps]
        script = "; ".join(f"{c} 2>&1; echo {marker}$?" for c, marker in zip(commands, markers))
        timeouts = [r.timeout_s for _, r in steps]
        try:
            _, status = self.shell_status(f"mkdir -p {shlex.quote(run_dir)}")
            if status != 0:
                raise DeviceError(f"cannot create {run_dir} on {self.serial}; check /data/local/tmp is writable")
            self.push_many([(m.path, remote[m.path]) for m in dict.fromkeys(m for m, _ in steps)])
            output = self.shell(script, timeout_s=None if None in timeouts else sum(timeouts))
        finally:
            self._cleanup(run_dir)
        versions = {b: self._binary_version(b) for b in set(binaries.values())}
        runs = []
        for (model, request), command, marker in zip(steps, commands, markers):
            head, sep, output = output.partition(marker)
            status_text, _, output = output.partition("\n")
            if not sep:
                raise DeviceDisconnectedError(f"the shell on {self.serial} stopped before `{command[:40]}` "
                                              "finished; reconnect and run again")
            binary = binaries[request.benchmark_binary]
            runs.append(self._parse_run(model, request, binary, command, head, int(status_text.strip() or 1),
                                        versions[binary]))
        return runs

    def _command(self, binary: str, remote_model: str, request: BenchmarkRequest) -> str:
        mask = self._mask(request)
        argv = [
            binary, f"--graph={remote_model}", f"--num_threads={request.threads}",
            f"--warmup_runs={request.warmup_runs}", f"--num_runs={request.num_runs}",
            "--warmup_min_secs=0", "--min_secs=0", *_DELEGATE_FLAGS[request.delegate],
        ]
        if request.op_profile:
            argv.append("--enable_op_profiling=true")
        if mask:
            argv = ["taskset", mask, *argv]
        return " ".join(shlex.quote(arg) for arg in argv)

    def _parse_run(self, model: ModelInfo, request: BenchmarkRequest, binary: str, command: str, output: str,
                   status: int, version: str) -> BenchmarkRun:
        if status in (126, 127):  # the shell's "not found" / "not executable"
            raise BenchmarkBinaryMissingError(
                f"{binary} cannot be run on {self.serial} ({_last_line(output)}); "
                "pass --benchmark-binary PATH with a build for this ABI"
            )
        parsed = parse_benchmark_output(output)
        if status != 0:
            raise BenchmarkFailedError(f"benchmark_model exited with status {status} on {self.serial}: "
                                       f"{_last_line(output)}")
        stats = parsed.inference
        if stats is None:
            raise BenchmarkFailedError(f"benchmark_model printed no timed runs on {self.serial}: {_last_line(output)}")
        _check_delegate(parsed, request.delegate, self.serial)
        return BenchmarkRun(
            stats=LatencyStats.from_run_stats(stats),
            runtime="tflite benchmark_model",
            runtime_version=version,
            settings={
                "threads": request.threads, "warmup_runs": request.warmup_runs, "num_runs": request.num_runs,
                "core_mask": self._mask(request), "binary": binary, "delegate": request.delegate,
                "delegate_reported": parsed.delegate_in_use(), "dtype": model.dtype,
                "op_profile": request.op_profile, "timeout_s": request.timeout_s,
            },
            command=command,
            init_us=parsed.init_us, first_inference_us=parsed.first_inference_us,
            op_profile=run_op_profile(parsed),
            memory_mb=dict(parsed.memory_mb),
        )

    def _binary_version(self, binary: str) -> str:
        output, status = self.shell_status(f"sha256sum {shlex.quote(binary)}")
        digest = output.split()[0] if status == 0 and output.split() else "unknown"
        return f"sha256:{digest[:16]}"

    def _cleanup(self, run_dir: str) -> None:
        try:
            self.shell(f"rm -rf {shlex.quote(run_dir)}", timeout_s=30)
        except LatprofError:
            pass  # the device is gone or stuck; the original error matters more


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "no output"


# benchmark_model flags per --delegate; "none" turns the default XNNPACK delegate off.
_DELEGATE_FLAGS = {
    "xnnpack": ("--use_xnnpack=true",), "none": ("--use_xnnpack=false",),
    "gpu": ("--use_gpu=true",), "nnapi": ("--use_nnapi=true",),
}


def _check_delegate(parsed: BenchmarkOutput, delegate: str, serial: str) -> None:
    """Refuse a run whose log shows the requested delegate did not run the model (its timing is another setting's)."""
    if delegate == "none":
        used = parsed.delegate_in_use()
        if used != "none":
            raise BenchmarkFailedError(f"benchmark_model on {serial} still applied the {used} delegate with "
                                       "--use_xnnpack=false (an old build?); push a current benchmark_model")
        return
    info = parsed.delegate(delegate)
    if delegate == "xnnpack" and info is None:
        return  # builds before the XNNPACK default print no delegate line
    if info is None or info.unavailable or info.applied == "none" or not (info.created or info.applied):
        said = f" ({_excerpt_of(info.lines[-1])})" if info is not None and info.lines else " (no delegate line)"
        raise BenchmarkFailedError(
            f"benchmark_model on {serial} did not run the model on the {delegate} delegate{said}, so its timing "
            f"would be another setting's; use a phone and build with {delegate} support, or --delegate xnnpack"
        )


def _excerpt_of(line: str) -> str:
    return repr(line if len(line) <= 90 else line[:89] + "…")

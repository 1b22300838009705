"""The latprof agent: a Ray actor that owns one phone and measures on it, one job at a time.

Imported only when the farm is used (it imports Ray). Measurement jobs run in
the actor's default concurrency group, of size 1, so a phone never runs two
models at once, whoever sent them; :meth:`PhoneAgent.info` and
:meth:`PhoneAgent.flag` run in a group of their own, so ``farm status`` answers
while the phone is busy.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import ray

from latprof.benchmarking.record import Measurement
from latprof.devices import BenchmarkRequest, Device, open_device
from latprof.errors import (
    BenchmarkTimeoutError, DeviceDisconnectedError, DeviceError, DeviceUnauthorizedError, LatprofError,
)

__all__ = ["Job", "JobResult", "PhoneAgent"]

# A phone that stops answering is offline; a model that fails to run is a failed job, not a lost phone.
_OFFLINE = (DeviceDisconnectedError, BenchmarkTimeoutError, DeviceUnauthorizedError, DeviceError, OSError)


@dataclass(frozen=True)
class Job:
    """Models to measure in one batch: ``(file name, bytes)`` each (the client's files are not on the
    phone's host). A batch is pushed at once and run by one shell call; it succeeds or fails whole."""

    models: tuple[tuple[str, bytes], ...]
    request: BenchmarkRequest


@dataclass(frozen=True)
class JobResult:
    """What an agent did with a job: ``ok`` (with a measurement per model), ``hot``, ``offline``, ``wrong`` or
    ``failed``."""

    status: str
    serial: str
    measurements: tuple[Measurement, ...] = ()
    message: str = ""


@ray.remote(num_cpus=0, max_restarts=0, concurrency_groups={"status": 1})
class PhoneAgent:
    """Owns the phone at ``address`` (``HOST:PORT`` or USB serial), known in the farm as ``serial``.

    ``config`` is the device config the phone matched when the host joined; a job
    for another kind, or a phone that no longer matches it, is refused.
    """

    def __init__(self, serial: str, address: str, config: str) -> None:
        self.serial, self.address, self.config = serial, address, config
        self.host = ray.util.get_node_ip_address()
        self.node_id = ray.get_runtime_context().get_node_id()
        self._device: Device | None = None
        self._busy = False
        self._state = "idle"  # idle, hot or offline: what the last job found
        self._jobs_done = 0
        self._flag: str | None = None
        self._message = ""
        self._benchmark: dict = {}
        self._thermal: dict = {}
        self._delegates: tuple[str, ...] = ()

    @ray.method(concurrency_group="status")
    def info(self) -> dict:
        """The phone's row in ``farm status``."""
        return {"serial": self.serial, "address": self.address, "host": self.host, "node_id": self.node_id,
                "config": self.config, "state": "busy" if self._busy else self._state, "jobs_done": self._jobs_done,
                "flagged": self._flag, "message": self._message, "benchmark": self._benchmark,
                "thermal": self._thermal, "delegates": list(self._delegates)}

    @ray.method(concurrency_group="status")
    def flag(self, reason: str | None) -> None:
        """Mark the phone as disagreeing with its peers (``None`` clears the flag)."""
        self._flag = reason

    def check(self) -> dict:
        """Connect to the phone (a job of its own: it waits for a running one) and return :meth:`info`."""
        try:
            self._open()
        except LatprofError as exc:
            self._state, self._message = "offline", str(exc)
        return self.info()

    def run(self, kind: str, job: Job) -> JobResult:
        """Measure ``job`` if this phone is a ``kind`` and is not hot."""
        from latprof.measure import measure_many

        if kind != self.config:
            return JobResult("wrong", self.serial, message=f"{self.serial} is a {self.config}, not a {kind}")
        self._busy = True
        try:
            device, refusal = self._ready(job.request)
            if refusal is not None:
                return refusal
            with tempfile.TemporaryDirectory(prefix="latprof-agent-") as tmp:
                paths = [Path(tmp) / str(i) / name for i, (name, _) in enumerate(job.models)]
                for path, (_, data) in zip(paths, job.models):
                    path.parent.mkdir()
                    path.write_bytes(data)
                results = measure_many(paths, device, job.request, rounds=1, probe=False)
        except _OFFLINE as exc:
            self._close()
            self._state, self._message = "offline", str(exc)
            return JobResult("offline", self.serial, message=str(exc))
        except LatprofError as exc:
            self._message = str(exc)
            return JobResult("failed", self.serial, message=str(exc))
        finally:
            self._busy = False
        self._state, self._message = "idle", ""
        self._jobs_done += len(results)
        return JobResult("ok", self.serial, measurements=tuple(results))

    def _ready(self, request: BenchmarkRequest) -> tuple[Device, JobResult | None]:
        """The phone, connected, and why it cannot take a job now (another phone at its address, hot), if so.

        A connection that went stale since the last job is opened again once before the phone counts as offline.
        """
        try:
            return self._checked(request)
        except _OFFLINE:
            self._close()
            return self._checked(request)

    def _checked(self, request: BenchmarkRequest) -> tuple[Device, JobResult | None]:
        device = self._open()
        if device.config.name != self.config:  # another phone was plugged in at this address
            self._close()
            self._state = "offline"
            self._message = (f"{self.serial} is now a {device.config.name}, not the {self.config} it joined as; "
                             "run `latprof farm join` again")
            return device, JobResult("wrong", self.serial, message=self._message)
        hot = device.state(request).throttle_warnings(device.config.thermal)
        if hot:
            self._state, self._message = "hot", hot[0]
            return device, JobResult("hot", self.serial, message=hot[0])
        return device, None

    def _open(self) -> Device:
        if self._device is None:
            self._device = open_device(self.address)
            self._benchmark = asdict(self._device.config.benchmark)
            self._thermal = asdict(self._device.config.thermal)
            self._delegates = tuple(getattr(self._device, "delegates", ()))
            self._state, self._message = "idle", ""
        return self._device

    def _close(self) -> None:
        if self._device is not None:
            try:
                self._device.close()
            except Exception:  # noqa: BLE001 - the connection is already broken; closing is best effort
                pass
            self._device = None


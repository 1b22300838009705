"""The farm's client side: find the agents, send them jobs, collect results as they arrive.

Ray places the agents (by their phones' resources) and runs one job at a
time on each (:mod:`latprof.farm._agent`); the client only chooses which free
agent of the asked kind gets the next job and waits on the calls in flight
with ``ray.wait``. A job whose phone was lost (unplugged, its host gone) goes
to another phone; a hot phone gets no job until ``retry_hot_s`` has passed.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from latprof.benchmarking.record import Measurement
from latprof.devices import BenchmarkRequest, DeviceConfig
from latprof.devices.config import BenchmarkDefaults, ThermalLimits
from latprof.errors import BenchmarkFailedError, FarmError
from latprof.farm._join import PHONES_LABEL
from latprof.farm._ray import AGENT_PREFIX, NAMESPACE, connect

__all__ = ["Farm", "Check"]

#: Judges a finished job: a reason to reject the phone that measured it (its result is dropped), or None.
Check = Callable[[Any], "str | None"]
_INFO_TIMEOUT_S = 10.0
_FAILED_ATTEMPTS = 2  # a model that fails on this many phones fails the run


@dataclass
class _Pending:
    """A job waiting for a phone, with the phones it failed on."""

    index: int
    job: Any
    refused_by: set[str] = field(default_factory=set)


class _Backlog:
    """Jobs not yet running: those put back (first), then the rest of ``jobs``, drawn only when needed."""

    def __init__(self, jobs: Iterable[Any]) -> None:
        self._source = enumerate(jobs)
        self._queue: deque[_Pending] = deque()
        self._exhausted = False

    def take(self, serial: str) -> _Pending | None:
        for item in self._queue:
            if serial not in item.refused_by:
                self._queue.remove(item)
                return item
        if self._exhausted:
            return None
        try:
            return _Pending(*next(self._source))
        except StopIteration:
            self._exhausted = True
            return None

    def put_back(self, item: _Pending) -> None:
        self._queue.appendleft(item)

    @property
    def empty(self) -> bool:
        return self._exhausted and not self._queue

    def __len__(self) -> int:
        return len(self._queue)


class Farm:
    """A client of the device farm at ``address`` (``HEAD:PORT``; None: ``$RAY_ADDRESS``, or this process's Ray).

    A hot phone is tried again every ``retry_hot_s``; one still hot after ``max_hot_s`` leaves the run.
    """

    def __init__(self, address: str | None = None, *, retry_hot_s: float = 30.0, max_hot_s: float = 600.0) -> None:
        self.ray = connect(address)
        self.retry_hot_s, self.max_hot_s = retry_hot_s, max_hot_s

    # -- who is there -----------------------------------------------------------------------
    def _agents(self) -> dict[str, Any]:
        names = [n for n in self.ray.util.list_named_actors() if n.startswith(AGENT_PREFIX)]
        return {n[len(AGENT_PREFIX):]: self.ray.get_actor(n, namespace=NAMESPACE) for n in names}

    def _infos(self, agents: dict[str, Any]) -> dict[str, dict]:
        refs = {serial: a.info.remote() for serial, a in agents.items()}
        out = {}
        for serial, ref in refs.items():
            try:
                out[serial] = self.ray.get(ref, timeout=_INFO_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - a dead or stuck agent: its phone is offline
                out[serial] = {"serial": serial, "state": "offline", "message": "its agent does not answer"}
        return out

    def status(self) -> list[dict[str, Any]]:
        """One row per phone: serial, host, config, state (idle, busy, hot, offline), jobs done, flag.

        Phones declared on a node that has left the cluster are listed as offline.
        """
        rows = self._infos(self._agents())
        for node in self.ray.nodes():
            if node.get("Alive"):
                continue
            for serial in filter(None, node.get("Labels", {}).get(PHONES_LABEL, "").split(",")):
                rows.setdefault(serial, {"serial": serial, "host": node.get("NodeManagerAddress"), "config": None,
                                         "state": "offline", "jobs_done": None, "flagged": None,
                                         "message": "its host left the cluster"})
        return sorted(rows.values(), key=lambda r: (r.get("config") or "", r["serial"]))

    def phones(self, kind: str) -> dict[str, dict]:
        """The status rows of the phones of ``kind`` whose agent answers; FarmError when there is none."""
        rows = {r["serial"]: r for r in self.status() if r.get("config") == kind and "node_id" in r}
        if not rows:
            kinds = sorted({r["config"] for r in self.status() if r.get("config")})
            raise FarmError(f"no {kind} phone is online in the farm (kinds online: {', '.join(kinds) or 'none'}); "
                            f"run `latprof farm join` on the host it is plugged into, or see `latprof farm status`")
        return rows

    def device_config(self, kind: str) -> DeviceConfig:
        """The benchmark defaults and thermal limits of ``kind``, as its phones' agents report them."""
        rows = list(self.phones(kind).values())
        row = next((r for r in rows if r.get("benchmark")), rows[0])  # an agent that never reached its phone: {}
        return DeviceConfig(name=kind, kind="android", benchmark=BenchmarkDefaults(**row["benchmark"]),
                            thermal=ThermalLimits(**row["thermal"]))

    def flag(self, serial: str, reason: str | None) -> None:
        """Flag (or, with None, clear) a phone in ``farm status``."""
        self.ray.get(self.ray.get_actor(AGENT_PREFIX + serial, namespace=NAMESPACE).flag.remote(reason))

    # -- running jobs -----------------------------------------------------------------------
    def run(self, kind: str, jobs: Iterable[Any], *, check: Check | None = None,
            only: Sequence[str] | None = None, notify: Callable[[str], None] = lambda _: None,
            keep_failed: bool = False) -> Iterator[tuple[int, Any]]:
        """Run each job (a :class:`~latprof.farm._agent.Job`) on a free phone of ``kind``.

        Yields ``(index in jobs, JobResult)`` as each job's measurements arrive, in any
        order, exactly once per job. Jobs are taken from ``jobs`` only when a phone
        is free, so it may be a lazy generator. A phone that is lost, refuses the
        kind or is rejected by ``check`` gets no more jobs from this run; its
        job goes to another phone. ``only`` limits the run to these serials. A job that
        fails on several phones raises BenchmarkFailedError, or with ``keep_failed`` is
        yielded with its ``failed`` result and the run goes on.
        """
        agents = self._of_kind(kind, only)
        backlog = _Backlog(jobs)
        free, hot_until, hot_since, running = list(agents), {}, {}, {}
        while True:
            now = time.monotonic()
            for serial in [s for s in free if hot_until.get(s, 0.0) <= now]:
                item = backlog.take(serial)
                if item is not None:
                    free.remove(serial)
                    running[agents[serial].run.remote(kind, item.job)] = (serial, item)
            if not running:
                if backlog.empty:
                    return
                self._wait_for_cool(kind, agents, [t - now for s, t in hot_until.items() if s in free and t > now],
                                    len(backlog), notify)
                continue
            done, _ = self.ray.wait(list(running), num_returns=1)
            serial, item = running.pop(done[0])
            result = self._result(done[0], serial)
            verdict = self._verdict(result, check)
            if verdict is None:
                free.append(serial)
                hot_since.pop(serial, None)
                yield item.index, result
                continue
            status, message = verdict
            if status == "hot" and time.monotonic() - hot_since.setdefault(serial, time.monotonic()) > self.max_hot_s:
                status, message = "lost", f"hot for more than {self.max_hot_s:g} s"
            if status == "hot":
                hot_until[serial] = time.monotonic() + self.retry_hot_s
                free.append(serial)
                notify(f"{serial} is hot ({message}); its job goes to another phone")
            elif status == "failed":
                item.refused_by.add(serial)
                free.append(serial)
                if len(item.refused_by) >= min(_FAILED_ATTEMPTS, len(agents)):  # no phone left to try
                    if not keep_failed:
                        raise BenchmarkFailedError(f"{message} (on {len(item.refused_by)} phones)")
                    yield item.index, result
                    continue
            else:
                agents.pop(serial, None)
                notify(f"{serial} dropped from this run ({message}); its job goes to another phone")
                if status == "rejected":
                    self.flag(serial, message)
            backlog.put_back(item)

    @staticmethod
    def _wait_for_cool(kind: str, agents: dict, waits: list[float], left: int, notify: Callable[[str], None]) -> None:
        """Sleep until the first hot phone may be tried again; FarmError when no phone can take the jobs left."""
        if not agents:
            raise FarmError(f"every {kind} phone of the farm was lost or rejected with {left} jobs left; the "
                            "results so far are stored, run again once phones are back (see `latprof farm status`)")
        if not waits:
            raise FarmError(f"no {kind} phone may take the {left} jobs left (each failed on the phones there are); "
                            "see `latprof farm status`")
        notify(f"every free {kind} phone is hot; waiting {min(waits):.0f} s for one to cool")
        time.sleep(min(waits))

    def run_on_each(self, kind: str, job: Any, *, check: Check | None = None) -> dict[str, Any]:
        """Run one job on every phone of ``kind`` at once: ``{serial: JobResult}`` of those that measured it.

        A phone rejected by ``check`` is flagged; a hot, lost or failing one is just left out.
        """
        agents = self._of_kind(kind)
        refs = {agents[s].run.remote(kind, job): s for s in agents}
        out = {}
        for ref, serial in refs.items():
            verdict = self._verdict(result := self._result(ref, serial), check)
            if verdict is None:
                out[serial] = result
            elif verdict[0] == "rejected":
                self.flag(serial, verdict[1])
        return out

    def _of_kind(self, kind: str, only: Sequence[str] | None = None) -> dict[str, Any]:
        """The agents of the answering phones of ``kind`` (of those in ``only``, when given)."""
        phones = self.phones(kind)
        return {s: a for s, a in self._agents().items() if s in phones and (only is None or s in only)}

    def _result(self, ref: Any, serial: str) -> Any:
        from latprof.farm._agent import JobResult

        try:
            return self.ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - the agent died (its host left, it was killed)
            return JobResult("offline", serial, message=f"its agent died ({type(exc).__name__})")

    @staticmethod
    def _verdict(result: Any, check: Check | None) -> tuple[str, str] | None:
        if result.status != "ok":
            return result.status, result.message
        reason = check(result) if check is not None else None
        return None if reason is None else ("rejected", reason)

    def measure(self, paths: Sequence[Path], kind: str, request: BenchmarkRequest, *, store: Any = None,
                notify: Callable[[str], None] = lambda _: None) -> Iterator[Measurement]:
        """Measure each model on a free phone of ``kind``; yield (and store) each measurement as it arrives."""
        from dataclasses import replace

        from latprof.farm._agent import Job

        jobs = (Job(((Path(p).name, Path(p).read_bytes()),), request) for p in paths)
        for _, result in self.run(kind, jobs, notify=notify):
            m = result.measurements[0]
            yield m if store is None else replace(m, id=store.add_measurement(m))

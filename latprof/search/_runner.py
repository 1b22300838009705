"""The search loop: ask a batch, score it (latency + accuracy -> reward), store each trial, tell the controller.

Batches have a fixed size whatever ``workers`` is, and the controller is told
in sample order, so a seeded search gives the same trials with 1 or N worker
processes. Resuming replays the stored trials through a fresh controller
(same seed, same asks, same tells) and evaluates only what is missing.
A candidate already evaluated in this search is not evaluated again: the
trial reuses the earlier result (``reused_from``).
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from latprof.errors import EstimatorError, SearchError
from latprof.search._accuracy import AccuracyEstimator, make_estimator
from latprof.search._controllers import (
    CONTROLLER_NAMES,
    Controller,
    EvolutionController,
    PPOController,
    RandomController,
)
from latprof.search._latency import LatencyModel
from latprof.search._reward import Reward
from latprof.search._trials import (
    CSV_FIELDS,
    Trial,
    csv_row,
    now,
    open_search,
    value,
    write_csv,
)
from latprof.space import Architecture, SearchSpace, get_space
from latprof.store import Store

__all__ = ["Progress", "SearchConfig", "SearchResult", "pareto_front", "run_search"]

LATENCY_SOURCES = ("predictor", "measure")
# With a proxy accuracy the answer is sought within this share below the target, so that a prediction error
# of a few percent still lands the measured model near T.
TARGET_BAND = 0.05
# Settings that may change when a search is resumed: they do not change which trials it makes.
_RESUMABLE = ("samples",)


@dataclass(frozen=True)
class SearchConfig:
    """Everything that determines a search's trials (``workers`` does not, so it is not here)."""

    target_ms: float
    reward: str = "auto"
    alpha: float | None = None
    beta: float | None = None
    controller: str = "ppo"
    accuracy: str = "zero-cost"
    latency: str = "predictor"
    device: str = "local"
    samples: int = 2000
    seed: int = 0
    batch_size: int = 16
    data: str | None = None
    space: str = "mnasnet"
    space_params: dict[str, Any] = field(default_factory=dict)  # e.g. {"resolution": 32}
    dtype: str = "float32"  # what the searched models compute in: its predictor, measurements and best.tflite

    def __post_init__(self) -> None:
        self.make_reward()  # validates target, mode and exponents
        if self.controller not in CONTROLLER_NAMES:
            raise SearchError(f"unknown controller {self.controller!r}; pass --controller ppo, evolution or random")
        if self.latency not in LATENCY_SOURCES:
            raise SearchError(f"unknown latency source {self.latency!r}; pass --latency predictor or measure")
        if not self.accuracy.startswith("python:") and self.accuracy not in ("zero-cost", "proxy-train"):
            raise EstimatorError(f"unknown accuracy estimator {self.accuracy!r}; pass --accuracy zero-cost, "
                                 "proxy-train or python:MODULE:FUNCTION")
        for name in ("samples", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SearchError(f"{name} must be a positive integer, got {value!r}; "
                                  f"pass --{name.replace('_', '-')} 1 or more")

    def make_space(self) -> SearchSpace:
        return get_space(self.space, **self.space_params)

    @property
    def reward_mode(self) -> str:
        """The reward used: ``auto`` is the hard constraint for a built-in accuracy proxy, else the paper's soft one.

        A proxy (NASWOT, a short training run) grows with model size faster than the soft
        reward's ``(LAT/T)^-0.07`` shrinks it, so a soft search walks past the target.
        """
        if self.reward != "auto":
            return self.reward
        return "soft" if self.accuracy.startswith("python:") else "hard"

    def make_reward(self) -> Reward:
        return Reward.from_mode(self.target_ms, self.reward_mode, self.alpha, self.beta)

    def make_controller(self, space: SearchSpace) -> Controller:
        if self.controller == "ppo":
            return PPOController(space, self.seed, batch_size=self.batch_size)
        if self.controller == "evolution":
            return EvolutionController(space, self.seed)
        return RandomController(space, self.seed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def defaults() -> dict[str, Any]:
        """The default of every setting that has one."""
        return {f.name: f.default for f in fields(SearchConfig) if f.name != "target_ms"}


@dataclass(frozen=True)
class Progress:
    """Where a running search is, passed to ``on_trial`` after every stored trial."""

    done: int
    total: int
    failed: int
    best: Trial | None
    samples_per_s: float


def pareto_front(trials: Sequence[Trial]) -> list[Trial]:
    """Successful trials no other beats on latency (lower) and accuracy (higher); one per architecture, by latency."""
    unique: dict[str, Trial] = {}
    for t in trials:
        if t.ok and t.arch not in unique:
            unique[t.arch] = t
    front: list[Trial] = []
    for t in sorted(unique.values(), key=lambda t: (value(t.latency_ms), -value(t.accuracy))):
        if not front or value(t.accuracy) > value(front[-1].accuracy):
            front.append(t)
    return front


@dataclass
class SearchResult:
    """A finished search: its trials (in sample order) and where the time went."""

    config: SearchConfig
    search_id: int
    trials: list[Trial]
    resumed_trials: int
    controller: str
    estimator: str
    estimator_is_proxy: bool
    timings: dict[str, float] = field(default_factory=dict)  # seconds spent in this run, by part

    @property
    def ok_trials(self) -> list[Trial]:
        return [t for t in self.trials if t.ok]

    @property
    def best(self) -> Trial | None:
        """The trial of the highest reward."""
        ok = self.ok_trials
        return max(ok, key=lambda t: value(t.reward)) if ok else None

    @property
    def chosen(self) -> Trial | None:
        """What the search answers: the highest reward within the target latency, else the highest reward.

        With a proxy accuracy only trials in the target band (``TARGET_BAND`` below T) count while there
        are any: a proxy ranks architectures of about equal latency, not a small one against one near T.
        """
        target = self.config.target_ms
        within = [t for t in self.ok_trials if value(t.latency_ms) <= target]
        band = [t for t in within if value(t.latency_ms) >= (1 - TARGET_BAND) * target]
        pool = (band if self.estimator_is_proxy else []) or within
        return max(pool, key=lambda t: value(t.reward)) if pool else self.best

    def top(self, k: int = 10) -> list[Trial]:
        """The ``k`` best distinct architectures by reward."""
        unique: dict[str, Trial] = {}
        for t in sorted(self.ok_trials, key=lambda t: -value(t.reward)):
            unique.setdefault(t.arch, t)
        return list(unique.values())[:k]

    def pareto(self) -> list[Trial]:
        return pareto_front(self.trials)

    def frame(self):
        """The trials as a pandas DataFrame (one row per sample; params and MACs included)."""
        import pandas as pd

        space = self.config.make_space()
        return pd.DataFrame([csv_row(t, space) for t in self.trials], columns=list(CSV_FIELDS))


# ---------------------------------------------------------------- evaluation

#: ``make_pool(workers, initializer, initargs)``: an executor for accuracy estimates other than the
#: default pool of worker processes (e.g. Ray tasks: :class:`latprof.farm.RayTaskPool`).
MakePool = Callable[[int, Callable[..., None], tuple], Any]
_WORKER_ESTIMATOR: AccuracyEstimator | None = None
_WORKER_SPACE: SearchSpace | None = None


def _init_worker(spec: str, data: str | None, seed: int, space: str, space_params: dict[str, Any],
                 parent: int | None) -> None:
    global _WORKER_ESTIMATOR, _WORKER_SPACE
    if parent is not None:  # None: the worker is not ours to end (a pool's, such as Ray's)
        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    _WORKER_ESTIMATOR = make_estimator(spec, data=data, seed=seed)
    _WORKER_SPACE = get_space(space, **space_params)


def _exit_with_parent(parent: int) -> None:
    """End this worker once the search process is gone (a killed search would otherwise leave it idle forever)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _score(estimator: AccuracyEstimator, arch: Architecture) -> tuple[float | None, str | None, float]:
    """(accuracy, error, seconds): the estimator's exception becomes the error of this one candidate."""
    start = time.perf_counter()
    try:
        value = estimator(arch)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise EstimatorError(f"{estimator.spec} returned {value!r}, not a number")
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise EstimatorError(f"{estimator.spec} returned {value}; accuracy estimates must be finite and >= 0")
    except Exception as exc:  # noqa: BLE001 - any failure fails this candidate only
        return None, _one_line(exc), time.perf_counter() - start
    return value, None, time.perf_counter() - start


def _worker_score(arch_string: str) -> tuple[float | None, str | None, float]:
    assert _WORKER_ESTIMATOR is not None and _WORKER_SPACE is not None
    return _score(_WORKER_ESTIMATOR, _WORKER_SPACE.parse(arch_string))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Worker processes started inside get one BLAS/OpenMP thread each (N workers share N cores)."""
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")
    saved = {n: os.environ.get(n) for n in names}
    os.environ.update({n: "1" for n in names})
    try:
        yield
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


class _Evaluator:
    """Latency in chunks in this process; accuracy in this process or in a pool of worker processes."""

    def __init__(self, latency: LatencyModel, estimator: AccuracyEstimator, config: SearchConfig, workers: int,
                 latency_chunk: int | None, timings: dict[str, float], make_pool: MakePool | None = None) -> None:
        self.latency, self.estimator, self.config = latency, estimator, config
        self.space = config.make_space()
        self.workers, self.latency_chunk, self.timings = workers, latency_chunk, timings
        self.make_pool = make_pool
        self.pool: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self.pool is None:
            import multiprocessing

            initargs = (self.config.accuracy, self.config.data, self.config.seed, self.config.space,
                        self.config.space_params)
            if self.make_pool is not None:
                self.pool = self.make_pool(self.workers, _init_worker, (*initargs, None))
            else:
                self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_init_worker, initargs=(*initargs, os.getpid()))
        return self.pool

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None

    def latencies(self, archs: list[Architecture]) -> list[tuple[float | None, str | None]]:
        """(latency, error) per architecture; if the batch call fails, each is retried alone to find the culprits."""
        def checked(v: float) -> tuple[float | None, str | None]:
            return (v, None) if v > 0 and math.isfinite(v) else (None, f"latency {v} ms is not positive")

        start = time.perf_counter()
        results: list[tuple[float | None, str | None]]
        try:
            results = [checked(float(v)) for v in np.asarray(self.latency.predict_many(archs), dtype=float)]
        except Exception:  # noqa: BLE001 - any failure: find which candidates fail, one at a time
            results = []
            for arch in archs:
                try:
                    results.append(checked(float(np.asarray(self.latency.predict_many([arch]), dtype=float)[0])))
                except Exception as exc:  # noqa: BLE001
                    results.append((None, "latency: " + _one_line(exc)))
        self.timings["latency"] += time.perf_counter() - start
        return results

    def run(self, archs: list[Architecture], done: Callable[[int, float | None, str | None, float | None,
                                                             str | None, float], None]) -> None:
        """Score every arch; ``done(i, latency, latency_error, accuracy, accuracy_error, seconds)`` as each ends."""
        chunk = self.latency_chunk or max(1, len(archs))
        futures: dict[int, Future] = {}
        if self.workers > 1:
            start = time.perf_counter()
            with _single_threaded_children():  # workers are spawned on submit
                futures = {i: self._pool().submit(_worker_score, self.space.format(a)) for i, a in enumerate(archs)}
            self.timings["accuracy_submit"] += time.perf_counter() - start
        latency: dict[int, tuple[float | None, str | None]] = {}
        finished: set[int] = set()

        def harvest(block: bool) -> None:
            """Report finished accuracies whose latency is known; with ``block``, wait for all of them."""
            while True:
                ready = [i for i in futures if i not in finished and i in latency]
                if not ready:
                    return
                complete, _ = wait([futures[i] for i in ready], timeout=None if block else 0,
                                   return_when=FIRST_COMPLETED)
                if not complete:
                    return
                for i in ready:
                    if futures[i] not in complete:
                        continue
                    try:
                        acc, err, seconds = futures[i].result()
                    except BrokenProcessPool as exc:
                        acc, err, seconds = None, f"worker process died ({exc}); see the worker's output", 0.0
                        self.close()
                    finished.add(i)
                    done(i, *latency[i], acc, err, seconds)

        for lo in range(0, len(archs), chunk):
            part = list(range(lo, min(lo + chunk, len(archs))))
            latency.update(zip(part, self.latencies([archs[i] for i in part])))
            if futures:
                harvest(block=False)
                continue
            for i in part:
                if latency[i][0] is None:
                    acc, err, seconds = None, None, 0.0
                else:
                    acc, err, seconds = _score(self.estimator, archs[i])
                    self.timings["accuracy"] += seconds
                done(i, *latency[i], acc, err, seconds)
        if futures:
            start = time.perf_counter()
            harvest(block=True)
            self.timings["accuracy_wait"] += time.perf_counter() - start


@contextlib.contextmanager
def _exclusive(out: Path | None) -> Iterator[None]:
    """One search process per output folder at a time (the lock goes with the process, however it ends)."""
    if out is None:
        yield
        return
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    with (out / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SearchError(f"another latprof search is running in {out}; let it finish or stop it, then rerun "
                              "with --resume") from None
        yield


# ---------------------------------------------------------------- the loop


def run_search(
    config: SearchConfig, latency: LatencyModel, *, store: Store, out_dir: str | Path | None = None,
    resume: bool = False, workers: int = 1, estimator: AccuracyEstimator | None = None,
    latency_chunk: int | None = None, on_trial: Callable[[Trial, Progress], None] | None = None,
    make_pool: MakePool | None = None,
) -> SearchResult:
    """Run (or resume) the search ``config`` describes; every trial is stored in ``store`` as it finishes.

    ``latency`` gives milliseconds per architecture (the predictor, or
    :class:`MeasuredLatency`); ``latency_chunk`` is how many it gets at once
    (default: a whole batch). ``estimator`` is the estimator object to use in
    this process (default: built from ``config.accuracy``); worker processes
    always build their own from ``config.accuracy``; ``make_pool`` gives their executor
    (default: ``workers`` local processes). With ``out_dir``, ``trials.csv``
    there is kept current and ``search.json`` marks the folder for ``resume``.
    """
    if not isinstance(workers, int) or workers < 1:
        raise SearchError(f"workers must be a positive integer, got {workers!r}; pass --workers 1 or more")
    if estimator is not None and workers > 1 and estimator.spec != config.accuracy:
        raise SearchError("worker processes build the estimator config.accuracy names, not this object; use "
                          "workers=1, or name your function python:MODULE:FUNCTION in config.accuracy")
    space = config.make_space()
    reward = config.make_reward()
    estimator = estimator or make_estimator(config.accuracy, data=config.data, seed=config.seed)
    out = Path(out_dir).resolve() if out_dir is not None else None
    with _exclusive(out):
        fixed = [k for k in config.to_dict() if k not in _RESUMABLE]
        trial_store, _ = open_search(store, out, config.to_dict(), resume, fixed, SearchConfig.defaults())
        stored = {t.idx: t for t in trial_store.trials() if t.idx < config.samples}
        controller = config.make_controller(space)
        timings = {k: 0.0 for k in ("controller", "replay", "latency", "accuracy", "accuracy_submit", "accuracy_wait",
                                    "reward", "storage", "total")}
        trials: list[Trial] = []
        cache: dict[str, Trial] = {}
        csv_path = out / "trials.csv" if out is not None else None
        if csv_path is not None:
            write_csv(csv_path, [stored[i] for i in sorted(stored)], space)
        csv_file = csv_path.open("a", newline="") if csv_path is not None else None
        started = time.perf_counter()
        new_count = 0
        evaluator = _Evaluator(latency, estimator, config, workers, latency_chunk, timings, make_pool)

        state: dict[str, Any] = {"best": None, "failed": 0}

        def record(trial: Trial, replayed: bool) -> None:
            nonlocal new_count
            trials.append(trial)
            if trial.ok:
                cache.setdefault(trial.arch, trial)
            if not replayed:
                start = time.perf_counter()
                trial_store.add(trial)
                if csv_file is not None:
                    csv.DictWriter(csv_file, CSV_FIELDS).writerow(csv_row(trial, space))
                    csv_file.flush()
                timings["storage"] += time.perf_counter() - start
                new_count += 1
            if trial.ok and (state["best"] is None or value(trial.reward) > value(state["best"].reward)):
                state["best"] = trial
            state["failed"] += not trial.ok
            if on_trial is not None:
                elapsed = time.perf_counter() - started
                rate = new_count / elapsed if elapsed > 0 and new_count else 0.0
                on_trial(trial, Progress(len(trials), config.samples, state["failed"], state["best"], rate))

        def run_batch(first: int) -> None:
            """Ask one batch, score what is not stored or known yet, store each trial, tell the controller."""
            indices = list(range(first, min(first + config.batch_size, config.samples)))
            start = time.perf_counter()
            asked = [controller.ask() for _ in indices]
            replaying = all(i in stored for i in indices)
            timings["replay" if replaying else "controller"] += time.perf_counter() - start
            batch: dict[int, Trial] = {}
            pending: dict[str, list[int]] = {}
            for i, tokens in zip(indices, asked):
                if i in stored:
                    if list(stored[i].tokens) != tokens:
                        raise SearchError(
                            f"stored trial {i} of search #{trial_store.search_id} does not match what the "
                            "controller proposes now (settings or latprof version changed); start a new search "
                            "with another --out")
                    batch[i] = stored[i]
                    record(stored[i], replayed=True)
                    continue
                arch_string = space.format(space.from_tokens(tokens))
                if arch_string in cache:
                    earlier = cache[arch_string]
                    batch[i] = Trial(i, tuple(tokens), arch_string, "ok", earlier.latency_ms, earlier.accuracy,
                                     earlier.reward, None, 0.0, earlier.idx, now())
                    record(batch[i], replayed=False)
                else:
                    pending.setdefault(arch_string, []).append(i)
            unique = list(pending)

            def done(k: int, lat: float | None, lat_err: str | None, acc: float | None, acc_err: str | None,
                     seconds: float) -> None:
                arch_string = unique[k]
                start = time.perf_counter()
                value = reward(acc, lat) if lat is not None and acc is not None else None
                timings["reward"] += time.perf_counter() - start
                first_idx = None
                for i in pending[arch_string]:
                    status = "ok" if value is not None else "failed"
                    batch[i] = Trial(i, tuple(asked[i - first]), arch_string, status, lat, acc, value,
                                     lat_err or acc_err, seconds if first_idx is None else 0.0,
                                     first_idx if value is not None else None, now())
                    record(batch[i], replayed=False)
                    first_idx = i if first_idx is None else first_idx

            if unique:
                evaluator.run([space.parse(a) for a in unique], done)
            start = time.perf_counter()
            for i, tokens in zip(indices, asked):
                controller.tell(tokens, batch[i].reward if batch[i].ok else None)
            timings["replay" if replaying else "controller"] += time.perf_counter() - start
            if first == 0 and not any(t.ok for t in batch.values()):
                raise SearchError(f"all {len(batch)} candidates of the first batch failed (e.g. "
                                  f"{next(iter(batch.values())).error}); fix the accuracy estimator or latency "
                                  "source before searching")

        try:
            for first in range(0, config.samples, config.batch_size):
                run_batch(first)
        finally:
            evaluator.close()
            if csv_file is not None:
                csv_file.close()
            timings["total"] = time.perf_counter() - started
        trials.sort(key=lambda t: t.idx)  # workers finish out of order
        if csv_path is not None:
            write_csv(csv_path, trials, space)
        return SearchResult(config, trial_store.search_id, trials, len(stored), controller.describe(),
                            estimator.describe(), estimator.is_proxy, timings)

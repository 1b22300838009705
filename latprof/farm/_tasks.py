"""Accuracy estimates (and any other CPU or GPU work of a search) as Ray tasks on the farm's nodes."""

from __future__ import annotations

import json
from concurrent.futures import Future
from typing import Any, Callable

from latprof.farm._ray import ray_module

__all__ = ["RayTaskPool"]

_INITIALIZED: set[str] = set()  # in each Ray worker process: the initializer arguments already run


def _call(initializer: Callable[..., None], initargs: tuple, fn: Callable[..., Any], args: tuple) -> Any:
    key = json.dumps(initargs, sort_keys=True, default=str)
    if key not in _INITIALIZED:  # once per worker process, as a process pool's initializer
        initializer(*initargs)
        _INITIALIZED.add(key)
    return fn(*args)


class RayTaskPool:
    """An executor for :func:`latprof.search.run_search` (``make_pool``): each call is a Ray task.

    Each task asks for ``num_cpus`` CPUs and ``num_gpus`` GPUs, so Ray runs as many at once as the
    cluster has room for (``workers`` is not a limit here). A task that fails in Ray (its node lost)
    resolves to ``failed`` instead of raising, as the search expects of one failed candidate.
    """

    def __init__(self, workers: int, initializer: Callable[..., None], initargs: tuple, *, num_cpus: float = 1.0,
                 num_gpus: float = 0.0, failed: Callable[[BaseException], Any] | None = None) -> None:
        ray = ray_module()
        self._ray, self._init = ray, (initializer, initargs)
        self._task = ray.remote(_call).options(num_cpus=num_cpus, num_gpus=num_gpus)
        self._failed = failed or (lambda exc: (None, f"Ray task failed ({type(exc).__name__})", 0.0))
        self._refs: list[Any] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        ref = self._task.remote(*self._init, fn, args)
        self._refs.append(ref)
        out: Future = Future()

        def settle(inner: Future) -> None:
            if inner.cancelled():  # shutdown(cancel_futures=True): exception() would raise here
                out.cancel()
                return
            exc = inner.exception()
            out.set_result(self._failed(exc) if exc is not None else inner.result())

        ref.future().add_done_callback(settle)
        return out

    def shutdown(self, cancel_futures: bool = False) -> None:
        """Cancel the tasks still running when ``cancel_futures``."""
        if cancel_futures:
            for ref in self._refs:
                self._ray.cancel(ref)
        self._refs.clear()

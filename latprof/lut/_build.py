"""Build a device's lookup table and calibration set, resumably.

:func:`build_lut` measures every unique layer configuration of a space as a
single-layer micro-model (written straight to a .tflite flatbuffer by
:func:`latprof.space.write_tflite`, milliseconds each), then a calibration set of
whole architectures end to end. Each result is committed on its own as it
arrives; keys already stored are skipped, so an interrupted build (Ctrl-C,
``kill -9``, an unplugged phone) resumes where it stopped and never stores a
half-measured entry.

Why micro-models and not ``benchmark_model --enable_op_profiling`` on phones:
with the XNNPACK delegate (the default CPU path, and the latency we model) the
whole graph is one delegate node, so the op profile has a single row or
XNNPACK-internal rows that do not map back to our layers; turning XNNPACK off
to get per-op rows would measure a different runtime. A micro-model per layer
gives exactly the latency the table key means, with the same runtime and
delegate; what running layers in sequence changes is learnt by the fitted
end-to-end correction (:mod:`latprof.predictor`) from the calibration set.
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from latprof.devices import BenchmarkRequest, Device
from latprof.errors import LatprofError, LookupTableError
from latprof.lut import _tables as T
from latprof.lut._runners import HostBatchRunner, Result, make_runner
from latprof.space import LayerConfig, SearchSpace, write_tflite
from latprof.store import Store

__all__ = ["BuildSummary", "build_lut", "calibration_archs", "DEFAULT_CALIBRATION", "CALIBRATION_SEED",
           "LUT_WARMUP", "LUT_RUNS"]

DEFAULT_CALIBRATION = 60  # architectures measured end to end (see `latprof fit`'s learning curve)
CALIBRATION_SEED = 5_000_000  # calibration archs are space.sample(Random(CALIBRATION_SEED + i))
LUT_WARMUP, LUT_RUNS = 5, 30  # per micro-model, on the host
_HOST_STATE_EVERY = 200  # host: read the device state every this many entries
_METHOD_LAYER = "micro-model: one layer per .tflite (latprof flatbuffer writer, random float32 weights)"
_METHOD_ARCH = "whole architecture .tflite (latprof flatbuffer writer, random float32 weights), end to end"


def method(base: str, dtype: str) -> str:
    """The stored ``method`` of a row measured in ``dtype`` (float32 rows keep the words they always had)."""
    return base if dtype == "float32" else base.replace("float32 weights", f"{dtype} weights and activations")

X = TypeVar("X")


@dataclass(frozen=True)
class BuildSummary:
    """What a build did: table and calibration counts, and the wall time of this run."""

    device: str
    space: str
    params: dict
    entries: int
    already_stored: int
    measured: int
    calibration: int
    calibration_already_stored: int
    calibration_measured: int
    wall_s: float
    table_wall_s: float


def calibration_archs(space: SearchSpace, count: int, seed: int = CALIBRATION_SEED) -> list:
    """``count`` distinct random architectures of ``space``, the same every time for a given seed."""
    out: dict[str, object] = {}
    i = 0
    while len(out) < count and i < count * 20:
        arch = space.sample(random.Random(seed + i))
        out.setdefault(space.format(arch), arch)
        i += 1
    return list(out.values())


def build_lut(
    store: Store, device: Device, space: SearchSpace, *, request: BenchmarkRequest,
    calibration_request: BenchmarkRequest, calibration: int = DEFAULT_CALIBRATION, rebuild: bool = False,
    wait_cool: bool = True, realtime: bool = True, probe: bool = True, progress: bool = False, dtype: str = "float32",
    notify: Callable[[str], None] = lambda _: None,
) -> BuildSummary:
    """Measure the missing entries of ``device``'s table for ``space``, then its calibration set.

    ``dtype`` (a member of :data:`TABLE_DTYPES`): the data type the micro-models and calibration
    architectures compute in; each data type is a table of its own (:func:`table_space`).

    ``request`` holds the micro-model settings, ``calibration_request`` the
    end-to-end ones; ``realtime``: host runs use SCHED_FIFO where allowed;
    ``probe``: host runs time the speed probe around each model.
    Raises LookupTableError when stored rows were measured with other settings
    (unless ``rebuild``, which deletes the device's table first).
    """
    start = time.perf_counter()
    conn, name, params = store.connection, device.name, space.params()
    table = T.table_space(space.name, dtype)
    if rebuild:
        T.delete_table(conn, name, table)
    configs = {layer.layer_key(): layer for layer in space.unique_layer_configs()}
    have = T.stored_keys(conn, name, table)
    todo = [layer for key, layer in configs.items() if key not in have]
    archs = calibration_archs(space, calibration)
    have_archs = T.stored_calibration(conn, name, table)
    todo_archs = [a for a in archs if space.format(a) not in have_archs]
    fingerprint = device.fingerprint()
    with tempfile.TemporaryDirectory(prefix="latprof-lut-") as tmp:
        folder = Path(tmp)
        if todo:
            with make_runner(device, request, method=method(_METHOD_LAYER, dtype), wait_cool=wait_cool,
                             realtime=realtime, probe_dir=folder if probe else None, dtype=dtype,
                             notify=notify) as runner:
                T.check_settings(conn, "lut_entries", name, table, runner.settings, ops=False)
                T.start_build(conn, name, table, params, len(configs), runner.settings)

                def store_entry(layer: LayerConfig, result: Result, warnings: list[str]) -> None:
                    T.add_entry(conn, T.LutEntry.from_stats(name, table, layer.layer_key(), result.stats,
                                                            result.settings, result.fingerprint or fingerprint,
                                                            result.warnings + warnings))

                _measure_all(todo, lambda layer, i: write_tflite(layer, folder / f"layer{i}.tflite", seed=i,
                                                                 dtype=dtype),
                             runner, store_entry, device, request, wait_cool, notify,
                             _bar(progress, len(configs), len(configs) - len(todo), f"table {name}", "entry"))
        else:
            T.start_build(conn, name, table, params, len(configs), {})
        T.finish_build(conn, name, table, params)
        table_wall = time.perf_counter() - start
        if todo_archs:
            with make_runner(device, calibration_request, method=method(_METHOD_ARCH, dtype), wait_cool=wait_cool,
                             realtime=realtime, probe_dir=folder if probe else None, dtype=dtype,
                             notify=notify) as runner:
                T.check_settings(conn, "lut_calibration", name, table, runner.settings)

                def store_arch(arch, result: Result, warnings: list[str]) -> None:
                    s = result.stats
                    T.add_calibration(conn, T.CalibrationRow(
                        name, table, space.format(arch), params, s.headline_ms, s.mean_ms or s.headline_ms,
                        s.std_ms or 0.0, s.min_ms or s.headline_ms, s.count, result.settings,
                        result.fingerprint or fingerprint,
                        result.warnings + warnings, T.now()))

                _measure_all(todo_archs, lambda arch, i: write_tflite(arch, folder / f"arch{i}.tflite", seed=i,
                                                                      space=space, dtype=dtype),
                             runner, store_arch, device, calibration_request, wait_cool, notify,
                             _bar(progress, len(archs), len(archs) - len(todo_archs), f"calibration {name}", "arch"))
    return BuildSummary(
        device=name, space=table, params=params, entries=len(configs), already_stored=len(configs) - len(todo),
        measured=len(todo), calibration=len(archs), calibration_already_stored=len(archs) - len(todo_archs),
        calibration_measured=len(todo_archs), wall_s=time.perf_counter() - start, table_wall_s=table_wall,
    )


def _bar(enabled: bool, total: int, initial: int, desc: str, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True,
                smoothing=0.05)


def _measure_all(items: list[X], write: Callable[[X, int], Path], runner, store_one: Callable[[X, Result, list[str]], None],
                 device: Device, request: BenchmarkRequest, wait_cool: bool, notify: Callable[[str], None],
                 bar) -> None:
    """Write, measure and store each item in turn (nothing else runs on the host while a model is timed).

    A runner with ``measure_many`` (a phone's: in batches; a farm's: on many phones at once) measures many
    items in one go; each is stored as it arrives.
    """
    host = isinstance(runner, HostBatchRunner)
    warnings: list[str] = []
    if hasattr(runner, "measure_many"):
        with bar:
            try:
                for item, result in runner.measure_many(items, write):
                    store_one(item, result, [])
                    bar.update(1)
            except LatprofError as exc:
                raise LookupTableError(f"{exc}; the entries measured so far are stored, run again to resume") from None
        return
    with bar:
        for i, item in enumerate(items):
            if host and i % _HOST_STATE_EVERY == 0:
                warnings = _host_state(device, request, wait_cool, notify)
            path = write(item, i)
            try:
                result = runner.measure(path)
            except LatprofError as exc:
                raise LookupTableError(f"{exc}; the entries measured so far are stored, run again to resume") from None
            store_one(item, result, warnings)
            path.unlink(missing_ok=True)
            bar.update(1)


def _host_state(device: Device, request: BenchmarkRequest, wait_cool: bool, notify: Callable[[str], None]) -> list[str]:
    from latprof.measure import wait_until_cool

    state = device.state(request)
    if wait_cool:
        state = wait_until_cool(device, request, state, notify)
    warnings = [f"host state: {w}" for w in state.throttle_warnings(device.config.thermal)]
    for w in warnings:
        notify(w)
    return warnings

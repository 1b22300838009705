"""Measure the layers and lone operators of any .tflite models into a device's table.

:func:`measure_ops` splits each model with :func:`latprof.space.recover_layers`.
A recovered layer is measured as the same micro-model :func:`build_lut`
measures (key :meth:`LayerConfig.layer_key`); a lone operator is cut out of
its model with its own weights (:func:`latprof.benchmarking.single_op_models`)
and stored in the same table under the key :meth:`latprof.space.Operator.key`.
The units are deduplicated by key, keys already stored are skipped, and each
result is committed as it arrives, so a rerun resumes and measures nothing
twice. Runners, settings checks and the speed probe are those of
:func:`build_lut`; operator rows record their own ``method``.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, Union

from latprof.benchmarking.record import inspect_model
from latprof.devices import BenchmarkRequest, Device
from latprof.errors import LookupTableError
from latprof.lut import _tables as T
from latprof.lut._build import _METHOD_LAYER, _bar, _measure_all, method
from latprof.lut._runners import Result, make_runner
from latprof.space import (
    LayerConfig, Operator, TFLiteOp, op_kind, read_tflite_ops, recover_layers, tflite_operators, write_tflite,
)
from latprof.store import Store

__all__ = ["OpsSummary", "measure_ops", "model_units"]

_METHOD_OP = "single operator cut from a .tflite with its own weights (latprof.benchmarking.single_op_models)"


@dataclass(frozen=True)
class _OpSlice:
    """A lone operator: where to cut it from."""

    model: Path
    index: int


Unit = Union[LayerConfig, _OpSlice]


@dataclass(frozen=True)
class OpsSummary:
    """What :func:`measure_ops` did: unique keys found, already stored, measured now (by fine kind), wall time."""

    device: str
    space: str
    models: int
    layers: int
    operators: int
    already_stored: int
    measured_layers: int
    measured_operators: int
    measured_kinds: dict[str, int]
    wall_s: float


def model_units(models: Sequence[Path], dtype: str | None = None) -> dict[str, Unit]:
    """``{key: unit}`` of every unique recovered layer (a LayerConfig) and lone operator of ``models``, in order.

    With ``dtype``, only the units that compute in it: an int8 model's float islands (operators the
    converter left in float32) are not int8 costs. Reads every model first: a missing or broken file raises
    ModelFileError, and with ``dtype`` a model with nothing in that type LookupTableError, before anything
    is measured.
    """
    units: dict[str, Unit] = {}
    for model in map(Path, models):
        found = 0
        for layer, ops in recover_layers(read_tflite_ops(model)):
            if dtype is not None and _compute_dtype(ops[0]) != dtype:
                continue
            found += 1
            if layer is not None:
                units.setdefault(layer.layer_key(), layer)
            else:
                units.setdefault(tflite_operators(ops)[0].key(), _OpSlice(model, ops[0].index))
        if not found:
            actual = inspect_model(model).dtype
            raise LookupTableError(f"{model} computes in {actual}, not {dtype}: its operators belong in the {actual} "
                                   f"table (pass --dtype {actual}), or export it as {dtype}")
    return units


def _compute_dtype(op: TFLiteOp) -> str:
    """What an operator computes in: its first non-constant input's type (a QUANTIZE: its output's), with the
    names of :data:`TABLE_DTYPES`."""
    tensors = op.outputs if op.name == "QUANTIZE" else [t for t in op.inputs if t is not None and not t.constant]
    return "float32" if not tensors else "int8" if tensors[0].dtype in ("int8", "uint8") else tensors[0].dtype


def measure_ops(
    store: Store, device: Device, space_name: str, models: Sequence[Path], request: BenchmarkRequest, *,
    wait_cool: bool = True, realtime: bool = True, probe: bool = True, progress: bool = False, dtype: str = "float32",
    notify: Callable[[str], None] = lambda _: None,
) -> OpsSummary:
    """Measure the layers and lone operators of ``models`` missing from ``device``'s ``dtype`` table for
    ``space_name``.

    Layers go in as micro-models under their layer key, operators as single-operator models under
    ``Operator.key()``. Raises LookupTableError when stored rows were measured with other settings, or a
    model computes in another data type.
    """
    start = time.perf_counter()
    conn, name = store.connection, device.name
    units = model_units(models, dtype)
    table = T.table_space(space_name, dtype)
    have = T.stored_keys(conn, name, table)
    todo = {key: unit for key, unit in units.items() if key not in have}
    layers = [key for key, unit in todo.items() if isinstance(unit, LayerConfig)]
    ops = [key for key, unit in todo.items() if isinstance(unit, _OpSlice)]
    fingerprint = device.fingerprint()

    def store_entry(key: str, result: Result, warnings: list[str]) -> None:
        T.add_entry(conn, T.LutEntry.from_stats(name, table, key, result.stats, result.settings,
                                                result.fingerprint or fingerprint, result.warnings + warnings))

    with tempfile.TemporaryDirectory(prefix="latprof-ops-") as tmp:
        folder = Path(tmp)
        for keys, how, is_op in ((layers, method(_METHOD_LAYER, dtype), False), (ops, _METHOD_OP, True)):
            if not keys:
                continue
            write = _op_writer(todo, folder) if is_op else \
                (lambda key, i: write_tflite(todo[key], folder / f"layer{i}.tflite", seed=i, dtype=dtype))
            with make_runner(device, request, method=how, wait_cool=wait_cool, realtime=realtime,
                             probe_dir=folder if probe else None, dtype=dtype, notify=notify) as runner:
                T.check_settings(conn, "lut_entries", name, table, runner.settings, ops=is_op)
                _measure_all(keys, write, runner, store_entry, device, request, wait_cool, notify,
                             _bar(progress, len(keys), 0, f"{'operators' if is_op else 'layers'} {name}",
                                  "entry"))
    n_layers = sum(isinstance(u, LayerConfig) for u in units.values())
    return OpsSummary(
        device=name, space=table, models=len(models), layers=n_layers, operators=len(units) - n_layers,
        already_stored=len(units) - len(todo), measured_layers=len(layers), measured_operators=len(ops),
        measured_kinds=dict(Counter(op_kind(Operator.from_key(key)) for key in ops)),
        wall_s=time.perf_counter() - start,
    )


def _op_writer(todo: dict[str, Unit], folder: Path) -> Callable[[str, int], Path]:
    """Write each operator's single-operator model; a source model is sliced once, on its first operator."""
    from latprof.benchmarking import single_op_models

    sliced: dict[Path, dict[int, bytes]] = {}

    def write(key: str, i: int) -> Path:
        unit = todo[key]
        if unit.model not in sliced:
            wanted = {u.index for u in todo.values() if isinstance(u, _OpSlice) and u.model == unit.model}
            sliced[unit.model] = {j: data for j, (_, _, data) in enumerate(single_op_models(str(unit.model)))
                                  if j in wanted}
        path = folder / f"op{i}.tflite"
        path.write_bytes(sliced[unit.model][unit.index])
        return path

    return write

"""Evidence: end-to-end latencies measured on a device, from any source, as :class:`Observation` rows.

* a CSV of whole models (``model,latency_ms`` plus optional ``depth_multiplier,
  resolution,device,runtime_version,source,dtype``; ``latprof results --csv`` works);
* a CSV of architectures of a space (``arch,latency_ms``, optional ``device,source,dtype``);
* ``published``: the phone latencies shipped with latprof
  (``published_pixel_latency.csv`` for whole models, ``<space>_latency.csv``
  column ``<device>_ms`` for architectures of a space);
* the device's own lookup-table calibration set (:func:`lut_observations`), at
  the table's reference speed.

Every row carries the data type its model computed in (``dtype``, else ``setting_dtype`` as
``latprof results --csv`` writes it; a .tflite row without one: the file's own; otherwise float32), and a
fit reads the rows of one data type only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from latprof.benchmarking.record import MODEL_DTYPES, inspect_model
from latprof.data import PUBLISHED
from latprof.errors import LatprofError, ParseError
from latprof.space import ModelSpec, SearchSpace, get_space, model_spec
from latprof.speed import probe_factor
from latprof.userfiles import latency_ms, read_csv

__all__ = ["Observation", "read_observations", "lut_observations", "PUBLISHED_MODELS"]

PUBLISHED_MODELS = PUBLISHED / "published_pixel_latency.csv"
_MAX_SKIP_NOTES = 5


@dataclass(frozen=True)
class Observation:
    """One end-to-end latency on the target device.

    ``model`` is an architecture of the fit's space, or a :class:`~latprof.space.ModelSpec`
    (a .tflite file, a named architecture, a Keras family) for whole-model fits.
    ``family`` groups rows for leave-one-family-out.
    """

    model: Any
    latency_ms: float
    runtime: str = ""
    source: str = ""
    family: str = ""
    space: SearchSpace | None = None  # the space ``model`` belongs to, when not the fit's
    dtype: str = "float32"  # what the model computed in (latprof.benchmarking.model_dtype's names)

    @property
    def name(self) -> str:
        return self.model.name if isinstance(self.model, ModelSpec) else str(getattr(self.model, "name", None) or "")


def read_observations(source: str | Path, device: str, space: SearchSpace | None = None,
                      notify: Callable[[str], None] = lambda _: None, dtype: str = "float32") -> list[Observation]:
    """Rows for ``device`` in data type ``dtype`` from a CSV file, or ``"published"``: architectures of ``space``
    when given, else models. Raises ParseError when there are none (naming the data types there are)."""
    rows = _space_rows(source, device, space, notify) if space is not None else _model_rows(source, device, notify)
    kept = [r for r in rows if r.dtype == dtype]
    others = sorted({r.dtype for r in rows} - {dtype})
    if not kept:
        raise ParseError(f"{source} has no {dtype} rows for device {device} (it has {', '.join(others)}); "
                         f"pass --dtype {others[0]}")
    if others:
        notify(f"kept the {len(kept)} {dtype} rows; left out {len(rows) - len(kept)} measured in {', '.join(others)}")
    return kept


_DTYPE_ALIASES = {"fp32": "float32", "float": "float32", "fp16": "float16", "quant": "int8", "quantized": "int8",
                  "8-bit": "int8", "8bit": "int8"}


def _row_dtype(raw: dict[str, str], model: str = "") -> str:
    """A row's data type: its ``dtype`` (or ``setting_dtype``) column, else a data type the model's name gives in
    parentheses (``MobileNetV3-Large (uint8)``, ``(float)``), else a .tflite file's own, else float32."""
    given = (raw.get("dtype") or raw.get("setting_dtype") or "").strip().lower()
    named = [t.strip().lower() for t in re.findall(r"\(([^)]*)\)", model)]
    named = [_DTYPE_ALIASES.get(t, t) for t in named if t in _DTYPE_ALIASES or t in MODEL_DTYPES]
    if given or named:
        return _DTYPE_ALIASES.get(given, given) if given else named[0]
    if model.endswith(".tflite") and Path(model).is_file():
        return inspect_model(Path(model)).dtype or "float32"
    return "float32"


def _published_device(name: str) -> str:
    return name.lower().replace(" ", "")  # "Pixel 1" -> "pixel1"


def _model_rows(source: str | Path, device: str, notify: Callable[[str], None]) -> list[Observation]:
    path = PUBLISHED_MODELS if str(source) == "published" else Path(source)
    if not path.is_file():
        raise ParseError(f"measurements file not found: {path}; pass a CSV with model,latency_ms columns or `published`")
    columns, table = read_csv(path)
    if not table or not {"model", "latency_ms"} <= set(columns):
        raise ParseError(f"{path} needs at least the columns model,latency_ms (one row per measured model)")
    rows, skipped = [], []
    for number, raw in table:
        row_device = raw.get("device")
        if row_device and _published_device(row_device) != device and row_device != device:
            continue
        latency = latency_ms(raw["latency_ms"], path, number)
        try:
            multiplier = float(raw["depth_multiplier"]) if raw.get("depth_multiplier") else None
            resolution = int(float(raw["resolution"])) if raw.get("resolution") else None
            model = raw["model"]
            if model.endswith(".tflite") and not Path(model).is_absolute() and (path.parent / model).exists():
                model = str(path.parent / model)
            dtype = _row_dtype(raw, model)
            spec = model_spec(model, multiplier, resolution, dtype)
            rows.append(Observation(spec, latency, raw.get("runtime_version") or "", raw.get("source") or path.name,
                                    spec.family, dtype=dtype))
        except (LatprofError, ValueError) as exc:
            skipped.append(f"line {number} ({raw.get('model')}): {exc}")
    for reason in skipped:
        notify(f"skipped {reason}")
    if not rows:
        raise ParseError(f"{path} has no usable rows for device {device}; check the device column and model names")
    return rows


def _space_rows(source: str | Path, device: str, space: SearchSpace,
                notify: Callable[[str], None]) -> list[Observation]:
    published = str(source) == "published"
    path = PUBLISHED / f"{space.family}_latency.csv" if published else Path(source)
    if not path.is_file():
        if published:
            raise ParseError(f"no published latencies ship for space {space.name}; pass a CSV with arch,latency_ms")
        raise ParseError(f"measurements file not found: {path}; pass a CSV with arch,latency_ms columns")
    columns, table = read_csv(path)
    column = f"{device}_ms" if published else "latency_ms"
    if not table or "arch" not in columns or column not in columns:
        if published:
            have = ", ".join(c[:-3] for c in columns if c.endswith("_ms"))
            raise ParseError(f"the published {space.name} data has no device {device!r}; it has: {have}")
        raise ParseError(f"{path} needs the columns arch,latency_ms (one row per measured architecture)")
    rows, skipped = [], 0
    for number, raw in table:
        if not published and raw.get("device") and raw["device"] != device:
            continue
        latency = latency_ms(raw[column], path, number)
        try:
            rows.append(Observation(space.parse(raw["arch"]), latency, "", raw.get("source") or path.name,
                                    dtype=_row_dtype(raw)))
        except (LatprofError, ValueError) as exc:
            skipped += 1
            if skipped <= _MAX_SKIP_NOTES:
                notify(f"skipped line {number}: {exc}")
    if skipped > _MAX_SKIP_NOTES:
        notify(f"skipped {skipped} rows in all")
    if not rows:
        raise ParseError(f"{path} has no usable {space.name} rows for device {device}")
    return rows


def lut_observations(calibration: list, space_name: str, ref_ms: float | None, beta: float) -> list[Observation]:
    """The lookup-table calibration set (:class:`latprof.lut.CalibrationRow` list) at the reference speed."""
    out = []
    for c in calibration:
        space = get_space(space_name, **c.params)
        ms = c.median_ms * probe_factor(c.settings.get("probe_ms"), ref_ms, beta)
        out.append(Observation(space.parse(c.arch), ms, "", "calibration set", space=space,
                               dtype=c.settings.get("dtype") or "float32"))
    return out

"""Turning a model description (a calibration row's ``model`` column) into a .tflite file.

A description names a model as a ``.tflite`` path, a named architecture or an
architecture string (``mnasnet-a1@0.75,192``, built by :mod:`latprof.space`),
or a published Keras family with multiplier and resolution (``MobileNetV2``,
``MobileNetV3-Large``, ``MobileNetV3-Small``, optionally ``-minimalistic``),
built with ``weights=None``. Built files are cached under
``$LATPROF_CACHE`` (default ``~/.cache/latprof``)/models, keyed by description.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

from latprof.cache import cache_dir as latprof_cache_dir, write_atomic
from latprof.errors import ArchitectureError, ModelFileError

__all__ = ["ModelSpec", "model_spec", "tflite_for", "cache_dir", "KERAS_FAMILIES"]

KERAS_FAMILIES = ("MobileNetV2", "MobileNetV3-Large", "MobileNetV3-Small")  # family for leave-one-family-out: the part before "-"


@dataclass(frozen=True)
class ModelSpec:
    """What a calibration row measured. ``family`` groups rows for leave-one-family-out."""

    kind: str  # "tflite" | "keras" | "arch"
    name: str  # display name, e.g. "MobileNetV3-Large-minimalistic 1.0@224"
    family: str
    text: str  # path, arch string, or keras family
    multiplier: float = 1.0
    resolution: int = 224
    minimalistic: bool = False
    dtype: str = "float32"  # what it computed in; a built one (keras, arch) is exported so: int8 / uint8 full-integer


def cache_dir() -> Path:
    return latprof_cache_dir() / "models"


def _keras_family(model: str) -> tuple[str, bool] | None:
    """``"MobileNetV3-Large-minimalistic (float)"`` -> ("MobileNetV3-Large", True)."""
    base = re.sub(r"\s*\(.*?\)", "", model).strip()
    minimal = base.endswith("-minimalistic")
    base = base.removesuffix("-minimalistic")
    return (base, minimal) if base in KERAS_FAMILIES else None


def _scaling(model: str, multiplier: float | None, resolution: int | None, min_resolution: int) -> tuple[float, int]:
    """A row's depth multiplier and resolution (1.0 and 224 when not given), checked."""
    m = 1.0 if multiplier is None else float(multiplier)
    r = 224 if resolution is None else resolution
    if not (math.isfinite(m) and m > 0) or not (isinstance(r, int) and r >= min_resolution):
        raise ArchitectureError(f"row '{model}': depth multiplier {m:g} must be above 0 and resolution {r} at least "
                                f"{min_resolution}; fix the row")
    return m, r


def model_spec(model: str, multiplier: float | None = None, resolution: int | None = None,
               dtype: str = "float32") -> ModelSpec:
    """Resolve the ``model`` column of a calibration row (with its multiplier and resolution, if given) measured
    in ``dtype``."""
    model = model.strip()
    if model.endswith(".tflite"):
        return ModelSpec("tflite", Path(model).name, Path(model).stem, model, dtype=dtype)
    keras = _keras_family(model)
    if keras is not None:
        family, minimal = keras
        m, r = _scaling(model, multiplier, resolution, min_resolution=32)  # Keras' MobileNets need 32 pixels
        name = f"{family}{'-minimalistic' if minimal else ''} {m:g}@{r}" + ("" if dtype == "float32" else f" {dtype}")
        return ModelSpec("keras", name, family.split("-")[0], family, m, r, minimal, dtype)
    from latprof.space._arch import format_arch
    from latprof.space._references import parse_arch

    text = model = re.sub(r"\s*\(.*?\)", "", model).strip()  # "mnasnet-a1 (int8)": the data type is the row's
    if multiplier is not None or resolution is not None:
        if "@" in model or ":" in model:
            raise ArchitectureError(f"row '{model}' sets a multiplier/resolution twice; use NAME@M,R or the columns")
        m, r = _scaling(model, multiplier, resolution, min_resolution=1)
        text = f"{model}@{m:g},{r}"
    arch = parse_arch(text)
    family = model.split("@")[0] if ":" not in model else "arch-string"
    return ModelSpec("arch", text if ":" not in text else format_arch(arch)[:40] + "…", family, text,
                     resolution=arch.resolution, dtype=dtype)


def _build_keras(spec: ModelSpec):
    import tensorflow as tf

    apps = tf.keras.applications
    shape = (spec.resolution, spec.resolution, 3)
    if spec.text == "MobileNetV2":
        return apps.MobileNetV2(alpha=spec.multiplier, input_shape=shape, weights=None)
    builder = apps.MobileNetV3Large if spec.text == "MobileNetV3-Large" else apps.MobileNetV3Small
    return builder(alpha=spec.multiplier, minimalistic=spec.minimalistic, input_shape=shape, weights=None,
                   include_preprocessing=False)


def tflite_for(spec: ModelSpec) -> Path:
    """The .tflite file of a model spec, building and caching it when needed."""
    if spec.kind == "tflite":
        path = Path(spec.text)
        if not path.is_file():
            raise ModelFileError(f"model file not found: {path}; fix the path in the measurements file")
        return path
    key = f"{spec.kind}|{spec.text}|{spec.multiplier}|{spec.resolution}|{spec.minimalistic}" + \
        ("" if spec.dtype == "float32" else f"|{spec.dtype}")
    slug = re.sub(r"[^A-Za-z0-9.@,-]+", "_", spec.name)[:60]
    path = cache_dir() / f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:10]}.tflite"
    if path.is_file():
        return path
    from latprof.space._build import export_tflite, keras_to_tflite, quantize_for
    from latprof.space._references import parse_arch

    quantize = quantize_for(spec.dtype)
    if spec.kind == "keras":  # both write the cache file whole or not at all
        return write_atomic(path, keras_to_tflite(_build_keras(spec), quantize=quantize))
    return export_tflite(parse_arch(spec.text), path, quantize=quantize)

"""What a predictor prices: a model as a list of units, each a layer (a table key) or a lone operator."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from latprof.space import LayerConfig, Operator, SearchSpace, layer_operators, read_tflite_ops, recover_layers, \
    tflite_operators

__all__ = ["Unit", "arch_units", "tflite_units", "layer_unit", "key_unit"]


@dataclass(frozen=True)
class Unit:
    """One priced part of a model: ``key`` is the layer key, or ``op:KIND[shape]`` for a lone operator."""

    name: str
    key: str
    layer: LayerConfig | None
    operators: tuple[Operator, ...]


@lru_cache(maxsize=65536)
def _layer_parts(layer: LayerConfig) -> tuple[str, tuple[Operator, ...]]:
    return layer.layer_key(), tuple(layer_operators(layer))


def layer_unit(name: str, layer: LayerConfig) -> Unit:
    key, ops = _layer_parts(layer)
    return Unit(name, key, layer, ops)


def key_unit(key: str) -> Unit:
    """The unit a table key stands for: a layer (``LayerConfig.layer_key``) or one operator (``Operator.key``)."""
    if key.startswith("op:"):
        return Unit(key, key, None, (Operator.from_key(key),))
    return layer_unit("", LayerConfig.from_key(key))


def arch_units(space: SearchSpace, arch: Any) -> list[Unit]:
    """The units of an architecture of ``space``, in run order."""
    return [layer_unit(name, layer) for name, layer in space.named_layers(arch)]


def tflite_units(path: str | Path) -> list[Unit]:
    """The units of any .tflite file: the layers recovered from its graph, then lone operators."""
    units = []
    for n, (layer, ops) in enumerate(recover_layers(read_tflite_ops(path))):
        if layer is not None:
            units.append(layer_unit(f"layer{n}", layer))
            continue
        operator = tflite_operators(ops)[0]
        units.append(Unit(f"op{ops[0].index}", operator.key(), None, (operator,)))
    return units

"""The operator regression: a cost for any operator, and for layers no table holds.

An operator of fine kind ``k`` (:func:`latprof.space.op_kind`) costs
``coef[k] @ op.features()`` (``[1, MACs/1e6, in/1e5, out/1e5, weights/1e5]``),
fitted by non-negative least squares on relative error over table entries
(each a sum of its operators' vectors). A builtin operator the table timed
alone at :data:`_OWN_COLUMN_ROWS` or more sizes gets coefficients of its own
(``name:HARD_SWISH``) when its kind holds other builtins: one kind's operators
need not run on the same kernels (int8 HARD_SWISH and GELU are left to TFLite's
reference kernels where XNNPACK takes RELU). A kind no entry exercised borrows the
coefficients of the nearest measured kind (:data:`_BORROW`), then its family's,
then the mean of all. The neighbour correction (:class:`Neighbours`) then
multiplies a layer's estimate by the distance-weighted geometric mean of the
table/model ratios of its nearest siblings (same op, kernel, stride, expansion,
SE, skip, relaxed in steps), so a 112-filter block between the 96- and
120-filter entries inherits their measured efficiency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from scipy.optimize import nnls

from latprof.errors import PredictorError
from latprof.space import OP_KINDS, LayerConfig, Operator, op_kind

__all__ = ["OpRegression", "Neighbours", "analytic_regression", "fit_op_regression", "N_FEATURES",
           "MACS_PER_MS"]

N_FEATURES = 5
_OWN_COLUMN_ROWS = 4
_K_NEAREST = 4
# Kinds a table may lack, and the measured kinds whose coefficients they borrow first.
_BORROW = {
    "conv7s1": ("conv5s1", "conv3s1"), "conv7s2": ("conv5s2", "conv3s2"), "conv5s1": ("conv3s1",),
    "conv5s2": ("conv3s2",), "conv3s1": ("conv3s2",), "conv1x1_g": ("conv1x1",), "conv_g": ("conv1x1_g", "conv3s1"), "conv1x1_vec": ("conv1x1",),
    "dw7s1": ("dw5s1", "dw3s1"), "dw7s2": ("dw5s2", "dw3s2"), "dw5s2": ("dw3s2",), "dw3s2": ("dw5s2",),
    "maxpool": ("pool", "mean"), "pool": ("maxpool", "mean"), "mean": ("pool",), "act": ("mul", "add"),
    "softmax": ("act", "mul"), "concat": ("copy", "add"), "pad": ("copy", "add"), "reshape": ("copy",),
    "copy": ("reshape", "add"), "resize": ("copy", "add"), "mul": ("add",), "add": ("mul",), "other": ("add",),
}
# A generic mobile core: 5 GMAC/s, 6 GB/s (float32), 5 us per operator, in op.features() units.
MACS_PER_MS, ELEMS_PER_MS, OP_MS = 5e6, 1.5e6, 0.005
_ANALYTIC = np.array([OP_MS, 1e6 / MACS_PER_MS, 1e5 / ELEMS_PER_MS, 1e5 / ELEMS_PER_MS, 1e5 / ELEMS_PER_MS])


@dataclass(frozen=True)
class OpRegression:
    """Per fine kind, the cost coefficients of :meth:`latprof.space.Operator.features` (ms)."""

    coef: dict[str, np.ndarray]

    def op_ms(self, op: Operator) -> float:
        own = self.coef.get(_own(op.kind))
        return float((own if own is not None else self._kind(op_kind(op))) @ op.features())

    def ops_ms(self, ops: Iterable[Operator]) -> np.ndarray:
        """Each operator's cost (ms)."""
        return np.array([self.op_ms(op) for op in ops])

    def _kind(self, kind: str) -> np.ndarray:
        return self.coef.get(kind, self.coef.get("other", _ANALYTIC))

    def to_json(self) -> dict[str, list[float]]:
        return {k: [float(v) for v in c] for k, c in self.coef.items()}

    @classmethod
    def from_json(cls, data: dict[str, Sequence[float]]) -> "OpRegression":
        return cls({k: np.asarray(v, float) for k, v in data.items()})


def analytic_regression() -> OpRegression:
    """The analytic prior as a regression: the same coefficients for every kind."""
    return OpRegression({kind: _ANALYTIC.copy() for kind in OP_KINDS})


def _own(name: str) -> str:
    return f"name:{name}"


def _own_columns(op_lists: Sequence[Sequence[Operator]]) -> list[str]:
    """The builtins timed alone at enough sizes that share their one fine kind with other builtins."""
    alone: dict[str, set[int]] = {}
    names: dict[str, set[str]] = {}  # fine kind -> the builtins in it
    kinds: dict[str, set[str]] = {}  # builtin -> its fine kinds
    for ops in op_lists:
        for op in ops:
            names.setdefault(op_kind(op), set()).add(op.kind)
            kinds.setdefault(op.kind, set()).add(op_kind(op))
        if len(ops) == 1:
            alone.setdefault(ops[0].kind, set()).add(ops[0].in_elems)
    return sorted(_own(name) for name, sizes in alone.items()
                  if len(sizes) >= _OWN_COLUMN_ROWS and len(kinds[name]) == 1 and len(names[next(iter(kinds[name]))]) > 1)


def _design(op_lists: Sequence[Sequence[Operator]], columns: Sequence[str]) -> np.ndarray:
    index = {k: i for i, k in enumerate(columns)}
    X = np.zeros((len(op_lists), len(columns) * N_FEATURES))
    for row, ops in enumerate(op_lists):
        for op in ops:
            i = index.get(_own(op.kind), index.get(op_kind(op))) * N_FEATURES
            X[row, i:i + N_FEATURES] += op.features()
    return X


def fit_op_regression(op_lists: Sequence[Sequence[Operator]], ms: np.ndarray) -> OpRegression:
    """NNLS on relative error: each row is a layer (or one operator) timed alone, ``ms`` its time."""
    ms = np.asarray(ms, float)
    if len(ms) < 2:
        raise PredictorError("the lookup table has fewer than 2 entries; run `latprof build-lut` to fill it")
    columns = [*OP_KINDS, *_own_columns(op_lists)]
    X = _design(op_lists, columns)
    w = 1.0 / np.maximum(ms, 1e-6)
    Xw = X * w[:, None]
    scale = np.maximum(np.abs(Xw).max(axis=0), 1e-12)
    coef, _ = nnls(Xw / scale, ms * w, maxiter=50 * X.shape[1])
    coef = (coef / scale).reshape(len(columns), N_FEATURES)
    seen = np.abs(X).reshape(len(ms), len(columns), N_FEATURES).sum(axis=(0, 2)) > 0
    measured = {k: coef[i] for i, k in enumerate(columns) if seen[i]}
    return OpRegression(_fill(measured))


def _fill(measured: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Coefficients for every kind: measured, else borrowed (:data:`_BORROW`), else the family's, else the mean."""
    if not measured:
        return analytic_regression().coef
    mean = np.mean(list(measured.values()), axis=0)
    out = dict(measured)
    for kind in OP_KINDS:
        if kind in out:
            continue
        donor = next((measured[d] for d in _BORROW.get(kind, ()) if d in measured), None)
        out[kind] = donor if donor is not None else mean
    return out


def _family_keys(layer: LayerConfig) -> tuple[tuple, ...]:
    se = layer.se_ratio > 0
    return ((layer.op, layer.kernel, layer.stride, layer.expansion, se, layer.skip),
            (layer.op, layer.kernel, layer.stride, layer.expansion, se), (layer.op, layer.kernel, layer.stride),
            (layer.op,))


def _position(layer: LayerConfig) -> np.ndarray:
    return np.array([math.log(layer.in_channels), math.log(layer.out_channels), math.log(layer.resolution)])


@dataclass
class Neighbours:
    """Measured layers grouped by family, with their log ratios to the regression."""

    families: list[dict[tuple, tuple[np.ndarray, np.ndarray]]] = field(default_factory=list)

    @classmethod
    def build(cls, layers: Sequence[LayerConfig], ms: np.ndarray, estimate: np.ndarray) -> "Neighbours":
        resid = np.log(np.maximum(ms, 1e-6) / np.maximum(estimate, 1e-6))
        levels: list[dict[tuple, list]] = [{} for _ in range(4)]
        for layer, r in zip(layers, resid):
            for level, key in zip(levels, _family_keys(layer)):
                level.setdefault(key, []).append((_position(layer), r))
        return cls([{k: (np.array([p for p, _ in v]), np.array([r for _, r in v])) for k, v in level.items()}
                    for level in levels])

    def factor(self, layer: LayerConfig) -> float:
        """The ratio to apply to the regression's estimate of ``layer`` (1 when no sibling is known)."""
        pos = _position(layer)
        for level, key in enumerate(_family_keys(layer)):
            found = self.families[level].get(key) if self.families else None
            if found is None:
                continue
            points, resid = found
            d = np.abs(points - pos) @ np.array([1.0, 1.0, 2.0])
            nearest = np.argsort(d)[:_K_NEAREST]
            w = 1.0 / (d[nearest] + 0.1)
            return math.exp(float(resid[nearest] @ w / w.sum()))
        return 1.0

"""The Predictor: table lookups, regression for what the table lacks, and the end-to-end correction.

Architectures of a space the table was built for take a fast path: at load
time every (block position, block choice, input filters) combination of the
space gets its corrected latency precomputed, so :meth:`Predictor.predict_many`
is a few dict lookups per architecture and :meth:`Predictor.predict_tokens` a
handful of numpy gathers. Anything else (other filters, resolutions, the
112-filter blocks of MnasNet-A1, a .tflite file) goes layer by layer: table
entry when the key is stored, regression otherwise.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from latprof.errors import PredictorError
from latprof.predict._correction import Correction
from latprof.predict._features import tflite_op_desc
from latprof.predict._regression import CostModel, Siblings, design_matrix, parse_layer_key
from latprof.space import Architecture, LayerConfig, get_space, read_tflite_ops
from latprof.space._layers import named_layers

__all__ = ["LayerPrediction", "Prediction", "Predictor"]

_BLOCK_KEY = operator.attrgetter("op", "repeats", "kernel", "stride", "in_filters", "out_filters", "expansion",
                                 "se_ratio", "skip")
_HEADER = operator.attrgetter("resolution", "stem_filters", "head_filters", "num_classes", "activation")


class LayerPrediction(NamedTuple):
    """One layer's share of a prediction. ``source``: ``"table"`` or ``"regression"``."""

    name: str
    layer_key: str
    ms: float
    source: str


@dataclass(frozen=True)
class Prediction:
    """A predicted latency (ms) with its uncertainty band and per-layer breakdown.

    ``latency_ms = overhead_ms + sum(layer.ms for layer in layers)``; each
    layer's ``ms`` is its corrected share of the network, not its time alone.
    """

    latency_ms: float
    low_ms: float
    high_ms: float
    layers: list[LayerPrediction]
    overhead_ms: float
    device: str

    @property
    def regression_share(self) -> float:
        """Fraction of the latency that came from the regression rather than the table."""
        reg = sum(r.ms for r in self.layers if r.source == "regression")
        return reg / self.latency_ms if self.latency_ms else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device, "latency_ms": self.latency_ms, "low_ms": self.low_ms, "high_ms": self.high_ms,
            "overhead_ms": self.overhead_ms, "regression_share": self.regression_share,
            "layers": [r._asdict() for r in self.layers],
        }


@dataclass
class _Variant:
    """Precomputed costs for one set of space parameters (e.g. mnasnet at 224, multiplier 1.0)."""

    params: dict[str, Any]
    header: tuple  # (resolution, stem, head, classes, activation) of the space's architectures
    base_ms: float  # intercept + stem + classifier
    head_rows: tuple[LayerPrediction, ...]  # stem
    tail_rows: tuple[LayerPrediction, ...]  # classifier
    costs: list[dict[tuple, float]] = field(default_factory=list)  # per block position: block key -> ms
    # per block position: block key -> (rows, ms, of which from the regression)
    rows: list[dict[tuple, tuple[tuple[LayerPrediction, ...], float, float]]] = field(default_factory=list)
    token_costs: list[np.ndarray] = field(default_factory=list)


class Predictor:
    """Predicts a device's latency for architectures of a space (and for any .tflite file).

    Build one with :func:`latprof.predict.load_predictor`; it holds the table
    (rescaled to the reference speed), the regression and the correction.
    """

    def __init__(self, model: dict[str, Any], table: dict[str, float]) -> None:
        self.device: str = model["device"]
        self.space: str = model["space"]
        self.model = model
        self.table = table
        self.cost = CostModel.from_json(model["cost_model"])
        self.correction = Correction.from_json(model["correction"])
        band = model["band"]
        self._band, self._reg_band = float(band["rel"]), float(band["regression_rel"])
        layers = [parse_layer_key(k) for k in table]
        self.siblings = Siblings.build(layers, np.fromiter(table.values(), float, len(table)),
                                       design_matrix(layers) @ self.cost.coef)
        self._cache: dict[LayerConfig, tuple[float, str, str]] = {}
        self._variants: dict[tuple, _Variant] = {}
        for params in model.get("variants", []):
            variant = self._precompute(params)
            if variant is not None:
                self._variants[variant.header] = variant
        # header -> (base ms, per-position block costs, number of blocks): predict_many's lookups
        self._fast = {h: (v.base_ms, v.costs, len(v.costs)) for h, v in self._variants.items()}

    @property
    def space_params(self) -> dict[str, Any]:
        """The space parameters the table was built for, when it was built for one set only; else ``{}``."""
        variants = self.model.get("variants", [])
        return dict(variants[0]) if len(variants) == 1 else {}

    # ------------------------------------------------------------ layers

    def layer_ms(self, layer: LayerConfig) -> tuple[float, str]:
        """A layer's latency alone (ms, at the reference speed) and where it came from."""
        iso, source, _ = self._layer(layer)
        return iso, source

    def _layer(self, layer: LayerConfig) -> tuple[float, str, str]:
        hit = self._cache.get(layer)
        if hit is None:
            key = layer.layer_key()
            if key in self.table:
                hit = (self.table[key], "table", key)
            else:
                log_c, _ = self.siblings.log_correction(layer)
                hit = (self.cost.layer_ms(layer) * math.exp(log_c), "regression", key)
            self._cache[layer] = hit
        return hit

    def _row(self, name: str, layer: LayerConfig) -> LayerPrediction:
        iso, source, key = self._layer(layer)
        return LayerPrediction(name, key, self.correction.unit_ms(layer.op, iso), source)

    def _finish(self, rows: list[LayerPrediction]) -> Prediction:
        total = self.correction.intercept_ms + sum(r.ms for r in rows)
        reg = sum(r.ms for r in rows if r.source == "regression")
        rel = self._band + self._reg_band * (reg / total if total > 0 else 0.0)
        return Prediction(total, total * (1 - rel), total * (1 + rel), rows, self.correction.intercept_ms, self.device)

    # ------------------------------------------------------------ architectures

    def predict(self, arch: Architecture) -> Prediction:
        """Predicted latency of ``arch`` with band and per-layer breakdown."""
        variant = self._variants.get(_HEADER(arch)) if isinstance(arch, Architecture) else None
        if variant is not None and len(arch.blocks) == len(variant.rows):
            try:
                parts = [rows[_BLOCK_KEY(b)] for rows, b in zip(variant.rows, arch.blocks)]
            except KeyError:
                parts = None
            if parts is not None:
                out = list(variant.head_rows)
                total, reg = variant.base_ms, 0.0
                for rows, ms, reg_ms in parts:
                    out += rows
                    total += ms
                    reg += reg_ms
                out += variant.tail_rows
                rel = self._band + self._reg_band * (reg / total if total > 0 else 0.0)
                return Prediction(total, total * (1 - rel), total * (1 + rel), out, self.correction.intercept_ms,
                                  self.device)
        if isinstance(arch, Architecture):
            named = named_layers(arch)
        else:
            named = get_space(self.space, **self.space_params).named_layers(arch)
        return self._finish([self._row(name, layer) for name, layer in named])

    def predict_many(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Predicted latencies (ms, float64) of many architectures."""
        fast, getitem, header, block_key = self._fast, operator.getitem, _HEADER, _BLOCK_KEY
        out: list[float] = []
        append = out.append
        for arch in archs:
            v = fast.get(header(arch)) if isinstance(arch, Architecture) else None
            if v is not None and len(arch.blocks) == v[2]:
                try:
                    append(v[0] + sum(map(getitem, v[1], map(block_key, arch.blocks))))
                    continue
                except KeyError:
                    pass
            append(self.predict(arch).latency_ms)
        return np.array(out, dtype=np.float64)

    def predict_tokens(self, tokens: np.ndarray, params: dict[str, Any] | None = None) -> np.ndarray:
        """Predicted latencies of token sequences (rows of ``tokens``) of the space built with ``params``.

        ``params`` (e.g. ``{"depth_multiplier": 1.0, "resolution": 224}``) may be
        omitted when the table was built for one set of space parameters only.
        """
        variant = self._token_variant(params)
        t = np.asarray(tokens, dtype=np.intp)
        n_pos = len(variant.token_costs)
        if t.ndim != 2 or t.shape[1] != 6 * n_pos:
            raise PredictorError(f"tokens must be an array of shape (n, {6 * n_pos}), got {t.shape}")
        total = np.full(t.shape[0], variant.base_ms)
        for i, cost in enumerate(variant.token_costs):
            prev = t[:, 6 * (i - 1) + 4] if i else 0
            try:
                total += cost[prev, t[:, 6 * i], t[:, 6 * i + 1], t[:, 6 * i + 2], t[:, 6 * i + 3], t[:, 6 * i + 4],
                              t[:, 6 * i + 5]]
            except IndexError:
                raise PredictorError(f"a token of block {i + 1} is out of range for the space; "
                                     "check the tokens come from this space's decisions") from None
        return total

    def _token_variant(self, params: dict[str, Any] | None) -> _Variant:
        variants = list(self._variants.values())
        if params is None and len(variants) == 1:
            return variants[0]
        for v in variants:
            if params is not None and all(v.params.get(k) == val for k, val in params.items()):
                return v
        known = "; ".join(str(v.params) for v in variants) or "none"
        raise PredictorError(f"no precomputed {self.space} space for {params} on {self.device} (known: {known}); "
                             f"pass one of them, or run `latprof build-lut` for those parameters and `latprof fit`")

    # ------------------------------------------------------------ .tflite files

    def predict_tflite(self, path: str | Path) -> Prediction:
        """Predict a .tflite file: layers recovered from its graph use the table, other operators the regression."""
        from latprof.space import recover_layers

        rows = []
        for n, (layer, ops) in enumerate(recover_layers(read_tflite_ops(path))):
            if layer is not None:
                rows.append(self._row(f"layer{n}", layer))
            else:
                op = ops[0]
                iso = self.cost.ops_ms([tflite_op_desc(op)])
                shape = "x".join(str(d) for d in (op.outputs[0].shape if op.outputs else ()))
                rows.append(LayerPrediction(f"op{op.index}", f"op:{op.name}[{shape}]",
                                            self.correction.unit_ms("op", iso), "regression"))
        return self._finish(rows)

    # ------------------------------------------------------------ precomputation

    def _precompute(self, params: dict[str, Any]) -> _Variant | None:
        from latprof.space import MnasNetSpace
        from latprof.space._mnasnet import CONV_OPS, KERNEL_CHOICES, SE_CHOICES, SKIP_CHOICES, _op_of

        space = get_space(self.space, **params)
        if not isinstance(space, MnasNetSpace):
            return None
        act = space.activation
        stem = LayerConfig("cn", 3, 2, 1, 0.0, "none", 3, space.stem_filters, space.resolution, act)
        res = stem.out_resolution
        resolutions = []
        for b in space.blocks:
            resolutions.append(res)
            res = -(-res // b.stride)
        classifier = LayerConfig("fc", 1, 1, 1, 0.0, "none", space.head_filters, space.num_classes, res, "none")
        head_rows = (self._row("stem", stem),)
        tail_rows = (self._row("classifier", classifier),)
        variant = _Variant(params=dict(params), head_rows=head_rows, tail_rows=tail_rows,
                           header=(space.resolution, space.stem_filters, space.head_filters, space.num_classes, act),
                           base_ms=self.correction.intercept_ms + head_rows[0].ms + tail_rows[0].ms)
        n_blocks = len(space.blocks)
        for i, b in enumerate(space.blocks):
            prevs = (space.stem_filters,) if i == 0 else space.blocks[i - 1].filters
            costs: dict[tuple, float] = {}
            rows: dict[tuple, tuple[tuple[LayerPrediction, ...], float, float]] = {}
            grid = np.zeros((len(prevs), len(CONV_OPS), len(KERNEL_CHOICES), len(SE_CHOICES), len(SKIP_CHOICES),
                             len(b.filters), len(b.layers)))
            for tp, cin in enumerate(prevs):
                for to, conv_op in enumerate(CONV_OPS):
                    op, e = _op_of(conv_op)
                    for tk, k in enumerate(KERNEL_CHOICES):
                        for ts, se in enumerate(SE_CHOICES):
                            for tskip, skip in enumerate(SKIP_CHOICES):
                                for tf, out in enumerate(b.filters):
                                    first = LayerConfig(op, k, b.stride, e, se, skip, cin, out, resolutions[i], act)
                                    rest = LayerConfig(op, k, 1, e, se, skip, out, out, first.out_resolution, act)
                                    head = (LayerConfig("cn", 1, 1, 1, 0.0, "none", out, space.head_filters, res,
                                                        act) if i == n_blocks - 1 else None)
                                    for tn, n in enumerate(b.layers):
                                        key = (op, n, k, b.stride, cin, out, e, se, skip)
                                        block = [self._row(f"b{i + 1}.1", first)]
                                        block += [self._row(f"b{i + 1}.{j}", rest) for j in range(2, n + 1)]
                                        if head is not None:
                                            block.append(self._row("head", head))
                                        ms = sum(r.ms for r in block)
                                        reg = sum(r.ms for r in block if r.source == "regression")
                                        costs[key] = ms
                                        rows[key] = (tuple(block), ms, reg)
                                        grid[tp, to, tk, ts, tskip, tf, tn] = ms
            variant.costs.append(costs)
            variant.rows.append(rows)
            variant.token_costs.append(grid)
        return variant


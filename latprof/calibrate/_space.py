"""A device's predictor for one search space from end-to-end measurements of its architectures.

Every architecture of a space is a bag of layer configurations (its lookup-table
keys). A *prior* gives each key a cost: the reference device's lookup table
when one is built for the space (``latprof build-lut --space S``), otherwise an
analytic cost from multiply-adds, memory traffic and operator count. The
device's latency is then modelled as

    ms = b + sum over layers of prior(key) * (s + a[group(key)] + d[key]) + analytic(key) * t

with ``b``, the overall ratio ``s`` and (when the prior is a table) the share
``t`` of the analytic cost free, and ridge penalties pulling the
per-group ratios ``a`` (a group is a layer kind: ``ir_k5_e6``, ``rcn_k3``...)
and the per-key ratios ``d`` towards zero, i.e. towards "the device is the
prior times a constant". Both penalty strengths are chosen by exact
leave-one-out error (the ridge hat matrix), so ten measurements mostly fit
``b`` and ``s`` while hundreds learn kind- and layer-level corrections.

Which architectures to measure: at random (seeded), or *actively*: greedy
D-optimal design over the group-level features, i.e. each pick is the
candidate whose prediction the measurements picked so far constrain least
(largest ``z^T (λI + Z_S^T Z_S)^-1 z``). It needs no latencies, only the
candidates' layers, so it can also tell a user what to measure.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from latprof.data import PUBLISHED
from latprof.errors import LatprofError, ParseError, PredictorError
from latprof.space import LayerConfig, SearchSpace, get_space
from latprof.store import Store
from latprof.userfiles import latency_ms, read_csv

__all__ = ["SpaceRow", "SpaceModel", "SpaceCalibration", "SpacePredictor", "PriorCosts", "read_space_rows",
           "fit_space_model", "select_active", "select_random", "suggest_archs", "bags", "layer_info", "predict_bags",
           "layer_group", "analytic_ms", "ranking_report", "calibrate_space", "load_space_calibration",
           "SPACE_FORMAT"]

SPACE_FORMAT = "latprof-space-calibrated/1"
MIN_ROWS = 3
_LAMBDAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, np.inf)
_OUTLIER_SIGMAS, _MAX_OUTLIER_SHARE = 5.0, 0.1

# Analytic prior: a generic mobile CPU core (5 GMAC/s, 6 GB/s, 5 µs per operator). Only its
# proportions matter: the fit rescales it.
_MACS_PER_MS, _ELEMS_PER_MS, _OP_MS = 5e6, 1.5e6, 0.005


def layer_group(layer: LayerConfig) -> str:
    """The layer kind a group ratio is shared by, e.g. ``ir_k5_e6``, ``ir_k3_e1_g2``, ``rcn_k3``."""
    groups = getattr(layer, "groups", 1)
    return f"{layer.op}_k{layer.kernel}_e{layer.expansion}" + (f"_g{groups}" if groups > 1 else "")


def analytic_ms(layer: LayerConfig) -> float:
    """A layer's cost on a generic mobile core: multiply-adds, elements moved and operator count."""
    from latprof.predict import layer_ops

    total = 0.0
    for op in layer_ops(layer):
        total += op.macs / _MACS_PER_MS + (op.in_elems + op.out_elems + op.weight_elems) / _ELEMS_PER_MS + _OP_MS
    return total


@dataclass
class PriorCosts:
    """Per-layer prior cost (ms): the reference device's table where it has the key, else analytic (rescaled)."""

    table: dict[str, float]
    source: str  # "table:<device>" or "analytic"
    analytic_scale: float = 1.0  # table ms per analytic ms, median over the table's keys

    @classmethod
    def load(cls, space: SearchSpace, store: Store | None, reference: str | None) -> "PriorCosts":
        """The reference device's table for ``space`` when built, else the analytic prior."""
        if store is not None and reference:
            from latprof.lut import load_table

            try:
                table = load_table(store.connection, reference, space.name)
            except LatprofError:
                table = {}
            if table:
                ratios = [ms / analytic_ms(LayerConfig.from_key(k)) for k, ms in table.items()]
                return cls(dict(table), f"table:{reference}", float(np.median(ratios)))
        return cls({}, "analytic")


@dataclass(frozen=True)
class SpaceRow:
    """One measured architecture of a space on the target device."""

    arch: str  # the space's canonical string
    latency_ms: float
    source: str


def _published_file(space: str) -> Path:
    return PUBLISHED / f"{space}_latency.csv"


def read_space_rows(source: str | Path, device: str, space: SearchSpace,
                    notify: Callable[[str], None] = lambda _: None) -> list[SpaceRow]:
    """Measured architectures of ``space`` on ``device``.

    ``source`` is a CSV with ``arch,latency_ms`` columns (optionally ``device``,
    ``source``) or ``published``: the per-architecture phone latencies shipped in
    ``latprof/data/device_configs/published/<space>_latency.csv``, column ``<device>_ms``.
    """
    published = str(source) == "published"
    path = _published_file(space.family) if published else Path(source)
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
            arch = space.format(space.parse(raw["arch"]))
            rows.append(SpaceRow(arch, latency, raw.get("source") or path.name))
        except (LatprofError, ValueError) as exc:
            skipped += 1
            if skipped <= 5:
                notify(f"skipped line {number}: {exc}")
    if skipped > 5:
        notify(f"skipped {skipped} rows in all")
    if not rows:
        raise ParseError(f"{path} has no usable {space.name} rows for device {device}")
    return rows


# ---------------------------------------------------------------- features

@dataclass
class _Design:
    """Per-architecture features: prior total, analytic total, per-group prior sums, per-key prior sums."""

    groups: list[str]
    keys: list[str]
    total: np.ndarray  # (n,)
    analytic: np.ndarray  # (n,)
    by_group: np.ndarray  # (n, G)
    by_key: np.ndarray  # (n, K)


def bags(space: SearchSpace, archs: Sequence[Any]) -> list[Counter]:
    """Each architecture's layer keys with their counts."""
    return [Counter(layer.layer_key() for layer in space.layers(a)) for a in archs]


class LayerInfo(NamedTuple):
    """What the fit knows of one layer key: its group, its prior cost and its analytic cost (ms)."""

    group: str
    cost: float
    analytic: float


def layer_info(space: SearchSpace, prior: PriorCosts, keys: set[str]) -> dict[str, LayerInfo]:
    """Each layer key's :class:`LayerInfo`: what :func:`fit_space_model` needs besides the bags."""
    info = {}
    for key in keys:
        layer = LayerConfig.from_key(key)
        analytic = analytic_ms(layer)
        cost = prior.table.get(key)
        info[key] = LayerInfo(layer_group(layer), analytic * prior.analytic_scale if cost is None else cost, analytic)
    return info


def _design(bag_list: list[Counter], info: dict[str, LayerInfo],
            groups: list[str] | None = None, keys: list[str] | None = None) -> _Design:
    keys = keys if keys is not None else sorted({k for b in bag_list for k in b})
    groups = groups if groups is not None else sorted({info[k][0] for k in keys})
    k_index, g_index = {k: i for i, k in enumerate(keys)}, {g: i for i, g in enumerate(groups)}
    n = len(bag_list)
    total, analytic = np.zeros(n), np.zeros(n)
    by_group, by_key = np.zeros((n, len(groups))), np.zeros((n, len(keys)))
    for i, b in enumerate(bag_list):
        for key, count in b.items():
            group, cost, a = info[key]
            v = count * cost
            total[i] += v
            analytic[i] += count * a
            if group in g_index:
                by_group[i, g_index[group]] += v
            if key in k_index:
                by_key[i, k_index[key]] += v
    return _Design(groups, keys, total, analytic, by_group, by_key)


# ---------------------------------------------------------------- fitting

@dataclass
class SpaceModel:
    """The fitted coefficients (see the module docstring)."""

    intercept_ms: float
    scale: float  # s: device ms per prior ms, shared
    group_ratios: dict[str, float]  # a
    key_ratios: dict[str, float]  # d
    lambda_group: float
    lambda_key: float
    analytic_ratio: float = 0.0  # t: device ms per analytic ms, on top of the prior's terms
    loo: dict[str, float] = field(default_factory=dict)  # leave-one-out errors on the rows kept
    outliers: list[int] = field(default_factory=list)  # indices of the rows dropped as wild

    def layer_ms(self, key: str, info: LayerInfo) -> float:
        """The device ms one layer of ``key`` adds."""
        ratio = self.scale + self.group_ratios.get(info.group, 0.0) + self.key_ratios.get(key, 0.0)
        return info.cost * ratio + info.analytic * self.analytic_ratio

    def to_json(self) -> dict[str, Any]:
        return {"intercept_ms": self.intercept_ms, "scale": self.scale, "group_ratios": self.group_ratios,
                "key_ratios": self.key_ratios, "lambda_group": _finite(self.lambda_group),
                "lambda_key": _finite(self.lambda_key), "analytic_ratio": self.analytic_ratio, "loo": self.loo,
                "outliers": self.outliers}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "SpaceModel":
        return cls(float(d["intercept_ms"]), float(d["scale"]), {k: float(v) for k, v in d["group_ratios"].items()},
                   {k: float(v) for k, v in d["key_ratios"].items()}, _inf(d["lambda_group"]), _inf(d["lambda_key"]),
                   float(d.get("analytic_ratio", 0.0)), d.get("loo", {}), list(d.get("outliers", [])))


def _finite(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def _inf(x: float | None) -> float:
    return np.inf if x is None else float(x)


def _ridge(M: np.ndarray, y: np.ndarray, penalty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ridge solution and exact leave-one-out residuals.

    Columns with penalty 0 are free, with an infinite penalty dropped. With more
    penalised columns than rows it works in the n x n (dual) form: the free
    columns are projected out and ``H = P_F + K (K + I)^-1`` with ``K`` the
    projected kernel of the penalised columns scaled by ``1/sqrt(penalty)``.
    """
    n = len(y)
    free, pen = penalty == 0, np.isfinite(penalty) & (penalty > 0)
    F = M[:, free]
    X = M[:, pen] / np.sqrt(penalty[pen])
    w = np.zeros(M.shape[1])
    if X.shape[1] <= n:
        A = np.column_stack([F, X])
        G = np.linalg.pinv(A.T @ A + np.diag(np.r_[np.zeros(F.shape[1]), np.ones(X.shape[1])]))
        coef = G @ A.T @ y
        hat = np.einsum("ij,jk,ik->i", A, G, A)
        fitted = A @ coef
        w[free], w[pen] = coef[:F.shape[1]], coef[F.shape[1]:] / np.sqrt(penalty[pen])
    else:
        Fp = np.linalg.pinv(F)
        Q = np.eye(n) - F @ Fp
        QX = Q @ X
        K = QX @ QX.T
        S = K @ np.linalg.inv(K + np.eye(n))  # smoother of the projected part
        hat = np.einsum("ii->i", F @ Fp) + np.diag(S)
        alpha = np.linalg.solve(K + np.eye(n), Q @ y)
        wx = QX.T @ alpha
        beta = Fp @ (y - X @ wx)
        fitted = F @ beta + X @ wx
        w[free], w[pen] = beta, wx / np.sqrt(penalty[pen])
    return w, (y - fitted) / np.clip(1.0 - hat, 1e-9, None)


def _errors(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    rel = np.abs(pred - y) / np.maximum(np.abs(y), 1e-9)
    return {"mape": float(rel.mean()), "within_10": float((rel <= 0.10).mean()),
            "rmse_ms": float(np.sqrt(np.mean((pred - y) ** 2)))}


def fit_space_model(bag_list: list[Counter], y: Sequence[float], info: dict[str, LayerInfo]) -> SpaceModel:
    """Fit :class:`SpaceModel` on measured architectures (their key bags) and latencies ``y`` (ms)."""
    y = np.asarray(y, dtype=float)
    # An architecture in which nothing runs (e.g. a disconnected NAS-Bench-201 cell, pruned) says nothing about
    # layer costs, and its near-zero time would pull the intercept and the penalty choice away from the rest.
    runs = np.array([bool(b) for b in bag_list])
    if not runs.all() and runs.sum() >= MIN_ROWS:
        bag_list, y = [b for b, r in zip(bag_list, runs) if r], y[runs]
    if len(y) < MIN_ROWS:
        raise PredictorError(f"{len(y)} measured architectures are too few; measure at least {MIN_ROWS}")
    d = _design(bag_list, info)
    # Work in units where the typical prior total and latency are 1, so one penalty grid fits every device.
    p_unit, y_unit = float(np.mean(d.total)) or 1.0, float(np.mean(y)) or 1.0
    # A table prior gets the analytic cost as a second free term; an analytic prior would repeat itself.
    two_priors = not np.allclose(d.total, d.analytic * (d.total.sum() / max(d.analytic.sum(), 1e-12)))
    fixed = [np.ones(len(y)), d.total / p_unit] + ([d.analytic / float(np.mean(d.analytic))] if two_priors else [])
    M = np.column_stack([*fixed, d.by_group / p_unit, d.by_key / p_unit])
    yn = y / y_unit
    n_fixed, n_g, n_k = len(fixed), d.by_group.shape[1], d.by_key.shape[1]

    def select(rows: np.ndarray):
        """The simplest penalties (largest, key level first) whose LOO error is within one standard error
        of the best: with few noisy rows the minimum itself is noisy (the one-standard-error rule)."""
        fits = []
        for lg in _LAMBDAS:
            for lk in _LAMBDAS:
                penalty = np.concatenate([np.zeros(n_fixed), np.full(n_g, lg), np.full(n_k, lk)])
                w, loo = _ridge(M[rows], yn[rows], penalty)
                sq = loo ** 2
                fits.append((float(sq.mean()), float(sq.std() / np.sqrt(len(sq))), lg, lk, w, loo))
        err, se, *_ = min(fits, key=lambda f: f[0])
        simplest = max((f for f in fits if f[0] <= err + se), key=lambda f: (f[3], f[2]))
        return simplest[0], *simplest[2:]

    inliers = np.ones(len(y), dtype=bool)
    _, lg, lk, w, loo = select(inliers)
    # A measurement the model misses by far more than it misses the others (a busy phone, a typo) is dropped
    # once and the fit repeated: robust to the few wild rows real device data has.
    scale = 1.4826 * float(np.median(np.abs(loo)))
    wild = np.abs(loo) > _OUTLIER_SIGMAS * max(scale, 1e-12)
    if wild.any() and wild.sum() <= _MAX_OUTLIER_SHARE * len(y) and len(y) - wild.sum() >= MIN_ROWS:
        inliers = ~wild
        _, lg, lk, w, loo = select(inliers)
    ratio = y_unit / p_unit  # a coefficient on a prior column, in device ms per prior ms
    return SpaceModel(
        intercept_ms=float(w[0] * y_unit), scale=float(w[1] * ratio),
        group_ratios={g: float(v * ratio) for g, v in zip(d.groups, w[n_fixed:n_fixed + n_g]) if v != 0},
        key_ratios={k: float(v * ratio) for k, v in zip(d.keys, w[n_fixed + n_g:]) if v != 0},
        lambda_group=lg, lambda_key=lk,
        analytic_ratio=float(w[2] * y_unit / float(np.mean(d.analytic))) if two_priors else 0.0,
        loo=_errors(y[inliers] - loo * y_unit, y[inliers]),
        outliers=[int(i) for i in np.flatnonzero(~inliers)],
    )


def predict_bags(model: SpaceModel, bag_list: list[Counter], info: dict[str, LayerInfo]) -> np.ndarray:
    """Predicted latencies (ms) of architectures given as key bags."""
    weight = {k: model.layer_ms(k, i) for k, i in info.items()}
    return np.array([model.intercept_ms + sum(n * weight[k] for k, n in b.items()) for b in bag_list])


# ---------------------------------------------------------------- choosing what to measure

def select_random(n_candidates: int, samples: int, seed: int = 0) -> list[int]:
    """``samples`` distinct candidate indices drawn uniformly with ``seed``."""
    return sorted(random.Random(seed).sample(range(n_candidates), min(samples, n_candidates)))


def select_active(bag_list: list[Counter], info: dict[str, LayerInfo], samples: int,
                  ridge: float = 1e-2) -> list[int]:
    """Greedy D-optimal picks over group-level features (no latencies needed); see the module docstring."""
    d = _design(bag_list, info)
    Z = np.column_stack([np.ones(len(bag_list)), d.by_group])
    Z[:, 1:] /= np.maximum(Z[:, 1:].std(axis=0), 1e-12)
    Z[:, 1:] -= Z[:, 1:].mean(axis=0)
    inv = np.eye(Z.shape[1]) / ridge
    chosen: list[int] = []
    taken = np.zeros(len(Z), dtype=bool)
    for _ in range(min(samples, len(Z))):
        var = np.einsum("ij,jk,ik->i", Z, inv, Z)
        var[taken] = -np.inf
        i = int(np.argmax(var))
        chosen.append(i)
        taken[i] = True
        z = Z[i]
        u = inv @ z
        inv -= np.outer(u, u) / (1.0 + z @ u)  # Sherman-Morrison
    return chosen


def suggest_archs(space: SearchSpace, archs: Sequence[Any], count: int, store: Store | None = None,
                  reference: str = "local") -> tuple[list[int], str]:
    """Indices of the ``count`` of ``archs`` most worth measuring (:func:`select_active`), and the prior used."""
    bag_list = bags(space, archs)
    prior = PriorCosts.load(space, store, reference)
    info = layer_info(space, prior, {k for b in bag_list for k in b})
    return select_active(bag_list, info, count), prior.source


# ---------------------------------------------------------------- calibration, storage, prediction

@dataclass
class SpaceCalibration:
    """A stored space calibration: the model, the per-key weights it implies, and its report."""

    device: str
    space: str
    params: dict[str, Any]
    prior: str
    model: SpaceModel
    weights: dict[str, float]  # layer key -> device ms (every unique layer of the space)
    fallback_per_analytic_ms: float  # for layers outside the space's table: device ms per analytic ms
    report: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"format": SPACE_FORMAT, "device": self.device, "space": self.space, "params": self.params,
                "prior": self.prior, "model": self.model.to_json(), "weights": self.weights,
                "fallback_per_analytic_ms": self.fallback_per_analytic_ms, "report": self.report}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "SpaceCalibration":
        if d.get("format") != SPACE_FORMAT:
            raise PredictorError(f"stored calibration has format {d.get('format')}, expected {SPACE_FORMAT}; "
                                 "run `latprof calibrate --space ...` again")
        return cls(d["device"], d["space"], d["params"], d["prior"], SpaceModel.from_json(d["model"]),
                   {k: float(v) for k, v in d["weights"].items()}, float(d["fallback_per_analytic_ms"]), d["report"])


def calibrate_space(device: str, space: SearchSpace, rows: list[SpaceRow], store: Store, *,
                    samples: int | None = None, select: str = "random", seed: int = 0, reference: str = "local",
                    notify: Callable[[str], None] = lambda _: None) -> SpaceCalibration:
    """Fit and store ``device``'s predictor for ``space`` from measured rows (``samples`` of them, if given).

    Rows not used for fitting are predicted and reported as held out.
    """
    prior = PriorCosts.load(space, store, reference)
    archs = [space.parse(r.arch) for r in rows]
    bag_list = bags(space, archs)
    unique = space.unique_layer_configs()
    info = layer_info(space, prior, {k for b in bag_list for k in b} | {l.layer_key() for l in unique})
    if samples is None or samples >= len(rows):
        chosen = list(range(len(rows)))
    elif select == "active":
        chosen = select_active(bag_list, info, samples)
    elif select == "random":
        chosen = select_random(len(rows), samples, seed)
    else:
        raise PredictorError(f"unknown selection {select!r}; use random or active")
    y = np.array([r.latency_ms for r in rows])
    model = fit_space_model([bag_list[i] for i in chosen], y[chosen], info)
    report: dict[str, Any] = {"rows": len(rows), "fitted_on": len(chosen), "select": select, "seed": seed,
                              "prior": prior.source, "leave_one_out": model.loo,
                              "outliers": [rows[chosen[i]].arch for i in model.outliers],
                              "fitted_archs": [rows[i].arch for i in chosen]}
    held = np.setdiff1d(np.arange(len(rows)), chosen)
    if len(held):
        report["held_out"] = ranking_report(predict_bags(model, [bag_list[i] for i in held], info), y[held])
    weights = {k: model.layer_ms(k, i) for k, i in info.items()}
    fallback = prior.analytic_scale * model.scale + model.analytic_ratio
    result = SpaceCalibration(device, space.name, space.params(), prior.source, model, weights, fallback, report)
    with store.connection:
        store.connection.execute(
            "INSERT INTO predictors (device, space, format, coefficients, report, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (device, space.name, SPACE_FORMAT, json.dumps(result.to_json()), json.dumps(report),
             datetime.now(timezone.utc).isoformat(timespec="seconds")),
        )
    notify(f"stored the {space.name} predictor of {device} ({len(chosen)} architectures, prior {prior.source})")
    return result


def ranking_report(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """MAPE, share within ±10%, RMSE, Spearman's rho and Kendall's tau of predictions against measurements."""
    from scipy.stats import kendalltau, spearmanr

    out = _errors(pred, y)
    out["spearman_rho"] = float(spearmanr(pred, y)[0]) if len(y) > 2 else float("nan")
    out["kendall_tau"] = float(kendalltau(pred, y)[0]) if len(y) > 2 else float("nan")
    out["n"] = int(len(y))
    return out


def load_space_calibration(device: str, space: str, store: Store) -> SpaceCalibration | None:
    """The latest space calibration of ``device`` for ``space``, or None."""
    row = store.connection.execute(
        "SELECT coefficients FROM predictors WHERE device = ? AND space = ? AND format = ? ORDER BY id DESC LIMIT 1",
        (device, space, SPACE_FORMAT),
    ).fetchone()
    return SpaceCalibration.from_json(json.loads(row[0])) if row else None


class SpacePredictor:
    """Latency on a device calibrated for one space: ``predict`` (with band and layers) and ``predict_many``."""

    def __init__(self, calibration: SpaceCalibration) -> None:
        self.calibration = calibration
        self.device, self.space = calibration.device, calibration.space
        self._space = get_space(calibration.space, **calibration.params)
        self._weights = dict(calibration.weights)
        self._band = float(calibration.report.get("leave_one_out", {}).get("mape", 0.1))

    @property
    def space_params(self) -> dict[str, Any]:
        """The parameters of the space the calibration was fitted for (e.g. ``{"resolution": 32}``)."""
        return dict(self.calibration.params)

    def _weight(self, layer: LayerConfig) -> float:
        key = layer.layer_key()
        w = self._weights.get(key)
        if w is None:
            w = self._weights[key] = analytic_ms(layer) * self.calibration.fallback_per_analytic_ms
        return w

    def predict(self, arch):
        """Predicted latency of ``arch`` (an architecture of the space or its string) with per-layer rows."""
        from latprof.predict import LayerPrediction, Prediction

        if isinstance(arch, str):
            arch = self._space.parse(arch)
        rows = [LayerPrediction(name, layer.layer_key(), self._weight(layer), "calibrated")
                for name, layer in self._space.named_layers(arch)]
        overhead = self.calibration.model.intercept_ms
        total = overhead + sum(r.ms for r in rows)
        return Prediction(total, total * (1 - self._band), total * (1 + self._band), rows, overhead, self.device)

    def predict_many(self, archs: Sequence[Any]) -> np.ndarray:
        """Predicted latencies (ms) of many architectures."""
        b, weight, layers = self.calibration.model.intercept_ms, self._weight, self._space.layers
        return np.array([b + sum(weight(layer) for layer in layers(a)) for a in archs], dtype=np.float64)

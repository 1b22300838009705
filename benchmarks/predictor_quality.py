"""Issue 16's quality bar: latprof against simple proxies, everything side by side in one run.

Parts (``--part``; ``all`` runs each in turn):

* ``few-shot``: the phones of the published per-architecture data shipped in
  ``latprof/data/device_configs/published/`` (HELP / HW-NAS-Bench: NAS-Bench-201 and FBNet on pixel2,
  samsung_a50, pixel3, raspi4). For each space, phone, N in ``--ns`` and seed: N architectures drawn at
  random are "measured" (their published latency), every other row is held out. latprof is fitted on the
  N rows alone (leave-one-device-out: nothing else of the target phone, see :func:`_latprof_fit`), next to
  the baselines of :mod:`latprof.predictor.baselines` on the same rows: FLOPs (multiply-adds; it ranks by
  them, the fit sets its ms), the op-kind-count model (one non-negative cost per operator family + an
  intercept, relative error) and one-hot ridge (an additive model of the decisions, penalty by exact
  leave-one-out). N = 0: latprof's prior alone and FLOPs' ranking; the fitted baselines have nothing to fit.
  Figures on the held-out rows: Spearman's rho, Kendall's tau over every row; MAPE and the share within
  ±10% over rows of at least 0.5 ms (HW-NAS-Bench times its disconnected NAS-Bench-201 cells at ~0.005
  ms: a relative error of that means nothing; for the same reason training rows under 0.5 ms are not fitted
  on, by any method). A constant prediction ranks nothing and counts as rho = tau = 0. Per phone also: the
  additive models fitted on every row and scored in-sample (latprof's per-layer model and one-hot ridge:
  what an additive model can explain at all, the "ceiling" of the bar) and, for whole-ms columns, the rho
  of the latencies with themselves rounded (the rounding ceiling).
  NAS-Bench-201 form per phone, fixed by where the column was measured (not by its result): HELP's own
  pixel2 / samsung_a50 run every non-``none`` edge (``nasbench201``), HW-NAS-Bench's pixel3 / raspi4 are
  pruned (``nasbench201-pruned``); ``--every-form`` runs each phone in both.
  The bar: latprof's mean rho above FLOPs' and the op-count model's at every N >= 10, and at N = 10 rho
  >= 0.93 wherever an additive model fitted on all rows reaches 0.93.
* ``host``: ``--archs`` held-out random MnasNet architectures (never in the calibration set), exported
  with the converter (``latprof arch export``'s path), each timed against MobileNetV2 round by round in one
  session (``latprof measure A B --reference mobilenet-v2``'s code), ``--repeat`` times; the predicted ratio
  (latprof, and FLOPs / op-count fits on the host's calibration set) against the measured one, with the
  noise floor (the first half of the rounds against the second). Needs ``--db`` (benchmarks/lut_build.py).
* ``keras``: the same for Keras applications (weights=None, 224x224) predicted from their .tflite files:
  MobileNetV3Small/Large, EfficientNetB0/B2, InceptionV3, Xception, ResNet101V2, DenseNet169, ConvNeXtTiny.
* ``published``: Pixel 1/2/3 from the published whole-model rows, each family predicted by a fit on the
  others (prior ``auto``), against a FLOPs-only fit; also only the rows whose runtime another family shares.
* ``speed``: one ``predict`` and ``predict_many`` (sampled architectures, token rows, parsed strings) on the
  host predictor, best of 5, with a fixed numpy workload timed before and after.

    python benchmarks/predictor_quality.py [--part few-shot|host|keras|published|speed|all] [--db HOST_DB]
        [--seeds 5] [--ns 0 5 10 20 50 100] [--spaces nasbench201 nasbench201-pruned fbnet] [--devices pixel2 ...]
        [--every-form] [--archs 30] [--rounds 6] [--repeat 2] [--dtype float32|int8] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from latprof.data import PUBLISHED
from latprof.errors import LatprofError
from latprof.predictor import baselines, error_summary
from latprof.space import SearchSpace, get_space
from latprof.store import Store

PARTS = ("few-shot", "host", "keras", "published", "speed")
SPACES = ("nasbench201", "nasbench201-pruned", "fbnet")
NS = (0, 5, 10, 20, 50, 100)
NB201_FORM = {"pixel2": "nasbench201", "samsung_a50": "nasbench201",  # HELP's own measurements
              "pixel3": "nasbench201-pruned", "raspi4": "nasbench201-pruned"}  # HW-NAS-Bench's
MIN_MS = 0.5
BAR_MIN_N, BAR_N, BAR_RHO = 10, 10, 0.93
METHODS = ("latprof", "flops", "op_counts", "onehot")
METRICS = ("spearman_rho", "kendall_tau", "mape", "within_10")

Predict = Callable[[Sequence[Any]], np.ndarray]


# ---------------------------------------------------------------- latprof's fit

def _latprof_fit(space: SearchSpace, device: str, train_archs: Sequence[Any], train_ms: np.ndarray,
                 store: Store) -> Predict:
    """latprof fitted for ``device`` on ``train_archs`` measured at ``train_ms``; returns ``predict(archs) -> ms``.

    Leave-one-device-out: ``fit_predictor``'s default prior (``auto``) is, in this scratch store, the mix of
    the devices latprof knows, built without ``device``; it uses nothing of ``device`` but these rows. With no
    rows it is the prior alone (its ms scale is arbitrary; ranks only).
    """
    from latprof.predictor import Observation, fit_predictor

    rows = [Observation(a, float(ms)) for a, ms in zip(train_archs, train_ms)]
    return fit_predictor(store, device, space, observations=rows).predictor.predict_many


# ---------------------------------------------------------------- data and features

def load_columns(family: str) -> tuple[list[str], dict[str, np.ndarray]]:
    """A published file's architecture strings and its latency column (ms) per device."""
    with (PUBLISHED / f"{family}_latency.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    devices = [c[:-3] for c in rows[0] if c.endswith("_ms")]
    return [r["arch"] for r in rows], {d: np.array([float(r[f"{d}_ms"]) for r in rows]) for d in devices}


class Features:
    """What the baselines need of every architecture of one space's file."""

    def __init__(self, space: SearchSpace, archs: list[Any]) -> None:
        self.space, self.archs = space, archs
        self.macs = np.array([space.count_params_macs(a)[1] for a in archs], float)
        self.counts, self.families = baselines.op_counts(space, archs)
        self.tokens = space.encode(archs)
        self.n_choices = [len(d.choices) for d in space.decisions()]


def draw(n_rows: int, n: int, seed: int) -> np.ndarray:
    """``n`` distinct row indices at random (``random.Random(seed)``, as latprof's random selection draws)."""
    return np.array(sorted(random.Random(seed).sample(range(n_rows), min(n, n_rows))), dtype=int)


# ---------------------------------------------------------------- one study

def _scores(pred: np.ndarray | None, y: np.ndarray, rank_by: np.ndarray | None = None) -> dict[str, float]:
    """Rank figures over every row (of ``rank_by`` when given: FLOPs ranks by multiply-adds), relative ones over
    rows of at least MIN_MS; a constant prediction ranks nothing (0)."""
    if pred is None:
        return dict.fromkeys(METRICS, float("nan"))
    ranks = error_summary(pred if rank_by is None else rank_by, y)
    rel = error_summary(pred, y, min_ms=MIN_MS)
    constant = np.ptp(pred if rank_by is None else rank_by) == 0
    return {"spearman_rho": 0.0 if constant else ranks["spearman_rho"],
            "kendall_tau": 0.0 if constant else ranks["kendall_tau"], "mape": rel["mape"],
            "within_10": rel["within_10"]}


def one_split(feats: Features, y: np.ndarray, train: np.ndarray, device: str, store: Store) -> dict[str, dict]:
    """Every method fitted on ``train`` (rows under MIN_MS dropped), scored on every other row."""
    test = np.setdiff1d(np.arange(len(y)), train)
    fit = train[y[train] >= MIN_MS]
    archs, space = feats.archs, feats.space
    latprof = _latprof_fit(space, device, [archs[i] for i in fit], y[fit], store)
    out = {"latprof": _scores(latprof([archs[i] for i in test]), y[test])}
    if len(fit) == 0:
        out["flops"] = _scores(None, y[test]) | {k: v for k, v in _scores(feats.macs[test], y[test]).items()
                                                 if k in ("spearman_rho", "kendall_tau")}
        out["op_counts"] = out["onehot"] = _scores(None, y[test])
        return out
    flops = baselines.fit_flops(feats.macs[fit], y[fit])
    out["flops"] = _scores(flops.predict(feats.macs[test]), y[test], rank_by=feats.macs[test])
    counts = baselines.fit_op_counts(feats.counts[fit], y[fit])
    out["op_counts"] = _scores(counts.predict(feats.counts[test]), y[test])
    if len(fit) >= 2:
        onehot = baselines.fit_onehot(feats.tokens[fit], feats.n_choices, y[fit])
        out["onehot"] = _scores(onehot.predict(feats.tokens[test]), y[test])
    else:
        out["onehot"] = _scores(None, y[test])
    return out


def ceilings(feats: Features, y: np.ndarray, device: str, store: Store) -> dict[str, float]:
    """In-sample rho of the additive models fitted on every row (and of the whole-ms rounding)."""
    keep = y >= MIN_MS
    idx = np.flatnonzero(keep)
    latprof = _latprof_fit(feats.space, device, [feats.archs[i] for i in idx], y[idx], store)
    onehot = baselines.fit_onehot(feats.tokens[idx], feats.n_choices, y[idx])
    out = {"additive_latprof_all_rows": float(spearmanr(latprof(feats.archs), y)[0]),
           "additive_onehot_all_rows": float(spearmanr(onehot.predict(feats.tokens), y)[0]),
           "flops_rho": float(spearmanr(feats.macs, y)[0])}
    if np.all(y == np.round(y)):  # whole ms: the true latencies spread over each rounding interval
        rng = np.random.default_rng(0)
        out["whole_ms_rho"] = float(np.mean([spearmanr(y + rng.uniform(-0.5, 0.5, len(y)), y)[0] for _ in range(5)]))
    return out


def study(feats: Features, device: str, y: np.ndarray, ns: Sequence[int], seeds: int, store: Store) -> dict:
    """One phone in one space: the ceilings, then per N every method's mean and std over seeds."""
    res: dict[str, Any] = {"ceilings": ceilings(feats, y, device, store), "by_n": {}}
    print_header(feats.space.name, device, len(y), res["ceilings"])
    for n in ns:
        runs = [one_split(feats, y, draw(len(y), n, seed), device, store) for seed in range(seeds)]
        res["by_n"][str(n)] = {
            m: {k: _mean_std([r[m][k] for r in runs]) for k in METRICS} | {"rho_per_seed": [r[m]["spearman_rho"]
                                                                                         for r in runs]}
            for m in METHODS}
        print_row(n, res["by_n"][str(n)])
    res["bar"] = bar(res, ns)
    return res


def _mean_std(values: list[float]) -> list[float]:
    v = np.array(values, float)
    if np.all(np.isnan(v)):
        return [float("nan"), float("nan")]
    return [float(np.nanmean(v)), float(np.nanstd(v))]


# ---------------------------------------------------------------- the bar and the printout

def bar(res: dict, ns: Sequence[int]) -> dict[str, Any]:
    """Where latprof misses the bar (mean rho); ``rho_needed`` only where an all-rows additive model reaches it."""
    rho = {n: {m: res["by_n"][str(n)][m]["spearman_rho"][0] for m in METHODS} for n in ns}
    losses = [f"N={n}: {m} {r[m]:.3f} >= latprof {r['latprof']:.3f}" for n, r in rho.items() if n >= BAR_MIN_N
              for m in ("flops", "op_counts") if not r["latprof"] > r[m]]
    c = res["ceilings"]
    ceiling = max(c["additive_latprof_all_rows"], c["additive_onehot_all_rows"])
    out: dict[str, Any] = {"beats_flops_and_op_counts": not losses if any(n >= BAR_MIN_N for n in ns) else None,
                           "losses": losses, "ceiling_rho": ceiling, "rho_needed": ceiling >= BAR_RHO}
    if BAR_N in rho:
        out["latprof_rho_at_n10"] = rho[BAR_N]["latprof"]
        out["rho_met"] = (rho[BAR_N]["latprof"] >= BAR_RHO) if ceiling >= BAR_RHO else None
    return out


_LABELS = {"latprof": "latprof", "flops": "FLOPs", "op_counts": "op-count NNLS", "onehot": "one-hot ridge"}


def print_header(space: str, device: str, n_rows: int, c: dict[str, float]) -> None:
    extra = f"; whole-ms rounding rho {c['whole_ms_rho']:.3f}" if "whole_ms_rho" in c else ""
    print(f"\n{space} / {device} ({n_rows} archs): additive on all rows rho {c['additive_latprof_all_rows']:.3f} "
          f"(latprof layers) / {c['additive_onehot_all_rows']:.3f} (one-hot); FLOPs rho {c['flops_rho']:.3f}{extra}")
    print(f"  {'N':>3} " + " ".join(f"| {_LABELS[m]:<29}" for m in METHODS))
    print(f"  {'':>3} " + " ".join(f"| {'rho ± sd':>11} {'tau':>5} {'MAPE':>5} {'±10%':>5}" for _ in METHODS))


def _cell(stats: dict[str, list[float]]) -> str:
    rho, tau, mape, w10 = (stats[k] for k in METRICS)
    if np.isnan(rho[0]):
        return f"| {'–':>11} {'–':>5} {'–':>5} {'–':>5}"
    pct = (lambda v: f"{v:5.0%}" if np.isfinite(v) else f"{'–':>5}")
    return f"| {rho[0]:.3f} ±{rho[1]:.3f} {tau[0]:5.3f} {pct(mape[0])} {pct(w10[0])}"


def print_row(n: int, row: dict[str, dict]) -> None:
    print(f"  {n:>3} " + " ".join(_cell(row[m]) for m in METHODS))
    sys.stdout.flush()


def print_bar(results: dict[str, dict[str, dict]]) -> None:
    print(f"\nQuality bar 1 (few-shot): latprof's mean rho > FLOPs' and op-count's at every N >= {BAR_MIN_N}; at "
          f"N = {BAR_N} rho >= {BAR_RHO} where an additive model on all rows reaches {BAR_RHO}")
    print(f"  {'space / device':<32} {'ceiling':>7} {'N=10':>6} {'>=0.93':>7} {'beats proxies':>13}  losses")
    for space, devices in results.items():
        for device, res in devices.items():
            b = res["bar"]
            n10 = f"{b['latprof_rho_at_n10']:.3f}" if "latprof_rho_at_n10" in b else "–"
            need = "n/a" if not b["rho_needed"] else _yes_no(b.get("rho_met"), "met", "MISSED")
            beats = _yes_no(b["beats_flops_and_op_counts"], "yes", "NO")
            print(f"  {space + ' / ' + device:<32} {b['ceiling_rho']:>7.3f} {n10:>6} {need:>7} {beats:>13}  "
                  + "; ".join(b["losses"]))


def _yes_no(value: bool | None, yes: str, no: str) -> str:
    return "–" if value is None else yes if value else no


# ---------------------------------------------------------------- parts

def few_shot(args: argparse.Namespace, out: dict) -> None:
    results: dict[str, dict[str, dict]] = out.setdefault("few-shot", {})
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "scratch.db") as store:
        for space_name in args.spaces:
            space = get_space(space_name, **({"resolution": 32} if space_name == "fbnet" else {}))
            strings, columns = load_columns(space.family)
            devices = [d for d in (args.devices or columns) if d in columns and
                       (args.every_form or space.family != "nasbench201" or NB201_FORM.get(d) == space_name)]
            if not devices:
                continue
            t0 = time.perf_counter()
            feats = Features(space, [space.parse(a) for a in strings])
            varying = [f for f, spread in zip(feats.families, np.ptp(feats.counts, axis=0)) if spread > 0]
            print(f"\n=== {space_name}: {len(strings)} architectures, features in {time.perf_counter() - t0:.1f} s; "
                  f"op-count families that vary: {', '.join(varying)}")
            for device in devices:
                t1 = time.perf_counter()
                y = columns[device]
                results.setdefault(space_name, {})[device] = study(feats, device, y, args.ns, args.seeds, store)
                print(f"  ({time.perf_counter() - t1:.0f} s)")
                if args.json:
                    args.json.write_text(json.dumps(out, indent=1))
    print_bar(results)


# ---------------------------------------------------------------- host, keras: ratios to MobileNetV2, interleaved

HELD_OUT_SEED = 9_000_000  # far from latprof.lut.CALIBRATION_SEED: never in the calibration set
KERAS_MODELS = ("MobileNetV3Small", "MobileNetV3Large", "EfficientNetB0", "EfficientNetB2", "InceptionV3", "Xception",
                "ResNet101V2", "DenseNet169", "ConvNeXtTiny")


def _host_predictor(args: argparse.Namespace):
    """The host's fitted predictor and its store (``--db``), or a usage error naming the command to make one."""
    from latprof.predictor import load_predictor

    if args.db is None or not args.db.is_file():
        raise SystemExit("the host, keras and speed parts need --db DB with a host table and fitted predictor; "
                         "make one with `python benchmarks/lut_build.py --db DB`")
    store = Store(args.db, writable=False)
    return load_predictor("local", "mnasnet", store=store, dtype=args.dtype), store


def _interleaved(paths: Sequence[Path], reference: Path, rounds: int) -> list[dict[str, float]]:
    """Each model's latency over the reference's, timed round by round in one session (``latprof measure
    A B --reference R``'s code), with the noise floor: the first half of the rounds against the second."""
    from latprof.devices import open_device
    from latprof.measure import build_request, measure_many

    with open_device("local") as device:
        records = measure_many(list(paths), device, build_request(device), reference=reference, rounds=rounds)
    out = []
    for record in records[1:]:
        ratios = np.array(record.reference_ratio["rounds"])
        half = len(ratios) // 2
        out.append({"ratio": float(np.median(ratios)),
                    "halves": float(np.median(ratios[:half]) / np.median(ratios[half:]) - 1) if half else np.nan})
    return out


def _ratio_table(names: Sequence[str], measured: list[dict[str, float]], predicted: dict[str, np.ndarray],
                 run: int) -> dict[str, Any]:
    """Per method: the share of models whose predicted ratio is within 5% / 10% of the measured one."""
    truth = np.array([m["ratio"] for m in measured])
    halves = np.abs([m["halves"] for m in measured])
    summary = {"noise_floor": {"mape": float(np.nanmean(halves)), "within_5": float(np.nanmean(halves <= 0.05)),
                               "within_10": float(np.nanmean(halves <= 0.10))}}
    print(f"  run {run}: noise floor (first half of the rounds against the second): MAPE "
          f"{100 * summary['noise_floor']['mape']:.1f}%, within 5% {summary['noise_floor']['within_5']:.0%}")
    print(f"  {'method':<16}{'within 5%':>10}{'within 10%':>11}{'MAPE':>7}{'Spearman':>10}")
    for method, ratio in predicted.items():
        e = error_summary(ratio, truth)
        summary[method] = e
        print(f"  {method:<16}{e['within_5']:>10.0%}{e['within_10']:>11.0%}{100 * e['mape']:>6.1f}%"
              f"{e['spearman_rho']:>10.3f}")
    summary["models"] = [{"model": n, **m, **{k: float(v[i]) for k, v in predicted.items()}}
                         for i, (n, m) in enumerate(zip(names, measured))]
    return summary


def _baseline_ratios(store: Store, paths: Sequence[Path], reference: Path,
                     dtype: str = "float32") -> dict[str, np.ndarray]:
    """FLOPs and op-count fits on the host's calibration set (of ``dtype``), as ratios to the reference."""
    from latprof.lut import load_calibration, table_space
    from latprof.space import get_space, layer_operators, read_tflite_ops, tflite_operators

    counts = baselines.family_counts

    rows = load_calibration(store.connection, "local", table_space("mnasnet", dtype))
    archs = [get_space("mnasnet", **r.params).parse(r.arch) for r in rows]
    y = np.array([r.median_ms for r in rows])
    ops = [[o for layer in get_space("mnasnet").layers(a) for o in layer_operators(layer)] for a in archs]
    flops = baselines.fit_flops(np.array([sum(o.macs for o in x) for x in ops], float), y)
    count_model = baselines.fit_op_counts(np.array([counts(x) for x in ops]), y)
    target = [tflite_operators(read_tflite_ops(p)) for p in [reference, *paths]]
    f = flops.predict(np.array([sum(o.macs for o in x) for x in target], float))
    c = count_model.predict(np.array([counts(x) for x in target]))
    return {"FLOPs fit": f[1:] / f[0], "op-kind counts": c[1:] / c[0]}


def host(args: argparse.Namespace, out: dict) -> None:
    """Held-out random MnasNet architectures, exported with the converter, against MobileNetV2."""
    from latprof.space import export_many, get_space

    if args.dtype != "float32":
        raise SystemExit("--part host is float32; the int8 held-out architectures are benchmarks/int8_quality.py's")
    predictor, store = _host_predictor(args)
    space = get_space("mnasnet", **predictor.space_params)
    rng = random.Random(HELD_OUT_SEED)
    archs = [space.sample(rng) for _ in range(args.archs)]
    folder = Path(tempfile.mkdtemp(prefix="latprof-quality-host-"))
    reference_arch = space.parse("mobilenet-v2")
    print(f"\n=== host, {space.name} {space.params()}: {len(archs)} held-out architectures (seed {HELD_OUT_SEED}), "
          f"exported with the converter, each timed against MobileNetV2 in one session ({args.rounds} rounds)")
    paths = [p for _, p in export_many([reference_arch, *archs], folder)]
    ref_ms = predictor.predict(reference_arch).latency_ms
    predicted = {"latprof": predictor.predict_many(archs) / ref_ms,
                 **_baseline_ratios(store, paths[1:], paths[0])}
    results = []
    for run in range(1, args.repeat + 1):
        measured = _interleaved(paths[1:], paths[0], args.rounds)
        results.append(_ratio_table([space.format(a)[:40] for a in archs], measured, predicted, run))
    out["host"] = {"archs": len(archs), "rounds": args.rounds, "runs": results,
                   "goal": "latprof >= 90% within 10%, >= 60% within 5%"}


def _keras_models(dtype: str) -> list[tuple[str, Path]]:
    """The Keras applications of the bar (weights=None, 224x224) in ``dtype``, converted once and cached."""
    from latprof.cache import cache_dir
    from latprof.space import keras_to_tflite, quantize_for

    out = []
    cache = cache_dir() / "keras-apps"
    cache.mkdir(parents=True, exist_ok=True)
    for name in KERAS_MODELS:
        path = cache / f"{name}-224{'' if dtype == 'float32' else '-' + dtype}.tflite"
        if not path.is_file():
            import keras

            model = getattr(keras.applications, name)(weights=None, input_shape=(224, 224, 3))
            tmp = path.with_suffix(".part")
            tmp.write_bytes(keras_to_tflite(model, quantize=quantize_for(dtype)))
            tmp.replace(path)
        out.append((name, path))
    return out


def keras_part(args: argparse.Namespace, out: dict) -> None:
    """``latprof predict model.tflite`` on Keras applications the host table never saw, against MobileNetV2."""
    from latprof.space import export_tflite, get_space, quantize_for

    predictor, store = _host_predictor(args)
    folder = Path(tempfile.mkdtemp(prefix="latprof-quality-keras-"))
    models = _keras_models(args.dtype)
    reference = export_tflite(get_space("mnasnet").parse("mobilenet-v2"), folder / "mobilenet-v2.tflite",
                              quantize=quantize_for(args.dtype))
    print(f"\n=== keras: {len(models)} Keras applications (weights=None, 224x224, {args.dtype}) predicted from their "
          f".tflite, each timed against MobileNetV2 in one session ({args.rounds} rounds)")
    ref_ms = predictor.predict(reference).latency_ms
    predictions = [predictor.predict(path) for _, path in models]
    for (name, _), p in zip(models, predictions):
        print(f"  {name:<18} predicted {p.latency_ms:8.2f} ms, {100 * p.regression_share:3.0f}% of it from the "
              f"operator regression")
    predicted = {"latprof": np.array([p.latency_ms for p in predictions]) / ref_ms,
                 **_baseline_ratios(store, [p for _, p in models], reference, args.dtype)}
    results = []
    for run in range(1, args.repeat + 1):
        measured = _interleaved([p for _, p in models], reference, args.rounds)
        results.append(_ratio_table([n for n, _ in models], measured, predicted, run))
    out["keras"] = {"models": [n for n, _ in models], "runs": results, "goal": "latprof >= 80% within 10%"}


# ---------------------------------------------------------------- published whole models, speed

def published(args: argparse.Namespace, out: dict) -> None:
    """Pixel 1/2/3 from the published whole-model rows: leave-one-family-out per row, against FLOPs-only."""
    from latprof.predictor import fit_predictor, read_observations

    print("\n=== published: Pixel phones' whole-model rows (latprof/data/device_configs/published/"
          "published_pixel_latency.csv), each family predicted by a fit on the others")
    results = out.setdefault("published", {})
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "scratch.db") as store:
        print(f"  {'device':<8}{'rows':>5}  {'method':<36}{'MAPE':>7}{'within 10%':>11}{'Spearman':>10}")
        for device in ("pixel1", "pixel2", "pixel3"):
            rows = read_observations("published", device)
            report = fit_predictor(store, device, None, observations=rows).report
            results[device] = {k: report[k] for k in report if "family_out" in k and k != "lofo_ms"}
            results[device]["prior"] = report["prior"]
            for key, label in (("leave_one_family_out", "latprof, every row"),
                               ("flops_leave_one_family_out", "FLOPs-only, every row"),
                               ("leave_one_family_out_scaled", "latprof, rows of a fitted runtime"),
                               ("flops_leave_one_family_out_scaled", "FLOPs-only, rows of a fitted runtime")):
                if key in report:
                    e = report[key]
                    print(f"  {device:<8}{e['n']:>5}  {label:<36}{100 * e['mape']:>6.1f}%{e['within_10']:>11.0%}"
                          f"{e['spearman_rho']:>10.3f}")


def _best_of(fn: Callable[[], Any], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def speed(args: argparse.Namespace, out: dict) -> None:
    """One predict and predict_many on the host predictor, best of 5, next to a fixed numpy workload timed in
    between (the machine's speed right now: a shared host drifts)."""
    from latprof.space import get_space

    predictor, _ = _host_predictor(args)
    space = get_space("mnasnet", **predictor.space_params)
    rng = random.Random(1)
    archs = [space.sample(rng) for _ in range(20000)]
    tokens = space.encode(archs)
    parsed = [space.parse(space.format(a)) for a in archs[:2000]]
    predictor.predict_many(archs[:10])
    work = np.random.default_rng(0).random(2_000_000)
    figures = {"numpy reference (ms)": 1e3 * _best_of(lambda: np.sort(work))}
    figures["one predict (us)"] = 1e6 * _best_of(lambda: [predictor.predict(a) for a in archs[:2000]]) / 2000
    figures["predict_many, sampled archs (archs/s)"] = len(archs) / _best_of(lambda: predictor.predict_many(archs))
    figures["predict_many, token rows (archs/s)"] = len(archs) / _best_of(lambda: predictor.predict_many(tokens))
    figures["predict_many, parsed archs (archs/s)"] = len(parsed) / _best_of(lambda: predictor.predict_many(parsed))
    figures["numpy reference again (ms)"] = 1e3 * _best_of(lambda: np.sort(work))
    print("\n=== speed (best of 5; goals: one predict <= 50 us, predict_many >= 1,000,000 archs/s)")
    for name, value in figures.items():
        print(f"  {name:<42}{value:>14,.1f}")
    out["speed"] = figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=(*PARTS, "all"), default="few-shot")
    ap.add_argument("--seeds", type=int, default=5, help="random draws per N (few-shot)")
    ap.add_argument("--ns", type=int, nargs="+", default=list(NS), help="measured architectures per fit (few-shot)")
    ap.add_argument("--spaces", nargs="+", default=list(SPACES), choices=SPACES)
    ap.add_argument("--devices", nargs="+", help="phones of the published files (default: every column)")
    ap.add_argument("--every-form", action="store_true", help="each phone in both NAS-Bench-201 forms")
    ap.add_argument("--json", type=Path, help="write every figure here, as each phone finishes")
    ap.add_argument("--db", type=Path, help="host database with a table and fitted predictor (host, keras, speed)")
    ap.add_argument("--archs", type=int, default=30, help="held-out architectures (host)")
    ap.add_argument("--dtype", choices=("float32", "int8"), default="float32",
                    help="keras, speed: export the models and MobileNetV2 in this type and use the host's predictor of "
                         "it (int8: benchmarks/int8_quality.py builds one; its held-out part is this host part in int8)")
    ap.add_argument("--rounds", type=int, default=6, help="interleaved rounds per measurement (host, keras)")
    ap.add_argument("--repeat", type=int, default=2, help="measure every model this many times (host, keras)")
    args = ap.parse_args()
    if args.seeds < 1 or any(n < 0 for n in args.ns):
        ap.error("--seeds must be >= 1 and every --ns >= 0")
    start, out = time.perf_counter(), {"settings": {k: (str(v) if isinstance(v, Path) else v)
                                                   for k, v in vars(args).items()}}
    runners = {"few-shot": few_shot, "host": host, "keras": keras_part, "published": published, "speed": speed}
    for part in PARTS if args.part == "all" else (args.part,):
        try:
            runners[part](args, out)
        except LatprofError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 1
        if args.json:
            args.json.write_text(json.dumps(out, indent=1))
    print(f"\nwall time {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
* ``host``, ``keras``, ``published``, ``speed``: not in this script yet (exit code 2).

    python benchmarks/predictor_quality.py [--part few-shot] [--seeds 5] [--ns 0 5 10 20 50 100]
        [--spaces nasbench201 nasbench201-pruned fbnet] [--devices pixel2 ...] [--every-form] [--json out.json]
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


# ---------------------------------------------------------------- latprof's fit (the one place to swap)

_CALIBRATE_CACHE: dict[str, Any] = {}


def _latprof_fit(space: SearchSpace, device: str, train_archs: Sequence[Any], train_ms: np.ndarray,
                 store: Store) -> Predict:
    """latprof fitted for ``device`` on ``train_archs`` measured at ``train_ms``; returns ``predict(archs) -> ms``.

    Leave-one-device-out: this may use nothing of ``device`` but these rows, so a prior pooled from known
    devices must be built without ``device``; ``store`` is a scratch database of this run. With no rows it is
    the prior alone.

    TODO(lead, issue 16): today's code (latprof.calibrate's space calibration, analytic prior: what
    benchmarks/phone_latency.py runs). Swap the body for
    ``fit_predictor(store, device, space.name, observations=[Observation(space.format(a), ms) ...])`` and
    return its ``.predictor.predict_many``.
    """
    from latprof.calibrate import fit_space_model

    if space.name not in _CALIBRATE_CACHE:
        _CALIBRATE_CACHE[space.name] = _BagIndex(space)
    index = _CALIBRATE_CACHE[space.name]
    if len(train_archs) == 0:
        return index.predictor(0.0, lambda key, info: info.cost)
    model = fit_space_model(index.bags_of(train_archs), train_ms, index.info)
    return index.predictor(model.intercept_ms, model.layer_ms)


class _BagIndex:
    """Today's adapter's features, made once per architecture: its layer keys with their counts, and each key's
    analytic prior cost."""

    def __init__(self, space: SearchSpace) -> None:
        from latprof.calibrate import PriorCosts

        self.space, self.prior = space, PriorCosts.load(space, None, None)
        self._bags: dict[Any, Any] = {}
        self.info: dict[str, Any] = {}

    def bags_of(self, archs: Sequence[Any]) -> list[Any]:
        from latprof.calibrate import bags, layer_info

        new = [a for a in dict.fromkeys(archs) if a not in self._bags]
        if new:
            self._bags.update(zip(new, bags(self.space, new)))
            keys = {k for a in new for k in self._bags[a]} - set(self.info)
            self.info.update(layer_info(self.space, self.prior, keys))
        return [self._bags[a] for a in archs]

    def predictor(self, intercept_ms: float, layer_ms: Callable[[str, Any], float]) -> Predict:
        weights: dict[str, float] = {}

        def predict(archs: Sequence[Any]) -> np.ndarray:
            bag_list = self.bags_of(archs)
            weights.update({k: layer_ms(k, i) for k, i in self.info.items() if k not in weights})
            return np.array([intercept_ms + sum(n * weights[k] for k, n in b.items()) for b in bag_list])
        return predict


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=(*PARTS, "all"), default="few-shot")
    ap.add_argument("--seeds", type=int, default=5, help="random draws per N (few-shot)")
    ap.add_argument("--ns", type=int, nargs="+", default=list(NS), help="measured architectures per fit (few-shot)")
    ap.add_argument("--spaces", nargs="+", default=list(SPACES), choices=SPACES)
    ap.add_argument("--devices", nargs="+", help="phones of the published files (default: every column)")
    ap.add_argument("--every-form", action="store_true", help="each phone in both NAS-Bench-201 forms")
    ap.add_argument("--json", type=Path, help="write every figure here, as each phone finishes")
    args = ap.parse_args()
    if args.seeds < 1 or any(n < 0 for n in args.ns):
        ap.error("--seeds must be >= 1 and every --ns >= 0")
    start, out, missing = time.perf_counter(), {"settings": {k: (str(v) if isinstance(v, Path) else v)
                                                               for k, v in vars(args).items()}}, []
    for part in PARTS if args.part == "all" else (args.part,):
        if part == "few-shot":
            try:
                few_shot(args, out)
            except LatprofError as exc:
                print(f"Error: {exc}", file=sys.stderr)
                return 1
        else:
            print(f"\npart {part}: not implemented in this script yet")
            missing.append(part)
    print(f"\nwall time {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 2 if missing else 0


if __name__ == "__main__":
    sys.exit(main())

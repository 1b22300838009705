"""How well a phone is predicted from a few end-to-end measurements on it (latprof calibrate).

Part 1, published Pixel data: for each phone, fit on the MobileNetV2 rows and predict
the MobileNetV3 rows, and the reverse (leave-one-family-out); per-row errors, the
share within 10% and 15%, MAPE, next to the best FLOPs-only fit on the same rows.
Rows carry the runtime version of their table; both fits get one latency factor per
runtime, and rows of a runtime absent from the training rows are summarised apart.
Reference costs are real host measurements (end to end + per operator) of Keras
builds of each published model (weights=None), stored in --db and reused.

Part 2, never fitted: the 25 MnasNet-A1 multiplier x resolution points the MnasNet
authors published for Pixel 1 (latprof/data/device_configs/published/mnasnet_a1_pixel1_latency.csv),
predicted by Pixel 1's calibration from part 1, next to the FLOPs-only fit of the same rows.
Their runtime is none of the fitted ones, so they are shown on the scale of each.

Part 3, the host as its own target (unlimited ground truth): calibrate from 10
measured random MnasNet-space architectures and predict 100 held-out ones, using the
host lookup-table predictor as the reference when one is fitted (`latprof fit`),
else the op cost model. Measured in --host-rounds whole rounds; the truth is each
architecture's quickest round, and round 2 against round 1 is printed as the noise floor.

    python benchmarks/calibration_accuracy.py --db calib.db [--phones pixel1 pixel2 pixel3] [--host-archs 100]
        [--host-db HOST_DB] [--host-rounds 2] [--skip-published]
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from latprof.calibrate import (
    PUBLISHED, calibrate, fit_flops_linear, fit_kind_ratios, host_reference, read_rows, tflite_for,
)
from latprof.store import Store

MNASNET_PIXEL1 = PUBLISHED.parent / "mnasnet_a1_pixel1_latency.csv"


def _rho(pred: np.ndarray, y: np.ndarray) -> float:
    return float(spearmanr(pred, y).statistic)


def _summary(label: str, pred: np.ndarray, y: np.ndarray) -> str:
    rel = np.abs(pred / y - 1)
    return (f"{label:<34} n={len(y):3d}  within10 {np.mean(rel <= .10):6.1%}  within15 {np.mean(rel <= .15):6.1%}"
            f"  MAPE {np.mean(rel):6.1%}")


def _macs(path: Path) -> float:
    from latprof.space import read_tflite_ops

    return float(sum(op.macs() for op in read_tflite_ops(path)))


def published(store: Store, phones: list[str]) -> dict:
    """Part 1; returns each phone's stored calibration and its rows' MACs, latencies and runtimes."""
    fitted = {}
    for phone in phones:
        rows = read_rows("published", phone)
        result = calibrate(phone, rows, store)  # what `latprof calibrate --from published` stores and reports
        costs = [host_reference(tflite_for(row.spec), store)[0] for row in rows]  # measured by calibrate, stored
        x, g = np.array([c.vector() for c in costs]), np.array([c.gmacs() for c in costs])
        y, macs = (np.array([r[k] for r in result.rows], float) for k in ("measured_ms", "macs"))
        fam, rt = (np.array([r[k] for r in result.rows]) for k in ("family", "runtime"))
        names = [f"{row.spec.name} [{'README' if 'README' in row.source else 'paper'}]" for row in rows]
        runtimes = list(dict.fromkeys(rt))
        counts = ", ".join(f"{f}: {np.sum(fam == f)}" for f in np.unique(fam))
        print(f"\n=== {phone}: {len(y)} published rows ({counts})")
        for i, r in enumerate(runtimes):
            print(f"  runtime R{i}: {r} ({np.sum(rt == r)} rows)")
        for train, test in (("MobileNetV2", "MobileNetV3"), ("MobileNetV3", "MobileNetV2")):
            tr, te = fam == train, fam == test
            if tr.sum() < 2 or te.sum() == 0:
                print(f"fit on {train} -> predict {test}: skipped ({tr.sum()} training rows)")
                continue
            model = fit_kind_ratios(x[tr], y[tr], gmacs=g[tr], runtimes=rt[tr])
            flops = fit_flops_linear(macs[tr], y[tr], runtimes=rt[tr])
            ours, base = model.predict(x[te], g[te], rt[te]), flops.predict(macs[te], rt[te])
            # a held-out row's runtime seen in training: its prediction is on that runtime's scale
            seen = np.isin(rt[te], rt[tr])
            factors = ", ".join(f"R{runtimes.index(r)} {f:.3f}x" for r, f in model.runtime_factors.items())
            print(f"fit on {train} ({tr.sum()} rows) -> predict {test} ({te.sum()} rows); predicts "
                  f"R{runtimes.index(model.runtime)}{'; factors ' + factors if factors else ''}; "
                  f"shared ratio {model.shared_ratio:.2f}x, {model.shared_per_gmac:.1f} ms/GMAC, "
                  f"intercept {model.intercept_ms:.2f} ms")
            for name, r, m, p, b, s in zip(np.array(names)[te], rt[te], y[te], ours, base, seen):
                print(f"    {name:<48} R{runtimes.index(r)}{' ' if s else '*'} measured {m:7.1f}  "
                      f"latprof {p:7.1f} ({p / m - 1:+6.1%})  FLOPs {b:7.1f} ({b / m - 1:+6.1%})")
            print("  " + _summary("latprof (host ms + MACs per kind)", ours, y[te]))
            print("  " + _summary("FLOPs-only fit", base, y[te]))
            if not seen.all():
                print(f"  * runtime not among the training rows (no factor can be fitted); the {seen.sum()} others:")
                print("  " + _summary("latprof, runtime seen", ours[seen], y[te][seen]))
                print("  " + _summary("FLOPs-only, runtime seen", base[seen], y[te][seen]))
            print("  without runtime factors (all rows taken as one runtime):")
            plain = fit_kind_ratios(x[tr], y[tr], gmacs=g[tr]).predict(x[te], g[te])
            print("  " + _summary("latprof", plain, y[te]))
            print("  " + _summary("FLOPs-only fit", fit_flops_linear(macs[tr], y[tr]).predict(macs[te]), y[te]))
            print("  " + _summary("host ms per kind only", fit_kind_ratios(x[tr], y[tr], runtimes=rt[tr]).predict(
                x[te], None, rt[te]), y[te]))
        for key in ("leave_one_out", "flops_leave_one_out", "leave_one_family_out", "flops_leave_one_family_out",
                    "leave_one_family_out_scaled", "flops_leave_one_family_out_scaled"):
            if key in result.report:
                e = result.report[key]
                print(f"  latprof calibrate --device {phone} --from published: {key:<34} MAPE {e['mape']:6.1%}  "
                      f"within10 {e['within_10']:6.1%}  within15 {e['within_15']:6.1%}")
        fitted[phone] = (result, macs, y, rt)
    return fitted


def mnasnet_holdout(store: Store, result, macs: np.ndarray, y: np.ndarray, rt: np.ndarray) -> None:
    """Part 2: the MnasNet-A1 family on Pixel 1 (25 multiplier x resolution points), which no fit ever sees."""
    rows = read_rows(MNASNET_PIXEL1, "pixel1")
    flops = fit_flops_linear(macs, y, runtimes=rt)
    model = result.model
    print(f"\n=== held out: {len(rows)} MnasNet-A1 variants on pixel1 ({rows[0].runtime}; no row of that runtime "
          f"was fitted), predicted by `latprof calibrate --device pixel1 --from published`")
    print(f"  both fits predict {model.runtime!r}; each also on the scale of the other fitted runtime(s), "
          f"by its own fitted factor")
    measured, ours, base = [], [], []
    for row in rows:
        path = tflite_for(row.spec)
        cost, _ = host_reference(path, store)
        measured.append(row.latency_ms)
        ours.append(result.predict_cost(cost))
        base.append(float(flops.predict([_macs(path)])[0]))
    measured, ours, base = np.array(measured), np.array(ours), np.array(base)
    scales = [(runtime, model.runtime_factors.get(runtime, 1.0), flops.runtime_factors.get(runtime, 1.0))
              for runtime in (model.runtime, *model.runtime_factors)]
    for name, m, p, b in zip((r.spec.name for r in rows), measured, ours, base):
        cells = "  ".join(f"latprof x{f:.3f} {p * f:6.1f} ({p * f / m - 1:+6.1%})  "
                          f"FLOPs x{fb:.3f} {b * fb:6.1f} ({b * fb / m - 1:+6.1%})" for _, f, fb in scales)
        print(f"    {name:<22} measured {m:6.1f}  {cells}")
    for runtime, f, fb in scales:
        print(f"  on the scale of {runtime} (latprof x{f:.3f}, FLOPs x{fb:.3f}):")
        print("  " + _summary("latprof", ours * f, measured) + f"  Spearman {_rho(ours, measured):.3f}")
        print("  " + _summary("FLOPs-only fit", base * fb, measured) + f"  Spearman {_rho(base, measured):.3f}")


def host_check(store: Store, host_store: Store, n_archs: int, n_cal: int, seed: int, rounds: int) -> None:
    from latprof.calibrate._predictor import ReferenceSplitter
    from latprof.devices import open_device
    from latprof.measure import build_request, measure
    from latprof.space import MnasNetSpace, count_params_macs

    try:
        from latprof.predict import load_predictor

        reference = load_predictor("local", "mnasnet", store=host_store)
        print(f"\n=== host check: reference = host lookup-table predictor")
    except Exception as exc:  # no table fitted: the op cost model gives the reference times
        reference = None
        print(f"\n=== host check: no host table predictor ({exc}); reference = op cost model")
    space = MnasNetSpace()
    rng = random.Random(seed)
    archs = [space.sample(rng) for _ in range(n_archs + n_cal)]
    paths = []
    for i, arch in enumerate(archs):
        path = Path(store.path).parent / "host_check" / f"arch{seed}_{i}.tflite"
        path.parent.mkdir(exist_ok=True)
        if not path.exists():  # latprof's own .tflite writer: the converter's operators, in milliseconds
            path.write_bytes(space.tflite_bytes(arch))
        paths.append(path)
    with open_device("local") as device:  # whole rounds one after another, so a slow spell hits one round
        request = build_request(device, runs=30, warmup=5)
        medians = np.array([[measure(p, device, request).stats.headline_ms for p in paths] for _ in range(rounds)])
    # a shared host only ever slows a run down: the quickest round's median is the least disturbed figure
    y = medians.min(axis=0)
    if rounds > 1:
        print("  noise floor, the measurement against itself:")
        print("  " + _summary("round 2 vs round 1", medians[1], medians[0]))
    calibration = _any_calibration(store)
    if calibration is None:
        print("no stored calibration to take the host op cost model from; run part 1 first")
        return
    splitter = ReferenceSplitter(calibration.op_costs, calibration.sequence_factor, reference)
    feats = [splitter.features(a) for a in archs]
    x, g = np.array([f[0] for f in feats]), np.array([f[1] for f in feats])
    # fitted on the first n_cal only; the rest are held out
    model = fit_kind_ratios(x[:n_cal], y[:n_cal], gmacs=g[:n_cal])
    pred = model.predict(x[n_cal:], g[n_cal:])
    print(f"calibrated from {n_cal} measured architectures, predicting {n_archs} held-out ones")
    print("  " + _summary("latprof (host ms + MACs per kind)", pred, y[n_cal:]))
    macs = np.array([count_params_macs(a)[1] for a in archs], float)
    flops = fit_flops_linear(macs[:n_cal], y[:n_cal])
    print("  " + _summary("FLOPs-only fit", flops.predict(macs[n_cal:]), y[n_cal:]))
    print("  " + _summary("reference alone (no calibration)", x[n_cal:].sum(axis=1), y[n_cal:]))


def _any_calibration(store: Store):
    from latprof.calibrate import load_calibration

    for (device,) in store.connection.execute("SELECT DISTINCT device FROM predictors"):
        calibration = load_calibration(device, store)
        if calibration is not None:
            return calibration
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="calibration_benchmark.db")
    parser.add_argument("--phones", nargs="+", default=["pixel1", "pixel2", "pixel3"])
    parser.add_argument("--host-archs", type=int, default=100)
    parser.add_argument("--host-calibration", type=int, default=10)
    parser.add_argument("--host-rounds", type=int, default=2, help="measurement rounds of the host check; "
                        "truth is each architecture's quickest round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--host-db", help="database holding the host's fitted lookup-table predictor "
                        "(`latprof build-lut && latprof fit`; default: --db)")
    parser.add_argument("--skip-published", action="store_true", help="run only part 3")
    args = parser.parse_args()
    start = time.perf_counter()
    with Store(args.db) as store, Store(args.host_db or args.db) as host_store:
        if not args.skip_published:
            fitted = published(store, args.phones)
            if "pixel1" in fitted:
                mnasnet_holdout(store, *fitted["pixel1"])
        if args.host_archs:
            host_check(store, host_store, args.host_archs, args.host_calibration, args.seed, args.host_rounds)
    print(f"\nwall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

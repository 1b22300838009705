"""latprof's predictor against end-to-end host measurements, next to a FLOPs-linear model and a plain table sum.

Needs a database with a host table, calibration set and fitted predictor
(``python benchmarks/lut_build.py --db PATH`` makes one). Then:

1. speed: one ``predict`` (us), ``predict_many`` (architectures/s) and
   ``predict_tokens`` (architectures/s);
2. held-out accuracy: ``--archs`` random architectures of the space that are
   not in the calibration set, exported with the Keras -> TFLite converter
   (``latprof arch export``'s path) and measured with ``latprof measure``'s own
   code (:func:`latprof.measure.measure`: a pinned child process, the device
   config's 10 warm-up + 50 timed runs, median), ``--rounds`` times, round by
   round, with the speed probe timed just before and after each measurement.
   The predictor predicts the latency at the table's reference speed, so the
   truth is each architecture's median in the round where the probe was
   fastest, rescaled to the reference speed by the probe (the fitted rule);
   the raw medians are reported too. The agreement of the rounds with each
   other is the noise floor of the measurement itself;
3. the same figures for a FLOPs-linear model and the plain table sum, both
   built from the same table and calibration set;
4. models outside the space, predicted from their .tflite files: Keras
   MobileNetV2, MobileNetV3-Small/Large, EfficientNet-B0, and latprof's named
   references (MnasNet-A1/B1/small, MobileNetV2).

Targets: >= 99% within 10% and >= 90% within 5% on the held-out set; a single
predict <= 50 us; predict_many >= 100,000 architectures/s.

    python benchmarks/predictor_accuracy.py --db PATH [--archs 120] [--rounds 2] [--out results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from latprof.devices import open_device
from latprof.lut import CALIBRATION_SEED, load_calibration
from latprof.lut._runners import HostBatchRunner
from latprof.measure import build_request, measure
from latprof.predict import errors_summary, load_predictor
from latprof.predict._fit import load_model
from latprof.speed import probe_factor, write_probe
from latprof.space import MnasNetSpace, arch_layers, count_params_macs, export_tflite, format_arch, parse_arch
from latprof.space import keras_to_tflite, read_tflite_ops, tflite_params_macs
from latprof.store import Store

HELD_OUT_SEED = 9_000_000  # far from latprof.lut.CALIBRATION_SEED
KERAS_MODELS = ("MobileNetV2", "MobileNetV3Small", "MobileNetV3Large", "EfficientNetB0")
REFERENCES = ("mnasnet-a1", "mnasnet-b1", "mnasnet-small", "mobilenet-v2")


class Probe:
    """Times latprof's speed probe in a pinned batch process, to know how fast the core is right now."""

    def __init__(self, folder: Path) -> None:
        self.path = write_probe(folder)
        self.runner = HostBatchRunner(warmup_runs=2, num_runs=10, method="probe", realtime=False)
        self.fastest = float("inf")

    def ms(self) -> float:
        value = self.runner.measure(self.path).stats.median_ms
        self.fastest = min(self.fastest, value)
        return value

    def settle(self, wait_s: float = 3.0, tolerance: float = 0.15) -> float:
        """Wait (up to ``wait_s``) for the probe to be within ``tolerance`` of its fastest; return it."""
        deadline = time.monotonic() + wait_s
        value = self.ms()
        while value > self.fastest * (1 + tolerance) and time.monotonic() < deadline:
            time.sleep(0.05)
            value = self.ms()
        return value


@contextlib.contextmanager
def realtime(enabled: bool):
    """Run the block with this process under SCHED_FIFO, so the measuring child inherits it (as the table's)."""
    if not enabled:
        yield
        return
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (AttributeError, PermissionError, OSError):
        yield
        return
    try:
        yield
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def measure_e2e(path: Path, device, request, probe: Probe, use_realtime: bool) -> dict:
    before = probe.settle()
    with realtime(use_realtime):
        m = measure(path, device, request)
    after = probe.ms()
    return {"median_ms": m.stats.median_ms, "probe_ms": [before, after], "settings": m.settings}


def speed(predictor, space: MnasNetSpace) -> None:
    archs = [space.sample(random.Random(i)) for i in range(20_000)]
    tokens = np.array([space.to_tokens(a) for a in archs])
    for a in archs[:200]:
        predictor.predict(a)
    start = time.perf_counter()
    for a in archs[:5000]:
        predictor.predict(a)
    single_us = (time.perf_counter() - start) / 5000 * 1e6
    rates = []
    for _ in range(3):
        start = time.perf_counter()
        predictor.predict_many(archs)
        rates.append(len(archs) / (time.perf_counter() - start))
    start = time.perf_counter()
    predictor.predict_tokens(np.tile(tokens, (10, 1)))
    token_rate = 10 * len(tokens) / (time.perf_counter() - start)
    a1 = parse_arch("mnasnet-a1")
    predictor.predict(a1)
    start = time.perf_counter()
    for _ in range(500):
        predictor.predict(a1)
    a1_us = (time.perf_counter() - start) / 500 * 1e6
    print("== speed (this process is not pinned; the host is shared) ==")
    print(f"predict (architecture of the space, with breakdown): {single_us:.1f} us   target <= 50 us")
    print(f"predict (mnasnet-a1, layer by layer, cached layers): {a1_us:.1f} us")
    print(f"predict_many: {max(rates):,.0f} architectures/s (best of 3; runs: "
          f"{', '.join(f'{r:,.0f}' for r in rates)})   target >= 100,000/s")
    print(f"predict_tokens: {token_rate:,.0f} architectures/s")


def fmt(name: str, s: dict) -> str:
    return (f"{name:<22} within 5% {100 * s['within_5']:5.1f}%  within 10% {100 * s['within_10']:5.1f}%  "
            f"MAPE {100 * s['mape']:5.2f}%  RMSE {s['rmse_ms']:6.3f} ms  Kendall tau {s['kendall_tau']:.3f}  "
            f"worst {100 * s['max_abs_rel']:5.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--archs", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--writer", choices=("keras", "flatbuffer"), default="keras",
                        help="how held-out architectures become .tflite files")
    parser.add_argument("--no-realtime", action="store_true", help="measure without SCHED_FIFO")
    parser.add_argument("--skip-foreign", action="store_true", help="skip the models outside the space")
    parser.add_argument("--out", type=Path, help="write every per-model row as JSON (for the notebook)")
    args = parser.parse_args()

    with Store(args.db) as store:
        predictor = load_predictor("local", "mnasnet", store=store)
        model, report = load_model(store, "local", "mnasnet")
        calibration = load_calibration(store.connection, "local", "mnasnet")
    ref, beta = model["probe_ref_ms"], model["probe_beta"]
    params = model["variants"][-1]
    space = MnasNetSpace(**params)
    print(f"predictor: {model['table_entries']} table entries, {model['calibration_archs']} calibration archs, "
          f"space {space!r}, probe reference {ref} ms (exponent {beta:.2f})")
    print(f"load average at start: {os.getloadavg()[0]:.2f}\n")
    speed(predictor, space)

    # Baselines from the same table and calibration set.
    cal_y = np.array([c.median_ms * probe_factor(c.settings.get("probe_ms"), ref, beta) for c in calibration])
    cal_macs = np.array([count_params_macs(parse_arch(c.arch))[1] for c in calibration], dtype=float)
    flops_a, flops_b = np.polyfit(cal_macs, cal_y, 1)

    def plain_sum(layers) -> float:
        return sum(predictor.layer_ms(layer)[0] for layer in layers)

    taken = {c.arch for c in calibration}
    held_out, i = [], 0
    while len(held_out) < args.archs:
        arch = space.sample(random.Random(HELD_OUT_SEED + i))
        i += 1
        if format_arch(arch) not in taken:
            taken.add(format_arch(arch))
            held_out.append(arch)
    assert not {format_arch(a) for a in held_out} & {c.arch for c in calibration}
    print(f"\n== {len(held_out)} held-out architectures (seed {HELD_OUT_SEED}, none of the {len(calibration)} "
          f"calibration ones, seed {CALIBRATION_SEED}) ==")
    rows = []
    with tempfile.TemporaryDirectory(prefix="latprof-acc-") as tmp, open_device("local") as device:
        folder = Path(tmp)
        probe = Probe(folder)
        request = build_request(device)
        start = time.perf_counter()
        paths = []
        for n, arch in enumerate(held_out):
            path = folder / f"heldout{n}.tflite"
            if args.writer == "keras":
                with contextlib.redirect_stdout(io.StringIO()):
                    export_tflite(arch, path)
            else:
                from latprof.space._flatbuffer import write_tflite

                write_tflite(arch, path, seed=n)
            paths.append(path)
        print(f"exported {len(paths)} models with the {args.writer} writer in {time.perf_counter() - start:.0f} s")
        start = time.perf_counter()
        rounds = [[measure_e2e(p, device, request, probe, not args.no_realtime) for p in paths]
                  for _ in range(args.rounds)]
        print(f"measured {args.rounds} rounds in {time.perf_counter() - start:.0f} s "
              f"({request.warmup_runs} warm-up + {request.num_runs} runs each, `latprof measure` defaults); "
              f"load average now {os.getloadavg()[0]:.2f}")
        for n, arch in enumerate(held_out):
            tries = [r[n] for r in rounds]
            best = min(tries, key=lambda t: max(t["probe_ms"]))
            layers = arch_layers(arch)
            rows.append({
                "arch": format_arch(arch), "macs": count_params_macs(arch)[1],
                "measured_raw_ms": best["median_ms"],
                "measured_ms": best["median_ms"] * probe_factor(best["probe_ms"], ref, beta),
                "rounds_raw_ms": [t["median_ms"] for t in tries], "probe_ms": [t["probe_ms"] for t in tries],
                "rounds_ms": [t["median_ms"] * probe_factor(t["probe_ms"], ref, beta) for t in tries],
                "latprof_ms": predictor.predict(arch).latency_ms,
                "flops_ms": flops_a * count_params_macs(arch)[1] + flops_b,
                "plain_sum_ms": plain_sum(layers),
            })
        y = np.array([r["measured_ms"] for r in rows])
        y_raw = np.array([r["measured_raw_ms"] for r in rows])
        print("\ntruth: median of the quietest round, rescaled to the reference speed by the probe")
        for name, key in (("latprof", "latprof_ms"), ("FLOPs-linear", "flops_ms"), ("plain table sum", "plain_sum_ms")):
            print(fmt(name, errors_summary(np.array([r[key] for r in rows]), y)))
        print("\ntruth: raw median of the quietest round (no rescaling)")
        for name, key in (("latprof", "latprof_ms"), ("FLOPs-linear", "flops_ms"), ("plain table sum", "plain_sum_ms")):
            print(fmt(name, errors_summary(np.array([r[key] for r in rows]), y_raw)))
        if args.rounds > 1:
            r0 = np.array([r["rounds_ms"][0] for r in rows])
            r1 = np.array([r["rounds_ms"][1] for r in rows])
            q0 = np.array([r["rounds_raw_ms"][0] for r in rows])
            q1 = np.array([r["rounds_raw_ms"][1] for r in rows])
            print("\nnoise floor: the measurement against itself (round 2 vs round 1)")
            print(fmt("rescaled by probe", errors_summary(r1, r0)))
            print(fmt("raw medians", errors_summary(q1, q0)))
        quiet = np.array([max(max(t) for t in r["probe_ms"]) <= 1.15 * probe.fastest for r in rows])
        if quiet.any():
            print(f"\nonly the {int(quiet.sum())} architectures whose every round ran at full speed (probe within 15%):")
            print(fmt("latprof", errors_summary(np.array([r["latprof_ms"] for r in rows])[quiet], y[quiet])))
            print(fmt("FLOPs-linear", errors_summary(np.array([r["flops_ms"] for r in rows])[quiet], y[quiet])))
            print(fmt("plain table sum", errors_summary(np.array([r["plain_sum_ms"] for r in rows])[quiet], y[quiet])))

        foreign = [] if args.skip_foreign else foreign_models(folder, predictor, device, request, probe,
                                                              not args.no_realtime, ref, beta, flops_a, flops_b)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"device": "local", "space": params, "probe_ref_ms": ref, "probe_beta": beta,
                                        "held_out": rows, "foreign": foreign, "fit_report": report}, indent=1))
        print(f"\nwrote {args.out}")


def foreign_models(folder: Path, predictor, device, request, probe: Probe, use_realtime: bool, ref, beta,
                   flops_a: float, flops_b: float) -> list[dict]:
    import keras

    print("\n== models outside the space, predicted from their .tflite files ==")
    paths = {}
    for name in KERAS_MODELS:
        model = getattr(keras.applications, name)(weights=None, input_shape=(224, 224, 3))
        paths[f"keras {name}"] = folder / f"{name}.tflite"
        with contextlib.redirect_stdout(io.StringIO()):
            paths[f"keras {name}"].write_bytes(keras_to_tflite(model))
    for name in REFERENCES:
        with contextlib.redirect_stdout(io.StringIO()):
            paths[f"latprof {name}"] = export_tflite(parse_arch(name), folder / f"{name}.tflite")
    rows = []
    print(f"{'model':<26}{'measured':>10}{'latprof':>10}{'error':>8}{'FLOPs':>10}{'error':>8}  from regression")
    for name, path in paths.items():
        m = measure_e2e(path, device, request, probe, use_realtime)
        truth = m["median_ms"] * probe_factor(m["probe_ms"], ref, beta)
        p = predictor.predict_tflite(path)
        macs = tflite_params_macs(read_tflite_ops(path))[1]
        flops = flops_a * macs + flops_b
        rows.append({"model": name, "measured_ms": truth, "measured_raw_ms": m["median_ms"], "probe_ms": m["probe_ms"],
                     "latprof_ms": p.latency_ms, "flops_ms": flops, "regression_share": p.regression_share})
        print(f"{name:<26}{truth:>10.2f}{p.latency_ms:>10.2f}{100 * (p.latency_ms / truth - 1):>+7.1f}%"
              f"{flops:>10.2f}{100 * (flops / truth - 1):>+7.1f}%  {100 * p.regression_share:5.1f}% of latency")
    return rows


if __name__ == "__main__":
    main()

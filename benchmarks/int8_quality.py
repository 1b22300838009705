"""int8 on the host: the table build next to float32's, per-kind speed-ups, and held-out int8 architectures.

One run, in this order (every part on the same database, so a rerun resumes and re-times only what is missing):

1. Build the host's float32 and int8 MnasNet-space tables and calibration sets (what ``latprof build-lut
   --device local [--dtype int8]`` runs), one after the other, each with the built-in operator probes
   (int8 probes: the converter's full-integer quantization of the same graphs), and print their build
   times with the speed probe's median during each build. Fit both. Because the host drifts, the build
   times are then compared interleaved: ``--build-entries`` random layer configurations in
   ``--build-chunks`` chunks, each chunk built in both types back to back into fresh databases.
2. Write ``--speedup-csv`` (default ``notebooks/data/host_int8_speedup.csv``): every key in both tables,
   float32 and int8 ms at each table's reference speed, its kind, family and multiply-adds; print the
   median float32/int8 speed-up per layer kind and per operator family.
3. ``--archs`` held-out random MnasNet architectures (seed 9,000,000, never in a calibration set) exported
   with ``latprof arch export --quantize int8`` (the converter, 100 random calibration inputs), each timed
   against int8 MobileNetV2 round by round in one session (``latprof measure A B --reference R``'s code),
   ``--repeat`` times. Predicted ratios: latprof's int8 predictor; "float prediction x one global factor"
   (the float32 predictor: a global factor cancels in a ratio to a reference, so this is the float32
   predictor's ratio); FLOPs and op-kind-count fits on the int8 calibration set. The bar: latprof >= 90%
   within 10% of the measured ratio.

    python benchmarks/int8_quality.py [--db host_int8.db] [--archs 30] [--rounds 6] [--repeat 2]
        [--calibration 60] [--build-entries 1000] [--build-chunks 6] [--speedup-csv PATH] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from predictor_quality import HELD_OUT_SEED, _baseline_ratios, _interleaved, _ratio_table  # noqa: E402

from latprof.devices import open_device  # noqa: E402
from latprof.lut import LUT_RUNS, LUT_WARMUP, build_lut, load_entries, measure_ops, op_probe_models, table_space  # noqa: E402
from latprof.measure import build_request  # noqa: E402
from latprof.predictor import fit_predictor, load_prior, load_predictor, save_predictor  # noqa: E402
from latprof.space import LayerConfig, MnasNetSpace, Operator, export_many, op_family, op_kind  # noqa: E402
from latprof.store import Store  # noqa: E402

DTYPES = ("float32", "int8")
DEFAULT_CSV = Path(__file__).resolve().parents[1] / "notebooks" / "data" / "host_int8_speedup.csv"


def build_tables(store: Store, space: MnasNetSpace, calibration: int) -> dict[str, dict[str, Any]]:
    """Both tables, their calibration sets and operator probes; wall times and probe medians per data type."""
    out = {}
    with open_device("local") as device:
        for dtype in DTYPES:
            request = build_request(device, runs=LUT_RUNS, warmup=LUT_WARMUP)
            summary = build_lut(store, device, space, request=request, calibration_request=build_request(device),
                                calibration=calibration, progress=True, dtype=dtype)
            start = time.perf_counter()
            ops = measure_ops(store, device, space.name, op_probe_models(dtype=dtype, notify=print), request,
                              progress=True, dtype=dtype)
            entries = load_entries(store.connection, "local", table_space(space.name, dtype))
            probes = [np.mean(e.settings["probe_ms"]) for e in entries if e.settings.get("probe_ms")]
            out[dtype] = {"entries": summary.entries, "measured": summary.measured, "table_s": summary.table_wall_s,
                          "calibration_s": summary.wall_s - summary.table_wall_s, "probes_s": time.perf_counter() - start,
                          "probe_operators": ops.operators, "probe_median_ms": float(np.median(probes)) if probes else None}
            fitted = fit_predictor(store, "local", space.name, dtype=dtype)
            save_predictor(store, fitted)
            out[dtype]["fit_leave_one_out"] = fitted.report["leave_one_out"]
    print(f"\ntable build on the host ({space!r}, {out['float32']['entries']} layer configurations; one after the "
          "other):")
    print(f"  {'dtype':<8}{'measured':>9}{'table s':>9}{'calibration s':>15}{'op probes s':>13}{'probe median ms':>17}")
    for dtype, r in out.items():
        probe = f"{r['probe_median_ms']:.4f}" if r["probe_median_ms"] else "-"
        print(f"  {dtype:<8}{r['measured']:>9}{r['table_s']:>9.1f}{r['calibration_s']:>15.1f}{r['probes_s']:>13.1f}"
              f"{probe:>17}")
    if all(r["measured"] == r["entries"] for r in out.values()):
        print(f"  int8 / float32 table time: {out['int8']['table_s'] / out['float32']['table_s']:.2f}")
    else:
        print("  (some entries were already stored: these times are of this run's remainder only)")
    return out


class _Chunk(MnasNetSpace):
    """The space with only some of its layer configurations (one chunk of an interleaved build)."""

    def __init__(self, space: MnasNetSpace, layers: list) -> None:
        super().__init__(space.depth_multiplier, space.resolution)
        self.layers_of_chunk = layers

    def unique_layer_configs(self):
        return self.layers_of_chunk


def interleaved_build(space: MnasNetSpace, entries: int, chunks: int) -> dict[str, Any]:
    """Table build time, float32 against int8, interleaved: ``entries`` random layer configurations in ``chunks``
    chunks, each built in both types back to back (the type that goes first alternates), into fresh databases."""
    layers = random.Random(0).sample(space.unique_layer_configs(), entries)
    size = -(-entries // chunks)
    seconds: dict[str, list[float]] = {dtype: [] for dtype in DTYPES}
    with open_device("local") as device, tempfile.TemporaryDirectory(prefix="latprof-int8-build-") as tmp:
        request = build_request(device, runs=LUT_RUNS, warmup=LUT_WARMUP)
        for i in range(chunks):
            chunk = _Chunk(space, layers[i * size:(i + 1) * size])
            for dtype in (DTYPES if i % 2 == 0 else DTYPES[::-1]):
                with Store(Path(tmp) / f"{dtype}-{i}.db") as store:
                    summary = build_lut(store, device, chunk, request=request, calibration_request=request,
                                        calibration=0, dtype=dtype)
                seconds[dtype].append(summary.table_wall_s)
    ratios = np.array(seconds["int8"]) / np.array(seconds["float32"])
    print(f"\ninterleaved table build ({entries} random layer configurations in {chunks} chunks, each built in both "
          "types back to back, the first type alternating; each build starts its own timing process):")
    for dtype in DTYPES:
        print(f"  {dtype:<8} " + "  ".join(f"{s:6.1f}" for s in seconds[dtype]) + f"   total {sum(seconds[dtype]):6.1f} s")
    print(f"  int8 / float32: total {sum(seconds['int8']) / sum(seconds['float32']):.2f}, per chunk median "
          f"{np.median(ratios):.2f} (min {ratios.min():.2f}, max {ratios.max():.2f})")
    return {"seconds": seconds, "ratio_total": sum(seconds["int8"]) / sum(seconds["float32"]),
            "ratio_median": float(np.median(ratios))}


def _describe(key: str) -> dict[str, Any]:
    if key.startswith("op:"):
        op = Operator.from_key(key)
        return {"unit": "operator", "kind": op_kind(op), "family": op_family(op), "macs": op.macs}
    layer = LayerConfig.from_key(key)
    kind = f"{layer.op} k{layer.kernel}" + (f" e{layer.expansion}" if layer.op == "ir" else "")
    kind = "fc" if layer.op == "fc" else kind + (" se" if layer.se_ratio > 0 else "")
    return {"unit": "layer", "kind": kind, "family": layer.op, "macs": layer.macs()}


def speedups(store: Store, space: MnasNetSpace, path: Path) -> dict[str, Any]:
    """Every key measured in both tables (at each table's reference speed) to ``path``; medians per kind."""
    tables = {dtype: load_prior("own", store, space, device="local", dtype=dtype).table for dtype in DTYPES}
    keys = [k for k in tables["float32"] if k in tables["int8"]]
    rows = [{"key": k, **_describe(k), "float32_ms": tables["float32"][k], "int8_ms": tables["int8"][k]} for k in keys]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["key", "unit", "kind", "family", "macs", "float32_ms", "int8_ms"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"\n{len(rows)} keys in both tables written to {path}; float32 / int8 speed-up (median, IQR, count):")
    summary = {}
    for unit, by in (("layer", "kind"), ("operator", "family")):
        groups: dict[str, list[float]] = {}
        for r in rows:
            if r["unit"] == unit:
                groups.setdefault(r[by], []).append(r["float32_ms"] / r["int8_ms"])
        print(f"  per {unit} {by}:")
        for name, values in sorted(groups.items(), key=lambda kv: -np.median(kv[1])):
            q1, med, q3 = np.percentile(values, [25, 50, 75])
            summary[f"{unit}:{name}"] = {"median": float(med), "q1": float(q1), "q3": float(q3), "n": len(values)}
            print(f"    {name:<14}{med:6.2f}x  ({q1:.2f}-{q3:.2f}, {len(values)})")
    return summary


def held_out(store: Store, space: MnasNetSpace, archs_n: int, rounds: int, repeat: int) -> list[dict[str, Any]]:
    """Held-out architectures exported int8 by the converter, timed against int8 MobileNetV2."""
    rng = random.Random(HELD_OUT_SEED)
    archs = [space.sample(rng) for _ in range(archs_n)]
    reference = space.parse("mobilenet-v2")
    folder = Path(tempfile.mkdtemp(prefix="latprof-int8-quality-"))
    print(f"\n=== {len(archs)} held-out architectures (seed {HELD_OUT_SEED}) exported with --quantize int8, each "
          f"timed against int8 MobileNetV2 in one session ({rounds} rounds)")
    start = time.perf_counter()
    paths = [p for _, p in export_many([reference, *archs], folder, quantize="int8")]
    print(f"  exported {len(paths)} int8 models in {time.perf_counter() - start:.0f} s")
    int8 = load_predictor("local", space.name, store=store, dtype="int8")
    float32 = load_predictor("local", space.name, store=store)
    predicted = {
        "latprof int8": int8.predict_many(archs) / int8.predict(reference).latency_ms,
        "float x factor": float32.predict_many(archs) / float32.predict(reference).latency_ms,
        **_baseline_ratios(store, paths[1:], paths[0], dtype="int8"),
    }
    return [_ratio_table([space.format(a)[:40] for a in archs], _interleaved(paths[1:], paths[0], rounds),
                         predicted, run) for run in range(1, repeat + 1)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, help="host database (default: a fresh temporary one); reruns resume")
    ap.add_argument("--archs", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--calibration", type=int, default=60)
    ap.add_argument("--build-entries", type=int, default=1000, help="layer configurations of the interleaved build")
    ap.add_argument("--build-chunks", type=int, default=6)
    ap.add_argument("--resolution", type=int, default=224, help="of the space (smaller: a quick check)")
    ap.add_argument("--depth-multiplier", type=float, default=1.0)
    ap.add_argument("--speedup-csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    db = args.db or Path(tempfile.mkdtemp(prefix="latprof-int8-")) / "host.db"
    space = MnasNetSpace(args.depth_multiplier, args.resolution)
    print(f"host: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; database {db}")
    with Store(db) as store:
        out = {"build": build_tables(store, space, args.calibration),
               "interleaved_build": interleaved_build(space, args.build_entries, args.build_chunks),
               "speedups": speedups(store, space, args.speedup_csv),
               "held_out": held_out(store, space, args.archs, args.rounds, args.repeat)}
    within = [run["latprof int8"]["within_10"] for run in out["held_out"]]
    print(f"\nbar: latprof int8 >= 90% within 10% of the measured ratio: "
          f"{', '.join(f'{w:.0%}' for w in within)} -> {'met' if min(within) >= 0.9 else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast can latprof turn architectures into .tflite files, and how big is the MnasNet space?

    python benchmarks/space_export.py [--n 20] [--seed 0] [--workers N] [--no-compare] [--no-measure]

Prints: the space's size and unique-layer count, the sampling rate, export time
per architecture (median over N random full-size architectures, split into
Keras build / trace / convert), export time per single layer (the unit of a
lookup-table build), the throughput of ``export_many`` (a pool of warm worker
processes), the stock ``TFLiteConverter.from_keras_model`` path on
one of the same architectures for comparison, and, for scale, how long one
host latency measurement of an exported model takes.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="random architectures to export (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-compare", action="store_true", help="skip the from_keras_model comparison")
    parser.add_argument("--no-measure", action="store_true", help="skip the host measurement for scale")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="export_many worker processes to time (0 to skip; default: CPU count)")
    args = parser.parse_args()

    from latprof.space import MnasNetSpace, count_params_macs, format_arch

    print("== MnasNet search space (depth multiplier 1.0, resolution 224)")
    t = time.perf_counter()
    space = MnasNetSpace()
    size, uniques = space.size(), space.unique_layer_configs()
    print(f"decisions: {len(space.decisions())} (6 per block x 7 blocks)")
    print(f"token sequences: {space.num_combinations():,} ({space.num_combinations():.2e})")
    print(f"size (distinct architectures): {size:,} ({size:.2e})")
    print(f"unique layer configurations: {len(uniques):,}   (computed in {time.perf_counter() - t:.2f} s)")

    rng = random.Random(args.seed)
    n_samples = 20000
    t = time.perf_counter()
    for _ in range(n_samples):
        space.sample(rng)
    dt = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(2000):
        format_arch(space.sample(rng))
    dt_fmt = time.perf_counter() - t
    print(f"sampling: {n_samples / dt:,.0f} architectures/s ({dt / n_samples * 1e6:.0f} us each); "
          f"sample+format: {2000 / dt_fmt:,.0f}/s")
    t = time.perf_counter()
    a = space.sample(rng)
    for _ in range(2000):
        a = space.mutate(a, rng)
    print(f"mutation: {2000 / (time.perf_counter() - t):,.0f}/s")

    print("\n== Export: Architecture -> Keras model -> .tflite (float32)")
    t = time.perf_counter()
    from latprof.space._build import LAST_CONVERTER, export_tflite, quiet_native_stderr

    with quiet_native_stderr():
        import tensorflow as tf  # noqa: F401 - timed on purpose
    print(f"TensorFlow {tf.__version__} import: {time.perf_counter() - t:.1f} s (once per process)")

    workdir = Path(tempfile.mkdtemp(prefix="latprof-bench-"))
    archs = [space.sample(rng) for _ in range(args.n + 1)]
    with quiet_native_stderr():
        t = time.perf_counter()
        export_tflite(archs[0], workdir / "warmup.tflite")
        print(f"first export in the process (warm-up): {time.perf_counter() - t:.1f} s")
        rows = []
        for i, arch in enumerate(archs[1:]):
            timings: dict[str, float] = {}
            t = time.perf_counter()
            path = export_tflite(arch, workdir / f"arch{i}.tflite", timings)
            timings["total"] = time.perf_counter() - t
            timings["mb"] = path.stat().st_size / 1e6
            timings["macs"] = count_params_macs(arch)[1] / 1e6
            timings["layers"] = len(space.layers(arch))
            rows.append(timings)
    print(f"converter path: {LAST_CONVERTER['path']}")
    med = {k: median([r[k] for r in rows]) for k in ("total", "build", "trace", "convert", "mb", "macs", "layers")}
    print(f"export time per architecture, median over {len(rows)} random full-size ones: {med['total']:.2f} s "
          f"(min {min(r['total'] for r in rows):.2f}, max {max(r['total'] for r in rows):.2f})")
    print(f"  Keras build {med['build']:.2f} s | trace to a constant graph {med['trace']:.2f} s | "
          f"convert (MLIR + flatbuffer) {med['convert']:.2f} s")
    print(f"  median model: {med['layers']:.0f} layers, {med['macs']:.0f}M MACs, {med['mb']:.1f} MB")

    layer_rows = []
    layer_rng = random.Random(args.seed + 1)
    with quiet_native_stderr():
        for i, layer in enumerate(layer_rng.sample(uniques, min(20, len(uniques)))):
            t = time.perf_counter()
            export_tflite(layer, workdir / f"layer{i}.tflite")
            layer_rows.append(time.perf_counter() - t)
    per_layer = median(layer_rows)
    print(f"export time per single layer (lookup-table unit), median over {len(layer_rows)} "
          f"random unique layers: {per_layer:.3f} s")
    print(f"  all {len(uniques):,} unique layers of the space: ~{per_layer * len(uniques) / 60:.0f} min of export")

    amortized = stock = None
    if args.workers:
        from latprof.space import export_many

        pool_dir = workdir / "pool"
        t = time.perf_counter()
        first = None
        for _ in export_many(archs[1:], pool_dir, workers=args.workers):
            first = first or time.perf_counter() - t
        wall = time.perf_counter() - t
        amortized = wall / len(rows)
        print(f"export_many, {args.workers} warm worker processes, same {len(rows)} architectures: {wall:.1f} s wall "
              f"= {wall / len(rows):.2f} s per architecture amortized (first result after {first:.1f} s, "
              f"incl. worker start-up)")

    if not args.no_compare:
        import contextlib
        import io

        from latprof.space import build_keras_model

        with quiet_native_stderr(), contextlib.redirect_stdout(io.StringIO()):
            model = build_keras_model(archs[1])
            t = time.perf_counter()
            tf.lite.TFLiteConverter.from_keras_model(model).convert()
            stock = time.perf_counter() - t
        print(f"for comparison, stock TFLiteConverter.from_keras_model on architecture #1: {stock:.1f} s "
              f"(convert only; ours: {rows[0]['trace'] + rows[0]['convert']:.2f} s trace+convert)")

    if not args.no_measure:
        from latprof.benchmarking.host import run_host_benchmark

        t = time.perf_counter()
        run = run_host_benchmark(workdir / "arch0.tflite", warmup_runs=10, num_runs=50)
        wall = time.perf_counter() - t
        print(f"\nfor scale: one host measurement (10 warm-up + 50 runs, 1 thread) of architecture #1: "
              f"{wall:.1f} s wall, median run {median(run.run_us) / 1000:.1f} ms")

    print("\n== What dominates")
    parts = {"Keras build": med["build"], "trace": med["trace"], "convert": med["convert"]}
    other = med["total"] - sum(parts.values())
    print("per architecture (median {:.2f} s): ".format(med["total"])
          + ", ".join(f"{k} {v / med['total']:.0%}" for k, v in parts.items())
          + f", write/other {max(other, 0) / med['total']:.0%}")
    if stock is not None:
        print(f"stock from_keras_model (SavedModel round trip) vs our constant-graph GraphDef conversion: "
              f"{stock / (rows[0]['trace'] + rows[0]['convert']):.0f}x faster trace+convert")
    if amortized is not None:
        print(f"with export_many ({args.workers} workers) an architecture costs {amortized:.2f} s amortized, "
              f"and it runs while the previous one is being measured")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""latprof's host measurement against LiteRT's own benchmark tool, and its repeatability.

For MobileNetV2, MobileNetV3-Small/Large and EfficientNet-B0 (Keras, weights=None,
float32 TFLite), measures each model with latprof and, interleaved in the same run,
with LiteRT's ``ai_edge_litert/tools/benchmark_litert_model.py`` (single thread,
pinned to the same core with taskset), then prints both medians and their ratio.
Then repeats latprof's measurement 10 times per model and prints the coefficient
of variation of the median. Targets: ratio within 5%, CV under 3%.

    python benchmarks/host_measure.py [--rounds 3] [--runs 50] [--repeats 10]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from latprof.benchmarking import LatencyStats, default_host_cpu, run_host_benchmark


def build_models(folder: Path) -> dict[str, Path]:
    import tensorflow as tf

    apps = tf.keras.applications
    builders = {
        "MobileNetV2": lambda: apps.MobileNetV2(weights=None, input_shape=(224, 224, 3)),
        "MobileNetV3Small": lambda: apps.MobileNetV3Small(weights=None, input_shape=(224, 224, 3)),
        "MobileNetV3Large": lambda: apps.MobileNetV3Large(weights=None, input_shape=(224, 224, 3)),
        "EfficientNetB0": lambda: apps.EfficientNetB0(weights=None, input_shape=(224, 224, 3)),
    }
    paths = {}
    for name, build in builders.items():
        path = folder / f"{name}.tflite"
        model = build()
        with contextlib.redirect_stdout(io.StringIO()):  # the converter prints the whole SavedModel signature
            path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        paths[name] = path
    return paths


def litert_median_ms(model: Path, runs: int, warmup: int, cpu: int | None) -> float:
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    cmd = [sys.executable, "-m", "ai_edge_litert.tools.benchmark_litert_model", f"--model={model}",
           f"--num_runs={runs}", f"--warmup_runs={warmup}", "--num_threads=1", f"--result_json={out}"]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return json.loads(out.read_text())["latency"]["median_ms"]


def latprof_median_ms(model: Path, runs: int, warmup: int) -> float:
    run = run_host_benchmark(model, threads=1, warmup_runs=warmup, num_runs=runs)
    return LatencyStats.from_samples(run.run_us).headline_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved latprof/LiteRT rounds per model")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=10, help="repeated latprof measurements for the CV")
    args = parser.parse_args()

    cpu = default_host_cpu()
    print(f"host cpu pinned: {cpu}; runs={args.runs} warmup={args.warmup} threads=1")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        models = build_models(Path(tmp))
        print(f"built and converted {len(models)} models in {time.perf_counter() - start:.1f} s\n")
        print(f"{'model':<18}{'latprof ms':>12}{'LiteRT ms':>12}{'ratio':>8}{'CV of median':>15}")
        for name, path in models.items():
            ours, theirs = [], []
            for _ in range(args.rounds):  # interleaved, so drift hits both tools alike
                ours.append(latprof_median_ms(path, args.runs, args.warmup))
                theirs.append(litert_median_ms(path, args.runs, args.warmup, cpu))
            medians = [latprof_median_ms(path, args.runs, args.warmup) for _ in range(args.repeats)]
            cv = float(np.std(medians) / np.mean(medians))
            a, b = float(np.median(ours)), float(np.median(theirs))
            print(f"{name:<18}{a:>12.2f}{b:>12.2f}{a / b:>8.3f}{cv * 100:>14.2f}%")


if __name__ == "__main__":
    main()

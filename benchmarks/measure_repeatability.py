"""Repeatability of `latprof measure` at the reference speed, with other work on the machine in between.

Runs `latprof measure` (the CLI, as a user would, on a fresh database) on one model
(MobileNetV2 exported with `latprof arch export mobilenet-v2`) ``--repeats`` times,
one every ``--spacing-s`` seconds (5 over about two minutes by default). During every
other measurement a CPU-burning process runs on the other core (started a moment
before, stopped after), as a user's build or browser would; on the 2-core VMs this is
developed on that slows the measuring core by ~1.6x. Right after each latprof
measurement, LiteRT's own benchmark times the same model, pinned to the same core:
the ai-edge-litert wheel ships no `benchmark_model` binary, but it does ship
`litert-benchmark` (`ai_edge_litert.tools.benchmark_litert_model`, LiteRT's
CompiledModel API), which is used here as the independent reference.

Prints, per measurement, the raw median, the median at the device's reference speed,
the probe times, LiteRT's median and the ratio; then the targets:

* reference-speed figure: max/min - 1 within 3% (the raw figures' spread beside it);
* latprof raw / LiteRT, interleaved measurement by measurement: median in 0.95-1.05.

    python benchmarks/measure_repeatability.py [--repeats 5] [--spacing-s 24] [--runs 50] [--rounds 5]
    python benchmarks/measure_repeatability.py --model tiny.tflite --repeats 2 --spacing-s 2 --runs 4 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from host_measure import litert_median_ms  # this folder: LiteRT's litert-benchmark, pinned like latprof
from latprof.benchmarking.host import default_host_cpu

_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def _latprof(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "latprof", *args], check=True, capture_output=True, text=True,
                          env=_ENV).stdout


def _burner(cpu: int | None) -> subprocess.Popen | None:
    """A CPU-burning process on another core than ``cpu`` (None where there is no other core)."""
    others = sorted(os.sched_getaffinity(0) - {cpu}) if hasattr(os, "sched_getaffinity") else []
    if not others:
        return None
    return subprocess.Popen(["taskset", "-c", str(others[0]), sys.executable, "-c", "while True: pass"])


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is not None:
        proc.terminate()
        proc.wait(timeout=30)


def _spread(values: list[float]) -> float:
    return max(values) / min(values) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a .tflite to measure (default: export mobilenet-v2)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--spacing-s", type=float, default=24.0, help="seconds from one measurement's start to the next")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--burn-lead-s", type=float, default=2.0, help="the burner starts this long before")
    args = parser.parse_args()

    cpu = default_host_cpu()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            model = Path(tmp) / "mobilenet-v2.tflite"
            _latprof("arch", "export", "mobilenet-v2", "-o", str(model))
        db = str(Path(tmp) / "latprof.db")
        print(f"model {model.name}; pinned cpu {cpu}; {args.repeats} measurements, one every {args.spacing_s:g} s; "
              f"runs={args.runs} warmup={args.warmup} rounds={args.rounds}; fresh database\n")
        print(f"{'#':>2} {'other core':<11}{'raw ms':>9}{'at ref ms':>11}{'probe ms':>17}{'LiteRT ms':>11}"
              f"{'raw/LiteRT':>12}  scheduling")
        raw, ref, ratios = [], [], []
        start = time.monotonic()
        for i in range(args.repeats):
            time.sleep(max(0.0, start + i * args.spacing_s - time.monotonic()))
            burner = _burner(cpu) if i % 2 else None
            try:
                if burner is not None:
                    time.sleep(args.burn_lead_s)
                record = json.loads(_latprof("measure", str(model), "--db", db, "--runs", str(args.runs),
                                             "--warmup", str(args.warmup), "--rounds", str(args.rounds), "--json"))
                litert_ms = litert_median_ms(model, args.runs, args.warmup, cpu)
            finally:
                _stop(burner)
            speed = record["reference_speed"]
            raw.append(record["stats"]["median_ms"])
            ref.append(speed["median_ms"])
            ratios.append(raw[-1] / litert_ms)
            probes = f"{min(speed['probe_ms']):.3f}-{max(speed['probe_ms']):.3f}"
            print(f"{i + 1:>2} {'burning' if burner else 'idle':<11}{raw[-1]:>9.3f}{ref[-1]:>11.3f}{probes:>17}"
                  f"{litert_ms:>11.3f}{ratios[-1]:>12.3f}  {record['settings'].get('scheduling')}")
        print(f"\nwall time {time.monotonic() - start:.0f} s; reference probe {speed['reference_probe_ms']:.4f} ms "
              f"({speed['source']})")
        print(f"at the reference speed: max/min - 1 = {_spread(ref):.1%} (target <= 3%)   "
              f"raw: max/min - 1 = {_spread(raw):.1%}")
        print(f"latprof raw / LiteRT (litert-benchmark), interleaved: median {np.median(ratios):.3f} "
              f"(range {min(ratios):.3f}-{max(ratios):.3f}; target 0.95-1.05)")


if __name__ == "__main__":
    main()

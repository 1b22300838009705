"""Build a full host lookup table for the MnasNet space, timed, then fit the predictor.

Runs exactly what ``latprof build-lut --device local`` runs (the host batch
runner: one pinned child process, SCHED_FIFO where allowed, the speed probe
around every micro-model), into a fresh database unless ``--db`` names one to
resume. Prints the number of entries, the wall time of the table and of the
calibration set, how many rows were timed while the host was slowed down, and
the cross-validated report of ``latprof fit``. Target: the table at 224 in
<= 15 minutes on a 2-core machine.

    python benchmarks/lut_build.py [--resolution 224] [--calibration 60] [--db PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from latprof.devices import open_device
from latprof.lut import LUT_RUNS, LUT_WARMUP, build_lut, load_calibration, load_entries
from latprof.measure import build_request
from latprof.predictor import fit_predictor, save_predictor
from latprof.space import MnasNetSpace
from latprof.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--depth-multiplier", type=float, default=1.0)
    parser.add_argument("--calibration", type=int, default=60)
    parser.add_argument("--db", type=Path, help="database to build into (default: a fresh temporary one)")
    args = parser.parse_args()

    folder = None if args.db else tempfile.TemporaryDirectory(prefix="latprof-bench-")
    db = args.db or Path(folder.name) / "lut.db"
    space = MnasNetSpace(args.depth_multiplier, args.resolution)
    print(f"host: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; database {db}")
    with Store(db) as store, open_device("local") as device:
        start = time.perf_counter()
        summary = build_lut(store, device, space, request=build_request(device, runs=LUT_RUNS, warmup=LUT_WARMUP),
                            calibration_request=build_request(device), calibration=args.calibration, progress=True)
        wall = time.perf_counter() - start
        entries = load_entries(store.connection, device.name, space.name)
        calibration = load_calibration(store.connection, device.name, space.name)
        fit_start = time.perf_counter()
        fitted = fit_predictor(store, device.name, space.name)
        save_predictor(store, fitted)
        report = fitted.report
        fit_s = time.perf_counter() - fit_start
    slow = sum(bool(e.warnings) for e in entries)
    print(f"\nspace {space!r}: {summary.entries} unique layer configurations")
    print(f"table: {summary.measured} entries measured now ({summary.already_stored} were already stored) "
          f"in {summary.table_wall_s:.1f} s ({summary.table_wall_s / 60:.2f} min) -- target <= 15 min")
    print(f"calibration: {summary.calibration_measured} architectures measured end to end in "
          f"{wall - summary.table_wall_s:.1f} s; total {wall:.1f} s; load average {os.getloadavg()[0]:.2f} at end")
    print(f"rows timed while the host was slowed down (flagged, rescaled by the probe): {slow}/{len(entries)} "
          f"table entries, {sum(bool(c.warnings) for c in calibration)}/{len(calibration)} calibration networks")
    print(f"fit: {fit_s:.1f} s")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

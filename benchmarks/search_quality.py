"""Quality bar of ``latprof search``: a binding target, controllers at equal budget, and the search's overhead.

Needs the device's fitted predictor (``latprof build-lut --device D`` then
``latprof fit --device D``) in ``--db``. Accuracy is the zero-cost (NASWOT)
proxy throughout. Prints every figure:

1. Binding target. T = the median predicted latency of 512 random
   architectures (the NASWOT score grows with model size, so the unconstrained
   optimum is far slower and the constraint binds). A PPO search per reward
   mode; of its top architectures, the share whose predicted latency is within
   +-5% of T, then each measured on the device (``--verify``'s measurement)
   and the share within +-10% of T.
2. PPO vs regularized evolution vs random search, same budget, several seeds
   (hard reward at T): best reward reached, samples needed to reach it, and
   samples needed to reach 99% of the best reward any run found.
3. Overhead per sample (controller, predictor, reward, storage, accuracy) and
   samples per second with the predictor and the zero-cost estimator, in one process.

    python benchmarks/search_quality.py [--db PATH] [--device local] [--samples 1000] [--budget 800] \\
        [--seeds 3] [--top 10] [--workers 2] [--overhead-samples 320]
"""

from __future__ import annotations

import os

# One BLAS thread per process: NASWOT's small matrix products lose more to threading than they gain, and
# with --workers the processes already share the cores. Set before NumPy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from latprof.errors import LatprofError
from latprof.search import MeasuredLatency, SearchConfig, run_search, verify
from latprof.space import get_space
from latprof.store import Store


def stats(values) -> str:
    v = np.asarray(values, float)
    return f"{v.mean():9.3f} +- {v.std():6.3f} (min {v.min():.3f}, max {v.max():.3f})"


def first_reaching(result, threshold: float) -> int | None:
    """1-based number of samples until a reward >= threshold, or None."""
    for t in result.trials:
        if t.ok and t.reward >= threshold:
            return t.idx + 1
    return None


def binding_target(args, predictor, store, target: float, workdir: Path) -> None:
    from latprof.devices import open_device
    from latprof.measure import build_request

    print(f"\n== 1. binding target: PPO, {args.samples} samples, seed 0, top {args.top} distinct architectures ==")
    with open_device(args.device) as device:
        measured = MeasuredLatency(device, build_request(device), store=store, workdir=workdir)
        for reward in ("hard", "soft"):
            config = SearchConfig(target_ms=target, reward=reward, controller="ppo", samples=args.samples, seed=0,
                                  device=args.device)
            start = time.perf_counter()
            result = run_search(config, predictor, store=store, workers=args.workers)
            search_s = time.perf_counter() - start
            top = result.top(args.top)
            start = time.perf_counter()
            rows = verify(top, measured, target, predictor)
            verify_s = time.perf_counter() - start
            print(f"\n{config.make_reward().describe()}")
            print(f"search {search_s:.0f} s ({args.workers} workers); measuring the top {len(top)} on "
                  f"{device.name}: {verify_s:.0f} s")
            print(f"  {'trial':>6} {'reward':>9} {'predicted':>10} {'band':>15} {'measured':>9} {'pred err':>9} "
                  f"{'pred vs T':>10} {'meas vs T':>10}")
            for row in rows:
                band = f"{row['band_low_ms']:.2f}-{row['band_high_ms']:.2f}" if row["band_low_ms"] else "-"
                pred_vs_t = 100 * (row["predicted_ms"] - target) / target
                reward_of = next(t.reward for t in top if t.idx == row["idx"])
                print(f"  {row['idx']:>6} {reward_of:>9.3f} {row['predicted_ms']:>8.2f}ms {band:>15} "
                      f"{row['measured_ms']:>7.2f}ms {row['error_pct']:>+8.1f}% {pred_vs_t:>+9.1f}% "
                      f"{row['measured_vs_target_pct']:>+9.1f}%")
            pred_ok = [abs(r["predicted_ms"] - target) <= 0.05 * target for r in rows]
            meas_ok = [abs(r["measured_ms"] - target) <= 0.10 * target for r in rows]
            errors = [abs(r["error_pct"]) for r in rows]
            print(f"  predicted within +-5% of T:  {sum(pred_ok)}/{len(rows)} = {100 * np.mean(pred_ok):.0f}%")
            print(f"  measured within +-10% of T:  {sum(meas_ok)}/{len(rows)} = {100 * np.mean(meas_ok):.0f}%")
            print(f"  |prediction error| on these: mean {np.mean(errors):.1f}%, max {np.max(errors):.1f}%")


def controllers(args, predictor, store, target: float) -> None:
    print(f"\n== 2. controllers at equal budget: {args.budget} samples, seeds 0..{args.seeds - 1}, hard reward at "
          f"T = {target:.2f} ms ==")
    runs: dict[str, list] = {}
    for name in ("ppo", "evolution", "random"):
        for seed in range(args.seeds):
            config = SearchConfig(target_ms=target, reward="hard", controller=name, samples=args.budget, seed=seed,
                                  device=args.device)
            runs.setdefault(name, []).append(run_search(config, predictor, store=store, workers=args.workers))
    overall = max(r.best.reward for rs in runs.values() for r in rs)
    threshold = 0.99 * overall
    print(f"best reward of any run: {overall:.3f}; 99% of it: {threshold:.3f}")
    print(f"  {'controller':<10} {'best reward (mean +- sd over seeds)':<44} {'samples to own best':>20} "
          f"{'samples to 99% of overall':>27} {'mean reward, last 64':>21}")
    for name, rs in runs.items():
        to_best = [first_reaching(r, r.best.reward) for r in rs]
        to_99 = [first_reaching(r, threshold) for r in rs]
        reached = [n for n in to_99 if n is not None]
        tail = [np.mean([t.reward for t in r.trials[-64:] if t.ok]) for r in rs]
        to_99_text = (f"median {int(np.median(reached))} ({len(reached)}/{len(rs)} runs)" if reached
                      else f"never (0/{len(rs)} runs)")
        print(f"  {name:<10} {stats([r.best.reward for r in rs]):<44} {'median ' + str(int(np.median(to_best))):>20} "
              f"{to_99_text:>27} {np.mean(tail):>21.3f}")
        print(f"  {'':<10} per seed: best " + ", ".join(f"{r.best.reward:.3f}@{n}" for r, n in zip(rs, to_best)))


def overhead(args, predictor, store, target: float) -> None:
    n = args.overhead_samples
    print(f"\n== 3. overhead per sample: {n} samples per controller, one process, predictor + zero-cost ==")
    print(f"  {'controller':<10} {'controller':>11} {'predictor':>10} {'reward':>9} {'storage':>9} {'accuracy':>10} "
          f"{'samples/s':>10} {'search share':>13}")
    for name in ("ppo", "evolution", "random"):
        config = SearchConfig(target_ms=target, reward="hard", controller=name, samples=n, seed=0, device=args.device)
        result = run_search(config, predictor, store=store, workers=1)
        t = result.timings
        per = {k: 1000 * t[k] / n for k in ("controller", "latency", "reward", "storage", "accuracy")}
        search_share = (t["controller"] + t["reward"]) / t["total"]
        print(f"  {name:<10} {per['controller']:>9.2f}ms {per['latency']:>8.3f}ms {1000 * per['reward']:>7.1f}us "
              f"{per['storage']:>7.2f}ms {per['accuracy']:>8.1f}ms {n / t['total']:>10.1f} "
              f"{100 * search_share:>12.1f}%")
    print("  (ms per sample; 'search share' = controller + reward time over total wall time; accuracy counts "
          "only evaluated samples' time spread over all samples, repeats reuse earlier results)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database holding the device's predictor (default: $LATPROF_DB)")
    parser.add_argument("--device", default="local")
    parser.add_argument("--samples", type=int, default=1000, help="samples of each binding-target search")
    parser.add_argument("--budget", type=int, default=800, help="samples per controller run in the comparison")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="accuracy worker processes (not for overhead)")
    parser.add_argument("--overhead-samples", type=int, default=320)
    args = parser.parse_args()

    from latprof.predictor import load_predictor

    print(f"command: {' '.join(sys.argv)}")
    print(f"machine: {os.cpu_count()} CPUs, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} at start; "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    with Store(args.db) as source:
        try:
            predictor = load_predictor(args.device, "mnasnet", store=source)
        except LatprofError as exc:
            sys.exit(f"Error: {exc}")
        print(f"predictor: {args.device} from {source.path}")
    space = get_space("mnasnet")
    rng = random.Random(12345)
    latencies = predictor.predict_many([space.sample(rng) for _ in range(512)])
    target = float(np.median(latencies))
    print(f"T = {target:.2f} ms: median predicted latency of 512 random architectures "
          f"(5th-95th percentile {np.percentile(latencies, 5):.2f}-{np.percentile(latencies, 95):.2f} ms)")
    with tempfile.TemporaryDirectory(prefix="latprof-search-bench-") as tmp, Store(Path(tmp) / "bench.db") as store:
        binding_target(args, predictor, store, target, Path(tmp))
        controllers(args, predictor, store, target)
        overhead(args, predictor, store, target)


if __name__ == "__main__":
    main()

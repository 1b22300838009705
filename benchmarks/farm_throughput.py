"""Device-farm throughput: sharded lookup tables, per-entry overhead on a phone, searches measured on phones.

Everything runs on this machine: a Ray cluster of a head and 2 worker nodes
(``ray.cluster_utils.Cluster``, on 127.0.0.1) stands for 2 hosts, and simulated
loopback phones (``latprof device serve --benchmark simulated``: benchmark_model
sleeps for the latency latprof predicts for a Pixel 1) stand for phones, half on
each node. Prints:

1. the MnasNet-space lookup table (``--entries`` of its layer configurations;
   0 = all) built through 1, 2, 4 and 8 phones: entries per second and speed-up
   over one phone (target: at least 0.8 x linear up to 8);
2. the overhead per entry beyond benchmark_model's own run on one real-running
   loopback phone (models timed on this host), one model per push and shell call
   (before batching) against ``DEVICE_BATCH`` per call (after; target <= 0.1 s),
   interleaved over ``--overhead-rounds``;
3. the wall time of a ``--candidates`` search with ``--latency measure`` on 1 vs 4 phones.

    python benchmarks/farm_throughput.py [--entries 0] [--phones 1,2,4,8] [--runs 30] [--warmup 5]
        [--overhead-entries 16] [--overhead-rounds 3] [--candidates 200] [--search-phones 1,4]
        [--search-runs 10] [--search-warmup 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

# Ray resolves 127.0.0.1 to the machine's network address unless told it runs on one machine.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

import latprof.benchmarking.host as host_benchmark  # noqa: E402
from latprof.devices import open_device  # noqa: E402
from latprof.farm import (  # noqa: E402
    NAMESPACE, Farm, FarmDevice, FarmLatency, Phone, node_labels, node_resources, start_agents,
)
from latprof.loopback import SimulatedSpeed, serve  # noqa: E402
from latprof.lut import DEVICE_BATCH, build_lut  # noqa: E402
from latprof.measure import build_request, measure_many  # noqa: E402
from latprof.search import SearchConfig, make_estimator, run_search  # noqa: E402
from latprof.space import MnasNetSpace, write_tflite  # noqa: E402
from latprof.store import Store  # noqa: E402

KIND = "simulated-pixel1"
NODE = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False}
_OVERHEAD_RUNS = 5  # timed runs per model on the real-running phone (their own time is not overhead)


class _Subset(MnasNetSpace):
    """The MnasNet space, its table cut to the first ``n`` layer configurations (all when n is 0)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def unique_layer_configs(self):
        layers = super().unique_layer_configs()
        return layers[:self.n] if self.n else layers


@contextmanager
def _farm(cluster: Cluster, phones: int):
    """``phones`` simulated Pixel 1s, split over 2 new nodes, one agent each."""
    devices = [serve("pixel1", accept_new_keys=True, simulated=SimulatedSpeed("pixel1", seed=i)) for i in range(phones)]
    halves = [devices[: (phones + 1) // 2], devices[(phones + 1) // 2:]]
    nodes, joined = [], []
    try:
        for half in filter(None, halves):
            group = [Phone(d.address, d.address, KIND) for d in half]
            nodes.append(cluster.add_node(**NODE, resources=node_resources(group), labels=node_labels(group)))
            joined += group
        start_agents(joined)
        yield Farm()
    finally:
        for p in joined:
            ray.kill(ray.get_actor(p.resource, namespace=NAMESPACE))
        for node in nodes:
            cluster.remove_node(node)
        for d in devices:
            d.close()


def table_throughput(cluster: Cluster, args, folder: Path) -> None:
    space = _Subset(args.entries)
    n = len(space.unique_layer_configs())
    print(f"\n1. MnasNet-space table, {n} entries, {args.warmup}+{args.runs} simulated runs each, 2 Ray nodes")
    print(f"{'phones':>6} {'wall s':>8} {'entries/s':>10} {'speed-up':>9} {'of linear':>10}")
    base = None
    for phones in args.phones:
        with _farm(cluster, phones) as farm, Store(folder / f"table{phones}.db") as store:
            device = FarmDevice(farm, KIND)
            request = build_request(device, runs=args.runs, warmup=args.warmup)
            summary = build_lut(store, device, space, request=request, calibration_request=request, calibration=0)
        rate = summary.measured / summary.table_wall_s
        base = base or rate
        speedup = rate / base
        print(f"{phones:>6} {summary.table_wall_s:>8.1f} {rate:>10.2f} {speedup:>9.2f} {speedup / phones:>10.0%}")


def _timed_runs():
    """Wrap the loopback's host benchmark so the time benchmark_model itself runs is summed."""
    spent = [0.0]
    original = host_benchmark.run_host_benchmark

    def timed(*a, **k):
        start = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            spent[0] += time.perf_counter() - start

    host_benchmark.run_host_benchmark = timed
    return spent


def entry_overhead(args, folder: Path) -> None:
    layers = MnasNetSpace().unique_layer_configs()[: args.overhead_entries]
    paths = [write_tflite(layer, folder / f"o{i}.tflite", seed=i) for i, layer in enumerate(layers)]
    spent = _timed_runs()
    overhead: dict[int, list[float]] = {1: [], DEVICE_BATCH: []}
    with serve("pixel1", accept_new_keys=True) as phone, open_device(phone.address) as device:
        request = build_request(device, runs=_OVERHEAD_RUNS, warmup=1)
        for _ in range(args.overhead_rounds):
            for batch in overhead:  # interleaved: the host's speed drifts
                spent[0] = 0.0
                start = time.perf_counter()
                for i in range(0, len(paths), batch):
                    measure_many(paths[i:i + batch], device, request, rounds=1, probe=False)
                overhead[batch].append((time.perf_counter() - start - spent[0]) / len(paths))
    print(f"\n2. overhead per entry beyond benchmark_model's run, one real-running loopback phone, {len(paths)} "
          f"MnasNet layers, 1+{_OVERHEAD_RUNS} runs each, {args.overhead_rounds} interleaved rounds")
    for batch, values in overhead.items():
        label = "before batching (1 per call)" if batch == 1 else f"after batching (up to {batch} per call)"
        print(f"  {label:<32} median {statistics.median(values):.3f} s  (rounds: "
              + ", ".join(f"{v:.3f}" for v in values) + ")")


def search_wall(cluster: Cluster, args, folder: Path) -> None:
    print(f"\n3. search, {args.candidates} candidates, --latency measure on simulated Pixel 1s "
          f"({args.search_warmup}+{args.search_runs} runs each), zero-cost accuracy")
    walls = {}
    for phones in args.search_phones:
        config = SearchConfig(target_ms=80.0, latency="measure", device=KIND, samples=args.candidates, seed=0)
        with _farm(cluster, phones) as farm, Store(folder / f"search{phones}.db") as store:
            device = FarmDevice(farm, KIND)
            latency = FarmLatency(farm, KIND, build_request(device, runs=args.search_runs, warmup=args.search_warmup),
                                  space=config.make_space(), store=store)
            start = time.perf_counter()
            run_search(config, latency, store=store, out_dir=folder / f"search{phones}",
                       estimator=make_estimator(config.accuracy, seed=config.seed))
            walls[phones] = time.perf_counter() - start
        print(f"  {phones} phone(s): {walls[phones]:.1f} s"
              + (f"  ({walls[args.search_phones[0]] / walls[phones]:.2f}x faster)" if phones != args.search_phones[0]
                 else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ints = lambda text: [int(v) for v in text.split(",")]  # noqa: E731
    parser.add_argument("--entries", type=int, default=0, help="table entries (0: the whole space, 2837)")
    parser.add_argument("--phones", type=ints, default=[1, 2, 4, 8])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per table entry")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up runs per table entry")
    parser.add_argument("--overhead-entries", type=int, default=16)
    parser.add_argument("--overhead-rounds", type=int, default=3)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--search-phones", type=ints, default=[1, 4])
    parser.add_argument("--search-runs", type=int, default=10, help="timed runs per search candidate")
    parser.add_argument("--search-warmup", type=int, default=2, help="warm-up runs per search candidate")
    args = parser.parse_args()

    print(f"host: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    with tempfile.TemporaryDirectory(prefix="latprof-farm-bench-") as tmp:
        folder = Path(tmp)
        cluster = Cluster(initialize_head=True, head_node_args=NODE)
        cluster.connect(namespace=NAMESPACE)
        try:
            table_throughput(cluster, args, folder)
            entry_overhead(args, folder)
            search_wall(cluster, args, folder)
        finally:
            ray.shutdown()
            cluster.shutdown()


if __name__ == "__main__":
    main()

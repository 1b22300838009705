"""The device farm on a local multi-node Ray cluster (ray.cluster_utils.Cluster) with loopback phones.

Phones are simulated loopback devices in this process (benchmark_model sleeps for
the predicted latency), so several fit on a small machine; the agents run in Ray
worker processes on the node of "their" host and reach the phones over 127.0.0.1.
Each test adds its hosts as nodes and removes them at the end.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

# Ray resolves 127.0.0.1 to this machine's network address unless told it runs on one machine only:
# every node of the test cluster listens on loopback.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

from latprof.farm import NAMESPACE, Farm, FarmDevice, Phone, node_labels, node_resources, start_agents  # noqa: E402
from latprof.loopback import FailureMode, SimulatedSpeed, serve  # noqa: E402
from latprof.errors import LookupTableError  # noqa: E402
from latprof.lut import build_lut, load_entries  # noqa: E402
from latprof.measure import build_request  # noqa: E402
from latprof.space import get_space  # noqa: E402
from latprof.store import Store  # noqa: E402

KIND = "simulated-pixel1"
NODE = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False}


class CountingSpeed(SimulatedSpeed):
    """A simulated speed that records how many benchmark runs overlap on its phone."""

    def __init__(self, device: str = "pixel1") -> None:
        super().__init__(device, seed=0)
        self._lock, self.running, self.max_running, self.runs = threading.Lock(), 0, 0, 0

    def run(self, path, warmup_runs, num_runs):
        with self._lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.runs += 1
        try:
            return super().run(path, warmup_runs, num_runs)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture(scope="module")
def cluster():
    head = cluster_utils.Cluster(initialize_head=True, head_node_args={**NODE, "num_cpus": 1})
    head.connect(namespace=NAMESPACE)
    yield head
    ray.shutdown()
    head.shutdown()


@contextmanager
def phones(*profiles: str, speed_of: dict[int, str] | None = None, failures: dict[int, list] | None = None):
    """Started simulated loopback phones (profile per phone) and their speeds."""
    speeds = [CountingSpeed((speed_of or {}).get(i, p)) for i, p in enumerate(profiles)]
    devices = [serve(p, accept_new_keys=True, simulated=s, failures=(failures or {}).get(i, []))
               for i, (p, s) in enumerate(zip(profiles, speeds))]
    try:
        yield devices, speeds
    finally:
        for d in devices:
            d.close()


@contextmanager
def host(cluster, devices):
    """A Ray node declaring ``devices`` as its phones, with one agent each."""
    joined = [Phone(d.address, d.address, f"simulated-{d.profile.name}") for d in devices]
    node = cluster.add_node(**NODE, resources=node_resources(joined), labels=node_labels(joined))
    rows = start_agents(joined)
    try:
        yield node, rows
    finally:
        for p in joined:
            try:
                ray.kill(ray.get_actor(p.resource, namespace=NAMESPACE))
            except ValueError:
                pass  # its node is gone, and the agent with it
        if node in cluster.worker_nodes:
            cluster.remove_node(node)


def _build(store: Store, farm: Farm, kind: str = KIND, notify=lambda _: None):
    device = FarmDevice(farm, kind)
    request = build_request(device, runs=2, warmup=0)
    return build_lut(store, device, get_space("nasbench201"), request=request, calibration_request=request,
                     calibration=2, notify=notify)


def _serials(store: Store, kind: str = KIND) -> list[str]:
    return [e.fingerprint["serial"] for e in load_entries(store.connection, kind, "nasbench201")]


def _stored_once(db: Path, kind: str = KIND) -> None:
    with sqlite3.connect(db) as conn:
        dupes = conn.execute("SELECT layer_key, COUNT(*) FROM lut_entries WHERE device = ? GROUP BY layer_key "
                             "HAVING COUNT(*) > 1", (kind,)).fetchall()
        n = conn.execute("SELECT COUNT(*) FROM lut_entries WHERE device = ?", (kind,)).fetchone()[0]
    assert dupes == [] and n == len(get_space("nasbench201").unique_layer_configs())


def _when_stored(db: Path, count: int, action) -> threading.Thread:
    """Run ``action`` once ``count`` table entries are stored (a phone or host lost mid-build)."""
    def watch():
        while True:
            with sqlite3.connect(db) as conn:
                try:
                    if conn.execute("SELECT COUNT(*) FROM lut_entries").fetchone()[0] >= count:
                        break
                except sqlite3.OperationalError:  # the build has not created its tables yet
                    pass
            time.sleep(0.05)
        action()
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_phones_are_placed_on_their_hosts_and_jobs_go_to_the_asked_kind(cluster, tmp_path):
    with phones("pixel1", "pixel1", "pixel2") as (devices, speeds), host(cluster, devices[:2]) as (one, _), \
            host(cluster, devices[2:]) as (two, _):
        addr = [d.address for d in devices]
        farm = Farm()
        rows = {r["serial"]: r for r in farm.status()}
        assert {rows[a]["node_id"] for a in addr[:2]} == {one.node_id}
        assert rows[addr[2]]["node_id"] == two.node_id
        assert [rows[a]["config"] for a in addr] == [KIND, KIND, "simulated-pixel2"]
        assert ray.cluster_resources()[f"device:{KIND}"] == 2
        with Store(tmp_path / "f.db") as store:
            summary = _build(store, farm)
            assert summary.measured == 20 and summary.calibration_measured == 2
            assert set(_serials(store)) == set(addr[:2])  # sharded over both pixel1s
        assert speeds[2].runs == 0  # the pixel2 never served a pixel1 job
        assert max(s.max_running for s in speeds) == 1
        with Store(tmp_path / "f.db") as store:
            again = _build(store, farm)
        assert again.measured == 0 and again.already_stored == 20  # a rerun resumes
        _stored_once(tmp_path / "f.db")


def test_a_phone_unplugged_mid_build_loses_no_entry(cluster, tmp_path):
    db = tmp_path / "f.db"
    with phones("pixel1", "pixel1", "pixel1") as (devices, _), host(cluster, devices) as _node:
        addr = [d.address for d in devices]
        farm = Farm()
        _when_stored(db, 4, devices[0].close)
        with Store(db) as store:
            _build(store, farm)
        _stored_once(db)
        rows = {r["serial"]: r for r in farm.status()}
        assert rows[addr[0]]["state"] == "offline"
        with Store(db) as store:
            assert {addr[1], addr[2]} <= set(_serials(store))


def test_a_host_lost_mid_build_loses_no_entry(cluster, tmp_path):
    db = tmp_path / "f.db"
    with phones("pixel1", "pixel1", "pixel1") as (devices, _), host(cluster, devices[:1]) as _a, \
            host(cluster, devices[1:]) as (lost, _):
        addr = [d.address for d in devices]
        farm = Farm()
        _when_stored(db, 4, lambda: cluster.remove_node(lost))
        with Store(db) as store:
            _build(store, farm)
        _stored_once(db)
        gone = {r["serial"]: r["state"] for r in farm.status() if r["serial"] in (addr[1], addr[2])}
        assert set(gone.values()) == {"offline"}


def test_a_hot_phone_is_skipped_and_a_swapped_phone_refused(cluster, tmp_path):
    with phones("pixel1", "pixel1", "pixel1", failures={1: [FailureMode.HOT]}) as (devices, speeds), \
            host(cluster, devices) as _node:
        addr = [d.address for d in devices]
        port = devices[2].port
        devices[2].close()  # unplugged, and a Pixel 2 plugged in at the same address
        with serve("pixel2", port=port, accept_new_keys=True, simulated=SimulatedSpeed("pixel2")):
            farm = Farm(retry_hot_s=60)
            with Store(tmp_path / "f.db") as store:
                _build(store, farm)
                assert set(_serials(store)) == {addr[0]}
            rows = {r["serial"]: r for r in farm.status()}
        assert rows[addr[1]]["state"] == "hot" and speeds[1].runs == 0
        assert "not the simulated-pixel1 it joined as" in rows[addr[2]]["message"]


def test_a_phone_that_stays_hot_is_given_up_with_nothing_stored(cluster, tmp_path):
    with phones("pixel1", failures={0: [FailureMode.HOT]}) as (devices, speeds), host(cluster, devices) as _node:
        with Store(tmp_path / "f.db") as store:
            with pytest.raises(LookupTableError, match="lost or rejected"):
                _build(store, Farm(retry_hot_s=0.1, max_hot_s=0.5))
            assert _serials(store) == []
        assert speeds[0].runs == 0


def test_a_phone_that_disagrees_with_its_peers_is_flagged_and_not_mixed_in(cluster, tmp_path):
    # the third "pixel1" runs at a Pixel 6's predicted speed: same identity, other timings
    with phones("pixel1", "pixel1", "pixel1", speed_of={2: "pixel6"}) as (devices, _), host(cluster, devices) as _n:
        addr = [d.address for d in devices]
        farm = Farm()
        with Store(tmp_path / "f.db") as store:
            _build(store, farm)
            assert addr[2] not in _serials(store)
        rows = {r["serial"]: r for r in farm.status()}
        assert "its peers measured" in rows[addr[2]]["flagged"]
        assert not rows[addr[0]]["flagged"]


_OTHER_CLIENT = """
import sys, tempfile
from pathlib import Path
from latprof.devices import BenchmarkRequest
from latprof.farm import Farm
from latprof.space import get_space, write_tflite
space = get_space("nasbench201")
folder = Path(tempfile.mkdtemp())
paths = [write_tflite(l, folder / f"m{i}.tflite", seed=i) for i, l in enumerate(space.unique_layer_configs()[:6])]
farm = Farm(sys.argv[1])
done = list(farm.measure(paths, "simulated-pixel1", BenchmarkRequest(threads=1, warmup_runs=0, num_runs=2)))
print(len(done), len({m.fingerprint["serial"] for m in done}))
"""


def test_two_clients_share_one_farm(cluster, tmp_path):
    with phones("pixel1", "pixel1") as (devices, speeds), host(cluster, devices) as _node:
        addr = [d.address for d in devices]
        other = subprocess.Popen([sys.executable, "-c", _OTHER_CLIENT, cluster.address], stdout=subprocess.PIPE,
                                 text=True)
        with Store(tmp_path / "f.db") as store:
            _build(store, Farm())
        out, _ = other.communicate(timeout=300)
        assert other.returncode == 0 and out.split()[0] == "6"
        _stored_once(tmp_path / "f.db")
        assert max(s.max_running for s in speeds) == 1  # one job at a time per phone, whoever sent it
        jobs = sum(r["jobs_done"] for r in Farm().status() if r["serial"] in addr)
        assert jobs == sum(s.runs for s in speeds)


def test_cli_measure_on_the_farm_and_status(cluster, tmp_path):
    from click.testing import CliRunner

    from latprof.cli import main
    from latprof.space import write_tflite

    layers = get_space("nasbench201").unique_layer_configs()[:3]
    models = [str(write_tflite(layer, tmp_path / f"m{i}.tflite", seed=i)) for i, layer in enumerate(layers)]
    with phones("pixel1", "pixel1") as (devices, _), host(cluster, devices) as _node:
        addr = [d.address for d in devices]
        runner = CliRunner()
        result = runner.invoke(main, ["measure", *models, "--device", KIND, "--farm", cluster.address, "--runs", "2",
                                      "--warmup", "0", "--json", "--db", str(tmp_path / "f.db")])
        assert result.exit_code == 0, result.output
        records = json.loads(result.stdout)
        assert [r["model_name"] for r in sorted(records, key=lambda r: r["model_name"])] == ["m0.tflite", "m1.tflite",
                                                                                          "m2.tflite"]
        assert {r["fingerprint"]["serial"] for r in records} <= set(addr) and all(r["id"] for r in records)
        with Store(tmp_path / "f.db") as store:
            assert len(store.measurements(device=KIND)) == 3
        status = json.loads(runner.invoke(main, ["farm", "status", "--json"]).stdout)
        assert sum(r["jobs_done"] for r in status if r["serial"] in addr) == 3
        wrong = runner.invoke(main, ["measure", *models, "--device", "pixel9", "--farm", cluster.address])
        assert wrong.exit_code == 1 and "no pixel9 phone is online in the farm" in wrong.output


def test_join_needs_an_address_or_head():
    from click.testing import CliRunner

    from latprof.cli import main

    result = CliRunner().invoke(main, ["farm", "join"])
    assert result.exit_code == 2 and "--head" in result.output


def test_cli_search_measures_on_the_farm_and_estimates_accuracy_as_ray_tasks(cluster, tmp_path):
    from click.testing import CliRunner

    from latprof.cli import main
    from latprof.search import make_estimator

    with phones("pixel1", "pixel1") as (devices, _), host(cluster, devices) as _node:
        addr = [d.address for d in devices]
        result = CliRunner().invoke(main, [
            "search", "--target-ms", "5", "--device", KIND, "--latency", "measure", "--farm", cluster.address,
            "--workers", "2", "--samples", "8", "--batch-size", "4", "--space", "nasbench201",
            "--out", str(tmp_path / "s"), "--db", str(tmp_path / "f.db"), "--json"])
        assert result.exit_code == 0, result.output
        with Store(tmp_path / "f.db") as store:
            measured = store.measurements(device=KIND)
        assert len(measured) == 8 and {m.fingerprint["serial"] for m in measured} <= set(addr)
    rows = (tmp_path / "s" / "trials.csv").read_text().splitlines()
    header = rows[0].split(",")
    estimator, space = make_estimator("zero-cost", seed=0), get_space("nasbench201")
    for line in rows[1:]:
        row = dict(zip(header, line.split(",")))
        assert abs(float(row["accuracy"]) - estimator(space.parse(row["arch"]))) < 1e-6  # the tasks' scores


def test_ray_task_pool_runs_calls_in_ray_workers_and_turns_failures_into_results(cluster):
    from latprof.farm import RayTaskPool

    pool = RayTaskPool(1, print, ("initialized once per worker",))
    assert pool.submit(os.getpid).result(timeout=120) != os.getpid()
    acc, err, seconds = pool.submit(int, "not a number").result(timeout=120)
    assert acc is None and err.startswith("Ray task failed") and seconds == 0.0


def test_a_candidate_that_fails_on_every_phone_is_a_failed_trial_not_the_end_of_the_search(cluster):
    """FarmLatency turns a model that crashes benchmark_model on every phone into NaN (a failed trial);
    a plain Farm.run raises for it."""
    from latprof.errors import BenchmarkFailedError
    from latprof.farm import FarmLatency

    crash = [FailureMode.BENCHMARK_CRASH]
    with phones("pixel1", "pixel1", failures={0: crash, 1: crash}) as (devices, _), host(cluster, devices) as _node:
        farm = Farm()
        device = FarmDevice(farm, KIND)
        request = build_request(device, runs=2, warmup=0)
        space = get_space("nasbench201")
        latency = FarmLatency(farm, KIND, request, space=space)
        assert np.isnan(latency.predict_many([space.sample(0)])).all()
        from latprof.farm._agent import Job

        job = Job((("m.tflite", b"not a model"),), request)
        with pytest.raises(BenchmarkFailedError, match="on 2 phones"):
            list(farm.run(KIND, [job]))

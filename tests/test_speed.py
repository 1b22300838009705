"""Measurements at the device's reference speed, interleaved rounds and ratios (latprof.speed).

A fake device whose probe and model times are set step by step checks that the
rounds run in the right order and that the reference rule is applied as
defined; the host and the loopback phone check the real paths end to end.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
from click.testing import CliRunner

from latprof.benchmarking.record import LatencyStats
from latprof.cli import main
from latprof.devices import BenchmarkRequest, BenchmarkRun, Device, DeviceConfig, DeviceState
from latprof.errors import ArchitectureError, ModelFileError
from latprof.loopback import serve
from latprof.measure import measure, measure_many
from latprof.speed import (
    PROBE_NAME, SpeedReference, probe_factor, reference_model, reference_speed, register_reference, run_identity,
    split_runs,
)
from latprof.store import Store

PROBE = "latprof-probe-v1.tflite"
BASE_US = {PROBE: 200.0}  # the probe; the models' base times are set per test


class _ClockDevice(Device):
    """Each benchmark takes the model's base time times the next slowdown of a list; the calls are recorded."""

    def __init__(self, base_us: dict[str, float], slowdowns: list[float] | None = None) -> None:
        self.config = DeviceConfig(name="clockphone", kind="android")
        self.base_us, self.slowdowns, self.calls = {**BASE_US, **base_us}, list(slowdowns or []), []

    def fingerprint(self):
        return {"serial": "CLOCK0001"}

    def state(self, request):
        return DeviceState()

    def run_benchmark(self, model, request):
        slow = self.slowdowns.pop(0) if self.slowdowns else 1.0
        self.calls.append((model.name, request.num_runs))
        us = [self.base_us[model.name] * slow] * request.num_runs
        return BenchmarkRun(stats=LatencyStats.from_samples(us), runtime="tflite benchmark_model",
                            runtime_version="sha256:clock", command=f"benchmark_model --graph={model.name}",
                            settings={"threads": request.threads, "core_mask": "f0", "delegate": "xnnpack"},
                            run_us=us)


def _request(runs: int) -> BenchmarkRequest:
    return BenchmarkRequest(threads=1, warmup_runs=0, num_runs=runs)


@pytest.fixture()
def models(tiny_tflite, tmp_path):
    paths = {}
    for name in ("a.tflite", "b.tflite", "ref.tflite"):
        paths[name] = tmp_path / name
        shutil.copy(tiny_tflite, paths[name])
    return paths


def test_runs_are_split_evenly_over_the_rounds():
    assert split_runs(10, 3) == [4, 3, 3]
    assert split_runs(2, 5) == [1, 1]  # never an empty round
    assert split_runs(7, 1) == [7]


def test_rounds_interleave_probe_reference_and_models(models, tmp_path):
    device = _ClockDevice({"a.tflite": 1000.0, "b.tflite": 2000.0, "ref.tflite": 4000.0})
    with Store(tmp_path / "db.sqlite") as store:
        results = measure_many([models["a.tflite"], models["b.tflite"]], device, _request(6),
                               reference=models["ref.tflite"], rounds=3, store=store)
    one_round = [(PROBE, 10), ("ref.tflite", 2), ("a.tflite", 2), ("b.tflite", 2)]
    assert device.calls == one_round * 3 + [(PROBE, 10)]
    assert [m.model_name for m in results] == ["ref.tflite", "a.tflite", "b.tflite"]
    assert [m.settings["position"] for m in results] == [0, 1, 2]
    assert [m.settings["role"] for m in results] == ["reference", "model", "model"]
    assert len({m.settings["group"] for m in results}) == 1 and results[0].settings["group"]
    assert all(m.settings["round_runs"] == [2, 2, 2] and m.stats.count == 6 for m in results)


def test_reference_factor_rescales_each_round_by_the_probes_around_it(models):
    # steps: probe, a (round 0), probe, a (round 1), probe, a (round 2), probe
    device = _ClockDevice({"a.tflite": 1000.0}, slowdowns=[1.0, 1.0, 1.5, 1.5, 1.5, 1.0, 1.0])
    (m,) = measure_many([models["a.tflite"]], device, _request(6), rounds=3)
    speed = m.reference_speed
    assert speed["probe_ms"] == pytest.approx([0.2, 0.3, 0.3, 0.2])
    assert speed["reference_probe_ms"] == pytest.approx(0.2) and speed["beta"] == 1.0  # the fastest probe
    assert speed["round_factors"] == pytest.approx([0.2 / 0.25, 0.2 / 0.3, 0.2 / 0.25])
    assert speed["round_median_ms"] == pytest.approx([0.8, 1.0, 0.8])
    assert m.stats.median_ms == pytest.approx(1.0)  # raw: four runs at 1.0 ms, two at 1.5 ms
    assert speed["median_ms"] == pytest.approx(0.8) and speed["factor"] == pytest.approx(0.8)


def test_a_predictors_reference_comes_first_and_the_devices_own_is_kept(models, tmp_path):
    with Store(tmp_path / "db.sqlite") as store:
        first = measure(models["a.tflite"], _ClockDevice({"a.tflite": 1000.0}, [1.2] * 7), _request(3),
                        rounds=3, probe=True, store=store)
        faster = measure(models["a.tflite"], _ClockDevice({"a.tflite": 1000.0}, [1.0] * 7), _request(3),
                         rounds=3, probe=True, store=store)
        assert first.reference_speed["reference_probe_ms"] == pytest.approx(0.24)
        assert faster.reference_speed["reference_probe_ms"] == pytest.approx(0.24)  # established once, kept
        assert faster.reference_speed["median_ms"] == pytest.approx(1.0 * 0.24 / 0.2)
        identity = run_identity(_ClockDevice({}).run_benchmark(_probe_info(), _request(1)))
        register_reference(store, "clockphone", "mnasnet", identity, SpeedReference(0.25, 0.5, "predictor X"))
        fitted = measure(models["a.tflite"], _ClockDevice({"a.tflite": 1000.0}, [1.0] * 7), _request(3),
                         rounds=3, probe=True, store=store, space="mnasnet")
        assert reference_speed(store, "clockphone", identity).source == "predictor X"
    speed = fitted.reference_speed
    assert (speed["source"], speed["reference_probe_ms"], speed["beta"]) == ("predictor X", 0.25, 0.5)
    assert speed["median_ms"] == pytest.approx(1.0 * probe_factor([0.2, 0.2], 0.25, 0.5))


def _probe_info():
    from latprof.benchmarking.record import inspect_model
    from latprof.speed import probe_model

    return inspect_model(probe_model())


def test_ratio_per_round_survives_a_slowdown_of_both(models):
    # rounds: probe, ref, a; round 1 runs 2x slower, and in round 2 only the model is slowed
    device = _ClockDevice({"a.tflite": 1000.0, "ref.tflite": 4000.0},
                          slowdowns=[1, 1, 1, 2, 2, 2, 1, 1, 1.2, 1])
    ref, a = measure_many([models["a.tflite"]], device, _request(3), reference=models["ref.tflite"], rounds=3)
    ratio = a.reference_ratio
    assert ratio["rounds"] == pytest.approx([0.25, 0.25, 0.30])
    assert (ratio["median"], ratio["min"], ratio["max"]) == pytest.approx((0.25, 0.25, 0.30))
    assert ratio["reference"] == "ref.tflite" and ratio["reference_sha256"] == ref.model_sha256
    assert ref.reference_ratio is None


def test_stored_record_round_trips_with_raw_and_reference_figures(models, tmp_path):
    device = _ClockDevice({"a.tflite": 1000.0, "ref.tflite": 3000.0}, slowdowns=[1, 1, 1, 1.3, 1.3, 1.3, 1.3])
    with Store(tmp_path / "db.sqlite") as store:
        results = measure_many([models["a.tflite"]], device, _request(4), reference=models["ref.tflite"],
                               rounds=2, store=store)
        stored = store.measurements()
    assert [s.id for s in stored] == [m.id for m in results]
    for got, want in zip(stored, results):
        assert got.stats == want.stats and got.settings == want.settings
        assert got.reference_speed == want.reference_speed and got.reference_ratio == want.reference_ratio
    assert stored[1].reference_speed["median_ms"] != stored[1].stats.median_ms  # both figures are kept


def test_reference_model_is_written_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LATPROF_CACHE", str(tmp_path / "cache"))
    path = reference_model("mobilenet-v2")
    assert path.parent == tmp_path / "cache" / "references" and path.stat().st_size > 1e6
    stamp = path.stat().st_mtime_ns
    assert reference_model("mobilenet-v2") == path and path.stat().st_mtime_ns == stamp
    with pytest.raises(ArchitectureError, match="unknown reference 'resnet-50'"):
        reference_model("resnet-50")
    with pytest.raises(ModelFileError, match="not found"):
        reference_model(str(tmp_path / "missing.tflite"))


def _cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_measure_json_on_the_host_has_raw_stats_and_the_reference_speed(tiny_tflite):
    result = _cli("measure", str(tiny_tflite), "--runs", "4", "--warmup", "1", "--rounds", "2", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["stats"]["count"] == 4 and len(record["run_us"]) == 4
    speed = record["reference_speed"]
    assert len(speed["probe_ms"]) == 3 and len(speed["round_factors"]) == 2
    assert speed["median_ms"] == pytest.approx(record["stats"]["median_ms"] * speed["factor"])
    assert speed["reference_probe_ms"] == min(speed["probe_ms"])  # the first measurement sets the device's own
    assert "the device's own" in speed["source"]
    settings = record["settings"]
    assert settings["probe"] == PROBE_NAME and settings["rounds"] == 2 and settings["round_runs"] == [2, 2]
    expected = "SCHED_FIFO priority 1" if os.geteuid() == 0 else "SCHED_"
    assert settings["scheduling"].startswith(expected)


def test_several_models_on_the_host_share_one_group(tiny_tflite, tmp_path):
    other = tmp_path / "other.tflite"
    shutil.copy(tiny_tflite, other)
    result = _cli("measure", str(tiny_tflite), str(other), "--runs", "2", "--warmup", "0", "--rounds", "2", "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [r["model_name"] for r in records] == ["tiny model.tflite", "other.tflite"]
    assert records[0]["settings"]["group"] == records[1]["settings"]["group"]
    assert records[0]["reference_speed"]["probe_ms"] == records[1]["reference_speed"]["probe_ms"]
    with Store() as store:
        assert [m.settings["position"] for m in store.measurements()] == [0, 1]


def test_loopback_phone_times_the_probe_with_benchmark_model(tiny_tflite):
    with serve("pixel2", accept_new_keys=True) as phone:
        result = _cli("measure", str(tiny_tflite), "--device", phone.address, "--runs", "2", "--warmup", "0",
                      "--rounds", "2", "--reference", str(tiny_tflite), "--json")
    assert result.exit_code == 0, result.output
    ref, model = json.loads(result.stdout)
    assert model["command"].startswith("taskset f0 /data/local/tmp/benchmark_model")
    assert len(model["reference_speed"]["probe_ms"]) == 3 and model["settings"]["probe"] == PROBE_NAME
    assert model["reference_ratio"]["reference"] == "tiny model.tflite" and len(model["reference_ratio"]["rounds"]) == 2
    assert ref["settings"]["role"] == "reference" and model["settings"]["group"] == ref["settings"]["group"]


def _probed_predictor(db) -> float:
    """A predictor fitted on a synthetic table whose rows were timed with the probe at 0.3 ms; its beta."""
    import random
    from importlib import metadata

    from latprof.benchmarking.host import default_host_cpu
    from latprof.lut import _tables as T
    from latprof.predictor import fit_predictor, save_predictor
    from latprof.space import MnasNetSpace, arch_layers, format_arch

    space = MnasNetSpace(0.35, 32)
    cpu = default_host_cpu()
    settings = {"method": "synthetic", "probe": PROBE_NAME, "runtime": "ai-edge-litert",
                "runtime_version": metadata.version("ai-edge-litert"), "threads": 1,
                "core_mask": None if cpu is None else format(1 << cpu, "x"), "delegate": "xnnpack (LiteRT default)",
                "probe_ms": [0.3, 0.3]}
    layer_ms = lambda layer: 0.01 + layer.macs() / 1e8  # noqa: E731
    with Store(db) as store:
        for layer in space.unique_layer_configs():
            ms = layer_ms(layer)
            T.add_entry(store.connection, T.LutEntry("local", "mnasnet", layer.layer_key(), ms, ms, 0.0, ms, 1,
                                                     settings, created_at=T.now()))
        for i in range(6):
            arch = space.sample(random.Random(i))
            ms = 0.05 + sum(layer_ms(layer) for layer in arch_layers(arch))
            T.add_calibration(store.connection, T.CalibrationRow("local", "mnasnet", format_arch(arch),
                                                                 space.params(), ms, ms, 0.0, ms, 1, settings))
        fitted = fit_predictor(store, "local", "mnasnet")
        save_predictor(store, fitted)
    return fitted.document["speed"]["probe_beta"]


def test_predict_states_its_speed_and_scales_to_the_current_one(tmp_path):
    db = str(tmp_path / "db.sqlite")
    beta = _probed_predictor(db)
    plain = json.loads(_cli("predict", "mnasnet-a1@0.35,32", "--db", db, "--json").stdout)
    assert plain["reference_speed"]["probe_ms"] == pytest.approx(0.3) and "current_speed" not in plain
    now = json.loads(_cli("predict", "mnasnet-a1@0.35,32", "--db", db, "--json", "--at-current-speed").stdout)
    current = now["current_speed"]
    assert current["factor"] == pytest.approx((current["probe_ms"] / 0.3) ** beta)
    assert current["latency_ms"] == pytest.approx(plain["latency_ms"] * current["factor"])
    text = _cli("predict", "mnasnet-a1@0.35,32", "--db", db).output
    assert "at the reference speed: probe 0.3000 ms (the mnasnet predictor fitted" in text



def test_measure_uses_the_predictors_reference_of_the_device(tmp_path, tiny_tflite):
    db = str(tmp_path / "db.sqlite")
    _probed_predictor(db)
    record = json.loads(_cli("measure", str(tiny_tflite), "--db", db, "--runs", "2", "--warmup", "0",
                             "--rounds", "2", "--json").stdout)
    speed = record["reference_speed"]
    assert speed["source"].startswith("the mnasnet predictor fitted") and speed["reference_probe_ms"] == 0.3

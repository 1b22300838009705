"""`latprof build-lut`: entries committed one by one, resumed after Ctrl-C and kill -9; fit and predict on it.

The real host path (one pinned batch process) on the MnasNet space at resolution
32, depth multiplier 0.35 (2373 layer configurations), one timed run per entry.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from latprof.benchmarking.record import LatencyStats
from latprof.cli.lut import COMMANDS
from latprof.devices import BenchmarkRun, Device, DeviceState
from latprof.devices.config import DeviceConfig, ThermalLimits
from latprof.errors import LookupTableError
from latprof.lut import build_lut, load_entries
from latprof.measure import build_request
from latprof.space import MnasNetSpace
from latprof.space._flatbuffer import write_tflite
from latprof.store import Store

SPACE = MnasNetSpace(0.35, 32)
ARGS = ["--resolution", "32", "--depth-multiplier", "0.35", "--runs", "1", "--warmup", "0", "--calibration", "4",
        "--calibration-runs", "3", "--no-probe", "--no-realtime", "--no-op-probes"]
_RUN = "import sys; from latprof.cli.lut import build_lut; build_lut.main(sys.argv[1:], prog_name='latprof build-lut')"


def _start(db: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _RUN, "--db", str(db), *ARGS, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows(db: Path) -> dict[str, tuple]:
    with sqlite3.connect(db) as conn:
        return {r[0]: r[1:] for r in conn.execute(
            "SELECT layer_key, median_ms, runs, settings, created_at FROM lut_entries")}


def _wait_for(db: Path, count: int, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    """Poll the database until it holds ``count`` entries (the build is still running)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                if len(_rows(db)) >= count:
                    return
            except sqlite3.OperationalError:  # schema not created yet
                pass
        time.sleep(0.1)
    raise AssertionError(f"the build did not reach {count} entries (exit {proc.poll()})")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A build interrupted by Ctrl-C, then by kill -9, then run to the end; what each step saw."""
    db = tmp_path_factory.mktemp("lut") / "lut.db"
    steps = {}
    proc = _start(db)
    _wait_for(db, 150, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    steps["sigint"] = (proc.returncode, err, _rows(db))
    proc = _start(db)
    _wait_for(db, len(steps["sigint"][2]) + 150, proc)
    proc.kill()
    proc.wait(timeout=60)
    steps["kill"] = _rows(db)
    done = subprocess.run([sys.executable, "-c", _RUN, "--db", str(db), *ARGS], capture_output=True, text=True,
                          timeout=300, check=False)
    steps["final"] = (done.returncode, done.stdout, done.stderr, _rows(db))
    again = subprocess.run([sys.executable, "-c", _RUN, "--db", str(db), *ARGS], capture_output=True, text=True,
                           timeout=120, check=False)
    steps["again"] = (again.returncode, again.stdout)
    return db, steps


def test_ctrl_c_stops_cleanly_and_keeps_what_was_measured(built):
    _, steps = built
    code, err, rows = steps["sigint"]
    assert code == 130 and "run the same command again to resume" in err
    assert 150 <= len(rows) < 2373
    assert all(median > 0 and runs == 1 and json.loads(settings)["num_runs"] == 1
               for median, runs, settings, _ in rows.values())


def test_resume_after_kill_measures_only_what_is_missing(built):
    _, steps = built
    killed = steps["kill"]
    code, out, err, final = steps["final"]
    assert code == 0, err
    assert len(killed) >= len(steps["sigint"][2]) + 150
    total = len(SPACE.unique_layer_configs())
    assert f"table: {total} entries ({len(killed)} already stored, {total - len(killed)} measured now)" in out
    assert set(final) == {layer.layer_key() for layer in SPACE.unique_layer_configs()}
    assert all(final[key] == row for key, row in killed.items())  # nothing stored was measured again
    assert "calibration: 4 architectures (0 already stored, 4 measured now)" in out
    code, out = steps["again"]
    assert code == 0 and f"({total} already stored, 0 measured now)" in out and "(4 already stored" in out


def test_every_entry_records_its_settings(built):
    db, _ = built
    with Store(db) as store:
        entries = load_entries(store.connection, "local", "mnasnet")
        builds = store.connection.execute("SELECT params, finished_at FROM lut_builds").fetchall()
    s = entries[0].settings
    assert s["threads"] == 1 and s["warmup_runs"] == 0 and s["num_runs"] == 1 and s["runtime"] == "ai-edge-litert"
    assert s["runtime_version"] and s["delegate"].startswith("xnnpack") and s["method"].startswith("micro-model")
    assert s["scheduling"].startswith("SCHED_OTHER") and s["probe"] is None
    assert entries[0].fingerprint["model"]
    assert json.loads(builds[0][0]) == SPACE.params() and builds[0][1]


def test_other_settings_are_refused_on_resume(built, tmp_path):
    db, _ = built
    copy = tmp_path / "copy.db"
    with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    with Store(copy) as store:
        store.connection.execute("DELETE FROM lut_entries WHERE rowid IN (SELECT rowid FROM lut_entries LIMIT 3)")
        store.connection.commit()
        from latprof.devices import open_device

        with open_device("local") as device, pytest.raises(LookupTableError, match=r"num_runs=1 \(now 2\).*--rebuild"):
            build_lut(store, device, SPACE, request=build_request(device, runs=2, warmup=0),
                      calibration_request=build_request(device), calibration=0, realtime=False, probe=False)


def _cli(db: Path, *args: str):
    group = click.Group(commands={c.name: c for c in COMMANDS})
    return CliRunner().invoke(group, list(args), obj={"db": str(db)}, catch_exceptions=False)


def test_fit_and_predict_on_the_measured_table(built, tmp_path):
    db, _ = built
    result = _cli(db, "fit")
    assert result.exit_code == 0, result.output
    assert "4 calibration architectures" in result.output and "FLOPs-linear" in result.output
    result = _cli(db, "predict", "mnasnet-a1@0.35,32", "--json")
    data = json.loads(result.output)
    assert data["low_ms"] < data["latency_ms"] < data["high_ms"]
    assert {r["source"] for r in data["layers"]} == {"table", "regression"}  # A1's widths are not in the space
    assert data["measured_with"] == {"threads": 1, "delegate": "xnnpack", "dtype": "float32"}  # what the table was built with
    arch = SPACE.sample(7)
    path = write_tflite(arch, tmp_path / "arch.tflite")
    text = _cli(db, "predict", str(path), str(arch)).output
    assert text.count("from the table, 0 from the regression") == 2
    assert "for 1 thread(s), delegate xnnpack" in text
    lines = text.splitlines()
    assert lines[1].split(" ms")[0] == lines[lines.index(str(arch)) + 1].split(" ms")[0]  # file == string


def test_predict_without_a_table_names_the_command(tmp_path):
    group = click.Group(commands={c.name: c for c in COMMANDS})
    result = CliRunner().invoke(group, ["predict", "mnasnet-a1", "--device", "pixel1"],
                                obj={"db": str(tmp_path / "empty.db")})
    assert isinstance(result.exception, LookupTableError)
    assert str(result.exception) == ("no lookup table for device pixel1 (space mnasnet); "
                                     "run `latprof build-lut --device pixel1` or "
                                     "`latprof calibrate --device pixel1 --from CSV|published`")


# ---------------------------------------------------------------- a phone, through latprof.measure


class _FakePhone(Device):
    """A phone whose benchmark_model time is a function of the model size; hot for its first state reads."""

    def __init__(self, hot_reads: int) -> None:
        self.config = DeviceConfig(name="fakephone", kind="android",
                                   thermal=ThermalLimits(max_temp_c=45, cooldown_target_c=38, cooldown_max_wait_s=30))
        self.hot_reads, self.state_reads, self.runs = hot_reads, 0, []

    def fingerprint(self):
        return {"serial": "FAKE0001", "model": "Fake Phone"}

    def state(self, request):
        self.state_reads += 1
        return DeviceState(temps_c={"thermal_zone0:cpu": 50.0 if self.state_reads <= self.hot_reads else 30.0})

    def run_benchmark(self, model, request):
        self.runs.append(model.path.name)
        us = [model.size_bytes / 100.0] * request.num_runs
        return BenchmarkRun(stats=LatencyStats.from_samples(us), runtime="tflite benchmark_model",
                            runtime_version="sha256:fake", command=f"taskset f0 benchmark_model --graph={model.name}",
                            settings={"threads": request.threads, "warmup_runs": request.warmup_runs,
                                      "num_runs": request.num_runs, "core_mask": "f0", "delegate": "xnnpack"})


class _FirstLayers(MnasNetSpace):
    """The tiny space, cut to its first 25 layer configurations."""

    def unique_layer_configs(self):
        return super().unique_layer_configs()[:25]


@pytest.mark.parametrize("wait_cool", [True, False])
def test_phone_entries_go_through_measure_with_cool_down(tmp_path, monkeypatch, wait_cool):
    monkeypatch.setattr("latprof.measure._COOL_POLL_S", 0.0)
    phone = _FakePhone(hot_reads=3)
    space = _FirstLayers(0.35, 32)
    with Store(tmp_path / "phone.db") as store:
        summary = build_lut(store, phone, space, request=build_request(phone, runs=5, warmup=1),
                            calibration_request=build_request(phone, runs=4), calibration=2, wait_cool=wait_cool)
        entries = load_entries(store.connection, "fakephone", "mnasnet")
    assert summary.measured == 25 and summary.calibration_measured == 2 and len(phone.runs) == 27
    first = entries[0]
    assert first.settings["core_mask"] == "f0" and first.settings["runtime"] == "tflite benchmark_model"
    assert first.settings["num_runs"] == 5 and first.settings["method"].startswith("micro-model")
    assert first.fingerprint == {"serial": "FAKE0001", "model": "Fake Phone"}
    if wait_cool:  # waited for the phone to cool, so the first entry was measured cool
        assert not first.warnings
    else:
        assert any("device is hot" in w for w in first.warnings)

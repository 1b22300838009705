"""The SQLite results store."""

from __future__ import annotations

import sqlite3

import pytest

from latprof.benchmarking.record import LatencyStats, Measurement
from latprof.errors import StoreError
from latprof.store import SCHEMA_VERSION, Store


def _measurement(**overrides) -> Measurement:
    values = dict(
        model_name="m.tflite", model_sha256="ab" * 32, model_bytes=1234, device="local",
        fingerprint={"serial": "host", "model": "cpu"}, runtime="ai-edge-litert", runtime_version="2.3.0",
        settings={"threads": 1, "core_mask": "2"}, command="cmd", stats=LatencyStats.from_samples([1000, 2000, 3000]),
        run_us=[1000.0, 2000.0, 3000.0], op_profile=[{"node_type": "CONV_2D", "name": "c", "first_ms": 1.0, "avg_ms": 0.5}],
    )
    values.update(overrides)
    return Measurement(**values)


def test_round_trip_keeps_every_field(tmp_path):
    original = _measurement()
    with Store(tmp_path / "r.db") as store:
        new_id = store.add_measurement(original)
        (loaded,) = store.measurements()
    assert loaded.id == new_id
    assert loaded.stats == original.stats
    assert loaded.stats.median_ms == 2.0
    assert loaded.settings == original.settings and loaded.fingerprint == original.fingerprint
    assert loaded.run_us == original.run_us and loaded.op_profile == original.op_profile


def test_filters_and_frame(tmp_path):
    with Store(tmp_path / "r.db") as store:
        store.add_measurement(_measurement())
        store.add_measurement(_measurement(device="pixel1", model_name="other.tflite"))
        assert [m.device for m in store.measurements(device="pixel1")] == ["pixel1"]
        assert [m.model_name for m in store.measurements(model="m.tfl")] == ["m.tflite"]
        frame = store.measurements_frame()
    assert list(frame["device"]) == ["local", "pixel1"]
    assert frame.loc[0, "setting_core_mask"] == "2"


def test_a_failed_write_stores_nothing(tmp_path):
    with Store(tmp_path / "r.db") as store:
        bad = _measurement(op_profile=[{"node_type": "CONV_2D", "name": "c"}])  # no avg_ms
        with pytest.raises(KeyError):
            store.add_measurement(bad)
        assert store.measurements() == []


def test_schema_is_versioned_and_newer_databases_are_refused(tmp_path):
    path = tmp_path / "r.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer latprof"):
        Store(path)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "r.db"
    path.write_text("not sqlite at all, " * 100)
    with pytest.raises(StoreError, match="cannot open results database"):
        Store(path)

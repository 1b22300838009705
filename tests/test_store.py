"""The SQLite results store."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from latprof.benchmarking.record import LatencyStats, Measurement
from latprof.errors import StoreError
from latprof.store import SCHEMA_VERSION, Store, StoredPredictor


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


def _document(**extra) -> dict:
    return {"format": "test-format/1", "model": {"intercept_ms": 0.5, "per_key": {"cn_k3": [1.25, "table"]}}, **extra}


def test_a_stored_predictor_reads_back_whole(tmp_path):
    with Store(tmp_path / "r.db") as store:
        doc, report = _document(created_at="2024-01-02T03:04:05+00:00"), {"loo": {"mape": 0.07}, "n": 12}
        new_id = store.save_predictor("pixel2", "nasbench201", doc, report)
        got = store.latest_predictor("pixel2", "nasbench201")
    assert isinstance(got, StoredPredictor)
    assert got == StoredPredictor(new_id, "pixel2", "nasbench201", "test-format/1", doc, report,
                                  "2024-01-02T03:04:05+00:00")


def test_a_document_without_created_at_is_stamped_now(tmp_path):
    with Store(tmp_path / "r.db") as store:
        store.save_predictor("local", "mnasnet", _document(), {})
        got = store.latest_predictor("local", "mnasnet")
    assert datetime.fromisoformat(got.created_at) <= datetime.now(timezone.utc)
    assert datetime.now(timezone.utc) - datetime.fromisoformat(got.created_at) < timedelta(hours=1)


def test_the_newest_predictor_wins_and_devices_and_spaces_stay_apart(tmp_path):
    with Store(tmp_path / "r.db") as store:
        store.save_predictor("pixel2", "fbnet", _document(fit=1), {})
        store.save_predictor("pixel2", "fbnet", _document(fit=2), {})
        store.save_predictor("pixel3", "fbnet", _document(fit=3), {})
        store.save_predictor("pixel2", "mnasnet", _document(fit=4), {})
        assert store.latest_predictor("pixel2", "fbnet").document["fit"] == 2
        assert store.latest_predictor("pixel3", "fbnet").document["fit"] == 3
        assert store.latest_predictor("pixel2", "mnasnet").document["fit"] == 4


def test_a_whole_model_predictor_serves_a_space_that_has_none(tmp_path):
    with Store(tmp_path / "r.db") as store:
        store.save_predictor("pixel1", "*", _document(fit="whole"), {})
        assert store.latest_predictor("pixel1", "mnasnet").document["fit"] == "whole"
        assert store.latest_predictor("pixel1", "*").space == "*"
        store.save_predictor("pixel1", "mnasnet", _document(fit="space"), {})
        store.save_predictor("pixel1", "*", _document(fit="whole, newer"), {})
        assert store.latest_predictor("pixel1", "mnasnet").document["fit"] == "space"


def test_no_stored_predictor_is_none(tmp_path):
    with Store(tmp_path / "r.db") as store:
        assert store.latest_predictor("pixel2", "fbnet") is None
        store.save_predictor("pixel3", "fbnet", _document(), {})
        assert store.latest_predictor("pixel2", "fbnet") is None


def test_a_predictor_document_without_format_is_refused_and_not_stored(tmp_path):
    with Store(tmp_path / "r.db") as store:
        with pytest.raises(StoreError, match="no 'format'"):
            store.save_predictor("pixel2", "fbnet", {"model": {}}, {})
        assert store.latest_predictor("pixel2", "fbnet") is None

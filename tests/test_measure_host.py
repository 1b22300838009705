"""`latprof measure` on the host, `results`, and the bad inputs of the measurement path."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from latprof.cli import main
from latprof.store import Store


def _run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _stored() -> list:
    with Store() as store:
        return store.measurements()


def test_measure_on_host_stores_a_full_record(tiny_tflite):
    result = _run("measure", str(tiny_tflite), "--runs", "7", "--warmup", "2", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    stats = record["stats"]
    assert stats["count"] == 7 and len(record["run_us"]) == 7
    assert stats["min_ms"] <= stats["p5_ms"] <= stats["median_ms"] <= stats["p95_ms"] <= stats["max_ms"]
    assert record["latency_ms"] == stats["median_ms"] > 0
    assert record["device"] == "local" and record["runtime"] == "ai-edge-litert" and record["runtime_version"]
    settings = record["settings"]
    assert settings["threads"] == 1 and settings["warmup_runs"] == 2 and settings["num_runs"] == 7
    if hasattr(os, "sched_getaffinity"):
        assert settings["pinned_cpu"] == max(os.sched_getaffinity(0))
    assert record["fingerprint"]["model"] and record["fingerprint"]["kernel"]
    assert "cores" in record["state_before"] and "temps_c" in record["state_after"]
    (stored,) = _stored()
    assert stored.id == record["id"] and stored.model_sha256 == record["model_sha256"]
    assert stored.run_us == record["run_us"]


def test_human_summary_and_op_profile(tiny_tflite):
    result = _run("measure", str(tiny_tflite), "--runs", "3", "--warmup", "1", "--op-profile")
    assert result.exit_code == 0, result.output
    assert "tiny model.tflite on local:" in result.output
    assert "median" in result.output and "p95" in result.output and "ai-edge-litert" in result.output
    (stored,) = _stored()
    kinds = [op["node_type"] for op in stored.op_profile]
    assert kinds[:2] == ["CONV_2D", "DEPTHWISE_CONV_2D"]  # BN and ReLU6 folded into the conv
    assert all(op["avg_ms"] > 0 for op in stored.op_profile)


def test_results_lists_and_exports_csv(tiny_tflite, tmp_path):
    assert _run("measure", str(tiny_tflite), "--runs", "2", "--warmup", "0").exit_code == 0
    listing = _run("results", "--device", "local")
    assert "tiny model.tflite" in listing.output
    csv_path = tmp_path / "out.csv"
    assert _run("results", "--csv", str(csv_path)).exit_code == 0
    import pandas as pd

    frame = pd.read_csv(csv_path)
    assert list(frame["model"]) == ["tiny model.tflite"] and frame.loc[0, "setting_threads"] == 1


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "model file not found"),
        (b"", "is empty"),
        (b"hello, this is a text file and not a model\n" * 4, "not a TFLite flatbuffer"),
    ],
)
def test_bad_model_files_are_one_line_errors_and_store_nothing(tmp_path, content, message):
    path = tmp_path / "model.tflite"
    if content is not None:
        path.write_bytes(content)
    result = CliRunner().invoke(main, ["measure", str(path)])
    assert result.exit_code == 1
    assert message in result.output and result.output.startswith("Error: ")
    assert result.output.strip().count("\n") == 0
    assert _stored() == []


def test_truncated_model_is_rejected(tiny_tflite, tmp_path):
    path = tmp_path / "cut.tflite"
    path.write_bytes(tiny_tflite.read_bytes()[:100])
    result = CliRunner().invoke(main, ["measure", str(path)])
    assert result.exit_code == 1 and "truncated" in result.output


def test_unknown_device_names_the_fix(tiny_tflite):
    result = CliRunner().invoke(main, ["measure", str(tiny_tflite), "--device", "no-such-phone"])
    assert result.exit_code == 1
    assert "unknown device 'no-such-phone'" in result.output and "latprof devices" in result.output


def test_no_device_connected(tiny_tflite, monkeypatch):
    monkeypatch.setenv("LATPROF_ADB_HOSTS", "127.0.0.1:1")  # nothing listens on port 1
    monkeypatch.setattr("latprof.devices._tcp_addresses", lambda: ["127.0.0.1:1"])
    result = CliRunner().invoke(main, ["measure", str(tiny_tflite), "--device", "pixel3"])
    assert result.exit_code == 1
    assert "no connected device matches pixel3" in result.output


def test_timeout_is_an_error_and_stores_nothing(tiny_tflite):
    result = CliRunner().invoke(main, ["measure", str(tiny_tflite), "--timeout", "0.01"])
    assert result.exit_code == 1 and "exceeded 0.01 s" in result.output and "--timeout" in result.output
    assert _stored() == []


def test_noisy_runs_are_flagged():
    from latprof.benchmarking.record import LatencyStats
    from latprof.measure import _noise_warnings

    steady = LatencyStats.from_samples([10_000 + i for i in range(20)])
    noisy = LatencyStats.from_samples([10_000] * 15 + [30_000] * 5)
    assert _noise_warnings(steady) == []
    assert "noisy runs" in _noise_warnings(noisy)[0]

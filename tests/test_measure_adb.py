"""`latprof measure --device HOST:PORT` end to end, against latprof's loopback ADB device.

The client side is the real one (adb-shell over TCP, adb's key format, quoted
shell commands, taskset + benchmark_model, sysfs reads, cleanup); the phone is
`latprof.loopback`, which runs the model on the host and prints real
benchmark_model output.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from latprof.cli import main
from latprof.loopback import FailureMode, serve
from latprof.loopback._benchmark import PLACEHOLDER
from latprof.store import Store


def _measure(address: str, model, *extra: str):
    args = ["measure", str(model), "--device", address, "--runs", "4", "--warmup", "1", *extra]
    return CliRunner().invoke(main, args)


def _stored() -> list:
    with Store() as store:
        return store.measurements()


def test_full_record_from_the_loopback_phone(tiny_tflite):
    with serve("pixel2", accept_new_keys=True) as phone:
        address = phone.address
        result = _measure(phone.address, tiny_tflite, "--json", "--op-profile")
        leftovers = phone.run_shell("ls /data/local/tmp/latprof").text
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["device"] == "loopback-pixel2"  # never filed under the real phone
    fp = record["fingerprint"]
    assert (fp["model"], fp["device"], fp["sdk"], fp["abi"], fp["loopback"]) == ("Pixel 2", "walleye", "30", "arm64-v8a", True)
    assert record["command"].startswith("taskset f0 /data/local/tmp/benchmark_model '--graph=/data/local/tmp/latprof/")
    assert "tiny model.tflite' --num_threads=1" in record["command"]  # the space in the file name is quoted
    assert record["settings"]["core_mask"] == "f0" and record["settings"]["threads"] == 1
    assert record["stats"]["count"] == 4 and record["stats"]["median_ms"] > 0
    assert record["runtime"] == "tflite benchmark_model" and record["runtime_version"].startswith("sha256:")
    assert [c["cpu"] for c in record["state_before"]["cores"]] == [4, 5, 6, 7]
    assert record["state_before"]["cores"][0]["hw_max_khz"] == 2457600
    assert record["state_after"]["temps_c"]
    assert not [w for w in record["warnings"] if "hot" in w or "capped" in w]  # a cool phone (noise may be flagged)
    assert [op["node_type"] for op in record["op_profile"]][:2] == ["CONV_2D", "DEPTHWISE_CONV_2D"]
    assert leftovers.strip() == ""  # the run directory was removed
    (stored,) = _stored()
    assert stored.fingerprint["serial"] == address


def test_adb_key_is_created_in_adbs_place_with_mode_0600(tiny_tflite):
    with serve("pixel1", accept_new_keys=True) as phone:
        assert _measure(phone.address, tiny_tflite).exit_code == 0
    key = Path(os.environ["HOME"]) / ".android" / "adbkey"
    assert key.exists() and (key.stat().st_mode & 0o777) == 0o600
    assert (key.parent / "adbkey.pub").read_text().split()[0]


def test_hot_phone_is_measured_with_warnings(tiny_tflite):
    with serve("pixel1", accept_new_keys=True, failures=[FailureMode.HOT]) as phone:
        result = _measure(phone.address, tiny_tflite, "--json")
    assert result.exit_code == 0
    text = " ".join(json.loads(result.stdout)["warnings"])
    assert "device is hot" in text and "frequency capped" in text
    assert "Warning: before run: device is hot" in result.stderr


def test_metacharacters_in_model_path_are_never_executed(tiny_tflite, tmp_path):
    evil = tmp_path / "m;touch PWNED;$(touch PWNED2)'x.tflite"
    shutil.copy(tiny_tflite, evil)
    with serve("pixel1", accept_new_keys=True) as phone:
        result = _measure(phone.address, evil, "--json")
        listing = phone.run_shell("ls / /data/local/tmp").text
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model_name"] == evil.name
    assert "PWNED" not in listing


@pytest.mark.parametrize(
    "failure, message",
    [
        (FailureMode.REFUSE_KEY, "did not accept latprof's ADB key"),
        (FailureMode.DROP_MID_RUN, "lost the connection"),
        (FailureMode.DROP_MID_PUSH, "lost the connection"),
        (FailureMode.NO_BENCHMARK, "--benchmark-binary"),
        (FailureMode.BENCHMARK_CRASH, "Segmentation fault"),
    ],
)
def test_device_failures_are_one_line_errors_and_store_nothing(tiny_tflite, failure, message):
    with serve("pixel1", accept_new_keys=False, failures=[failure], drop_after_bytes=256) as phone:
        phone.accept_new_keys = failure is not FailureMode.REFUSE_KEY
        result = CliRunner().invoke(
            main, ["measure", str(tiny_tflite), "--device", phone.address, "--runs", "2", "--warmup", "0"],
            env={"LATPROF_AUTH_TIMEOUT_S": "2"},
        )
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and message in result.output
    assert result.output.strip().count("\n") == 0
    assert _stored() == []


def test_missing_binary_is_pushed_with_benchmark_binary(tiny_tflite, tmp_path):
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(PLACEHOLDER)  # stands in for TFLite's prebuilt android_aarch64 binary
    with serve("pixel1", accept_new_keys=True, failures=[FailureMode.NO_BENCHMARK]) as phone:
        result = _measure(phone.address, tiny_tflite, "--benchmark-binary", str(binary))
        mode = phone.run_shell("ls -l /data/local/tmp/benchmark_model").text
    assert result.exit_code == 0, result.output
    assert mode.startswith("-rwx")


def test_devices_lists_the_loopback_phone(monkeypatch):
    with serve("pixel3", accept_new_keys=True) as phone:
        address = phone.address
        monkeypatch.setenv("LATPROF_ADB_HOSTS", address)
        result = CliRunner().invoke(main, ["devices", "--json"])
    rows = json.loads(result.output)
    assert rows[0]["serial"] == "local"
    (row,) = [r for r in rows if r["serial"] == address]
    assert (row["model"], row["sdk"], row["abi"], row["config"]) == ("Pixel 3", "31", "arm64-v8a", "loopback-pixel3")


def test_an_int8_model_runs_on_the_phone_and_is_stored_as_int8(tmp_path):
    from latprof.space import LayerConfig, write_tflite

    layer = LayerConfig("ir", 3, 1, 3, 0.25, "id", 16, 16, 16, "relu")
    model = write_tflite(layer, tmp_path / "int8 layer.tflite", dtype="int8")
    with serve("pixel2", accept_new_keys=True) as phone:
        result = _measure(phone.address, model, "--json", "--op-profile")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["settings"]["dtype"] == "int8" and record["stats"]["median_ms"] > 0
    (stored,) = _stored()
    assert stored.settings["dtype"] == "int8"

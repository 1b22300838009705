"""The loopback device against adb-shell, the ADB client latprof itself uses.

Covers the handshake with a trusted key, refused and newly accepted keys,
shell/exec, push/pull/stat/list, benchmark_model (running the model on the
host), and every failure mode as the client sees it.
"""

from __future__ import annotations

import io
import os
import re

import pytest
from adb_shell.adb_device import AdbDevice
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_pythonrsa import PythonRSASigner
from adb_shell.exceptions import (
    AdbConnectionError,
    AdbTimeoutError,
    TcpTimeoutException,
)

from latprof.benchmarking.parser import parse_benchmark_output
from latprof.devices.adb import tcp_transport
from latprof.loopback import FailureMode, LoopbackDevice, serve

REFUSED = (AdbTimeoutError, TcpTimeoutException)


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    path = tmp_path_factory.mktemp("key") / "adbkey"
    keygen(str(path))
    return path


@pytest.fixture(scope="module")
def signer(key):
    return PythonRSASigner.FromRSAKeyPath(str(key))


def connect(device: LoopbackDevice, signer: PythonRSASigner, auth_timeout_s: float = 5.0) -> AdbDevice:
    client = AdbDevice(tcp_transport("127.0.0.1", device.port), default_transport_timeout_s=30)
    client.connect(rsa_keys=[signer], auth_timeout_s=auth_timeout_s, read_timeout_s=30)
    return client


@pytest.fixture
def phone(tmp_path, key):
    with serve("pixel1", root=tmp_path / "root", authorized_keys=[f"{key}.pub"]) as device:
        yield device


@pytest.fixture
def client(phone, signer):
    adb = connect(phone, signer)
    yield adb
    adb.close()


# -- the basics ------------------------------------------------------------------------------------
def test_shell_and_exec(client):
    assert client.shell("echo hi; getprop ro.product.model") == "hi\nPixel\n"
    assert client.shell("echo out; echo err >&2") == "out\nerr\n"  # shell: merges stderr
    assert client.exec_out("uname -m") == "aarch64\n"
    assert client.shell("false; echo $?") == "1\n"


def test_push_pull_stat_list(client, phone, tmp_path):
    payload = os.urandom(200_000)
    client.push(io.BytesIO(payload), "/data/local/tmp/sub dir/blob.bin", st_mode=0o100644, mtime=1_700_000_000)
    mode, size, mtime = client.stat("/data/local/tmp/sub dir/blob.bin")
    assert (mode, size, mtime) == (0o100666, len(payload), 1_700_000_000)
    assert (phone.root / "data/local/tmp/sub dir/blob.bin").read_bytes() == payload
    out = io.BytesIO()
    client.pull("/data/local/tmp/sub dir/blob.bin", out)
    assert out.getvalue() == payload
    names = {entry.filename.decode(): entry for entry in client.list("/data/local/tmp")}
    assert set(names) == {".", "..", "benchmark_model", "sub dir"}
    assert names["benchmark_model"].mode == 0o100755
    assert client.stat("/data/local/tmp/missing") == (0, 0, 0)
    assert client.shell("ls '/data/local/tmp/sub dir'") == "blob.bin\n"


def test_push_outside_the_writable_folders_fails(client):
    from adb_shell.exceptions import PushFailedError

    with pytest.raises(PushFailedError, match="Read-only file system"):
        client.push(io.BytesIO(b"x"), "/system/bin/evil")


# -- authentication ----------------------------------------------------------------------------------
def test_refuse_key_leaves_the_client_unauthorised(tmp_path, key, signer):
    with serve("pixel1", root=tmp_path / "root", authorized_keys=[f"{key}.pub"],
               failures=[FailureMode.REFUSE_KEY]) as device:
        with pytest.raises(REFUSED):
            connect(device, signer, auth_timeout_s=1.0)


def test_an_unknown_key_is_unauthorised_without_accept_new_keys(tmp_path, signer):
    with serve("pixel1", root=tmp_path / "root") as device:
        with pytest.raises(REFUSED):
            connect(device, signer, auth_timeout_s=1.0)
        assert device.keys.keys() == []


def test_accept_new_keys_trusts_the_key_for_good(tmp_path, key, signer):
    root = tmp_path / "root"
    with serve("pixel1", root=root, accept_new_keys=True) as device:
        connect(device, signer).close()
    assert open(f"{key}.pub").read().split()[0] in (root / "data/misc/adb/adb_keys").read_text()
    # the same phone, no longer accepting new keys: the stored key's signature is enough
    with serve("pixel1", root=root) as device:
        client = connect(device, signer, auth_timeout_s=1.0)
        assert client.shell("echo again") == "again\n"
        client.close()


# -- benchmark_model -----------------------------------------------------------------------------------
def test_benchmark_model_runs_the_model_on_the_host(client, tiny_tflite):
    client.push(str(tiny_tflite), "/data/local/tmp/latprof/tiny model.tflite")
    output = client.shell(
        "taskset c /data/local/tmp/benchmark_model '--graph=/data/local/tmp/latprof/tiny model.tflite' "
        "--num_threads=1 --warmup_runs=2 --num_runs=5 --warmup_min_secs=0 --min_secs=0 "
        "--enable_op_profiling=true --use_xnnpack=true 2>&1; echo __exit=$?",
        read_timeout_s=120,
    )
    body, _, status = output.rpartition("__exit=")
    assert status.strip() == "0", output
    parsed = parse_benchmark_output(body)
    assert parsed.inference is not None and parsed.inference.count == 5
    assert parsed.warmup is not None and parsed.warmup.count == 2
    assert parsed.init_us and parsed.init_us > 0
    run_rows = [row for row in parsed.op_profile if row.section == "run"]
    assert {row.node_type for row in run_rows} >= {"CONV_2D"}
    assert "Graph: [/data/local/tmp/latprof/tiny model.tflite]" in body


def test_benchmark_model_with_a_missing_graph(client):
    output = client.shell("/data/local/tmp/benchmark_model --graph=/data/local/tmp/none.tflite; echo __exit=$?")
    assert "Failed to mmap model /data/local/tmp/none.tflite" in output
    assert "Benchmarking failed." in output
    assert output.rstrip().endswith("__exit=1")


# -- failure modes, as the client sees them -------------------------------------------------------------
def test_no_benchmark(tmp_path, key, signer):
    with serve("pixel1", root=tmp_path / "root", authorized_keys=[f"{key}.pub"],
               failures=[FailureMode.NO_BENCHMARK]) as device:
        client = connect(device, signer)
        assert client.stat("/data/local/tmp/benchmark_model")[0] == 0
        assert client.shell("/data/local/tmp/benchmark_model --graph=x 2>&1; echo $?") == (
            "/system/bin/sh: /data/local/tmp/benchmark_model: inaccessible or not found\n127\n")
        client.close()


def test_benchmark_crash(tmp_path, key, signer, tiny_tflite):
    with serve("pixel1", root=tmp_path / "root", authorized_keys=[f"{key}.pub"],
               failures=[FailureMode.BENCHMARK_CRASH]) as device:
        client = connect(device, signer)
        client.push(str(tiny_tflite), "/data/local/tmp/m.tflite")
        output = client.shell("/data/local/tmp/benchmark_model --graph=/data/local/tmp/m.tflite 2>&1; echo __exit=$?")
        client.close()
    assert "INFO: Loaded model /data/local/tmp/m.tflite" in output
    assert "Inference timings" not in output
    assert re.search(r"Segmentation fault\n__exit=139\n$", output), output


def test_drop_mid_run(tmp_path, key, signer, tiny_tflite):
    with serve("pixel1", root=tmp_path / "root", authorized_keys=[f"{key}.pub"],
               failures=[FailureMode.DROP_MID_RUN]) as device:
        client = connect(device, signer)
        client.push(str(tiny_tflite), "/data/local/tmp/m.tflite")
        with pytest.raises((ConnectionResetError, AdbConnectionError)):
            client.shell("/data/local/tmp/benchmark_model --graph=/data/local/tmp/m.tflite")
        client.close()
        again = connect(device, signer)  # the phone is still there: only that connection died
        assert again.shell("echo back") == "back\n"
        again.close()


def test_drop_mid_push(tmp_path, key, signer):
    with serve("pixel1", root=tmp_path / "root", authorized_keys=[f"{key}.pub"],
               failures=[FailureMode.DROP_MID_PUSH], drop_after_bytes=64 * 1024) as device:
        client = connect(device, signer)
        client.push(io.BytesIO(b"small" * 100), "/data/local/tmp/small")  # below the cut: fine
        with pytest.raises((ConnectionResetError, AdbConnectionError, BrokenPipeError)):
            client.push(io.BytesIO(os.urandom(300_000)), "/data/local/tmp/big")
        client.close()
        assert device.run_shell("ls /data/local/tmp").text == "benchmark_model\nsmall\n"  # no partial file


def test_hot_phone(tmp_path, key, signer):
    with serve("pixel4", root=tmp_path / "root", authorized_keys=[f"{key}.pub"], failures=["hot"]) as device:
        client = connect(device, signer)
        output = client.shell("grep -H . /sys/devices/system/cpu/cpu7/cpufreq/scaling_max_freq "
                              "/sys/devices/system/cpu/cpu7/cpufreq/cpuinfo_max_freq "
                              "/sys/class/thermal/thermal_zone*/temp 2>/dev/null")
        client.close()
    values = dict(line.split(":", 1) for line in output.splitlines())
    cpu = "/sys/devices/system/cpu/cpu7/cpufreq/"
    assert 0.55 < int(values[cpu + "scaling_max_freq"]) / int(values[cpu + "cpuinfo_max_freq"]) < 0.65
    assert max(int(v) for k, v in values.items() if k.endswith("/temp")) / 1000 > 50

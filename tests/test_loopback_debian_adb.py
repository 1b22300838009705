"""The loopback device against Debian's ``adb`` (the real Android host tools).

Each test runs its own adb server on a free port with HOME in a temporary
folder (so adb makes and uses its own key there) and kills it afterwards.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from latprof.loopback import FailureMode, LoopbackDevice, serve

ADB = Path("/usr/bin/adb")

pytestmark = pytest.mark.skipif(
    not ADB.exists(), reason="Debian's adb client is not installed at /usr/bin/adb (apt-get install adb)"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AdbHost:
    """Debian's adb with a private server and HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.server_port = _free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("ANDROID_", "ADB_"))}
        self.env.update(HOME=str(home), TMPDIR=str(home))
        self.key = home / ".android" / "adbkey"

    def __call__(self, *args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(ADB), "-P", str(self.server_port), *args], env=self.env, capture_output=True, text=True,
            timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL,
        )

    def keygen(self) -> Path:
        self.key.parent.mkdir(parents=True, exist_ok=True)
        result = self("keygen", str(self.key))
        assert result.returncode == 0, result.stderr
        return Path(f"{self.key}.pub")


@pytest.fixture
def adb(tmp_path):
    host = AdbHost(tmp_path / "home")
    host.home.mkdir()
    yield host
    host("kill-server", timeout=30)


@pytest.fixture
def phone(tmp_path, adb):
    with serve("pixel1", root=tmp_path / "root", authorized_keys=[adb.keygen()]) as device:
        yield device


def test_connect_devices_and_shell(adb, phone):
    serial = phone.address
    connect = adb("connect", serial)
    assert connect.stdout.strip() == f"connected to {serial}", connect
    devices = adb("devices", "-l").stdout
    expected = rf"^{re.escape(serial)}\s+device product:sailfish model:Pixel device:sailfish\b"
    assert re.search(expected, devices, re.M), devices

    echo = adb("-s", serial, "shell", "echo", "hi")
    assert (echo.returncode, echo.stdout) == (0, "hi\n")
    assert adb("-s", serial, "shell", "false").returncode == 1
    mixed = adb("-s", serial, "shell", "echo out; echo err >&2; exit 3")
    assert (mixed.returncode, mixed.stdout, mixed.stderr) == (3, "out\n", "err\n")  # shell v2 keeps them apart
    assert adb("-s", serial, "shell", "getprop", "ro.product.model").stdout == "Pixel\n"
    assert adb("-s", serial, "shell", "echo '$(rm -rf /)' \"a  b\"").stdout == "$(rm -rf /) a  b\n"
    assert adb("-s", serial, "get-state").stdout.strip() == "device"


def test_push_and_pull_a_200k_file(adb, phone, tmp_path):
    serial = phone.address
    assert adb("connect", serial).returncode == 0
    original = tmp_path / "blob.bin"
    original.write_bytes(os.urandom(200_000))
    push = adb("-s", serial, "push", str(original), "/data/local/tmp/latprof/blob.bin")
    assert push.returncode == 0, push.stderr
    assert (phone.root / "data/local/tmp/latprof/blob.bin").read_bytes() == original.read_bytes()
    digest = adb("-s", serial, "shell", "sha256sum", "/data/local/tmp/latprof/blob.bin").stdout.split()[0]
    assert digest == hashlib.sha256(original.read_bytes()).hexdigest()

    back = tmp_path / "back.bin"
    pull = adb("-s", serial, "pull", "/data/local/tmp/latprof/blob.bin", str(back))
    assert pull.returncode == 0, pull.stderr
    assert back.read_bytes() == original.read_bytes()
    listing = adb("-s", serial, "ls", "/data/local/tmp/latprof").stdout
    assert re.search(r"^000081b6 00030d40 [0-9a-f]{8} blob.bin$", listing, re.M), listing  # mode 0666, 200000 bytes

    refused = adb("-s", serial, "push", str(original), "/system/blob.bin")
    assert refused.returncode == 1
    assert "remote couldn't create file: Read-only file system" in refused.stdout + refused.stderr
    missing = adb("-s", serial, "pull", "/data/local/tmp/none", str(tmp_path / "none"))
    assert missing.returncode == 1 and "No such file or directory" in missing.stdout + missing.stderr


def test_shell_reads_commands_from_stdin(adb, phone):
    serial = phone.address
    adb("connect", serial)
    result = adb("-s", serial, "shell", input="echo a\ncd /data/local/tmp\npwd\nexit 4\necho never\n")
    assert (result.returncode, result.stdout) == (4, "a\n/data/local/tmp\n")


def test_refused_key_shows_unauthorized(adb, tmp_path):
    with serve("pixel1", root=tmp_path / "root", authorized_keys=[adb.keygen()],
               failures=[FailureMode.REFUSE_KEY]) as device:
        serial = device.address
        assert "failed to authenticate" in adb("connect", serial).stdout
        devices = adb("devices").stdout
        assert re.search(rf"^{re.escape(serial)}\s+unauthorized$", devices, re.M), devices
        shell = adb("-s", serial, "shell", "echo", "hi")
        assert shell.returncode != 0 and "unauthorized" in shell.stderr


def test_accept_new_keys(adb, tmp_path):
    with serve("pixel1", root=tmp_path / "root", accept_new_keys=True) as device:
        serial = device.address
        adb("connect", serial)  # the server makes its key, offers it, and the phone says yes
        assert adb("-s", serial, "wait-for-device", timeout=30).returncode == 0
        assert adb("-s", serial, "shell", "echo", "in").stdout == "in\n"
        stored = [key.line.split()[0] for key in device.keys.keys()]
        assert stored == [adb.key.with_suffix(".pub").read_text().split()[0]]


def test_drop_mid_push(adb, tmp_path):
    with LoopbackDevice("pixel1", root=tmp_path / "root", authorized_keys=[adb.keygen()],
                        failures=[FailureMode.DROP_MID_PUSH], drop_after_bytes=64 * 1024) as device:
        serial = device.address
        adb("connect", serial)
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(300_000))
        push = adb("-s", serial, "push", str(big), "/data/local/tmp/big.bin")
        assert push.returncode != 0
        assert not (device.root / "data/local/tmp/big.bin").exists()

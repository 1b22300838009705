"""``latprof device serve``: the loopback device from the command line."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_pythonrsa import PythonRSASigner
from click.testing import CliRunner

from latprof.cli import main


def test_errors_are_one_line():
    runner = CliRunner()
    result = runner.invoke(main, ["device", "serve", "--profile", "nope"])
    assert result.exit_code == 1 and result.output.startswith("Error: unknown device 'nope'")
    result = runner.invoke(main, ["device", "serve", "--profile", "local", "--port", "0"])
    assert result.exit_code == 1 and "is a host device, not a phone" in result.output
    result = runner.invoke(main, ["device", "serve", "--fail", "explode"])
    assert result.exit_code == 2 and "explode" in result.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = runner.invoke(main, ["device", "serve", "--port", str(port)])
    assert result.exit_code == 1 and result.output.startswith(f"Error: cannot listen on 127.0.0.1:{port}")


def test_serve_until_interrupted(tmp_path):
    keygen(str(tmp_path / "adbkey"))
    signer = PythonRSASigner.FromRSAKeyPath(str(tmp_path / "adbkey"))
    process = subprocess.Popen(
        [sys.executable, "-c", "from latprof.cli import main; main()", "device", "serve", "--port", "0",
         "--profile", "pixel2", "--authorize-key", str(tmp_path / "adbkey.pub"), "--fail", "hot"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        banner = [process.stdout.readline() for _ in range(4)]
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", banner[0])
        assert match, banner
        root = Path(banner[1].split(": ", 1)[1].strip())
        assert banner[2].strip() == "failure modes: hot"
        client = AdbDeviceTcp("127.0.0.1", int(match.group(1)), default_transport_timeout_s=30)
        client.connect(rsa_keys=[signer], auth_timeout_s=5)
        assert client.shell("getprop ro.product.model") == "Pixel 2\n"
        assert int(client.shell("cat /sys/class/thermal/thermal_zone3/temp")) > 50000
        client.close()
        assert root.is_dir()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "stopped" in out
    assert not root.exists()  # the temporary file system is cleaned up

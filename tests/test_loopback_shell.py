"""The loopback device's shell interpreter and sandbox, driven directly (no network)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from latprof.loopback import FailureMode, LoopbackDevice


@pytest.fixture
def phone(tmp_path):
    device = LoopbackDevice("pixel1", root=tmp_path / "root")
    yield device
    device.close()


def sh(device: LoopbackDevice, command: str) -> tuple[int, str, str]:
    result = device.run_shell(command)
    return result.status, result.stdout.decode(), result.stderr.decode()


# -- quoting ---------------------------------------------------------------------------------------
def test_quotes_backslashes_and_spaces(phone):
    assert sh(phone, """echo 'a  b' "c  d" e\\ f g\\"h""") == (0, 'a  b c  d e f g"h\n', "")
    assert sh(phone, "echo \"it's\" 'say \"hi\"'") == (0, "it's say \"hi\"\n", "")
    status, out, _ = sh(phone, "mkdir -p '/data/local/tmp/dir with space'"
                              " && echo x > '/data/local/tmp/dir with space/f 1'"
                              " && cat /data/local/tmp/dir\\ with\\ space/f\\ 1")
    assert (status, out) == (0, "x\n")
    assert (phone.root / "data/local/tmp/dir with space/f 1").read_text() == "x\n"


def test_metacharacters_in_single_quotes_stay_literal(phone):
    keep = phone.root / "data/local/tmp/keep"
    keep.write_text("precious")
    for command in (
        "echo '$(rm -rf /data/local/tmp/keep)'",
        "echo '`rm -rf /data/local/tmp/keep`; rm -rf /data/local/tmp/keep && rm -rf /data/local/tmp/keep'",
        'echo "\\$(rm -rf /data/local/tmp/keep)"',
        "echo '|| rm /data/local/tmp/keep > /data/local/tmp/keep'",
    ):
        status, out, err = sh(phone, command)
        assert status == 0 and err == ""
        assert "rm" in out
        assert keep.read_text() == "precious", command
    assert sh(phone, "echo '$HOME' \"$HOME\" $HOME")[1] == "$HOME / /\n"


def test_command_substitution_runs_inside_the_sandbox(phone):
    assert sh(phone, "echo $(getprop ro.product.device)-`echo bq`")[1] == "sailfish-bq\n"
    assert sh(phone, "X=$(echo 'a   b'); echo \"$X\" $X")[1] == "a   b a b\n"


def test_unsupported_syntax_is_refused_not_guessed(phone):
    for command in ("if true; then echo y; fi", "(echo sub)", "sleep 1 &", "cat <<EOF", "echo $((1+1))", "echo 'open"):
        status, out, err = sh(phone, command)
        assert status == 2 and out == "" and err.startswith("/system/bin/sh: "), command


# -- status, lists, redirections -----------------------------------------------------------------------
def test_exit_status_and_lists(phone):
    assert sh(phone, "false; echo $?")[1] == "1\n"
    assert sh(phone, "true && echo yes || echo no; false && echo yes || echo no")[1] == "yes\nno\n"
    assert sh(phone, "! false && echo negated")[1] == "negated\n"
    assert sh(phone, "exit 7; echo never") == (7, "", "")
    assert sh(phone, "sh -c 'exit 3'; echo $?")[1] == "3\n"
    assert sh(phone, "nosuchcmd; echo $?") == (0, "127\n", "/system/bin/sh: nosuchcmd: inaccessible or not found\n")
    assert sh(phone, "/data/local/tmp/nope")[0] == 127


def test_redirections(phone):
    assert sh(phone, "cat /nope 2>/dev/null; echo $?") == (0, "1\n", "")
    assert sh(phone, "cat /nope 2>&1") == (1, "cat: /nope: No such file or directory\n", "")
    assert sh(phone, "echo err >&2") == (0, "", "err\n")
    written = sh(phone, "echo a > /data/local/tmp/f; echo b >> /data/local/tmp/f; cat < /data/local/tmp/f")
    assert written == (0, "a\nb\n", "")
    assert sh(phone, "echo a | grep -c a")[1] == "1\n"


def test_redirection_order_matters(phone):
    # 2>&1 first copies the current stdout (the client) into 2, then stdout goes to /dev/null
    status, out, err = sh(phone, "cat /nope 2>&1 >/dev/null")
    assert (status, out, err) == (1, "cat: /nope: No such file or directory\n", "")
    status, out, err = sh(phone, "cat /nope >/dev/null 2>&1")
    assert (status, out, err) == (1, "", "")


# -- globbing ------------------------------------------------------------------------------------------
def test_glob_expands_against_the_sandbox(phone):
    status, out, _ = sh(phone, "ls /sys/class/thermal/thermal_zone*/temp")
    assert status == 0
    assert out.splitlines() == [f"/sys/class/thermal/thermal_zone{i}/temp" for i in range(5)]
    assert sh(phone, "echo /nope/*.x")[1] == "/nope/*.x\n"  # no match: the word stays
    assert sh(phone, "echo '/sys/class/thermal/thermal_zone*'")[1] == "/sys/class/thermal/thermal_zone*\n"
    assert sh(phone, "cd /sys/devices/system/cpu && echo cpu?")[1] == "cpu0 cpu1 cpu2 cpu3\n"


def test_grep_h_reads_sysfs_like_the_client_does(phone):
    status, out, _ = sh(phone, "grep -H . /sys/devices/system/cpu/cpu2/cpufreq/scaling_max_freq "
                              "/sys/devices/system/cpu/cpu2/cpufreq/cpuinfo_max_freq "
                              "/sys/class/thermal/thermal_zone*/type /sys/class/thermal/thermal_zone*/temp 2>/dev/null")
    assert status == 0
    lines = dict(line.split(":", 1) for line in out.splitlines())
    assert lines["/sys/devices/system/cpu/cpu2/cpufreq/scaling_max_freq"] == "2150400"
    assert lines["/sys/class/thermal/thermal_zone0/type"] == "battery"
    assert all(20000 <= int(v) <= 40000 for k, v in lines.items() if k.endswith("/temp"))


def test_hot_profile_caps_big_cores_and_heats_zones(tmp_path):
    device = LoopbackDevice("pixel1", root=tmp_path / "hot", failures=[FailureMode.HOT])
    try:
        little = device.run_shell("cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq").text
        big = device.run_shell("cat /sys/devices/system/cpu/cpu3/cpufreq/scaling_max_freq "
                               "/sys/devices/system/cpu/cpu3/cpufreq/cpuinfo_max_freq").text.split()
        temps = [int(t) for t in device.run_shell("cat /sys/class/thermal/thermal_zone*/temp").text.split()]
    finally:
        device.close()
    assert little.strip() == "1593600"
    assert 0.55 <= int(big[0]) / int(big[1]) <= 0.65
    assert max(temps) >= 55000


# -- the sandbox ---------------------------------------------------------------------------------------
def test_no_path_leaves_the_root(phone, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("host secret")
    relative = os.path.relpath(outside, phone.root)  # ../outside.txt from the root
    assert sh(phone, f"cat /{relative}")[0] == 1
    assert sh(phone, f"cd /data/local/tmp && cat ../../../../{relative}")[0] == 1
    assert sh(phone, "ls /..")[1] == sh(phone, "ls /")[1]
    status, _, err = sh(phone, "echo pwned > /data/local/tmp/../../../../../tmp/escape")
    assert status == 1 and "can't create" in err
    assert not Path("/tmp/escape").exists() or Path("/tmp/escape").read_text() != "pwned\n"
    assert outside.read_text() == "host secret"


def test_symlinks_planted_in_the_root_are_not_followed(phone, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("host secret")
    os.symlink(secret, phone.root / "data/local/tmp/link")
    os.symlink(tmp_path, phone.root / "data/local/tmp/dirlink")
    status, out, err = sh(phone, "cat /data/local/tmp/link /data/local/tmp/dirlink/secret")
    assert status == 1 and "host secret" not in out
    assert "Permission denied" in err
    assert sh(phone, "echo x > /data/local/tmp/dirlink/new")[0] == 1
    assert not (tmp_path / "new").exists()


def test_only_the_shell_users_folders_are_writable(phone):
    status, _, err = sh(phone, "echo x > /system/x")
    assert status == 1 and "Read-only file system" in err
    assert sh(phone, "rm /sys/devices/system/cpu/online")[0] == 1
    assert sh(phone, "mkdir /data/evil")[0] == 1
    assert sh(phone, "cat /data/misc/adb/adb_keys")[2].endswith("Permission denied\n")
    assert sh(phone, "touch /sdcard/ok && ls /sdcard")[1] == "ok\n"
    # rm -rf of the scratch folder empties it but the folder itself stays, as on a phone
    sh(phone, "mkdir -p /data/local/tmp/a/b && touch /data/local/tmp/a/b/c")
    status, _, err = sh(phone, "rm -rf /data/local/tmp")
    assert status == 1 and (phone.root / "data/local/tmp").is_dir()
    assert sh(phone, "ls /data/local/tmp")[1] == ""


# -- commands ------------------------------------------------------------------------------------------
def test_getprop(phone):
    status, out, _ = sh(phone, "getprop")
    assert status == 0
    assert "[ro.product.model]: [Pixel]" in out.splitlines()
    assert "[ro.build.version.sdk]: [28]" in out.splitlines()
    assert sh(phone, "getprop ro.product.cpu.abi")[1] == "arm64-v8a\n"
    assert sh(phone, "getprop no.such.prop")[1] == "\n"
    assert sh(phone, "getprop no.such.prop fallback")[1] == "fallback\n"


def test_taskset_validates_the_mask_against_the_profile(phone):
    assert sh(phone, "taskset c echo pinned") == (0, "pinned\n", "")
    assert sh(phone, "taskset 0x8 echo pinned")[0] == 0
    assert sh(phone, "taskset 30 echo never") == (1, "", "taskset: sched_setaffinity: Invalid argument\n")
    assert sh(phone, "taskset c /data/local/tmp/nope")[0] == 127


def test_files_and_folders(phone):
    assert sh(phone, "cd /data/local/tmp && mkdir -p a/b && touch a/b/c && ls -d a && ls a/b && pwd")[1] == \
        "a\nc\n/data/local/tmp\n"
    status, out, _ = sh(phone, "ls -l /data/local/tmp")
    assert status == 0 and out.startswith("total ")
    assert any(line.startswith("-rwxr-xr-x") and line.endswith(" benchmark_model") for line in out.splitlines())
    made = sh(phone, "echo hi > /data/local/tmp/s && chmod 755 /data/local/tmp/s && [ -x /data/local/tmp/s ] && echo x")
    assert made[1] == "x\n"
    assert sh(phone, "chmod a-x /data/local/tmp/s; test -x /data/local/tmp/s; echo $?")[1] == "1\n"
    assert sh(phone, "test -d /data/local/tmp && test -f /proc/cpuinfo && test -e /nope; echo $?")[1] == "1\n"
    moved = sh(phone, "cp /proc/version /data/local/tmp/v && mv /data/local/tmp/v /data/local/tmp/w"
                      " && ls /data/local/tmp/w")
    assert moved[1] == "/data/local/tmp/w\n"
    assert sh(phone, "rm /data/local/tmp/nope; echo $?")[1] == "1\n"
    assert sh(phone, "rm -f /data/local/tmp/nope; echo $?")[1] == "0\n"
    digest = sh(phone, "echo -n abc > /data/local/tmp/abc && sha256sum /data/local/tmp/abc")[1]
    assert digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  /data/local/tmp/abc\n"


def test_identity_commands(phone):
    assert sh(phone, "uname -m")[1] == "aarch64\n"
    assert sh(phone, "uname -a")[1].startswith("Linux localhost ")
    assert sh(phone, "id")[1].startswith("uid=2000(shell) gid=2000(shell)")
    assert sh(phone, "whoami; nproc")[1] == "shell\n4\n"
    assert sh(phone, "which ls getprop nosuch; echo $?")[1] == "/system/bin/ls\n/system/bin/getprop\n1\n"
    assert sh(phone, "/system/bin/echo via-path")[1] == "via-path\n"


def test_executing_files(phone):
    elf = b"\x7fELF\x02\x01\x01" + b"\0" * 57
    (phone.root / "data/local/tmp/arm64_binary").write_bytes(elf)
    os.chmod(phone.root / "data/local/tmp/arm64_binary", 0o755)
    assert sh(phone, "/data/local/tmp/arm64_binary --graph=x") == (
        126, "", "/system/bin/sh: /data/local/tmp/arm64_binary: not executable: 64-bit ELF file\n")
    assert sh(phone, "/proc/cpuinfo")[0] == 126  # no x bit
    assert sh(phone, "/data/local/tmp")[0] == 126
    sh(phone, "echo 'echo script $1 $#; exit 4' > /data/local/tmp/s.sh && chmod 755 /data/local/tmp/s.sh")
    assert sh(phone, "/data/local/tmp/s.sh arg; echo $?")[1] == "script arg 1\n4\n"


def test_sleep_and_process_commands(phone):
    assert sh(phone, "sleep 0; sleep 0.01; echo done")[1] == "done\n"
    assert sh(phone, "sleep x")[0] == 1
    assert sh(phone, "pkill -f benchmark_model; echo $?")[1] == "1\n"
    assert sh(phone, "kill 1234")[0] == 1


def test_no_benchmark_failure_mode_removes_only_the_placeholder(tmp_path):
    root = tmp_path / "root"
    device = LoopbackDevice("pixel1", root=root)
    assert device.run_shell("ls /data/local/tmp/benchmark_model").status == 0
    device.set_failures([FailureMode.NO_BENCHMARK])
    result = device.run_shell("/data/local/tmp/benchmark_model --graph=x")
    assert result.status == 127 and b"inaccessible or not found" in result.stderr
    # a user's own binary is never deleted
    (root / "data/local/tmp/benchmark_model").write_bytes(b"\x7fELF\x02" + b"\0" * 60)
    device.set_failures([FailureMode.NO_BENCHMARK])
    assert (root / "data/local/tmp/benchmark_model").exists()
    device.close()
    assert root.exists()  # a root given by the caller is kept

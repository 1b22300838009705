"""The loopback device at the wire level: headers, auth, streams, shell v2 and sync framing.

A tiny raw ADB host written here sends exactly the bytes each test needs (split
sync streams, wrong checksums, bad magic), which real clients never would.
"""

from __future__ import annotations

import socket
import struct

import pytest
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_cryptography import CryptographySigner
from adb_shell.auth.sign_pythonrsa import PythonRSASigner
from cryptography.hazmat.primitives import serialization

from latprof.loopback import FEATURES, LoopbackDevice
from latprof.loopback._auth import (
    KeyStore,
    encode_public_key,
    new_token,
    parse_public_key,
)
from latprof.loopback._protocol import (
    A_VERSION,
    Message,
    ProtocolError,
    checksum,
    read_message,
)

VERSION_OLD = 0x01000000


def _cmd(name: bytes) -> int:
    return struct.unpack("<I", name)[0]


@pytest.fixture(scope="module")
def adb_key(tmp_path_factory):
    """An adb key pair made by adb-shell's keygen (the same format adb uses)."""
    path = tmp_path_factory.mktemp("adbkey") / "adbkey"
    keygen(str(path))
    return path


@pytest.fixture(scope="module")
def other_key(tmp_path_factory):
    path = tmp_path_factory.mktemp("otherkey") / "adbkey"
    keygen(str(path))
    return path


@pytest.fixture
def phone(tmp_path, adb_key):
    with LoopbackDevice("pixel1", root=tmp_path / "root", authorized_keys=[adb_key.with_suffix(".pub")]) as device:
        yield device


class RawHost:
    """The host side of ADB, one message at a time."""

    def __init__(self, port: int, version: int = A_VERSION, maxdata: int = 256 * 1024) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.version = version
        self.maxdata = maxdata
        self.next_id = 100

    def close(self) -> None:
        self.sock.close()

    def send(self, command: bytes, arg0: int, arg1: int, data: bytes = b"") -> None:
        self.sock.sendall(Message(_cmd(command), arg0, arg1, data).pack())

    def recv(self) -> tuple[bytes, int, int, bytes] | None:
        """The next message, or None when the device closed the connection."""
        try:
            message = read_message(self.sock, max_payload=16 * 1024 * 1024, verify_checksum=True)
        except (EOFError, ConnectionResetError):
            return None
        return struct.pack("<I", message.command), message.arg0, message.arg1, message.data

    def handshake(self, signer) -> tuple[bytes, int, int, bytes]:
        self.send(b"CNXN", self.version, self.maxdata, b"host::features=shell_v2\0")
        kind, arg0, _, token = self.recv()
        assert (kind, arg0, len(token)) == (b"AUTH", 1, 20)
        self.send(b"AUTH", 2, 0, signer.Sign(token))
        reply = self.recv()
        assert reply is not None and reply[0] == b"CNXN", reply
        return reply

    def open(self, service: str) -> tuple[int, int]:
        local = self.next_id
        self.next_id += 1
        self.send(b"OPEN", local, 0, service.encode() + b"\0")
        kind, remote, arg1, _ = self.recv()
        assert (kind, arg1) == (b"OKAY", local)
        return local, remote

    def write(self, local: int, remote: int, data: bytes) -> None:
        self.send(b"WRTE", local, remote, data)
        kind, arg0, arg1, _ = self.recv()
        assert (kind, arg0, arg1) == (b"OKAY", remote, local)

    def read_stream(self, local: int, remote: int) -> bytes:
        """Everything the device writes until it closes the stream (acknowledging each WRTE)."""
        data = bytearray()
        while True:
            message = self.recv()
            assert message is not None, "connection closed"
            kind, arg0, arg1, payload = message
            assert (arg0, arg1) == (remote, local)
            if kind == b"CLSE":
                self.send(b"CLSE", local, remote)
                return bytes(data)
            assert kind == b"WRTE" and len(payload) <= self.maxdata
            data += payload
            self.send(b"OKAY", local, remote)

    def read_exact(self, local: int, remote: int, size: int, pending: bytearray) -> bytes:
        while len(pending) < size:
            kind, _, _, payload = self.recv()
            assert kind == b"WRTE"
            pending += payload
            self.send(b"OKAY", local, remote)
        out = bytes(pending[:size])
        del pending[:size]
        return out


def signer_for(path) -> PythonRSASigner:
    return PythonRSASigner.FromRSAKeyPath(str(path))


# -- framing and keys ------------------------------------------------------------------------------
def test_header_layout_checksum_and_magic():
    packed = Message(_cmd(b"WRTE"), 7, 9, b"\x01\x02\xff").pack()
    command, arg0, arg1, length, data_sum, magic = struct.unpack("<6I", packed[:24])
    assert (command, arg0, arg1, length) == (_cmd(b"WRTE"), 7, 9, 3)
    assert data_sum == checksum(b"\x01\x02\xff") == 0x102
    assert magic == command ^ 0xFFFFFFFF
    left, right = socket.socketpair()
    with left, right:
        left.sendall(packed)
        received = read_message(right, max_payload=1024, verify_checksum=True)
        assert received == Message(_cmd(b"WRTE"), 7, 9, b"\x01\x02\xff")
        left.sendall(packed[:16] + struct.pack("<I", 0) + packed[20:])
        with pytest.raises(ProtocolError):
            read_message(right, max_payload=1024, verify_checksum=True)


def test_android_public_key_format_round_trips(adb_key):
    text = adb_key.with_suffix(".pub").read_text()
    key = parse_public_key(text)
    private = serialization.load_pem_private_key(adb_key.read_bytes(), password=None)
    assert (key.n, key.e) == (private.public_key().public_numbers().n, 65537)
    assert encode_public_key(private.public_key()) == text.split()[0]
    token = new_token()
    assert key.verify(token, signer_for(adb_key).Sign(token))
    assert key.verify(token, CryptographySigner(str(adb_key)).Sign(token))
    assert not key.verify(new_token(), signer_for(adb_key).Sign(token))
    for bad in ("", "not base64!", "QUJD user@host", text.split()[0][:-8] + "AAAAAAA="):
        with pytest.raises(ValueError):
            parse_public_key(bad)


def test_key_store_skips_bad_lines_and_deduplicates(tmp_path, adb_key):
    store = KeyStore(tmp_path / "adb_keys")
    (tmp_path / "adb_keys").write_text("garbage\n\n")
    key = parse_public_key(adb_key.with_suffix(".pub").read_text())
    store.add(key)
    store.add(key)
    assert len(store.keys()) == 1
    token = new_token()
    assert store.verify(token, signer_for(adb_key).Sign(token)) is not None


# -- handshake --------------------------------------------------------------------------------------
def test_banner_version_and_max_payload(phone, adb_key):
    host = RawHost(phone.port, version=VERSION_OLD, maxdata=4096)
    try:
        kind, version, maxdata, banner = host.handshake(signer_for(adb_key))
    finally:
        host.close()
    assert (version, maxdata) == (VERSION_OLD, 4096)
    assert banner == (b"device::ro.product.name=sailfish;ro.product.model=Pixel;ro.product.device=sailfish;"
                      b"features=" + ",".join(FEATURES).encode())
    assert b"delayed_ack" not in banner and b"sendrecv_v2" not in banner


def test_an_untrusted_signature_gets_a_new_token_and_a_public_key_no_answer(phone, other_key):
    host = RawHost(phone.port)
    try:
        host.send(b"CNXN", A_VERSION, 1 << 20, b"host::\0")
        _, _, _, token = host.recv()
        host.send(b"AUTH", 2, 0, signer_for(other_key).Sign(token))
        kind, arg0, _, token2 = host.recv()
        assert (kind, arg0) == (b"AUTH", 1) and token2 != token
        host.send(b"AUTH", 3, 0, other_key.with_suffix(".pub").read_bytes() + b"\0")
        host.send(b"OPEN", 1, 0, b"shell:echo hi\0")  # ignored: not authorised
        host.sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            host.sock.recv(1)
    finally:
        host.close()


def test_accept_new_keys_stores_the_key(tmp_path, other_key):
    with LoopbackDevice("pixel1", root=tmp_path / "root", accept_new_keys=True) as device:
        host = RawHost(device.port)
        try:
            host.send(b"CNXN", A_VERSION, 1 << 20, b"host::\0")
            host.recv()
            host.send(b"AUTH", 3, 0, other_key.with_suffix(".pub").read_bytes() + b"\0")
            assert host.recv()[0] == b"CNXN"
        finally:
            host.close()
        assert [k.n for k in device.keys.keys()] == [parse_public_key(other_key.with_suffix(".pub").read_text()).n]


def test_garbage_drops_the_connection(phone, adb_key):
    host = RawHost(phone.port)
    try:
        host.sock.sendall(struct.pack("<6I", _cmd(b"CNXN"), A_VERSION, 4096, 0, 0, 0))  # bad magic
        assert host.recv() is None
    finally:
        host.close()
    host = RawHost(phone.port, version=VERSION_OLD)  # an old peer: checksums are checked
    try:
        host.handshake(signer_for(adb_key))
        bad = bytearray(Message(_cmd(b"OPEN"), 1, 0, b"shell:echo hi\0").pack())
        bad[16:20] = struct.pack("<I", 1)
        host.sock.sendall(bytes(bad))
        assert host.recv() is None
    finally:
        host.close()


# -- streams ------------------------------------------------------------------------------------------
def test_unknown_service_is_refused_and_clse_is_echoed(phone, adb_key):
    host = RawHost(phone.port)
    try:
        host.handshake(signer_for(adb_key))
        host.send(b"OPEN", 5, 0, b"frobnicate:now\0")
        assert host.recv()[:3] == (b"CLSE", 0, 5)
        local, remote = host.open("shell,v2,raw:sleep 30")
        host.send(b"CLSE", local, remote)
        assert host.recv()[:3] == (b"CLSE", remote, local)
        local, remote = host.open("shell:echo still here")  # the connection lives on
        assert host.read_stream(local, remote) == b"still here\n"
    finally:
        host.close()


def test_shell_v2_packets_and_exit_status(phone, adb_key):
    host = RawHost(phone.port, maxdata=1024)
    try:
        host.handshake(signer_for(adb_key))
        local, remote = host.open("shell,v2,TERM=xterm,raw:echo out; echo err >&2; getprop; exit 5")
        data = host.read_stream(local, remote)
    finally:
        host.close()
    packets, offset = [], 0
    while offset < len(data):
        kind, length = struct.unpack_from("<BI", data, offset)
        packets.append((kind, data[offset + 5:offset + 5 + length]))
        offset += 5 + length
    assert packets[0] == (1, b"out\n") and packets[1] == (2, b"err\n")
    assert packets[2][0] == 1 and packets[2][1].startswith(b"[init.svc.adbd]: [running]") and len(packets[2][1]) > 1024
    assert packets[-1] == (3, b"\x05")


def test_exec_and_legacy_shell_merge_stderr(phone, adb_key):
    host = RawHost(phone.port)
    try:
        host.handshake(signer_for(adb_key))
        for service in ("shell:echo a; echo b >&2; exit 3", "exec:echo a; echo b >&2"):
            local, remote = host.open(service)
            assert host.read_stream(local, remote) == b"a\nb\n"
    finally:
        host.close()


# -- sync -----------------------------------------------------------------------------------------------
def _request(kind: bytes, payload: bytes = b"", size: int | None = None) -> bytes:
    return kind + struct.pack("<I", len(payload) if size is None else size) + payload


def test_sync_stream_may_be_split_and_joined_arbitrarily(phone, adb_key):
    body = bytes(range(256)) * 300  # 76800 bytes: two DATA chunks
    stream = (_request(b"SEND", b"/data/local/tmp/new/dir/file.bin,33261")
              + _request(b"DATA", body[:65536]) + _request(b"DATA", body[65536:])
              + _request(b"DONE", size=1_600_000_000))
    host = RawHost(phone.port, maxdata=4096)
    try:
        host.handshake(signer_for(adb_key))
        local, remote = host.open("sync:")
        for index in range(0, 200):  # the first bytes one at a time, splitting every header
            host.write(local, remote, stream[index:index + 1])
        for index in range(200, len(stream), 3001):  # the rest in odd-sized pieces
            host.write(local, remote, stream[index:index + 3001])
        pending = bytearray()
        assert host.read_exact(local, remote, 8, pending) == b"OKAY\0\0\0\0"
        # two requests joined in one WRTE
        host.write(local, remote, _request(b"STAT", b"/data/local/tmp/new/dir/file.bin") + _request(b"STAT", b"/nope"))
        first = struct.unpack("<4sIII", host.read_exact(local, remote, 16, pending))
        second = struct.unpack("<4sIII", host.read_exact(local, remote, 16, pending))
        assert first == (b"STAT", 0o100777, len(body), 1_600_000_000)  # adbd copies user bits to group/other
        assert second == (b"STAT", 0, 0, 0)
        host.write(local, remote, _request(b"RECV", b"/data/local/tmp/new/dir/file.bin"))
        received = bytearray()
        while True:
            kind, size = struct.unpack("<4sI", host.read_exact(local, remote, 8, pending))
            if kind == b"DONE":
                break
            assert kind == b"DATA" and size <= 64 * 1024
            received += host.read_exact(local, remote, size, pending)
        assert bytes(received) == body
        host.write(local, remote, _request(b"QUIT"))
        assert host.recv()[0] == b"CLSE"
    finally:
        host.close()
    assert (phone.root / "data/local/tmp/new/dir/file.bin").read_bytes() == body


def test_sync_v2_stat_list_and_failures(phone, adb_key):
    host = RawHost(phone.port)
    try:
        host.handshake(signer_for(adb_key))
        local, remote = host.open("sync:")
        pending = bytearray()
        host.write(local, remote, _request(b"STA2", b"/data/local/tmp/benchmark_model") + _request(b"LST2", b"/nope"))
        found = struct.unpack("<4sIQQIIIIQqqq", host.read_exact(local, remote, 72, pending))
        missing = struct.unpack("<4sIQQIIIIQqqq", host.read_exact(local, remote, 72, pending))
        assert found[0] == b"STA2" and found[1] == 0 and found[4] == 0o100755 and found[8] > 0
        assert missing[0] == b"LST2" and missing[1] == 2  # ENOENT
        host.write(local, remote, _request(b"LIS2", b"/sys/class/thermal"))
        names = []
        while True:
            header = struct.unpack("<4sIQQIIIIQqqqI", host.read_exact(local, remote, 76, pending))
            if header[0] == b"DONE":
                break
            names.append(host.read_exact(local, remote, header[-1], pending).decode())
        assert names == [".", ".."] + [f"thermal_zone{i}" for i in range(5)]
        push = _request(b"SEND", b"/system/evil,420") + _request(b"DATA", b"x") + _request(b"DONE", size=0)
        host.write(local, remote, push)
        kind, size = struct.unpack("<4sI", host.read_exact(local, remote, 8, pending))
        assert kind == b"FAIL"
        assert host.read_exact(local, remote, size, pending) == b"couldn't create file: Read-only file system"
        assert host.recv()[0] == b"CLSE"  # a failed SEND ends the session, as in adbd
    finally:
        host.close()
    assert not (phone.root / "system/evil").exists()

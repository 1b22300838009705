"""The ADB wire protocol: 24-byte message headers and their payloads.

Every ADB message is a header of six little-endian ``uint32`` fields followed by
``data_length`` bytes of payload (AOSP ``packages/modules/adb/protocol.txt``, ``adb.h``)::

    command, arg0, arg1, data_length, data_crc32, magic

``data_crc32`` is, despite its name, the byte sum of the payload; ``magic`` is
``command ^ 0xffffffff``. Peers at protocol version ``A_VERSION_SKIP_CHECKSUM``
(0x01000001) or later neither fill nor check the sum; older peers (adb-shell
speaks 0x01000000) require it, so this device always fills it in and checks it
only when the peer's version asks for that.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

__all__ = [
    "A_CNXN", "A_AUTH", "A_OPEN", "A_OKAY", "A_WRTE", "A_CLSE", "A_SYNC", "A_STLS",
    "A_VERSION", "A_VERSION_MIN", "A_VERSION_SKIP_CHECKSUM", "MAX_PAYLOAD",
    "AUTH_TOKEN", "AUTH_SIGNATURE", "AUTH_RSAPUBLICKEY", "HEADER_SIZE",
    "Message", "ProtocolError", "checksum", "command_name", "read_message",
]


def _cmd(name: bytes) -> int:
    return struct.unpack("<I", name)[0]


A_SYNC = _cmd(b"SYNC")
A_CNXN = _cmd(b"CNXN")
A_AUTH = _cmd(b"AUTH")
A_OPEN = _cmd(b"OPEN")
A_OKAY = _cmd(b"OKAY")
A_CLSE = _cmd(b"CLSE")
A_WRTE = _cmd(b"WRTE")
A_STLS = _cmd(b"STLS")  # TLS upgrade: recognised, never offered

A_VERSION_MIN = 0x01000000
A_VERSION_SKIP_CHECKSUM = 0x01000001
A_VERSION = 0x01000001

MAX_PAYLOAD = 1024 * 1024  # what a modern adbd offers; the peer's smaller offer wins

AUTH_TOKEN = 1
AUTH_SIGNATURE = 2
AUTH_RSAPUBLICKEY = 3

HEADER_SIZE = 24
_HEADER = struct.Struct("<6I")
_KNOWN = {A_SYNC, A_CNXN, A_AUTH, A_OPEN, A_OKAY, A_CLSE, A_WRTE, A_STLS}


class ProtocolError(Exception):
    """The peer sent something that is not a valid ADB message; the connection must be dropped."""


def checksum(data: bytes) -> int:
    """The header's ``data_crc32`` field: the sum of the payload's bytes, modulo 2**32."""
    return sum(data) & 0xFFFFFFFF


def command_name(command: int) -> str:
    """``A_CNXN`` -> ``"CNXN"`` (for logs and errors)."""
    return struct.pack("<I", command).decode("latin-1")


@dataclass(frozen=True)
class Message:
    """One ADB message: a command, its two arguments and a payload."""

    command: int
    arg0: int
    arg1: int
    data: bytes = b""

    def pack(self) -> bytes:
        """Header and payload, ready for the socket."""
        header = _HEADER.pack(
            self.command, self.arg0 & 0xFFFFFFFF, self.arg1 & 0xFFFFFFFF, len(self.data),
            checksum(self.data), self.command ^ 0xFFFFFFFF,
        )
        return header + self.data

    def __repr__(self) -> str:  # short, for debugging
        preview = self.data[:40]
        more = "…" if len(self.data) > 40 else ""
        return f"Message({command_name(self.command)}, {self.arg0:#x}, {self.arg1:#x}, {preview!r}{more})"


def _read_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise EOFError("connection closed by the peer")
        chunks += chunk
    return bytes(chunks)


def read_message(sock: socket.socket, *, max_payload: int, verify_checksum: bool) -> Message:
    """Read one message; raises EOFError when the peer hangs up and ProtocolError on garbage."""
    command, arg0, arg1, length, data_sum, magic = _HEADER.unpack(_read_exact(sock, HEADER_SIZE))
    if magic != command ^ 0xFFFFFFFF:
        raise ProtocolError(f"bad magic {magic:#010x} for command {command:#010x}")
    if command not in _KNOWN:
        raise ProtocolError(f"unknown command {command_name(command)!r}")
    if length > max_payload:
        raise ProtocolError(f"{command_name(command)} payload of {length} bytes exceeds {max_payload}")
    data = _read_exact(sock, length) if length else b""
    if verify_checksum and checksum(data) != data_sum:
        raise ProtocolError(f"{command_name(command)} checksum {data_sum:#x} does not match its payload")
    return Message(command, arg0, arg1, data)

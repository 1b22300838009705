"""The ``sync:`` service: file transfer (``adb push``/``pull``, adb-shell's ``stat``/``list``).

A sync session is a byte stream of requests, each an 8-byte ``{id, length}``
header plus a path (AOSP ``file_sync_protocol.h``, ``SYNC.TXT``). The stream is
carried in ``WRTE`` messages that a host may split or join at any byte, so the
service reads it through a buffer. Requests handled:

* ``STAT`` (lstat v1: mode, size, mtime; all zero when the path is absent),
  ``STA2``/``LST2`` (the 72-byte v2 stat with an errno), ``LIST``/``LIS2``
  (``DENT``/``DNT2`` entries, ``.`` and ``..`` included, then ``DONE``);
* ``SEND path,mode`` then ``DATA`` chunks (at most 64 KiB each) and ``DONE mtime``,
  answered ``OKAY`` or ``FAIL reason`` (missing parent folders are created, as adbd's
  ``fixed_push_mkdir`` does; after a failure the data is drained until ``DONE``);
* ``RECV path``, answered with ``DATA`` chunks and ``DONE``, or ``FAIL``;
* ``QUIT``, or any unknown request (``FAIL``), ends the session.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from typing import TYPE_CHECKING

from latprof.loopback._fs import Sandbox, device_error
from latprof.loopback._transport import Stream

if TYPE_CHECKING:
    from latprof.loopback._server import LoopbackDevice

__all__ = ["SyncService", "SYNC_DATA_MAX"]

SYNC_DATA_MAX = 64 * 1024
_MAX_PATH = 1024


def _id(name: bytes) -> int:
    return struct.unpack("<I", name)[0]


ID_STAT, ID_STA2, ID_LST2 = _id(b"STAT"), _id(b"STA2"), _id(b"LST2")
ID_LIST, ID_LIS2, ID_DENT, ID_DNT2 = _id(b"LIST"), _id(b"LIS2"), _id(b"DENT"), _id(b"DNT2")
ID_SEND, ID_RECV, ID_DATA, ID_DONE = _id(b"SEND"), _id(b"RECV"), _id(b"DATA"), _id(b"DONE")
ID_OKAY, ID_FAIL, ID_QUIT = _id(b"OKAY"), _id(b"FAIL"), _id(b"QUIT")

_REQUEST = struct.Struct("<II")
_STAT_V1 = struct.Struct("<IIII")
_STAT_V2 = struct.Struct("<IIQQIIIIQqqq")
_DENT_V1 = struct.Struct("<IIIII")
_DENT_V2 = struct.Struct("<IIQQIIIIQqqqI")
_SHELL_UID = 2000


class _Reader:
    """Exact-size reads over a stream whose chunk boundaries mean nothing."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    def read_exact(self, size: int) -> bytes | None:
        while len(self._buffer) < size:
            chunk = self._stream.read()
            if chunk is None:
                return None
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


def _strtoul(text: str) -> int:
    """C ``strtoul(text, nullptr, 0)``: ``0x`` hex, leading-zero octal, else decimal."""
    text = text.strip()
    if text.lower().startswith("0x"):
        return int(text[2:], 16)
    if len(text) > 1 and text.startswith("0"):
        return int(text[1:], 8)
    return int(text)


class SyncService:
    """One ``sync:`` session on a stream."""

    def __init__(self, stream: Stream, device: LoopbackDevice) -> None:
        self.stream = stream
        self.device = device
        self.fs: Sandbox = device.fs
        self.reader = _Reader(stream)

    # -- framing ----------------------------------------------------------------------------
    def _fail(self, reason: str) -> None:
        data = reason.encode("utf-8", "replace")
        self.stream.write(_REQUEST.pack(ID_FAIL, len(data)) + data)

    def run(self) -> None:
        while True:
            header = self.reader.read_exact(_REQUEST.size)
            if header is None:
                return
            request, length = _REQUEST.unpack(header)
            if request == ID_QUIT:
                return
            if length > _MAX_PATH:
                self._fail("path too long")
                return
            raw = self.reader.read_exact(length)
            if raw is None:
                return
            path = raw.decode("utf-8", "surrogateescape")
            if request == ID_STAT:
                self._stat_v1(path)
            elif request in (ID_STA2, ID_LST2):
                self._stat_v2(request, path)
            elif request in (ID_LIST, ID_LIS2):
                self._list(path, v2=request == ID_LIS2)
            elif request == ID_RECV:
                if not self._recv(path):
                    return
            elif request == ID_SEND:
                if not self._send(path):
                    return
            else:
                self._fail(f"unknown command {request:08x}")
                return

    # -- metadata ---------------------------------------------------------------------------
    def _owner(self, path: str) -> int:
        return _SHELL_UID if self.fs.is_writable(path) else 0

    def _stat_v1(self, path: str) -> None:
        try:
            st = self.fs.lstat(path)
            fields = (st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime))
        except OSError:
            fields = (0, 0, 0)
        self.stream.write(_STAT_V1.pack(ID_STAT, *fields))

    def _v2_fields(self, path: str, st: os.stat_result) -> tuple[int, ...]:
        uid = self._owner(path)
        return (st.st_dev, st.st_ino, st.st_mode, st.st_nlink, uid, uid, st.st_size,
                int(st.st_atime), int(st.st_mtime), int(st.st_ctime))

    def _stat_v2(self, request: int, path: str) -> None:
        try:
            st = self.fs.lstat(path)
            message = _STAT_V2.pack(request, 0, *self._v2_fields(path, st))
        except OSError as exc:
            message = _STAT_V2.pack(request, exc.errno or errno.EIO, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        self.stream.write(message)

    def _list(self, path: str, v2: bool) -> None:
        out = bytearray()
        try:
            names = [".", ".."] + self.fs.listdir(path)
        except OSError:
            names = []
        for name in names:
            entry = path.rstrip("/") + "/" + name
            try:
                st = self.fs.lstat(entry)
            except OSError as exc:
                if not v2:
                    continue
                encoded = name.encode("utf-8", "surrogateescape")
                out += _DENT_V2.pack(ID_DNT2, exc.errno or errno.EIO, *([0] * 10), len(encoded)) + encoded
                continue
            encoded = name.encode("utf-8", "surrogateescape")
            if v2:
                out += _DENT_V2.pack(ID_DNT2, 0, *self._v2_fields(entry, st), len(encoded)) + encoded
            else:
                out += _DENT_V1.pack(ID_DENT, st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime), len(encoded))
                out += encoded
        out += (_DENT_V2.pack(ID_DONE, 0, *([0] * 10), 0) if v2 else _DENT_V1.pack(ID_DONE, 0, 0, 0, 0))
        self.stream.write(bytes(out))

    # -- pull ---------------------------------------------------------------------------------
    def _recv(self, path: str) -> bool:
        try:
            handle = self.fs.open_read(path)
        except OSError as exc:
            self._fail(f"open failed: {exc.strerror}")
            return False
        with handle:
            while True:
                chunk = handle.read(SYNC_DATA_MAX)
                if not chunk:
                    break
                self.stream.write(_REQUEST.pack(ID_DATA, len(chunk)) + chunk)
        self.stream.write(_REQUEST.pack(ID_DONE, 0))
        return True

    # -- push ---------------------------------------------------------------------------------
    def _drain(self) -> None:
        """After a failure, swallow DATA until DONE so the host sees the FAIL (as adbd does)."""
        while True:
            header = self.reader.read_exact(_REQUEST.size)
            if header is None:
                return
            kind, size = _REQUEST.unpack(header)
            if kind != ID_DATA or size > SYNC_DATA_MAX or self.reader.read_exact(size) is None:
                return

    def _prepare(self, path: str) -> None:
        """Check the target can be written and create its missing folders."""
        device_path = self.fs.normalize(path)
        self.fs.check_writable(device_path)
        if self.fs.is_dir(device_path):
            raise device_error(errno.EISDIR, device_path)
        parent = device_path.rsplit("/", 1)[0] or "/"
        if not self.fs.is_dir(parent):
            try:
                self.fs.check_writable(parent)
                self.fs.mkdir(parent, parents=True, mode=0o775)
            except OSError as exc:
                raise OSError(exc.errno, f"secure_mkdirs() failed: {exc.strerror}", device_path) from None

    def _send(self, spec: str) -> bool:
        path, comma, mode_text = spec.rpartition(",")
        if not comma:
            self._fail("missing , in ID_SEND")
            return False
        try:
            mode = _strtoul(mode_text)
        except ValueError:
            self._fail("bad mode")
            return False
        if stat.S_ISLNK(mode):
            self._drain()
            self._fail("couldn't create symlink: symlinks are not supported on the latprof loopback device")
            return False
        mode &= 0o777
        mode |= (mode >> 3) & 0o070
        mode |= (mode >> 3) & 0o007
        try:
            self._prepare(path)
            handle = self.fs.open_write(path, mode=mode)
        except OSError as exc:
            reason = exc.strerror or "I/O error"
            if not reason.startswith("secure_mkdirs"):
                reason = f"couldn't create file: {reason}"
            self._drain()
            self._fail(reason)
            return False
        received, mtime, ok, drop = 0, None, False, False
        limit = self.device.drop_after_bytes if self.device.drops_mid_push else None
        try:
            with handle:
                while True:
                    header = self.reader.read_exact(_REQUEST.size)
                    if header is None:
                        break
                    kind, size = _REQUEST.unpack(header)
                    if kind == ID_DONE:
                        mtime, ok = size, True
                        break
                    if kind != ID_DATA or size > SYNC_DATA_MAX:
                        self._fail("invalid data message" if kind != ID_DATA else "oversize data message")
                        break
                    data = self.reader.read_exact(size)
                    if data is None:
                        break
                    handle.write(data)
                    received += size
                    if limit is not None and received >= limit:
                        drop = True  # the drop-mid-push failure mode
                        break
        finally:
            if not ok:
                try:
                    self.fs.remove(path)  # adbd unlinks a half-written file
                except OSError:
                    pass
        if drop:
            self.stream.abort_connection()
        if not ok:
            return False
        self.fs.chmod(path, mode)
        if mtime:
            self.fs.utime(path, mtime)
        self.stream.write(_REQUEST.pack(ID_OKAY, 0))
        return True

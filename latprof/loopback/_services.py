"""The services a host can ``OPEN``: ``shell:``, ``exec:``, ``shell,v2,…:`` and ``sync:``.

Service strings (AOSP ``daemon/services.cpp``, ``shell_service.cpp``):

* ``shell:CMD`` and ``exec:CMD`` run CMD raw, stdout and stderr merged, no exit
  status (``exec:`` never has a pty). ``shell:`` with no command is an
  interactive session with a pty (prompt, echo, ``\\r\\n`` line ends).
* ``shell,v2,[TERM=…,][raw|pty]:CMD`` speaks the shell protocol
  (``shell_protocol.h``): packets of a 1-byte id (0 stdin, 1 stdout, 2 stderr,
  3 exit, 4 close-stdin, 5 window-size-change) and a 4-byte little-endian length.
  The session ends with an exit packet carrying the status. With no command the
  shell reads its commands from stdin (``echo ls | adb shell``), with a prompt
  and echo under ``pty``.
* ``sync:`` is the file-transfer service (:mod:`._sync`).
* ``root:``/``unroot:`` answer as a production build does.

Anything else is refused with ``CLSE``, as adbd does for unknown services.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from latprof.loopback._shell import CallbackSink, Shell, ShellIO, Sink
from latprof.loopback._sync import SyncService
from latprof.loopback._transport import Stream

if TYPE_CHECKING:
    from latprof.loopback._server import LoopbackDevice

__all__ = ["resolve_service", "ID_STDIN", "ID_STDOUT", "ID_STDERR", "ID_EXIT", "ID_CLOSE_STDIN", "ID_WINDOW_SIZE"]

ID_STDIN, ID_STDOUT, ID_STDERR, ID_EXIT, ID_CLOSE_STDIN, ID_WINDOW_SIZE = 0, 1, 2, 3, 4, 5
_PACKET = struct.Struct("<BI")

Handler = Callable[[Stream], None]


def _packet(kind: int, data: bytes) -> bytes:
    return _PACKET.pack(kind, len(data)) + data


def resolve_service(device: LoopbackDevice, service: str) -> Handler | None:
    """The handler for a service string, or None when the device does not offer it."""
    name, colon, argument = service.partition(":")
    if not colon:
        return None
    options = name.split(",")
    if options[0] == "sync" and len(options) == 1:
        return lambda stream: SyncService(stream, device).run()
    if options[0] in ("shell", "exec"):
        exec_ = options[0] == "exec"
        v2 = "v2" in options[1:] and not exec_
        term = next((o[5:] for o in options[1:] if o.startswith("TERM=")), None)
        if "pty" in options[1:]:
            pty = True
        elif "raw" in options[1:] or exec_:
            pty = False
        else:
            pty = argument == ""
        return lambda stream: _ShellSession(device, stream, argument, v2=v2, pty=pty, term=term).run()
    if options[0] in ("root", "unroot") and len(options) == 1:
        message = (b"adbd cannot run as root in production builds\n" if options[0] == "root"
                   else b"adbd not running as root\n")
        return lambda stream: stream.write(message)
    return None


class _ShellSession:
    """One shell service stream: a command (or an interactive session) and its I/O framing."""

    def __init__(self, device: LoopbackDevice, stream: Stream, command: str, *, v2: bool, pty: bool,
                 term: str | None) -> None:
        self.device = device
        self.stream = stream
        self.command = command
        self.v2 = v2
        self.pty = pty
        env = {"TERM": term} if term else {}
        self.shell = Shell(device, cancel=stream.closed, abort=stream.abort_connection, env=env)

    # -- output -------------------------------------------------------------------------------
    def _write(self, kind: int, data: bytes) -> None:
        if self.pty:
            data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            kind = ID_STDOUT  # a pty has one output
        self.stream.write(_packet(kind, data) if self.v2 else data)

    def _io(self) -> ShellIO:
        out: Sink = CallbackSink(lambda data: self._write(ID_STDOUT, data))
        err: Sink = CallbackSink(lambda data: self._write(ID_STDERR, data))
        return ShellIO({1: out, 2: err})

    # -- running ------------------------------------------------------------------------------
    def run(self) -> None:
        if self.command:
            threading.Thread(target=self._discard_input, name="loopback-stdin", daemon=True).start()
            status = self.shell.run(self.command, self._io())
        else:
            status = self._interactive()
        if self.v2:
            self.stream.write(_packet(ID_EXIT, bytes([status & 0xFF])))

    def _discard_input(self) -> None:
        """Commands here read no stdin; keep taking it so the host's writes are acknowledged."""
        while self.stream.read() is not None:
            pass

    def _input(self) -> _InputReader:
        return _InputReader(self.stream, self.v2)

    def _prompt(self) -> None:
        if self.pty:
            self._write(ID_STDOUT, f"{self.device.profile.device}:{self.shell.cwd} $ ".encode())

    def _interactive(self) -> int:
        """Read command lines from stdin and run each; a pty gets a prompt and echo."""
        reader = self._input()
        line = bytearray()
        self._prompt()
        while not self.shell.exited:
            data = reader.read()
            if data is None:
                if line.strip() and not self.pty:
                    self.shell.run(line.decode("utf-8", "surrogateescape"), self._io())
                break
            for byte in data:
                char = bytes([byte])
                if not self.pty:
                    if char == b"\n":
                        self.shell.run(line.decode("utf-8", "surrogateescape"), self._io())
                        line.clear()
                        if self.shell.exited:
                            break
                    else:
                        line += char
                    continue
                if char in (b"\r", b"\n"):
                    self._write(ID_STDOUT, b"\n")
                    if line.strip():
                        self.shell.run(line.decode("utf-8", "surrogateescape"), self._io())
                    line.clear()
                    if self.shell.exited:
                        break
                    self._prompt()
                elif char == b"\x04":  # ^D
                    if not line:
                        self._write(ID_STDOUT, b"\n")
                        return self.shell.status
                elif char == b"\x03":  # ^C
                    line.clear()
                    self._write(ID_STDOUT, b"^C\n")
                    self._prompt()
                elif char in (b"\x7f", b"\x08"):
                    if line:
                        line.pop()
                        self._write(ID_STDOUT, b"\x08 \x08")
                elif byte >= 0x20 or char == b"\t":
                    line += char
                    self._write(ID_STDOUT, char)
        return self.shell.status


class _InputReader:
    """The host's stdin: raw WRTE data, or the stdin packets of shell protocol v2."""

    def __init__(self, stream: Stream, v2: bool) -> None:
        self.stream = stream
        self.v2 = v2
        self.buffer = bytearray()
        self.eof = False

    def read(self) -> bytes | None:
        """The next stdin bytes; None at end of input (close-stdin or the stream closed)."""
        while not self.eof:
            if self.v2:
                while len(self.buffer) >= _PACKET.size:
                    kind, length = _PACKET.unpack_from(self.buffer)
                    if len(self.buffer) < _PACKET.size + length:
                        break
                    data = bytes(self.buffer[_PACKET.size:_PACKET.size + length])
                    del self.buffer[:_PACKET.size + length]
                    if kind == ID_CLOSE_STDIN:
                        self.eof = True
                        return None
                    if kind == ID_STDIN and data:
                        return data
            chunk = self.stream.read()
            if chunk is None:
                self.eof = True
                return None
            if not self.v2:
                return chunk
            self.buffer += chunk
        return None

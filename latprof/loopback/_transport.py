"""One ADB connection, device side: the handshake and the multiplexed streams.

After the host's ``CNXN`` the device asks for authentication (``AUTH TOKEN``),
checks the signature or public key that comes back (see :mod:`._auth`), and
answers ``CNXN`` with its banner once the host is trusted. Then the host opens
streams: ``OPEN(host-id, 0, "service\\0")`` is answered ``OKAY(device-id, host-id)``
and the service runs in its own thread. Data moves in ``WRTE`` messages, each
acknowledged by an ``OKAY`` before the sender may write again on that stream;
either side ends a stream with ``CLSE``, and a ``CLSE`` from the host is echoed.

The thread that reads the socket never blocks on a service, so a service
waiting for an ``OKAY`` can always get it.
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from latprof.loopback._auth import new_token, parse_public_key
from latprof.loopback._protocol import (
    A_AUTH,
    A_CLSE,
    A_CNXN,
    A_OKAY,
    A_OPEN,
    A_VERSION,
    A_VERSION_MIN,
    A_VERSION_SKIP_CHECKSUM,
    A_WRTE,
    AUTH_RSAPUBLICKEY,
    AUTH_SIGNATURE,
    AUTH_TOKEN,
    MAX_PAYLOAD,
    Message,
    ProtocolError,
    command_name,
    read_message,
)

if TYPE_CHECKING:
    from latprof.loopback._server import LoopbackDevice

__all__ = ["Connection", "Stream", "StreamClosed", "FEATURES"]

log = logging.getLogger("latprof.loopback")

#: What the device advertises in its banner: only what it implements. No delayed_ack, no TLS,
#: no cmd/abb (their services are not provided), no sendrecv_v2 (SND2/RCV2).
FEATURES = ["shell_v2", "stat_v2", "ls_v2", "fixed_push_mkdir"]
_ACK_WAIT_ON_CLOSE_S = 5.0


class StreamClosed(Exception):
    """The stream (or the whole connection) was closed while a service used it."""


class Stream:
    """One open service stream: ordered bytes in each direction with ADB flow control."""

    def __init__(self, connection: Connection, local_id: int, remote_id: int, service: str) -> None:
        self.connection = connection
        self.local_id = local_id
        self.remote_id = remote_id
        self.service = service
        self.closed = threading.Event()  # set once either side closed the stream or the link died
        self._cond = threading.Condition()
        self._inbox: collections.deque[bytes] = collections.deque()
        self._acked = True  # no WRTE of ours awaits its OKAY
        self._sent_close = False

    # -- used by services -------------------------------------------------------------------
    def read(self, timeout: float | None = None) -> bytes | None:
        """The next chunk the host wrote; None once the stream is closed (or on timeout).

        Taking a chunk acknowledges it (``OKAY``), so the host may send the next one.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._inbox or self.closed.is_set(), timeout):
                return None
            if self.closed.is_set():
                return None
            data = self._inbox.popleft()
        self.connection.send(Message(A_OKAY, self.local_id, self.remote_id))
        return data

    def write(self, data: bytes) -> None:
        """Send ``data`` in ``WRTE`` messages, each after the previous one's ``OKAY``."""
        view = memoryview(data)
        step = self.connection.max_payload
        for start in range(0, len(view), step):
            with self._cond:
                self._cond.wait_for(lambda: self._acked or self.closed.is_set())
                if self.closed.is_set():
                    raise StreamClosed(self.service)
                self._acked = False
            self.connection.send(Message(A_WRTE, self.local_id, self.remote_id, bytes(view[start:start + step])))

    def close(self) -> None:
        """End the stream from the device side (``CLSE``), after the last write is acknowledged."""
        with self._cond:
            self._cond.wait_for(lambda: self._acked or self.closed.is_set(), _ACK_WAIT_ON_CLOSE_S)
            already = self._sent_close
            self._sent_close = True
            self.closed.set()
            self._cond.notify_all()
        if not already:
            self.connection.send(Message(A_CLSE, self.local_id, self.remote_id), quiet=True)
        self.connection.forget(self)

    def abort_connection(self) -> None:
        """Drop the whole TCP connection at once, as a phone that lost power or USB would."""
        self.connection.abort()

    # -- used by the connection -------------------------------------------------------------
    def _deliver(self, data: bytes) -> None:
        with self._cond:
            if not self.closed.is_set():
                self._inbox.append(data)
                self._cond.notify_all()

    def _acknowledged(self) -> None:
        with self._cond:
            self._acked = True
            self._cond.notify_all()

    def _closed_by_peer(self) -> bool:
        """Mark closed; True when the device still owes the host a ``CLSE``."""
        with self._cond:
            owe = not self._sent_close
            self._sent_close = True
            self.closed.set()
            self._cond.notify_all()
        return owe


class Connection:
    """The device end of one TCP connection from an ADB host."""

    def __init__(
        self, sock: socket.socket, device: LoopbackDevice, resolve: Callable[[str], Callable[[Stream], None] | None],
    ) -> None:
        self.sock = sock
        self.device = device
        self._resolve = resolve
        self.version = A_VERSION
        self.max_payload = MAX_PAYLOAD
        self.online = False
        self._token: bytes | None = None
        self._send_lock = threading.Lock()
        self._streams: dict[int, Stream] = {}
        self._streams_lock = threading.Lock()
        self._next_id = 1
        self._dead = threading.Event()
        self.peer = "?"

    # -- sending ----------------------------------------------------------------------------
    def send(self, message: Message, quiet: bool = False) -> None:
        """Write one message; raises StreamClosed when the connection is gone (unless ``quiet``)."""
        packed = message.pack()
        try:
            with self._send_lock:
                if self._dead.is_set():
                    raise OSError("connection closed")
                self.sock.sendall(packed)
        except OSError:
            self._shutdown()
            if not quiet:
                raise StreamClosed("connection closed") from None

    def abort(self) -> None:
        """Close the TCP connection now, without a goodbye."""
        log.info("loopback: dropping the connection from %s on purpose", self.peer)
        self._shutdown()

    def _shutdown(self) -> None:
        if self._dead.is_set():
            return
        self._dead.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        with self._streams_lock:
            streams = list(self._streams.values())
            self._streams.clear()
        for stream in streams:
            stream._closed_by_peer()

    def forget(self, stream: Stream) -> None:
        with self._streams_lock:
            if self._streams.get(stream.local_id) is stream:
                del self._streams[stream.local_id]

    # -- the read loop ----------------------------------------------------------------------
    def serve(self) -> None:
        """Handle messages until the host hangs up or the device drops the link."""
        try:
            host, port = self.sock.getpeername()[:2]
            self.peer = f"{host}:{port}"
        except OSError:
            pass
        try:
            while not self._dead.is_set():
                message = read_message(
                    self.sock, max_payload=max(self.max_payload, MAX_PAYLOAD),
                    verify_checksum=self.version < A_VERSION_SKIP_CHECKSUM,
                )
                self._handle(message)
        except (EOFError, OSError, StreamClosed):
            pass
        except ProtocolError as exc:
            log.warning("loopback: %s sent a bad message (%s); dropping it", self.peer, exc)
        finally:
            self._shutdown()

    def _handle(self, msg: Message) -> None:
        if msg.command == A_CNXN:
            self._on_connect(msg)
        elif msg.command == A_AUTH:
            self._on_auth(msg)
        elif not self.online:
            log.debug("loopback: ignoring %s before authentication", command_name(msg.command))
        elif msg.command == A_OPEN:
            self._on_open(msg)
        elif msg.command in (A_WRTE, A_OKAY, A_CLSE):
            self._on_stream_message(msg)
        else:  # SYNC and STLS are never offered; a host that sends them anyway is ignored
            log.debug("loopback: ignoring %s", command_name(msg.command))

    # -- handshake --------------------------------------------------------------------------
    def _on_connect(self, msg: Message) -> None:
        if msg.arg0 < A_VERSION_MIN:
            raise ProtocolError(f"host protocol version {msg.arg0:#x} is older than {A_VERSION_MIN:#x}")
        self.version = min(msg.arg0, A_VERSION)
        self.max_payload = max(256, min(msg.arg1, MAX_PAYLOAD))
        self.online = False
        log.info("loopback: %s connected (%s)", self.peer, msg.data.rstrip(b"\0")[:80].decode("utf-8", "replace"))
        self._send_token()

    def _send_token(self) -> None:
        self._token = new_token()
        self.send(Message(A_AUTH, AUTH_TOKEN, 0, self._token))

    def _go_online(self) -> None:
        self.online = True
        self._token = None
        self.send(Message(A_CNXN, self.version, self.max_payload, self.device.banner()))
        log.info("loopback: %s authorised", self.peer)

    def _on_auth(self, msg: Message) -> None:
        if self.online or self._token is None:
            return
        if msg.arg0 == AUTH_SIGNATURE:
            if not self.device.refuses_keys and self.device.keys.verify(self._token, msg.data) is not None:
                self._go_online()
            else:
                self._send_token()  # adbd asks again; the host tries its next key, then its public key
        elif msg.arg0 == AUTH_RSAPUBLICKEY:
            try:
                key = parse_public_key(msg.data)
            except ValueError as exc:
                log.warning("loopback: %s offered an unusable public key (%s)", self.peer, exc)
                return
            if self.device.accept_new_keys and not self.device.refuses_keys:
                self.device.keys.add(key)
                self._go_online()
            else:
                # A phone would show "Allow USB debugging?" here; nobody answers it, so the
                # host stays unauthorised until it gives up.
                log.info("loopback: %s is not authorised (key %s…)", self.peer, key.line[:16])

    # -- streams ----------------------------------------------------------------------------
    def _on_open(self, msg: Message) -> None:
        service = msg.data.rstrip(b"\0").decode("utf-8", "surrogateescape")
        handler = self._resolve(service)
        if handler is None:
            log.info("loopback: %s asked for unsupported service %r", self.peer, service[:60])
            self.send(Message(A_CLSE, 0, msg.arg0))
            return
        with self._streams_lock:
            local_id = self._next_id
            self._next_id += 1
            stream = Stream(self, local_id, msg.arg0, service)
            self._streams[local_id] = stream
        self.send(Message(A_OKAY, local_id, msg.arg0))
        threading.Thread(
            target=self._run_service, args=(handler, stream), name=f"loopback-{service.split(':')[0]}-{local_id}",
            daemon=True,
        ).start()

    def _run_service(self, handler: Callable[[Stream], None], stream: Stream) -> None:
        try:
            handler(stream)
        except StreamClosed:
            pass
        except Exception:  # a bug in a service must not take the device down
            log.exception("loopback: service %r failed", stream.service)
        finally:
            stream.close()

    def _on_stream_message(self, msg: Message) -> None:
        with self._streams_lock:
            stream = self._streams.get(msg.arg1)
        if stream is None or stream.remote_id != msg.arg0:
            return  # a stream we already closed; late OKAY/WRTE/CLSE are dropped
        if msg.command == A_WRTE:
            stream._deliver(msg.data)
        elif msg.command == A_OKAY:
            stream._acknowledged()
        else:
            if stream._closed_by_peer():
                self.send(Message(A_CLSE, stream.local_id, stream.remote_id))
            self.forget(stream)

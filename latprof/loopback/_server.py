"""The loopback device: a TCP listener on 127.0.0.1, one thread per connection.

:class:`LoopbackDevice` owns everything a phone has: its profile (identity,
properties, sysfs), its file system (a sandbox folder), its trusted keys
(``/data/misc/adb/adb_keys`` in the sandbox) and its failure switches. It
listens on the loopback interface only.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from latprof.devices.config import DeviceConfig
from latprof.errors import LatprofError
from latprof.loopback._auth import KeyStore, parse_public_key
from latprof.loopback._benchmark import PLACEHOLDER, is_placeholder
from latprof.loopback._failures import FailureMode, parse_failures
from latprof.loopback._fs import Sandbox
from latprof.loopback._profile import DeviceProfile, load_profile
from latprof.loopback._services import resolve_service
from latprof.loopback._simulated import SimulatedSpeed
from latprof.loopback._shell import APPLETS, BufferSink, Shell, ShellIO, applet_file
from latprof.loopback._transport import FEATURES, Connection

__all__ = ["LoopbackDevice", "ShellResult", "HOST", "ADB_KEYS"]

log = logging.getLogger("latprof.loopback")

HOST = "127.0.0.1"  # never anything else: the device is reachable from this machine only
ADB_KEYS = "/data/misc/adb/adb_keys"
DEFAULT_DROP_AFTER_BYTES = 64 * 1024


@dataclass(frozen=True)
class ShellResult:
    """What a command run on the device's shell printed, and its exit status."""

    status: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


class LoopbackDevice:
    """A fake Android phone that speaks the ADB wire protocol on ``127.0.0.1:port``.

    ``profile`` is a device config name (``"pixel1"``) or a DeviceConfig/DeviceProfile.
    ``port=0`` picks a free port (see :attr:`port` after :meth:`start`). ``root`` is the
    sandbox folder (a temporary one, removed on :meth:`close`, when None). Keys in
    ``authorized_keys`` (adb public-key lines or paths to ``adbkey.pub`` files) are trusted
    from the start; ``accept_new_keys`` trusts any key a host offers, as if someone tapped
    "Allow". ``failures`` switches on :class:`FailureMode`s; ``drop_after_bytes`` is where
    ``drop-mid-push`` cuts a push. With ``simulated``, benchmark_model sleeps for the latency it
    predicts instead of running the model (its placeholder, so its hash, differs from the real one's).

    Use it as a context manager (it starts and stops the listener)::

        with LoopbackDevice("pixel1", accept_new_keys=True) as device:
            subprocess.run(["adb", "connect", device.address])
    """

    def __init__(
        self,
        profile: str | DeviceConfig | DeviceProfile = "pixel1",
        *,
        port: int = 0,
        root: str | os.PathLike[str] | None = None,
        accept_new_keys: bool = False,
        authorized_keys: Iterable[str | os.PathLike[str]] = (),
        failures: Iterable[FailureMode | str] = (),
        drop_after_bytes: int = DEFAULT_DROP_AFTER_BYTES,
        simulated: SimulatedSpeed | None = None,
    ) -> None:
        self.simulated = simulated  # None: benchmark_model runs the model on the host
        self.profile = profile if isinstance(profile, DeviceProfile) else load_profile(profile)
        if not 0 <= port <= 65535:
            raise LatprofError(f"port {port} is not a TCP port; pass --port between 1 and 65535 (0 picks a free one)")
        self._owns_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="latprof-loopback-")) if root is None else Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LatprofError(
                f"cannot create the device root {self.root} ({exc.strerror}); pass another --root"
            ) from None
        self.fs = Sandbox(self.root)
        self.keys = KeyStore(self.fs.host(ADB_KEYS, internal=True))
        self.accept_new_keys = accept_new_keys
        self.failures: frozenset[FailureMode] = parse_failures(failures)
        self.drop_after_bytes = max(1, int(drop_after_bytes))
        self._requested_port = port
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._connections: set[Connection] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.populate()
        for key in authorized_keys:
            self.authorize_key(key)

    # -- identity -------------------------------------------------------------------------------
    @property
    def serial(self) -> str:
        """The device's own serial number (``ro.serialno``); adb lists a TCP device as host:port."""
        return f"LOOPBACK{self.profile.device.upper()}"

    def properties(self) -> dict[str, str]:
        """The ``getprop`` table."""
        props = self.profile.properties(serial=self.serial)
        if self.simulated is not None:
            props["ro.latprof.benchmark"] = f"simulated:{self.simulated.device}"
        if self._listener is not None:
            props["service.adb.tcp.port"] = str(self.port)
        return props

    def banner(self) -> bytes:
        """The ``CNXN`` payload: identity and the features this device implements."""
        return self.profile.banner(FEATURES)

    @property
    def refuses_keys(self) -> bool:
        return FailureMode.REFUSE_KEY in self.failures

    @property
    def drops_mid_push(self) -> bool:
        return FailureMode.DROP_MID_PUSH in self.failures

    # -- file system ----------------------------------------------------------------------------
    def populate(self) -> None:
        """Lay out the phone's files: folders, /system/bin, sysfs and /proc from the profile, benchmark_model.

        Files the user created are kept; profile-owned files are rewritten (so a
        change of failure modes shows at once).
        """
        for folder in self.profile.folders():
            self.fs.host(folder, internal=True).mkdir(parents=True, exist_ok=True)
        os.chmod(self.fs.host("/data/local/tmp"), 0o771)
        for path, content in self.profile.files(hot=FailureMode.HOT in self.failures).items():
            self.fs.write_bytes(path, content, mode=0o444)
        for name in APPLETS:
            self.fs.write_bytes(f"/system/bin/{name}", applet_file(name), mode=0o755)
        self.fs.write_bytes("/dev/null", b"", mode=0o666)
        binary = self.profile.benchmark_path
        host = self.fs.host(binary, internal=True)
        present = host.is_file()
        is_ours = present and is_placeholder(host.read_bytes()[:256])
        if FailureMode.NO_BENCHMARK in self.failures:
            if is_ours:
                host.unlink()
        elif not present:
            simulated = b"" if self.simulated is None else b"# simulated: sleeps for the predicted timings\n"
            self.fs.write_bytes(binary, PLACEHOLDER + simulated, mode=0o755)

    def set_failures(self, failures: Iterable[FailureMode | str]) -> None:
        """Switch failure modes while running (the file system follows at once)."""
        self.failures = parse_failures(failures)
        self.populate()

    def authorize_key(self, key: str | os.PathLike[str]) -> None:
        """Trust an adb public key: a key line (``BASE64 user@host``) or a path to an ``adbkey.pub``."""
        text = str(key)
        if isinstance(key, os.PathLike) or (len(text) < 4096 and os.path.isfile(text)):
            try:
                text = Path(key).read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise LatprofError(f"cannot read the public key {key} ({exc.strerror}); check the path") from None
        try:
            parsed = parse_public_key(text)
        except ValueError as exc:
            raise LatprofError(
                f"{str(key)[:60]} is not an adb public key ({exc}); pass ~/.android/adbkey.pub"
            ) from None
        self.keys.add(parsed)

    def run_shell(self, command: str, stdin: bytes = b"") -> ShellResult:
        """Run a command on the device's shell directly (no ADB): for tests and debugging."""
        out, err = BufferSink(), BufferSink()
        status = Shell(self).run(command, ShellIO({1: out, 2: err}, stdin))
        return ShellResult(status, bytes(out.data), bytes(err.data))

    # -- network --------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._listener is None:
            raise LatprofError("the loopback device is not listening; call start() first")
        return self._listener.getsockname()[1]

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``: what ``adb connect`` and ``latprof measure --device`` take."""
        return f"{HOST}:{self.port}"

    def start(self) -> LoopbackDevice:
        """Listen on 127.0.0.1 and serve connections in background threads."""
        if self._listener is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((HOST, self._requested_port))
        except OSError as exc:
            listener.close()
            raise LatprofError(
                f"cannot listen on {HOST}:{self._requested_port} ({exc.strerror}); "
                "pass another --port, or --port 0 for a free one"
            ) from None
        listener.listen(16)
        listener.settimeout(0.5)
        self._listener = listener
        self._stopped.clear()
        self._accept_thread = threading.Thread(target=self._accept_loop, name="loopback-accept", daemon=True)
        self._accept_thread.start()
        log.info("loopback: %s (%s) listening on %s", self.profile.name, self.profile.model, self.address)
        return self

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopped.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = Connection(sock, self, lambda service: resolve_service(self, service))
            with self._lock:
                self._connections.add(connection)
            threading.Thread(target=self._serve, args=(connection,), name="loopback-connection", daemon=True).start()

    def _serve(self, connection: Connection) -> None:
        try:
            connection.serve()
        finally:
            with self._lock:
                self._connections.discard(connection)

    def drop_connections(self) -> None:
        """Close every open connection at once (a phone unplugged)."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.abort()

    def serve_forever(self) -> None:
        """Start if needed and block until :meth:`close` (or Ctrl-C)."""
        self.start()
        self._stopped.wait()

    def close(self) -> None:
        """Stop listening, drop every connection, and remove a temporary root."""
        self._stopped.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes accept() at once on Linux
            except OSError:
                pass
            try:
                listener.close()
            except OSError:
                pass
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
            self._accept_thread = None
        self.drop_connections()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LoopbackDevice:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.address if self._listener is not None else "not listening"
        return f"<LoopbackDevice {self.profile.name} {where} root={self.root}>"

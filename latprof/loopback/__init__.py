"""A fake Android phone on loopback that speaks the real ADB wire protocol.

Real ADB clients (adb-shell, Debian's ``adb``) connect to it, authenticate,
run shell commands, push and pull files, and run ``benchmark_model``, which
measures the model on the host and prints the real tool's output. Its identity,
properties, CPU frequencies and temperatures come from a device config.

Layers, bottom up: ``_protocol`` (message framing), ``_auth`` (keys and
signatures), ``_transport`` (handshake and streams of one connection),
``_services`` (which service a stream is), ``_sync`` (file transfer), ``_shell``
(a sandboxed sh: parsing, expansion, redirection, command lookup), ``_commands``
(its builtins and toybox applets), ``_benchmark`` (the fake
``benchmark_model``; ``_simulated``: its timings predicted and slept, not run),
``_fs`` (the sandbox), ``_profile`` (what the phone looks like), ``_server`` (the
listener and :class:`LoopbackDevice`).

For tests::

    from latprof.loopback import FailureMode, serve

    with serve("pixel1", accept_new_keys=True, failures=[FailureMode.HOT]) as device:
        ...  # connect to device.address ("127.0.0.1:PORT")
"""

from __future__ import annotations

from latprof.loopback._failures import FailureMode, parse_failures
from latprof.loopback._profile import DeviceProfile, load_profile
from latprof.loopback._server import ADB_KEYS, LoopbackDevice, ShellResult
from latprof.loopback._simulated import SimulatedSpeed
from latprof.loopback._transport import FEATURES

__all__ = [
    "LoopbackDevice", "FailureMode", "ShellResult", "DeviceProfile", "FEATURES", "ADB_KEYS",
    "serve", "load_profile", "parse_failures", "SimulatedSpeed",
]


def serve(profile: str = "pixel1", **options: object) -> LoopbackDevice:
    """A started :class:`LoopbackDevice` (``port=0`` by default: a free port). Close it, or use ``with``."""
    options.setdefault("port", 0)
    return LoopbackDevice(profile, **options).start()  # type: ignore[arg-type]

"""Ray, imported only when the farm is used (it is the optional extra ``latprof[farm]``)."""

from __future__ import annotations

import os
from types import ModuleType

from latprof.errors import FarmError

__all__ = ["NAMESPACE", "AGENT_PREFIX", "DEVICE_PREFIX", "ray_module", "connect"]

NAMESPACE = "latprof-farm"  # every agent of a farm lives here, so any client finds them by name
AGENT_PREFIX = "phone:"  # an agent's actor name and its phone's Ray resource: phone:SERIAL
DEVICE_PREFIX = "device:"  # the Ray resource naming the phone's device config: device:pixel1


def ray_module() -> ModuleType:
    """The ``ray`` module; FarmError saying how to install it when absent."""
    try:
        import ray
    except ImportError:
        raise FarmError("the device farm needs Ray; install it with `pip install 'latprof[farm]'`") from None
    return ray


def connect(address: str | None) -> ModuleType:
    """Attach this process to the Ray cluster at ``address`` (``HEAD:PORT``; None: ``$RAY_ADDRESS`` or local)."""
    if address and address.rpartition(":")[0] in ("127.0.0.1", "localhost"):
        # Read when Ray is imported: else Ray swaps 127.0.0.1 for the machine's network address and listens there.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = ray_module()
    if ray.is_initialized():
        return ray
    if address and address != "auto":
        _check_reachable(address)
    try:
        ray.init(address=address or "auto", namespace=NAMESPACE, log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "auto ($RAY_ADDRESS)"
        raise FarmError(f"cannot reach a Ray cluster at {where} ({str(exc).splitlines()[0][:120]}); "
                        "start one with `ray start --head` and pass --farm/--address HEAD:PORT") from None
    return ray


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """FarmError at once when nothing answers at ``HEAD:PORT`` (Ray itself would retry for minutes)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return
    except ValueError:
        raise FarmError(f"{address} is not a Ray address; pass HEAD:PORT as `ray start --head` printed it") from None
    except OSError as exc:
        raise FarmError(f"nothing answers at {address} ({exc.strerror or exc}); start the head with "
                        "`ray start --head --port PORT` and pass its HEAD:PORT") from None

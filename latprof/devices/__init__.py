"""Devices latprof measures on: the host (``local``) and Android phones over ADB.

Public surface: :func:`open_device` turns what a user typed after ``--device``
into a connected :class:`Device`; :func:`list_devices` says what is visible.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from latprof.devices.base import (
    DEFAULT_DELEGATE, DELEGATES, BenchmarkRequest, BenchmarkRun, Device, DeviceState, delegate_name,
)
from latprof.devices.config import DeviceConfig, list_configs, load_config
from latprof.errors import LatprofError, NoDeviceError, UnknownDeviceError

__all__ = [
    "Device", "DeviceState", "DeviceConfig", "BenchmarkRequest", "BenchmarkRun", "DELEGATES", "DEFAULT_DELEGATE",
    "delegate_name",
    "open_device", "list_devices", "list_configs", "load_config", "DEFAULT_DEVICE",
]

DEFAULT_DEVICE = "local"


def _tcp_addresses() -> list[str]:
    """ADB-over-TCP endpoints to probe: ``$LATPROF_ADB_HOSTS`` (comma-separated HOST:PORT) and 127.0.0.1:5555."""
    extra = [a.strip() for a in os.environ.get("LATPROF_ADB_HOSTS", "").split(",") if a.strip()]
    return list(dict.fromkeys(extra + ["127.0.0.1:5555"]))


def _answers(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except (OSError, ValueError):
        return False


def _usb_handles() -> list[tuple[str, Any]]:
    """(serial, adb-shell device) for each ADB device on USB; empty where libusb1 is not installed."""
    try:
        from adb_shell.adb_device import AdbDeviceUsb
        from adb_shell.transport.usb_transport import UsbTransport
    except ImportError:
        return []
    try:
        transports = list(UsbTransport.find_all_adb_devices())
    except Exception:  # libusb present but no permission / no bus: nothing visible over USB
        return []
    handles = []
    for transport in transports:
        serial = transport.serial_number
        handles.append((serial, AdbDeviceUsb(serial=serial)))
    return handles


def _is_address(name: str) -> bool:
    host, sep, port = name.rpartition(":")
    return bool(sep and host and port.isdigit())


def _auth_timeout_s() -> float:
    """How long to wait for the user to allow a new key on the phone (``$LATPROF_AUTH_TIMEOUT_S``, default 30)."""
    return float(os.environ.get("LATPROF_AUTH_TIMEOUT_S", 30))


def open_device(name: str | None = None, *, auth_timeout_s: float | None = None) -> Device:
    """Connect to a device by config name, ``HOST:PORT`` or USB serial; ``None`` means the host."""
    from latprof.devices.adb import AdbDevice
    from latprof.devices.local import LocalDevice

    name = name or DEFAULT_DEVICE
    auth_timeout_s = auth_timeout_s or _auth_timeout_s()
    configs = list_configs()
    config = configs.get(name) or (DeviceConfig(name="local", kind="host") if name == "local" else None)
    if config is not None and config.kind == "host":
        return LocalDevice(config)
    if _is_address(name):
        return AdbDevice.connect(name, configs=configs, auth_timeout_s=auth_timeout_s)
    if config is not None:
        for candidate in _candidates():
            device = _try_connect(candidate, configs, auth_timeout_s)
            if device is not None and device.config.name == name:
                return device
            if device is not None:
                device.close()
        expected = ", ".join(f"{k}={v}" for k, v in config.match.items())
        raise NoDeviceError(
            f"no connected device matches {name} ({expected}); plug it in over USB, "
            "or pass --device HOST:PORT (set LATPROF_ADB_HOSTS to probe more addresses)"
        )
    for serial, handle in _usb_handles():
        if serial == name:
            return AdbDevice.connect(serial, configs=configs, auth_timeout_s=auth_timeout_s, handle=handle)
    known = ", ".join(sorted(configs))
    raise UnknownDeviceError(
        f"unknown device '{name}': not a config ({known}), a HOST:PORT or a connected USB serial; "
        "run `latprof devices` to see what is connected"
    )


def _candidates() -> list[tuple[str, Any]]:
    return [(a, None) for a in _tcp_addresses() if _answers(a)] + _usb_handles()


def _try_connect(candidate: tuple[str, Any], configs: dict[str, DeviceConfig], auth_timeout_s: float):
    from latprof.devices.adb import AdbDevice

    serial, handle = candidate
    try:
        return AdbDevice.connect(serial, configs=configs, auth_timeout_s=auth_timeout_s, handle=handle)
    except LatprofError:
        return None


def list_devices(*, auth_timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """What latprof can see: ``local`` and each reachable ADB device, with its identity and config."""
    from latprof.devices.adb import AdbDevice
    from latprof.devices.local import LocalDevice

    configs = list_configs()
    local = LocalDevice(configs.get("local") or DeviceConfig(name="local", kind="host"))
    rows = [{**local.fingerprint(), "serial": "local", "state": "device", "config": "local"}]
    for serial, handle in _candidates():
        try:
            device = AdbDevice.connect(serial, configs=configs, auth_timeout_s=auth_timeout_s, handle=handle)
        except LatprofError as exc:
            rows.append({"serial": serial, "state": type(exc).__name__.replace("Error", "").lower(), "config": None})
            continue
        with device:
            config = device.config.name if device.config.name != serial else None
            rows.append({**device.fingerprint(), "state": "device", "config": config})
    return rows

"""Attaching a host and its phones to a Ray cluster.

Custom resources belong to a node, so a phone is declared on the node of the
host it is plugged into (``ray start --address … --resources``), and its agent
asks for that resource: Ray places it there, and nowhere else.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from latprof.errors import FarmError, LatprofError
from latprof.farm._ray import AGENT_PREFIX, DEVICE_PREFIX, NAMESPACE, connect

__all__ = ["Phone", "probe_phones", "node_resources", "node_labels", "start_agents", "join", "PHONES_LABEL"]

PHONES_LABEL = "latprof-phones"  # a node label listing its phones: a node's labels outlive it, its resources do not


@dataclass(frozen=True)
class Phone:
    """A phone as the farm knows it: its serial (unique in the farm), how to reach it, its device config."""

    serial: str
    address: str
    config: str

    @property
    def resource(self) -> str:
        return AGENT_PREFIX + self.serial


def probe_phones(devices: Sequence[str] = ()) -> list[Phone]:
    """Connect to each of ``devices`` (serials or ``HOST:PORT``; default: every ADB device visible) once."""
    from latprof.devices import list_devices, open_device

    names = list(devices) or [row["serial"] for row in list_devices()
                              if row["serial"] != "local" and row["state"] == "device"]
    if not names:
        raise FarmError("no phone is visible from this host; plug one in (USB debugging on) or pass "
                        "--device SERIAL|HOST:PORT")
    phones = []
    for name in names:
        with open_device(name) as device:
            if device.config.kind == "host":
                raise FarmError(f"{name} is this host, not a phone; pass a phone's serial or HOST:PORT to --device")
            phones.append(Phone(serial=device.serial, address=name, config=device.config.name))
    return phones


def node_resources(phones: Sequence[Phone]) -> dict[str, float]:
    """The Ray custom resources a host with ``phones`` declares: one ``phone:SERIAL`` each, ``device:CONFIG`` counts."""
    resources: dict[str, float] = {p.resource: 1.0 for p in phones}
    for config, count in Counter(p.config for p in phones).items():
        resources[DEVICE_PREFIX + config] = float(count)
    return resources


def node_labels(phones: Sequence[Phone]) -> dict[str, str]:
    """The Ray node labels of a host with ``phones``: their serials, so ``farm status`` lists them once it is gone."""
    return {PHONES_LABEL: ",".join(p.serial for p in phones)}


def start_agents(phones: Sequence[Phone]) -> list[dict[str, Any]]:
    """Start (or find, after a rejoin) one detached agent per phone, pinned by its resource; their status rows."""
    import ray

    from latprof.farm._agent import PhoneAgent

    handles = [PhoneAgent.options(name=p.resource, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
                                  resources={p.resource: 1.0}).remote(p.serial, p.address, p.config)
               for p in phones]
    return ray.get([h.check.remote() for h in handles], timeout=120)


def _ray_start(address: str | None, head_port: int, phones: Sequence[Phone], node_ip: str | None,
               num_cpus: int | None) -> str:
    """Start this host's Ray node with its phones' resources: a worker of ``address``, or (None) the head.

    Returns the cluster's address."""
    ray_cli = shutil.which("ray")
    cmd = [ray_cli] if ray_cli else [sys.executable, "-m", "ray.scripts.scripts"]
    cmd += ["start", "--resources", json.dumps(node_resources(phones)), "--labels", json.dumps(node_labels(phones)),
            "--disable-usage-stats"]
    cmd += ["--address", address] if address else ["--head", "--port", str(head_port), "--include-dashboard", "false"]
    if node_ip:
        cmd += ["--node-ip-address", node_ip]
    if num_cpus is not None:
        cmd += ["--num-cpus", str(num_cpus)]
    env = dict(os.environ)
    if node_ip is None or ipaddress.ip_address(node_ip).is_loopback:
        # Else Ray swaps 127.0.0.1 for the machine's network address and listens there.
        env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
        what = f"--address {address}" if address else f"--head --port {head_port}"
        raise FarmError(f"`ray start {what}` failed ({lines[-1][:160] if lines else done.returncode}); "
                        "check the head's address, or run `ray stop` first if this host already runs a Ray node")
    return address or f"{node_ip or '127.0.0.1'}:{head_port}"


def join(address: str | None, devices: Sequence[str] = (), *, head_port: int = 6379, node_ip: str | None = "127.0.0.1",
         num_cpus: int | None = None) -> list[dict[str, Any]]:
    """Attach this host with its phones to the Ray cluster at ``address`` (None: start the cluster's head here).

    One agent per phone; their status rows back.
    """
    phones = probe_phones(devices)
    if address:
        ray = connect(address)
        taken = [p.serial for p in phones if p.resource in ray.cluster_resources()]
        ray.shutdown()
        if taken:
            raise FarmError(f"phone {', '.join(taken)} is already in the farm (another host declared it); "
                            "give each phone a unique serial or address, or check `latprof farm status`")
    connect(_ray_start(address, head_port, phones, node_ip, num_cpus))
    try:
        return start_agents(phones)
    except LatprofError:
        raise
    except Exception as exc:  # noqa: BLE001 - Ray's own errors, shown as one line
        raise FarmError(f"the agents did not start ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); "
                        "see `ray status` on the head") from None

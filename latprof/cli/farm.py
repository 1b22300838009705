"""``latprof farm join`` and ``latprof farm status``; :func:`open_target` for the commands taking ``--farm``."""

from __future__ import annotations

import click

from latprof.cli.options import echo_json, json_option, open_store

__all__ = ["farm", "farm_option", "open_target", "measure_on_farm"]

farm_option = click.option(
    "--farm", "farm_address", metavar="HEAD:PORT",
    help="Measure on the device farm at this Ray address (`latprof farm status`); --device names the kind of "
         "phone (its device config, e.g. pixel1).")


def open_target(device_name: str, farm_address: str | None):
    """The device ``--device`` names, or with ``--farm`` every phone of that kind in the farm."""
    if farm_address is None:
        from latprof.devices import open_device

        return open_device(device_name)
    from latprof.farm import Farm, FarmDevice

    return FarmDevice(Farm(farm_address), device_name)


def measure_on_farm(ctx: click.Context, db: str | None, models, kind: str, farm_address: str,
                    request_options: dict, as_json: bool, summary) -> None:
    """``latprof measure --farm``: each model on a free phone of ``kind``, stored and shown as it arrives."""
    from latprof.measure import build_request

    results = []
    with open_store(ctx, db) as store, open_target(kind, farm_address) as device:
        request = build_request(device, **request_options)
        for m in device.farm.measure(models, kind, request, store=store,
                                     notify=lambda msg: click.echo(f"Warning: {msg}", err=True)):
            results.append(m)
            if not as_json:
                click.echo(f"{summary(m)}\n  measured on {m.fingerprint.get('serial')}")
    if as_json:
        echo_json(results[0].to_dict() if len(results) == 1 else [m.to_dict() for m in results])


@click.group()
def farm() -> None:
    """A device farm on Ray: phones on many hosts measure in parallel (`pip install 'latprof[farm]'`)."""


@farm.command("join")
@click.option("--address", metavar="HEAD:PORT", help="The Ray head (`ray start --head` printed it).")
@click.option("--head", is_flag=True, help="Make this host the cluster's head (instead of --address).")
@click.option("--port", type=click.IntRange(1, 65535), default=6379, show_default=True,
              help="With --head: the port the head listens on.")
@click.option("--device", "devices", multiple=True, metavar="SERIAL|HOST:PORT",
              help="A phone of this host (repeatable; default: every ADB device visible).")
@click.option("--node-ip-address", default="127.0.0.1", show_default=True,
              help="The address this host's Ray node listens on and other hosts reach it at: loopback (this "
                   "machine only) unless you pass the host's network address, which opens Ray's unauthenticated "
                   "ports to that network.")
@click.option("--num-cpus", type=click.IntRange(min=0), help="CPUs this host offers to Ray tasks (default: all).")
@json_option
def join(address, head, port, devices, node_ip_address, num_cpus, as_json):
    """Attach this host and its phones to the farm: one latprof agent per phone, as Ray resources."""
    from latprof.farm import join as run_join

    if bool(address) == head:
        raise click.UsageError("pass --address HEAD:PORT to join a cluster, or --head to start one on this host")
    rows = run_join(address, devices, head_port=port, node_ip=node_ip_address, num_cpus=num_cpus)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"joined {row['serial']} ({row['config']}) on {row['host']}: {row['state']}"
                   + (f" ({row['message']})" if row.get("message") else ""))
    click.echo("resources: " + ", ".join(f"phone:{r['serial']}" for r in rows) + "; see `latprof farm status`")


@farm.command("status")
@click.option("--address", metavar="HEAD:PORT", help="The Ray head (default: $RAY_ADDRESS, or the local node).")
@json_option
def status(address, as_json):
    """Hosts and phones of the farm: device config, state (idle, busy, hot, offline), jobs done, flags."""
    from latprof.farm import Farm

    rows = Farm(address).status()
    if as_json:
        echo_json([{k: v for k, v in r.items() if k not in ("benchmark", "thermal")} for r in rows])
        return
    if not rows:
        click.echo("no phone has joined the farm; run `latprof farm join --address HEAD:PORT` on a host with phones")
        return
    click.echo(f"{'serial':<24} {'host':<16} {'config':<18} {'state':<8} {'jobs':>5}  note")
    for r in rows:
        note = r.get("flagged") or r.get("message") or ""
        jobs = "-" if r.get("jobs_done") is None else r["jobs_done"]
        click.echo(f"{r['serial']:<24} {r.get('host') or '-':<16} {r.get('config') or '-':<18} {r['state']:<8} "
                   f"{jobs:>5}  {('FLAGGED: ' if r.get('flagged') else '') + note}")

"""``latprof device …``: the loopback ADB device."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from latprof.loopback import FailureMode, LoopbackDevice, SimulatedSpeed

__all__ = ["device"]


@click.group()
def device() -> None:
    """Devices latprof provides itself (a loopback ADB phone for tests and CI)."""


@device.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), default=5555, show_default=True,
              help="TCP port on 127.0.0.1 (0 picks a free one).")
@click.option("--profile", default="pixel1", show_default=True,
              help="Device config the phone imitates (identity, properties, CPU frequencies).")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path),
              help="Folder holding the phone's file system (default: a temporary folder, removed on exit).")
@click.option("--accept-new-keys", is_flag=True,
              help="Trust any ADB key a host offers, as if \"Allow USB debugging\" were tapped.")
@click.option("--authorize-key", "authorized_keys", multiple=True, type=click.Path(dir_okay=False, exists=True),
              help="Trust this adbkey.pub from the start (repeatable).")
@click.option("--fail", "failures", multiple=True, type=click.Choice([m.value for m in FailureMode]),
              help="Misbehave on purpose (repeatable): refuse-key, drop-mid-push, drop-mid-run, no-benchmark, "
                   "benchmark-crash, hot.")
@click.option("--drop-after", type=click.IntRange(min=1), default=64 * 1024, show_default=True,
              help="Bytes of a push after which --fail drop-mid-push cuts the connection.")
@click.option("--benchmark", "benchmark_mode", type=click.Choice(["real", "simulated"]), default="real",
              show_default=True, help="real: benchmark_model runs the model on this machine; simulated: it sleeps "
              "for the latency latprof predicts (--speed-of) and prints the same output.")
@click.option("--speed-of", help="With --benchmark simulated: the device whose predicted speed it has "
              "(default: --profile).")
@click.option("-v", "--verbose", is_flag=True, help="Log connections and refusals.")
@click.pass_context
def serve(ctx: click.Context, port: int, profile: str, root: Path | None, accept_new_keys: bool,
          authorized_keys: tuple[str, ...], failures: tuple[str, ...], drop_after: int, benchmark_mode: str,
          speed_of: str | None, verbose: bool) -> None:
    """Run a fake Android phone that speaks ADB on 127.0.0.1.

    Connect with `adb connect 127.0.0.1:PORT` or `latprof measure MODEL --device 127.0.0.1:PORT`.
    Its benchmark_model runs the model on this machine (or, --benchmark simulated, sleeps for its predicted
    latency). Stop it with Ctrl-C.
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    if speed_of and benchmark_mode != "simulated":
        raise click.UsageError("--speed-of needs --benchmark simulated")
    simulated = None
    if benchmark_mode == "simulated":
        simulated = SimulatedSpeed(speed_of or profile, db=(ctx.obj or {}).get("db"))
    phone = LoopbackDevice(profile, port=port, root=root, accept_new_keys=accept_new_keys,
                           authorized_keys=[Path(k) for k in authorized_keys], failures=failures,
                           drop_after_bytes=drop_after, simulated=simulated)
    try:
        phone.start()
        p = phone.profile
        click.echo(f"latprof loopback device '{p.name}' ({p.model}, {p.device}, Android {p.release}) "
                   f"listening on {phone.address}")
        click.echo(f"file system: {phone.root}")
        if simulated is not None:
            click.echo(f"benchmark_model simulated: {simulated.source}")
        if phone.failures:
            click.echo("failure modes: " + ", ".join(sorted(m.value for m in phone.failures)))
        click.echo(f"connect with: adb connect {phone.address}   (Ctrl-C stops)")
        phone.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        phone.close()

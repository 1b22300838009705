"""``latprof calibrate``."""

from __future__ import annotations

import click


@click.command()
@click.option("--device", "device_name", required=True,
              help="The device the measurements come from (a new name is fine: calibrating creates it).")
@click.option("--from", "source", required=True, help="CSV of model,latency_ms rows, or `published`.")
@click.option("--reference", default="local", show_default=True, help="Device whose per-op costs are the reference.")
@click.pass_context
def calibrate(ctx, device_name, source, reference):
    """Fit DEVICE's predictor from end-to-end measurements on it."""
    from latprof.calibrate import KINDS, calibrate as fit, read_rows
    from latprof.store import Store

    say = lambda msg: click.echo(msg, err=True)  # noqa: E731
    rows = read_rows(source, device_name, notify=say)
    with Store(ctx.obj.get("db")) as store:
        result = fit(device_name, rows, store, reference=reference, notify=say)
    model, report = result.model, result.report
    click.echo(f"calibrated {device_name} from {len(rows)} measured models (reference device: {reference})")
    click.echo(f"  intercept {model.intercept_ms:.2f} ms; shared ratio {model.shared_ratio:.2f}x; "
               f"ridge strength {model.strength:g}")
    click.echo("  ratio by operator kind (device ms per reference ms):")
    for kind in KINDS:
        click.echo(f"    {kind:<12} {model.ratios[kind]:7.2f}x")
    for key, label in (("leave_one_out", "leave-one-out"), ("leave_one_family_out", "leave-one-family-out"),
                       ("flops_leave_one_out", "FLOPs-only, leave-one-out")):
        if key in report:
            e = report[key]
            click.echo(f"  {label:<28} MAPE {e['mape']:6.1%}  within 10% {e['within_10']:6.1%}  "
                       f"within 15% {e['within_15']:6.1%}  worst {e['max_abs_rel']:6.1%}")
    click.echo(f"  `latprof predict ARCH --device {device_name}` now uses this calibration")

"""``latprof calibrate``."""

from __future__ import annotations

import click

from latprof.cli.options import (
    db_option, device_option, echo_json, json_option, open_store, resolution_option, space_option, space_params,
)


def _pct(x: float) -> str:
    return f"{x:6.1%}"


@click.command()
@device_option(None, required=True,
               help="The device the measurements come from (a new name is fine: calibrating creates it).")
@click.option("--from", "source", help="CSV of measurements, or `published` for the latencies shipped with latprof.")
@space_option(None)
@resolution_option
@click.option("--samples", type=click.IntRange(min=1), help="Fit on this many of the rows (the rest are "
              "reported as held out); default: all.")
@click.option("--select", type=click.Choice(["random", "active"]), default="random", show_default=True,
              help="How --samples rows are chosen: seeded at random, or the most informative (D-optimal).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --select random.")
@click.option("--suggest", type=click.IntRange(min=1), help="Only print this many architectures of --space worth "
              "measuring (active selection from --from's rows, or from 5000 sampled ones); fit nothing.")
@click.option("--reference", default="local", show_default=True,
              help="Device whose lookup table (or per-op costs) is the prior.")
@click.option("--runtime", help="Predict for the rows measured with this runtime_version (rows of other versions "
              "are put on its scale by one fitted factor each); default: the version most rows have.")
@json_option
@db_option
@click.pass_context
def calibrate(ctx, device_name, source, space_name, resolution, samples, select, seed, suggest, reference, runtime,
              as_json, db):
    """Fit DEVICE's predictor from end-to-end latencies measured on it. Two modes:

    \b
    whole models (no --space): rows `model,latency_ms` of .tflite files, named
      architectures or Keras families; each is measured once on the reference
      device, and DEVICE's latency is fitted per operator kind.
      latprof calibrate --device pixel1 --from published
    architectures of a space (--space S): rows `arch,latency_ms` of architectures
      of S; DEVICE's latency is fitted per layer from the reference device's
      lookup table of S (or an analytic cost). --samples/--select/--suggest
      choose which rows to fit on or to measure.
      latprof calibrate --space nasbench201 --device pixel2 --from published --samples 10
    """
    say = lambda msg: click.echo(msg, err=True)  # noqa: E731
    if space_name is None and (suggest is not None or samples is not None or resolution is not None):
        raise click.UsageError("--suggest, --samples and --resolution choose architectures of a space; "
                               "pass --space S with them")
    if space_name is not None:
        from latprof.space import get_space

        if runtime is not None:
            raise click.UsageError("--runtime applies to whole-model rows; rows of --space come from one runtime")
        if source is None and suggest is None:
            raise click.UsageError("--from is required: a CSV of arch,latency_ms rows or `published`")
        space = get_space(space_name, **space_params(resolution))
        with open_store(ctx, db) as store:
            if suggest is not None:
                _suggest(space, store, source, device_name, suggest, reference, say, as_json)
            else:
                _calibrate_space(space, store, source, device_name, samples, select, seed, reference, say, as_json)
        return
    if source is None:
        raise click.UsageError("--from is required: a CSV of model,latency_ms rows or `published`")
    with open_store(ctx, db) as store:
        _calibrate_models(store, device_name, source, reference, runtime, say, as_json)


def _suggest(space, store, source, device, count, reference, say, as_json) -> None:
    from latprof.calibrate import read_space_rows, suggest_archs

    if source is not None:
        archs = [space.parse(r.arch) for r in read_space_rows(source, device, space, notify=say)]
    else:
        archs = list({space.format(a): a for a in (space.sample(i) for i in range(5000))}.values())
    chosen, prior = suggest_archs(space, archs, count, store, reference)
    say(f"{len(chosen)} of {len(archs)} {space.name} architectures, chosen by D-optimal design (prior {prior}); "
        "measure them and pass the CSV (arch,latency_ms) to `latprof calibrate --space`")
    strings = [space.format(archs[i]) for i in chosen]
    if as_json:
        echo_json({"device": device, "space": space.name, "prior": prior, "candidates": len(archs),
                   "architectures": strings})
        return
    for string in strings:
        click.echo(string)


def _calibrate_space(space, store, source, device, samples, select, seed, reference, say, as_json) -> None:
    from latprof.calibrate import calibrate_space, read_space_rows

    rows = read_space_rows(source, device, space, notify=say)
    result = calibrate_space(device, space, rows, store, samples=samples, select=select, seed=seed,
                             reference=reference, notify=say)
    model, report = result.model, result.report
    if as_json:
        echo_json({"device": device, "space": space.name, "prior": result.prior, "model": model.to_json(),
                   "report": report})
        return
    click.echo(f"calibrated {device} for space {space.name} from {report['fitted_on']} of {report['rows']} measured "
               f"architectures ({report['select']} selection; prior: {result.prior})")
    click.echo(f"  intercept {model.intercept_ms:.3f} ms; shared ratio {model.scale:.3f} device ms per prior ms")
    if model.group_ratios:
        click.echo("  ratio by layer kind (shared ratio + correction):")
        for group, a in sorted(model.group_ratios.items()):
            click.echo(f"    {group:<16} {model.scale + a:7.3f}")
    if report["outliers"]:
        click.echo(f"  dropped {len(report['outliers'])} wild row(s) the model misses by over 5 robust sigmas: "
                   + ", ".join(report["outliers"][:3]) + (" ..." if len(report["outliers"]) > 3 else ""))
    loo = report["leave_one_out"]
    click.echo(f"  leave-one-out: MAPE {_pct(loo['mape'])}  within 10% {_pct(loo['within_10'])}")
    if "held_out" in report:
        h = report["held_out"]
        click.echo(f"  held out ({h['n']} rows not fitted on): MAPE {_pct(h['mape'])}  within 10% "
                   f"{_pct(h['within_10'])}  Spearman {h['spearman_rho']:.3f}  Kendall {h['kendall_tau']:.3f}")
    click.echo(f"  `latprof predict ARCH --space {space.name} --device {device}` now uses this calibration")


def _calibrate_models(store, device, source, reference, runtime, say, as_json) -> None:
    from latprof.calibrate import KINDS, calibrate as fit, read_rows

    rows = read_rows(source, device, notify=say)
    result = fit(device, rows, store, reference=reference, runtime=runtime, notify=say)
    model, report = result.model, result.report
    if as_json:
        echo_json({"device": device, "reference": reference, "rows": len(rows), "model": model.to_json(),
                   "report": report})
        return
    click.echo(f"calibrated {device} from {len(rows)} measured models (reference device: {reference})")
    click.echo(f"  intercept {model.intercept_ms:.2f} ms; shared ratio {model.shared_ratio:.2f}x, shared "
               f"{model.shared_per_gmac:.2f} ms/GMAC; ridge strengths {model.strength:g} / {model.gmac_strength:g}")
    click.echo("  by operator kind: device ms per reference ms, and device ms per GMAC:")
    for kind in KINDS:
        click.echo(f"    {kind:<12} {model.ratios[kind]:7.2f}x  {model.per_gmac.get(kind, 0.0):8.2f} ms/GMAC")
    if model.runtime_factors:
        click.echo(f"  predicts runtime {model.runtime!r}; rows of other runtimes took, per ms of it:")
        for other, factor in model.runtime_factors.items():
            click.echo(f"    {factor:5.3f}x  {other}")
    scaled = report.get("leave_one_family_out_scaled", {}).get("rows")
    for key, label in (("leave_one_out", "leave-one-out (strengths from all rows)"),
                       ("flops_leave_one_out", "FLOPs-only, leave-one-out"),
                       ("leave_one_family_out", "leave-one-family-out"),
                       ("flops_leave_one_family_out", "FLOPs-only, same"),
                       ("leave_one_family_out_scaled", f"  only the {scaled} rows of a fitted runtime"),
                       ("flops_leave_one_family_out_scaled", "  FLOPs-only, same")):
        if key in report:
            e = report[key]
            click.echo(f"  {label:<40} MAPE {_pct(e['mape'])}  within 10% {_pct(e['within_10'])}  "
                       f"within 15% {_pct(e['within_15'])}  worst {_pct(e['max_abs_rel'])}")
    click.echo(f"  `latprof predict ARCH --device {device}` now uses this calibration")

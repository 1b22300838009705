"""``latprof calibrate``."""

from __future__ import annotations

import click

from latprof.benchmarking.record import MODEL_DTYPES
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
@click.option("--prior", default="auto", show_default=True,
              help="What a layer costs before DEVICE's rows correct it: auto (DEVICE's own table, else the devices "
              "latprof knows, else analytic), analytic, devices, or table:OTHER (OTHER's lookup table).")
@click.option("--reference", help="Same as --prior table:REFERENCE.")
@click.option("--runtime", help="Predict for the rows measured with this runtime_version (rows of other versions "
              "are put on its scale by one fitted factor each); default: the version most rows have.")
@click.option("--dtype", type=click.Choice(MODEL_DTYPES), default="float32", show_default=True,
              help="Fit on the rows of models in this data type (a dtype column, a name like 'MobileNetV2 (int8)', "
                   "else a .tflite's own; otherwise float32); a predictor per data type.")
@json_option
@db_option
@click.pass_context
def calibrate(ctx, device_name, source, space_name, resolution, samples, select, seed, suggest, prior, reference,
              runtime, dtype, as_json, db):
    """Fit DEVICE's predictor from end-to-end latencies measured on it. Two modes:

    \b
    whole models (no --space): rows `model,latency_ms` of .tflite files, named
      architectures or Keras families; DEVICE's latency is fitted per operator
      family over the prior (the host's lookup table when built, else analytic).
      latprof calibrate --device pixel1 --from published
    architectures of a space (--space S): rows `arch,latency_ms` of architectures
      of S; DEVICE's latency is fitted per layer over the prior (a table of S,
      the devices latprof knows, or an analytic cost). --samples/--select/--suggest
      choose which rows to fit on or to measure.
      latprof calibrate --space nasbench201 --device pixel2 --from published --samples 10
    """
    say = lambda msg: click.echo(msg, err=True)  # noqa: E731
    prior = f"table:{reference}" if reference else prior
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
                _suggest(space, store, source, device_name, suggest, prior, dtype, say, as_json)
            else:
                _fit(store, device_name, space, source, prior, None, samples, select, seed, dtype, say, as_json)
        return
    if source is None:
        raise click.UsageError("--from is required: a CSV of model,latency_ms rows or `published`")
    with open_store(ctx, db) as store:
        _fit(store, device_name, None, source, prior, runtime, None, "random", 0, dtype, say, as_json)


def _suggest(space, store, source, device, count, prior_spec, dtype, say, as_json) -> None:
    from latprof.predictor import load_prior, read_observations, select_archs

    if source is not None:
        archs = [o.model for o in read_observations(source, device, space, notify=say, dtype=dtype)]
    else:
        archs = list({space.format(a): a for a in (space.sample(i) for i in range(5000))}.values())
    prior = load_prior(prior_spec, store, space, device=device, dtype=dtype, notify=say)
    chosen = select_archs(space, archs, count, prior, how="active")
    say(f"{len(chosen)} of {len(archs)} {space.name} architectures, chosen by D-optimal design (prior {prior.name}); "
        "measure them and pass the CSV (arch,latency_ms) to `latprof calibrate --space`")
    strings = [space.format(archs[i]) for i in chosen]
    if as_json:
        echo_json({"device": device, "space": space.name, "prior": prior.name, "candidates": len(archs),
                   "architectures": strings})
        return
    for string in strings:
        click.echo(string)


def _fit(store, device, space, source, prior, runtime, samples, select, seed, dtype, say, as_json) -> None:
    from latprof.predictor import fit_predictor, read_observations, save_predictor

    rows = read_observations(source, device, space, notify=say, dtype=dtype)
    fitted = fit_predictor(store, device, space, observations=rows, prior=prior, runtime=runtime, samples=samples,
                           select=select, seed=seed, dtype=dtype, notify=say)
    predictor_id = save_predictor(store, fitted)
    report = fitted.report
    if as_json:
        echo_json({"id": predictor_id, "device": device, "space": fitted.document["space"], "dtype": dtype,
                   "prior": report["prior"], "model": report["model"], "report": report})
        return
    kind = "" if dtype == "float32" else f"{dtype} "
    what = (f"for space {space.name} from {report['fitted_on']} of {report['rows']} measured {kind}architectures "
            f"({select} selection; prior: {report['prior']})" if space is not None
            else f"from {report['rows']} measured {kind}models (prior: {report['prior']})")
    click.echo(f"calibrated {device} {what}; stored as predictor #{predictor_id}")
    click.echo("\n".join(_model_lines(report["model"])))
    if report["outliers"]:
        click.echo(f"  dropped {len(report['outliers'])} wild row(s) the model misses by over 5 robust sigmas: "
                   + ", ".join(report["outliers"][:3]) + (" ..." if len(report["outliers"]) > 3 else ""))
    click.echo("\n".join(_error_lines(report)))
    space_flag = f" --space {space.name}" if space is not None else ""
    dtype_flag = f" --dtype {dtype}" if dtype != "float32" and space is not None else ""
    click.echo(f"  `latprof predict ARCH{space_flag}{dtype_flag} --device {device}` now uses this calibration")


def _model_lines(model: dict) -> list[str]:
    from latprof.space import FAMILIES

    lines = [f"  intercept {model['intercept_ms']:.3f} ms; shared ratio {model['ratio']:.3f} device ms per prior ms"]
    if model["aux"]:
        lines.append("  auxiliary columns: " + ", ".join(f"{k} {v:.3f}" for k, v in model["aux"].items()))
    if model["family_ratio"] or model["family_op_ms"]:
        lines.append("  by operator family: ratio (shared + correction), and ms per operator:")
        for family in FAMILIES:
            lines.append(f"    {family:<12} {model['ratio'] + model['family_ratio'].get(family, 0.0):7.3f}  "
                         f"{model['family_op_ms'].get(family, 0.0):+8.4f} ms")
    if model["runtime_factors"]:
        lines.append(f"  predicts runtime {model['runtime']!r}; rows of other runtimes took, per ms of it:")
        lines += [f"    {factor:5.3f}x  {other}" for other, factor in model["runtime_factors"].items()]
    return lines


def _error_lines(report: dict) -> list[str]:
    scaled = report.get("leave_one_family_out_scaled", {}).get("rows")
    base = report.get("baselines_leave_one_out", {})
    rows = [("leave-one-out", report["leave_one_out"]), ("FLOPs-only, leave-one-out", base.get("flops")),
            ("op-kind counts, leave-one-out", base.get("op_counts")),
            ("leave-one-family-out", report.get("leave_one_family_out")),
            ("FLOPs-only, same", report.get("flops_leave_one_family_out")),
            (f"  only the {scaled} rows of a fitted runtime", report.get("leave_one_family_out_scaled")),
            ("  FLOPs-only, same", report.get("flops_leave_one_family_out_scaled"))]
    if "held_out" in report:
        h = report["held_out"]
        rows += [(f"held out ({h['n']} rows not fitted on)", h),
                 ("  FLOPs-only, same", report["baselines_held_out"]["flops"]),
                 ("  op-kind counts, same", report["baselines_held_out"]["op_counts"])]
    return [f"  {label:<40} MAPE {_pct(e['mape'])}  within 10% {_pct(e['within_10'])}  "
            f"Spearman {e['spearman_rho']:.3f}  Kendall {e['kendall_tau']:.3f}" for label, e in rows if e]

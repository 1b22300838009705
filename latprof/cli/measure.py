"""``latprof measure``, ``devices``, ``import-log`` and ``results``."""

from __future__ import annotations

from pathlib import Path

import click

from latprof.benchmarking.record import MODEL_DTYPES, Measurement, inspect_model
from latprof.cli.farm import farm_option, measure_on_farm
from latprof.cli.options import (
    db_option, delegate_option, device_option, echo_json, json_option, open_store, space_option, timeout_option,
)


def _summary(m: Measurement) -> str:
    s = m.stats
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    settings = m.settings
    where = f"core mask {settings.get('core_mask')}" if settings.get("core_mask") else "unpinned"
    lines = [
        f"{m.model_name} on {m.device}: {s.headline_ms:.3f} ms "
        f"({'median' if s.median_ms is not None else 'mean'} of {s.count} runs)",
        f"  median {fmt(s.median_ms)}  mean {fmt(s.mean_ms)}  std {fmt(s.std_ms)} ms",
        f"  p5 {fmt(s.p5_ms)}  p95 {fmt(s.p95_ms)}  min {fmt(s.min_ms)}  max {fmt(s.max_ms)} ms",
        f"  {m.runtime} {m.runtime_version}, {settings.get('threads')} thread(s), {where}, "
        f"warm-up {settings.get('warmup_runs')}, delegate {settings.get('delegate')}",
    ]
    lines += _speed_lines(m)
    if m.op_profile:
        lines.append("  slowest ops (avg ms):")
        for op in sorted(m.op_profile, key=lambda o: -o["avg_ms"])[:10]:
            lines.append(f"    {op['avg_ms']:9.3f}  {op['node_type']:<20} {op['name'][:60]}")
    if m.id is not None:
        lines.append(f"  stored as measurement #{m.id}")
    return "\n".join(lines)


def _speed_lines(m: Measurement) -> list[str]:
    """The figure at the reference speed, the ratio to a reference model, the session: where measured."""
    lines = []
    speed, ratio, settings = m.reference_speed, m.reference_ratio, m.settings
    if speed is not None:
        probes = speed["probe_ms"]
        lines.append(f"  at the reference speed: {speed['median_ms']:.3f} ms (x{speed['factor']:.3f}; probe "
                     f"{min(probes):.3f}-{max(probes):.3f} ms over {settings.get('rounds')} rounds, reference "
                     f"{speed['reference_probe_ms']:.3f} ms: {speed['source']})")
    if ratio is not None:
        lines.append(f"  ratio to {ratio['reference']}: {ratio['median']:.4g} (min-max {ratio['min']:.4g}-"
                     f"{ratio['max']:.4g}, IQR {ratio['q1']:.4g}-{ratio['q3']:.4g}, {len(ratio['rounds'])} rounds)")
    if settings.get("group"):
        lines.append(f"  session {settings['group']}, position {settings['position']} ({settings['role']})")
    return lines


def _show(m: Measurement, as_json: bool) -> None:
    if as_json:
        echo_json(m.to_dict())
    else:
        click.echo(_summary(m))


@click.command()
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@device_option()
@click.option("--runs", type=click.IntRange(min=1), help="Timed runs (default: the device config's).")
@click.option("--warmup", type=click.IntRange(min=0), help="Warm-up runs (default: the device config's).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True)
@delegate_option
@click.option("--op-profile", is_flag=True, help="Also record per-operator times.")
@click.option("--core-mask", help="taskset mask on the phone (default: the config's big cores).")
@click.option("--benchmark-binary", type=click.Path(path_type=Path),
              help="Local benchmark_model to push when the phone lacks one.")
@timeout_option
@click.option("--wait-cool", is_flag=True, help="Wait for a hot device to cool before measuring.")
@click.option("--rounds", type=click.IntRange(min=1), default=5, show_default=True,
              help="Split the timed runs into this many rounds, the speed probe timed between them "
                   "(and the models taking turns).")
@click.option("--reference", metavar="NAME|REF.tflite",
              help="Also time a reference round by round (e.g. mobilenet-v2) and report each model's ratio to it.")
@space_option()
@farm_option
@json_option
@db_option
@click.pass_context
def measure(ctx, models, device_name, runs, warmup, threads, delegate, op_profile, core_mask, benchmark_binary,
            timeout_s, wait_cool, rounds, reference, space_name, farm_address, as_json, db):
    """Measure the latency of .tflite MODELS on the host (default) or a phone.

    The runs are split into rounds with latprof's speed probe timed before, between and
    after them; each result is reported raw and at the device's reference speed (the
    fitted predictor's for --space, else the device's own). Several MODELS (and
    --reference) take turns round by round, so their figures are comparable. With --farm, each
    model goes to a free phone of the --device kind and is reported as it arrives.
    """
    from latprof.devices import open_device
    from latprof.measure import build_request, measure_many
    from latprof.speed import reference_model

    for model in models:
        inspect_model(model)  # fail on a bad file before connecting to anything
    if farm_address:
        if reference:
            raise click.UsageError("--reference takes turns with the models on one device; drop it with --farm")
        request_options = dict(runs=runs, warmup=warmup, threads=threads, op_profile=op_profile, timeout_s=timeout_s,
                               core_mask=core_mask, benchmark_binary=benchmark_binary, delegate=delegate)
        measure_on_farm(ctx, db, models, device_name, farm_address, request_options, as_json, _summary)
        return
    ref_path = reference_model(reference) if reference else None
    with open_store(ctx, db) as store, open_device(device_name) as device:
        request = build_request(device, runs=runs, warmup=warmup, threads=threads, op_profile=op_profile,
                                timeout_s=timeout_s, core_mask=core_mask, benchmark_binary=benchmark_binary,
                                delegate=delegate)
        results = measure_many(models, device, request, reference=ref_path, rounds=rounds, store=store,
                               space=space_name, wait_cool=wait_cool,
                               notify=lambda msg: click.echo(f"Warning: {msg}", err=True))
    if as_json:
        echo_json(results[0].to_dict() if len(results) == 1 else [m.to_dict() for m in results])
        return
    click.echo("\n".join(_summary(m) for m in results))


@click.command()
@json_option
def devices(as_json):
    """List the devices latprof can see: local and ADB devices."""
    from latprof.devices import list_devices

    rows = list_devices()
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['serial']:<22} {row['state']:<14} config={row.get('config') or '-':<8} "
            f"model={row.get('model') or '-'} board={row.get('board') or '-'} "
            f"sdk={row.get('sdk') or '-'} abi={row.get('abi') or '-'}"
        )


@click.command("import-log")
@click.argument("log", type=click.Path(path_type=Path))
@click.option("--device", "device_name", default="unknown", show_default=True, help="Device the log came from.")
@click.option("--model", "model_path", type=click.Path(path_type=Path), help="The .tflite the log measured, to record its hash.")
@click.option("--dtype", type=click.Choice(MODEL_DTYPES),
              help="What the model computed in, when --model is not at hand (a log does not say); kept with the row.")
@json_option
@db_option
@click.pass_context
def import_log_command(ctx, log, device_name, model_path, dtype, as_json, db):
    """Parse a saved benchmark_model output LOG and store it."""
    from latprof.measure import import_log

    model = inspect_model(model_path) if model_path else None
    with open_store(ctx, db) as store:
        result = import_log(log, device=device_name, model=model, store=store, dtype=dtype)
    _show(result, as_json)


@click.command()
@click.option("--device", "device_name", help="Only this device.")
@click.option("--model", "model_name", help="Only models whose file name contains this.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Export to this CSV file.")
@json_option
@db_option
@click.pass_context
def results(ctx, device_name, model_name, csv_path, as_json, db):
    """List (or export) stored measurements."""
    with open_store(ctx, db, writable=False) as store:
        frame = store.measurements_frame(device_name, model_name)
    if csv_path:
        frame.to_csv(csv_path, index=False)
        click.echo(f"wrote {len(frame)} measurements to {csv_path}", err=as_json)
    if as_json:
        echo_json(frame.to_dict(orient="records"))
    elif not csv_path:
        _print_table(frame)


def _print_table(frame) -> None:
    if frame.empty:
        click.echo("no measurements stored yet; run `latprof measure MODEL`")
        return
    columns = ["id", "created_at", "device", "model", "latency_ms", "p5_ms", "p95_ms", "count", "runtime_version",
               "setting_threads", "setting_delegate", "setting_core_mask", "setting_dtype"]
    shown = frame.reindex(columns=columns).rename(columns=lambda c: c.removeprefix("setting_"))
    click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-"))


COMMANDS = [measure, devices, import_log_command, results]

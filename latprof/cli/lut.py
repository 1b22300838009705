"""``latprof build-lut``, ``fit`` and ``predict``."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import click

from latprof.cli.farm import farm_option, open_target
from latprof.cli.options import (
    db_option, delegate_option, depth_multiplier_option, device_option, dtype_option, echo_json, json_option, open_store,
    resolution_option, space_option, space_params,
)
from latprof.lut import TABLE_DTYPES


@click.command("build-lut")
@device_option()
@space_option()
@resolution_option
@depth_multiplier_option
@click.option("--runs", type=click.IntRange(min=1), help="Timed runs per layer (host default 30; phones: the config's).")
@click.option("--warmup", type=click.IntRange(min=0), help="Warm-up runs per layer (host default 5).")
@click.option("--calibration", type=click.IntRange(min=0), default=None,
              help="Architectures measured end to end for `latprof fit` (default 60; at least 20 recommended).")
@click.option("--calibration-runs", type=click.IntRange(min=1), help="Timed runs per calibration architecture "
              "(default: the device config's, as `latprof measure`).")
@click.option("--threads", type=click.IntRange(min=1),
              help="Threads per run (default: the device config's); part of the table's identity.")
@delegate_option
@dtype_option
@click.option("--core-mask", help="taskset mask on the phone (default: the config's big cores).")
@click.option("--benchmark-binary", type=click.Path(path_type=Path), help="Local benchmark_model to push.")
@click.option("--no-wait-cool", is_flag=True, help="Do not wait for a hot phone to cool before each entry.")
@click.option("--no-realtime", is_flag=True, help="Host: do not run the timing process under SCHED_FIFO.")
@click.option("--no-probe", is_flag=True, help="Host: do not time the speed probe around each model "
              "(for a dedicated, quiet machine).")
@click.option("--rebuild", is_flag=True, help="Delete this device's table for the space and measure it anew.")
@click.option("--ops-from", "ops_from", multiple=True, type=click.Path(path_type=Path), metavar="MODEL.tflite",
              help="Also measure the layers and operators of this model (repeatable), so that predicting it "
                   "uses measured costs.")
@click.option("--no-op-probes", is_flag=True, help="Do not measure the built-in operator probes (the operators "
              "a search space lacks, for predicting any .tflite) after the table.")
@farm_option
@json_option
@db_option
@click.pass_context
def build_lut(ctx, device_name, space_name, resolution, depth_multiplier, runs, warmup, calibration,
              calibration_runs, threads, delegate, dtype, core_mask, benchmark_binary, no_wait_cool, no_realtime, no_probe,
              rebuild, ops_from, no_op_probes, farm_address, as_json, db):
    """Measure every unique layer of a search space on a device: its latency lookup table.

    Then the built-in operator probes and the layers and operators of --ops-from models, into the same table.
    Resumes where an interrupted build stopped; entries already stored are not measured again.
    """
    from latprof.devices.local import LocalDevice
    from latprof.lut import DEFAULT_CALIBRATION, LUT_RUNS, LUT_WARMUP, build_lut as run_build, model_units
    from latprof.measure import build_request
    from latprof.space import get_space

    space = get_space(space_name, **space_params(resolution, depth_multiplier))
    model_units(ops_from, dtype)  # a missing or broken --ops-from file fails now, before anything is measured
    with open_store(ctx, db) as store, open_target(device_name, farm_address) as device:
        host = isinstance(device, LocalDevice)
        request = build_request(device, runs=runs or (LUT_RUNS if host else None),
                                warmup=warmup if warmup is not None else (LUT_WARMUP if host else None),
                                core_mask=core_mask, benchmark_binary=benchmark_binary, threads=threads,
                                delegate=delegate)
        calibration_request = build_request(device, runs=calibration_runs, core_mask=core_mask,
                                            benchmark_binary=benchmark_binary, threads=threads, delegate=delegate)
        n_configs = len(space.unique_layer_configs())
        click.echo(f"{device.name}: {space_name} {space.params()} -> {n_configs} {dtype} layer configurations, "
                   f"{request.warmup_runs}+{request.num_runs} runs each; database {store.path}", err=True)
        try:
            summary = run_build(
                store, device, space, request=request, calibration_request=calibration_request,
                calibration=DEFAULT_CALIBRATION if calibration is None else calibration, rebuild=rebuild,
                wait_cool=not no_wait_cool, realtime=not no_realtime, probe=not no_probe, progress=True, dtype=dtype,
                notify=lambda msg: click.echo(f"Warning: {msg}", err=True),
            )
            ops = _measure_ops(store, device, space.name, request, ops_from, not no_op_probes,
                               wait_cool=not no_wait_cool, realtime=not no_realtime, probe=not no_probe, dtype=dtype)
        except KeyboardInterrupt:
            click.echo("\nInterrupted: every entry measured so far is stored; run the same command again to resume.",
                       err=True)
            sys.exit(130)
    if as_json:
        echo_json({**asdict(summary), "operators": {label: asdict(s) for label, s in ops.items()},
                   "database": str(store.path)})
        return
    click.echo(f"table: {summary.entries} entries ({summary.already_stored} already stored, {summary.measured} "
               f"measured now); calibration: {summary.calibration} architectures "
               f"({summary.calibration_already_stored} already stored, {summary.calibration_measured} measured now); "
               f"wall time {summary.wall_s:.1f} s (table {summary.table_wall_s:.1f} s)")
    for label, s in ops.items():
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(s.measured_kinds.items())) or "none"
        click.echo(f"{label}: {s.models} model(s), {s.layers} layers and {s.operators} operators "
                   f"({s.already_stored} already stored; measured now {s.measured_layers} layers and "
                   f"{s.measured_operators} operators: {kinds}); wall time {s.wall_s:.1f} s")
    click.echo(f"next: latprof fit --device {device_name}" + ("" if dtype == "float32" else f" --dtype {dtype}"))


def _measure_ops(store, device, space_name: str, request, ops_from: tuple[Path, ...], probes: bool, *, dtype: str,
                 **options) -> dict:
    """``{label: OpsSummary}`` for the --ops-from models, then the built-in operator probes."""
    from latprof.lut import measure_ops, op_probe_models

    groups = {"--ops-from": list(ops_from)} if ops_from else {}
    if probes:
        groups["operator probes"] = op_probe_models(dtype=dtype, notify=lambda msg: click.echo(msg, err=True))
    return {label: measure_ops(store, device, space_name, models, request, progress=True, dtype=dtype,
                               notify=lambda msg: click.echo(f"Warning: {msg}", err=True), **options)
            for label, models in groups.items()}


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except OSError:  # e.g. an architecture string longer than a file name may be
        return False


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


@click.command()
@device_option()
@space_option()
@dtype_option
@json_option
@db_option
@click.pass_context
def fit(ctx, device_name, space_name, dtype, as_json, db):
    """Fit a device's predictor from its lookup table and calibration set; report leave-one-out error."""
    from latprof.predictor import fit_predictor, save_predictor

    with open_store(ctx, db) as store:
        fitted = fit_predictor(store, device_name, space_name, dtype=dtype)
        predictor_id = save_predictor(store, fitted)
    report = fitted.report
    if as_json:
        echo_json({"id": predictor_id, "dtype": dtype, **report})
        return
    lines = [f"{device_name} ({space_name}, {dtype}): {report['table_entries']} table entries, "
             f"{report['fitted_on']} calibration architectures; stored as predictor #{predictor_id}"]
    width = report["regression_leave_width_out"]
    lines.append(f"  layer regression, unseen widths: MAPE {_pct(width['with_neighbours']['mape']):>6}  within 10% "
                 f"{_pct(width['with_neighbours']['within_10']):>6}  (regression alone: MAPE "
                 f"{_pct(width['regression_only']['mape'])})")
    lines.append(f"  end to end, leave-one-out on the calibration set ({report['fitted_on']} architectures):")
    base = report.get("baselines_leave_one_out", {})
    for label, r in (("latprof", report["leave_one_out"]), ("FLOPs-linear", base.get("flops")),
                     ("op-kind counts", base.get("op_counts"))):
        if r:
            lines.append(f"    {label:<16} within 5% {_pct(r['within_5']):>6}  within 10% {_pct(r['within_10']):>6}  "
                         f"MAPE {_pct(r['mape']):>6}  RMSE {r['rmse_ms']:.3f} ms  Kendall tau {r['kendall_tau']:.3f}")
    m = report["model"]
    lines.append(f"  model: intercept {m['intercept_ms']:.3f} ms, per layer {m['per_layer_ms']:+.4f} ms, shared ratio "
                 f"{m['ratio']:.3f}, penalties (aux, family, key) {m['lambdas']}")
    speed = fitted.document["speed"]
    if speed and speed["probe_ref_ms"] is not None:
        lines.append(f"  speed probe: reference {speed['probe_ref_ms']:.4f} ms, exponent {speed['probe_beta']:.2f}")
    click.echo("\n".join(lines))


@click.command()
@click.argument("models", nargs=-1)
@click.option("--from", "from_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A file of architectures (or .tflite paths), one a line; predicted together with MODELS.")
@device_option()
@space_option()
@click.option("--dtype", type=click.Choice(TABLE_DTYPES), default=None,
              help="Data type of the architectures' models (default float32); a .tflite file is priced by the "
                   "predictor of its own data type.")
@click.option("--at-current-speed", is_flag=True,
              help="Time the speed probe on the device now and scale the predictions to its current speed.")
@json_option
@db_option
@click.pass_context
def predict(ctx, models, from_file, device_name, space_name, dtype, at_current_speed, as_json, db):
    """Predict the latency of architectures (names, strings, JSON) or .tflite files on a device.

    A .tflite file is priced by the device's predictor of the file's data type (int8 models by the int8 one).
    """
    from latprof.benchmarking.record import inspect_model
    from latprof.errors import ArchitectureError
    from latprof.space import get_space
    from latprof.userfiles import read_text

    texts = list(models)
    if from_file is not None:
        texts += [line.strip() for line in read_text(from_file).splitlines()
                  if line.strip() and not line.lstrip().startswith("#")]
    if not texts:
        raise click.UsageError("name at least one architecture or .tflite file, or pass --from FILE")
    files = {text: inspect_model(Path(text)) for text in texts if text.endswith(".tflite") or _is_file(text)}
    with open_store(ctx, db, writable=False) as store:
        predictors = _Predictors(store, device_name, space_name)
        results = []
        for text in texts:
            if text in files:
                predictor = predictors.get(files[text].dtype or "float32")
                results.append((text, predictor, predictor.predict(Path(text))))
                continue
            predictor = predictors.get(dtype or "float32")
            space = get_space(space_name, **predictor.space_params)
            try:
                arch = space.parse(text)
            except ArchitectureError as exc:
                raise ArchitectureError(f"{exc} (or pass a .tflite file)") from None
            results.append((getattr(arch, "name", None) or space.format(arch), predictor, predictor.predict(arch)))
    nows = {id(pr): _current_speed(device_name, pr.document, pr.speed) for pr in predictors.loaded.values()} \
        if at_current_speed else {}
    if as_json:
        out = [{"model": name, **p.to_dict(), **_speed_json(p, pr.speed, nows.get(id(pr))), "dtype": pr.dtype,
                "measured_with": pr.measured_with, "prior": pr.prior}
               for name, pr, p in results]
        echo_json(out if len(out) > 1 else out[0])
        return
    for name, predictor, p in results:
        _print_prediction(name, predictor, p, nows.get(id(predictor)))


class _Predictors:
    """The device's predictors, loaded once per data type."""

    def __init__(self, store, device: str, space: str) -> None:
        self.store, self.device, self.space, self.loaded = store, device, space, {}

    def get(self, dtype: str):
        from latprof.predictor import load_predictor

        if dtype not in self.loaded:
            self.loaded[dtype] = load_predictor(self.device, self.space, store=self.store, dtype=dtype)
        return self.loaded[dtype]


def _print_prediction(name: str, predictor, p, now: float | None) -> None:
    speed, measured_with = predictor.speed, predictor.measured_with
    sources = Counter(r.source for r in p.layers)
    if set(sources) <= {"table", "regression"}:
        counts = (f"{sources['table']} layers from the table, {sources['regression']} from the regression "
                  f"({_pct(p.regression_share)} of the latency)")
    else:  # a calibrated device: layers from its fit over a prior
        counts = ", ".join(f"{n} layers {source}" for source, n in sorted(sources.items())) + \
            f" (prior: {predictor.prior})"
    click.echo(f"{name}\n  {p.latency_ms:.3f} ms on {p.device}, {predictor.dtype} (band {p.low_ms:.3f}.."
               f"{p.high_ms:.3f} ms); {counts}")
    if predictor.runtime:
        click.echo(f"  for runtime {predictor.runtime!r} (`latprof calibrate --runtime` picks another)")
    click.echo(_speed_line(p, speed, now) if predictor.prior == "table" or speed is not None
               else "  at the speed of the end-to-end measurements it was calibrated on")
    if measured_with:
        click.echo(f"  for {measured_with['threads']} thread(s), delegate {measured_with['delegate']} "
                   "(the settings its table was measured with)")
    click.echo(f"  {'layer':<12}{'ms':>9}  {'source':<11}key")
    click.echo(f"  {'overhead':<12}{p.overhead_ms:>9.3f}  {'correction':<11}per-invoke intercept")
    for r in p.layers:
        click.echo(f"  {r.name:<12}{r.ms:>9.3f}  {r.source:<11}{r.layer_key}")


def _current_speed(device_name: str, document: dict, speed) -> float:
    """The probe time on the device now, under the settings the predictor's probe times were taken with."""
    from latprof.devices import open_device
    from latprof.errors import PredictorError
    from latprof.measure import build_request
    from latprof.speed import probe_model, time_probe
    from latprof.benchmarking.record import inspect_model

    if speed is None:
        raise PredictorError(f"the predictor of {device_name} was fitted without the speed probe, so its speed is "
                             "unknown; rebuild its table with the probe (`latprof build-lut` without --no-probe)")
    identity = (document.get("speed") or {}).get("probe_identity") or {}
    with open_device(device_name) as device:
        request = build_request(device, threads=identity.get("threads"), core_mask=identity.get("core_mask"),
                                delegate=identity.get("delegate"))
        probe_ms, now_identity = time_probe(device, request, inspect_model(probe_model()))
    if identity and now_identity != identity:
        changed = ", ".join(f"{k} {identity.get(k)!r} -> {v!r}" for k, v in now_identity.items() if identity.get(k) != v)
        raise PredictorError(f"the predictor's probe times were taken under other settings ({changed}); "
                             f"refit with `latprof build-lut --device {device_name}` and `latprof fit`")
    return probe_ms


def _speed_json(p, speed, now: float | None) -> dict:
    if speed is None:
        return {"reference_speed": None}
    out = {"reference_speed": speed.to_dict()}
    if now is not None:
        scale = 1 / speed.factor([now])
        out["current_speed"] = {"probe_ms": now, "factor": scale, "latency_ms": p.latency_ms * scale,
                                "low_ms": p.low_ms * scale, "high_ms": p.high_ms * scale}
    return out


def _speed_line(p, speed, now: float | None) -> str:
    if speed is None:
        return "  at the speed its table was measured at (built without the speed probe)"
    line = f"  at the reference speed: probe {speed.probe_ms:.4f} ms ({speed.source})"
    if now is not None:
        scale = 1 / speed.factor([now])
        line += (f"\n  at the current speed (probe {now:.4f} ms now, x{scale:.3f}): {p.latency_ms * scale:.3f} ms "
                 f"(band {p.low_ms * scale:.3f}..{p.high_ms * scale:.3f} ms)")
    return line


COMMANDS = [build_lut, fit, predict]

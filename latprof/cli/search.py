"""``latprof search``: MnasNet reward search against a device's latency predictor (or the device itself)."""

from __future__ import annotations

import functools
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click
from click.core import ParameterSource

from latprof.cli.farm import farm_option, open_target
from latprof.cli.options import (
    db_option, device_option, dtype_option, echo_json, json_option, open_store, resolution_option, space_option,
)
from latprof.search import CONTROLLER_NAMES, LATENCY_SOURCES, REWARD_CHOICES, TARGET_BAND, SearchConfig

if TYPE_CHECKING:
    from latprof.devices import Device
    from latprof.search import (
        AccuracyEstimator,
        LatencyModel,
        Progress,
        SearchResult,
        Trial,
    )
    from latprof.space import SearchSpace
    from latprof.store import Store

_DEFAULTS = SearchConfig.defaults()


def _short(arch_string: str, space: SearchSpace) -> str:
    """A compact block-by-block form, e.g. ``ds3x1 ir6k3x2 ir3k5se x3 ...``, for the MnasNet space; else the string."""
    if space.name != "mnasnet":
        return arch_string
    parts = []
    for b in space.parse(arch_string).blocks:
        op = f"ir{b.expansion}" if b.op == "ir" else b.op
        se = "se" if b.se_ratio else ""
        skip = {"pool": "P", "none": "-", "id": ""}[b.skip]
        parts.append(f"{op}k{b.kernel}{se}{skip}/{b.out_filters}x{b.repeats}")
    return " ".join(parts)


def _table(trials: list[Trial], accuracy_label: str, space: SearchSpace) -> list[str]:
    legend = ("blocks (op kernel [se] [P=pool skip, -=no skip] / filters x layers)" if space.name == "mnasnet"
              else "architecture")
    lines = [(f"  {'#':>3} {'trial':>6} {'reward':>10} {'latency ms':>11} {accuracy_label:>10} {'params':>7} "
              f"{'MACs':>8}  {legend}")]
    for rank, t in enumerate(trials, 1):
        params, macs = space.count_params_macs(space.parse(t.arch))
        lines.append(f"  {rank:>3} {t.idx:>6} {t.reward:>10.4f} {t.latency_ms:>11.2f} {t.accuracy:>10.4f} "
                     f"{params / 1e6:>6.2f}M {macs / 1e6:>7.1f}M  {_short(t.arch, space)}")
    return lines


def _source_note(ctx: click.Context, name: str) -> str:
    return "  (default)" if ctx.get_parameter_source(name) == ParameterSource.DEFAULT else ""


@click.command()
@click.option("--target-ms", type=float, required=True, help="Target latency T in milliseconds.")
@device_option(_DEFAULTS["device"],
               help="Device whose predictor (or, with --latency measure, which device) gives latencies.")
@space_option(_DEFAULTS["space"])
@resolution_option
@dtype_option
@click.option("--samples", type=int, default=_DEFAULTS["samples"], show_default=True,
              help="Architectures to sample in total (with --resume, including those already stored).")
@click.option("--seed", type=int, default=_DEFAULTS["seed"], show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder [default: latprof-search-DEVICE-Tms].")
@click.option("--reward", type=click.Choice(REWARD_CHOICES), default=_DEFAULTS["reward"], show_default=True,
              help="The paper's two constraints: soft (alpha = beta = -0.07) or hard (alpha = 0, beta = -1); "
                   "auto: hard with a built-in accuracy proxy (which would walk a soft search past the target), "
                   "soft with your own accuracy (python:...).")
@click.option("--alpha", type=float, help="Exponent when LAT <= T (overrides --reward's).")
@click.option("--beta", type=float, help="Exponent when LAT > T (overrides --reward's).")
@click.option("--controller", type=click.Choice(CONTROLLER_NAMES), default=_DEFAULTS["controller"],
              show_default=True)
@click.option("--accuracy", default=_DEFAULTS["accuracy"], show_default=True,
              help="zero-cost (NASWOT), proxy-train, or python:MODULE:FUNCTION (your f(arch) -> float).")
@click.option("--data", type=click.Path(path_type=Path),
              help="proxy-train only: a folder of images per class [default: built-in shapes10].")
@click.option("--latency", type=click.Choice(LATENCY_SOURCES), default=_DEFAULTS["latency"], show_default=True,
              help="predictor: the device's lookup-table predictor; measure: benchmark every sample on the device.")
@farm_option
@click.option("--workers", type=int, default=1, show_default=True,
              help="Processes evaluating accuracy in parallel (with --farm: Ray tasks on the farm's nodes).")
@click.option("--batch-size", type=int, default=_DEFAULTS["batch_size"], show_default=True,
              help="Samples per controller update (fixed, so results do not depend on --workers).")
@click.option("--resume", is_flag=True, help="Continue the search stored for --out.")
@click.option("--verify", is_flag=True, help="Measure the best architecture on the device next to its prediction.")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="Rows of the top table.")
@json_option
@db_option
@click.pass_context
def search(ctx, target_ms, device_name, space_name, resolution, dtype, samples, seed, out_dir, reward, alpha, beta,
           controller, accuracy, data, latency, farm_address, workers, batch_size, resume, verify, top, as_json, db):
    """Search a space (default MnasNet) for the best reward ACC x (LAT/T)^w on a device (Tan et al., CVPR 2019).

    The answer (best_arch.txt, best.tflite, --verify) is the highest reward within the target latency.
    """
    from latprof.search import make_estimator, run_search, write_outputs
    from latprof.space import quiet_native_stderr

    say = functools.partial(click.echo, err=as_json)  # with --json, stdout carries the JSON document only
    config = SearchConfig(target_ms=target_ms, reward=reward, alpha=alpha, beta=beta, controller=controller,
                          accuracy=accuracy, latency=latency, device=device_name, samples=samples, seed=seed,
                          batch_size=batch_size, data=str(data) if data is not None else None, space=space_name,
                          space_params={"resolution": resolution} if resolution else {}, dtype=dtype)
    out = out_dir or Path(f"latprof-search-{device_name}-{target_ms:g}ms")
    estimator = make_estimator(config.accuracy, data=config.data, seed=config.seed)
    with open_store(ctx, db) as store:
        predictor = _predictor(config, store) if latency == "predictor" else None
        if predictor is not None and not config.space_params and getattr(predictor, "space_params", None):
            config = replace(config, space_params=dict(predictor.space_params))
        device = open_target(device_name, farm_address) if (latency == "measure" or verify) else None
        try:
            say(_header(ctx, config, estimator, predictor, out, workers, store, resume, verify))
            latency_model = predictor if predictor is not None else _measured(device, store, out, config)
            progress = _Progress(config.samples)
            try:
                result = run_search(config, latency_model, store=store, out_dir=out, resume=resume, workers=workers,
                                    estimator=estimator,
                                    latency_chunk=1 if latency == "measure" and not farm_address else None,
                                    make_pool=_ray_pool if farm_address else None,
                                    on_trial=progress)
            except KeyboardInterrupt:
                progress.finish()
                click.echo("\nInterrupted: every finished trial is stored; run the same command with --resume to "
                           "continue.", err=True)
                sys.exit(130)
            progress.finish()
            if not as_json:
                click.echo(_report(result, top))
            with quiet_native_stderr():  # TensorFlow's start-up chatter while exporting best.tflite
                paths = write_outputs(result, out)
            checked = None
            if verify and result.chosen is not None and device is not None:
                checked = _verify(result.chosen, result, device, store, out, predictor)
                paths["verify"] = checked["path"]
                say(checked["line"])
        finally:
            if device is not None:
                device.close()
    if as_json:
        echo_json(_document(result, top, paths, checked))
        return
    click.echo("files: " + ", ".join(str(p) for p in paths.values()))


def _trial_json(t: Trial | None) -> dict | None:
    if t is None:
        return None
    return {"trial": t.idx, "arch": t.arch, "reward": t.reward, "latency_ms": t.latency_ms, "accuracy": t.accuracy}


def _document(result: SearchResult, top: int, paths: dict[str, Path], checked: dict | None) -> dict:
    config = result.config
    return {
        "config": config.to_dict(), "reward": config.make_reward().describe(), "reward_mode": config.reward_mode,
        "accuracy_is_proxy": result.estimator_is_proxy, "samples": len(result.trials),
        "resumed": result.resumed_trials, "failed": sum(not t.ok for t in result.trials),
        "answer": _trial_json(result.chosen), "best_reward": _trial_json(result.best),
        "top": [_trial_json(t) for t in result.top(top)], "pareto": [_trial_json(t) for t in result.pareto()],
        "verify": checked["row"] if checked else None, "timings_s": result.timings,
        "files": {name: str(path) for name, path in paths.items()},
    }


def _predictor(config: SearchConfig, store: Store) -> LatencyModel:
    from latprof.devices import list_configs
    from latprof.errors import LatprofError, UnknownDeviceError
    from latprof.predictor import load_predictor

    try:
        return load_predictor(config.device, config.space, store=store, dtype=config.dtype)
    except LatprofError:
        configs = list_configs()
        if config.device not in configs:
            raise UnknownDeviceError(
                f"unknown device '{config.device}': no config of that name (known: {', '.join(sorted(configs))}) "
                "and no lookup table for it; pass --device NAME, and run `latprof build-lut --device NAME` "
                "first") from None
        raise


def _ray_pool(workers: int, initializer: Callable[..., None], initargs: tuple) -> Any:
    """With --farm, accuracy estimates (--workers > 1) run as Ray tasks of one CPU each on the farm's nodes."""
    from latprof.farm import RayTaskPool

    return RayTaskPool(workers, initializer, initargs)


def _measured(device: Device, store: Store, out: Path, config: SearchConfig) -> LatencyModel:
    """Latencies measured on ``device``; with --farm, each batch's candidates on the farm's phones at once."""
    from latprof.farm import FarmDevice, FarmLatency
    from latprof.measure import build_request
    from latprof.search import MeasuredLatency

    if isinstance(device, FarmDevice):
        return FarmLatency(device.farm, device.name, build_request(device), space=config.make_space(), store=store,
                           dtype=config.dtype)
    return MeasuredLatency(device, build_request(device), store=store, workdir=out, space=config.make_space(),
                           dtype=config.dtype)


def _header(ctx: click.Context, config: SearchConfig, estimator: AccuracyEstimator, predictor: LatencyModel | None,
            out: Path, workers: int, store: Store, resume: bool, verify: bool) -> str:
    n = _source_note
    reward = config.make_reward()
    auto = f"auto -> {config.reward_mode}, " if config.reward == "auto" else ""
    kind = "lookup-table" if getattr(predictor, "prior", "") == "table" else "calibrated"
    prior = f"prior {predictor.prior}, " if predictor is not None and hasattr(predictor, "prior") else ""
    latency = (f"predictor: {config.device}'s {kind} predictor ({prior}latprof.predictor)" if predictor is not None
               else f"measure: every sample exported to .tflite and benchmarked on {config.device}")
    space = config.make_space()
    controller = config.make_controller(space)
    params = ", ".join(f"{k} {v}" for k, v in space.params().items())
    lines = [
        f"latprof search: MnasNet reward search (Tan et al., CVPR 2019) in the {space.name} space ({params})",
        f"  --target-ms   {config.target_ms:g} ms",
        f"  --device      {config.device}{n(ctx, 'device_name')}   --dtype {config.dtype}{n(ctx, 'dtype')}",
        f"  --reward      {auto}{reward.describe()}{n(ctx, 'reward') if reward.mode != 'custom' else ''}",
        f"  --controller  {controller.describe()}{n(ctx, 'controller')}",
        f"  --accuracy    {estimator.describe()}{n(ctx, 'accuracy')}",
        f"  --latency     {latency}{n(ctx, 'latency')}",
        (f"  --samples     {config.samples}{n(ctx, 'samples')}   --batch-size {config.batch_size}"
         f"{n(ctx, 'batch_size')}   --seed {config.seed}{n(ctx, 'seed')}   --workers {workers}{n(ctx, 'workers')}"),
        (f"  --out         {out}{n(ctx, 'out_dir')}   --resume {'yes' if resume else 'no'}   "
         f"--verify {'yes' if verify else 'no'}"),
        f"  database      {store.path}",
    ]
    if estimator.is_proxy:
        lines.append("  note: the accuracy column is a built-in proxy for ranking candidates, not ImageNet accuracy")
    return "\n".join(lines)


class _Progress:
    """A live line on a terminal; on a pipe, a line every 5% of the samples."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.tty = sys.stderr.isatty()
        self.every = max(1, total // 20)
        self.last = ""
        self.t0 = time.perf_counter()

    def __call__(self, trial: Trial, p: Progress) -> None:
        best = (f"best reward {p.best.reward:.4f} ({p.best.latency_ms:.2f} ms, accuracy proxy {p.best.accuracy:.4f})"
                if p.best is not None else "no successful sample yet")
        self.last = (f"{p.done}/{p.total} samples, {p.samples_per_s:.1f}/s, {p.failed} failed, {best}")
        if self.tty:
            click.echo("\r" + self.last + "\033[K", err=True, nl=False)
        elif p.done % self.every == 0 or p.done == p.total:
            click.echo(self.last, err=True)

    def finish(self) -> None:
        if self.tty and self.last:
            click.echo("", err=True)


def _report(result: SearchResult, top: int) -> str:
    label = "accuracy*" if result.estimator_is_proxy else "accuracy"
    t = result.timings
    new = len(result.trials) - result.resumed_trials
    failed = [x for x in result.trials if not x.ok]
    lines = [(f"{len(result.trials)} samples ({result.resumed_trials} resumed from earlier runs, {len(failed)} "
              f"failed, {len({x.arch for x in result.ok_trials})} distinct architectures) in {t['total']:.1f} s")]
    if new:
        def per(key: str) -> float:
            return 1000 * t[key] / new

        lines.append(f"  per new sample: controller {per('controller'):.2f} ms, latency {per('latency'):.2f} ms, "
                     f"accuracy {per('accuracy') + per('accuracy_submit') + per('accuracy_wait'):.2f} ms, reward "
                     f"{per('reward'):.4f} ms, storage {per('storage'):.2f} ms; {new / t['total']:.1f} samples/s")
    if failed:
        lines.append(f"  first failure: trial {failed[0].idx}: {failed[0].error}")
    lines.append(f"\nTop {top} architectures by reward (target {result.config.target_ms:g} ms):")
    space = result.config.make_space()
    lines += _table(result.top(top), label, space)
    front = result.pareto()
    lines.append(f"\nPareto front, {label} vs latency ({len(front)} architectures; '<' marks those within the "
                 f"{result.config.target_ms:g} ms target):")
    within = [t.latency_ms <= result.config.target_ms for t in front]
    lines += [line if i == 0 else ("<" if within[i - 1] else " ") + line[1:]
              for i, line in enumerate(_table(front, label, space))]
    if result.estimator_is_proxy:
        lines.append(f"\n* {label[:-1]} is a proxy estimate ({result.estimator.split(':')[0]}), not ImageNet accuracy")
    lines += _answer_lines(result)
    return "\n".join(lines)


def _answer_lines(result: SearchResult) -> list[str]:
    chosen, best, target = result.chosen, result.best, result.config.target_ms
    if chosen is None:
        return ["\nno successful sample: nothing to answer"]
    if chosen.latency_ms > target:
        where = f"no sample was within the {target:g} ms target"
    elif result.estimator_is_proxy and chosen.latency_ms >= (1 - TARGET_BAND) * target:
        where = f"highest reward {TARGET_BAND:.0%} or less below the {target:g} ms target (the accuracy is a proxy)"
    else:
        where = f"highest reward within the {target:g} ms target"
    lines = [f"\nanswer (trial {chosen.idx}, {chosen.latency_ms:.2f} ms; {where}): {chosen.arch}"]
    if best is not chosen:
        lines.append(f"  the highest reward overall is trial {best.idx}, at {best.latency_ms:.2f} ms")
    return lines


def _verify(best: Trial, result: SearchResult, device: Device, store: Store, out: Path,
            predictor: LatencyModel | None) -> dict:
    from latprof.search import verify, write_verify

    space = result.config.make_space()
    row = verify([best], _measured(device, store, out, result.config), result.config.target_ms, predictor, space)[0]
    band = (f" (predicted band {row['band_low_ms']:.2f}-{row['band_high_ms']:.2f} ms)"
            if row["band_low_ms"] is not None else "")
    line = (f"verify on {device.name}: measured {row['measured_ms']:.2f} ms, predicted {row['predicted_ms']:.2f} ms"
            f"{band}: prediction error {row['error_pct']:+.1f}%, measured vs target "
            f"{row['measured_vs_target_pct']:+.1f}%")
    return {"row": row, "line": line, "path": write_verify(Path(out) / "verify.csv", [row])}

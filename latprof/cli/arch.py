"""``latprof arch show|sample|export`` and ``latprof space show``.

Library errors (LatprofError) propagate to the main group, which prints them.
Only ``arch export`` imports TensorFlow.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from latprof.cli.options import (
    depth_multiplier_option, echo_json, json_option, resolution_option, space_option, space_params,
)
from latprof.space import IO_DTYPES, QUANTIZATIONS, Architecture, arch_to_json, get_space


def _get_space(name: str, depth_multiplier: float | None, resolution: int | None):
    return get_space(name, **space_params(resolution, depth_multiplier))


def _m(n: int) -> str:
    return f"{n / 1e6:.2f}M"


def _space_options(func):
    return space_option()(depth_multiplier_option(resolution_option(func)))


@click.group()
def arch() -> None:
    """Architectures: show, sample and export (NAME like mnasnet-a1[@0.75,192], or an architecture string)."""


@arch.command("show")
@click.argument("architecture", metavar="NAME|STRING")
@json_option
@_space_options
def show(architecture: str, as_json: bool, space_name: str, depth_multiplier: float, resolution: int) -> None:
    """Layers, parameters, multiply-adds, string and JSON forms of an architecture."""
    sp = _get_space(space_name, depth_multiplier, resolution)
    a = sp.parse(architecture)
    params, macs = sp.count_params_macs(a)
    generic = a if isinstance(a, Architecture) else None
    rows = []
    for pos, layer in sp.named_layers(a):
        rows.append({
            "position": pos, "layer": layer.describe(), "key": layer.layer_key(),
            "tflite_ops": list(layer.tflite_ops()), "params": layer.params(), "macs": layer.macs(),
        })
    string = sp.format(a)
    if as_json:
        echo_json({
            "name": getattr(a, "name", None), "space": sp.name, "string": string,
            "architecture": json.loads(arch_to_json(generic)) if generic is not None else None,
            "params": params, "macs": macs, "layers": rows,
        })
        return
    if generic is not None:
        click.echo(f"{a.name or 'architecture'}: {_m(params)} parameters, {macs / 1e6:.1f}M multiply-adds at "
                   f"{a.resolution}x{a.resolution}, {len(rows)} layers ({a.num_layers} in {len(a.blocks)} blocks)")
    else:
        click.echo(f"{sp.name} architecture: {_m(params)} parameters, {macs / 1e6:.1f}M multiply-adds, "
                   f"{len(rows)} layers")
    width = max(len(r["layer"]) for r in rows)
    click.echo(f"  {'pos':<11} {'layer':<{width}} {'params':>9} {'MACs':>11}  tflite ops")
    for r in rows:
        click.echo(f"  {r['position']:<11} {r['layer']:<{width}} {r['params']:>9,} {r['macs']:>11,}  "
                   f"{' '.join(r['tflite_ops'])}")
    click.echo(f"string: {string}")
    if generic is not None:
        click.echo(f"json:   {arch_to_json(generic)}")


@arch.command("sample")
@click.option("--n", "-n", "n", type=click.IntRange(min=0), default=10, show_default=True, help="How many.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same list).")
@json_option
@_space_options
def sample(n: int, seed: int, as_json: bool, space_name: str, depth_multiplier: float, resolution: int) -> None:
    """Uniformly random architectures of the space, one string a line."""
    import random

    space = _get_space(space_name, depth_multiplier, resolution)
    rng = random.Random(seed)
    strings = [space.format(space.sample(rng)) for _ in range(n)]
    if as_json:
        echo_json({"space": space.name, "params": space.params(), "seed": seed, "architectures": strings})
        return
    for string in strings:
        click.echo(string)


def _load_representative(path: Path | None, count: int | None):
    """What ``--representative`` / ``--representative-data`` ask for: a sample count or a loaded array."""
    if path is None:
        return 100 if count is None else count
    if count is not None:
        raise click.UsageError("give --representative N or --representative-data FILE.npy, not both")
    import numpy as np

    try:
        data = np.load(path, allow_pickle=False)
    except OSError as exc:
        reason = exc.strerror or "not a .npy file"
    except ValueError:  # numpy's word for a file that is no .npy (it would need unpickling)
        reason = "not a .npy file of numbers"
    else:
        if isinstance(data, np.ndarray):
            return data
        data.close()
        reason = "a .npz archive, not one array"
    raise click.BadParameter(f"cannot read {path} ({reason}); save an (N, H, W, C) array with numpy.save",
                             param_hint="--representative-data")


def _quantization_text(quantize: str | None, io_dtype: str) -> str:
    if quantize == "int8":
        return f"full-integer int8 quantization, {io_dtype} I/O"
    return {None: "not quantized", "float16": "float16 weights", "dynamic": "dynamic-range quantization"}[quantize]


@arch.command("export")
@click.argument("architecture", metavar="NAME|STRING")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The .tflite file to write.")
@click.option("--quantize", type=click.Choice(QUANTIZATIONS),
              help="Post-training quantization: int8 (weights and activations, calibrated), float16 (weights), "
                   "dynamic (int8 weights, float activations). Default: none (float32).")
@click.option("--representative", "representative_count", type=click.IntRange(min=1),
              help="int8: calibrate on N random inputs, uniform in [-1, 1] (default 100).")
@click.option("--representative-data", "representative_path", type=click.Path(dir_okay=False, path_type=Path),
              help="int8: calibrate on the samples of this .npy array, shape (N, H, W, C) of the model input.")
@click.option("--io", "io_dtype", type=click.Choice(IO_DTYPES),
              help="int8: the input/output tensors' type (default float32: QUANTIZE/DEQUANTIZE at the edges).")
@json_option
@_space_options
def export(architecture: str, output: Path, quantize: str | None, representative_count: int | None,
           representative_path: Path | None, io_dtype: str | None, as_json: bool, space_name: str,
           depth_multiplier: float, resolution: int) -> None:
    """Build an architecture as a Keras model and convert it to .tflite (float32, or quantized)."""
    from latprof.benchmarking import inspect_model
    from latprof.space import export_tflite, quiet_native_stderr, read_tflite_ops

    if quantize != "int8":
        given = [name for name, value in (("--io", io_dtype), ("--representative", representative_count),
                                          ("--representative-data", representative_path)) if value is not None]
        if given:
            raise click.UsageError(f"{given[0]} applies to --quantize int8 only")
    io_dtype = io_dtype or "float32"
    representative = _load_representative(representative_path, representative_count)
    sp = _get_space(space_name, depth_multiplier, resolution)
    a = sp.parse(architecture)
    params, macs = sp.count_params_macs(a)
    start = time.perf_counter()
    with quiet_native_stderr():
        path = export_tflite(a, output, sp, quantize=quantize, representative=representative, io_dtype=io_dtype)
    seconds = time.perf_counter() - start
    ops = read_tflite_ops(path)
    size = path.stat().st_size
    dtype = inspect_model(path).dtype
    if as_json:
        echo_json({"path": str(path), "bytes": size, "ops": len(ops), "params": params, "macs": macs,
                   "seconds": seconds, "dtype": dtype, "quantize": quantize, "io_dtype": io_dtype})
        return
    click.echo(f"wrote {path} ({dtype} model, {_quantization_text(quantize, io_dtype)}; {size / 1e6:.1f} MB, "
               f"{len(ops)} ops, {_m(params)} parameters, {macs / 1e6:.1f}M multiply-adds) in {seconds:.1f} s")
    click.echo(f"measure it with: latprof measure {path}")


@click.group()
def space() -> None:
    """Search spaces."""


@space.command("show")
@_space_options
@click.option("--layers", "list_layers", is_flag=True, help="Also list every unique layer configuration key.")
@json_option
def space_show(space_name: str, depth_multiplier: float, resolution: int, list_layers: bool, as_json: bool) -> None:
    """The space: its decisions, its size and its unique layer configurations."""
    sp = _get_space(space_name, depth_multiplier, resolution)
    d = sp.describe()
    uniques = sp.unique_layer_configs()
    if as_json:
        if list_layers:
            d["layer_keys"] = [layer.layer_key() for layer in uniques]
        echo_json(d)
        return
    params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in d["params"].items())
    click.echo(f"search space {d['space']} ({params})")
    fixed = d.get("fixed")
    if fixed:
        click.echo("  fixed: " + ", ".join(f"{k}={v}" for k, v in fixed.items()))
    blocks = d.get("blocks")
    if blocks:
        click.echo(f"  {'block':<6}{'stride':>6}{'res':>6}  {'filters':<16}{'layers':<10}")
        for b in blocks:
            click.echo(f"  {b['block']:<6}{b['stride']:>6}{b['input_resolution']:>6}  "
                       f"{','.join(map(str, b['filters'])):<16}{','.join(map(str, b['layers'])):<10}")
        per_block = {}
        for dec in d["decisions"]:
            per_block.setdefault(dec["name"].split(".", 1)[1], dec["choices"])
        click.echo("  per block: " + "; ".join(
            f"{k} {{{', '.join(str(c) for c in v)}}}" for k, v in per_block.items() if k not in ("filters", "layers")
        ))
    else:
        for dec in d["decisions"]:
            click.echo(f"  {dec['name']}: {', '.join(str(c) for c in dec['choices'])}")
    click.echo(f"  decisions: {len(d['decisions'])}, token sequences: {d['num_combinations']:,} "
               f"({d['num_combinations']:.2e})")
    click.echo(f"  size (distinct architectures): {d['size']:,} ({d['size']:.2e})")
    click.echo(f"  unique layer configurations: {len(uniques):,}")
    if list_layers:
        for layer in uniques:
            click.echo(f"    {layer.layer_key()}")


__all__ = ["arch", "space"]

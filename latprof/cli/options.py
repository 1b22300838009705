"""The options and output helpers every command shares, so each command spells them the same way.

* ``--db`` is taken before the subcommand (``latprof --db x.db measure …``) and after it
  (``latprof measure … --db x.db``); the later one wins, then ``$LATPROF_DB``, then the default.
* ``--json`` prints one JSON document on stdout and nothing else (messages go to stderr).
* ``--space``, ``--resolution`` and ``--depth-multiplier`` are checked by click, so a typo is a
  usage error (exit 2) before anything runs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

import click

from latprof.devices import DEFAULT_DELEGATE, DELEGATES
from latprof.lut import TABLE_DTYPES
from latprof.space import space_names

__all__ = [
    "db_option", "json_option", "space_option", "resolution_option", "depth_multiplier_option",
    "device_option", "timeout_option", "delegate_option", "dtype_option", "space_params", "open_store", "echo_json", "to_jsonable",
]

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

DB_HELP = "Results database (default: $LATPROF_DB, else ~/.local/share/latprof/latprof.db)."

db_option: Decorator = click.option("--db", type=click.Path(dir_okay=False), help=DB_HELP)
json_option: Decorator = click.option("--json", "as_json", is_flag=True,
                                      help="Print one JSON document on stdout and nothing else.")
resolution_option: Decorator = click.option(
    "--resolution", type=click.IntRange(min=1), help="Input resolution of the space in pixels (default: the space's).")
depth_multiplier_option: Decorator = click.option(
    "--depth-multiplier", type=click.FloatRange(min=0, min_open=True),
    help="Depth multiplier of the space (default: the space's, 1.0).")
delegate_option: Decorator = click.option(
    "--delegate", type=click.Choice(DELEGATES), default=DEFAULT_DELEGATE, show_default=True,
    help="Delegate benchmark_model runs the model on (--use_xnnpack, --use_gpu, --use_nnapi; none: builtin "
         "kernels only). The host runs xnnpack or none; gpu and nnapi need a phone.")
dtype_option: Decorator = click.option(
    "--dtype", type=click.Choice(TABLE_DTYPES), default="float32", show_default=True,
    help="Data type the models compute in (int8: full-integer quantized); float32 and int8 tables, "
         "predictors and searches are kept apart.")
timeout_option: Decorator = click.option(
    "--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True),
    help="Seconds one benchmark run may take before it is stopped (default: the device config's).")


def space_option(default: str | None = "mnasnet") -> Decorator:
    """``--space``: one of the registered search spaces."""
    return click.option("--space", "space_name", type=click.Choice(space_names()), default=default,
                        show_default=default is not None,
                        help="Search space (`latprof space show --space S` describes it).")


def device_option(default: str | None = "local", help: str = "Config name, ADB serial, or HOST:PORT.",
                  required: bool = False) -> Decorator:
    """``--device``: what ``open_device`` understands."""
    return click.option("--device", "device_name", default=default, show_default=default is not None,
                        required=required, help=help)


def space_params(resolution: int | None = None, depth_multiplier: float | None = None) -> dict[str, Any]:
    """The space parameters the user gave (those left out keep the space's defaults)."""
    params = {"resolution": resolution, "depth_multiplier": depth_multiplier}
    return {k: v for k, v in params.items() if v is not None}


def open_store(ctx: click.Context, db: str | None = None, writable: bool = True):
    """The results store named by the subcommand's ``--db``, else the group's (``--db`` or ``$LATPROF_DB``).

    Checked writable at once (before any job runs) unless the command only reads (``writable=False``); a
    command that only reads refuses a ``--db`` given on the command line that does not exist (a typo would
    otherwise read, and leave behind, an empty database).
    """
    from latprof.store import Store

    obj = ctx.obj or {}
    path = db or obj.get("db")
    if not writable and (db or obj.get("db_given")) and not Path(path).exists():
        raise click.BadParameter(f"no results database at {path}; check the path (commands that measure or "
                                 "build create it)", param_hint="--db")
    return Store(path, writable=writable)


def to_jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays as Python numbers and lists, and NaN/inf as null."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # NumPy scalar or array
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def echo_json(document: Any) -> None:
    """Print ``document`` as one JSON document on stdout."""
    click.echo(json.dumps(to_jsonable(document), indent=2, default=str))

"""The ``latprof`` command line. The only place that knows about click.

Library errors (:class:`latprof.errors.LatprofError`) are shown as a one-line
``Error: …`` on stderr with a non-zero exit code.
"""

from __future__ import annotations

import click

from latprof import __version__
from latprof.errors import LatprofError


class _LatprofGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LatprofError as exc:
            error = click.ClickException(str(exc))
            error.exit_code = exc.exit_code
            raise error from None


@click.group(cls=_LatprofGroup)
@click.version_option(__version__, prog_name="latprof")
@click.option("--db", type=click.Path(dir_okay=False), envvar="LATPROF_DB",
              help="Results database (default: $LATPROF_DB or ~/.local/share/latprof/latprof.db).")
@click.pass_context
def main(ctx: click.Context, db: str | None) -> None:
    """latprof: measure, store, predict and search on-device latency of neural networks."""
    ctx.obj = {"db": db, "db_given": ctx.get_parameter_source("db") == click.core.ParameterSource.COMMANDLINE}


def _register() -> None:
    from latprof.cli import lut as _lut
    from latprof.cli import measure as _measure
    from latprof.cli.arch import arch, space
    from latprof.cli.calibrate import calibrate
    from latprof.cli.device import device
    from latprof.cli.farm import farm
    from latprof.cli.search import search

    for command in [*_measure.COMMANDS, arch, space, device, *_lut.COMMANDS, calibrate, search, farm]:
        main.add_command(command)


_register()

"""``python -m latprof``: the latprof command line."""

from latprof.cli import main

main(prog_name="latprof")

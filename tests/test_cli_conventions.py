"""One CLI convention: --db before or after the subcommand, --json on every reporting command, checked options.

Usage mistakes are click's usage errors (exit 2); library errors exit 1 with one ``Error:`` line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from latprof.cli import main
from latprof.space import get_space
from latprof.store import Store

LOG = Path(__file__).parent / "fixtures" / "benchmark_model" / "02_yolov5s_mi11_fp32_cpu_4threads.txt"

STORE_COMMANDS = [["measure"], ["import-log"], ["results"], ["build-lut"], ["fit"], ["predict"], ["calibrate"],
                  ["search"]]
REPORTING_COMMANDS = STORE_COMMANDS + [["devices"], ["arch", "show"], ["arch", "sample"], ["arch", "export"],
                                       ["space", "show"]]
SPACE_COMMANDS = {
    "build-lut": ["build-lut"], "fit": ["fit"], "predict": ["predict", "mnasnet-a1"],
    "search": ["search", "--target-ms", "5"], "calibrate": ["calibrate", "--device", "x", "--from", "published"],
    "arch sample": ["arch", "sample"], "space show": ["space", "show"],
}
RESOLUTION_COMMANDS = {
    "build-lut": ["build-lut"], "search": ["search", "--target-ms", "5"],
    "calibrate": ["calibrate", "--device", "x", "--from", "published", "--space", "mnasnet"],
    "arch sample": ["arch", "sample"], "arch show": ["arch", "show", "mnasnet-a1"],
}


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env)


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=" ".join)
def test_every_command_that_uses_the_store_takes_db_after_the_subcommand(command):
    assert "--db" in run(*command, "--help").output


@pytest.mark.parametrize("command", REPORTING_COMMANDS, ids=" ".join)
def test_every_reporting_command_takes_json(command):
    assert "--json" in run(*command, "--help").output


@pytest.mark.parametrize("name", SPACE_COMMANDS)
def test_an_unknown_space_is_a_usage_error(name, tmp_path):
    result = run("--db", str(tmp_path / "x.db"), *SPACE_COMMANDS[name], "--space", "mnasnett")
    assert result.exit_code == 2 and "Invalid value for '--space'" in result.output, result.output
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("resolution", ["0", "-32"])
@pytest.mark.parametrize("name", RESOLUTION_COMMANDS)
def test_a_non_positive_resolution_is_a_usage_error(name, resolution, tmp_path):
    result = run("--db", str(tmp_path / "x.db"), *RESOLUTION_COMMANDS[name], "--resolution", resolution)
    assert result.exit_code == 2 and "Invalid value for '--resolution'" in result.output, result.output


def test_db_after_the_subcommand_wins_over_the_group_and_the_environment(tmp_path):
    env_db, group_db, sub_db = (str(tmp_path / f"{n}.db") for n in ("env", "group", "sub"))
    env = {"LATPROF_DB": env_db}
    assert run("import-log", str(LOG), "--device", "a", env=env).exit_code == 0
    assert run("--db", group_db, "import-log", str(LOG), "--device", "b", env=env).exit_code == 0
    assert run("--db", group_db, "import-log", str(LOG), "--device", "c", "--db", sub_db, env=env).exit_code == 0

    def devices_in(db: str) -> list[str]:
        result = run("results", "--db", db, "--json")
        assert result.exit_code == 0, result.output
        return [row["device"] for row in json.loads(result.stdout)]

    assert (devices_in(env_db), devices_in(group_db), devices_in(sub_db)) == (["a"], ["b"], ["c"])


def test_json_output_is_one_document_and_nothing_else(tmp_path):
    db = str(tmp_path / "x.db")
    sample = run("arch", "sample", "-n", "3", "--seed", "4", "--json")
    document = json.loads(sample.stdout)
    space = get_space("mnasnet")
    assert len(document["architectures"]) == 3 and document["seed"] == 4
    assert [space.format(space.parse(s)) for s in document["architectures"]] == document["architectures"]
    assert json.loads(run("import-log", str(LOG), "--db", db, "--json").stdout)["stats"]["count"] == 50
    exported = run("results", "--db", db, "--csv", str(tmp_path / "r.csv"), "--json")
    assert len(json.loads(exported.stdout)) == 1 and (tmp_path / "r.csv").exists()


def test_library_errors_exit_1_with_one_error_line(tmp_path):
    Store(tmp_path / "empty.db").close()
    result = run("predict", "mnasnet-a1", "--db", str(tmp_path / "empty.db"))
    assert result.exit_code == 1
    assert len([line for line in result.output.splitlines() if line.startswith("Error:")]) == 1


def test_calibrate_refuses_space_options_without_a_space(tmp_path):
    result = run("calibrate", "--device", "x", "--from", "published", "--samples", "5", "--db", str(tmp_path / "x.db"))
    assert result.exit_code == 2 and "pass --space S" in result.output


@pytest.mark.parametrize("args", [["results", "--db", "{db}"], ["--db", "{db}", "results"],
                                  ["predict", "mnasnet-a1", "--db", "{db}"]])
def test_a_read_only_command_refuses_a_db_that_does_not_exist(tmp_path, args):
    db = tmp_path / "typo.db"
    result = CliRunner().invoke(main, [a.format(db=db) for a in args])
    assert result.exit_code == 2, result.output
    assert f"no results database at {db}" in result.output
    assert not db.exists()  # nothing left behind

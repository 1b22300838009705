"""Bad input never costs a result: one ``Error:`` line, a non-zero exit, nothing stored, nothing lost.

Covers an unwritable results database (checked before any job runs), ``--from`` files that are not
UTF-8, calibration rows whose latency is not a positive number, and a non-positive resolution given
to the library.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from latprof.cli import main
from latprof.errors import LatprofError
from latprof.search import SearchConfig
from latprof.space import get_space, model_spec

LOG = Path(__file__).parent / "fixtures" / "benchmark_model" / "02_yolov5s_mi11_fp32_cpu_4threads.txt"
TABLES = ("measurements", "predictors", "searches", "search_trials", "lut_entries", "lut_calibration")
NB201_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def one_error_line(result, *needles: str) -> None:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


def counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def writing_commands(model: Path, tmp_path: Path) -> dict[str, list[str]]:
    return {
        "measure": ["measure", str(model), "--runs", "2", "--warmup", "0"],
        "import-log": ["import-log", str(LOG)],
        "build-lut": ["build-lut", "--space", "nasbench201", "--device", "local", "--calibration", "0"],
        "fit": ["fit", "--device", "local", "--space", "nasbench201"],
        "calibrate": ["calibrate", "--space", "nasbench201", "--device", "pixel3", "--from", "published",
                      "--samples", "10"],
        "search": ["search", "--target-ms", "10", "--space", "nasbench201", "--device", "pixel2", "--samples", "4",
                   "--batch-size", "4", "--controller", "random", "--out", str(tmp_path / "search")],
    }


# ---------------------------------------------------------------- an unwritable --db

_READ_ONLY_SCRIPT = """
import json, sys
from click.testing import CliRunner
from latprof.cli import main
db, commands = sys.argv[1], json.loads(sys.argv[2])
report = {name: CliRunner().invoke(main, ["--db", db, *args]) for name, args in commands.items()}
print(json.dumps({name: [r.exit_code, r.output] for name, r in report.items()}))
"""


def _read_only_prefix(db: Path) -> list[str]:
    """How to run a command that sees ``db`` read-only, in a way that binds root too.

    Root ignores permission bits, so as root ``chmod`` proves nothing: the database file is
    bind-mounted read-only in a private mount namespace (``unshare -rm``), where the kernel refuses
    every write with EROFS whoever asks, which is what SQLite meets on a file the user may not write.
    Without root a plain ``chmod 444`` is the real thing.
    """
    if os.geteuid() != 0:
        db.chmod(0o444)
        return []
    probe = ["unshare", "-rm", "true"]
    if shutil.which("unshare") is None or subprocess.run(probe, capture_output=True).returncode != 0:
        pytest.skip("root without user namespaces (unshare -rm): no way to make a file read-only for root")
    return ["unshare", "-rm", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(db)]


def test_a_read_only_database_stops_every_writing_command_before_it_runs_and_still_serves_reads(
        tiny_tflite, tmp_path):
    db = tmp_path / "results.db"
    assert run("--db", str(db), "import-log", str(LOG)).exit_code == 0
    calibrated = run("--db", str(db), "calibrate", "--space", "nasbench201", "--device", "pixel2", "--from",
                     "published", "--samples", "10")
    assert calibrated.exit_code == 0, calibrated.output
    before = counts(db)
    commands = writing_commands(tiny_tflite, tmp_path)
    commands["results"] = ["results", "--json"]
    commands["predict"] = ["predict", NB201_ARCH, "--space", "nasbench201", "--device", "pixel2", "--json"]
    prefix = _read_only_prefix(db)
    done = subprocess.run([*prefix, sys.executable, "-c", _READ_ONLY_SCRIPT, str(db), json.dumps(commands)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for name in writing_commands(tiny_tflite, tmp_path):
        code, output = report[name]
        lines = output.strip().splitlines()
        assert code == 1 and len(lines) == 1, (name, output)
        assert lines[0].startswith(f"Error: cannot write results database {db}") and "--db" in lines[0], lines[0]
    assert report["results"][0] == 0 and len(json.loads(report["results"][1])) == 1, report["results"]
    assert report["predict"][0] == 0 and json.loads(report["predict"][1])["latency_ms"] > 0, report["predict"]
    db.chmod(0o644)
    assert counts(db) == before  # nothing stored, nothing lost
    assert not (tmp_path / "search").exists()
    assert tiny_tflite.stat().st_size > 0


@pytest.mark.parametrize("name", ["measure", "import-log", "build-lut", "fit", "calibrate", "search"])
def test_a_database_path_through_a_file_is_one_line(name, tiny_tflite, tmp_path):
    """A path no one can create a database at, root included (a folder given as --db is click's usage error)."""
    (tmp_path / "file").write_text("not a folder")
    db = tmp_path / "file" / "results.db"
    result = run("--db", str(db), *writing_commands(tiny_tflite, tmp_path)[name])
    one_error_line(result, f"cannot create results database {db} (part of its folder is a file)", "--db")
    assert (tmp_path / "file").read_text() == "not a folder" and not (tmp_path / "search").exists()


# ---------------------------------------------------------------- --from files that are not UTF-8

def test_predict_from_a_file_that_is_not_utf8_names_the_file_and_line(tmp_path):
    listing = tmp_path / "archs.txt"
    listing.write_bytes(b"mnasnet-a1\nmnasnet-\xe9-b1\n")  # Latin-1, not UTF-8
    one_error_line(run("predict", "--from", str(listing)), str(listing), "line 2 is not UTF-8", "save the file as UTF-8")


@pytest.mark.parametrize("space", [None, "nasbench201"])
def test_calibrate_from_a_file_that_is_not_utf8_stores_nothing(space, tmp_path):
    rows = tmp_path / "rows.csv"
    header = b"arch,latency_ms\n" if space else b"model,latency_ms\n"
    rows.write_bytes(header + b"MobileNetV2,12.5\n\xff\xfe,3\n")
    db = tmp_path / "x.db"
    result = run("--db", str(db), "calibrate", "--device", "p", "--from", str(rows), *(["--space", space] if space else []))
    one_error_line(result, str(rows), "line 3 is not UTF-8")
    assert not db.exists() or counts(db)["predictors"] == 0


# ---------------------------------------------------------------- latencies that are not positive numbers

BAD_LATENCIES = ["nan", "0", "-50", "inf", "-inf", "", "fast"]


@pytest.mark.parametrize("latency", BAD_LATENCIES)
def test_calibrate_rejects_a_latency_that_is_not_positive_with_its_line(latency, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text(f"model,depth_multiplier,resolution,latency_ms\nMobileNetV2,1.0,224,70\n"
                    f"MobileNetV2,0.5,160,{latency}\nMobileNetV2,0.5,128,10\n")
    db = tmp_path / "x.db"
    result = run("--db", str(db), "calibrate", "--device", "p", "--from", str(rows))
    one_error_line(result, f"{rows} line 3: latency {latency!r}", "positive number of milliseconds")
    assert not db.exists() or counts(db)["predictors"] == 0


@pytest.mark.parametrize("latency", BAD_LATENCIES)
def test_space_calibrate_rejects_a_latency_that_is_not_positive_with_its_line(latency, tmp_path):
    space = get_space("nasbench201")
    archs = [space.format(space.sample(i)) for i in range(6)]
    values = ["3.5", "4", "5", "6", latency, "7"]
    rows = tmp_path / "rows.csv"
    rows.write_text("arch,latency_ms\n" + "".join(f"{a},{v}\n" for a, v in zip(archs, values)))
    db = tmp_path / "x.db"
    result = run("--db", str(db), "calibrate", "--space", "nasbench201", "--device", "p", "--from", str(rows))
    one_error_line(result, f"{rows} line 6: latency {latency!r}", "correct or delete the row")
    assert counts(db)["predictors"] == 0


# ---------------------------------------------------------------- a non-positive resolution, in the library

@pytest.mark.parametrize("resolution", [0, -32])
def test_the_library_rejects_a_non_positive_resolution(resolution):
    for name in ("mnasnet", "fbnet", "nasbench201"):
        with pytest.raises(LatprofError):
            get_space(name, resolution=resolution)
        with pytest.raises(LatprofError):
            SearchConfig(target_ms=5.0, space=name, space_params={"resolution": resolution}).make_space()
    for model in ("MobileNetV2", "mnasnet-a1"):
        with pytest.raises(LatprofError, match="resolution"):
            model_spec(model, 1.0, resolution)
    with pytest.raises(LatprofError, match="depth multiplier"):
        model_spec("MobileNetV2", 0.0, 224)

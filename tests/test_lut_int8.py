"""int8 as a table of its own (issue #18): build-lut/fit/predict/search/calibrate --dtype on the host.

The real host path on the MnasNet space at resolution 32, depth multiplier 0.35, one timed run per entry,
the float32 and the int8 table in one database.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from latprof.benchmarking.record import inspect_model
from latprof.cli.calibrate import calibrate
from latprof.cli.lut import COMMANDS
from latprof.cli.search import search
from latprof.devices import open_device
from latprof.errors import LookupTableError, ParseError, PredictorError
from latprof.lut import load_entries, load_table, measure_ops, model_units, table_space
from latprof.measure import build_request
from latprof.predictor import load_predictor, read_observations
from latprof.space import MnasNetSpace, write_tflite
from latprof.store import Store

SPACE = MnasNetSpace(0.35, 32)
ARGS = ["--resolution", "32", "--depth-multiplier", "0.35", "--runs", "1", "--warmup", "0", "--calibration", "4",
        "--calibration-runs", "3", "--no-probe", "--no-realtime", "--no-op-probes"]


def _cli(db: Path, *args: str):
    group = click.Group(commands={c.name: c for c in [*COMMANDS, search, calibrate]})
    return CliRunner().invoke(group, list(args), obj={"db": str(db)}, catch_exceptions=False)


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    """Both tables of the tiny space, each fitted."""
    path = tmp_path_factory.mktemp("int8") / "lut.db"
    for dtype in ("int8", "float32"):
        result = _cli(path, "build-lut", *ARGS, "--dtype", dtype)
        assert result.exit_code == 0, result.output
        result = _cli(path, "fit", "--dtype", dtype)
        assert result.exit_code == 0, result.output
    return path


def test_float32_and_int8_tables_live_side_by_side(db):
    with Store(db, writable=False) as store:
        conn = store.connection
        tables = {dtype: load_entries(conn, "local", table_space("mnasnet", dtype)) for dtype in ("float32", "int8")}
    keys = {layer.layer_key() for layer in SPACE.unique_layer_configs()}
    for dtype, entries in tables.items():
        assert {e.layer_key for e in entries} == keys
        assert {e.settings["dtype"] for e in entries} == {dtype}
    assert "int8 weights and activations" in tables["int8"][0].settings["method"]
    assert "float32 weights" in tables["float32"][0].settings["method"]
    float_ms = {e.layer_key: e.median_ms for e in tables["float32"]}
    int8_ms = {e.layer_key: e.median_ms for e in tables["int8"]}
    assert float_ms != int8_ms  # measured twice, not copied


def test_predict_picks_the_predictor_by_the_files_dtype(db, tmp_path):
    arch = SPACE.sample(7)
    int8_file = write_tflite(arch, tmp_path / "a_int8.tflite", space=SPACE, dtype="int8")
    float_file = write_tflite(arch, tmp_path / "a.tflite", space=SPACE)
    assert inspect_model(int8_file).dtype == "int8"
    result = _cli(db, "predict", str(int8_file), str(float_file), str(arch), "--dtype", "int8", "--json")
    assert result.exit_code == 0, result.output
    by_file, by_file_float, by_string = json.loads(result.output)
    assert (by_file["dtype"], by_file_float["dtype"], by_string["dtype"]) == ("int8", "float32", "int8")
    assert by_file["measured_with"]["dtype"] == "int8"
    with Store(db, writable=False) as store:
        int8 = load_predictor("local", "mnasnet", store=store, dtype="int8")
        float32 = load_predictor("local", "mnasnet", store=store)
    assert by_file["latency_ms"] == pytest.approx(int8.predict(int8_file).latency_ms)
    assert by_string["latency_ms"] == pytest.approx(int8.predict(arch).latency_ms)
    assert by_file_float["latency_ms"] == pytest.approx(float32.predict(float_file).latency_ms)
    with pytest.raises(PredictorError, match=r"computes in float32, but this predictor of local prices int8"):
        int8.predict(float_file)


def test_a_model_of_another_dtype_is_refused_before_measuring(db, tmp_path):
    float_file = write_tflite(SPACE.sample(3), tmp_path / "f.tflite", space=SPACE)
    with pytest.raises(LookupTableError, match=r"computes in float32, not int8.*--dtype float32"):
        model_units([float_file], "int8")
    int8_file = write_tflite(SPACE.sample(3), tmp_path / "q.tflite", space=SPACE, dtype="int8")
    kinds = {key.split("_")[0] for key in model_units([int8_file], "int8") if key.startswith("op:")}
    assert kinds == {"op:QUANTIZE", "op:DEQUANTIZE"}  # an int8 model's edges are int8 costs
    with Store(db) as store, open_device("local") as device:
        before = load_table(store.connection, "local", "mnasnet")
        with pytest.raises(LookupTableError, match="computes in int8"):
            measure_ops(store, device, "mnasnet", [int8_file], build_request(device, runs=1, warmup=0), probe=False,
                        realtime=False)
        assert load_table(store.connection, "local", "mnasnet") == before


def test_fit_for_a_dtype_without_its_table_names_the_command(tmp_path):
    result = CliRunner().invoke(click.Group(commands={c.name: c for c in COMMANDS}), ["fit", "--dtype", "int8"],
                                obj={"db": str(tmp_path / "empty.db")})
    assert isinstance(result.exception, LookupTableError)
    assert "no int8 lookup table for device local" in str(result.exception)
    assert "`latprof build-lut --device local --dtype int8`" in str(result.exception)


def test_search_in_int8_uses_the_int8_predictor_and_exports_int8(db, tmp_path):
    out = tmp_path / "search"
    result = _cli(db, "search", "--target-ms", "1", "--dtype", "int8", "--samples", "8", "--batch-size", "4",
                  "--controller", "random", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "--dtype int8" in result.output
    with Store(db, writable=False) as store:
        int8 = load_predictor("local", "mnasnet", store=store, dtype="int8")
    best = (out / "best_arch.txt").read_text().strip()
    answer = [line for line in result.output.splitlines() if line.startswith("answer")][0]
    assert f"{int8.predict(best).latency_ms:.2f} ms" in answer
    assert inspect_model(out / "best.tflite").dtype == "int8"


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("arch,latency_ms,dtype\n" + "\n".join(rows) + "\n")
    return path


def test_observations_carry_their_dtype_and_a_fit_reads_one(tmp_path):
    archs = [SPACE.format(SPACE.sample(i)) for i in range(12)]
    rows = [f"{a},{1 + i / 10},int8" for i, a in enumerate(archs[:8])] + [f"{a},{2 + i},fp32"
                                                                          for i, a in enumerate(archs[8:])]
    source = _csv(tmp_path / "rows.csv", rows)
    heard: list[str] = []
    int8 = read_observations(source, "phone", SPACE, notify=heard.append, dtype="int8")
    assert [o.dtype for o in int8] == ["int8"] * 8 and "left out 4 measured in float32" in heard[0]
    assert [o.latency_ms for o in read_observations(source, "phone", SPACE)] == [2, 3, 4, 5]
    with pytest.raises(ParseError, match=r"no float16 rows.*it has float32, int8"):
        read_observations(source, "phone", SPACE, dtype="float16")
    db = tmp_path / "cal.db"
    group = click.Group(commands={"calibrate": calibrate, **{c.name: c for c in COMMANDS}})
    result = CliRunner().invoke(group, ["calibrate", "--device", "phone", "--space", "mnasnet", "--resolution", "32",
                                        "--from", str(source), "--dtype", "int8", "--prior", "analytic"],
                                obj={"db": str(db)}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "from 8 of 8 measured int8 architectures" in result.output
    with Store(db, writable=False) as store:
        assert load_predictor("phone", "mnasnet", store=store, dtype="int8").dtype == "int8"
        with pytest.raises(LookupTableError, match="no lookup table for device phone"):
            load_predictor("phone", "mnasnet", store=store)  # the int8 fit is not a float32 predictor


def test_int8_operator_probes_are_converted_and_keep_only_their_int8_operators(tmp_path):
    from latprof.lut import op_probe_models

    (path,) = op_probe_models(tmp_path, stages=((14, 32),), dtype="int8")
    int8_units, all_units = model_units([path], "int8"), model_units([path])
    assert {"op:QUANTIZE", "op:DEQUANTIZE"} <= {key.split("_")[0] for key in int8_units}
    assert set(int8_units) < set(all_units)  # the float islands are left out of the int8 table


def test_whole_model_rows_named_int8_are_priced_from_int8_exports(tmp_path):
    rows = ["model,depth_multiplier,resolution,latency_ms,device"] + [f"{name} (int8),{m},64,{ms},phone" for name, m, ms in (
        ("mnasnet-a1", 0.35, 1.0), ("mnasnet-a1", 0.5, 1.4), ("mnasnet-a1", 0.75, 2.1), ("mobilenet-v2", 0.35, 0.9),
        ("mobilenet-v2", 0.5, 1.2))] + ["mnasnet-a1 (float),1.0,64,9.0,phone"]
    source = tmp_path / "models.csv"
    source.write_text("\n".join(rows) + "\n")
    observations = read_observations(source, "phone", dtype="int8")
    assert [o.dtype for o in observations] == ["int8"] * 5 and observations[0].model.text == "mnasnet-a1@0.35,64"
    db = tmp_path / "whole.db"
    group = click.Group(commands={"calibrate": calibrate, **{c.name: c for c in COMMANDS}})
    result = CliRunner().invoke(group, ["calibrate", "--device", "phone", "--from", str(source), "--dtype", "int8"],
                                obj={"db": str(db)}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "from 5 measured int8 models" in result.output and "left out 1 measured in float32" in result.output
    from latprof.space import tflite_for

    assert inspect_model(tflite_for(observations[0].model)).dtype == "int8"  # the int8 graph, QUANTIZE and all
    int8_file = write_tflite(SPACE.sample(1), tmp_path / "q.tflite", space=SPACE, dtype="int8")
    result = CliRunner().invoke(group, ["predict", str(int8_file), "--device", "phone", "--json"],
                                obj={"db": str(db)}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["dtype"] == "int8"


class _FirstLayers(MnasNetSpace):
    """The tiny space, cut to its first 12 layer configurations."""

    def unique_layer_configs(self):
        return super().unique_layer_configs()[:12]


def test_an_int8_table_on_a_phone_goes_through_benchmark_model(tmp_path):
    from latprof.lut import build_lut
    from latprof.loopback import serve

    space = _FirstLayers(0.35, 32)
    with serve("pixel2", accept_new_keys=True) as phone, open_device(phone.address) as device, \
            Store(tmp_path / "phone.db") as store:
        summary = build_lut(store, device, space, request=build_request(device, runs=2, warmup=0),
                            calibration_request=build_request(device, runs=2, warmup=0), calibration=2, dtype="int8")
        entries = load_entries(store.connection, device.name, table_space("mnasnet", "int8"))
        assert not load_entries(store.connection, device.name, "mnasnet")  # the float32 table is untouched
    assert summary.measured == 12 and summary.calibration_measured == 2 and len(entries) == 12
    assert {e.settings["dtype"] for e in entries} == {"int8"}
    assert {e.settings["runtime"] for e in entries} == {"tflite benchmark_model"}

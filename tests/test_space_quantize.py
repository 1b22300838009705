"""Quantized export (#18): keras_to_tflite / export_tflite / export_many with quantize=int8|float16|dynamic,
and `latprof arch export --quantize` followed by `latprof measure`. Tiny models only."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from click.testing import CliRunner

from latprof.benchmarking.record import model_dtype
from latprof.cli import main
from latprof.errors import ArchitectureError, CalibrationDataError
from latprof.space import (LayerConfig, build_keras_model, export_many, export_tflite, keras_to_tflite, parse_arch,
                           read_tflite_ops)
from latprof.space._build import default_export_name
from latprof.store import Store

# SE and an identity skip; 32 -> 96 channels so every weight tensor has >= 1024 elements (dynamic-range
# quantization leaves smaller ones in float32).
SE_LAYER = LayerConfig(op="ir", kernel=3, stride=1, expansion=3, se_ratio=0.25, skip="id", in_channels=32,
                       out_channels=32, resolution=8, activation="relu")
TINY_ARCH = "res32_stem8_head32_cls10_relu:ds_r1_k3_s1_i8_o8:ir_r1_k5_s2_e3_i8_o16_se0.25"


@pytest.fixture(scope="module")
def se_model():
    return build_keras_model(SE_LAYER)


@pytest.fixture(scope="module")
def int8_float_io(se_model) -> bytes:
    return keras_to_tflite(se_model, quantize="int8", representative=16)


def _interpreter(data: bytes) -> Interpreter:
    interpreter = Interpreter(model_content=data)
    interpreter.allocate_tensors()
    return interpreter


def _op_names(data: bytes, tmp_path) -> list[str]:
    path = tmp_path / "model.tflite"
    path.write_bytes(data)
    return [op.name for op in read_tflite_ops(path)]


def test_int8_with_float_io_is_integer_inside_with_quantize_and_dequantize_at_the_edges(
        se_model, int8_float_io, tmp_path):
    assert model_dtype(int8_float_io) == "int8"
    names = _op_names(int8_float_io, tmp_path)
    assert names[0] == "QUANTIZE" and names[-1] == "DEQUANTIZE"
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "LOGISTIC", "MUL", "ADD"} <= set(names[1:-1])
    assert "QUANTIZE" not in names[1:] and "DEQUANTIZE" not in names[:-1]
    interpreter = _interpreter(int8_float_io)
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inp["dtype"] == np.float32 and out["dtype"] == np.float32
    # The integer model computes what the float one does, to quantization error.
    x = np.random.default_rng(3).uniform(-1, 1, size=inp["shape"]).astype(np.float32)
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(out["index"]).ravel()
    want = np.asarray(se_model(x)).ravel()
    assert np.corrcoef(got, want)[0, 1] > 0.95


def test_int8_io_has_int8_input_and_output_calibrated_on_uniform_inputs(se_model, tmp_path):
    data = keras_to_tflite(se_model, quantize="int8", representative=16, io_dtype="int8")
    assert model_dtype(data) == "int8"
    names = _op_names(data, tmp_path)
    assert "QUANTIZE" not in names and "DEQUANTIZE" not in names
    interpreter = _interpreter(data)
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    scale, _ = inp["quantization"]
    assert scale == pytest.approx(2 / 255, rel=0.02)  # 16 samples uniform in [-1, 1]
    # Seeded calibration: the same model converts to the same bytes.
    assert keras_to_tflite(se_model, quantize="int8", representative=16, io_dtype="int8") == data


def test_given_representative_data_sets_the_calibration(se_model):
    data = np.random.default_rng(0).uniform(-4, 4, size=(8, 8, 8, 32)).astype(np.float32)
    model = keras_to_tflite(se_model, quantize="int8", representative=data, io_dtype="int8")
    (inp,) = _interpreter(model).get_input_details()
    assert inp["quantization"][0] == pytest.approx(8 / 255, rel=0.05)


def test_float16_and_dynamic_range(se_model, tmp_path):
    half = keras_to_tflite(se_model, quantize="float16")
    assert model_dtype(half) == "float16"
    assert "DEQUANTIZE" in _op_names(half, tmp_path)  # float16 weights widened at load
    dynamic = keras_to_tflite(se_model, quantize="dynamic")
    assert model_dtype(dynamic) == "int8-weights"
    (inp,) = _interpreter(dynamic).get_input_details()
    assert inp["dtype"] == np.float32
    assert model_dtype(keras_to_tflite(se_model)) == "float32"


def test_bad_quantization_arguments_are_one_line_errors(se_model):
    with pytest.raises(ArchitectureError, match=r"^unknown quantization 'int4'; allowed: int8, float16, dynamic"):
        keras_to_tflite(se_model, quantize="int4")
    with pytest.raises(ArchitectureError, match="io_dtype 'int8' needs quantize='int8'"):
        keras_to_tflite(se_model, quantize="float16", io_dtype="int8")
    with pytest.raises(CalibrationDataError, match=r"shape \(4, 8, 8, 3\); expected \(N, 8, 8, 32\)") as err:
        keras_to_tflite(se_model, quantize="int8", representative=np.zeros((4, 8, 8, 3), np.float32))
    assert "\n" not in str(err.value) and err.value.exit_code == 2
    with pytest.raises(CalibrationDataError, match="at least 1"):
        keras_to_tflite(se_model, quantize="int8", representative=0)
    with pytest.raises(CalibrationDataError, match="dtype <U1"):
        keras_to_tflite(se_model, quantize="int8", representative=np.full((2, 8, 8, 32), "a"))


def test_quantized_files_get_their_own_names_and_export_many_quantizes(tmp_path):
    arch = parse_arch(TINY_ARCH)
    names = {default_export_name(arch), default_export_name(arch, "int8"), default_export_name(arch, "int8", "int8"),
             default_export_name(arch, "float16"), default_export_name(arch, "dynamic")}
    assert len(names) == 5
    assert default_export_name(SE_LAYER) == SE_LAYER.layer_key() + ".tflite"
    assert default_export_name(SE_LAYER, "int8") == SE_LAYER.layer_key() + "-int8.tflite"
    ((item, path),) = list(export_many([SE_LAYER], tmp_path, workers=1, quantize="int8", io_dtype="int8"))
    assert item == SE_LAYER and path.name == SE_LAYER.layer_key() + "-int8-io8.tflite"
    assert model_dtype(path.read_bytes()) == "int8"
    single = export_tflite(arch, tmp_path / "arch.tflite", quantize="float16")
    assert model_dtype(single.read_bytes()) == "float16"


# ------------------------------------------------------------------ CLI
def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def _error_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("Error:")]


def test_cli_exports_int8_and_measure_records_the_int8_dtype(tmp_path):
    out = tmp_path / "tiny-int8.tflite"
    result = _run("arch", "export", TINY_ARCH, "-o", str(out), "--quantize", "int8", "--representative", "8",
                  "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["dtype"], doc["quantize"], doc["io_dtype"]) == ("int8", "int8", "float32")
    assert model_dtype(out.read_bytes()) == "int8"
    human = _run("arch", "export", TINY_ARCH, "-o", str(tmp_path / "io8.tflite"), "--quantize", "int8",
                 "--representative", "8", "--io", "int8")
    assert human.exit_code == 0, human.output
    assert "(int8 model, full-integer int8 quantization, int8 I/O;" in human.output
    measured = _run("measure", str(out), "--runs", "3", "--warmup", "1", "--rounds", "1", "--json")
    assert measured.exit_code == 0, measured.output
    record = json.loads(measured.stdout)
    assert record["settings"]["dtype"] == "int8" and record["latency_ms"] > 0
    with Store() as store:
        (stored,) = store.measurements()
    assert stored.settings["dtype"] == "int8"


def test_cli_bad_quantize_options_exit_2_with_one_line(tmp_path):
    out = str(tmp_path / "x.tflite")
    bad = _run("arch", "export", TINY_ARCH, "-o", out, "--quantize", "int4")
    assert bad.exit_code == 2 and len(_error_lines(bad)) == 1 and "'int4' is not one of" in bad.output
    io = _run("arch", "export", TINY_ARCH, "-o", out, "--quantize", "float16", "--io", "int8")
    assert io.exit_code == 2 and _error_lines(io) == ["Error: --io applies to --quantize int8 only"]
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((3, 31, 32, 3), np.float32))
    shape = _run("arch", "export", TINY_ARCH, "-o", out, "--quantize", "int8", "--representative-data", str(wrong))
    assert shape.exit_code == 2
    assert _error_lines(shape) == ["Error: representative data has shape (3, 31, 32, 3); expected (N, 32, 32, 3), "
                                   "N >= 1 samples of the model input"]
    junk = tmp_path / "junk.npy"
    junk.write_text("not an array\n")
    unreadable = _run("arch", "export", TINY_ARCH, "-o", out, "--quantize", "int8", "--representative-data", str(junk))
    assert unreadable.exit_code == 2 and len(_error_lines(unreadable)) == 1
    assert "not a .npy file of numbers" in unreadable.output
    assert not (tmp_path / "x.tflite").exists()

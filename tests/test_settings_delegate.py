"""Settings that change a latency: --delegate and --threads on the host and the loopback phone, the
model's data type, lookup-table identity, and `latprof results` columns."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner

from latprof.benchmarking.record import inspect_model
from latprof.cli import main
from latprof.errors import LookupTableError
from latprof.lut import _tables as T
from latprof.loopback import serve
from latprof.store import Store


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def _measure(model, *extra: str):
    return _run("measure", str(model), "--runs", "3", "--warmup", "1", "--json", *extra)


# ----------------------------------------------------------------- host
def test_host_delegate_none_uses_the_builtin_kernels(tiny_tflite):
    result = _measure(tiny_tflite, "--delegate", "none")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    s = record["settings"]
    assert (s["delegate"], s["dtype"], s["threads"]) == ("none", "float32", 1)
    assert s["runtime_delegate"].startswith("none (builtin kernels")
    assert "BUILTIN_WITHOUT_DEFAULT_DELEGATES" in record["command"]
    default = json.loads(_measure(tiny_tflite).stdout)["settings"]
    assert default["delegate"] == "xnnpack" and default["runtime_delegate"] == "xnnpack (LiteRT default)"


@pytest.mark.parametrize("delegate", ["gpu", "nnapi"])
def test_host_gpu_or_nnapi_is_a_one_line_usage_error(tiny_tflite, delegate):
    result = _measure(tiny_tflite, "--delegate", delegate)
    assert result.exit_code == 2
    message = result.output.strip()
    assert "\n" not in message and f"--delegate {delegate} is not available on local" in message
    assert "need a phone" in message
    with Store() as store:
        assert store.measurements() == []


def test_unknown_delegate_is_refused_by_click(tiny_tflite):
    result = _measure(tiny_tflite, "--delegate", "tpu")
    assert result.exit_code == 2 and "'tpu' is not one of" in result.output


# ----------------------------------------------------------------- loopback phone
def test_loopback_phone_honours_threads_and_delegates(tiny_tflite):
    with serve("pixel2", accept_new_keys=True) as phone:
        default = _measure(tiny_tflite, "--device", phone.address, "--threads", "2")
        none = _measure(tiny_tflite, "--device", phone.address, "--delegate", "none")
        gpu = _measure(tiny_tflite, "--device", phone.address, "--delegate", "gpu")
        nnapi = _measure(tiny_tflite, "--device", phone.address, "--delegate", "nnapi")
    assert default.exit_code == 0 and none.exit_code == 0, default.output + none.output
    d, n = json.loads(default.stdout), json.loads(none.stdout)
    assert "--num_threads=2" in d["command"] and "--use_xnnpack=true" in d["command"]
    assert (d["settings"]["threads"], d["settings"]["delegate"], d["settings"]["delegate_reported"]) == (2, "xnnpack",
                                                                                                         "xnnpack")
    assert d["settings"]["dtype"] == "float32" and d["settings"]["core_mask"] == "f0"
    assert "--use_xnnpack=false" in n["command"]
    assert (n["settings"]["delegate"], n["settings"]["delegate_reported"]) == ("none", "none")
    # The loopback phone has no GPU or NNAPI: benchmark_model warns and runs on the CPU, latprof refuses the figure.
    for result, name in ((gpu, "GPU"), (nnapi, "NNAPI")):
        assert result.exit_code == 1
        message = result.output.strip()
        assert "\n" not in message and f"did not run the model on the {name.lower()} delegate" in message
        assert f"{name} acceleration is unsupported on this platform." in message
    with Store() as store:
        assert [m.settings["delegate"] for m in store.measurements()] == ["xnnpack", "none"]


# ----------------------------------------------------------------- data type
@pytest.fixture(scope="module")
def int8_tflite(tmp_path_factory):
    """A full-integer (int8 inputs, weights and activations) .tflite."""
    import tensorflow as tf

    inputs = tf.keras.Input((8, 8, 3), batch_size=1)
    outputs = tf.keras.layers.Dense(4)(tf.keras.layers.Conv2D(4, 3)(inputs))
    converter = tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(inputs, outputs))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.standard_normal((1, 8, 8, 3)).astype(np.float32)]
                                                for _ in range(8))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path = tmp_path_factory.mktemp("int8") / "int8.tflite"
    with contextlib.redirect_stdout(io.StringIO()):
        path.write_bytes(converter.convert())
    return path


def test_model_data_type_is_read_from_the_tflite(tiny_tflite, int8_tflite):
    assert inspect_model(tiny_tflite).dtype == "float32"
    assert inspect_model(int8_tflite).dtype == "int8"
    result = _measure(int8_tflite)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["dtype"] == "int8"


# ----------------------------------------------------------------- lookup-table identity
def _entry(settings: dict) -> T.LutEntry:
    return T.LutEntry("phone", "mnasnet", "conv_k3", 1.0, 1.0, 0.0, 1.0, 5, settings, {}, [], T.now())


def test_table_identity_reads_old_tables_as_the_old_defaults():
    with Store() as store:
        conn = store.connection
        T.add_entry(conn, _entry({"threads": 1, "delegate": "xnnpack (LiteRT default)"}))  # as stored before
        assert T.table_identity(conn, "phone", "mnasnet") == {"threads": 1, "delegate": "xnnpack", "dtype": "float32"}
        assert T.load_table(conn, "phone", "mnasnet", {"threads": 1, "delegate": "xnnpack"}) == {"conv_k3": 1.0}
        for other in ({"delegate": "gpu"}, {"threads": 4}):
            with pytest.raises(LookupTableError, match="it is not used for other settings"):
                T.load_table(conn, "phone", "mnasnet", other)
            with pytest.raises(LookupTableError):
                T.load_entries(conn, "phone", "mnasnet", other)
        # Building on: the same settings pass, another delegate or thread count is refused.
        T.check_settings(conn, "lut_entries", "phone", "mnasnet", {"threads": 1, "delegate": "xnnpack"})
        with pytest.raises(LookupTableError, match=r"delegate='xnnpack' \(now 'none'\).*--rebuild"):
            T.check_settings(conn, "lut_entries", "phone", "mnasnet", {"threads": 1, "delegate": "none"})
        with pytest.raises(LookupTableError, match=r"threads=1 \(now 2\)"):
            T.check_settings(conn, "lut_entries", "phone", "mnasnet", {"threads": 2, "delegate": "xnnpack"})


def test_table_without_delegate_or_threads_reads_as_one_thread_xnnpack():
    with Store() as store:
        T.add_entry(store.connection, _entry({"method": "micro-model"}))
        assert T.table_identity(store.connection, "phone", "mnasnet") == {"threads": 1, "delegate": "xnnpack", "dtype": "float32"}


# ----------------------------------------------------------------- results
def test_results_shows_threads_delegate_core_mask_and_dtype(tiny_tflite):
    assert _measure(tiny_tflite, "--delegate", "none").exit_code == 0
    result = _run("results")
    assert result.exit_code == 0, result.output
    header, row = result.output.splitlines()[:2]
    assert header.split()[-4:] == ["threads", "delegate", "core_mask", "dtype"]
    assert row.split()[-3] == "none" and row.split()[-1] == "float32" and row.split()[-4] == "1"

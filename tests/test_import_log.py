"""`latprof import-log` on real benchmark_model outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from latprof.cli import main
from latprof.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "benchmark_model"


def _import(*args: str):
    return CliRunner().invoke(main, ["import-log", *args])


def test_modern_log_without_percentiles_uses_the_mean(tmp_path):
    log = FIXTURES / "02_yolov5s_mi11_fp32_cpu_4threads.txt"
    result = _import(str(log), "--device", "mi11", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["stats"]["count"] == 50
    assert record["stats"]["median_ms"] is None
    assert record["latency_ms"] == pytest.approx(249.684)  # avg=249684 us
    assert record["stats"]["min_ms"] == pytest.approx(247.067) and record["stats"]["std_ms"] == pytest.approx(1.442)
    assert record["first_inference_us"] == 360262 and record["init_us"] == 16242
    assert record["device"] == "mi11" and record["source"] == "import-log"
    with Store() as store:
        (stored,) = store.measurements(device="mi11")
    assert stored.stats.mean_ms == pytest.approx(249.684)


def test_op_profiling_log_keeps_every_run_order_row():
    log = FIXTURES / "01_meta-tflite_qemuriscv64_mobilenet_v1_op_profiling.txt"
    result = _import(str(log), "--json")
    record = json.loads(result.stdout)
    assert record["model_name"] == "mobilenet_v1_1.0_224.tflite"  # from `Graph: [...]`
    assert record["settings"]["threads"] == 4 and record["settings"]["op_profile"] is True
    assert len(record["op_profile"]) == 31
    assert record["op_profile"][0] == {
        "node_type": "CONV_2D", "name": "[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]:0", "first_ms": 87.754, "avg_ms": 60.957,
    }
    assert record["memory_mb"]["delta_overall"] == pytest.approx(46.0859)


def test_missing_log_and_failed_run_are_clear_errors(tmp_path):
    missing = _import(str(tmp_path / "nope.txt"))
    assert missing.exit_code == 1 and "log file not found" in missing.output
    failed = tmp_path / "failed.txt"
    failed.write_text("INFO: STARTING!\nERROR: Failed to mmap model /data/local/tmp/x.tflite\nBenchmarking failed.\n")
    result = _import(str(failed))
    assert result.exit_code == 1 and result.output.startswith("Error: ")
    assert result.output.strip().count("\n") == 0
    with Store() as store:
        assert store.measurements() == []


def test_legacy_log_with_only_an_average_is_imported_with_a_warning():
    log = FIXTURES / "06_tf_readme_mobilenet_quant_op_profiling_legacy_format.txt"
    result = _import(str(log), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["latency_ms"] == pytest.approx(79.7609)  # "Inference: 79760.9"
    assert record["stats"]["count"] == 0 and record["stats"]["median_ms"] is None
    assert "only the average" in record["warnings"][0]
    assert len(record["op_profile"]) == 31


def test_json_shows_the_whole_record_with_sources():
    log = FIXTURES / "01_meta-tflite_qemuriscv64_mobilenet_v1_op_profiling.txt"
    result = _import(str(log), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)["benchmark_output"]
    # The file's first line is its "# source:" note, so the tool's lines are numbered from 2.
    assert out["warmup"]["count"] == 1 and out["warmup"]["avg_us"] == 3512391
    assert out["sources"]["warmup"] == "line 12: count= line after 'Running benchmark for at least 1 iterations'"
    assert out["summary"] == {"Init": 17187, "First inference": 3512391, "Warmup (avg)": 3512390,
                              "Inference (avg)": 2950340}
    init, run = out["profiles"]
    assert (init["section"], init["timings"]["avg_us"]) == ("init", 1356)
    assert (run["section"], run["timings"]["count"], run["timings"]["min_us"]) == ("run", 50, 2727203)
    assert len(out["top_by_time"]) == 11 and out["top_by_time"][1]["avg_ms"] == 277.374
    assert out["inference"]["p5_us"] is None  # missing, not zero
    with Store() as store:
        (stored,) = store.measurements()
    assert stored.benchmark_output == out


def test_op_profiling_excerpt_without_summary_is_imported_from_the_profiler_timings(tmp_path):
    text = (FIXTURES / "06_tf_readme_mobilenet_quant_op_profiling_legacy_format.txt").read_text()
    excerpt = tmp_path / "excerpt.txt"
    excerpt.write_text(text.split("\nAverage inference timings")[0])
    result = _import(str(excerpt), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    # "Timings (microseconds): count=50 first=79449 curr=81350 min=77385 max=88213 avg=79732 std=1929"
    assert record["stats"]["count"] == 50 and record["latency_ms"] == pytest.approx(79.732)
    assert record["stats"]["min_ms"] == pytest.approx(77.385) and record["stats"]["std_ms"] == pytest.approx(1.929)
    assert "op profiler" in record["warnings"][0] and record["init_us"] is None


def test_log_with_no_timing_is_a_one_line_error(tmp_path):
    text = (FIXTURES / "08_arm_tc2_recent_info_prefix_basic.txt").read_text()
    log = tmp_path / "no_timing.txt"
    log.write_text(text.split("INFO: Running benchmark")[0])
    result = _import(str(log))
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "no timing at all" in result.output
    assert result.output.strip().count("\n") == 0


def test_a_quantized_models_log_keeps_the_data_type_it_is_given(tmp_path, tiny_tflite):
    log = FIXTURES / "06_tf_readme_mobilenet_quant_op_profiling_legacy_format.txt"  # mobilenet_quant_v1_224
    record = json.loads(_import(str(log), "--dtype", "uint8", "--json").stdout)
    assert record["settings"]["dtype"] == "uint8"
    assert json.loads(_import(str(log), "--json").stdout)["settings"]["dtype"] is None  # a log alone does not say
    with Store() as store:
        assert [m.settings["dtype"] for m in store.measurements()] == ["uint8", None]
    refused = _import(str(log), "--model", str(tiny_tflite), "--dtype", "int8")
    assert refused.exit_code != 0 and "computes in float32, not int8" in refused.output

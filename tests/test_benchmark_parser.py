"""benchmark_model output: the parser against real captured logs, failures, and the formatter round trip.

Expected values for the fixtures were read off the files by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from latprof.benchmarking.parser import OpProfileRow, RunStats, parse_benchmark_output
from latprof.benchmarking.report import format_benchmark_output
from latprof.errors import BenchmarkFailedError, ParseError

FIXTURES = Path(__file__).parent / "fixtures" / "benchmark_model"


def fixture_text(stem: str) -> str:
    """A fixture without the leading provenance / shell-prompt lines that start with '# '."""
    (path,) = FIXTURES.glob(f"{stem}_*.txt")
    lines = path.read_text().splitlines(keepends=True)
    while lines and lines[0].startswith("# "):
        lines.pop(0)
    return "".join(lines)


def run_rows(out, section="run"):
    return [r for r in out.op_profile if r.section == section]


def type_rows(out, section="run"):
    return [r for r in out.node_type_summary if r.section == section]


def test_every_fixture_is_tested():
    assert sorted(p.name[:2] for p in FIXTURES.glob("*.txt")) == ["01", "02", "06", "08"]


# ----------------------------------------------------------------- 01: TFLite 2.8, op profiling, no prefixes
def test_01_summary_params_and_memory():
    out = parse_benchmark_output(fixture_text("01"))
    assert out.params == {
        "Log parameter values verbosely": "0", "Num threads": "4", "Graph": "./mobilenet_v1_1.0_224.tflite",
        "Enable op profiling": "1", "#threads used for CPU inference": "4",
    }
    assert out.init_us == 17187
    assert out.first_inference_us == 3512391
    assert out.warmup_avg_us == 3.51239e6
    assert out.inference_avg_us == 2.95034e6
    assert out.memory_mb == {"delta_init": 4.21094, "delta_overall": 46.0859}
    assert "Loaded model ./mobilenet_v1_1.0_224.tflite" in out.messages
    assert "#threads used for CPU inference: [4]" in out.messages
    assert "The input model file size (MB): 16.9008" in out.messages


def test_01_count_lines_warmup_is_count1_and_trailer_is_ignored():
    out = parse_benchmark_output(fixture_text("01"))
    # "count=1 curr=3512391": a single run, so every statistic is that run.
    assert out.warmup == RunStats(count=1, first_us=3512391, curr_us=3512391, min_us=3512391, max_us=3512391,
                                  avg_us=3512391, std_us=0, p5_us=3512391, median_us=3512391, p95_us=3512391)
    assert out.inference == RunStats(count=50, first_us=2990275, curr_us=2913402, min_us=2727568, max_us=3189954,
                                     avg_us=2.95034e6, std_us=109798, p5_us=None, median_us=None, p95_us=None)
    # The profiler's "Timings (microseconds): count=50 … avg=2.9499e+06" trailer is not the benchmark's line.
    assert out.inference.first_us != 2989660


def test_01_run_order_rows():
    out = parse_benchmark_output(fixture_text("01"))
    rows = run_rows(out)
    assert len(rows) == 31  # Run Order only: the 10 "Top by Computation Time" rows are not repeated
    assert len({r.name for r in rows}) == 31
    assert rows[0] == OpProfileRow(section="run", node_type="CONV_2D",
                                   name="[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]:0", start_ms=0.066,
                                   first_ms=87.754, avg_ms=60.957, percent=2.066, cdf_percent=2.066, mem_kb=0.0,
                                   times_called=1)
    assert rows[1].node_type == "DEPTHWISE_CONV_2D" and rows[1].avg_ms == 49.870
    assert rows[10].name == "[MobilenetV1/MobilenetV1/Conv2d_5_pointwise/Relu6]:10" and rows[10].avg_ms == 277.374
    assert rows[-1] == OpProfileRow(section="run", node_type="SOFTMAX", name="[MobilenetV1/Predictions/Reshape_1]:30",
                                    start_ms=2950.011, first_ms=0.230, avg_ms=0.233, percent=0.008,
                                    cdf_percent=100.0, mem_kb=0.0, times_called=1)
    assert [r.name.rsplit(":", 1)[1] for r in rows] == [str(i) for i in range(31)]
    assert sum(r.avg_ms for r in rows) == pytest.approx(2949.9, abs=0.5)
    assert [r.node_type for r in rows].count("CONV_2D") == 15


def test_01_init_section_and_node_type_summary():
    out = parse_benchmark_output(fixture_text("01"))
    (init,) = run_rows(out, "init")
    assert (init.node_type, init.name, init.start_ms, init.first_ms, init.avg_ms, init.percent) == (
        "AllocateTensors", "AllocateTensors/0", 0.0, 1.356, 1.356, 100.0)
    (init_type,) = type_rows(out, "init")
    assert (init_type.node_type, init_type.count, init_type.avg_ms) == ("AllocateTensors", 1, 1.356)
    types = type_rows(out)
    assert [(t.node_type, t.count, t.avg_ms, t.avg_percent, t.cdf_percent, t.times_called) for t in types] == [
        ("CONV_2D", 15, 2651.853, 89.897, 89.897, 15),
        ("DEPTHWISE_CONV_2D", 13, 296.919, 10.065, 99.962, 13),
        ("AVERAGE_POOL_2D", 1, 0.869, 0.029, 99.992, 1),
        ("SOFTMAX", 1, 0.232, 0.008, 99.999, 1),  # float32 cdf, and per-node integer µs (0.233 ms row above)
        ("SQUEEZE", 1, 0.016, 0.001, 100.0, 1),
    ]
    assert all(t.mem_kb == 0.0 for t in types)


# ----------------------------------------------------------------- 02: TFLite 2.4 fragment, one count line
def test_02_single_count_line_is_the_inference_one():
    out = parse_benchmark_output(fixture_text("02"))
    assert out.params == {} and out.op_profile == () and out.node_type_summary == ()
    assert out.warmup is None  # the lone line's avg equals "Inference (avg)", not "Warmup (avg)"
    assert out.inference == RunStats(count=50, first_us=249042, curr_us=250889, min_us=247067, max_us=254474,
                                     avg_us=249684, std_us=1442, p5_us=None, median_us=None, p95_us=None)
    assert (out.init_us, out.first_inference_us, out.warmup_avg_us, out.inference_avg_us) == (
        16242, 360262, 304586, 249684)
    assert out.memory_mb == {"footprint_init": 4.92969, "footprint_overall": 138.809}


def test_single_count_line_matching_warmup_avg_is_the_warmup():
    text = ("count=3 first=310000 curr=300000 min=300000 max=310000 avg=304586 std=4000\n"
            "Inference timings in us: Init: 16242, First inference: 310000, Warmup (avg): 304586, "
            "Inference (avg): 249684\n")
    out = parse_benchmark_output(text)
    assert out.warmup is not None and out.warmup.count == 3
    assert out.inference is None
    assert out.inference_avg_us == 249684


# ----------------------------------------------------------------- 06: TF 1.x README, legacy summary, [start]
def test_06_legacy_summary_and_no_benchmark_count_lines():
    out = parse_benchmark_output(fixture_text("06"))
    assert (out.init_us, out.first_inference_us, out.warmup_avg_us, out.inference_avg_us) == (
        38467, None, 83235, 79760.9)
    # Its only count= line is the profiler's "Timings (microseconds): count=50 …" trailer.
    assert out.warmup is None and out.inference is None
    assert out.memory_mb == {} and out.params == {}


def test_06_tables_without_section_header_are_run_section():
    out = parse_benchmark_output(fixture_text("06"))
    rows = run_rows(out)
    assert len(rows) == 31 and len(out.op_profile) == 31
    assert rows[0] == OpProfileRow(section="run", node_type="CONV_2D", name="[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]",
                                   start_ms=0.0, first_ms=4.269, avg_ms=4.269, percent=0.107, cdf_percent=0.107,
                                   mem_kb=0.0, times_called=0)
    assert rows[29].node_type == "RESHAPE" and rows[29].avg_ms == 0.002 and rows[29].start_ms == 79.440
    assert rows[-1].name == "[MobilenetV1/Predictions/Softmax]" and rows[-1].cdf_percent == 1.993
    assert [(t.node_type, t.count, t.avg_ms, t.avg_percent, t.cdf_percent) for t in type_rows(out)] == [
        ("CONV_2D", 15, 1.406, 89.270, 89.270),
        ("DEPTHWISE_CONV_2D", 13, 0.169, 10.730, 100.0),
        ("SOFTMAX", 1, 0.0, 0.0, 100.0),
        ("RESHAPE", 1, 0.0, 0.0, 100.0),
        ("AVERAGE_POOL_2D", 1, 0.0, 0.0, 100.0),
    ]


# ----------------------------------------------------------------- 08: recent TFLite, INFO: prefixes
def test_08_info_prefixes_two_runs_both_at_least_1_iteration():
    out = parse_benchmark_output(fixture_text("08"))
    assert out.params == {
        "Log parameter values verbosely": "0", "Min num runs": "1", "Min runs duration (seconds)": "0.01",
        "Num threads": "4", "Graph": "mobile_object_localizer_v1.tflite", "#threads used for CPU inference": "4",
    }
    # Both "Running benchmark" lines say "at least 1 iterations": the first block is the warmup.
    assert out.warmup == RunStats(count=70, first_us=8539, curr_us=6894, min_us=6043, max_us=8539, avg_us=7181.07,
                                  std_us=656, p5_us=None, median_us=None, p95_us=None)
    assert out.inference == RunStats(count=2, first_us=6449, curr_us=6510, min_us=6449, max_us=6510, avg_us=6479.5,
                                     std_us=30, p5_us=None, median_us=None, p95_us=None)
    assert (out.init_us, out.first_inference_us, out.warmup_avg_us, out.inference_avg_us) == (
        16599, 8539, 7181.07, 6479.5)
    assert out.memory_mb == {"delta_init": 8.45312, "delta_overall": 10.5898}
    assert out.op_profile == ()
    assert "Created TensorFlow Lite XNNPACK delegate for CPU." in out.messages
    assert "Loaded model mobile_object_localizer_v1.tflite" in out.messages
    assert "#" not in out.messages  # the trailing shell prompt


# ----------------------------------------------------------------- input variants
@pytest.mark.parametrize("stem", ["01", "02", "06", "08"])
def test_crlf_and_leading_tabs_parse_the_same(stem):
    text = fixture_text(stem)
    expected = parse_benchmark_output(text)
    assert parse_benchmark_output(text.replace("\n", "\r\n")) == expected
    # The Arm docs' RST block indented every line with one TAB.
    assert parse_benchmark_output("".join("\t" + ln for ln in text.splitlines(keepends=True))) == expected


MODERN = """\
INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Min num runs: [50]
INFO: Num threads: [4]
INFO: Graph: [/data/local/tmp/mobilenet_v2.tflite]
INFO: Report the peak memory footprint: [1]
INFO: #threads used for CPU inference: [4]
INFO: Loaded model /data/local/tmp/mobilenet_v2.tflite
I0000 00:00:1718236862.434124   12345 xnnpack_delegate.cc:1234] Created TensorFlow Lite XNNPACK delegate for CPU.
WARNING: Attempting to use a delegate that only supports static-sized tensors with a graph that has dynamic-sized tensors.
INFO: The input model file size (MB): 13.9786
INFO: Initialized session in 45.123ms.
INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=36 first=22501 curr=13702 min=13514 max=22501 avg=14003.2 std=1460 p5=13530 median=13755 p95=14650

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=73 first=13810 curr=13624 min=13488 max=15131 avg=13711.6 std=243 p5=13506 median=13654 p95=14135

INFO: Inference timings in us: Init: 45123, First inference: 22501, Warmup (avg): 14003.2, Inference (avg): 13711.6
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the \
actual memory footprint of the model at runtime. Take the information at your discretion.
INFO: Memory footprint delta from the start of the tool (MB): init=14.3047 overall=22.5859
INFO: Overall peak memory footprint (MB) via periodic monitoring: 31.0742
INFO: Memory status at the end of exeution:
INFO: - VmRSS              : 31 MB
"""


def test_modern_log_with_percentiles_and_peak_memory():
    out = parse_benchmark_output(MODERN)
    assert out.inference == RunStats(count=73, first_us=13810, curr_us=13624, min_us=13488, max_us=15131,
                                     avg_us=13711.6, std_us=243, p5_us=13506, median_us=13654, p95_us=14135)
    assert out.warmup.count == 36 and out.warmup.median_us == 13755 and out.warmup.p95_us == 14650
    assert out.memory_mb == {"delta_init": 14.3047, "delta_overall": 22.5859, "peak_periodic": 31.0742, "vm_rss": 31}
    assert out.params["Report the peak memory footprint"] == "1"
    # glog-style prefix stripped; warnings keep their severity so they stand out.
    assert "Created TensorFlow Lite XNNPACK delegate for CPU." in out.messages
    assert any(m.startswith("WARNING: Attempting to use a delegate") for m in out.messages)


def test_all_same_short_form():
    text = ("INFO: Running benchmark for at least 1 iterations and at least 0 seconds but terminate if exceeding 150 seconds.\n"
            "INFO: count=5 curr=1200(all same) p5=1200 median=1200 p95=1200\n\n"
            "INFO: Running benchmark for at least 3 iterations and at least 0 seconds but terminate if exceeding 150 seconds.\n"
            "INFO: count=3 curr=1000(all same)\n\n"
            "INFO: Inference timings in us: Init: 5, First inference: 1200, Warmup (avg): 1200, Inference (avg): 1000\n")
    out = parse_benchmark_output(text)
    assert out.warmup == RunStats(5, 1200, 1200, 1200, 1200, 1200, 0, 1200, 1200, 1200)
    assert out.inference == RunStats(3, 1000, 1000, 1000, 1000, 1000, 0, 1000, 1000, 1000)


def test_no_warmup_runs_gives_none_not_zero():
    text = ("INFO: count=0\n\nINFO: count=4 first=10 curr=12 min=9 max=12 avg=10.5 std=1\n\n"
            "INFO: Inference timings in us: Init: 5, First inference: 0, Warmup (avg): 0, Inference (avg): 10.5\n")
    out = parse_benchmark_output(text)
    assert out.warmup == RunStats(0, None, None, None, None, None, None, None, None, None)
    assert out.first_inference_us is None and out.warmup_avg_us is None
    assert out.inference.avg_us == 10.5


def test_subgraph_and_delegate_tables_are_not_mixed_into_the_primary_graph():
    header = "\t[node type]\t[first]\t[avg ms]\t[%]\t[cdf%]\t[mem KB]\t[times called]\t[Name]"
    def table(rows):
        return ["============================== Run Order ==============================", header,
                *(f"\t{t}\t1.000\t{a}\t50.000%\t50.000%\t0.000\t1\t{n}" for t, a, n in rows), ""]
    text = "\n".join([
        "INFO: Inference timings in us: Init: 5, First inference: 9, Warmup (avg): 9, Inference (avg): 8",
        "INFO: Operator-wise Profiling Info for Regular Benchmark Runs:",
        "Primary graph (name: main) profile:", *table([("WHILE", "2.000", "[loop]:0"), ("ADD", "1.000", "[a]:1")]),
        "Timings (microseconds): count=5 first=3 curr=3 min=3 max=3 avg=3 std=0", "",
        "Subgraph (index: 1, name: body) profile:", *table([("MUL", "0.500", "[m]:0")]),
        "Subgraph (index: 1, name: body) Timings (microseconds): count=5 curr=1(all same)", "",
        "Delegate internal: ", *table([("Convolution (NHWC, F32) IGEMM", "0.400", "Delegate/Conv:0")]),
    ])
    out = parse_benchmark_output(text)
    assert [(r.node_type, r.name, r.avg_ms) for r in out.op_profile] == [("WHILE", "[loop]:0", 2.0), ("ADD", "[a]:1", 1.0)]
    assert out.op_profile[0].start_ms is None
    assert out.inference is None  # "… Timings (microseconds): count=5" is not a benchmark count line


# ----------------------------------------------------------------- failures
def one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message and message
    return message


def test_benchmarking_failed():
    text = ("INFO: STARTING!\nINFO: Log parameter values verbosely: [0]\n"
            "ERROR: Please specify the name of your TF Lite input file with --graph\n"
            "ERROR: Benchmarking failed.\n")
    with pytest.raises(BenchmarkFailedError) as err:
        parse_benchmark_output(text)
    message = one_line(err)
    assert "Benchmarking failed." in message and "Please specify the name of your TF Lite input file" in message


def test_failed_to_mmap_model():
    text = ("INFO: STARTING!\nINFO: Log parameter values verbosely: [0]\nINFO: Num threads: [4]\n"
            "INFO: Graph: [/data/local/tmp/x.tflite]\nINFO: #threads used for CPU inference: [4]\n"
            "ERROR: Could not open '/data/local/tmp/x.tflite'.\n"
            "ERROR: Failed to mmap model /data/local/tmp/x.tflite\nERROR: Benchmarking failed.\n")
    with pytest.raises(BenchmarkFailedError) as err:
        parse_benchmark_output(text)
    message = one_line(err)
    assert "could not load the model" in message and "/data/local/tmp/x.tflite" in message and "--graph" in message


def test_truncated_run_ending_in_segmentation_fault():
    text = fixture_text("08").split("INFO: Running benchmark for at least 1 iterations and at least 0.01")[0]
    text += "Segmentation fault \n"
    with pytest.raises(BenchmarkFailedError) as err:
        parse_benchmark_output(text)
    message = one_line(err)
    assert "crashed (Segmentation fault)" in message and "count=70" in message


@pytest.mark.parametrize("crash", [
    "/system/bin/sh: line 1: 12345 Segmentation fault      /data/local/tmp/benchmark_model --graph=x.tflite",
    "Aborted (core dumped)",
    "F0000 00:00:1718236862.434124   12345 subgraph.cc:12] Check failed: tensor",
    "FATAL: Don't know how to populate tensor input of type 9",
    "Fatal signal 11 (SIGSEGV), code 1 (SEGV_MAPERR), fault addr 0x0 in tid 123 (benchmark_model)",
])
def test_other_crash_forms(crash):
    text = "INFO: STARTING!\nINFO: Loaded model /data/local/tmp/x.tflite\n" + crash + "\n"
    with pytest.raises(BenchmarkFailedError, match="crashed"):
        parse_benchmark_output(text)


def test_output_cut_short_without_crash_marker():
    text = fixture_text("01").split("Inference timings in us")[0]
    with pytest.raises(BenchmarkFailedError) as err:
        parse_benchmark_output(text)
    assert "no timing summary" in one_line(err)


@pytest.mark.parametrize("text", ["", "   \n\r\n\t\n"])
def test_empty_text(text):
    with pytest.raises(ParseError) as err:
        parse_benchmark_output(text)
    assert "empty" in one_line(err)


@pytest.mark.parametrize("text", [
    "hello world\nthis is not a benchmark\nThe mission was Aborted by the operator.\n",
    "adb: error: failed to get feature set: no devices/emulators found\n",
    "<html><body>502 Bad Gateway</body></html>",
])
def test_random_text(text):
    with pytest.raises(ParseError) as err:
        parse_benchmark_output(text)
    assert "not benchmark_model output" in one_line(err)


def test_garbled_summary_is_a_parse_error():
    with pytest.raises(ParseError, match="timing summary"):
        parse_benchmark_output("INFO: Inference timings in us: Init: x, Inference (avg): y\n")


# ----------------------------------------------------------------- formatter
OPS = [
    ("CONV_2D", "[model/conv0/Relu6]:0", 1.234, 1.111),
    ("DEPTHWISE_CONV_2D", "[model/dw 1 (block)/Relu6]:1", 0.5, 0.456),
    ("CONV_2D", "[model/conv2/BiasAdd]:2", 2.0, 2.5),
    ("MEAN", "[model/pool]:3", 0.01, 0.012),
    ("FULLY_CONNECTED", "[model/fc/MatMul]:4", 0.1, 0.09),
]
RUNS = [4000 + (i * 37) % 250 + (0.4 if i % 3 else 0.0) for i in range(60)]


def formatted(**overrides) -> str:
    kwargs = dict(graph="/data/local/tmp/latprof/m.tflite", num_threads=4, warmup_runs=1, num_runs=50,
                  init_us=17187.4, warmup_us=[5123.2, 4500.0], run_us=RUNS, op_profile=OPS, model_size_mb=16.9008,
                  memory_mb=(4.21094, 46.0859), enable_op_profiling=True)
    kwargs.update(overrides)
    return format_benchmark_output(**kwargs)


def count_line(runs) -> str:
    text = format_benchmark_output(graph="g", num_threads=1, warmup_runs=1, num_runs=len(runs), init_us=1,
                                   warmup_us=[1], run_us=runs)
    return [ln for ln in text.splitlines() if ln.startswith("INFO: count=")][1][len("INFO: "):]


def test_formatter_stat_line_matches_stat_with_percentiles():
    # n=4: avg 250; variance int(75000 - 62500) = 12500, std int(sqrt) = 111; p = sorted[4*p//100].
    assert count_line([100, 300, 200, 400]) == (
        "count=4 first=100 curr=400 min=100 max=400 avg=250 std=111 p5=100 median=300 p95=400")
    assert count_line([7, 7, 7]) == "count=3 curr=7(all same) p5=7 median=7 p95=7"
    assert count_line([7]) == "count=1 curr=7 p5=7 median=7 p95=7"
    assert "avg=2.95034e+06" in count_line([2950000, 2950680])


def test_formatter_round_trip():
    out = parse_benchmark_output(formatted())
    ints = sorted(int(round(v)) for v in RUNS)
    stats = out.inference
    assert stats.count == 60
    assert (stats.min_us, stats.max_us) == (ints[0], ints[-1])
    assert stats.avg_us == pytest.approx(sum(ints) / 60, rel=1e-5)
    assert (stats.p5_us, stats.median_us, stats.p95_us) == (ints[3], ints[30], ints[57])
    assert (stats.first_us, stats.curr_us) == (int(round(RUNS[0])), int(round(RUNS[-1])))
    assert out.inference_avg_us == pytest.approx(stats.avg_us, rel=1e-5)
    assert out.warmup.count == 2 and out.warmup.first_us == 5123 and out.first_inference_us == 5123
    assert out.init_us == 17187
    assert out.memory_mb == {"delta_init": 4.21094, "delta_overall": 46.0859}
    assert out.params["Graph"] == "/data/local/tmp/latprof/m.tflite"
    assert (out.params["Num threads"], out.params["Min num runs"], out.params["Min warmup runs"]) == ("4", "50", "1")
    assert out.params["Enable op profiling"] == "1"
    assert "Created TensorFlow Lite XNNPACK delegate for CPU." in out.messages
    rows = run_rows(out)
    assert [(r.node_type, r.name) for r in rows] == [(t, n) for t, n, _, _ in OPS]
    for row, (_, _, first_ms, avg_ms) in zip(rows, OPS):
        assert row.first_ms == pytest.approx(first_ms, abs=5e-4) and row.avg_ms == pytest.approx(avg_ms, abs=5e-4)
        assert row.start_ms is None and row.times_called == 1
    assert sum(r.percent for r in rows) == pytest.approx(100, abs=0.01) and rows[-1].cdf_percent == 100.0
    assert [(t.node_type, t.count) for t in type_rows(out)] == [
        ("CONV_2D", 2), ("DEPTHWISE_CONV_2D", 1), ("FULLY_CONNECTED", 1), ("MEAN", 1)]
    assert type_rows(out)[0].avg_ms == pytest.approx(1.111 + 2.5)


def test_formatter_without_profiling_memory_or_size():
    text = formatted(op_profile=None, enable_op_profiling=False, memory_mb=None, model_size_mb=None)
    assert "Run Order" not in text and "Note:" not in text and "Enable op profiling" not in text
    out = parse_benchmark_output(text)
    assert out.op_profile == () and out.memory_mb == {}
    assert "WARN: Failed to get the input model file size." in out.messages


def skeleton(text: str) -> list[str]:
    """Each line's kind, with prefixes, values and runs of parameter lines collapsed."""
    kinds = []
    for line in text.splitlines():
        line = re.sub(r"^(INFO|WARN): ", "", line.strip())
        if re.match(r"^[^\t:\[\]]+: \[.*\]$", line):
            kind = "PARAM"
        elif line.startswith("count="):
            kind = "COUNT"
        elif line.startswith("Loaded model "):
            kind = "LOADED"
        else:
            kind = re.sub(r"[-+0-9.e]+(?=\b|ms|,|$)", "N", line)
        if not (kind == "PARAM" and kinds and kinds[-1] == "PARAM"):
            kinds.append(kind)
    return kinds


def test_formatter_structure_matches_recent_fixture_08():
    ours = skeleton(formatted(op_profile=None, enable_op_profiling=False, memory_mb=(8.45312, 10.5898)))
    real_text = fixture_text("08")
    assert real_text.rstrip().endswith("\n#")  # the shell prompt after the real output
    assert ours == skeleton(real_text.rstrip()[:-1])


def test_formatter_profile_section_matches_fixture_01_layout():
    ours = formatted().split("Operator-wise Profiling Info for Regular Benchmark Runs:\n")[1]
    real = fixture_text("01").split("Operator-wise Profiling Info for Regular Benchmark Runs:\n")[1]

    def shape(section: str) -> list[str]:
        kinds = []
        for line in section.split("nodes observed\n")[0].split("\n"):
            if line.startswith("\t"):
                kind = "HEADER" if "ode type]" in line else "ROW"
            else:
                kind = re.sub(r"\d+(\.\d+)?(e[-+]\d+)?", "N", line)
            if not (kind == "ROW" and kinds and kinds[-1] == "ROW"):
                kinds.append(kind)
        return kinds

    def headers(section: str) -> list[list[str]]:
        return [[c.strip() for c in ln.split("\t")[1:]] for ln in section.split("\n") if "ode type]" in ln]

    # Same tables, blank lines and trailer, in the same order.
    assert shape(ours) == shape(real)
    # A profile ends with three empty lines (the copied 01 block was trimmed after its last one, so
    # check against its initialization profile, which is followed by the run profile).
    assert ours.endswith("nodes observed\n\n\n\n")
    assert "1 nodes observed\n\n\n\nOperator-wise" in fixture_text("01")
    # Same column headers as the newest real table, minus [start], which current TFLite no longer prints.
    assert [[c for c in h if c != "[start]"] for h in headers(real)] == headers(ours)
    assert "[start]" in headers(real)[0]
    # Current stats_calculator.cc: tab-separated, node type right-aligned in 40 columns, fixed 3 decimals.
    first_row = next(ln for ln in ours.split("\n") if "[model/conv0/Relu6]:0" in ln)
    assert first_row.split("\t")[1:4] == ["CONV_2D".rjust(40), "    1.234", "    1.111"]
    top = [ln.split("\t")[-1] for ln in ours.split("Top by Computation Time")[1].split("\n\n")[0].split("\n")[2:]]
    assert top[0] == "[model/conv2/BiasAdd]:2" and len(top) == len(OPS)


def test_formatted_output_feeds_the_delegate_detection():
    assert parse_benchmark_output(formatted()).delegate_in_use() == "xnnpack"
    assert parse_benchmark_output(formatted(use_xnnpack=False)).delegate_in_use() == "none"


def test_formatter_reproduces_fixture_01_tables_from_its_own_op_times():
    real = parse_benchmark_output(fixture_text("01"))
    ops = [(r.node_type, r.name, r.first_ms, r.avg_ms) for r in run_rows(real)]
    ours = parse_benchmark_output(formatted(op_profile=ops, run_us=[2950340] * 50))
    for mine, theirs in zip(run_rows(ours), run_rows(real), strict=True):
        assert (mine.name, mine.first_ms, mine.avg_ms, mine.percent) == (
            theirs.name, theirs.first_ms, theirs.avg_ms, theirs.percent)
        assert mine.cdf_percent == pytest.approx(theirs.cdf_percent, abs=0.002)
    # The input is rounded to 0.001 ms, so per-type sums may differ in the last digit.
    for mine, theirs in zip(type_rows(ours), type_rows(real), strict=True):
        assert (mine.node_type, mine.count, mine.times_called) == (theirs.node_type, theirs.count, theirs.times_called)
        assert mine.avg_ms == pytest.approx(theirs.avg_ms, abs=0.01)
        assert mine.avg_percent == pytest.approx(theirs.avg_percent, abs=0.002)
        assert mine.cdf_percent == pytest.approx(theirs.cdf_percent, abs=0.002)
    assert [t.cdf_percent for t in type_rows(ours)][-2:] == [99.999, 100.0]  # float32 accumulation, as real


# ----------------------------------------------------------------- the whole record (issue 14 item 4)
def test_01_profiler_timings_top_table_and_node_counts():
    out = parse_benchmark_output(fixture_text("01"))
    run, init = out.profile("run"), out.profile("init")
    # "Timings (microseconds): count=50 first=2989660 curr=2912978 min=2727203 max=3189476 avg=2.9499e+06 std=109770"
    assert run.timings == RunStats(count=50, first_us=2989660, curr_us=2912978, min_us=2727203, max_us=3189476,
                                   avg_us=2.9499e6, std_us=109770, p5_us=None, median_us=None, p95_us=None)
    assert (run.nodes_executed, run.nodes_observed, run.memory.count) == (31, 31, 0)
    # "Timings (microseconds): count=1 curr=1356" for the initialization profile.
    assert (init.timings.count, init.timings.avg_us, init.nodes_executed, init.nodes_observed) == (1, 1356, 1, 1)
    top = [r for r in out.top_by_time if r.section == "run"]
    assert len(top) == 10
    assert (top[0].name, top[0].start_ms, top[0].first_ms, top[0].avg_ms, top[0].percent, top[0].cdf_percent) == (
        "[MobilenetV1/MobilenetV1/Conv2d_5_pointwise/Relu6]:10", 898.426, 263.724, 277.374, 9.403, 9.403)
    assert (top[-1].name, top[-1].avg_ms, top[-1].cdf_percent) == (
        "[MobilenetV1/MobilenetV1/Conv2d_6_pointwise/Relu6]:12", 137.816, 74.508)
    assert (out.model_size_mb, out.session_init_ms) == (16.9008, 17.187)
    assert out.summary == {"Init": 17187, "First inference": 3512391, "Warmup (avg)": 3.51239e6,
                           "Inference (avg)": 2.95034e6}
    assert out.delegates == ()  # the riscv64 TFLite 2.8 build printed no delegate line


def test_sources_name_the_line_of_each_figure():
    out = parse_benchmark_output(fixture_text("01"))  # line 1 is "STARTING!"
    assert out.sources["warmup"] == "line 11: count= line after 'Running benchmark for at least 1 iterations'"
    assert out.sources["inference"] == "line 14: count= line after 'Running benchmark for at least 50 iterations'"
    assert out.sources["summary.init"] == "line 16: timing summary ('Init')"
    assert out.sources["memory_mb.delta_overall"].startswith("line 18: Memory footprint delta")
    assert out.sources["profiles.run.primary.timings"].startswith("line 96: op profiler's Timings (microseconds)")
    assert out.sources["run_order.run"] == "lines 42-72: run order table of Regular Benchmark Runs"
    legacy = parse_benchmark_output(fixture_text("06"))
    assert legacy.sources["summary.inference"] == "line 63: timing summary ('Inference')"
    assert "inference" not in legacy.sources and legacy.inference is None  # missing, not zero


def test_06_legacy_profile_keeps_profiler_timings_and_top_table():
    out = parse_benchmark_output(fixture_text("06"))
    assert out.profile("run").timings == RunStats(count=50, first_us=79449, curr_us=81350, min_us=77385,
                                                  max_us=88213, avg_us=79732, std_us=1929, p5_us=None,
                                                  median_us=None, p95_us=None)
    assert out.profile("init") is None
    assert [(r.name, r.avg_ms, r.times_called) for r in out.top_by_time][:2] == [
        ("[MobilenetV1/MobilenetV1/Conv2d_3_pointwise/Relu6]", 6.652, 0),
        ("[MobilenetV1/MobilenetV1/Conv2d_1_pointwise/Relu6]", 6.107, 0)]
    assert out.summary == {"Warmup": 83235, "Init": 38467, "Inference": 79760.9}
    assert out.first_inference_us is None and out.model_size_mb is None and out.session_init_ms is None


@pytest.mark.parametrize("stem, cut, runs", [
    ("01", "Operator-wise Profiling Info for Regular Benchmark Runs:",
     RunStats(50, 2989660, 2912978, 2727203, 3189476, 2.9499e6, 109770, None, None, None)),
    ("06", "", RunStats(50, 79449, 81350, 77385, 88213, 79732, 1929, None, None, None)),
])
def test_op_profiling_excerpt_without_summary_takes_the_profilers_timings(stem, cut, runs):
    text = fixture_text(stem)
    excerpt = cut + text.split(cut, 1)[1] if cut else text.split("Average inference timings")[0]
    assert "Inference timings in us" not in excerpt
    out = parse_benchmark_output(excerpt)
    assert out.inference == runs and out.inference_avg_us == runs.avg_us
    assert out.warmup is None and out.init_us is None and out.first_inference_us is None and out.summary == {}
    assert "op profiler's Timings (microseconds)" in out.sources["inference"]
    assert len(run_rows(out)) == 31


def test_excerpt_with_tables_but_no_timing_is_a_parse_error():
    text = fixture_text("06").split("Number of nodes executed")[0]  # Run Order and Top tables only
    with pytest.raises(ParseError) as err:
        parse_benchmark_output(text)
    assert "no timing at all" in one_line(err)


def test_log_that_started_but_has_no_timing_is_a_parse_error():
    text = fixture_text("08").split("INFO: Running benchmark")[0]
    with pytest.raises(ParseError) as err:
        parse_benchmark_output(text)
    assert "no timing at all" in one_line(err) and "Initialized session in 16.599ms." in one_line(err)


def test_tables_pasted_with_spaces_for_tabs_read_the_same():
    text = fixture_text("06")
    spaced = parse_benchmark_output(text.replace("\t", "    "))
    assert spaced.op_profile == parse_benchmark_output(text).op_profile
    assert spaced.node_type_summary == parse_benchmark_output(text).node_type_summary


def test_table_without_times_called_column():
    text = "\n".join([
        "============================== Summary by node type ==============================",
        "\t[Node type]\t[count]\t[avg ms]\t[avg %]\t[cdf %]\t[mem KB]",
        "\tConv2D\t2\t1.500\t75.000%\t75.000%\t12.000",
        "\tRelu\t1\t0.500\t25.000%\t100.000%\t0.000", "",
        "============================== Run Order ==============================",
        "\t[node type]\t[start]\t[first]\t[avg ms]\t[%]\t[cdf%]\t[mem KB]\t[Name]",
        "\tConv2D\t0.000\t1.100\t1.000\t50.000%\t50.000%\t6.000\tconv1", "",
        "Timings (microseconds): count=3 first=2100 curr=1950 min=1950 max=2100 avg=2016.67 std=62",
    ])
    out = parse_benchmark_output(text)
    assert [(t.node_type, t.count, t.avg_ms, t.mem_kb, t.times_called) for t in out.node_type_summary] == [
        ("Conv2D", 2, 1.5, 12.0, None), ("Relu", 1, 0.5, 0.0, None)]
    (row,) = out.op_profile
    assert (row.name, row.start_ms, row.first_ms, row.mem_kb, row.times_called) == ("conv1", 0.0, 1.1, 6.0, None)
    assert out.inference.count == 3 and out.inference.avg_us == 2016.67


TFLITE_1X = """\
Min num runs: [50]
Num threads: [1]
Graph: [mobilenet_v1_1.0_224_quant.tflite]
Use nnapi : [0]
Loaded model mobilenet_v1_1.0_224_quant.tflite
resolved reporter
Initialized session in 4.452ms
Running benchmark for 1 iterations
count=1 curr=146161

Running benchmark for 50 iterations
count=50 first=137789 curr=137254 min=137079 max=143416 avg=137722 std=896

Average inference timings in us: Warmup: 146161, Init: 4452, no stats: 137722
"""


def test_tflite_1x_no_stats_summary():
    out = parse_benchmark_output(TFLITE_1X)
    assert out.inference == RunStats(50, 137789, 137254, 137079, 143416, 137722, 896, None, None, None)
    assert out.warmup.count == 1 and out.warmup.avg_us == 146161
    assert (out.init_us, out.warmup_avg_us, out.inference_avg_us, out.session_init_ms) == (4452, 146161, 137722, 4.452)
    assert out.params["Use nnapi"] == "0" and out.delegate("nnapi").requested is False
    assert out.summary == {"Warmup": 146161, "Init": 4452, "no stats": 137722}


TF_DATED = """\
2017-11-27 08:56:25.123456: I tensorflow/tools/benchmark/benchmark_model.cc:291] Running benchmark for max 2 \
iterations, max -1 seconds without detailed stat logging, with -1s sleep between inferences
2017-11-27 08:56:35.518000: I tensorflow/tools/benchmark/benchmark_model.cc:324] count=2 first=157668 \
curr=150971 min=84108 max=186161 avg=154048 std=15025

2017-11-27 08:56:35.518210: I tensorflow/tools/benchmark/benchmark_model.cc:291] Running benchmark for max 1000 \
iterations, max 10 seconds with detailed stat logging, with -1s sleep between inferences
2017-11-27 08:56:45.691915: I tensorflow/tools/benchmark/benchmark_model.cc:324] count=61 first=143913 \
curr=150588 min=89136 max=256518 avg=165940 std=28180

2017-11-27 08:56:45.692227: I tensorflow/tools/benchmark/benchmark_model.cc:538] Average inference timings in us: \
Warmup: 169371, no stats: 154047, with stats: 165939
"""


def test_tensorflow_benchmark_with_dated_prefixes_and_with_stats_runs():
    out = parse_benchmark_output(TF_DATED)
    # Matched by average: the "no stats" runs are the inference, the "with stats" runs kept apart.
    assert out.inference.count == 2 and out.inference.avg_us == 154048
    assert out.inference_with_stats_avg_us == 165939 and out.warmup is None
    assert out.sources["inference"].startswith("line 2: count= line after 'Running benchmark for max 2 iterations'")
    assert (out.init_us, out.warmup_avg_us) == (None, 169371)


GPU_LOG = """\
INFO: STARTING!
INFO: Num threads: [2]
INFO: Graph: [/data/local/tmp/mask_estimator_phy.tflite]
INFO: #threads used for CPU inference: [2]
INFO: Use gpu: [1]
INFO: Loaded model /data/local/tmp/mask_estimator_phy.tflite
INFO: Initialized TensorFlow Lite runtime.
INFO: Created TensorFlow Lite delegate for GPU.
INFO: GPU delegate created.
INFO: Loaded OpenCL library with dlopen.
VERBOSE: Replacing 49 out of 49 node(s) with delegate (TfLiteGpuDelegateV2) node, yielding 1 partitions for subgraph 0.
INFO: Initialized OpenCL-based API.
INFO: Created 1 GPU delegate kernels.
INFO: Explicitly applied GPU delegate, and the model graph will be completely executed by the delegate.
INFO: The input model file size (MB): 0.2
INFO: Initialized session in 842.225ms.
INFO: count=13 first=115098 curr=36666 min=32079 max=115098 avg=40199.8 std=21694

INFO: count=1694 first=35688 curr=33419 min=30394 max=42335 avg=35134.9 std=1733

INFO: Inference timings in us: Init: 842225, First inference: 115098, Warmup (avg): 40199.8, Inference (avg): 35134.9
INFO: Overall peak memory footprint (MB) via periodic monitoring: 74.6641
INFO: Memory status at the end of exeution:
INFO: - VmRSS              : 75 MB
INFO: + RssAnnon           : 41 MB
INFO: + RssFile + RssShmem : 34 MB
"""


def test_gpu_delegate_lines_and_memory_status():
    out = parse_benchmark_output(GPU_LOG)
    gpu = out.delegate("gpu")
    assert (gpu.requested, gpu.created, gpu.applied, gpu.delegate_kernels) == (True, True, "complete", 1)
    assert (gpu.nodes_delegated, gpu.nodes_total, gpu.partitions, gpu.unavailable) == (49, 49, 1, False)
    assert len(gpu.lines) == 7 and out.delegate_in_use() == "gpu"
    assert out.memory_mb == {"peak_periodic": 74.6641, "vm_rss": 75, "rss_anon": 41, "rss_file_shmem": 34}
    assert out.sources["memory_mb.rss_anon"] == "line 25: + RssAnnon"
    assert out.warmup.count == 13 and out.inference.count == 1694


def test_xnnpack_partial_hexagon_and_unavailable_delegates():
    text = "\n".join([
        "INFO: Use xnnpack: [1]", "INFO: Use Hexagon: [1]", "INFO: Use NNAPI: [1]",
        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.", "INFO: XNNPACK delegate created.",
        "INFO: Explicitly applied XNNPACK delegate, and the model graph will be partially executed by the delegate "
        "w/ 22 delegate kernels.",
        "INFO: Created TensorFlow Lite delegate for Hexagon.",
        "INFO: Hexagon delegate: 28 nodes delegated out of 31 nodes with 2 partitions.",
        "WARN: NNAPI acceleration is unsupported on this platform.",
        "INFO: Inference timings in us: Init: 5, First inference: 9, Warmup (avg): 9, Inference (avg): 8",
    ])
    out = parse_benchmark_output(text)
    xnn, hexagon, nnapi = out.delegate("xnnpack"), out.delegate("hexagon"), out.delegate("nnapi")
    assert (xnn.requested, xnn.applied, xnn.delegate_kernels) == (True, "partial", 22)
    assert (hexagon.created, hexagon.nodes_delegated, hexagon.nodes_total, hexagon.partitions) == (True, 28, 31, 2)
    assert (nnapi.requested, nnapi.unavailable, nnapi.created) == (True, True, False)
    assert out.delegate_in_use() == "xnnpack"


def test_formatter_round_trips_profiler_timings_and_delegate_flags():
    out = parse_benchmark_output(formatted(use_xnnpack=True, use_gpu=True))
    ints = [int(round(v)) for v in RUNS]
    run = out.profile("run")
    assert (run.timings.count, run.timings.first_us, run.timings.min_us) == (60, ints[0], min(ints))
    assert (run.nodes_executed, run.nodes_observed) == (len(OPS), len(OPS))
    assert [r.name for r in out.top_by_time][0] == "[model/conv2/BiasAdd]:2"
    assert out.delegate("xnnpack").applied == "complete" and out.delegate("xnnpack").requested is True
    assert out.delegate("gpu").requested is True and out.delegate("gpu").unavailable
    assert out.delegate_in_use() == "xnnpack"
    assert out.model_size_mb == 16.9008 and out.session_init_ms == 17.187
    without = parse_benchmark_output(formatted(use_xnnpack=False))
    assert without.params["Use xnnpack"] == "0" and without.delegates[0].requested is False

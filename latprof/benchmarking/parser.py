"""Parse the text output of TFLite's ``benchmark_model``.

Formats followed (tensorflow/tensorflow, read through the public code index):

* ``tensorflow/lite/tools/benchmark/benchmark_model.cc``: ``Running benchmark for at
  least %d iterations and at least %g seconds but terminate if exceeding %g seconds.``,
  then the run's ``Stat`` on its own line plus an empty line; ``BenchmarkLoggingListener``
  prints ``Inference timings in us: Init: …, First inference: …, Warmup (avg): …,
  Inference (avg): …``, the memory ``Note:``, ``Memory footprint delta from the start of
  the tool (MB): init=… overall=…`` and ``Overall peak memory footprint (MB) via periodic
  monitoring: …``. Older builds print ``Peak memory footprint (MB): init=… overall=…``
  and, in TF 1.x, ``Average inference timings in us: Warmup: …, Init: …, Inference: …``.
* ``benchmark_main.cc``: ``ERROR: Benchmarking failed.``; ``benchmark_tflite_model.cc``:
  ``Failed to mmap model <graph>`` / ``Loaded model <graph>``; parameters are logged as
  ``<Description>: [<value>]``.
* ``tensorflow/lite/tools/logging.h``: every message is prefixed ``INFO: ``, ``WARN: ``,
  ``ERROR: `` or ``FATAL: `` (TFLite core uses ``WARNING: ``/``VERBOSE: ``; builds before
  ~2.9 print no prefix at all).
* ``third_party/xla/xla/tsl/util/stats_calculator.{h,cc}`` (was
  ``tensorflow/core/util/stats_calculator.*``): ``Stat::OutputToStream`` prints
  ``count=0`` / ``count=N curr=X`` (+ ``(all same)`` when N > 1) / ``count=N first= curr=
  min= max= avg=%g std=``; ``StatWithPercentiles`` appends `` p5= median= p95=``.
  Profiling tables are tab-separated, right-aligned columns under a ``[header]`` row;
  older builds have a ``[start]`` column, newer ones do not.
* ``tensorflow/lite/profiling/profile_summary_formatter.cc``: ``Profiling Info for
  Benchmark Initialization:`` / ``Operator-wise Profiling Info for Regular Benchmark
  Runs:``, each followed by Run Order, Top by Computation Time and Summary by node type
  tables and a ``Timings (microseconds): count=…`` trailer; models with several
  subgraphs add ``Primary graph … profile:`` / ``Subgraph (index: N…) profile:`` and
  ``Delegate internal:`` blocks.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from latprof.errors import BenchmarkFailedError, ParseError

__all__ = ["RunStats", "OpProfileRow", "NodeTypeSummary", "BenchmarkOutput", "parse_benchmark_output"]


@dataclass(frozen=True)
class RunStats:
    """One ``count=… first=… curr=… min=… max=… avg=… std=… [p5=… median=… p95=…]`` line, in µs.

    Fields the line does not give are None. When the tool prints the short form
    (``count=1 curr=X`` or ``count=N curr=X(all same)``) every run took X, so all
    statistics are X (std 0): that is exact, not a guess.
    """

    count: int
    first_us: float | None
    curr_us: float | None
    min_us: float | None
    max_us: float | None
    avg_us: float | None
    std_us: float | None
    p5_us: float | None
    median_us: float | None
    p95_us: float | None


@dataclass(frozen=True)
class OpProfileRow:
    """One row of a "Run Order" table (times in ms; ``start_ms`` only in older builds)."""

    section: str  # "init" (Benchmark Initialization) or "run" (Regular Benchmark Runs)
    node_type: str
    name: str
    start_ms: float | None
    first_ms: float
    avg_ms: float
    percent: float
    cdf_percent: float
    mem_kb: float
    times_called: int


@dataclass(frozen=True)
class NodeTypeSummary:
    """One row of a "Summary by node type" table."""

    section: str
    node_type: str
    count: int
    avg_ms: float
    avg_percent: float
    cdf_percent: float
    mem_kb: float
    times_called: int


@dataclass(frozen=True)
class BenchmarkOutput:
    """Everything read from one ``benchmark_model`` log.

    ``op_profile`` and ``node_type_summary`` hold the primary graph only (subgraph and
    delegate-internal tables would double-count time already inside their caller op).
    """

    params: dict[str, str]
    init_us: float | None
    first_inference_us: float | None
    warmup_avg_us: float | None
    inference_avg_us: float | None
    warmup: RunStats | None
    inference: RunStats | None
    memory_mb: dict[str, float]
    op_profile: tuple[OpProfileRow, ...]
    node_type_summary: tuple[NodeTypeSummary, ...]
    messages: tuple[str, ...]


# --------------------------------------------------------------------------- patterns
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf"

# Log prefixes: TFLite tools/core severity, or an absl/glog header ("I0000 00:00:1718.. 123 file.cc:12] ").
_PREFIX = re.compile(
    r"^(?:(?P<sev>INFO|WARN|WARNING|ERROR|VERBOSE|FATAL|DEBUG): "
    r"|(?P<glog>[IWEF])\d{4} \d\d:\d\d:[\d.]+\s+\d+ \S+:\d+\] )"
)
_SEVERITY = {"W": "WARNING", "E": "ERROR", "F": "FATAL", "I": "INFO"}

_RUNNING = re.compile(r"^Running benchmark for at least \d+ iterations")
_COUNT = re.compile(r"^count=(\d+)(.*)$")  # anchored: never matches "Timings (microseconds): count=…"
_STAT_FIELD = re.compile(rf"\b(first|curr|min|max|avg|std|p5|median|p95)=({_NUM})")
_SUMMARY = re.compile(r"^(?:Average inference timings|Inference timings) in us: (.*)$")
_SUMMARY_KEYS = {
    "Init": "init", "First inference": "first", "Warmup (avg)": "warmup", "Warmup": "warmup",
    "Inference (avg)": "inference", "Inference": "inference",
}
_SUMMARY_ITEM = re.compile(rf"^\s*([A-Za-z][A-Za-z ()]*?)\s*:\s*({_NUM})\s*$")
_MEMORY = (
    (re.compile(rf"^Peak memory footprint \(MB\): init=({_NUM}) overall=({_NUM})"),
     ("footprint_init", "footprint_overall")),
    (re.compile(rf"^Memory footprint delta from the start of the tool \(MB\): init=({_NUM}) overall=({_NUM})"),
     ("delta_init", "delta_overall")),
    (re.compile(rf"^Overall peak memory footprint \(MB\) via periodic monitoring: ({_NUM})"),
     ("peak_periodic",)),
)
_INITIALIZED = re.compile(rf"^Initialized session in ({_NUM})ms\.?")
_PARAM = re.compile(r"^([^\t:\[\]]+): \[([^\t]*)\]$")
_SECTIONS = (
    (re.compile(r"^Profiling Info for Benchmark Initialization:"), "init"),
    (re.compile(r"^Operator-wise Profiling Info for Regular Benchmark Runs:"), "run"),
)
_PRIMARY_GRAPH = re.compile(r"^Primary graph\b.*:$")
_OTHER_GRAPH = re.compile(r"^(?:Subgraph \(index: \d+[^)]*\) \w+:|Delegate internal:)$")
_TABLE_TITLE = re.compile(r"^=+ (.+?) =+$")
_TABLES = {"Run Order": "run_order", "Summary by node type": "node_type"}  # others (Top by …) are skipped

# Failures, most specific first.
_MODEL_MISSING = re.compile(r"Failed to mmap model|Could not open '.*'")  # mmap_allocation.cc
_CRASH = re.compile(
    r"^(?:\S*sh: (?:line \d+: )?\d+ )?(Segmentation fault|Aborted|Bus error|Illegal instruction"
    r"|Floating point exception|Killed)\b"
    r"|(Fatal signal \d+ \(SIG\w+\))|^(terminate called after throwing)"
)
_FAILED = "Benchmarking failed."
_SIGNATURE = re.compile(
    r"^(?:STARTING!|Running benchmark for at least|count=\d|Initialized session in|Loaded model "
    r"|Log parameter values verbosely|Graph: \[|Num threads: \[|=+ Run Order =+)"
)
# Lines every log has that say nothing about this run; everything else unrecognised is a message.
_BOILERPLATE = re.compile(
    r"^(?:STARTING!|Note: as the benchmark tool itself affects memory footprint|Number of nodes executed: \d+"
    r"|\d+ nodes observed|(?:Subgraph \(index: \d+[^)]*\) )?(?:Timings \(microseconds\)|Memory \(bytes\)): "
    r"|[#$>]$)"
)
_ALWAYS_MESSAGE = re.compile(r"^#threads used for CPU inference: ")

# Table column headers (lower-cased, spaces removed) -> field names.
_COLUMNS = {
    "nodetype": "node_type", "start": "start_ms", "first": "first_ms", "avgms": "avg_ms",
    "%": "percent", "cdf%": "cdf_percent", "memkb": "mem_kb", "timescalled": "times_called",
    "name": "name", "count": "count", "avg%": "avg_percent",
}
_ROW_REQUIRED = {"node_type", "first_ms", "avg_ms", "percent", "cdf_percent", "mem_kb", "times_called", "name"}
_TYPE_REQUIRED = {"node_type", "count", "avg_ms", "avg_percent", "cdf_percent", "mem_kb", "times_called"}


# --------------------------------------------------------------------------- helpers
def _num(text: str) -> float | None:
    value = float(text)
    return None if math.isnan(value) else value


def _excerpt(line: str, limit: int = 100) -> str:
    line = " ".join(line.split())
    return repr(line if len(line) <= limit else line[: limit - 1] + "…")


def _split_prefix(raw: str) -> tuple[str, str]:
    """Strip whitespace and a log prefix; return (severity, text)."""
    line = raw.strip()
    match = _PREFIX.match(line)
    if not match:
        return "", line
    severity = match.group("sev") or _SEVERITY[match.group("glog")]
    return severity, line[match.end():].strip()


def _parse_stats(count: int, rest: str) -> RunStats:
    if count == 0:  # "count=0" (+ " p5=0 median=0 p95=0": the tool's int NaN) means no runs at all
        return RunStats(0, None, None, None, None, None, None, None, None, None)
    fields = {key: _num(value) for key, value in _STAT_FIELD.findall(rest)}
    curr = fields.get("curr")
    if curr is not None and ("first" not in fields or "(all same)" in rest):
        # Stat::OutputToStream's all_same() branch: every run took `curr`.
        for key in ("first", "min", "max", "avg", "p5", "median", "p95"):
            fields.setdefault(key, curr)
        fields.setdefault("std", 0.0)
    return RunStats(
        count=count, first_us=fields.get("first"), curr_us=curr, min_us=fields.get("min"),
        max_us=fields.get("max"), avg_us=fields.get("avg"), std_us=fields.get("std"),
        p5_us=fields.get("p5"), median_us=fields.get("median"), p95_us=fields.get("p95"),
    )


def _parse_summary(line: str, body: str) -> dict[str, float | None]:
    values: dict[str, float | None] = {}
    for item in body.split(","):
        match = _SUMMARY_ITEM.match(item)
        if not match or match.group(1) not in _SUMMARY_KEYS:
            raise ParseError(f"unreadable benchmark_model timing summary {_excerpt(line)}; pass the tool's unedited output")
        values[_SUMMARY_KEYS[match.group(1)]] = _num(match.group(2))
    if values.get("inference") is None:
        raise ParseError(f"benchmark_model timing summary has no inference time {_excerpt(line)}; pass the unedited output")
    return values


def _header(cells: list[str]) -> list[str] | None:
    names = [_COLUMNS.get(cell.strip("[]").replace(" ", "").lower(), "") for cell in cells]
    return names if "node_type" in names else None


def _cells(line: str) -> list[str]:
    """Tab-separated cells, stripped, without the empty cells the leading tabs make."""
    cells = [cell.strip() for cell in line.split("\t")]
    while cells and not cells[0]:
        cells.pop(0)
    return cells


def _fit(cells: list[str], width: int) -> list[str] | None:
    if len(cells) > width:  # a tab inside the (last) Name column
        cells = cells[: width - 1] + ["\t".join(cells[width - 1:])]
    return cells if len(cells) == width else None


def _number(cell: str) -> float:
    return float(cell.rstrip("%"))


def _table_row(section: str, table: str, header: list[str], cells: list[str],
               line: str) -> OpProfileRow | NodeTypeSummary:
    row = dict(zip(header, cells))
    try:
        if table == "run_order" and _ROW_REQUIRED <= row.keys():
            return OpProfileRow(
                section=section, node_type=row["node_type"], name=row["name"],
                start_ms=_number(row["start_ms"]) if "start_ms" in row else None,
                first_ms=_number(row["first_ms"]), avg_ms=_number(row["avg_ms"]), percent=_number(row["percent"]),
                cdf_percent=_number(row["cdf_percent"]), mem_kb=_number(row["mem_kb"]),
                times_called=int(_number(row["times_called"])),
            )
        if table == "node_type" and _TYPE_REQUIRED <= row.keys():
            return NodeTypeSummary(
                section=section, node_type=row["node_type"], count=int(_number(row["count"])),
                avg_ms=_number(row["avg_ms"]), avg_percent=_number(row["avg_percent"]),
                cdf_percent=_number(row["cdf_percent"]), mem_kb=_number(row["mem_kb"]),
                times_called=int(_number(row["times_called"])),
            )
    except ValueError:
        pass
    raise ParseError(f"unreadable benchmark_model profiling row {_excerpt(line)}; pass the tool's unedited output")


def _close(a: float | None, b: float | None) -> bool:
    """Equal within the 6 significant digits benchmark_model prints averages with."""
    return a is not None and b is not None and math.isclose(a, b, rel_tol=2e-5, abs_tol=0.5)


def _assign_runs(counts: list[RunStats], summary: dict[str, float | None]) -> tuple[RunStats | None, RunStats | None]:
    """(warmup, inference): the last two count lines, or a lone one matched against the summary."""
    if len(counts) >= 2:
        return counts[-2], counts[-1]
    if not counts:
        return None, None
    only = counts[0]
    if _close(only.avg_us, summary.get("inference")):
        return None, only
    if _close(only.avg_us, summary.get("warmup")):
        return only, None
    return None, None


def _raise_failure(lines: list[tuple[str, str]]) -> None:
    """Raise BenchmarkFailedError if the log reports a failure or a crash."""
    for _, text in lines:
        if _MODEL_MISSING.search(text):
            raise BenchmarkFailedError(
                f"benchmark_model could not load the model ({_excerpt(text)}); "
                "check the .tflite file exists at the --graph path on the device"
            )
    for index, (severity, text) in enumerate(lines):
        crash = _CRASH.search(text)
        if crash or severity == "FATAL":
            what = next((g for g in crash.groups() if g), text) if crash else text
            before = next((t for _, t in reversed(lines[:index]) if t and not _CRASH.search(t)), "")
            where = f" after {_excerpt(before)}" if before else " before printing anything"
            raise BenchmarkFailedError(
                f"benchmark_model crashed ({what}){where}; rerun it by hand on the device and check logcat"
            )
    if any(text == _FAILED for _, text in lines):
        errors = [t for s, t in lines if s == "ERROR" and t != _FAILED]
        detail = f"first error: {_excerpt(errors[0])}" if errors else "no error detail was logged"
        raise BenchmarkFailedError(
            f"benchmark_model reported 'Benchmarking failed.' ({detail}); fix the flags or model and rerun"
        )


# --------------------------------------------------------------------------- parser
def parse_benchmark_output(text: str) -> BenchmarkOutput:
    """Parse ``benchmark_model`` stdout+stderr (any TFLite version since 1.x).

    Raises BenchmarkFailedError when the tool failed, crashed or stopped before its
    timing summary, and ParseError when the text is not benchmark_model output.
    """
    if not text or not text.strip():
        raise ParseError("benchmark_model output is empty; pass the tool's full stdout and stderr")
    lines = [_split_prefix(raw) for raw in text.splitlines()]
    _raise_failure(lines)

    params: dict[str, str] = {}
    memory: dict[str, float] = {}
    messages: list[str] = []
    counts: list[RunStats] = []
    rows: list[OpProfileRow] = []
    types: list[NodeTypeSummary] = []
    summary: dict[str, float | None] | None = None
    initialized_us: float | None = None
    section, in_primary = "run", True  # TF 1.x logs print tables with no section header
    table: str | None = None
    header: list[str] | None = None

    for severity, line in lines:
        if not line:
            table = header = None
            continue
        title = _TABLE_TITLE.match(line)
        if title:
            table, header = _TABLES.get(title.group(1), "skip"), None
            continue
        if table is not None:
            if header is None:
                header = _header(_cells(line))
                if header is not None:
                    continue
                table = None  # no column header: not a table after all
            else:
                cells = _fit(_cells(line), len(header)) if "\t" in line else None
                if cells is not None:
                    if table != "skip" and in_primary:
                        item = _table_row(section, table, header, cells, line)
                        (rows if isinstance(item, OpProfileRow) else types).append(item)
                    continue
                table = header = None  # the table ended without a blank line
        matched_section = next((name for pattern, name in _SECTIONS if pattern.match(line)), None)
        if matched_section:
            section, in_primary = matched_section, True
            continue
        if _PRIMARY_GRAPH.match(line) or _OTHER_GRAPH.match(line):
            in_primary = bool(_PRIMARY_GRAPH.match(line))
            continue
        if match := _COUNT.match(line):
            counts.append(_parse_stats(int(match.group(1)), match.group(2)))
            continue
        if _RUNNING.match(line):
            continue
        if match := _SUMMARY.match(line):
            summary = _parse_summary(line, match.group(1))
            continue
        memory_match = next(((m, keys) for pattern, keys in _MEMORY if (m := pattern.match(line))), None)
        if memory_match:
            m, keys = memory_match
            memory.update({k: v for k, g in zip(keys, m.groups()) if (v := _num(g)) is not None})
            continue
        if match := _INITIALIZED.match(line):
            initialized_us = None if (ms := _num(match.group(1))) is None else ms * 1e3
            messages.append(line)
            continue
        if match := _PARAM.match(line):
            params[match.group(1).strip()] = match.group(2)
            if _ALWAYS_MESSAGE.match(line):
                messages.append(line)
            continue
        if _BOILERPLATE.match(line):
            continue
        messages.append(f"{severity}: {line}" if severity in ("WARN", "WARNING", "ERROR") else line)

    if summary is None:
        if any(_SIGNATURE.match(t) or _SUMMARY.match(t) for _, t in lines) or rows or counts:
            last = next(t for _, t in reversed(lines) if t)
            raise BenchmarkFailedError(
                f"benchmark_model output has no timing summary (it ends with {_excerpt(last)}); "
                "the run was cut short: rerun it and check the device log"
            )
        first = next(t for _, t in lines if t)
        raise ParseError(
            f"text is not benchmark_model output (no timing summary or other benchmark lines; "
            f"it starts with {_excerpt(first)}); pass the tool's full stdout and stderr"
        )

    warmup, inference = _assign_runs(counts, summary)
    if inference is not None and inference.count == 0:
        raise BenchmarkFailedError(
            "benchmark_model made no timed runs (count=0, e.g. --dry_run or --num_runs=0); "
            "rerun with --num_runs of 1 or more"
        )
    no_warmup = warmup is not None and warmup.count == 0  # the summary then prints 0, not a time
    return BenchmarkOutput(
        params=params,
        init_us=summary.get("init", initialized_us),
        first_inference_us=None if no_warmup else summary.get("first"),
        warmup_avg_us=None if no_warmup else summary.get("warmup"),
        inference_avg_us=summary.get("inference"),
        warmup=warmup,
        inference=inference,
        memory_mb=memory,
        op_profile=tuple(rows),
        node_type_summary=tuple(types),
        messages=tuple(messages),
    )

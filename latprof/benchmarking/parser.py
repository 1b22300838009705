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
* TFLite 1.x: ``Average inference timings in us: Warmup: …, Init: …, no stats: …`` (later
  ``Inference: …``), ``Running benchmark for N iterations``, parameters as ``Use nnapi : [0]``;
  TensorFlow's own ``tensorflow/tools/benchmark/benchmark_model.cc`` (``2017-11-27
  08:56:45.692227: I file.cc:538] `` prefixes) ends with ``Warmup: …, no stats: …, with
  stats: …``; ``tensorflow/core/util/stat_summarizer.cc`` prints the same tables, some
  without ``[times called]``, and a ``Top by Memory Use`` table. Pasted from a web page the
  tables' tabs may have become runs of spaces.
* Delegate lines: :mod:`latprof.benchmarking._delegates`.

Every figure's origin is kept in ``BenchmarkOutput.sources`` (``line N: what``, N counted
from 1 in the text given), and a figure the log does not give is None, never 0.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from latprof.benchmarking._delegates import DelegateInfo, DelegateLog
from latprof.errors import BenchmarkFailedError, LatprofError, ParseError

__all__ = [
    "RunStats", "OpProfileRow", "NodeTypeSummary", "ProfileSummary", "DelegateInfo", "BenchmarkOutput",
    "parse_benchmark_output",
]


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
    """One row of a "Run Order" (or "Top by …") table, times in ms; columns the table lacks are None."""

    section: str  # "init" (Benchmark Initialization) or "run" (Regular Benchmark Runs)
    node_type: str
    name: str
    start_ms: float | None  # only in older builds
    first_ms: float | None
    avg_ms: float
    percent: float | None
    cdf_percent: float | None
    mem_kb: float | None
    times_called: int | None


@dataclass(frozen=True)
class NodeTypeSummary:
    """One row of a "Summary by node type" table; columns the table lacks are None."""

    section: str
    node_type: str
    count: int | None
    avg_ms: float
    avg_percent: float | None
    cdf_percent: float | None
    mem_kb: float | None
    times_called: int | None


@dataclass(frozen=True)
class ProfileSummary:
    """The op profiler's own trailer of one profile section and graph.

    ``timings`` is its ``Timings (microseconds): count=…`` line (per-run sums of op
    times: for "init" the initialization, for "run" the regular runs), ``memory`` its
    ``Memory (bytes): count=…`` line.
    """

    section: str
    graph: str  # "primary", or the header of a subgraph / delegate-internal block
    timings: RunStats | None = None
    memory: RunStats | None = None
    nodes_executed: int | None = None  # "Number of nodes executed: N"
    nodes_observed: int | None = None  # "N nodes observed"


@dataclass(frozen=True)
class BenchmarkOutput:
    """Everything read from one ``benchmark_model`` log.

    ``op_profile``, ``top_by_time``, ``top_by_memory`` and ``node_type_summary`` hold the
    primary graph only (subgraph and delegate-internal tables would double-count time
    already inside their caller op); ``profiles`` holds every graph's trailer.
    ``summary`` is the final timing line as printed (label -> µs). ``sources`` names, for
    each figure found, the line it came from.
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
    top_by_time: tuple[OpProfileRow, ...] = ()
    top_by_memory: tuple[OpProfileRow, ...] = ()
    profiles: tuple[ProfileSummary, ...] = ()
    delegates: tuple[DelegateInfo, ...] = ()
    summary: dict[str, float | None] = field(default_factory=dict)
    inference_with_stats_avg_us: float | None = None  # TensorFlow's (not Lite's) tool: runs with op stats on
    session_init_ms: float | None = None  # "Initialized session in X ms."
    model_size_mb: float | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def profile(self, section: str, graph: str = "primary") -> ProfileSummary | None:
        """The profiler trailer of ``section`` ("init" or "run") for ``graph``, if printed."""
        return next((p for p in self.profiles if p.section == section and p.graph == graph), None)

    def delegate(self, name: str) -> DelegateInfo | None:
        """What the log says about delegate ``name`` ("xnnpack", "gpu", "nnapi", "hexagon", …)."""
        return next((d for d in self.delegates if d.name == name), None)

    def delegate_in_use(self) -> str:
        """The delegate the graph ran on: an explicitly applied one, else a created one, else "none"."""
        for wanted in ("complete", "partial"):
            for d in self.delegates:
                if d.applied == wanted:
                    return d.name
        created = [d.name for d in self.delegates if (d.created or d.nodes_delegated) and not d.unavailable]
        return created[0] if created else "none"

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON-ready data."""
        return asdict(self)


# --------------------------------------------------------------------------- patterns
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf"

# Log prefixes: TFLite tools/core severity; an absl/glog header ("I0000 00:00:1718.. 123 file.cc:12] ");
# TensorFlow's dated one ("2017-11-27 08:56:45.692227: I file.cc:538] "); Android logcat ("… I tflite  : ").
_PREFIX = re.compile(
    r"^(?:(?P<sev>INFO|WARN|WARNING|ERROR|VERBOSE|FATAL|DEBUG): "
    r"|(?P<glog>[IWEF])\d{4} \d\d:\d\d:[\d.]+\s+\d+ \S+:\d+\] "
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:[\d.]+: (?P<dated>[IWEF]) \S+:\d+\] "
    r"|(?:\d\d-\d\d \d\d:\d\d:[\d.]+\s+\d+\s+\d+ )?(?P<logcat>[VDIWEF]) tflite\s*: )"
)
_SEVERITY = {"W": "WARNING", "E": "ERROR", "F": "FATAL", "I": "INFO", "V": "VERBOSE", "D": "DEBUG"}

_RUNNING = re.compile(r"^Running benchmark for (?:at least |max )?\d+ iterations")
_COUNT = re.compile(r"^count=(\d+)(.*)$")  # anchored: never matches "Timings (microseconds): count=…"
_STAT_FIELD = re.compile(rf"\b(first|curr|min|max|avg|std|p5|median|p95)=({_NUM})")
_SUMMARY = re.compile(r"^(?:Average inference timings|Inference timings) in us: (.*)$")
_SUMMARY_KEYS = {
    "Init": "init", "First inference": "first", "Warmup (avg)": "warmup", "Warmup": "warmup",
    "Inference (avg)": "inference", "Inference": "inference", "no stats": "inference",
    "with stats": "inference_with_stats",
}
_SUMMARY_ITEM = re.compile(rf"^\s*([A-Za-z][A-Za-z ()]*?)\s*:\s*({_NUM})\s*$")
_MEMORY = (
    (re.compile(rf"^Peak memory footprint \(MB\): init=({_NUM}) overall=({_NUM})"),
     ("footprint_init", "footprint_overall")),
    (re.compile(rf"^Memory footprint delta from the start of the tool \(MB\): init=({_NUM}) overall=({_NUM})"),
     ("delta_init", "delta_overall")),
    (re.compile(rf"^Overall peak memory footprint \(MB\) via periodic monitoring: ({_NUM})"), ("peak_periodic",)),
    (re.compile(rf"^- VmRSS\s*: ({_NUM}) MB"), ("vm_rss",)),
    (re.compile(rf"^\+ RssAnnon\s*: ({_NUM}) MB"), ("rss_anon",)),
    (re.compile(rf"^\+ RssFile \+ RssShmem\s*: ({_NUM}) MB"), ("rss_file_shmem",)),
)
_MEMORY_STATUS = re.compile(r"^Memory status at the end of exe\w*:$")
_INITIALIZED = re.compile(rf"^Initialized session in ({_NUM}) ?(ms|s)\.?$")
_MODEL_SIZE = re.compile(rf"^The input model file size \(MB\): ({_NUM})$")
_PARAM = re.compile(r"^([^\t:\[\]]+): \[([^\t]*)\]$")
_SECTIONS = (
    (re.compile(r"^Profiling Info for Benchmark Initialization:"), "init"),
    (re.compile(r"^Operator-wise Profiling Info for Regular Benchmark Runs:"), "run"),
)
_PRIMARY_GRAPH = re.compile(r"^Primary graph\b.*:$")
_OTHER_GRAPH = re.compile(r"^(Subgraph \(index: \d+[^)]*\) \w+|Delegate internal):$")
_TABLE_TITLE = re.compile(r"^=+ (.+?) =+$")
_TABLES = {"Run Order": "run_order", "Top by Computation Time": "top_time", "Top by Memory Use": "top_memory",
           "Summary by node type": "node_type"}  # other titles are skipped
_TRAILER = re.compile(rf"^(?:(Subgraph \(index: \d+[^)]*\)) )?(Timings \(microseconds\)|Memory \(bytes\)): "
                      r"count=(\d+)(.*)$")
_NODES_EXECUTED = re.compile(r"^Number of nodes executed: (\d+)$")
_NODES_OBSERVED = re.compile(r"^(\d+) nodes observed$")

# Failures, most specific first.
_MODEL_MISSING = re.compile(r"Failed to mmap model|Could not open '.*'")  # mmap_allocation.cc
_CRASH = re.compile(
    r"^(?:\S*sh: (?:line \d+: )?\d+ )?(Segmentation fault|Aborted|Bus error|Illegal instruction"
    r"|Floating point exception|Killed)\b"
    r"|(Fatal signal \d+ \(SIG\w+\))|^(terminate called after throwing)"
)
_FAILED = "Benchmarking failed."
# Lines that show the tool ran (so a log with no timing was cut short, rather than not a log at all).
_SIGNATURE = re.compile(
    r"^(?:STARTING!|Running benchmark for|count=\d|Initialized session in|Loaded model "
    r"|Log parameter values verbosely|Graph: \[|Num threads: \[|=+ (?:Run Order|Summary by node type) =+)"
)
# Lines every log has that say nothing about this run; everything else unrecognised is a message.
_BOILERPLATE = re.compile(r"^(?:STARTING!|Note: as the benchmark tool itself affects memory footprint|[#$>]$)")
_ALWAYS_MESSAGE = re.compile(r"^#threads used for CPU inference: ")

# Table column headers (lower-cased, spaces removed) -> field names.
_COLUMNS = {
    "nodetype": "node_type", "start": "start_ms", "first": "first_ms", "avgms": "avg_ms",
    "%": "percent", "cdf%": "cdf_percent", "memkb": "mem_kb", "timescalled": "times_called",
    "name": "name", "count": "count", "avg%": "avg_percent",
}
_ROW_REQUIRED = {"node_type", "avg_ms", "name"}
_TYPE_REQUIRED = {"node_type", "avg_ms", "count"}


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
    letter = match.group("glog") or match.group("dated") or match.group("logcat")
    severity = match.group("sev") or _SEVERITY[letter]
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
    """The summary's items by label as printed; ParseError on an unknown label or no inference time."""
    values: dict[str, float | None] = {}
    for item in body.split(","):
        match = _SUMMARY_ITEM.match(item)
        if not match or match.group(1) not in _SUMMARY_KEYS:
            raise ParseError(f"unreadable benchmark_model timing summary {_excerpt(line)}; pass the tool's unedited output")
        values[match.group(1)] = _num(match.group(2))
    if all(values.get(k) is None for k, v in _SUMMARY_KEYS.items() if v == "inference"):
        raise ParseError(f"benchmark_model timing summary has no inference time {_excerpt(line)}; pass the unedited output")
    return values


def _header(cells: list[str]) -> list[str] | None:
    names = [_COLUMNS.get(cell.strip("[]").replace(" ", "").lower(), "") for cell in cells]
    return names if "node_type" in names else None


def _cells(line: str) -> list[str]:
    """Tab-separated cells (runs of 2+ spaces where a web page turned the tabs into spaces), stripped."""
    parts = line.split("\t") if "\t" in line else re.split(r" {2,}", line)
    cells = [cell.strip() for cell in parts]
    while cells and not cells[0]:
        cells.pop(0)
    return cells


def _fit(cells: list[str], width: int) -> list[str] | None:
    if len(cells) > width:  # a tab inside the (last) Name column
        cells = cells[: width - 1] + ["\t".join(cells[width - 1:])]
    return cells if len(cells) == width else None


def _number(row: dict[str, str], key: str) -> float | None:
    return float(row[key].rstrip("%")) if key in row else None


def _integer(row: dict[str, str], key: str) -> int | None:
    value = _number(row, key)
    return None if value is None else int(value)


def _table_row(section: str, table: str, header: list[str], cells: list[str],
               line: str) -> OpProfileRow | NodeTypeSummary:
    row = dict(zip(header, cells))
    row.pop("", None)
    try:
        if table != "node_type" and _ROW_REQUIRED <= row.keys():
            return OpProfileRow(
                section=section, node_type=row["node_type"], name=row["name"], start_ms=_number(row, "start_ms"),
                first_ms=_number(row, "first_ms"), avg_ms=_number(row, "avg_ms"), percent=_number(row, "percent"),
                cdf_percent=_number(row, "cdf_percent"), mem_kb=_number(row, "mem_kb"),
                times_called=_integer(row, "times_called"),
            )
        if table == "node_type" and _TYPE_REQUIRED <= row.keys():
            return NodeTypeSummary(
                section=section, node_type=row["node_type"], count=_integer(row, "count"),
                avg_ms=_number(row, "avg_ms"), avg_percent=_number(row, "avg_percent"),
                cdf_percent=_number(row, "cdf_percent"), mem_kb=_number(row, "mem_kb"),
                times_called=_integer(row, "times_called"),
            )
    except ValueError:
        pass
    raise ParseError(f"unreadable benchmark_model profiling row {_excerpt(line)}; pass the tool's unedited output")


def _close(a: float | None, b: float | None) -> bool:
    """Equal within the 6 significant digits benchmark_model prints averages with."""
    return a is not None and b is not None and math.isclose(a, b, rel_tol=2e-5, abs_tol=0.5)


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
_SECTION_TITLE = {"init": "Benchmark Initialization", "run": "Regular Benchmark Runs"}


class _Reader:
    """Walks a log line by line, keeping every figure and the line it came from."""

    def __init__(self) -> None:
        self.params: dict[str, str] = {}
        self.memory: dict[str, float] = {}
        self.messages: list[str] = []
        self.counts: list[tuple[int, str, RunStats]] = []  # (line, "Running benchmark" line before it, stats)
        self.tables: dict[str, list] = {"run_order": [], "top_time": [], "top_memory": [], "node_type": []}
        self.summary: dict[str, float | None] | None = None
        self.scalars: dict[str, float | None] = {}
        self.profiles: dict[tuple[str, str], dict[str, Any]] = {}
        self.delegates = DelegateLog()
        self.sources: dict[str, str] = {}
        self.section, self.graph = "run", "primary"  # TF 1.x logs print tables with no section header
        self.table: str | None = None
        self.header: list[str] | None = None
        self.running = ""

    def where(self, lineno: int, what: str) -> str:
        return f"line {lineno}: {what}"

    def section_name(self) -> str:
        graph = "" if self.graph == "primary" else f", {self.graph}"
        return f"{_SECTION_TITLE[self.section]}{graph}"

    # -- tables -------------------------------------------------------------------------
    def table_line(self, lineno: int, line: str) -> bool:
        """Consume a table title, header or row; False when ``line`` is not part of a table."""
        if title := _TABLE_TITLE.match(line):
            self.table, self.header = _TABLES.get(title.group(1), "skip"), None
            return True
        if self.table is None:
            return False
        if self.header is None:
            self.header = _header(_cells(line))
            if self.header is not None:
                return True
            self.table = None  # no column header: not a table after all
            return False
        cells = _fit(_cells(line), len(self.header))
        if cells is None:
            self.table = self.header = None  # the table ended without a blank line
            return False
        if self.table != "skip" and self.graph == "primary":
            self.tables[self.table].append(_table_row(self.section, self.table, self.header, cells, line))
            key = f"{self.table}.{self.section}"
            first = self.sources.get(key, f"lines {lineno}-").split("-")[0]
            self.sources[key] = f"{first}-{lineno}: {self.table.replace('_', ' ')} table of {self.section_name()}"
        return True

    # -- profiler trailers ------------------------------------------------------------------
    def profile_line(self, lineno: int, line: str) -> bool:
        if match := _TRAILER.match(line):
            graph = match.group(1) or self.graph
            kind = "timings" if match.group(2).startswith("Timings") else "memory"
            stats = _parse_stats(int(match.group(3)), match.group(4))
            self.profiles.setdefault((self.section, graph), {})[kind] = stats
            self.sources[f"profiles.{self.section}.{graph}.{kind}"] = self.where(
                lineno, f"op profiler's {match.group(2)} line of {_SECTION_TITLE[self.section]}")
            return True
        for pattern, kind in ((_NODES_EXECUTED, "nodes_executed"), (_NODES_OBSERVED, "nodes_observed")):
            if match := pattern.match(line):
                self.profiles.setdefault((self.section, self.graph), {})[kind] = int(match.group(1))
                return True
        return False

    def structure_line(self, line: str) -> bool:
        """Section and graph headers of the op profile."""
        section = next((name for pattern, name in _SECTIONS if pattern.match(line)), None)
        if section:
            self.section, self.graph = section, "primary"
            return True
        if _PRIMARY_GRAPH.match(line):
            self.graph = "primary"
            return True
        if match := _OTHER_GRAPH.match(line):
            self.graph = match.group(1)
            return True
        return False

    # -- timings ------------------------------------------------------------------------
    def timing_line(self, lineno: int, line: str) -> bool:
        if match := _COUNT.match(line):
            self.counts.append((lineno, self.running, _parse_stats(int(match.group(1)), match.group(2))))
            return True
        if _RUNNING.match(line):
            self.running = line
            return True
        if match := _SUMMARY.match(line):
            self.summary = _parse_summary(line, match.group(1))
            self.sources["summary"] = self.where(lineno, "timing summary")
            return True
        return False

    def scalar_line(self, lineno: int, line: str) -> bool:
        """Memory, session init and model size lines; True when ``line`` was one."""
        for pattern, keys in _MEMORY:
            if match := pattern.match(line):
                for key, text in zip(keys, match.groups()):
                    if (value := _num(text)) is not None:
                        self.memory[key] = value
                        self.sources[f"memory_mb.{key}"] = self.where(lineno, line.split(":")[0].split("=")[0].strip())
                return True
        if _MEMORY_STATUS.match(line):
            return True
        if match := _INITIALIZED.match(line):
            value = _num(match.group(1))
            self.scalars["session_init_ms"] = None if value is None else value * (1e3 if match.group(2) == "s" else 1)
            self.sources["session_init_ms"] = self.where(lineno, "Initialized session line")
            self.messages.append(line)
            return True
        if match := _MODEL_SIZE.match(line):
            self.scalars["model_size_mb"] = _num(match.group(1))
            self.sources["model_size_mb"] = self.where(lineno, "input model file size line")
            self.messages.append(line)
            return True
        return False

    def other_line(self, severity: str, line: str) -> None:
        if match := _PARAM.match(line):
            key = match.group(1).strip()
            self.params[key] = match.group(2)
            if self.delegates.param(key, match.group(2)) or _ALWAYS_MESSAGE.match(line):
                self.messages.append(line)
            return
        self.delegates.line(line)
        if not _BOILERPLATE.match(line):
            self.messages.append(f"{severity}: {line}" if severity in ("WARN", "WARNING", "ERROR") else line)

    def read(self, lines: list[tuple[str, str]]) -> None:
        for lineno, (severity, line) in enumerate(lines, start=1):
            if not line:
                self.table = self.header = None
                continue
            if self.table_line(lineno, line) or self.structure_line(line) or self.profile_line(lineno, line):
                continue
            if self.timing_line(lineno, line) or self.scalar_line(lineno, line):
                continue
            self.other_line(severity, line)

    # -- results ------------------------------------------------------------------------
    def assign_runs(self, summary: dict[str, float | None]) -> tuple[RunStats | None, RunStats | None, RunStats | None]:
        """(warmup, inference, inference with stats): count lines matched to the summary by their averages.

        Lines no summary figure matches fall back to their order (the last two are warm-up and
        inference, the warm-up is the line before the inference); a lone unmatched line stays
        unassigned, as it could be either.
        """
        left = list(self.counts)
        found: dict[str, tuple[int, str, RunStats]] = {}
        for key in ("inference", "inference_with_stats", "warmup"):
            match = next((c for c in reversed(left) if _close(c[2].avg_us, summary.get(key))), None)
            if match is not None:
                found[key] = match
                left.remove(match)
        if "inference" not in found and len(left) >= 2:
            found.setdefault("warmup", left[-2])
            found["inference"] = left[-1]
        elif "inference" in found and "warmup" not in found:  # the warm-up is printed just before
            before = [c for c in left if c[0] < found["inference"][0]]
            if before:
                found["warmup"] = before[-1]
        for key, (lineno, running, _) in found.items():
            after = f" after '{_RUNNING.match(running).group(0)}'" if running else ""
            self.sources[key] = self.where(lineno, f"count= line{after}")
        pick = lambda key: found[key][2] if key in found else None  # noqa: E731
        return pick("warmup"), pick("inference"), pick("inference_with_stats")

    def summary_values(self) -> dict[str, float | None]:
        """The summary by field name, with the source of each figure."""
        values: dict[str, float | None] = {}
        for label, value in (self.summary or {}).items():
            key = _SUMMARY_KEYS[label]
            values[key] = value
            self.sources[f"summary.{key}"] = f"{self.sources['summary']} ({label!r})"
        return values

    def profile_summaries(self) -> tuple[ProfileSummary, ...]:
        return tuple(ProfileSummary(section=s, graph=g, **kw) for (s, g), kw in self.profiles.items())


def _no_timing(lines: list[tuple[str, str]], reader: _Reader) -> LatprofError:
    """The error for a log without a timing summary or profiler timing line."""
    last = next(t for _, t in reversed(lines) if t)
    if reader.counts:
        return BenchmarkFailedError(
            f"benchmark_model output has no timing summary (it ends with {_excerpt(last)}); "
            "the run was cut short: rerun it and check the device log"
        )
    if any(_SIGNATURE.match(t) for _, t in lines) or reader.tables["run_order"] or reader.tables["node_type"]:
        return ParseError(
            f"benchmark_model output has no timing at all (no 'Inference timings in us' summary, count= line or "
            f"profiler 'Timings (microseconds)' line; it ends with {_excerpt(last)}); pass a log that reaches them"
        )
    first = next(t for _, t in lines if t)
    return ParseError(
        f"text is not benchmark_model output (no timing summary or other benchmark lines; "
        f"it starts with {_excerpt(first)}); pass the tool's full stdout and stderr"
    )


def parse_benchmark_output(text: str) -> BenchmarkOutput:
    """Parse ``benchmark_model`` stdout+stderr (any TFLite version since 1.x), or an excerpt of it.

    An excerpt needs the timing summary, or the op profiler's ``Timings (microseconds)``
    line of the regular runs (which then gives the run statistics). Raises
    BenchmarkFailedError when the tool failed, crashed or stopped before its timing
    summary, and ParseError when the text holds no timing or is not benchmark_model output.
    """
    if not text or not text.strip():
        raise ParseError("benchmark_model output is empty; pass the tool's full stdout and stderr")
    lines = [_split_prefix(raw) for raw in text.splitlines()]
    _raise_failure(lines)
    reader = _Reader()
    reader.read(lines)
    profiled = reader.profiles.get(("run", "primary"), {}).get("timings")
    if reader.summary is None and (profiled is None or profiled.count == 0):
        raise _no_timing(lines, reader)
    summary = reader.summary_values()
    if reader.summary is None:  # an op-profiling excerpt: the profiler timed the regular runs
        warmup, inference, with_stats = None, profiled, None
        summary = {"inference": profiled.avg_us}
        reader.sources["inference"] = reader.sources["profiles.run.primary.timings"]
        reader.sources["summary.inference"] = reader.sources["inference"] + " (avg=)"
    else:
        warmup, inference, with_stats = reader.assign_runs(summary)
    if inference is not None and inference.count == 0:
        raise BenchmarkFailedError(
            "benchmark_model made no timed runs (count=0, e.g. --dry_run or --num_runs=0); "
            "rerun with --num_runs of 1 or more"
        )
    no_warmup = warmup is not None and warmup.count == 0  # the summary then prints 0, not a time
    init_us = summary.get("init")
    if init_us is None and reader.scalars.get("session_init_ms") is not None:
        init_us = reader.scalars["session_init_ms"] * 1e3
        reader.sources["summary.init"] = reader.sources["session_init_ms"]
    return BenchmarkOutput(
        params=reader.params,
        init_us=init_us,
        first_inference_us=None if no_warmup else summary.get("first"),
        warmup_avg_us=None if no_warmup else summary.get("warmup"),
        inference_avg_us=summary.get("inference"),
        warmup=warmup,
        inference=inference,
        memory_mb=reader.memory,
        op_profile=tuple(reader.tables["run_order"]),
        node_type_summary=tuple(reader.tables["node_type"]),
        messages=tuple(reader.messages),
        top_by_time=tuple(reader.tables["top_time"]),
        top_by_memory=tuple(reader.tables["top_memory"]),
        profiles=reader.profile_summaries(),
        delegates=reader.delegates.result(),
        summary=dict(reader.summary or {}),
        inference_with_stats_avg_us=summary.get("inference_with_stats"),
        session_init_ms=reader.scalars.get("session_init_ms"),
        model_size_mb=reader.scalars.get("model_size_mb"),
        sources=dict(sorted(reader.sources.items())),
    )

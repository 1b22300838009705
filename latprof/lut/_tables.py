"""Lookup-table rows in the results store: entries, builds and calibration measurements.

Tables (created by the store's migration 2): ``lut_entries`` (one row per
device, space and layer key), ``lut_builds`` (which space parameters a table
was built for, and whether the build finished) and ``lut_calibration`` (whole
architectures measured end to end, used to fit the end-to-end correction).
Every row carries the JSON ``settings`` it was measured with. Each write is one
transaction, so a row is stored whole or not at all.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from latprof.benchmarking.record import LatencyStats
from latprof.devices import DEFAULT_DELEGATE, delegate_name
from latprof.errors import LookupTableError
from latprof.space import WRITER_DTYPES

__all__ = [
    "LutEntry", "CalibrationRow", "now", "stored_keys", "add_entry", "load_entries", "load_table",
    "add_calibration", "load_calibration", "stored_calibration", "start_build", "finish_build",
    "finished_builds", "check_settings", "delete_table", "SETTING_KEYS", "IDENTITY_DEFAULTS", "identity",
    "table_identity", "TABLE_DTYPES", "table_space",
]

TABLE_DTYPES = WRITER_DTYPES  # what a table can be measured in: the data types the flatbuffer writer emits


def table_space(space: str, dtype: str = "float32") -> str:
    """The name a table (and the predictor fitted on it) is stored under: the space's for float32 (as before data
    types were tables of their own), ``SPACE:DTYPE`` otherwise, so that a device's float32 and int8 tables of one
    space live side by side."""
    return space if dtype == "float32" else f"{space}:{dtype}"


# Settings that change a latency: a table (or calibration set) must not mix rows that differ in these.
SETTING_KEYS = ("method", "runtime", "runtime_version", "threads", "warmup_runs", "num_runs", "core_mask",
                "delegate", "binary", "scheduling", "probe", "dtype")


# Settings that make a table a different table: a table built with one thread count or delegate is never
# used for another. Rows stored before a setting was recorded read as its old default.
IDENTITY_DEFAULTS: dict[str, Any] = {"threads": 1, "delegate": DEFAULT_DELEGATE, "dtype": "float32"}


def identity(settings: dict[str, Any]) -> dict[str, Any]:
    """The identity settings of a row (threads, delegate, data type), old defaults filled in, delegate names normalised."""
    out = {key: settings.get(key) if settings.get(key) is not None else default
           for key, default in IDENTITY_DEFAULTS.items()}
    out["delegate"] = delegate_name(out["delegate"])
    return out


def table_identity(conn: sqlite3.Connection, device: str, space: str,
                   table: str = "lut_entries") -> dict[str, Any] | None:
    """The identity settings a device's table (or calibration set) was measured with; None when there is none."""
    row = conn.execute(f"SELECT settings FROM {table} WHERE device = ? AND space = ? LIMIT 1",
                       (device, space)).fetchone()
    return None if row is None else identity(json.loads(row[0]))


def _check_identity(conn: sqlite3.Connection, device: str, space: str, wanted: dict[str, Any] | None,
                    table: str = "lut_entries") -> None:
    """Raise LookupTableError when the stored table was measured with other identity settings than ``wanted``."""
    stored = table_identity(conn, device, space, table)
    if not wanted or stored is None:
        return
    asked = identity({**stored, **{k: v for k, v in wanted.items() if v is not None}})
    diff = [f"{k}={stored[k]!r} (asked {asked[k]!r})" for k in IDENTITY_DEFAULTS if stored[k] != asked[k]]
    if diff:
        raise LookupTableError(
            f"the lookup table of device {device} (space {space}) was measured with {', '.join(diff)}; "
            f"it is not used for other settings: build one with `latprof build-lut --device {device} --rebuild` "
            "and those settings"
        )


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class LutEntry:
    """One measured layer configuration (latencies in ms)."""

    device: str
    space: str
    layer_key: str
    median_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    runs: int
    settings: dict[str, Any]
    fingerprint: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    created_at: str = ""

    @classmethod
    def from_stats(cls, device: str, space: str, key: str, stats: LatencyStats, settings: dict[str, Any],
                   fingerprint: dict[str, Any], warnings: list[str]) -> "LutEntry":
        return cls(device, space, key, stats.headline_ms, _or(stats.mean_ms, stats.headline_ms),
                   _or(stats.std_ms, 0.0), _or(stats.min_ms, stats.headline_ms), stats.count, settings,
                   fingerprint, warnings, now())


@dataclass(frozen=True)
class CalibrationRow:
    """One architecture of the calibration set, measured end to end (latencies in ms)."""

    device: str
    space: str
    arch: str  # canonical architecture string
    params: dict[str, Any]  # the space parameters it was sampled from
    median_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    runs: int
    settings: dict[str, Any]
    fingerprint: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    created_at: str = ""


def _or(value: float | None, default: float) -> float:
    return default if value is None else float(value)


_STAT_COLUMNS = "median_ms, mean_ms, std_ms, min_ms, runs, settings, fingerprint, warnings, created_at"


def stored_keys(conn: sqlite3.Connection, device: str, space: str) -> set[str]:
    rows = conn.execute("SELECT layer_key FROM lut_entries WHERE device = ? AND space = ?", (device, space))
    return {r[0] for r in rows}


def add_entry(conn: sqlite3.Connection, e: LutEntry) -> None:
    with conn:
        conn.execute(
            f"INSERT INTO lut_entries (device, space, layer_key, {_STAT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (e.device, e.space, e.layer_key, e.median_ms, e.mean_ms, e.std_ms, e.min_ms, e.runs,
             json.dumps(e.settings), json.dumps(e.fingerprint), json.dumps(e.warnings), e.created_at or now()),
        )


def load_entries(conn: sqlite3.Connection, device: str, space: str,
                 settings: dict[str, Any] | None = None) -> list[LutEntry]:
    """A device's table rows; with ``settings`` (threads, delegate) it must have been measured with them."""
    _check_identity(conn, device, space, settings)
    rows = conn.execute(
        f"SELECT device, space, layer_key, {_STAT_COLUMNS} FROM lut_entries WHERE device = ? AND space = ? "
        "ORDER BY rowid", (device, space),
    ).fetchall()
    return [LutEntry(*r[:8], json.loads(r[8]), json.loads(r[9]), json.loads(r[10]), r[11]) for r in rows]


def load_table(conn: sqlite3.Connection, device: str, space: str,
               settings: dict[str, Any] | None = None) -> dict[str, float]:
    """``{layer_key: median ms}`` of a device's table; raises LookupTableError when it is empty, or
    when ``settings`` (threads, delegate) differ from those it was measured with."""
    _check_identity(conn, device, space, settings)
    table = dict(conn.execute("SELECT layer_key, median_ms FROM lut_entries WHERE device = ? AND space = ?",
                              (device, space)).fetchall())
    if not table:
        raise LookupTableError(f"no lookup table for device {device} (space {space}); "
                               f"run `latprof build-lut --device {device}`")
    return table


def delete_table(conn: sqlite3.Connection, device: str, space: str) -> None:
    """Drop a device's table, builds and calibration set for ``space`` (one transaction)."""
    with conn:
        for table in ("lut_entries", "lut_builds", "lut_calibration"):
            conn.execute(f"DELETE FROM {table} WHERE device = ? AND space = ?", (device, space))


def add_calibration(conn: sqlite3.Connection, c: CalibrationRow) -> None:
    with conn:
        conn.execute(
            f"INSERT INTO lut_calibration (device, space, arch, params, {_STAT_COLUMNS}) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (c.device, c.space, c.arch, json.dumps(c.params, sort_keys=True), c.median_ms, c.mean_ms, c.std_ms,
             c.min_ms, c.runs, json.dumps(c.settings), json.dumps(c.fingerprint), json.dumps(c.warnings),
             c.created_at or now()),
        )


def stored_calibration(conn: sqlite3.Connection, device: str, space: str) -> set[str]:
    rows = conn.execute("SELECT arch FROM lut_calibration WHERE device = ? AND space = ?", (device, space))
    return {r[0] for r in rows}


def load_calibration(conn: sqlite3.Connection, device: str, space: str) -> list[CalibrationRow]:
    rows = conn.execute(
        f"SELECT device, space, arch, params, {_STAT_COLUMNS} FROM lut_calibration "
        "WHERE device = ? AND space = ? ORDER BY rowid", (device, space),
    ).fetchall()
    return [CalibrationRow(r[0], r[1], r[2], json.loads(r[3]), *r[4:9], json.loads(r[9]), json.loads(r[10]),
                           json.loads(r[11]), r[12]) for r in rows]


def start_build(conn: sqlite3.Connection, device: str, space: str, params: dict[str, Any], entries: int,
                settings: dict[str, Any]) -> None:
    """Record that a table for ``params`` is being built (kept as is when it already exists)."""
    with conn:
        conn.execute(
            "INSERT OR IGNORE INTO lut_builds (device, space, params, entries, settings, started_at) "
            "VALUES (?,?,?,?,?,?)",
            (device, space, json.dumps(params, sort_keys=True), entries, json.dumps(settings), now()),
        )


def finish_build(conn: sqlite3.Connection, device: str, space: str, params: dict[str, Any]) -> None:
    with conn:
        conn.execute("UPDATE lut_builds SET finished_at = ? WHERE device = ? AND space = ? AND params = ?",
                     (now(), device, space, json.dumps(params, sort_keys=True)))


def finished_builds(conn: sqlite3.Connection, device: str, space: str) -> list[dict[str, Any]]:
    """Space parameters of every finished build of a device's table."""
    rows = conn.execute("SELECT params FROM lut_builds WHERE device = ? AND space = ? AND finished_at IS NOT NULL "
                        "ORDER BY started_at", (device, space))
    return [json.loads(r[0]) for r in rows]


def check_settings(conn: sqlite3.Connection, table: str, device: str, space: str, settings: dict[str, Any],
                   keys: tuple[str, ...] = SETTING_KEYS, *, ops: bool | None = None) -> None:
    """Raise LookupTableError if stored rows of ``table`` were measured with other latency-changing settings.

    In ``lut_entries`` layer micro-models and single operators (keys ``op:...``) are measured by two methods:
    with ``ops`` (True for operator rows, False for layer rows) the method is compared with rows of the same
    kind only, every other setting with any row.
    """
    if ops is not None and "method" in keys:
        check_settings(conn, table, device, space, settings, tuple(k for k in keys if k != "method"))
        keys, kind = ("method",), f" AND (layer_key LIKE 'op:%') = {int(ops)}"
    else:
        kind = ""
    row = conn.execute(f"SELECT settings FROM {table} WHERE device = ? AND space = ?{kind} LIMIT 1",
                       (device, space)).fetchone()
    if row is None:
        return
    stored = json.loads(row[0])
    stored, now_settings = {**stored, **identity(stored)}, {**settings, **identity(settings)}
    diff = [f"{k}={stored.get(k)!r} (now {now_settings.get(k)!r})" for k in keys
            if k in settings and stored.get(k) != now_settings.get(k)]
    if diff:
        what = "lookup table" if table == "lut_entries" else "calibration set"
        raise LookupTableError(
            f"the {what} of device {device} (space {space}) was measured with {', '.join(diff)}; "
            f"run again with the same settings, or pass --rebuild to measure it anew"
        )

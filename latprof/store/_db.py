"""SQLite store for measurements (and, later, lookup tables and predictors).

Every write is one transaction: a result is stored whole or not at all. The
schema is versioned in ``PRAGMA user_version`` and migrated forward on open.
Tables and JSON columns only: nothing is pickled, so a library upgrade never
makes a stored result unreadable.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from latprof.benchmarking.record import LatencyStats, Measurement
from latprof.errors import StoreError

__all__ = ["Store", "StoredPredictor", "default_db_path", "SCHEMA_VERSION"]

_MIGRATIONS: list[str] = [
    # version 1: measurements and their op profiles
    """
    CREATE TABLE measurements (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        source TEXT NOT NULL,
        model_name TEXT NOT NULL,
        model_sha256 TEXT,
        model_bytes INTEGER,
        device TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        runtime TEXT NOT NULL,
        runtime_version TEXT NOT NULL,
        settings TEXT NOT NULL,
        command TEXT NOT NULL,
        count INTEGER NOT NULL,
        median_ms REAL, mean_ms REAL, std_ms REAL, p5_ms REAL, p95_ms REAL, min_ms REAL, max_ms REAL,
        init_us REAL,
        first_inference_us REAL,
        run_us TEXT,
        memory_mb TEXT NOT NULL,
        state_before TEXT NOT NULL,
        state_after TEXT NOT NULL,
        warnings TEXT NOT NULL
    );
    CREATE INDEX measurements_device ON measurements(device);
    CREATE INDEX measurements_model ON measurements(model_name);
    CREATE TABLE op_profile (
        measurement_id INTEGER NOT NULL REFERENCES measurements(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        node_type TEXT NOT NULL,
        name TEXT NOT NULL,
        first_ms REAL,
        avg_ms REAL NOT NULL,
        PRIMARY KEY (measurement_id, position)
    );
    """,
    # version 2: latency lookup tables, calibration measurements and fitted predictors (latprof.lut/.predict)
    """
    CREATE TABLE lut_entries (
        device TEXT NOT NULL,
        space TEXT NOT NULL,
        layer_key TEXT NOT NULL,
        median_ms REAL NOT NULL, mean_ms REAL NOT NULL, std_ms REAL NOT NULL, min_ms REAL NOT NULL,
        runs INTEGER NOT NULL,
        settings TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        warnings TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (device, space, layer_key)
    );
    CREATE TABLE lut_builds (
        device TEXT NOT NULL,
        space TEXT NOT NULL,
        params TEXT NOT NULL,
        entries INTEGER NOT NULL,
        settings TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        PRIMARY KEY (device, space, params)
    );
    CREATE TABLE lut_calibration (
        device TEXT NOT NULL,
        space TEXT NOT NULL,
        arch TEXT NOT NULL,
        params TEXT NOT NULL,
        median_ms REAL NOT NULL, mean_ms REAL NOT NULL, std_ms REAL NOT NULL, min_ms REAL NOT NULL,
        runs INTEGER NOT NULL,
        settings TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        warnings TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (device, space, arch)
    );
    CREATE TABLE predictors (
        id INTEGER PRIMARY KEY,
        device TEXT NOT NULL,
        space TEXT NOT NULL,
        format TEXT NOT NULL,
        coefficients TEXT NOT NULL,
        report TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX predictors_device ON predictors(device, space);
    """,
    # version 3: architecture searches and their trials, one row per trial as it finishes (latprof.search)
    """
    CREATE TABLE searches (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        out_dir TEXT,
        config TEXT NOT NULL
    );
    CREATE TABLE search_trials (
        search_id INTEGER NOT NULL REFERENCES searches(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        tokens TEXT NOT NULL,
        arch TEXT NOT NULL,
        status TEXT NOT NULL,
        latency_ms REAL,
        accuracy REAL,
        reward REAL,
        error TEXT,
        seconds REAL NOT NULL,
        reused_from INTEGER,
        finished_at TEXT NOT NULL,
        PRIMARY KEY (search_id, idx)
    );
    """,
    # version 4: everything benchmark_model printed (warm-up, profiler timings, tables, delegates, sources), as JSON
    """
    ALTER TABLE measurements ADD COLUMN benchmark_output TEXT;
    """,
    # version 5: figures at the device's reference speed, ratios to a reference model, and the references
    # themselves (latprof.speed)
    """
    ALTER TABLE measurements ADD COLUMN reference_speed TEXT;
    ALTER TABLE measurements ADD COLUMN reference_ratio TEXT;
    CREATE TABLE speed_references (
        device TEXT NOT NULL,
        space TEXT NOT NULL,
        identity TEXT NOT NULL,
        probe_ms REAL NOT NULL,
        beta REAL NOT NULL,
        source TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (device, space, identity)
    );
    """,
]
SCHEMA_VERSION = len(_MIGRATIONS)

_STAT_FIELDS = ("median_ms", "mean_ms", "std_ms", "p5_ms", "p95_ms", "min_ms", "max_ms")


def default_db_path() -> Path:
    """``$LATPROF_DB``, else ``$XDG_DATA_HOME/latprof/latprof.db`` (``~/.local/share/...``)."""
    if os.environ.get("LATPROF_DB"):
        return Path(os.environ["LATPROF_DB"])
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "latprof" / "latprof.db"


class StoredPredictor(NamedTuple):
    """One stored predictor: its JSON document (the store does not interpret ``format``) and its fit report."""

    id: int
    device: str
    space: str
    format: str
    document: dict[str, Any]
    report: dict[str, Any]
    created_at: str


class Store:
    """A latprof database. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: Path | str | None = None, *, writable: bool = True) -> None:
        """Open (creating and migrating) the database at ``path``, default :func:`default_db_path`.

        With ``writable`` (the default) a write is tried at once, so a job never runs only to lose its
        result; commands that only read pass ``writable=False``, which also opens a read-only database.
        """
        self.path = Path(path) if path is not None else default_db_path()
        try:
            try:
                self._open()
            except sqlite3.OperationalError:
                if writable or not self.path.is_file():
                    raise
                self._open_read_only()
            if writable:
                self._check_writable()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open results database {self.path} ({exc}); make it and its folder writable, "
                             "or pass another --db") from None
        except OSError as exc:
            reason = "part of its folder is a file" if isinstance(exc, (FileExistsError, NotADirectoryError)) else exc.strerror
            raise StoreError(f"cannot create results database {self.path} ({reason}); pass a writable --db") from None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=30)
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._migrate()

    def _open_read_only(self) -> None:
        if hasattr(self, "_conn"):
            self._conn.close()
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        try:
            self._conn = sqlite3.connect(uri, uri=True)
            self._check_schema(self._conn.execute("PRAGMA user_version").fetchone()[0], writable=False)
        except sqlite3.OperationalError:
            # A WAL database in a folder we cannot write has no shared-memory file: read it as immutable.
            self._conn = sqlite3.connect(f"{uri}&immutable=1", uri=True)
            self._check_schema(self._conn.execute("PRAGMA user_version").fetchone()[0], writable=False)

    def _check_writable(self) -> None:
        """A real write (the schema version, rewritten), rolled back: SQLite refuses it on a read-only file."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.OperationalError as exc:
            self._conn.close()
            raise StoreError(f"cannot write results database {self.path} ({exc}); make it and its folder writable, "
                             "or pass another --db") from None
        else:
            self._conn.rollback()

    def _check_schema(self, version: int, writable: bool) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer latprof (schema {version} > {SCHEMA_VERSION}); upgrade latprof"
            )
        if version < SCHEMA_VERSION and not writable:
            raise StoreError(f"{self.path} has schema {version} and is read-only; make it writable once so latprof "
                             f"can upgrade it to schema {SCHEMA_VERSION}")

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        self._check_schema(version, writable=True)
        for target in range(version, SCHEMA_VERSION):
            with self._conn:
                self._conn.executescript(_MIGRATIONS[target])
                self._conn.execute(f"PRAGMA user_version = {target + 1}")

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection, for subpackages that keep their own tables here."""
        return self._conn

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_measurement(self, m: Measurement) -> int:
        """Store a measurement with its op profile in one transaction; returns its id."""
        row = {
            "created_at": m.created_at, "source": m.source, "model_name": m.model_name,
            "model_sha256": m.model_sha256, "model_bytes": m.model_bytes, "device": m.device,
            "fingerprint": json.dumps(m.fingerprint), "runtime": m.runtime, "runtime_version": m.runtime_version,
            "settings": json.dumps(m.settings), "command": m.command, "count": m.stats.count,
            **{name: getattr(m.stats, name) for name in _STAT_FIELDS},
            "init_us": m.init_us, "first_inference_us": m.first_inference_us,
            "run_us": json.dumps(m.run_us) if m.run_us is not None else None,
            "memory_mb": json.dumps(m.memory_mb), "state_before": json.dumps(m.state_before),
            "state_after": json.dumps(m.state_after), "warnings": json.dumps(m.warnings),
            "benchmark_output": json.dumps(m.benchmark_output) if m.benchmark_output is not None else None,
            "reference_speed": json.dumps(m.reference_speed) if m.reference_speed is not None else None,
            "reference_ratio": json.dumps(m.reference_ratio) if m.reference_ratio is not None else None,
        }
        columns = ", ".join(row)
        placeholders = ", ".join(f":{name}" for name in row)
        with self._conn:
            cursor = self._conn.execute(f"INSERT INTO measurements ({columns}) VALUES ({placeholders})", row)
            measurement_id = int(cursor.lastrowid)
            self._conn.executemany(
                "INSERT INTO op_profile VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (measurement_id, i, op["node_type"], op["name"], op.get("first_ms"), op["avg_ms"])
                    for i, op in enumerate(m.op_profile)
                ],
            )
        return measurement_id

    def measurements(self, device: str | None = None, model: str | None = None) -> list[Measurement]:
        """Stored measurements, oldest first, optionally filtered by device and model name (substring)."""
        query, params = "SELECT * FROM measurements WHERE 1=1", []
        if device:
            query += " AND device = ?"
            params.append(device)
        if model:
            query += " AND model_name LIKE ?"
            params.append(f"%{model}%")
        self._conn.row_factory = sqlite3.Row
        try:
            rows = self._conn.execute(query + " ORDER BY id", params).fetchall()
            return [self._to_measurement(row) for row in rows]
        finally:
            self._conn.row_factory = None

    def _to_measurement(self, row: sqlite3.Row) -> Measurement:
        ops = self._conn.execute(
            "SELECT node_type, name, first_ms, avg_ms FROM op_profile WHERE measurement_id = ? ORDER BY position",
            (row["id"],),
        ).fetchall()
        return Measurement(
            id=row["id"], created_at=row["created_at"], source=row["source"], model_name=row["model_name"],
            model_sha256=row["model_sha256"], model_bytes=row["model_bytes"], device=row["device"],
            fingerprint=json.loads(row["fingerprint"]), runtime=row["runtime"],
            runtime_version=row["runtime_version"], settings=json.loads(row["settings"]), command=row["command"],
            stats=LatencyStats(count=row["count"], **{name: row[name] for name in _STAT_FIELDS}),
            init_us=row["init_us"], first_inference_us=row["first_inference_us"],
            run_us=json.loads(row["run_us"]) if row["run_us"] else None,
            op_profile=[dict(node_type=o[0], name=o[1], first_ms=o[2], avg_ms=o[3]) for o in ops],
            memory_mb=json.loads(row["memory_mb"]), state_before=json.loads(row["state_before"]),
            state_after=json.loads(row["state_after"]), warnings=json.loads(row["warnings"]),
            benchmark_output=json.loads(row["benchmark_output"]) if row["benchmark_output"] else None,
            reference_speed=json.loads(row["reference_speed"]) if row["reference_speed"] else None,
            reference_ratio=json.loads(row["reference_ratio"]) if row["reference_ratio"] else None,
        )

    def save_predictor(self, device: str, space: str, document: dict[str, Any], report: dict[str, Any]) -> int:
        """Store a fitted predictor for ``device`` and ``space`` (``"*"``: any model); returns its id.

        ``document["format"]`` names how to load it; ``created_at`` is ``document["created_at"]``, else now (UTC).
        """
        if not isinstance(document, dict) or not document.get("format"):
            raise StoreError(f"the predictor document for {device} ({space}) has no 'format'; set document['format'] "
                             f"to the format that loads it")
        created_at = document.get("created_at") or datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._conn:
            cursor = self._conn.execute(
                "INSERT INTO predictors (device, space, format, coefficients, report, created_at) VALUES (?,?,?,?,?,?)",
                (device, space, str(document["format"]), json.dumps(document), json.dumps(report), created_at),
            )
        return int(cursor.lastrowid)

    def latest_predictor(self, device: str, space: str, whole: str = "*") -> StoredPredictor | None:
        """The newest predictor stored for ``device`` and ``space``, else the newest for ``device`` and ``whole``
        (a whole-model predictor; ``"*"``, or e.g. ``"*:int8"`` for another data type), else None."""
        for wanted in dict.fromkeys((space, whole)):
            row = self._conn.execute(
                "SELECT id, device, space, format, coefficients, report, created_at FROM predictors "
                "WHERE device = ? AND space = ? ORDER BY id DESC LIMIT 1", (device, wanted),
            ).fetchone()
            if row is not None:
                return StoredPredictor(row[0], row[1], row[2], row[3], json.loads(row[4]), json.loads(row[5]), row[6])
        return None

    def measurements_frame(self, device: str | None = None, model: str | None = None):
        """Measurements as a pandas DataFrame, one row each (settings and fingerprint flattened)."""
        import pandas as pd

        return pd.DataFrame([_flat_row(m) for m in self.measurements(device, model)])


def _flat_row(m: Measurement) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": m.id, "created_at": m.created_at, "source": m.source, "device": m.device,
        "model": m.model_name, "model_sha256": m.model_sha256, "latency_ms": m.stats.headline_ms,
        "count": m.stats.count, **{name: getattr(m.stats, name) for name in _STAT_FIELDS},
        "runtime": m.runtime, "runtime_version": m.runtime_version, "command": m.command,
        "warnings": "; ".join(m.warnings),
    }
    row.update({f"setting_{k}": v for k, v in m.settings.items()})
    row.update({f"device_{k}": v for k, v in m.fingerprint.items() if not isinstance(v, (dict, list))})
    return row



"""Trials of a search, kept in the results database one row at a time, and the output folder's marker.

A search is a row of ``searches`` (its settings as JSON); each trial is a row
of ``search_trials``, written in its own transaction the moment it finishes,
so a killed search loses nothing it had finished. The output folder holds
``search.json`` naming the search, which is how ``--resume`` finds it again.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from latprof.errors import SearchError
from latprof.space import SearchSpace
from latprof.store import Store

__all__ = ["CSV_FIELDS", "MARKER", "Trial", "TrialStore", "csv_row", "open_search", "value", "write_csv"]

MARKER = "search.json"
CSV_FIELDS = ("idx", "status", "reward", "latency_ms", "accuracy", "params", "macs", "seconds", "reused_from",
              "error", "arch")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Trial:
    """One sampled candidate: its tokens and architecture string, and what it scored (or why it failed)."""

    idx: int
    tokens: tuple[int, ...]
    arch: str
    status: str  # "ok" | "failed"
    latency_ms: float | None
    accuracy: float | None
    reward: float | None
    error: str | None
    seconds: float  # evaluation time (0 when reused)
    reused_from: int | None  # index of the trial whose evaluation this one reuses (same architecture)
    finished_at: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def value(number: float | None) -> float:
    """A successful trial's latency, accuracy or reward (failed trials have none)."""
    if number is None:
        raise ValueError("a failed trial has no latency, accuracy or reward")
    return number


def csv_row(trial: Trial, space: SearchSpace) -> dict[str, Any]:
    params, macs = space.count_params_macs(space.parse(trial.arch))
    row = {k: v for k, v in asdict(trial).items() if k in CSV_FIELDS}
    return {**row, "params": params, "macs": macs}


def write_csv(path: Path, trials: Iterable[Trial], space: SearchSpace) -> None:
    """All ``trials`` to ``path`` (replacing it), header first."""
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, CSV_FIELDS)
        writer.writeheader()
        writer.writerows(csv_row(t, space) for t in trials)
    tmp.replace(path)


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


class TrialStore:
    """The trials of search ``search_id`` in ``store``."""

    def __init__(self, store: Store, search_id: int) -> None:
        self.store, self.search_id = store, search_id
        row = store.connection.execute("SELECT config FROM searches WHERE id = ?", (search_id,)).fetchone()
        if row is None:
            raise SearchError(f"search #{search_id} is not in {store.path}; pass the --db the search was started with")
        self.config: dict[str, Any] = json.loads(row[0])

    @classmethod
    def create(cls, store: Store, config: dict[str, Any], out_dir: Path | None) -> TrialStore:
        with store.connection:
            cursor = store.connection.execute(
                "INSERT INTO searches (created_at, out_dir, config) VALUES (?, ?, ?)",
                (now(), str(out_dir) if out_dir else None, json.dumps(config, sort_keys=True)),
            )
        return cls(store, int(value(cursor.lastrowid)))

    def add(self, trial: Trial) -> None:
        """Store one finished trial (its own transaction)."""
        with self.store.connection:
            self.store.connection.execute(
                "INSERT INTO search_trials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.search_id, trial.idx, json.dumps(list(trial.tokens)), trial.arch, trial.status,
                 _number(trial.latency_ms), _number(trial.accuracy), _number(trial.reward), trial.error,
                 trial.seconds, trial.reused_from, trial.finished_at),
            )

    def trials(self) -> list[Trial]:
        """Every stored trial, by index."""
        rows = self.store.connection.execute(
            "SELECT idx, tokens, arch, status, latency_ms, accuracy, reward, error, seconds, reused_from, finished_at "
            "FROM search_trials WHERE search_id = ? ORDER BY idx", (self.search_id,),
        ).fetchall()
        return [Trial(r[0], tuple(json.loads(r[1])), *r[2:]) for r in rows]


def open_search(store: Store, out_dir: Path | None, config: dict[str, Any], resume: bool,
                fixed: Iterable[str], defaults: dict[str, Any] | None = None) -> tuple[TrialStore, bool]:
    """The search for ``out_dir``: a new one, or (``resume``) the one its marker names. Returns (trials, resumed).

    Resuming requires the settings in ``fixed`` to equal the stored ones; a setting a search stored before it
    existed reads as its value in ``defaults``.
    """
    marker = out_dir / MARKER if out_dir is not None else None
    if marker is not None and marker.exists():
        try:
            search_id = int(json.loads(marker.read_text())["search_id"])
        except (ValueError, KeyError, TypeError):
            raise SearchError(f"{marker} is not a latprof search marker; choose another --out") from None
        trials = TrialStore(store, search_id)
        if not resume:
            n = len(trials.trials())
            raise SearchError(f"{out_dir} already holds search #{search_id} ({n} trials); pass --resume to continue "
                              "it, or choose another --out")
        stored = {**(defaults or {}), **trials.config}
        for key in fixed:
            if stored.get(key) != config.get(key):
                raise SearchError(f"{out_dir} holds a search with {key}={stored.get(key)!r}, not "
                                  f"{config.get(key)!r}; resume with the same settings, or choose another --out")
        return trials, True
    trials = TrialStore.create(store, config, out_dir)
    if out_dir is not None and marker is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"search_id": trials.search_id, "db": str(store.path), "config": config},
                                     indent=2, sort_keys=True) + "\n")
    return trials, False

"""The results store: an embedded SQLite database, written as results arrive."""

from latprof.store._db import SCHEMA_VERSION, Store, StoredPredictor, default_db_path

__all__ = ["Store", "StoredPredictor", "default_db_path", "SCHEMA_VERSION"]

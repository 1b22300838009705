"""The device's reference speed: the one definition ``latprof measure`` and ``latprof predict`` share.

A figure "at the reference speed" is a latency rescaled by the probe timed
around it: ``latency * (reference_probe_ms / probe_ms) ** beta``. The reference
of a device is, in this order of preference:

1. the fitted predictor's (``probe_ref_ms``, ``probe_beta``, registered here by
   :func:`latprof.predictor.save_predictor`), so that measured and predicted
   figures are on one scale;
2. else the device's own, established by the first measurement timed with the
   probe under the same settings (its fastest probe time, exponent 1) and kept
   from then on, so that later figures stay comparable with earlier ones.

A reference applies only to probes timed under the same settings
(:func:`probe_identity`: probe model, runtime and version, threads, core mask,
delegate); rows live in the store's ``speed_references`` table.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

from latprof.devices import delegate_name
from latprof.store import Store

__all__ = ["SpeedReference", "probe_factor", "probe_identity", "reference_speed", "register_reference",
           "establish_device_reference", "resolve_reference", "IDENTITY_KEYS"]

IDENTITY_KEYS = ("probe", "runtime", "runtime_version", "threads", "core_mask", "delegate")
_DEVICE = ""  # the space column of a device's own reference (not a predictor's)


def probe_factor(probe_ms: Sequence[float] | None, ref_ms: float | None, beta: float) -> float:
    """Multiplier taking a latency timed while the probe took ``probe_ms`` (mean) to the reference speed.

    1 when there is no probe time or no reference.
    """
    if not probe_ms or ref_ms is None:
        return 1.0
    return (ref_ms / (sum(probe_ms) / len(probe_ms))) ** beta


def probe_identity(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings a probe time depends on; a reference applies only to probes timed under the same."""
    identity = {key: settings.get(key) for key in IDENTITY_KEYS}
    identity["delegate"] = delegate_name(identity["delegate"])  # older rows spell it "xnnpack (LiteRT default)"
    return identity


@dataclass(frozen=True)
class SpeedReference:
    """A device's reference speed: the probe time figures are rescaled to, the exponent, and where it came from."""

    probe_ms: float
    beta: float
    source: str

    def factor(self, probe_ms: Sequence[float]) -> float:
        """Multiplier to this reference for a latency timed while the probe took ``probe_ms``."""
        return probe_factor(probe_ms, self.probe_ms, self.beta)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _key(identity: dict[str, Any]) -> str:
    return json.dumps(probe_identity(identity), sort_keys=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def reference_speed(store: Store, device: str, identity: dict[str, Any], space: str | None = None,
                    ) -> SpeedReference | None:
    """The reference of ``device`` for probes timed under ``identity``; None when it has none yet.

    A predictor's reference comes first (the one for ``space`` if given, else the latest fitted),
    then the device's own.
    """
    rows = store.connection.execute(
        "SELECT space, probe_ms, beta, source FROM speed_references WHERE device = ? AND identity = ? "
        "ORDER BY space != '' DESC, space = ? DESC, created_at DESC, rowid DESC",
        (device, _key(identity), space or ""),
    ).fetchall()
    if not rows:
        return None
    _, probe_ms, beta, source = rows[0]
    return SpeedReference(probe_ms, beta, source)


def register_reference(store: Store, device: str, space: str, identity: dict[str, Any],
                       reference: SpeedReference) -> None:
    """Record a fitted predictor's reference for ``device`` and ``space`` (replacing an older predictor's)."""
    with store.connection as conn:
        conn.execute("INSERT OR REPLACE INTO speed_references VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (device, space, _key(identity), reference.probe_ms, reference.beta, reference.source, _now()))


def establish_device_reference(store: Store, device: str, identity: dict[str, Any],
                               candidate: SpeedReference) -> SpeedReference:
    """The device's own reference: ``candidate`` if it has none yet under ``identity``, else the one it has."""
    key = _key(identity)
    with store.connection as conn:
        conn.execute("INSERT OR IGNORE INTO speed_references VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (device, _DEVICE, key, candidate.probe_ms, candidate.beta, candidate.source, _now()))
        probe_ms, beta, source = conn.execute(
            "SELECT probe_ms, beta, source FROM speed_references WHERE device = ? AND space = ? AND identity = ?",
            (device, _DEVICE, key)).fetchone()
    return SpeedReference(probe_ms, beta, source)


def resolve_reference(store: Store | None, device: str, identity: dict[str, Any], probe_ms: Sequence[float],
                      space: str | None = None) -> SpeedReference:
    """The reference a measurement with these probe times is rescaled to (establishing the device's own
    from them when it has none yet)."""
    found = reference_speed(store, device, identity, space) if store is not None else None
    if found is not None:
        return found
    fastest = min(probe_ms)
    if store is None:
        return SpeedReference(fastest, 1.0, "this measurement's fastest probe time (no database to keep a "
                                            "reference in), exponent 1")
    return establish_device_reference(store, device, identity, SpeedReference(
        fastest, 1.0, f"the device's own: fastest probe time of its first measurement with these settings "
                      f"({_now()}), exponent 1"))

"""Switchable device-side failures, for testing what a client does when a phone misbehaves."""

from __future__ import annotations

import enum
from collections.abc import Iterable

from latprof.errors import LatprofError

__all__ = ["FailureMode", "parse_failures"]


class FailureMode(str, enum.Enum):
    """One way the loopback device can misbehave. The value is the CLI spelling (``--fail VALUE``)."""

    #: Never authorise any key: signatures are refused and new keys are never accepted
    #: (a phone whose "Allow USB debugging?" dialog nobody answers).
    REFUSE_KEY = "refuse-key"
    #: Close the TCP connection once a push (sync ``SEND``) has received ``drop_after_bytes`` bytes.
    DROP_MID_PUSH = "drop-mid-push"
    #: Close the TCP connection while ``benchmark_model`` is running (after its first lines).
    DROP_MID_RUN = "drop-mid-run"
    #: No ``benchmark_model`` on the device.
    NO_BENCHMARK = "no-benchmark"
    #: ``benchmark_model`` prints its first lines, then dies: ``Segmentation fault``, status 139.
    BENCHMARK_CRASH = "benchmark-crash"
    #: Thermal zones at about 55 °C and the big cores' frequency capped to about 60%.
    HOT = "hot"

    def __str__(self) -> str:
        return self.value


def parse_failures(values: Iterable[FailureMode | str]) -> frozenset[FailureMode]:
    """FailureModes from enum members or their CLI spellings; LatprofError naming the valid ones."""
    modes = set()
    for value in values:
        if isinstance(value, FailureMode):
            modes.add(value)
            continue
        try:
            modes.add(FailureMode(str(value).strip().lower().replace("_", "-")))
        except ValueError:
            known = ", ".join(m.value for m in FailureMode)
            raise LatprofError(f"unknown failure mode '{value}'; use one of: {known}") from None
    return frozenset(modes)

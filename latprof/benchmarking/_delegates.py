"""Delegate lines of ``benchmark_model``: which delegates were asked for, created and applied.

Formats (tensorflow/tensorflow, read through the public code index):
``tools/delegates/*_delegate_provider.cc`` log the ``Use xnnpack: [1]`` / ``Use gpu: [1]`` /
``Use NNAPI: [1]`` / ``Use Hexagon: [1]`` parameters, ``XNNPACK delegate created.``,
``GPU acceleration is unsupported on this platform.`` (WARN, the run goes on without it);
``benchmark_tflite_model.cc`` logs ``Explicitly applied <NAME> delegate, and the model graph
will be completely|partially executed by the delegate[ w/ N delegate kernels].``, ``Though
<NAME> delegate is explicitly applied, the model graph will not be executed by the delegate.``
and ``Failed to apply <NAME> delegate.``; TFLite core logs ``Created TensorFlow Lite XNNPACK
delegate for CPU.`` / ``Created TensorFlow Lite delegate for GPU.`` and ``Replacing N out of M
node(s) with delegate (TfLiteXNNPackDelegate) node, yielding K partitions …``; the Hexagon
(and other) delegates log ``<Name> delegate: N nodes delegated out of M nodes with K
partitions.``; the GPU delegate logs ``Initialized OpenCL-based API.`` and ``Created N GPU
delegate kernels.``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["DelegateInfo", "DelegateLog"]

_CLASS_NAMES = {  # TfLiteRegistration names in "Replacing … with delegate (X) node"
    "tflitexnnpackdelegate": "xnnpack", "tflitegpudelegate": "gpu", "tflitegpudelegatev2": "gpu",
    "tflitennapidelegate": "nnapi", "tflitehexagondelegate": "hexagon", "tfliteflexdelegate": "flex",
}
_NAME = r"([A-Za-z][\w-]*)"
_CREATED = (
    re.compile(rf"^Created TensorFlow Lite {_NAME} delegate for \w+"),  # XNNPACK for CPU
    re.compile(rf"^Created TensorFlow Lite delegate for {_NAME}"),  # GPU, NNAPI, Hexagon, select TF ops
    re.compile(rf"^{_NAME} delegate created\.?$"),
)
_APPLIED = re.compile(rf"^Explicitly applied {_NAME} delegate, and the model graph will be (completely|partially)"
                      r" executed by the delegate(?: w/ (\d+) delegate kernels)?")
_NOT_APPLIED = re.compile(rf"^Though {_NAME} delegate is explicitly applied, the model graph will not be")
_NODE_COUNTS = (  # named groups: name, delegated, total, partitions
    re.compile(r"^Replacing (?P<delegated>\d+)(?: out of (?P<total>\d+))? node\(s\) with delegate \((?P<name>\w+)\) "
               r"node, yielding (?P<partitions>\d+) partitions"),
    re.compile(r"^(?:\[[^\]]*\] )?(?P<name>[A-Za-z][\w-]*) delegate: (?P<delegated>\d+) nodes delegated out of "
               r"(?P<total>\d+) nodes(?: with (?P<partitions>\d+) partitions)?"),
)
_COUNT_KEYS = (("nodes_delegated", "delegated"), ("nodes_total", "total"), ("partitions", "partitions"))
_UNAVAILABLE = re.compile(rf"^(?:{_NAME} acceleration is unsupported on this platform"
                          rf"|Failed to (?:apply|create) {_NAME} delegate)")
_GPU_KERNELS = re.compile(r"^Created (\d+) GPU delegate kernels")
_GPU_API = re.compile(r"^Initialized (?:OpenCL|OpenGL)[-\w]* API")
_USE_PARAM = re.compile(r"^Use (xnnpack|gpu|nnapi|hexagon|coreml)$", re.I)


@dataclass(frozen=True)
class DelegateInfo:
    """What the log says about one delegate; fields it does not say are None.

    ``applied`` is "complete", "partial" or "none" (from the tool's "Explicitly applied" /
    "Though … will not be executed" line); ``unavailable`` means the tool said it could not
    create or apply it (the run then went on without it, or failed).
    """

    name: str
    requested: bool | None = None
    created: bool = False
    applied: str | None = None
    delegate_kernels: int | None = None
    nodes_delegated: int | None = None
    nodes_total: int | None = None
    partitions: int | None = None
    unavailable: bool = False
    lines: tuple[str, ...] = ()


def _name(raw: str) -> str:
    key = raw.lower()
    return _CLASS_NAMES.get(key, "flex" if key == "select" else key)


@dataclass
class DelegateLog:
    """Collects delegate facts line by line (:meth:`line`, :meth:`param`), in order of appearance."""

    found: dict[str, dict] = field(default_factory=dict)

    def _entry(self, raw_name: str, text: str) -> dict:
        entry = self.found.setdefault(_name(raw_name), {"lines": []})
        entry["lines"].append(text)
        return entry

    def param(self, key: str, value: str) -> bool:
        """Record a ``Use <delegate>: [v]`` parameter; True when it was one."""
        match = _USE_PARAM.match(key.strip())
        if not match:
            return False
        self._entry(match.group(1), f"{key.strip()}: [{value}]")["requested"] = value.lower() in ("1", "true")
        return True

    def line(self, text: str) -> bool:
        """Record a delegate line; True when ``text`` was one."""
        for pattern in _CREATED:
            if match := pattern.match(text):
                self._entry(match.group(1), text)["created"] = True
                return True
        if match := _APPLIED.match(text):
            entry = self._entry(match.group(1), text)
            entry["applied"] = "complete" if match.group(2) == "completely" else "partial"
            complete = 1 if entry["applied"] == "complete" else None  # "completely" means one delegate kernel
            entry["delegate_kernels"] = int(match.group(3)) if match.group(3) else complete
            return True
        if match := _NOT_APPLIED.match(text):
            self._entry(match.group(1), text).update(applied="none", delegate_kernels=0)
            return True
        for pattern in _NODE_COUNTS:
            if match := pattern.match(text):
                entry = self._entry(match["name"], text)
                entry.update({key: int(match[group]) for key, group in _COUNT_KEYS if match[group]})
                return True
        if match := _UNAVAILABLE.match(text):
            self._entry(match.group(1) or match.group(2), text)["unavailable"] = True
            return True
        if match := _GPU_KERNELS.match(text):
            self._entry("gpu", text)["delegate_kernels"] = int(match.group(1))
            return True
        if _GPU_API.match(text):
            self._entry("gpu", text)
            return True
        return False

    def result(self) -> tuple[DelegateInfo, ...]:
        return tuple(DelegateInfo(name=name, **{**entry, "lines": tuple(entry["lines"])})
                     for name, entry in self.found.items())

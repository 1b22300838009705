"""Export worker: ``python -m latprof.space._export_worker`` (used by ``export_many``).

Reads one JSON job per line on stdin -- ``{"arch": STRING, "path": PATH}`` or
``{"layer": {LayerConfig fields}, "path": PATH}``, with optional ``"quantize"``,
``"representative"`` (a sample count) and ``"io_dtype"`` (see ``keras_to_tflite``) -- exports it, and answers one
JSON line on stdout: ``{"ok": true, "path": ..., "timings": {...}}`` or
``{"ok": false, "error": ...}``. TensorFlow is imported once, at start.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from latprof.space._build import _keras, export_tflite, quiet_native_stderr
    from latprof.space._layers import LayerConfig
    from latprof.space._references import parse_arch

    out = sys.stdout
    sys.stdout = sys.stderr  # anything TF/Keras prints must not corrupt the protocol
    with quiet_native_stderr():
        _keras()
        import tensorflow  # noqa: F401
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            job = json.loads(line)
            item = LayerConfig(**job["layer"]) if "layer" in job else parse_arch(job["arch"])
            timings: dict[str, float] = {}
            with quiet_native_stderr():
                export_tflite(item, job["path"], timings, quantize=job.get("quantize"),
                              representative=job.get("representative", 100), io_dtype=job.get("io_dtype", "float32"))
            reply = {"ok": True, "path": job["path"], "timings": timings}
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

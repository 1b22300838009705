"""latprof's error hierarchy.

Every error latprof raises on purpose derives from :class:`LatprofError`. Its
message is one line that names the problem and the fix; the CLI prints it as
``Error: <message>`` and exits non-zero. The library never imports click.
"""

from __future__ import annotations

__all__ = [
    "LatprofError",
    "ModelFileError",
    "ParseError",
    "DeviceError",
    "UnknownDeviceError",
    "NoDeviceError",
    "DeviceUnauthorizedError",
    "DeviceDisconnectedError",
    "UnsupportedDelegateError",
    "BenchmarkBinaryMissingError",
    "BenchmarkFailedError",
    "BenchmarkTimeoutError",
    "ArchitectureError",
    "CalibrationDataError",
    "StoreError",
]


class LatprofError(Exception):
    """Root of every error latprof raises deliberately. ``exit_code`` is what the CLI returns."""

    exit_code = 1


class ModelFileError(LatprofError):
    """The model file is missing, unreadable, or not a TFLite flatbuffer."""


class ParseError(LatprofError):
    """Text (a benchmark log, an architecture string, a config file) could not be parsed."""


class DeviceError(LatprofError):
    """Base for problems with a device."""


class UnknownDeviceError(DeviceError):
    """A device name matches no config, serial or address."""


class NoDeviceError(DeviceError):
    """No device is connected or reachable."""


class DeviceUnauthorizedError(DeviceError):
    """The device rejected our ADB key."""


class UnsupportedDelegateError(DeviceError):
    """The device cannot run the requested delegate (e.g. ``--delegate gpu`` on the host)."""

    exit_code = 2


class DeviceDisconnectedError(DeviceError):
    """The device went away while we were talking to it."""


class BenchmarkBinaryMissingError(DeviceError):
    """benchmark_model is not on the device (or not executable)."""


class BenchmarkFailedError(LatprofError):
    """The benchmark ran but failed (crash, 'Benchmarking failed.', bad model)."""


class BenchmarkTimeoutError(LatprofError):
    """A benchmark run exceeded its timeout."""


class ArchitectureError(LatprofError):
    """An architecture string, name or value is malformed or out of range."""


class CalibrationDataError(ArchitectureError):
    """The representative (calibration) data for int8 quantization does not fit the model input."""

    exit_code = 2


class StoreError(LatprofError):
    """The results database cannot be opened, migrated or written."""


class SearchError(LatprofError):
    """Search settings are invalid, or a stored search does not match the settings given to resume it."""


class EstimatorError(LatprofError):
    """An accuracy estimator is misnamed, cannot be loaded, or returned something that is not a score."""


class DataError(LatprofError):
    """A data folder for proxy training is missing or malformed."""


__all__ += ["SearchError", "EstimatorError", "DataError"]


class LookupTableError(LatprofError):
    """A lookup table is missing, incomplete, or was measured with other settings than asked for."""


class PredictorError(LatprofError):
    """No fitted predictor exists, or it cannot be fitted or loaded from the data given."""


__all__ += ["LookupTableError", "PredictorError"]


class FarmError(LatprofError):
    """The device farm is unreachable, Ray is missing, or no phone of the asked kind can serve a job."""


__all__ += ["FarmError"]

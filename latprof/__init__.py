"""latprof: on-device latency profiling of neural networks.

Measure real inference latency (host CPU or Android phones over ADB), store it,
fit per-op lookup tables and predictors, and search latency-aware architectures.
"""

__version__ = "0.1.0"

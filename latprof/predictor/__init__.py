"""One latency predictor for every device and every kind of evidence (being built; see docs/one-predictor-plan.md)."""

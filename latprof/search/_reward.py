"""The MnasNet reward (Tan et al., CVPR 2019, equation 2).

``reward(m) = ACC(m) * (LAT(m) / T) ** w`` with ``w = alpha`` if ``LAT(m) <= T``
else ``beta``. The paper's soft constraint is ``alpha = beta = -0.07`` (a model
twice as slow must be about 5% more accurate to tie); its hard constraint is
``alpha = 0, beta = -1`` (no bonus for being faster than the target, a steep
penalty for being slower).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from latprof.errors import SearchError

__all__ = ["REWARD_MODES", "REWARD_CHOICES", "Reward"]

REWARD_MODES = {"soft": (-0.07, -0.07), "hard": (0.0, -1.0)}
REWARD_CHOICES = ("auto", *REWARD_MODES)  # auto: see SearchConfig.reward_mode


@dataclass(frozen=True)
class Reward:
    """The reward for target latency ``target_ms`` with exponents ``alpha`` (at or under T) and ``beta`` (over T)."""

    target_ms: float
    alpha: float
    beta: float
    mode: str = "custom"

    def __post_init__(self) -> None:
        if not isinstance(self.target_ms, (int, float)) or not math.isfinite(self.target_ms) or self.target_ms <= 0:
            raise SearchError(f"target latency must be a positive number of milliseconds, got {self.target_ms!r}; "
                              "pass e.g. --target-ms 75")
        for name, value in (("alpha", self.alpha), ("beta", self.beta)):
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SearchError(f"reward exponent {name} must be a finite number, got {value!r}; "
                                  f"pass e.g. --{name} -0.07")

    @classmethod
    def from_mode(cls, target_ms: float, mode: str = "soft", alpha: float | None = None,
                  beta: float | None = None) -> Reward:
        """The paper's ``soft`` or ``hard`` reward; ``alpha``/``beta`` override its exponents."""
        if mode not in REWARD_MODES:
            raise SearchError(f"unknown reward {mode!r}; pass --reward auto, soft or hard")
        default_alpha, default_beta = REWARD_MODES[mode]
        a = default_alpha if alpha is None else alpha
        b = default_beta if beta is None else beta
        return cls(target_ms, a, b, mode if (a, b) == (default_alpha, default_beta) else "custom")

    def __call__(self, accuracy: float, latency_ms: float) -> float:
        """The reward of one model."""
        if not latency_ms > 0:
            raise ValueError(f"latency must be positive, got {latency_ms!r}")
        w = self.alpha if latency_ms <= self.target_ms else self.beta
        return accuracy * (latency_ms / self.target_ms) ** w

    def many(self, accuracy: np.ndarray, latency_ms: np.ndarray) -> np.ndarray:
        """The rewards of many models at once."""
        accuracy, latency_ms = np.asarray(accuracy, float), np.asarray(latency_ms, float)
        if np.any(~(latency_ms > 0)):
            raise ValueError("latencies must be positive")
        w = np.where(latency_ms <= self.target_ms, self.alpha, self.beta)
        return accuracy * (latency_ms / self.target_ms) ** w

    def describe(self) -> str:
        return (f"{self.mode}: ACC x (LAT/{self.target_ms:g} ms)^w, w = {self.alpha:g} if LAT <= "
                f"{self.target_ms:g} ms else {self.beta:g}")

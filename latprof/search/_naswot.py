"""The NASWOT training-free score, computed with a NumPy forward pass.

NASWOT ("Neural Architecture Search without Training", Mellor, Turner, Storkey
and Crowley, ICML 2021): push a mini-batch of N images through the untrained
network; at every ReLU, each image gets a binary code (which units are
active); the kernel ``K[i, j]`` counts, summed over all ReLUs, the units on
which images i and j agree (``c c^T + (1-c)(1-c)^T``). The score is
``log |det K|``: networks that separate inputs into distinct linear regions at
initialisation tend to train to higher accuracy.

As in the reference implementation, the code is taken from the input of each
ReLU, weights are freshly initialised (He normal; biases zero) and batch
normalisation uses the batch's statistics (PyTorch's default train mode). The
forward pass follows :func:`latprof.space.arch_layers` exactly, so it is the
same graph the Keras builder makes (grouped 1x1 convs and channel shuffles
included), just in NumPy: no TensorFlow import, a few tens of milliseconds per
candidate on a scaled-down copy.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from latprof.space import Architecture, LayerConfig, arch_layers, run_program

__all__ = ["naswot_score", "naswot_program_score"]

_BN_EPS = 1e-3


class _Forward:
    """One forward pass with fresh random weights, accumulating the NASWOT kernel."""

    def __init__(self, batch: int, rng: np.random.Generator) -> None:
        self.rng = rng
        self.kernel = np.zeros((batch, batch), np.float64)

    def relu(self, x: np.ndarray) -> np.ndarray:
        codes = (x > 0).reshape(x.shape[0], -1).astype(np.float32)
        active = codes.sum(axis=1, dtype=np.float64)
        agree_on = codes @ codes.T  # both active; both inactive is units - a_i - a_j + both active
        self.kernel += 2 * agree_on + codes.shape[1] - active[:, None] - active[None, :]
        return np.maximum(x, 0)

    def score(self) -> float:
        """``log|det K|`` of the kernel accumulated so far (-inf if singular)."""
        sign, logdet = np.linalg.slogdet(self.kernel)
        return float(logdet) if sign != 0 else float("-inf")

    def weight(self, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        """He-uniform weights: variance 2 / fan_in."""
        limit = np.float32(np.sqrt(6.0 / fan_in))
        return (self.rng.random(shape, dtype=np.float32) * 2 - 1) * limit

    @staticmethod
    def batch_norm(x: np.ndarray) -> np.ndarray:
        mean = x.mean(axis=(0, 1, 2))
        var = x.var(axis=(0, 1, 2))
        return (x - mean) / np.sqrt(var + _BN_EPS)

    @staticmethod
    def windows(x: np.ndarray, k: int, s: int) -> tuple[np.ndarray, int, int, int]:
        """'same'-padded ``x`` cut to the kernel taps that ever see real input: (padded x, out size, first, last tap).

        Taps that only ever see padding add zeros (e.g. every tap but the centre on a
        1x1 input), so skipping them gives the same result for less work.
        """
        size = x.shape[1]
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        lo = total // 2
        first = max(0, lo - (out - 1) * s)
        last = min(k - 1, lo + size - 1)
        xp = np.pad(x, ((0, 0), (lo, total - lo), (lo, total - lo), (0, 0)))
        return xp, out, first, last

    def conv(self, x: np.ndarray, out_channels: int, k: int, s: int) -> np.ndarray:
        cin = x.shape[3]
        w = self.weight((k, k, cin, out_channels), k * k * cin)
        if k == 1:
            x = x[:, ::s, ::s, :]
            return (x.reshape(-1, cin) @ w[0, 0]).reshape(*x.shape[:3], out_channels)
        xp, out, a, b = self.windows(x, k, s)
        w = w[a:b + 1, a:b + 1]
        if a == b:
            x = xp[:, a:a + s * out:s, a:a + s * out:s, :]
            return (np.ascontiguousarray(x).reshape(-1, cin) @ w[0, 0]).reshape(*x.shape[:3], out_channels)
        view = sliding_window_view(xp[:, a:, a:], (b - a + 1, b - a + 1), axis=(1, 2))[:, ::s, ::s][:, :out, :out]
        return np.tensordot(view, w, axes=([3, 4, 5], [2, 0, 1]))

    def grouped_pointwise(self, x: np.ndarray, out_channels: int, groups: int) -> np.ndarray:
        """A 1x1 conv whose ``groups`` slices of channels each map to ``out_channels / groups`` outputs."""
        if groups == 1:
            return self.conv(x, out_channels, 1, 1)
        parts = np.split(x, groups, axis=3)
        return np.concatenate([self.conv(p, out_channels // groups, 1, 1) for p in parts], axis=3)

    @staticmethod
    def channel_shuffle(x: np.ndarray, groups: int) -> np.ndarray:
        """ShuffleNet's shuffle: channel ``g * (c / groups) + i`` moves to ``i * groups + g``."""
        n, h, w, c = x.shape
        return x.reshape(n, h, w, groups, c // groups).swapaxes(3, 4).reshape(n, h, w, c)

    def depthwise(self, x: np.ndarray, k: int, s: int) -> np.ndarray:
        w = self.weight((k, k, x.shape[3]), k * k)
        return self._taps(x, k, s, w)[0]

    def _taps(self, x: np.ndarray, k: int, s: int, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Sum over the live taps of ``x`` times ``w`` (or times 1), and how many real cells each output saw.

        Works on a few images at a time so the running sum stays in cache.
        """
        xp, out, a, b = self.windows(x, k, s)
        y = np.zeros((x.shape[0], out, out, x.shape[3]), np.float32)
        seen, _, _, _ = self.windows(np.ones((1, *x.shape[1:3], 1), np.float32), k, s)
        count = np.zeros((1, out, out, 1), np.float32)
        taps = [(i, j) for i in range(a, b + 1) for j in range(a, b + 1)]
        for i, j in taps:
            count += seen[:, i:i + s * out:s, j:j + s * out:s, :]
        chunk = 4
        scratch = np.empty((chunk, out, out, x.shape[3]), np.float32)
        for n in range(0, x.shape[0], chunk):
            part_sum = y[n:n + chunk]
            tmp = scratch[:part_sum.shape[0]]
            for i, j in taps:
                part = xp[n:n + chunk, i:i + s * out:s, j:j + s * out:s, :]
                if w is None:
                    part_sum += part
                else:
                    np.multiply(part, w[i, j], out=tmp)
                    part_sum += tmp
        return y, count

    def avg_pool(self, x: np.ndarray, s: int) -> np.ndarray:
        """3x3 average pooling, 'same' padding, padded cells not counted (as TFLite does)."""
        total, count = self._taps(x, 3, s, None)
        return total / count

    def squeeze_excite(self, x: np.ndarray, reduced: int) -> np.ndarray:
        c = x.shape[3]
        s = x.mean(axis=(1, 2))
        s = self.relu(s @ self.weight((c, reduced), c))
        s = 1.0 / (1.0 + np.exp(-(s @ self.weight((reduced, c), reduced))))
        return x * s[:, None, None, :]

    def layer(self, x: np.ndarray, layer: LayerConfig) -> np.ndarray:
        if layer.is_cell_piece:
            return self.cell_layer(x, layer)
        inp = x
        if layer.op == "cn":
            x = self.batch_norm(self.conv(x, layer.out_channels, layer.kernel, layer.stride))
            x = x if layer.activation == "none" else self.relu(x)
        else:
            if layer.op == "ir":
                x = self.relu(self.batch_norm(self.grouped_pointwise(x, layer.mid_channels, layer.groups)))
                if layer.groups > 1:
                    x = self.channel_shuffle(x, layer.groups)
            x = self.relu(self.batch_norm(self.depthwise(x, layer.kernel, layer.stride)))
        if layer.se_ratio > 0:
            x = self.squeeze_excite(x, layer.se_channels)
        if layer.op in ("ds", "ir"):
            x = self.batch_norm(self.grouped_pointwise(x, layer.out_channels, layer.groups))
        if layer.skip == "id":
            x = x + inp
        elif layer.skip == "pool":
            shortcut = self.avg_pool(inp, layer.stride)
            if layer.has_projection_shortcut:
                shortcut = self.conv(shortcut, layer.out_channels, 1, 1)
            x = x + shortcut
        return x

    def cell_layer(self, x: np.ndarray, layer: LayerConfig) -> np.ndarray:
        """The NAS-Bench-201 pieces (``add`` takes two inputs and is done by the caller)."""
        if layer.op == "relu":
            return self.relu(x)
        if layer.op == "pool":
            return self.avg_pool(x, 1)
        if layer.op == "bnrelu":
            return self.relu(self.batch_norm(x))
        c, s = layer.out_channels, layer.stride  # "res"
        y = self.relu(self.batch_norm(self.conv(self.relu(x), c, 3, s)))
        y = self.batch_norm(self.conv(y, c, 3, 1))
        n, h, w, cin = x.shape
        pooled = x[:, :h - h % s, :w - w % s].reshape(n, h // s, s, w // s, s, cin).mean(axis=(2, 4))
        return y + self.conv(pooled, c, 1, 1)


def naswot_program_score(steps: list, images: np.ndarray, seed: int = 0) -> float:
    """NASWOT score of a network given as a NAS-Bench-201 program (:meth:`NASBench201Space.program` steps)."""
    forward = _Forward(images.shape[0], np.random.default_rng(seed))

    def apply(step, x, other):
        if other is not None:  # an add
            return x + other
        return None if step.layer.op == "fc" else forward.layer(x, step.layer)

    run_program(steps, images.astype(np.float32),
                lambda step: np.zeros((images.shape[0], *step.shape), np.float32), apply)
    return forward.score()


def naswot_score(arch: Architecture, images: np.ndarray, seed: int = 0) -> float:
    """NASWOT score ``log|det K|`` of ``arch`` (untrained, weights from ``seed``) on ``images`` (NHWC).

    The classifier has no ReLU, so it is not evaluated. ``images`` must have
    the architecture's resolution; use at least two distinct images.
    """
    if images.ndim != 4 or images.shape[1:3] != (arch.resolution, arch.resolution) or images.shape[3] != 3:
        raise ValueError(f"images must be N x {arch.resolution} x {arch.resolution} x 3, got {images.shape}")
    forward = _Forward(images.shape[0], np.random.default_rng(seed))
    x = images.astype(np.float32)
    for layer in arch_layers(arch):
        if layer.op == "fc":
            break
        x = forward.layer(x, layer)
    return forward.score()

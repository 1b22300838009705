"""Accuracy estimators: one interface, three kinds.

* ``zero-cost``: the NASWOT score (Mellor et al., "Neural Architecture Search
  without Training", ICML 2021) of a scaled-down copy of the candidate on a
  batch of ``shapes10`` images, untrained. Training-free, NumPy only.
* ``proxy-train``: trains a scaled-down copy for a few epochs on ``shapes10``
  (built in, no download) or on ``--data DIR`` (a folder of images per class)
  and returns its held-out accuracy.
* ``python:MODULE:FUNCTION``: your own ``FUNCTION(arch: Architecture) -> float``
  (e.g. a call into your training pipeline); higher is better, must be >= 0.

The built-in estimates are proxies for ranking candidates, not ImageNet accuracy.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from latprof.errors import EstimatorError
from latprof.search._data import ImageData, load_image_folder, shapes10
from latprof.space import Architecture, NASBench201Arch, format_arch, get_space

__all__ = [
    "AccuracyEstimator",
    "CallableEstimator",
    "ProxyTrainEstimator",
    "ZeroCostEstimator",
    "make_estimator",
    "scaled_copy",
]

_CALLABLE = re.compile(r"^python:(?P<module>[A-Za-z_][\w.]*):(?P<attr>[A-Za-z_][\w.]*)$")


def scaled_copy(arch: Architecture, *, resolution: int, width: float, num_classes: int) -> Architecture:
    """``arch`` with every filter count times ``width``, at ``resolution``, with ``num_classes`` outputs.

    Op, kernel, SE, skip and layer choices are kept, so the copy ranks like the
    original at a fraction of the cost.
    """
    def f(c: int) -> int:
        return max(2, round(c * width))

    blocks = tuple(replace(b, in_filters=f(b.in_filters), out_filters=f(b.out_filters)) for b in arch.blocks)
    return replace(arch, blocks=blocks, resolution=resolution, stem_filters=f(arch.stem_filters),
                   head_filters=f(arch.head_filters), num_classes=num_classes, name=None)


def arch_seed(arch: Any, seed: int) -> int:
    """A 32-bit seed from the architecture string and ``seed``: the same candidate always gets the same weights."""
    text = format_arch(arch) if isinstance(arch, Architecture) else str(arch)
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _chain(arch: Any, spec: str) -> Architecture:
    """``arch`` as a chain of layers the built-in estimators can build, else a one-line error."""
    if hasattr(arch, "architecture"):  # e.g. an FBNet architecture: its generic form
        arch = arch.architecture()
    if not isinstance(arch, Architecture):
        raise EstimatorError(f"--accuracy {spec} builds chain networks (spaces mnasnet, fbnet; zero-cost also "
                             f"nasbench201), not a {type(arch).__name__}; pass --accuracy python:MODULE:FUNCTION "
                             f"for this space")
    return arch


class AccuracyEstimator(ABC):
    """Scores an architecture; higher is better. ``spec`` names it for ``--accuracy``."""

    spec: str = ""
    is_proxy: bool = True  # a built-in proxy, not the accuracy of the full model on ImageNet

    @abstractmethod
    def __call__(self, arch: Architecture) -> float:
        """The estimate for ``arch``; may raise, which fails only that candidate."""

    @abstractmethod
    def describe(self) -> str:
        """One line: what is computed, on what."""


class ZeroCostEstimator(AccuracyEstimator):
    """NASWOT score of an untrained scaled-down copy on a fixed batch of ``shapes10`` images."""

    spec = "zero-cost"

    def __init__(self, *, batch_size: int = 32, resolution: int = 32, width: float = 0.5, seed: int = 0) -> None:
        self.batch_size, self.resolution, self.width, self.seed = batch_size, resolution, width, seed
        self.images = shapes10(resolution, train=batch_size, test=0, seed=seed).x_train

    def __call__(self, arch: Architecture) -> float:
        from latprof.search._naswot import naswot_program_score, naswot_score

        if isinstance(arch, NASBench201Arch):  # a cell network at its own size (C=16, 32x32), as NASWOT scored it
            if self.resolution != 32:
                raise EstimatorError(f"NAS-Bench-201 networks take 32x32 images; drop the zero-cost resolution "
                                     f"{self.resolution}")
            steps, _ = get_space("nasbench201").program(arch)
            return naswot_program_score(steps, self.images, seed=arch_seed(arch, self.seed))
        arch = _chain(arch, self.spec)
        copy = scaled_copy(arch, resolution=self.resolution, width=self.width, num_classes=10)
        return naswot_score(copy, self.images, seed=arch_seed(arch, self.seed))

    def describe(self) -> str:
        return (f"zero-cost: NASWOT score log|K| (Mellor et al., ICML 2021) of the untrained copy at width "
                f"x{self.width:g}, {self.resolution}x{self.resolution}, on {self.batch_size} shapes10 images")


class ProxyTrainEstimator(AccuracyEstimator):
    """Held-out accuracy of a scaled-down copy trained for a few epochs (Keras, CPU)."""

    spec = "proxy-train"

    def __init__(self, *, data: str | Path | None = None, resolution: int = 32, width: float = 0.25,
                 epochs: int = 5, batch_size: int = 64, learning_rate: float = 3e-3, seed: int = 0,
                 train_images: int = 2000, test_images: int = 500) -> None:
        self.resolution, self.width, self.epochs = resolution, width, epochs
        self.batch_size, self.learning_rate, self.seed = batch_size, learning_rate, seed
        self.data: ImageData = (
            shapes10(resolution, train=train_images, test=test_images, seed=seed) if data is None
            else load_image_folder(data, resolution=resolution, seed=seed)
        )

    def __call__(self, arch: Architecture) -> float:
        import keras

        from latprof.space import build_keras_model

        arch = _chain(arch, self.spec)
        copy = scaled_copy(arch, resolution=self.resolution, width=self.width, num_classes=self.data.num_classes)
        keras.utils.set_random_seed(arch_seed(arch, self.seed))
        model = build_keras_model(copy, batch_size=None)
        for layer in model.layers:  # few steps: let BatchNorm's running statistics catch up
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = 0.9
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=False)
        d = self.data
        model.fit(d.x_train, d.y_train, batch_size=self.batch_size, epochs=self.epochs, verbose=0, shuffle=True)
        accuracy = float(model.evaluate(d.x_test, d.y_test, batch_size=256, verbose=0)[1])
        keras.backend.clear_session()
        return accuracy

    def describe(self) -> str:
        d = self.data
        return (f"proxy-train: held-out accuracy of the copy at width x{self.width:g}, "
                f"{self.resolution}x{self.resolution}, after {self.epochs} epochs on {d.name} "
                f"({d.num_classes} classes, {len(d.y_train)} train / {len(d.y_test)} held-out images)")


class CallableEstimator(AccuracyEstimator):
    """A user function ``f(arch: Architecture) -> float``, named ``python:MODULE:FUNCTION``."""

    is_proxy = False

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.function = load_callable(spec)

    def __call__(self, arch: Architecture) -> float:
        return self.function(arch)

    def describe(self) -> str:
        return f"{self.spec}: your function, called with each Architecture"


def load_callable(spec: str) -> Callable[[Architecture], Any]:
    """Import ``python:MODULE:FUNCTION`` (FUNCTION may be dotted, e.g. ``Class.method``)."""
    match = _CALLABLE.match(spec.strip())
    if match is None:
        raise EstimatorError(f"malformed accuracy estimator {spec!r}; write python:MODULE:FUNCTION, "
                             "e.g. --accuracy python:my_team.nas:evaluate")
    module_name, attr = match["module"], match["attr"]
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise EstimatorError(f"cannot import module {module_name!r} for --accuracy {spec} ({exc}); "
                             "put it on PYTHONPATH or install it") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise EstimatorError(f"module {module_name} has no attribute {attr!r} for --accuracy {spec}; "
                                 "check the function name")
        obj = getattr(obj, part)
    if not callable(obj):
        raise EstimatorError(f"{module_name}:{attr} is a {type(obj).__name__}, not a function; "
                             "point --accuracy at a callable taking an Architecture")
    return obj


def make_estimator(spec: str, *, data: str | Path | None = None, seed: int = 0) -> AccuracyEstimator:
    """The estimator for an ``--accuracy`` value: ``zero-cost``, ``proxy-train`` or ``python:MODULE:FUNCTION``."""
    if spec == "zero-cost":
        estimator: AccuracyEstimator = ZeroCostEstimator(seed=seed)
    elif spec == "proxy-train":
        return ProxyTrainEstimator(data=data, seed=seed)
    elif spec.startswith("python:"):
        estimator = CallableEstimator(spec)
    else:
        raise EstimatorError(f"unknown accuracy estimator {spec!r}; pass --accuracy zero-cost, proxy-train "
                             "or python:MODULE:FUNCTION")
    if data is not None:
        raise EstimatorError(f"--data is only used by --accuracy proxy-train, not {spec}; drop --data "
                             "or pass --accuracy proxy-train")
    return estimator

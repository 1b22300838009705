"""Image data for the accuracy proxies: a built-in synthetic data set, or a folder of images per class.

The built-in set, ``shapes10``, needs no download: every image is drawn from
a seed. Ten classes -- disk, square, triangle, ring, cross, horizontal,
vertical and diagonal stripes, checkerboard, dot grid -- each with a random
position, size, spatial frequency, phase, foreground/background colours,
contrast and Gaussian pixel noise, so a classifier has to learn shape and
texture, not a colour. It is a proxy task to rank architectures cheaply; its
accuracy says nothing about ImageNet accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latprof.errors import DataError

__all__ = ["SHAPES10_CLASSES", "ImageData", "load_image_folder", "shapes10"]

SHAPES10_CLASSES = ("disk", "square", "triangle", "ring", "cross", "h-stripes", "v-stripes", "d-stripes",
                    "checkerboard", "dots")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


@dataclass(frozen=True)
class ImageData:
    """Train and held-out images (float32, NHWC, roughly zero-mean) with integer labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def resolution(self) -> int:
        return int(self.x_train.shape[1])


def _draw(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    cy, cx = rng.uniform(0.3, 0.7, 2)
    r = rng.uniform(0.15, 0.3)
    freq = rng.uniform(3.0, 7.0)
    phase = rng.uniform(0, 2 * np.pi)
    dy, dx = yy - cy, xx - cx
    if label == 0:
        mask = dy ** 2 + dx ** 2 < r ** 2
    elif label == 1:
        mask = (np.abs(dy) < r * 0.9) & (np.abs(dx) < r * 0.9)
    elif label == 2:
        mask = (dy < r * 0.8) & (dy > -r) & (np.abs(dx) < (dy + r) * 0.6)
    elif label == 3:
        d = np.sqrt(dy ** 2 + dx ** 2)
        mask = (d < r) & (d > r * 0.55)
    elif label == 4:
        mask = ((np.abs(dy) < r * 0.3) & (np.abs(dx) < r)) | ((np.abs(dx) < r * 0.3) & (np.abs(dy) < r))
    elif label == 5:
        mask = np.sin(2 * np.pi * freq * yy + phase) > 0
    elif label == 6:
        mask = np.sin(2 * np.pi * freq * xx + phase) > 0
    elif label == 7:
        sign = rng.choice((-1.0, 1.0))
        mask = np.sin(2 * np.pi * freq * (xx + sign * yy) / np.sqrt(2) + phase) > 0
    elif label == 8:
        mask = (np.sin(2 * np.pi * freq * yy + phase) > 0) ^ (np.sin(2 * np.pi * freq * xx + phase) > 0)
    else:
        mask = (np.sin(2 * np.pi * freq * yy + phase) > 0.6) & (np.sin(2 * np.pi * freq * xx + phase) > 0.6)
    background = rng.uniform(-1, 1, 3).astype(np.float32)
    foreground = background + rng.choice((-1.0, 1.0)) * rng.uniform(0.6, 1.2) * np.ones(3, np.float32)
    foreground += rng.normal(0, 0.3, 3).astype(np.float32)
    image = np.where(mask[..., None], foreground, background).astype(np.float32)
    return image + rng.normal(0, rng.uniform(0.1, 0.35), image.shape).astype(np.float32)


def shapes10(resolution: int = 32, train: int = 2000, test: int = 500, seed: int = 0) -> ImageData:
    """The built-in ``shapes10`` data set: balanced, deterministic for a seed, no download."""
    def split(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n) % len(SHAPES10_CLASSES)
        rng.shuffle(labels)
        images = np.stack([_draw(int(y), resolution, rng) for y in labels]) if n else \
            np.zeros((0, resolution, resolution, 3), np.float32)
        return images, labels.astype(np.int32)

    train_rng, test_rng = (np.random.default_rng([seed, part]) for part in (0, 1))
    x_train, y_train = split(train, train_rng)
    x_test, y_test = split(test, test_rng)
    return ImageData("shapes10", x_train, y_train, x_test, y_test, SHAPES10_CLASSES)


def load_image_folder(folder: str | Path, resolution: int = 32, test_fraction: float = 0.2,
                      seed: int = 0) -> ImageData:
    """``folder/<class>/<image>`` files, resized to ``resolution``; a seeded ``test_fraction`` is held out."""
    from PIL import Image, UnidentifiedImageError

    root = Path(folder)
    hint = "pass --data DIR with one sub-folder of images per class (at least two classes)"
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist; {hint}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = {c: sorted(p for p in (root / c).iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES) for c in classes}
    classes = [c for c in classes if files[c]]
    if len(classes) < 2:
        raise DataError(f"{root} has {len(classes)} class folder(s) with images; {hint}")
    rng = np.random.default_rng(seed)
    x_train: list[np.ndarray] = []
    x_test: list[np.ndarray] = []
    y_train: list[int] = []
    y_test: list[int] = []
    for label, name in enumerate(classes):
        paths = list(files[name])
        if len(paths) < 2:
            raise DataError(f"class folder {root / name} has {len(paths)} image; put at least 2 images in each class")
        order = rng.permutation(len(paths))
        n_test = max(1, round(len(paths) * test_fraction))
        for rank, i in enumerate(order):
            try:
                with Image.open(paths[i]) as img:
                    pixels = img.convert("RGB").resize((resolution, resolution), Image.Resampling.BILINEAR)
            except (OSError, UnidentifiedImageError) as exc:
                raise DataError(f"cannot read image {paths[i]} ({exc}); remove or replace the file") from None
            array = np.asarray(pixels, np.float32) / 127.5 - 1.0
            (x_test if rank < n_test else x_train).append(array)
            (y_test if rank < n_test else y_train).append(label)
    return ImageData(root.name, np.stack(x_train), np.asarray(y_train, np.int32), np.stack(x_test),
                     np.asarray(y_test, np.int32), tuple(classes))

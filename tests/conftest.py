"""Shared fixtures: a private results database and a tiny real .tflite model."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory) -> Path:
    """One cache for the session: models built and known devices fitted once, not once per test."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _private_home(tmp_path_factory, monkeypatch, _session_cache):
    """Keep every test away from the user's database, adb key, configs and cache."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("LATPROF_CACHE", str(_session_cache))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("LATPROF_DB", str(home / "latprof.db"))
    monkeypatch.delenv("ANDROID_USER_HOME", raising=False)
    monkeypatch.delenv("LATPROF_ADB_HOSTS", raising=False)
    monkeypatch.delenv("LATPROF_DEVICE_CONFIGS", raising=False)


@pytest.fixture(scope="session")
def tiny_tflite(tmp_path_factory) -> Path:
    """A real float32 .tflite: conv+BN+ReLU6, depthwise conv, pooling, dense, on 16x16x3."""
    import tensorflow as tf

    inputs = tf.keras.Input((16, 16, 3), batch_size=1)
    x = tf.keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.ReLU(6.0)(x)
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf.keras.layers.Dense(4)(x)
    model = tf.keras.Model(inputs, outputs)
    path = tmp_path_factory.mktemp("models") / "tiny model.tflite"  # a space, on purpose
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints the SavedModel signature
        path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path

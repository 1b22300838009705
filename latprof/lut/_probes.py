"""The built-in operator probes: small Keras graphs whose operators a MnasNet table lacks.

Each stage of :data:`PROBE_STAGES` (a map size and a channel count) gets the
operators the Keras application families are built from -- plain, grouped
(1x1 and k x k), dilated, rectangular and 5x5/7x7 convolutions, 3x3/5x5/7x7 depthwise ones,
average and max pooling, explicit padding, concatenation, resizing,
transposes, splits and slices, hard-swish, swish, GELU, tanh, softmax, layer
normalisation, squeeze-and-excitation scales (sigmoid and hard-sigmoid) and
fully connected layers on vectors and maps -- so that the operator regression
of every fine kind has points at several sizes. The graphs are our own (no
Keras application is used) and get random weights; they are converted once
and cached.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Callable, Sequence

from latprof.cache import cache_dir, write_atomic

__all__ = ["PROBE_STAGES", "PROBES_VERSION", "op_probe_models"]

PROBES_VERSION = "2"  # bump when the graphs below change: a new cache folder
# (map side, channels): map sides 112..7 and channels 16..512, two channel counts at most sides so that the
# regression on [1, MACs, in, out, weights] is not fitted on one line of proportional points
PROBE_STAGES: tuple[tuple[int, int], ...] = ((112, 16), (56, 24), (56, 64), (28, 40), (28, 128), (14, 96),
                                             (14, 256), (7, 160), (7, 512))


def op_probe_models(folder: Path | None = None, *, stages: Sequence[tuple[int, int]] = PROBE_STAGES,
                    dtype: str = "float32", notify: Callable[[str], None] = lambda _: None) -> list[Path]:
    """The probe .tflite files (one per stage), built and converted on first use, then read from ``folder``
    (default ``cache_dir()/op-probes/v<PROBES_VERSION>``, ``.../v<PROBES_VERSION>-int8`` for int8; a file per
    stage, named by its map side and channels). ``dtype`` int8: full-integer post-training quantization
    (float input and output, as the converter gives by default). ``notify`` hears once when models have to be
    built (TensorFlow, tens of seconds)."""
    suffix = "" if dtype == "float32" else f"-{dtype}"
    folder = Path(folder) if folder is not None else cache_dir() / "op-probes" / f"v{PROBES_VERSION}{suffix}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"probe_{side}x{side}x{channels}.tflite" for side, channels in stages]
    missing = [(path, stage) for path, stage in zip(paths, stages) if not path.is_file()]
    if missing:
        notify(f"building {len(missing)} operator probe model(s) into {folder} (once; TensorFlow, tens of seconds)")
    for path, (side, channels) in missing:
        write_atomic(path, _convert(side, channels, dtype))
    return paths


def _convert(side: int, channels: int, dtype: str) -> bytes:
    from latprof.space import keras_to_tflite, quantize_for

    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints the SavedModel signature
        return keras_to_tflite(_probe_graph(side, channels), quantize=quantize_for(dtype))


def _probe_graph(side: int, c: int):
    """One Keras model on a ``side`` x ``side`` x ``c`` input, every probe branch an output."""
    import keras
    from keras import layers as L
    from keras import ops

    x = inp = keras.Input((side, side, c), batch_size=1)
    wide = min(2 * c, 512)  # caps keep the 512-channel stage's weights (and model file) small
    dense_out = min(c, 128)
    out = [
        # convolutions: 1x1 (fused ReLU: a recovered `cn` layer), grouped, 3x3 / 5x5 / 7x7, strided, dilated,
        # rectangular (Inception), separable (Xception)
        L.Conv2D(wide, 1, activation="relu")(x),
        L.Conv2D(c, 1, groups=4)(x),
        L.Conv2D(wide, 1, groups=2, activation="relu")(x),
        L.Conv2D(min(c, 256), 3, padding="same")(x),
        L.Conv2D(min(2 * c, 256), 3, strides=2, padding="same", activation="relu")(x),
        L.Conv2D(dense_out, 3, padding="same", dilation_rate=2)(x),
        L.Conv2D(dense_out, (1, 7), padding="same", activation="relu")(x),
        L.Conv2D(dense_out, (7, 1), padding="same")(x),
        L.SeparableConv2D(c, 3, padding="same")(x),
        # grouped k x k: one group per channel (ConvNeXt's 7x7) and 8 channels a group (ResNeXt's 3x3)
        L.Conv2D(c, 7, padding="same", groups=c)(x),
        L.Conv2D(c, 3, padding="same", groups=c // 8)(x),
    ]
    if c <= 64:  # dense 5x5 / 7x7 convolutions appear on early, narrow maps (stems)
        out += [L.Conv2D(c, 5, padding="same")(x), L.Conv2D(c, 5, strides=2, padding="same", activation="relu")(x),
                L.Conv2D(c, 7, padding="same")(x), L.Conv2D(2 * c, 7, strides=2, padding="same")(x)]
    for k in (3, 5, 7):  # depthwise, stride 1 and 2, with and without a fused ReLU6
        out += [L.DepthwiseConv2D(k, padding="same")(x),
                L.DepthwiseConv2D(k, strides=2, padding="same", activation="relu6")(x)]
    out.append(L.DepthwiseConv2D(3, padding="same", dilation_rate=2)(x))
    # explicit padding (ResNet / MobileNet stride-2 and 7x7 stems), then VALID convolutions
    out.append(L.DepthwiseConv2D(3, strides=2)(L.ZeroPadding2D(((0, 1), (0, 1)))(x)))
    out.append(L.Conv2D(dense_out, 3)(L.ZeroPadding2D(1)(x)))
    out.append(L.ZeroPadding2D(3)(x))
    out.append(L.MaxPooling2D(3, strides=2)(L.ZeroPadding2D(1)(x)))  # zero padding is not max-pool padding: kept
    # pooling: max (ResNet, Inception), average 2x2 (DenseNet) and 3x3, global means with and without keep_dims
    out += [L.MaxPooling2D(3, strides=2, padding="same")(x), L.MaxPooling2D(3, strides=1, padding="same")(x),
            L.MaxPooling2D(2)(x), L.AveragePooling2D(2)(x), L.AveragePooling2D(3, strides=1, padding="same")(x),
            L.GlobalAveragePooling2D()(x), L.GlobalAveragePooling2D(keepdims=True)(x)]
    # element-wise: ResNet sums and pre-activation (BN on a sum: MUL + ADD by constants, then RELU), swish,
    # hard-swish, GELU, tanh, sigmoid, hard-sigmoid
    y = L.Conv2D(c, 1)(x)
    total = L.Add()([x, y])
    out += [total, L.Subtract()([x, y]), L.Multiply()([x, y]), L.Maximum()([x, y])]
    out.append(L.ReLU()(L.BatchNormalization()(total)))
    out.append(L.ReLU(6.0)(L.Concatenate()([x, y])))  # activations the converter cannot fuse into a producer
    out += [L.Activation("swish")(y), L.Activation("hard_swish")(y), L.Activation("gelu")(y),
            L.Activation("tanh")(y), L.Activation("sigmoid")(y), L.Activation("hard_sigmoid")(y)]
    # squeeze-and-excitation: 1x1 convs on the pooled map (EfficientNet, sigmoid) and dense layers
    # (MobileNetV3, hard-sigmoid), each scaling the map by broadcasting
    se = max(8, c // 4)
    pooled = L.GlobalAveragePooling2D(keepdims=True)(y)
    gate = L.Conv2D(c, 1, activation="sigmoid")(L.Conv2D(se, 1, activation="swish")(pooled))
    out.append(L.Multiply()([y, gate]))
    vector = L.GlobalAveragePooling2D()(y)
    gate = L.Activation("hard_sigmoid")(L.Dense(c)(L.Dense(se, activation="relu")(vector)))
    out.append(L.Multiply()([y, L.Reshape((1, 1, c))(gate)]))
    # concatenation of 2, 3 and 4 maps (Inception, DenseNet)
    z = L.Conv2D(c // 2, 1)(x)
    out.append(L.ReLU()(L.Concatenate()([x, z])))
    out += [L.Concatenate()([x, z]), L.Concatenate()([x, y, z]), L.Concatenate()([x, y, z, x])]
    # shape and copy operators: reshape, transpose, split, strided slice
    out += [L.Reshape((side * side, c))(y), L.Permute((2, 1, 3))(y)]
    out += list(ops.split(y, 2, axis=-1))
    out.append(y[:, ::2, ::2, : c // 2])
    if side <= 56:  # resizing (up-sampling decoders, feature pyramids)
        out += [L.UpSampling2D(2)(y), L.UpSampling2D(2, interpolation="bilinear")(y),
                L.Resizing(2 * side, 2 * side, interpolation="nearest")(y)]
    # ConvNeXt-style block: layer normalisation, dense layers on the map (1x1 as FULLY_CONNECTED), GELU, scale
    h = L.LayerNormalization(epsilon=1e-6)(y)
    h = L.Dense(c, activation="gelu")(h)
    out.append(L.Dense(c)(h))
    # softmax over channels of a map and over a classifier's logits; large classifiers
    out.append(L.Softmax()(L.Reshape((side * side, c))(y)))
    out.append(L.Softmax()(L.Dense(1000)(vector)))
    return keras.Model(inp, out)
